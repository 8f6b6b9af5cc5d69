import { describe, expect, test } from "bun:test";
import { createCircuitBreaker } from "./circuit-breaker.ts";
import { sendWithFailover, type GuardedSender } from "./failover.ts";
import { createTokenBucket } from "./rate-limit.ts";
import { SendError, type OutboundMessage } from "./types.ts";

const msg: OutboundMessage = {
  deliveryId: "d1",
  notificationId: "n1",
  event: "e",
  to: "a@example.com",
  user: { id: "u", email: null, phone: null, name: null, locale: null, timezone: null, telegram_chat_id: null, attributes: {} },
  content: { text: "hi" },
  attempt: 1,
};

function sender(name: string, behave: () => Promise<void>, opts: { threshold?: number; rate?: number } = {}) {
  let calls = 0;
  const s: GuardedSender = {
    provider: name,
    breaker: createCircuitBreaker({ threshold: opts.threshold ?? 2, coolDownMs: 60_000 }),
    limiter: opts.rate ? createTokenBucket({ perSecond: opts.rate, burst: 1 }) : undefined,
    maxRateWaitMs: 0,
    async send() {
      calls++;
      await behave();
      return { providerId: `${name}-id` };
    },
    async close() {},
  };
  return { s, calls: () => calls };
}

const down = async () => {
  throw new SendError("connection refused", { permanent: false });
};
const ok = async () => {};
const signal = () => AbortSignal.timeout(5000);

describe("failover", () => {
  test("a transient failure moves on to the next provider in the same attempt", async () => {
    const a = sender("a", down);
    const b = sender("b", ok);
    const r = await sendWithFailover([a.s, b.s], msg, signal());
    expect(r).toMatchObject({ ok: true, provider: "b" });
    expect([a.calls(), b.calls()]).toEqual([1, 1]);
  });

  test("a permanent failure stops: another provider would refuse it too", async () => {
    const a = sender("a", async () => {
      throw new SendError("550 no such user", { permanent: true });
    });
    const b = sender("b", ok);
    const r = await sendWithFailover([a.s, b.s], msg, signal());
    expect(r).toMatchObject({ ok: false, kind: "failed", provider: "a" });
    expect(b.calls()).toBe(0);
    expect(a.s.breaker.state).toBe("closed");
  });

  test("an open circuit is skipped; all open → unavailable with the probe time", async () => {
    const a = sender("a", down, { threshold: 1 });
    const b = sender("b", ok);
    await sendWithFailover([a.s, b.s], msg, signal());
    expect(a.s.breaker.state).toBe("open");
    await sendWithFailover([a.s, b.s], msg, signal());
    expect(a.calls()).toBe(1); // not tried again while open
    expect(b.calls()).toBe(2);
    const only = await sendWithFailover([a.s], msg, signal());
    expect(only).toMatchObject({ ok: false, kind: "unavailable" });
    if (!only.ok && only.kind === "unavailable") {
      expect(only.retryAt).toBe(a.s.breaker.retryAt());
      expect(only.reason).toContain("a: circuit open");
    }
  });

  test("every provider failing reports each one's error", async () => {
    const a = sender("a", down);
    const b = sender("b", async () => {
      throw new SendError("HTTP 503", { permanent: false, retryAfterMs: 7000 });
    });
    const r = await sendWithFailover([a.s, b.s], msg, signal());
    expect(r.ok).toBe(false);
    if (!r.ok && r.kind === "failed") {
      expect(r.error.message).toBe("a: connection refused; b: HTTP 503");
      expect(r.error.permanent).toBe(false);
      expect(r.error.retryAfterMs).toBe(7000);
    }
  });

  test("a saturated rate limit counts as busy, not as a failure", async () => {
    const a = sender("a", ok, { rate: 1 });
    expect((await sendWithFailover([a.s], msg, signal())).ok).toBe(true);
    const r = await sendWithFailover([a.s], msg, signal());
    expect(r).toMatchObject({ ok: false, kind: "unavailable" });
    expect(a.s.breaker.state).toBe("closed");
    expect(a.calls()).toBe(1);
  });
});
