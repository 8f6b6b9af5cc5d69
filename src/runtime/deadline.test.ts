import { describe, expect, test } from "bun:test";
import { withDeadline } from "./deadline.ts";

describe("withDeadline", () => {
  test("aborts the signal when the work outlives the deadline", async () => {
    const started = performance.now();
    const err = await withDeadline(50, (signal) => new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)))).catch((e) => e);
    expect(err).toBeInstanceOf(DOMException);
    expect((err as DOMException).name).toBe("TimeoutError");
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
  });

  test("frees the timer when the work settles first: the signal never aborts", async () => {
    let seen: AbortSignal | undefined;
    let aborted = false;
    expect(
      await withDeadline(30, async (signal) => {
        seen = signal;
        signal.addEventListener("abort", () => (aborted = true));
        return 42;
      }),
    ).toBe(42);
    // Asserting that something does not happen needs the time to pass: three deadlines' worth.
    await Bun.sleep(90);
    expect(seen?.aborted).toBe(false);
    expect(aborted).toBe(false);
  });

  test("a failure of the work is passed through unchanged", async () => {
    const boom = new Error("boom");
    expect(await withDeadline(1000, async () => Promise.reject(boom)).catch((e) => e)).toBe(boom);
  });
});
