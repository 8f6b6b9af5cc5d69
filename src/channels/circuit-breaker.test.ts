import { describe, expect, test } from "bun:test";
import { createCircuitBreaker, type CircuitState } from "./circuit-breaker.ts";

function breaker(threshold = 3, coolDownMs = 1000) {
  let t = 0;
  const changes: CircuitState[] = [];
  const b = createCircuitBreaker({ threshold, coolDownMs, now: () => t, onChange: (s) => changes.push(s) });
  return { b, changes, advance: (ms: number) => (t += ms) };
}

describe("circuit breaker", () => {
  test("opens after N consecutive transient failures, not before", () => {
    const { b, changes } = breaker(3);
    b.failure();
    b.failure();
    expect(b.state).toBe("closed");
    expect(b.tryAcquire()).toBe(true);
    b.failure();
    expect(b.state).toBe("open");
    expect(b.tryAcquire()).toBe(false);
    expect(changes).toEqual(["open"]);
  });

  test("a success in between resets the count", () => {
    const { b } = breaker(3);
    b.failure();
    b.failure();
    b.success();
    b.failure();
    b.failure();
    expect(b.state).toBe("closed");
  });

  test("half-open after the cool-down lets exactly one probe through", () => {
    const { b, advance } = breaker(1, 1000);
    b.failure();
    expect(b.retryAt()).toBe(1000);
    advance(999);
    expect(b.tryAcquire()).toBe(false);
    advance(1);
    expect(b.state).toBe("half-open");
    expect(b.tryAcquire()).toBe(true);
    expect(b.tryAcquire()).toBe(false); // the probe is out
    b.success();
    expect(b.state).toBe("closed");
    expect(b.tryAcquire()).toBe(true);
  });

  test("a failed probe opens the circuit for another cool-down", () => {
    const { b, advance, changes } = breaker(2, 500);
    b.failure();
    b.failure();
    advance(500);
    expect(b.tryAcquire()).toBe(true);
    b.failure();
    expect(b.state).toBe("open");
    expect(b.retryAt()).toBe(1000);
    expect(changes).toEqual(["open", "half-open", "open"]);
  });

  test("release frees the probe slot without judging the provider", () => {
    const { b, advance } = breaker(1, 100);
    b.failure();
    advance(100);
    expect(b.tryAcquire()).toBe(true);
    b.release();
    expect(b.state).toBe("half-open");
    expect(b.tryAcquire()).toBe(true);
  });
});
