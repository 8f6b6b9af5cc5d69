/**
 * What travels on the "realtime" topic (exchange notify.realtime, routing key = user id) between
 * the workers and every gateway replica, and what a socket receives. Messages name their user, so a
 * gateway decides who gets what from the message alone, never from state another process holds.
 */
import type { InboxItem } from "../store/inbox.ts";

/** A new in-app item, published by the in_app provider after the item is committed. */
export interface NotificationSignal {
  type: "notification";
  user_id: string;
  /** Per-user position: sockets drop what they already have (catch-up boundary). */
  seq: number;
  item: InboxItem;
}

/** The user's unread count may have changed: gateways recount from stored state and push it. */
export interface UnreadChangedSignal {
  type: "unread_changed";
  user_id: string;
}

export type RealtimeSignal = NotificationSignal | UnreadChangedSignal;

/**
 * Several signals in one broker message, in order (a worker's batch of in-app items: one message
 * instead of one per item; every gateway receives every message, routing keys select nothing).
 */
export interface SignalBatch {
  type: "batch";
  signals: RealtimeSignal[];
}

/** The realtime message for these signals (published as one, in order). */
export function signalsMessage(signals: RealtimeSignal[]): { routingKey: string; body: SignalBatch } {
  return { routingKey: signals.length === 1 ? signals[0]!.user_id : "batch", body: { type: "batch", signals } };
}

/** The signals a realtime message carries: one, or a batch's, in order; none if it is malformed. */
export function realtimeSignals(x: unknown): RealtimeSignal[] | undefined {
  const m = x as Partial<SignalBatch> | null;
  if (m && typeof m === "object" && m.type === "batch" && Array.isArray(m.signals)) return m.signals.every(isRealtimeSignal) ? m.signals : undefined;
  return isRealtimeSignal(x) ? [x] : undefined;
}

export function isRealtimeSignal(x: unknown): x is RealtimeSignal {
  const m = x as Partial<RealtimeSignal> | null;
  if (!m || typeof m !== "object" || typeof m.user_id !== "string") return false;
  if (m.type === "unread_changed") return true;
  return m.type === "notification" && typeof (m as NotificationSignal).seq === "number" && typeof (m as NotificationSignal).item?.id === "string";
}

/** Server → client frames of our own protocol (graphql-ws sockets get GraphQL results instead). */
export const notificationFrame = (item: InboxItem) =>
  JSON.stringify({ type: "notification", id: item.id, event: item.event, title: item.title, body: item.body, data: item.data, created_at: item.created_at });

export const unreadCountFrame = (count: number) => JSON.stringify({ type: "unread_count", count });
