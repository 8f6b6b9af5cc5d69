/**
 * What the HTTP-based providers (SMS, Twilio, Telegram, webhook) share: a client for a URL the
 * operator configured, and one reading of HTTP outcomes into SendError.
 */
import { normaliseHostName } from "../net/address-policy.ts";
import { createSafeHttpClient, HttpRequestError, SsrfBlockedError, type SafeHttpClient } from "../net/ssrf.ts";
import { SendError } from "./types.ts";

/**
 * Provider APIs are operator-configured, so their own host may be private (an internal SMS
 * gateway, a local Bot API server); it is the one private destination this client allows.
 */
export function providerHttpClient(baseUrl: string, timeoutMs: number): SafeHttpClient {
  return createSafeHttpClient({ allowList: [normaliseHostName(new URL(baseUrl).hostname)], timeoutMs, maxRedirects: 0 });
}

/** Retry-After as seconds or an HTTP date, in ms; undefined when absent or unreadable. */
export function retryAfterMs(header: string | undefined, now = Date.now()): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * 2xx is success (not handled here). 408, 425, 429 and 5xx are worth another attempt; other 4xx
 * are permanent. `credentialsTransient`: 401/403 mean *our* credentials are wrong, a provider
 * problem the circuit should see, not a reason to drop the message.
 */
export function httpFailure(label: string, status: number, detail: string, opts: { retryAfter?: string; credentialsTransient?: boolean } = {}): SendError {
  const transient = status === 408 || status === 425 || status === 429 || status >= 500 || (opts.credentialsTransient === true && (status === 401 || status === 403));
  const text = detail.replace(/\s+/g, " ").trim().slice(0, 300);
  return new SendError(`${label} HTTP ${status}${text ? `: ${text}` : ""}`, { permanent: !transient, retryAfterMs: retryAfterMs(opts.retryAfter) });
}

/** Network and policy errors of the safe client. A refused destination is permanent. */
export function requestFailure(label: string, err: unknown, redact?: string): SendError {
  const clean = (s: string) => (redact ? s.split(redact).join("[redacted]") : s);
  if (err instanceof SsrfBlockedError) return new SendError(`${label} refused: ${clean(err.message)}`, { permanent: true, cause: err });
  if (err instanceof HttpRequestError) return new SendError(`${label} ${err.code.toLowerCase()}: ${clean(err.message)}`, { permanent: !err.retryable, cause: err });
  return new SendError(`${label} error: ${clean(String((err as Error)?.message ?? err))}`, { permanent: false, cause: err });
}

/** Reads `a.b.c` from parsed JSON; undefined when any step is missing. */
export function pick(obj: unknown, path: string): unknown {
  let cur = obj;
  for (const key of path.split(".")) {
    if (cur === null || typeof cur !== "object" || !Object.hasOwn(cur, key)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
