/**
 * Per-key token bucket, per gateway process. With N gateways the effective limit is N× this;
 * the README says so. 0 disables it.
 */
export function createRateLimiter(perSecond: number) {
  const buckets = new Map<string, { tokens: number; at: number }>();
  // A burst of one second's worth lets clients batch without being punished.
  const capacity = perSecond;
  return {
    take(key: string): boolean {
      if (perSecond <= 0) return true;
      const now = performance.now();
      const b = buckets.get(key) ?? { tokens: capacity, at: now };
      b.tokens = Math.min(capacity, b.tokens + ((now - b.at) / 1000) * perSecond);
      b.at = now;
      if (b.tokens < 1) {
        buckets.set(key, b);
        return false;
      }
      b.tokens -= 1;
      buckets.set(key, b);
      return true;
    },
  };
}
