import { expect, test } from "bun:test";
import { realtimeSignals, type NotificationSignal } from "./messages.ts";

const item = (id: string) => ({ id, event: "e", title: null, body: null, data: {}, read: false, archived: false, created_at: "2026-01-01T00:00:00.000Z" });
const note = (user_id: string, seq: number): NotificationSignal => ({ type: "notification", user_id, seq, item: item(`${user_id}-${seq}`) });

test("a single signal and a batch both give their signals in order", () => {
  expect(realtimeSignals({ type: "unread_changed", user_id: "u" })).toEqual([{ type: "unread_changed", user_id: "u" }]);
  const batch = { type: "batch", signals: [note("a", 1), note("b", 1), note("a", 2), { type: "unread_changed", user_id: "a" }] };
  expect(realtimeSignals(batch)?.map((s) => `${s.type}:${s.user_id}:${"seq" in s ? s.seq : "-"}`)).toEqual([
    "notification:a:1",
    "notification:b:1",
    "notification:a:2",
    "unread_changed:a:-",
  ]);
});

test("malformed messages, or a batch with one malformed signal, carry nothing", () => {
  for (const bad of [null, "x", 42, {}, { type: "notification", user_id: "u" }, { type: "batch" }, { type: "batch", signals: "x" }, { type: "batch", signals: [note("a", 1), { type: "notification", user_id: 3 }] }]) {
    expect(realtimeSignals(bad)).toBeUndefined();
  }
});
