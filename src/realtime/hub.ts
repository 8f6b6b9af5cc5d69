/**
 * One per gateway process: takes every signal of the realtime topic (its own auto-delete queue,
 * bound to notify.realtime) and hands it to this process's sockets of that user through Bun's
 * topic publish (`user:<id>`). Which sockets get a message is decided by the user id the message
 * carries; nothing here needs to know which other replicas exist.
 *
 * Unread counts are never carried: a signal makes the hub count from stored state and push the
 * result. Recounts are serialised per user (a change during a count causes one more count), so the
 * last pushed value always reflects the last change.
 */
import type { Server } from "bun";
import type { App } from "../app.ts";
import type { Consumer } from "../mq/queue.ts";
import { notificationFrame, realtimeSignals, unreadCountFrame, type NotificationSignal, type RealtimeSignal } from "./messages.ts";
import { realtimeMetrics } from "./metrics.ts";

export const userTopic = (userId: string) => `user:${userId}`;

/** A socket catching up after `?since=`: gets that user's live items buffered until it joins. */
export interface Holder {
  userId: string;
  buffer: NotificationSignal[];
}

export type ItemListener = (signal: NotificationSignal) => void;

export function createHub(app: App) {
  const log = app.log.child({ component: "realtime" });
  let server: Server<unknown> | undefined;
  let consumer: Consumer | undefined;
  const holders = new Map<string, Set<Holder>>();
  const listeners = new Map<string, Set<ItemListener>>();
  const counting = new Set<string>();
  const dirty = new Set<string>();

  const hasLocal = (userId: string) => (server?.subscriberCount(userTopic(userId)) ?? 0) > 0 || listeners.has(userId) || holders.has(userId);

  function onMessage(body: unknown): void {
    const signals = realtimeSignals(body);
    if (!signals) log.warn("realtime message ignored: not a signal");
    else for (const s of signals) onSignal(s);
  }

  function onSignal(body: RealtimeSignal): void {
    realtimeMetrics.signals.inc({ type: body.type });
    const uid = body.user_id;
    if (body.type === "notification") {
      if (server) server.publish(userTopic(uid), notificationFrame(body.item));
      for (const h of holders.get(uid) ?? []) h.buffer.push(body);
      for (const fn of listeners.get(uid) ?? []) fn(body);
      // The item may not be committed yet (it is announced just before): its count follows as unread_changed.
      return;
    }
    recount(uid);
  }

  /** Counts the user's unread items and pushes the number to their sockets here. */
  function recount(userId: string): void {
    if (!server || !hasLocal(userId)) return;
    if (counting.has(userId)) {
      dirty.add(userId);
      return;
    }
    counting.add(userId);
    void app.inbox
      .unreadCount(userId)
      .then((n) => server?.publish(userTopic(userId), unreadCountFrame(n)))
      .catch((err) => log.warn("unread recount failed", { err: String(err) }))
      .finally(() => {
        counting.delete(userId);
        if (dirty.delete(userId)) recount(userId);
      });
  }

  return {
    async start(s: Server<unknown>): Promise<void> {
      server = s;
      consumer = await app.queue.subscribe("realtime", (msg) => onMessage(msg.body));
    },
    async stop(): Promise<void> {
      await consumer?.stop();
      server = undefined;
    },
    recount,
    hold(userId: string): Holder {
      const h: Holder = { userId, buffer: [] };
      const set = holders.get(userId) ?? new Set();
      set.add(h);
      holders.set(userId, set);
      return h;
    },
    release(h: Holder): void {
      const set = holders.get(h.userId);
      set?.delete(h);
      if (set?.size === 0) holders.delete(h.userId);
    },
    /** New items for a user, for GraphQL subscriptions (which render per subscriber). */
    listen(userId: string, fn: ItemListener): () => void {
      const set = listeners.get(userId) ?? new Set();
      set.add(fn);
      listeners.set(userId, set);
      return () => {
        set.delete(fn);
        if (set.size === 0) listeners.delete(userId);
      };
    },
    /** For tests: messages are processed in-process without the broker. */
    onSignal: onMessage,
  };
}

export type Hub = ReturnType<typeof createHub>;
