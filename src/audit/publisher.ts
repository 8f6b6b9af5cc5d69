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
/** Records per AMQP message. */
export const PACK = 100;
/** Publishes in flight: one batch waits for its confirms while the next ones are on the wire. */
const MAX_IN_FLIGHT = 4;
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
  /** Records per AMQP message (default PACK); 1 publishes each record as its own message. */
  pack?: number;
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
  const pack = Math.max(1, opts.pack ?? PACK);
  if (!(maxBuffer >= 1 && batchSize >= 1)) throw new RangeError("maxBuffer and batchSize must be at least 1");

  /** n: arrival order, so batches that failed concurrently go back in their original order. */
  let buffer: Array<{ n: number; rec: AuditRecord }> = [];
  let arrivals = 0;
  const sends = new Set<Promise<void>>();
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
      pump(true);
    }, ms);
    // A pending audit flush must not keep a finished CLI process alive.
    (timer as { unref?: () => void }).unref?.();
  }

  /** Publishes one batch; on failure puts it back in front and raises the backoff. */
  async function sendOne(): Promise<void> {
    const batch = buffer.slice(0, batchSize);
    buffer = buffer.slice(batch.length);
    if (batch.length === 0) return;
    // Packed: up to PACK records per AMQP message. One message per record cost the broker as much
    // as the event itself on the accept path; the consumer unpacks (ids keep redelivery idempotent).
    const messages: OutMessage[] = [];
    for (let i = 0; i < batch.length; i += pack) {
      const part = batch.slice(i, i + pack).map(({ rec }) => rec);
      messages.push(part.length === 1 ? { body: part[0], messageId: part[0]!.id, routingKey: part[0]!.action } : { body: part, messageId: part[0]!.id, routingKey: "batch" });
    }
    try {
      await opts.queue.publish("audit", messages);
      stats.published += batch.length;
      backoffMs = 0;
    } catch (err) {
      stats.publishFailures += 1;
      // Back in order; if newer records filled the space meanwhile, the overflow is the newest.
      buffer = batch.concat(buffer).sort((a, b) => a.n - b.n);
      while (buffer.length > maxBuffer) {
        buffer.pop();
        noteDrop();
      }
      backoffMs = Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_MIN_MS, backoffMs * 2));
      log.warn("audit publish failed; will retry", { records: batch.length, buffered: buffer.length, retry_in_ms: backoffMs, err });
      throw err;
    }
  }

  /**
   * Starts publishes up to MAX_IN_FLIGHT: full batches at once, a partial one only when `partial`
   * (its flush timer fired). While the broker fails, one retry at a time after the backoff.
   */
  function pump(partial = false): void {
    clearTimeout(timer);
    timer = undefined;
    const limit = backoffMs > 0 ? 1 : MAX_IN_FLIGHT;
    while (sends.size < limit && (buffer.length >= batchSize || (partial && buffer.length > 0))) {
      const p: Promise<void> = sendOne()
        .catch(() => {})
        .finally(() => {
          sends.delete(p);
          if (buffer.length === 0 || stopped) return;
          if (backoffMs > 0) schedule(backoffMs * (0.8 + Math.random() * 0.4));
          else if (buffer.length >= batchSize) pump();
          else schedule(flushMs);
        });
      sends.add(p);
    }
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
        buffer.push({ n: arrivals++, rec });
        if (backoffMs > 0) return rec.id; // a retry is already scheduled
        if (buffer.length >= batchSize) {
          if (sends.size < MAX_IN_FLIGHT) queueMicrotask(() => pump());
        } else schedule(flushMs);
        return rec.id;
      } catch (err) {
        // A malformed input (bad time, cyclic details) must not break the caller's work.
        log.error("audit record refused", { action: (input as { action?: unknown })?.action, err });
        noteDrop();
        return undefined;
      }
    },

    async flush() {
      clearTimeout(timer);
      timer = undefined;
      await Promise.all([...sends]);
      while (buffer.length > 0) await sendOne();
    },

    async stop(deadlineMs = 5_000) {
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
      const deadline = Date.now() + deadlineMs;
      const left = () => Math.max(0, deadline - Date.now());
      await Promise.race([Promise.all([...sends]), Bun.sleep(left())]);
      while (buffer.length > 0 && left() > 0) {
        const timeout = Bun.sleep(left()).then(() => "timeout" as const);
        const r = await Promise.race([sendOne().then(() => "ok" as const, () => "failed" as const), timeout]);
        if (r === "timeout") break;
        if (r === "failed") await Bun.sleep(Math.min(backoffMs || BACKOFF_MIN_MS, left()));
      }
      if (buffer.length > 0) log.error("audit records not published before shutdown", { lost: buffer.length });
    },

    stats: () => ({ ...stats, buffered: buffer.length }),
  };
}
