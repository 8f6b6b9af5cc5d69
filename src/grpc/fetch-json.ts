/**
 * Outbound HTTP GET of JSON for Context.Enrich and the users upstream.
 *
 * TODO(src/net): the default below is plain fetch with a timeout and a size limit. The SSRF-safe
 * client (allow-list, no loopback/private addresses, DNS rebinding) being written in src/net/
 * should replace it by being passed as `fetchJson` to startGrpcServer; until then the operator-
 * configured source URLs are trusted as they are.
 */
import { AppError } from "../runtime/errors.ts";

export interface FetchJsonOptions {
  timeoutMs: number;
  /** Aborts the request (the gRPC call was cancelled). */
  signal?: AbortSignal;
}

export type FetchJson = (url: string, opts: FetchJsonOptions) => Promise<unknown>;

/** A peer's non-2xx answer; `status` lets callers tell 404 (absent) from an outage. */
export class HttpStatusError extends AppError {
  constructor(
    readonly url: string,
    readonly httpStatus: number,
  ) {
    super(httpStatus === 404 ? "NOT_FOUND" : "UNAVAILABLE", `GET ${redactQuery(url)} answered ${httpStatus}`);
    this.name = "HttpStatusError";
  }
}

/** Responses above this are refused: a cache of them must stay bounded. */
export const MAX_RESPONSE_BYTES = 1_048_576;

/** Query strings may carry keys; logs and errors show the path only. */
export function redactQuery(url: string): string {
  const i = url.indexOf("?");
  return i < 0 ? url : `${url.slice(0, i)}?…`;
}

/** Plain fetch with a timeout, JSON only, at most MAX_RESPONSE_BYTES. */
export const plainFetchJson: FetchJson = async function plainFetchJson(url, { timeoutMs, signal }) {
  const timeout = AbortSignal.timeout(timeoutMs);
  const res = await fetch(url, {
    headers: { accept: "application/json" },
    redirect: "error",
    signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
  }).catch((err: unknown) => {
    const why = timeout.aborted ? `timed out after ${timeoutMs} ms` : signal?.aborted ? "cancelled" : (err as Error).message;
    throw new AppError("UNAVAILABLE", `GET ${redactQuery(url)}: ${why}`);
  });
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    throw new HttpStatusError(url, res.status);
  }
  const declared = Number(res.headers.get("content-length") ?? 0);
  if (declared > MAX_RESPONSE_BYTES) {
    await res.body?.cancel().catch(() => {});
    throw new AppError("UNAVAILABLE", `GET ${redactQuery(url)}: response of ${declared} bytes is over ${MAX_RESPONSE_BYTES}`);
  }
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    throw new AppError("UNAVAILABLE", `GET ${redactQuery(url)}: ${timeout.aborted ? `timed out after ${timeoutMs} ms` : (err as Error).message}`);
  }
  if (text.length > MAX_RESPONSE_BYTES) throw new AppError("UNAVAILABLE", `GET ${redactQuery(url)}: response over ${MAX_RESPONSE_BYTES} bytes`);
  try {
    return JSON.parse(text);
  } catch {
    throw new AppError("UNAVAILABLE", `GET ${redactQuery(url)}: response is not JSON`);
  }
};
