/**
 * Building blocks shared by the message schemas, and the one place valibot issues become
 * AppError details ({path, message}).
 */
import * as v from "valibot";
import { AppError, type ErrorDetail } from "../runtime/errors.ts";

/** No CR, LF or NUL: values that may end up in a mail or HTTP header. */
export const noLineBreaks = v.regex(/^[^\r\n\0]*$/, "must not contain line breaks");

export const Id = v.pipe(v.string(), v.minLength(1, "must not be empty"), v.maxLength(256), v.regex(/^[^\s\0]+$/, "must not contain spaces"), noLineBreaks);
export const Key = v.pipe(v.string(), v.regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/, "letters, digits, _ . : - (max 128), starting with a letter or digit"));
export const Email = v.pipe(v.string(), v.maxLength(320), noLineBreaks, v.email("must be an e-mail address"));
export const Phone = v.pipe(v.string(), v.regex(/^\+?[0-9]{5,20}$/, "must be a phone number in international format, digits only"));
export const Locale = v.pipe(v.string(), v.regex(/^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$/, "must be a BCP 47 language tag such as en or ru-RU"));
export const TimeZone = v.pipe(
  v.string(),
  v.maxLength(64),
  v.check((tz) => isTimeZone(tz), "must be an IANA time zone such as Europe/Moscow"),
);
export const Name = v.pipe(v.string(), v.maxLength(256), noLineBreaks);
export const Attributes = v.record(v.pipe(v.string(), v.maxLength(128)), v.unknown());
export const Timestamp = v.pipe(v.string(), v.isoTimestamp("must be an ISO 8601 timestamp with a time zone, e.g. 2026-12-01T09:00:00Z"));

export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export function issuesToDetails(issues: v.BaseIssue<unknown>[]): ErrorDetail[] {
  return issues.map((issue) => {
    const path = v.getDotPath(issue) ?? (issue.path ?? []).map((p) => String(p.key)).join(".");
    return { path: path || "(body)", message: issue.message };
  });
}

/** Parses or throws AppError VALIDATION_FAILED naming every field at fault. */
export function parse<S extends v.GenericSchema>(schema: S, input: unknown, prefix = ""): v.InferOutput<S> {
  const result = v.safeParse(schema, input, { abortPipeEarly: true });
  if (result.success) return result.output;
  const details = issuesToDetails(result.issues).map((d) => ({ ...d, path: prefix && d.path !== "(body)" ? `${prefix}.${d.path}` : d.path }));
  throw new AppError("VALIDATION_FAILED", `invalid request: ${details.map((d) => `${d.path} ${d.message}`).join("; ")}`, { details });
}

/** Dotted path of the first key or string value holding U+0000, or undefined. */
export function nulPath(v: unknown, path = ""): string | undefined {
  if (typeof v === "string") return v.includes("\0") ? path : undefined;
  if (!v || typeof v !== "object") return undefined;
  for (const [k, x] of Object.entries(v)) {
    const p = path ? `${path}.${k}` : k;
    if (k.includes("\0")) return p;
    const found = nulPath(x, p);
    if (found !== undefined) return found;
  }
  return undefined;
}
