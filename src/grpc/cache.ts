/**
 * A bounded in-memory cache with a TTL per entry and least-recently-used eviction. A Map keeps
 * insertion order, so "move to the back on read, evict from the front" is the whole algorithm.
 */
export class TtlLru<V> {
  private readonly map = new Map<string, { value: V; expiresAt: number }>();

  constructor(
    readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!(maxEntries >= 1)) throw new Error("TtlLru: maxEntries must be at least 1");
  }

  /** The live value, or undefined when absent or expired. `allowStale` also returns an expired one (degraded mode). */
  get(key: string, opts: { allowStale?: boolean } = {}): V | undefined {
    const entry = this.map.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now() && !opts.allowStale) return undefined;
    this.map.delete(key);
    this.map.set(key, entry);
    return entry.value;
  }

  set(key: string, value: V, ttlMs: number): void {
    this.map.delete(key);
    this.map.set(key, { value, expiresAt: this.now() + ttlMs });
    // Expired entries are kept until evicted: they are what degraded mode serves when a peer is down.
    while (this.map.size > this.maxEntries) this.map.delete(this.map.keys().next().value!);
  }

  get size(): number {
    return this.map.size;
  }

  clear(): void {
    this.map.clear();
  }
}
