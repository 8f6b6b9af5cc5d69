/**
 * The two ways an outbound request fails. Callers classify on the type: a refusal is permanent
 * (retrying the same URL will be refused again), a request error says whether a retry may help.
 */

export type SsrfBlockCode = "INVALID_URL" | "SCHEME_NOT_ALLOWED" | "USERINFO_NOT_ALLOWED" | "ADDRESS_BLOCKED";

/** The destination is not allowed by policy. Never retryable. */
export class SsrfBlockedError extends Error {
  override readonly name = "SsrfBlockedError";
  readonly retryable = false;
  constructor(
    readonly code: SsrfBlockCode,
    message: string,
    /** The URL host name as written (normalised), when there was one. */
    readonly host?: string,
    /** The address that was refused, when the refusal is about an address. */
    readonly address?: string,
    /** Why the address is refused, e.g. "loopback", "link-local (cloud metadata lives here)". */
    readonly reason?: string,
  ) {
    super(message);
  }
}

export type HttpRequestErrorCode =
  | "TIMEOUT"
  | "CONNECT_TIMEOUT"
  | "NETWORK"
  | "DNS"
  | "TLS"
  | "RESPONSE_TOO_LARGE"
  | "TOO_MANY_REDIRECTS"
  | "BAD_REDIRECT";

// Certificate and size problems do not go away by waiting; the rest usually do.
const RETRYABLE: Record<HttpRequestErrorCode, boolean> = {
  TIMEOUT: true,
  CONNECT_TIMEOUT: true,
  NETWORK: true,
  DNS: true,
  TLS: false,
  RESPONSE_TOO_LARGE: false,
  TOO_MANY_REDIRECTS: false,
  BAD_REDIRECT: false,
};

/** The request was allowed but did not produce a usable response. */
export class HttpRequestError extends Error {
  override readonly name = "HttpRequestError";
  readonly retryable: boolean;
  /** The pinned address the failure happened on, if a connection was attempted. */
  readonly address?: string;
  /** "connect": no byte of the request reached the peer, so another verified address may be tried. */
  readonly phase: "connect" | "response";

  constructor(
    readonly code: HttpRequestErrorCode,
    message: string,
    opts: { cause?: unknown; address?: string; phase?: "connect" | "response" } = {},
  ) {
    super(message, { cause: opts.cause });
    this.retryable = RETRYABLE[code];
    this.address = opts.address;
    this.phase = opts.phase ?? "response";
  }
}
