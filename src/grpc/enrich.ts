/**
 * Context.Enrich: fetch the data sources an event rule names (e.g. `movie` ←
 * `{base}/movies/{data.movie_id}`) in parallel, cache each result with its TTL, and hand back the
 * event data with one key per source. All or nothing: a half-filled message is worse than a
 * retried one.
 */
import { AppError } from "../runtime/errors.ts";
import type { Logger } from "../runtime/log.ts";
import { TtlLru } from "./cache.ts";
import { redactQuery, type FetchJson } from "./fetch-json.ts";

export interface DataSource {
  name: string;
  url_template: string;
  timeout_ms?: number;
  ttl_ms?: number;
}

export interface EnricherOptions {
  fetchJson: FetchJson;
  /** Replaces `{base}` and prefixes templates starting with "/" (NOTIFY_ENRICH_BASE_URL). */
  baseUrl?: string;
  /** Cached results kept at most; each is at most MAX_RESPONSE_BYTES, in practice a few KB. */
  maxEntries?: number;
  log: Logger;
  now?: () => number;
}

export const DEFAULT_SOURCE_TIMEOUT_MS = 2000;
export const MAX_SOURCE_TIMEOUT_MS = 30_000;
export const DEFAULT_SOURCE_TTL_MS = 60_000;
export const MAX_SOURCES = 16;

const invalid = (path: string, message: string) => new AppError("VALIDATION_FAILED", message, { details: [{ path, message }] });

/** Reads `a.b.c` from an object; undefined when any step is missing. */
function pick(data: unknown, path: string[]): unknown {
  let v: unknown = data;
  for (const p of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

/** Expands `{data.x}` (URL-encoded) and `{base}`; throws VALIDATION_FAILED for a missing value or base. */
export function expandUrl(template: string, data: Record<string, unknown>, baseUrl: string | undefined, path = "url_template"): string {
  const needBase = template.startsWith("/") || template.includes("{base}");
  if (needBase && !baseUrl) throw invalid(path, "the template needs {base} but NOTIFY_ENRICH_BASE_URL is not set");
  const base = (baseUrl ?? "").replace(/\/+$/, "");
  let url = template.startsWith("/") ? base + template : template;
  url = url.replace(/\{([^{}]*)\}/g, (whole, expr: string) => {
    if (expr === "base") return base;
    if (!expr.startsWith("data.")) throw invalid(path, `unknown placeholder ${whole} (expected {base} or {data.x})`);
    const value = pick(data, expr.slice(5).split("."));
    if (value === undefined || value === null || typeof value === "object") throw invalid(path, `placeholder ${whole} has no scalar value in data`);
    return encodeURIComponent(String(value));
  });
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid(path, `not a valid URL after expansion: ${redactQuery(url)}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw invalid(path, "only http and https sources are allowed");
  return parsed.toString();
}

interface InFlight {
  promise: Promise<unknown>;
  controller: AbortController;
  waiters: number;
}

export function createEnricher(opts: EnricherOptions) {
  const cache = new TtlLru<unknown>(opts.maxEntries ?? 10_000, opts.now);
  const inflight = new Map<string, InFlight>();
  const stats = { fetches: 0, cacheHits: 0, failures: 0 };

  /**
   * One fetch per URL at a time, shared by every call that needs it (a campaign's thousand
   * deliveries all asking for the same movie make one request). The fetch is aborted only when
   * every call waiting on it has gone.
   */
  function fetchShared(url: string, timeoutMs: number, ttlMs: number, signal: AbortSignal): Promise<unknown> {
    let entry = inflight.get(url);
    if (!entry) {
      const controller = new AbortController();
      stats.fetches++;
      const promise = opts.fetchJson(url, { timeoutMs, signal: controller.signal }).then(
        (value) => {
          cache.set(url, value, ttlMs);
          return value;
        },
      );
      const created: InFlight = { promise, controller, waiters: 0 };
      promise.then(() => {}, () => {}).finally(() => inflight.delete(url));
      inflight.set(url, created);
      entry = created;
    }
    const shared = entry;
    shared.waiters++;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        if (--shared.waiters === 0) shared.controller.abort();
        reject(new AppError("CANCELLED", "cancelled"));
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      shared.promise.then(
        (v) => {
          signal.removeEventListener("abort", onAbort);
          shared.waiters--;
          resolve(v);
        },
        (e) => {
          signal.removeEventListener("abort", onAbort);
          shared.waiters--;
          reject(e);
        },
      );
    });
  }

  async function enrich(event: string, data: Record<string, unknown>, sources: DataSource[], signal: AbortSignal): Promise<Record<string, unknown>> {
    if (sources.length > MAX_SOURCES) throw invalid("sources", `at most ${MAX_SOURCES} sources per call`);
    const names = new Set<string>();
    const plans = sources.map((s, i) => {
      if (!s.name) throw invalid(`sources.${i}.name`, "a source needs a name");
      if (names.has(s.name)) throw invalid(`sources.${i}.name`, `duplicate source name "${s.name}"`);
      names.add(s.name);
      return {
        name: s.name,
        url: expandUrl(s.url_template, data, opts.baseUrl, `sources.${i}.url_template`),
        timeoutMs: Math.min(s.timeout_ms || DEFAULT_SOURCE_TIMEOUT_MS, MAX_SOURCE_TIMEOUT_MS),
        ttlMs: s.ttl_ms || DEFAULT_SOURCE_TTL_MS,
      };
    });

    const results = await Promise.allSettled(
      plans.map(async (p) => {
        const hit = cache.get(p.url);
        if (hit !== undefined) {
          stats.cacheHits++;
          return hit;
        }
        return fetchShared(p.url, p.timeoutMs, p.ttlMs, signal);
      }),
    );
    if (signal.aborted) throw new AppError("CANCELLED", "cancelled");

    const failed = results.flatMap((r, i) => (r.status === "rejected" ? [{ name: plans[i]!.name, url: plans[i]!.url, err: r.reason as Error }] : []));
    if (failed.length) {
      stats.failures++;
      const what = failed.map((f) => `${f.name}: ${f.err?.message ?? String(f.err)}`).join("; ");
      opts.log.warn("enrich failed", { event, sources: failed.map((f) => ({ name: f.name, url: redactQuery(f.url), error: f.err?.message })) });
      throw new AppError("UNAVAILABLE", `data sources failed, retry later: ${what}`, {
        details: failed.map((f) => ({ path: `sources.${f.name}`, message: f.err?.message ?? "failed" })),
      });
    }
    const out: Record<string, unknown> = { ...data };
    plans.forEach((p, i) => (out[p.name] = (results[i] as PromiseFulfilledResult<unknown>).value));
    return out;
  }

  return { enrich, stats, cache };
}

export type Enricher = ReturnType<typeof createEnricher>;
