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
  /** Retry delays offered for this queue; a retry picks the smallest one at least as long as asked. */
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

/** The smallest offered level that is at least `delayMs` (or the largest one). */
export function retryLevel(queue: WorkQueueSpec, delayMs: number): number {
  return queue.retryDelaysMs.find((d) => d >= delayMs) ?? queue.retryDelaysMs[queue.retryDelaysMs.length - 1]!;
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
/** Prefix of the consumer tags and connection name a process shows in the management UI. */
export const CONNECTION_NAME_PREFIX = "notify";
