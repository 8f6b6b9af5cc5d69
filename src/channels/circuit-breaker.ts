/**
 * A circuit breaker per provider: closed → open after `threshold` consecutive transient failures
 * → half-open after `coolDownMs`, where exactly one probe may go through; its success closes the
 * circuit, its failure opens it for another cool-down. Only transient failures count: a permanent
 * one (invalid address) is the message's fault, not the provider's.
 */
export type CircuitState = "closed" | "open" | "half-open";

export interface CircuitBreakerOptions {
  /** Consecutive transient failures that open the circuit. */
  threshold: number;
  /** How long an open circuit refuses sends before it lets one probe through. */
  coolDownMs: number;
  now?: () => number;
  onChange?: (state: CircuitState) => void;
}

// Five in a row is past the noise of a single flaky connection but well before a burst of
// deliveries has all burnt an attempt on a dead relay.
export const DEFAULT_BREAKER_THRESHOLD = 5;
// Long enough for a relay restart, short enough that recovery is noticed within a minute.
export const DEFAULT_BREAKER_COOLDOWN_MS = 30_000;

export interface CircuitBreaker {
  readonly state: CircuitState;
  /** True when a send may go ahead now; in half-open, true for one caller only (the probe). */
  tryAcquire(): boolean;
  /** When an open circuit will let a probe through (epoch ms); now when it is not open. */
  retryAt(): number;
  success(): void;
  failure(): void;
  /** The caller acquired but did not send (e.g. rate limit): frees a half-open probe slot. */
  release(): void;
}

export function createCircuitBreaker(opts: CircuitBreakerOptions): CircuitBreaker {
  const now = opts.now ?? Date.now;
  let state: CircuitState = "closed";
  let failures = 0;
  let openedAt = 0;
  let probing = false;

  const set = (next: CircuitState) => {
    if (next === state) return;
    state = next;
    opts.onChange?.(next);
  };

  return {
    get state() {
      if (state === "open" && now() - openedAt >= opts.coolDownMs) set("half-open");
      return state;
    },
    tryAcquire() {
      const s = this.state;
      if (s === "closed") return true;
      if (s === "open" || probing) return false;
      probing = true;
      return true;
    },
    retryAt() {
      return state === "open" ? openedAt + opts.coolDownMs : now();
    },
    success() {
      failures = 0;
      probing = false;
      set("closed");
    },
    failure() {
      probing = false;
      failures++;
      if (state === "half-open" || failures >= opts.threshold) {
        openedAt = now();
        set("open");
      }
    },
    release() {
      probing = false;
    },
  };
}
