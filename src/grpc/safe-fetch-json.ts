/**
 * The FetchJson that Context.Enrich and the users upstream use in production: the SSRF-safe client
 * of src/net/. Source URLs are operator-configured, yet loopback/private/link-local addresses are
 * still refused unless named in NOTIFY_ENRICH_ALLOW (host names or CIDRs, comma-separated), so a
 * rule edited through the API cannot make the backend fetch the cloud metadata endpoint.
 */
import { AppError } from "../runtime/errors.ts";
import { createSafeHttpClient } from "../net/ssrf.ts";
import { HttpStatusError, MAX_RESPONSE_BYTES, redactQuery, type FetchJson } from "./fetch-json.ts";

export function createSafeFetchJson(env: Record<string, string | undefined>): FetchJson {
  const allowList = (env.NOTIFY_ENRICH_ALLOW ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  const client = createSafeHttpClient({ allowList, maxResponseBytes: MAX_RESPONSE_BYTES, maxRedirects: 2 });
  return async function safeFetchJson(url, { timeoutMs, signal }) {
    if (signal?.aborted) throw new AppError("UNAVAILABLE", `GET ${redactQuery(url)}: cancelled`);
    const res = await client.request(url, { method: "GET", headers: { accept: "application/json" }, timeoutMs }).catch((err: Error) => {
      throw new AppError("UNAVAILABLE", `GET ${redactQuery(url)}: ${err.message}`);
    });
    if (res.status < 200 || res.status > 299) throw new HttpStatusError(url, res.status);
    try {
      return JSON.parse(res.body);
    } catch {
      throw new AppError("UNAVAILABLE", `GET ${redactQuery(url)}: response is not JSON`);
    }
  };
}
