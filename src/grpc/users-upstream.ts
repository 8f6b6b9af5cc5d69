/**
 * The optional upstream user service (NOTIFY_USERS_UPSTREAM_URL), as the seed design had it:
 * workers fetched e-mail and full name by user id from the auth service.
 *
 * Contract of the upstream: `GET {NOTIFY_USERS_UPSTREAM_URL}/users/{id}` (id URL-encoded) answers
 *   200 {"id": "u1", "email": "a@example.com", "name": "Ann", "phone": "+79990000000",
 *        "locale": "ru-RU", "timezone": "Europe/Moscow"}   (every field but id optional, null allowed)
 *   404 when there is no such user.
 * Anything else (5xx, timeout, bad JSON) counts as the upstream being down.
 *
 * Lookups are cached with a TTL (misses too, for less time). When the upstream is slow or down a
 * lookup gives up after `timeoutMs`, serves an expired cache entry if it has one, counts the
 * failure, and reports the id as unresolved: GetUsers never waits on a dead upstream.
 */
import type { Logger } from "../runtime/log.ts";
import { TtlLru } from "./cache.ts";
import { HttpStatusError, type FetchJson } from "./fetch-json.ts";

export interface UpstreamUser {
  id: string;
  email?: string | null;
  name?: string | null;
  phone?: string | null;
  locale?: string | null;
  timezone?: string | null;
}

export interface UsersUpstreamOptions {
  url: string;
  fetchJson: FetchJson;
  log: Logger;
  /** Per lookup. Short on purpose: a worker waits on it. */
  timeoutMs?: number;
  ttlMs?: number;
  /** "No such user" is cached for less time: users get created upstream. */
  negativeTtlMs?: number;
  maxEntries?: number;
  /** Lookups in flight at once per GetUsers call, so 100 misses do not open 100 connections. */
  concurrency?: number;
  /** Called once per failed lookup (the metric). */
  onFailure?: () => void;
}

export interface UpstreamResult {
  found: Map<string, UpstreamUser>;
  notFound: Set<string>;
  /** Ids the upstream could not answer for, with no cached answer either. */
  failed: Set<string>;
}

const ABSENT = Symbol("absent");

export function createUsersUpstream(opts: UsersUpstreamOptions) {
  const base = opts.url.replace(/\/+$/, "");
  const timeoutMs = opts.timeoutMs ?? 500;
  const ttlMs = opts.ttlMs ?? 60_000;
  const negativeTtlMs = opts.negativeTtlMs ?? 10_000;
  const concurrency = opts.concurrency ?? 16;
  const cache = new TtlLru<UpstreamUser | typeof ABSENT>(opts.maxEntries ?? 100_000);
  const stats = { requests: 0, failures: 0, staleServed: 0 };

  async function fetchOne(id: string, signal: AbortSignal): Promise<UpstreamUser | typeof ABSENT> {
    stats.requests++;
    try {
      const body = (await opts.fetchJson(`${base}/users/${encodeURIComponent(id)}`, { timeoutMs, signal })) as UpstreamUser | null;
      if (!body || typeof body !== "object") throw new Error("upstream answered something other than a JSON object");
      const user: UpstreamUser = { ...body, id };
      cache.set(id, user, ttlMs);
      return user;
    } catch (err) {
      if (err instanceof HttpStatusError && err.httpStatus === 404) {
        cache.set(id, ABSENT, negativeTtlMs);
        return ABSENT;
      }
      throw err;
    }
  }

  async function lookup(ids: string[], signal: AbortSignal): Promise<UpstreamResult> {
    const result: UpstreamResult = { found: new Map(), notFound: new Set(), failed: new Set() };
    const todo: string[] = [];
    for (const id of ids) {
      const hit = cache.get(id);
      if (hit === ABSENT) result.notFound.add(id);
      else if (hit) result.found.set(id, hit);
      else todo.push(id);
    }
    let next = 0;
    let loggedFailure = false;
    const workers = Array.from({ length: Math.min(concurrency, todo.length) }, async () => {
      while (next < todo.length && !signal.aborted) {
        const id = todo[next++]!;
        try {
          const got = await fetchOne(id, signal);
          if (got === ABSENT) result.notFound.add(id);
          else result.found.set(id, got);
        } catch (err) {
          stats.failures++;
          opts.onFailure?.();
          if (!loggedFailure) {
            loggedFailure = true;
            opts.log.warn("users upstream failed; serving cached/local data", { error: (err as Error).message });
          }
          const stale = cache.get(id, { allowStale: true });
          if (stale === ABSENT) result.notFound.add(id);
          else if (stale) {
            stats.staleServed++;
            result.found.set(id, stale);
          } else result.failed.add(id);
        }
      }
    });
    await Promise.all(workers);
    for (const id of todo.slice(next)) result.failed.add(id); // cancelled before asking
    return result;
  }

  return { lookup, stats, cache };
}

export type UsersUpstream = ReturnType<typeof createUsersUpstream>;
