/**
 * The gRPC backend's memory of user rows, kept true by PostgreSQL: migration 0009's triggers
 * announce every write to `users` on channel notify_users_changed (a JSON array of ids, or "*"),
 * and the cache drops what changed. It is only trusted while that channel is proven to work:
 * the backend notifies itself every HEARTBEAT_MS and stops serving from memory (and forgets it)
 * when its own ping has not come back in time, e.g. after the listening connection was lost and
 * notifications may have been missed. A TTL bounds the age of any entry besides.
 *
 * Eviction is first in, first out: a hit costs one Map lookup (the strict LRU's delete-and-reinsert
 * on every read was 15 % of a GetUsers call in the profile), and the TTL already renews entries.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "../runtime/log.ts";
import type { Sql } from "../store/db.ts";

export const USERS_CHANGED_CHANNEL = "notify_users_changed";
export const HEARTBEAT_MS = 2_000;
/** Without our own ping back for this long, notifications may be missing: memory is not used. */
export const HEARTBEAT_STALE_MS = 3 * HEARTBEAT_MS;

/** What the cache holds; it sets `expiresAt` when storing. */
export interface Expiring {
  expiresAt: number;
}

export class UserRowCache<T extends Expiring> {
  private map = new Map<string, T>();
  /** Bumped by every invalidation; a read that started before a bump must not store what it read. */
  private seq = 0;
  private readonly reads = new Map<number, number>(); // read token → seq at its start
  private nextRead = 0;
  /** Invalidations that happened while reads were in flight: [seq, id or "*"]. */
  private log: Array<[number, string]> = [];

  constructor(
    readonly maxEntries: number,
    readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!(maxEntries >= 1)) throw new Error("UserRowCache: maxEntries must be at least 1");
  }

  get(id: string): T | undefined {
    const e = this.map.get(id);
    if (e === undefined || e.expiresAt > this.now()) return e;
    this.map.delete(id);
    return undefined;
  }

  /** Starts a read from the database; pass the token to store() with what it found. */
  beginRead(): number {
    const token = this.nextRead++;
    this.reads.set(token, this.seq);
    return token;
  }

  /** Ends the read: stores what it found, except ids changed meanwhile (they may be stale). */
  store(token: number, rows: Iterable<[string, T]>): void {
    const since = this.reads.get(token);
    if (since === undefined) return;
    let skip: Set<string> | undefined;
    if (since !== this.seq) {
      skip = new Set();
      for (const [s, id] of this.log) if (s > since) skip.add(id);
    }
    this.endRead(token);
    if (skip?.has("*")) return;
    const expiresAt = this.now() + this.ttlMs;
    for (const [id, value] of rows) {
      if (skip?.has(id)) continue;
      value.expiresAt = expiresAt;
      this.map.delete(id);
      this.map.set(id, value);
    }
    for (let over = this.map.size - this.maxEntries; over > 0; over--) this.map.delete(this.map.keys().next().value!);
  }

  /** A read that failed or was abandoned: forget its token. */
  endRead(token: number): void {
    this.reads.delete(token);
    if (this.reads.size === 0) this.log = [];
  }

  invalidate(id: string): void {
    this.seq++;
    if (this.reads.size) this.log.push([this.seq, id]);
    this.map.delete(id);
  }

  clear(): void {
    this.seq++;
    if (this.reads.size) this.log.push([this.seq, "*"]);
    this.map = new Map();
  }

  get size(): number {
    return this.map.size;
  }
}

/** Applies one notification's payload: a JSON array of ids, "*", or our own heartbeat. */
export function applyUsersChanged(cache: Pick<UserRowCache<Expiring>, "invalidate" | "clear">, payload: string): void {
  if (payload === "*") return cache.clear();
  let ids: unknown;
  try {
    ids = JSON.parse(payload);
  } catch {
    return cache.clear(); // not ours to read: forgetting everything is always safe
  }
  if (!Array.isArray(ids)) return cache.clear();
  for (const id of ids) {
    if (typeof id === "string") cache.invalidate(id);
    else return cache.clear();
  }
}

export interface UsersChangedListener {
  /** True while our own pings come back: notifications are arriving, memory may be used. */
  readonly live: boolean;
  stop(): Promise<void>;
}

/**
 * Listens on notify_users_changed and keeps `live` honest with a heartbeat: every HEARTBEAT_MS
 * this process notifies itself ("ping:<token>:<n>") through the ordinary pool. While no ping has
 * come back within HEARTBEAT_STALE_MS the cache is cleared and bypassed, and listening is started
 * again (postgres.js re-listens after a lost connection but gives up if the database is down then).
 */
export function listenForUserChanges(sql: Sql, cache: Pick<UserRowCache<Expiring>, "invalidate" | "clear">, log: Logger, now: () => number = Date.now): UsersChangedListener {
  const token = `ping:${randomUUID()}:`;
  let lastPing = -Infinity;
  let sent = 0;
  let stopped = false;
  let handle: { unlisten(): Promise<void> } | undefined;
  let listening: Promise<void> | undefined;
  let wasLive = false;
  let lastStart = -Infinity;

  const onNotify = (payload: string) => {
    if (payload.startsWith("ping:")) {
      if (payload.startsWith(token)) {
        if (!wasLive) log.info("user cache live: changes to users are being announced");
        wasLive = true;
        lastPing = now();
      }
      return;
    }
    applyUsersChanged(cache, payload);
  };

  const startListening = () => {
    lastStart = now();
    listening ??= (async () => {
      try {
        await handle?.unlisten().catch(() => {});
        // onlisten runs on every (re)connect: whatever happened while unconnected is unknown.
        handle = await sql.listen(USERS_CHANGED_CHANNEL, onNotify, () => cache.clear());
      } catch (err) {
        log.warn("user cache: cannot listen for user changes; serving from PostgreSQL", { error: (err as Error).message });
      } finally {
        listening = undefined;
      }
    })();
    return listening;
  };

  const beat = async () => {
    if (stopped) return;
    if (now() - lastPing > HEARTBEAT_STALE_MS) {
      if (wasLive) log.warn("user cache paused: no word from PostgreSQL's notifications; serving from PostgreSQL");
      wasLive = false;
      cache.clear();
      if (now() - lastStart > HEARTBEAT_STALE_MS) void startListening();
    }
    await sql`SELECT pg_notify(${USERS_CHANGED_CHANNEL}, ${token + ++sent})`.catch(() => {});
  };
  const timer = setInterval(() => void beat(), HEARTBEAT_MS);
  timer.unref?.();
  void startListening().then(beat);

  return {
    get live() {
      return !stopped && now() - lastPing <= HEARTBEAT_STALE_MS;
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await listening;
      await handle?.unlisten().catch(() => {});
    },
  };
}
