/**
 * The outbox relay. Fast path: rows committed by this process are published at once (batched, with
 * confirms) and their outbox rows deleted. Slow path: a sweeper re-publishes outbox rows older
 * than a few seconds (left by a crash or a broker outage), taking them with SKIP LOCKED so several
 * gateways never publish the same row at the same moment. Consumers are idempotent, so the rare
 * double publish (fast path slower than the sweep) costs a duplicate message, never a duplicate send.
 */
import type { Logger } from "../runtime/log.ts";
import { delay } from "../runtime/lifecycle.ts";
import { metrics } from "../runtime/metrics.ts";
import type { OutMessage, Queue } from "../mq/queue.ts";
import type { NotificationRepo } from "../store/notifications.ts";
import type { AcceptedEvent } from "../schemas/event.ts";

export interface Relay {
  enqueue(row: { id: string; event: string; payload: AcceptedEvent }): void;
  start(): void;
  stop(): Promise<void>;
}

/** Header that marks a message on notify.events as already stored (internal), vs. a producer's raw event. */
export const NOTIFICATION_HEADER = "x-notify-notification-id";

/** Outbox rows younger than this belong to the fast path. */
const SWEEP_AGE_MS = 3_000;
const SWEEP_EVERY_MS = 1_000;
const BATCH = 500;
const PURGE_EVERY_MS = 60_000;

export function toEventMessage(row: { id: string; event: string; payload: AcceptedEvent; payloadJson?: string }): OutMessage {
  return { body: row.payload, json: row.payloadJson, routingKey: row.event, messageId: row.id, headers: { [NOTIFICATION_HEADER]: row.id } };
}

export function createRelay(deps: { queue: Queue; notifications: NotificationRepo; log: Logger }): Relay {
  const log = deps.log.child({ component: "relay" });
  let buffer: Array<{ id: string; event: string; payload: AcceptedEvent }> = [];
  let flushing = 0;
  const abort = new AbortController();
  let sweeper: Promise<void> | undefined;
  const flushes = new Set<Promise<void>>();

  const flush = () => {
    while (buffer.length && flushing < 4) {
      const batch = buffer.slice(0, BATCH);
      buffer = buffer.slice(batch.length);
      flushing++;
      const p = (async () => {
        try {
          await deps.queue.publish("events", batch.map(toEventMessage));
          metrics.outboxPublished.inc({ path: "fast" }, batch.length);
          await deps.notifications.clearOutbox(batch.map((r) => r.id));
        } catch (err) {
          // Left in the outbox; the sweeper publishes them once the broker is back.
          metrics.publishFailures.inc({ topic: "events" }, batch.length);
          log.warn("publish failed, left in outbox", { count: batch.length, err: String(err) });
        } finally {
          flushing--;
        }
      })();
      flushes.add(p);
      p.finally(() => {
        flushes.delete(p);
        if (buffer.length) flush();
      });
    }
  };

  async function sweep() {
    // Both wait their turn at start: there they held the embedded store's one session (≈ 25 ms on
    // a cold catalog) while the roles were starting. Outbox rows are swept only once a few seconds
    // old, and expired idempotency keys are not honoured anyway.
    let purgedAt = Date.now();
    for (;;) {
      await delay(SWEEP_EVERY_MS, abort.signal);
      if (abort.signal.aborted) return;
      if (Date.now() - purgedAt > PURGE_EVERY_MS) {
        purgedAt = Date.now();
        // Idempotency records live 24 h; without this the table only grows.
        await deps.notifications.purgeIdempotency().catch((err) => log.debug("idempotency purge failed", { err: String(err) }));
      }
      try {
        let n: number;
        do {
          n = await deps.notifications.claimStaleOutbox(SWEEP_AGE_MS, BATCH, async (rows) => {
            await deps.queue.publish("events", rows.map(toEventMessage));
          });
          if (n) {
            metrics.outboxPublished.inc({ path: "sweep" }, n);
            log.info("outbox swept", { count: n });
          }
        } while (n === BATCH && !abort.signal.aborted);
      } catch (err) {
        log.debug("outbox sweep failed", { err: String(err) });
      }
    }
  }

  return {
    enqueue(row) {
      buffer.push(row);
      if (buffer.length === 1) queueMicrotask(flush);
      else if (buffer.length >= BATCH) flush();
    },
    start() {
      sweeper ??= sweep();
    },
    async stop() {
      flush();
      await Promise.allSettled([...flushes]);
      abort.abort();
      await sweeper;
    },
  };
}
