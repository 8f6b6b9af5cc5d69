import { expect, test } from "bun:test";
import { retryLevel, WORK_QUEUES } from "./topology.ts";

test("a retry never comes back later than asked: the longest level not longer than the delay", () => {
  const q = WORK_QUEUES.events;
  expect(retryLevel(q, 250)).toBe(1_000); // shorter than every level: the shortest
  expect(retryLevel(q, 1_000)).toBe(1_000);
  expect(retryLevel(q, 4_999)).toBe(1_000);
  // A claim held elsewhere for another 35 s: 30 s, then the 5 s left (not the 120 s level).
  expect(retryLevel(q, 35_250)).toBe(30_000);
  expect(retryLevel(q, 5_250)).toBe(5_000);
  expect(retryLevel(q, 9 * 3_600_000)).toBe(3_600_000);
});
