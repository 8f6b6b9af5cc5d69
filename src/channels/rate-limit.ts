/**
 * Per-provider send rate (token bucket). A burst beyond the rate waits for tokens, up to a bound,
 * instead of failing at the provider with 429; past the bound the caller is told how long to come
 * back after, so a delivery is postponed rather than a worker slot held for minutes.
 */
export interface RateLimit {
  /** Tokens per second. */
  perSecond: number;
  /** Bucket size: how many may go at once after a quiet spell. */
  burst: number;
}

export interface TokenBucket {
  /**
   * Takes a token, waiting up to `maxWaitMs`. Resolves 0 when taken, or the wait in ms that would
   * have been needed (> maxWaitMs) without taking one.
   */
  take(maxWaitMs: number, signal?: AbortSignal): Promise<number>;
}

/** `30/s`, `600/m`, `10000/h`, or a bare number (per second). Undefined for empty input; throws on nonsense. */
export function parseRate(raw: string | undefined): RateLimit | undefined {
  if (raw === undefined || raw.trim() === "" || raw.trim() === "0") return undefined;
  const m = raw.trim().match(/^(\d+(?:\.\d+)?)\s*(?:\/\s*(s|sec|second|m|min|minute|h|hour))?$/i);
  if (!m) throw new Error(`expected a rate such as 30/s or 600/m, got "${raw}"`);
  const n = Number(m[1]);
  const unit = (m[2] ?? "s").toLowerCase()[0];
  const perSecond = unit === "m" ? n / 60 : unit === "h" ? n / 3600 : n;
  if (!(perSecond > 0)) throw new Error(`rate must be positive, got "${raw}"`);
  // A bucket of one second's worth (at least 1) lets a provider's own per-second limit absorb it.
  return { perSecond, burst: Math.max(1, Math.floor(perSecond)) };
}

export function createTokenBucket(limit: RateLimit, now: () => number = performance.now.bind(performance)): TokenBucket {
  let tokens = limit.burst;
  let last = now();
  // Reservations: tokens may go negative, each waiter sleeping until its own token has accrued.
  const refill = () => {
    const t = now();
    tokens = Math.min(limit.burst, tokens + ((t - last) / 1000) * limit.perSecond);
    last = t;
  };
  return {
    async take(maxWaitMs, signal) {
      refill();
      if (tokens >= 1) {
        tokens -= 1;
        return 0;
      }
      const waitMs = Math.ceil(((1 - tokens) / limit.perSecond) * 1000);
      if (waitMs > maxWaitMs) return waitMs;
      tokens -= 1;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        signal?.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve();
        }, { once: true });
      });
      return 0;
    },
  };
}
