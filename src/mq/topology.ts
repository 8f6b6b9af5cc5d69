/**
 * Every exchange, queue and binding notify uses, in one place. The AMQP implementation declares
 * exactly this; nothing else names a queue.
 *
 *   notify.events (topic, key = event name) ──#──► notify.events.process (quorum)
 *   notify.deliveries (direct) ──send──► notify.deliveries.send (quorum)
 *   notify.audit (topic) ──#──► notify.audit.store (quorum)
 *   notify.realtime (topic, key = user id) ──#──► one auto-delete queue per gateway process
 *   notify.dead (fanout) ──► notify.dead-letters (quorum)
 *   retries: notify.<queue>.retry.<delay> (classic, TTL) ──dead-letter──► back to the work queue
 */
import type { Topic, WorkQueue } from "./queue.ts";

export const EXCHANGES: Record<Topic | "dead", { name: string; type: "topic" | "direct" | "fanout" }> = {
  events: { name: "notify.events", type: "topic" },
  deliveries: { name: "notify.deliveries", type: "direct" },
  audit: { name: "notify.audit", type: "topic" },
  realtime: { name: "notify.realtime", type: "topic" },
  dead: { name: "notify.dead", type: "fanout" },
};

/** Routing key used on the deliveries exchange (direct). */
export const DELIVERY_KEY = "send";

export interface WorkQueueSpec {
  name: string;
  exchange: string;
  bindingKey: string;
  /**
   * x-delivery-limit: RabbitMQ 3.10 quorum queues have no default, so a message that crashes its
   * consumer would loop forever. After this many redeliveries it goes to notify.dead.
   */
  deliveryLimit: number;
  /** Retry delays offered for this queue, ascending; a retry picks the longest one not longer than asked (retryLevel). */
  retryDelaysMs: number[];
}

/**
 * Retry delays. Exponential (×~5) with jitter applied per message below the level's TTL.
 * The last level is an hour: longer waits belong in PostgreSQL (scheduled sends), not in a queue.
 */
export const RETRY_DELAYS_MS = [1_000, 5_000, 30_000, 120_000, 600_000, 3_600_000];

export const WORK_QUEUES: Record<WorkQueue, WorkQueueSpec> = {
  events: { name: "notify.events.process", exchange: EXCHANGES.events.name, bindingKey: "#", deliveryLimit: 10, retryDelaysMs: RETRY_DELAYS_MS },
  deliveries: { name: "notify.deliveries.send", exchange: EXCHANGES.deliveries.name, bindingKey: DELIVERY_KEY, deliveryLimit: 10, retryDelaysMs: RETRY_DELAYS_MS },
  audit: { name: "notify.audit.store", exchange: EXCHANGES.audit.name, bindingKey: "#", deliveryLimit: 50, retryDelaysMs: [1_000, 5_000, 30_000] },
  "dead-letters": { name: "notify.dead-letters", exchange: EXCHANGES.dead.name, bindingKey: "", deliveryLimit: 50, retryDelaysMs: [5_000, 30_000] },
};

export function retryQueueName(queue: WorkQueueSpec, delayMs: number): string {
  return `${queue.name}.retry.${delayMs >= 60_000 ? `${delayMs / 60_000}m` : `${delayMs / 1000}s`}`;
}

/**
 * The largest offered level not longer than `delayMs` (the smallest level for shorter delays). A
 * message never comes back later than asked: one that is early finds its work not due yet and asks
 * again for the rest (a claim expiring in 35 s waits 30 s + 5 s, not the 120 s level).
 */
export function retryLevel(queue: WorkQueueSpec, delayMs: number): number {
  const levels = queue.retryDelaysMs;
  return levels.findLast((d) => d <= delayMs) ?? levels[0]!;
}

/** Header carrying the reason a message was dead-lettered by a handler. */
export const DEAD_REASON_HEADER = "x-notify-dead-reason";
/** Header naming the work queue a dead-lettered message came from. */
export const SOURCE_QUEUE_HEADER = "x-notify-source-queue";
/** Header counting retries through delay queues (x-delivery-count only counts broker redeliveries). */
export const RETRY_COUNT_HEADER = "x-notify-retries";
/**
 * Header keeping the original routing key (the event name) across a retry: the delay queue
 * dead-letters back with the work queue's name as routing key, which would lose it.
 */
export const ROUTING_KEY_HEADER = "x-notify-routing-key";
/** On a message carrying several events (src/mq/amqp.ts, packEvents): how many. */
export const PACK_HEADER = "x-notify-pack";
/** Prefix of the consumer tags and connection name a process shows in the management UI. */
export const CONNECTION_NAME_PREFIX = "notify";
