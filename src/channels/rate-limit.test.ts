import { describe, expect, test } from "bun:test";
import { createTokenBucket, parseRate } from "./rate-limit.ts";

describe("parseRate", () => {
  test("units", () => {
    expect(parseRate("30/s")).toEqual({ perSecond: 30, burst: 30 });
    expect(parseRate("600/m")).toEqual({ perSecond: 10, burst: 10 });
    expect(parseRate("3600/h")).toEqual({ perSecond: 1, burst: 1 });
    expect(parseRate("5")).toEqual({ perSecond: 5, burst: 5 });
    expect(parseRate("1/m")!.burst).toBe(1);
    expect(parseRate(undefined)).toBeUndefined();
    expect(parseRate("0")).toBeUndefined();
  });
  test("nonsense is an error naming the input", () => {
    expect(() => parseRate("fast")).toThrow('"fast"');
    expect(() => parseRate("10/day")).toThrow();
  });
});

describe("token bucket", () => {
  test("a burst takes the bucket, then waits for refill", async () => {
    let t = 0;
    const bucket = createTokenBucket({ perSecond: 10, burst: 2 }, () => t);
    expect(await bucket.take(0)).toBe(0);
    expect(await bucket.take(0)).toBe(0);
    // Empty: the next token accrues in 100 ms; with no wait allowed we are told how long.
    expect(await bucket.take(0)).toBe(100);
    t += 100;
    expect(await bucket.take(0)).toBe(0);
  });

  test("waits up to the bound instead of failing (real time)", async () => {
    const bucket = createTokenBucket({ perSecond: 20, burst: 1 });
    const started = performance.now();
    const waits = await Promise.all([bucket.take(1000), bucket.take(1000), bucket.take(1000)]);
    expect(waits).toEqual([0, 0, 0]);
    // Three tokens at 20/s with a bucket of one: the third is ~100 ms after the first.
    expect(performance.now() - started).toBeGreaterThanOrEqual(90);
  });

  test("a wait beyond the bound is refused without taking a token", async () => {
    let t = 0;
    const bucket = createTokenBucket({ perSecond: 1, burst: 1 }, () => t);
    expect(await bucket.take(10)).toBe(0);
    expect(await bucket.take(10)).toBe(1000);
    t += 1000;
    expect(await bucket.take(10)).toBe(0);
  });
});
