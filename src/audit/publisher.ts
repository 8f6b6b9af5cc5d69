/**
 * What every role uses to write the audit log: `record()` is fire-and-forget, so a request or a
 * delivery never waits for (or fails because of) audit. Records are buffered in memory and published
 * to notify.audit in batches by one background loop; a broker outage is ridden out by retrying the
 * same records with backoff. The buffer is bounded: past it new records are dropped and counted, and
 * a warning names the count, because unbounded memory would take the whole process down instead.
 */
import type { Logger } from "../runtime/log.ts";
import type { OutMessage, Queue } from "../mq/queue.ts";
import { AUTHORED_CONTENT_TARGETS, normalizeRecord, redactDetails, type AuditInput, type AuditRecord } from "./record.ts";

/** ~10k records of ~1 KB: a few seconds of a busy gateway's audit, ~10 MB at worst. */
export const DEFAULT_MAX_BUFFER = 10_000;
/** One publish call; the AMQP client pipelines it under publisher confirms. */
export const DEFAULT_PUBLISH_BATCH = 500;
/** How long a lone record waits for company before it is published. */
export const DEFAULT_FLUSH_MS = 50;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 10_000;
/** At most one "dropped" warning per this interval, with the count since the last one. */
const DROP_LOG_EVERY_MS = 10_000;

export interface AuditPublisherOptions {
  queue: Pick<Queue, "publish">;
  log: Logger;
  /** The role writing (gateway, worker, ...): added to details as `role` when absent. */
  role: string;
  /** NOTIFY_AUDIT_INCLUDE_PII=true: keep message bodies and contact data in details. */
  includePii?: boolean;
  maxBuffer?: number;
  batchSize?: number;
  flushMs?: number;
}

export interface AuditPublisherStats {
  buffered: number;
  published: number;
  dropped: number;
  publishFailures: number;
}

export interface AuditPublisher {
  /** Queues a record; fills id (uuid v7) and time. Never throws, never waits. Returns the id, or undefined if dropped. */
  record(input: AuditInput): string | undefined;
  /** Publishes everything buffered now (tests, shutdown). Rejects only if a publish fails. */
  flush(): Promise<void>;
  /** Stops the loop after publishing what it can within the deadline; logs what is left unpublished. */
  stop(deadlineMs?: number): Promise<void>;
  stats(): AuditPublisherStats;
}

export function createAuditPublisher(opts: AuditPublisherOptions): AuditPublisher {
  const log = opts.log.child({ component: "audit-publisher" });
  const maxBuffer = opts.maxBuffer ?? DEFAULT_MAX_BUFFER;
  const batchSize = opts.batchSize ?? DEFAULT_PUBLISH_BATCH;
  const flushMs = opts.flushMs ?? DEFAULT_FLUSH_MS;
  if (!(maxBuffer >= 1 && batchSize >= 1)) throw new RangeError("maxBuffer and batchSize must be at least 1");

  let buffer: AuditRecord[] = [];
  let sending: Promise<void> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let backoffMs = 0;
  let stopped = false;
  const stats: AuditPublisherStats = { buffered: 0, published: 0, dropped: 0, publishFailures: 0 };
  let droppedSinceLog = 0;
  let lastDropLog = 0;

  function noteDrop(): void {
    stats.dropped += 1;
    droppedSinceLog += 1;
    const now = Date.now();
    if (now - lastDropLog >= DROP_LOG_EVERY_MS) {
      log.warn("audit buffer full; records dropped", { dropped: droppedSinceLog, dropped_total: stats.dropped, max_buffer: maxBuffer });
      lastDropLog = now;
      droppedSinceLog = 0;
    }
  }

  function schedule(ms: number): void {
    if (timer || stopped) return;
    timer = setTimeout(() => {
      timer = undefined;
      void pump();
    }, ms);
    // A pending audit flush must not keep a finished CLI process alive.
    (timer as { unref?: () => void }).unref?.();
  }

  /** Publishes one batch; on failure puts it back in front and schedules a retry with backoff. */
  async function sendOne(): Promise<boolean> {
    const batch = buffer.slice(0, batchSize);
    buffer = buffer.slice(batch.length);
    const messages: OutMessage[] = batch.map((r) => ({ body: r, messageId: r.id, routingKey: r.action }));
    try {
      await opts.queue.publish("audit", messages);
      stats.published += batch.length;
      backoffMs = 0;
      return true;
    } catch (err) {
      stats.publishFailures += 1;
      // Back in front, in order; if newer records filled the space meanwhile, the overflow is the newest.
      buffer = batch.concat(buffer);
      while (buffer.length > maxBuffer) {
        buffer.pop();
        noteDrop();
      }
      backoffMs = Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_MIN_MS, backoffMs * 2));
      log.warn("audit publish failed; will retry", { records: batch.length, buffered: buffer.length, retry_in_ms: backoffMs, err });
      throw err;
    }
  }

  async function drain(): Promise<void> {
    while (buffer.length > 0) await sendOne();
  }

  function pump(): Promise<void> {
    if (sending) return sending;
    sending = drain()
      .catch(() => {
        if (buffer.length) schedule(backoffMs * (0.8 + Math.random() * 0.4));
      })
      .finally(() => {
        sending = undefined;
      });
    return sending;
  }

  return {
    record(input) {
      try {
        if (buffer.length >= maxBuffer || stopped) {
          noteDrop();
          return undefined;
        }
        const details = redactDetails(input.details, {
          includePii: opts.includePii,
          authoredContent: AUTHORED_CONTENT_TARGETS.has(input.target.type),
        });
        if (details.role === undefined) details.role = opts.role;
        const rec = normalizeRecord({
          ...input,
          id: input.id ?? Bun.randomUUIDv7(),
          time: input.time ?? new Date().toISOString(),
          details,
        });
        buffer.push(rec);
        if (backoffMs > 0) return rec.id; // a retry is already scheduled
        if (buffer.length >= batchSize) queueMicrotask(() => void pump());
        else schedule(flushMs);
        return rec.id;
      } catch (err) {
        // A malformed input (bad time, cyclic details) must not break the caller's work.
        log.error("audit record refused", { action: (input as { action?: unknown })?.action, err });
        noteDrop();
        return undefined;
      }
    },

    async flush() {
      if (sending) await sending;
      clearTimeout(timer);
      timer = undefined;
      await drain();
    },

    async stop(deadlineMs = 5_000) {
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
      const deadline = Date.now() + deadlineMs;
      if (sending) await Promise.race([sending, Bun.sleep(deadlineMs)]);
      while (buffer.length > 0 && Date.now() < deadline) {
        try {
          await Promise.race([
            sendOne(),
            Bun.sleep(Math.max(0, deadline - Date.now())).then(() => {
              throw new Error("deadline");
            }),
          ]);
        } catch {
          await Bun.sleep(Math.min(backoffMs || BACKOFF_MIN_MS, Math.max(0, deadline - Date.now())));
        }
      }
      if (buffer.length > 0) log.error("audit records not published before shutdown", { lost: buffer.length });
    },

    stats: () => ({ ...stats, buffered: buffer.length }),
  };
}
