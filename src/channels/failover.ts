/**
 * Sending one message through a channel's providers in order (failover). A provider whose circuit
 * is open is skipped; a provider whose rate limit would make us wait past the bound is skipped
 * too. A transient failure moves on to the next provider within the same attempt; a permanent one
 * stops (the message itself is at fault, another provider would refuse it as well).
 *
 * When no provider could even be tried, the outcome is "unavailable" with the time the first
 * circuit lets a probe through: the dispatcher postpones the delivery without spending an attempt.
 */
import type { CircuitBreaker } from "./circuit-breaker.ts";
import type { TokenBucket } from "./rate-limit.ts";
import { SendError, type ChannelSender, type OutboundMessage, type SendResult } from "./types.ts";

export interface GuardedSender extends ChannelSender {
  readonly breaker: CircuitBreaker;
  readonly limiter?: TokenBucket;
  /** Longest a send waits for a rate-limit token before the provider counts as busy. */
  readonly maxRateWaitMs: number;
}

export type FailoverOutcome =
  | { ok: true; provider: string; result: SendResult }
  | { ok: false; kind: "failed"; provider: string; error: SendError }
  | { ok: false; kind: "unavailable"; retryAt: number; reason: string };

export function isGuarded(s: ChannelSender): s is GuardedSender {
  return typeof (s as Partial<GuardedSender>).breaker === "object";
}

export async function sendWithFailover(senders: readonly ChannelSender[], msg: OutboundMessage, signal: AbortSignal): Promise<FailoverOutcome> {
  const failures: string[] = [];
  const skipped: string[] = [];
  let retryAt = Infinity;
  let last: { provider: string; error: SendError } | undefined;
  for (const sender of senders) {
    const guarded = isGuarded(sender) ? sender : undefined;
    if (guarded && !guarded.breaker.tryAcquire()) {
      skipped.push(`${sender.provider}: circuit open`);
      retryAt = Math.min(retryAt, guarded.breaker.retryAt());
      continue;
    }
    if (guarded?.limiter) {
      const wait = await guarded.limiter.take(guarded.maxRateWaitMs, signal);
      if (wait > 0) {
        guarded.breaker.release();
        skipped.push(`${sender.provider}: rate limit`);
        retryAt = Math.min(retryAt, Date.now() + wait);
        continue;
      }
    }
    try {
      const result = await sender.send(msg, signal);
      guarded?.breaker.success();
      return { ok: true, provider: sender.provider, result };
    } catch (err) {
      const error = err instanceof SendError ? err : new SendError(String((err as Error)?.message ?? err), { permanent: false, cause: err });
      if (error.permanent) {
        // The provider answered; it is healthy even though it refused this message.
        guarded?.breaker.success();
        return { ok: false, kind: "failed", provider: sender.provider, error };
      }
      guarded?.breaker.failure();
      failures.push(`${sender.provider}: ${error.message}`);
      last = { provider: sender.provider, error };
      if (signal.aborted) break;
    }
  }
  if (!last) return { ok: false, kind: "unavailable", retryAt: Number.isFinite(retryAt) ? retryAt : Date.now() + 1000, reason: `no provider available (${skipped.join("; ")})` };
  // Several providers failed: say what each one said, keep the last one's retry hint.
  const message = failures.length > 1 ? failures.join("; ") : last.error.message;
  return { ok: false, kind: "failed", provider: last.provider, error: new SendError(message, { permanent: false, retryAfterMs: last.error.retryAfterMs, cause: last.error }) };
}
