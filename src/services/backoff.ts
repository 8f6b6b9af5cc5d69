/**
 * Retry delays: exponential with "equal jitter" (half fixed, half random), so a burst of failures
 * does not come back as a burst.
 */
export const BACKOFF_BASE_MS = 1_000;
export const BACKOFF_FACTOR = 5;
export const BACKOFF_MAX_MS = 3_600_000;

export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const exp = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * BACKOFF_FACTOR ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + (random() * exp) / 2);
}
