/**
 * Header injection guard for anything we put on the wire (SMTP and HTTP). A CR or LF in a header
 * value lets the author of that value append headers or a whole body; NUL truncates in some MTAs.
 */

/** A header name or value contains a byte that would let it escape its line. */
export class HeaderInjectionError extends Error {
  override readonly name = "HeaderInjectionError";
  readonly code = "HEADER_INJECTION";
  constructor(
    /** The header the bad value was meant for (or the bad name itself). */
    readonly field: string,
    readonly part: "name" | "value",
  ) {
    super(`header ${part} for "${field}" contains CR, LF or NUL`);
  }
}

const FORBIDDEN = /[\r\n\0]/;
// RFC 9110 token: what a header field name may consist of.
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Throws `HeaderInjectionError` naming the field if the name or value could break the header block. */
export function assertHeaderSafe(name: string, value: string): void {
  if (!TOKEN.test(name)) throw new HeaderInjectionError(name.replace(/[\r\n\0]/g, "?"), "name");
  if (FORBIDDEN.test(value)) throw new HeaderInjectionError(name, "value");
}

/** Asserts every header of a record; returns it unchanged for chaining. */
export function assertHeadersSafe<T extends Record<string, string>>(headers: T): T {
  for (const [name, value] of Object.entries(headers)) assertHeaderSafe(name, value);
  return headers;
}

/**
 * For values we compose ourselves from user data (a display name, a subject): CR/LF/NUL and the
 * whitespace around them become one space, so the text stays readable on a single line.
 */
export function sanitizeHeaderValue(value: string): string {
  return value.replace(/[ \t]*[\r\n\0]+[ \t]*/g, " ");
}
