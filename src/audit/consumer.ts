/**
 * The audit role's core: consumes notify.audit.store and appends records to the store in batches.
 *
 * The Queue interface settles (acks) one message per handler call, so batching works by letting each
 * handler await the commit of the batch its record joined: handler i returns `ack` only once the
 * append containing record i has committed. Prefetch is three batches: two committing (the store
 * hashes one while the other inserts) and one filling.
 *
 * Store outage: the append fails, the batch's handlers keep waiting (their messages stay unacked in
 * RabbitMQ, the prefetch window is full, so the broker stops delivering: consumption pauses) and the
 * same batch is retried with backoff. Nothing is acked that is not committed, so nothing is lost.
 * After HOLD_MAX_MS the held messages are handed back as `retry` (delay queue), well before the
 * broker's consumer_timeout (30 min) would close our channel; if one record poisons every append,
 * that path ends in the dead-letter queue after the delivery limit instead of blocking the log.
 *
 * Redeliveries: the store skips ids it already has, so a record acked late (crash after commit,
 * before ack) is not stored twice.
 */
import type { Logger } from "../runtime/log.ts";
import { delay } from "../runtime/lifecycle.ts";
import { ack, dead, retry, type Consumer, type InMessage, type Outcome, type Queue } from "../mq/queue.ts";
import { parseAuditRecord, type AuditRecord } from "./record.ts";
import type { AuditStore } from "./store.ts";

export const DEFAULT_BATCH_SIZE = 500;
/** A lone record is stored within this long: fresh enough for "what just happened" queries. */
export const DEFAULT_FLUSH_MS = 100;
const BACKOFF_MIN_MS = 200;
const BACKOFF_MAX_MS = 15_000;
/** How long a failing batch is held unacked before it goes back to the broker as a delayed retry. */
export const HOLD_MAX_MS = 5 * 60_000;
const RETRY_DELAY_MS = 30_000;
/** Appends in flight: two overlap hashing of one batch with the commit of the previous one. */
const MAX_IN_FLIGHT = 2;

export interface AuditConsumerOptions {
  queue: Pick<Queue, "consume">;
  store: Pick<AuditStore, "append">;
  log: Logger;
  batchSize?: number;
  flushMs?: number;
  /** Overrides HOLD_MAX_MS (tests). */
  holdMaxMs?: number;
}

export interface AuditConsumerStats {
  stored: number;
  skipped: number;
  batches: number;
  appendFailures: number;
  invalid: number;
  /** True while a failing batch is being retried (the store is unavailable). */
  paused: boolean;
}

export interface AuditConsumer {
  stop(): Promise<void>;
  stats(): AuditConsumerStats;
}

interface Pending {
  record: AuditRecord;
  settle: (o: Outcome) => void;
}

export async function createAuditConsumer(opts: AuditConsumerOptions): Promise<AuditConsumer> {
  const log = opts.log.child({ component: "audit-consumer" });
  const batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
  const flushMs = opts.flushMs ?? DEFAULT_FLUSH_MS;
  const holdMaxMs = opts.holdMaxMs ?? HOLD_MAX_MS;
  if (!(batchSize >= 1)) throw new RangeError("batchSize must be at least 1");

  const stats: AuditConsumerStats = { stored: 0, skipped: 0, batches: 0, appendFailures: 0, invalid: 0, paused: false };
  let pending: Pending[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let inFlight = 0;
  const committing = new Set<Promise<void>>();
  const stopping = new AbortController();

  /** Appends one batch, retrying with backoff while the store fails; settles every handler once. */
  async function commit(batch: Pending[]): Promise<void> {
    const started = Date.now();
    let wait = BACKOFF_MIN_MS;
    for (;;) {
      try {
        const res = await opts.store.append(batch.map((p) => p.record));
        stats.stored += res.inserted;
        stats.skipped += res.skipped;
        stats.batches += 1;
        if (stats.paused) log.info("audit store available again; resuming", { held_ms: Date.now() - started });
        stats.paused = false;
        for (const p of batch) p.settle(ack);
        log.debug("audit batch stored", { records: batch.length, inserted: res.inserted, skipped: res.skipped, duration_ms: Date.now() - started });
        return;
      } catch (err) {
        stats.appendFailures += 1;
        const held = Date.now() - started;
        if (stopping.signal.aborted || held >= holdMaxMs) {
          // Hand them back: the broker keeps them (delay queue) and redelivers later.
          log.warn("audit batch not stored; returning it to the broker", { records: batch.length, held_ms: held, err });
          for (const p of batch) p.settle(retry(RETRY_DELAY_MS, "audit store unavailable"));
          return;
        }
        if (!stats.paused) log.warn("audit store unavailable; pausing consumption", { records: batch.length, err });
        stats.paused = true;
        await delay(wait * (0.8 + Math.random() * 0.4), stopping.signal);
        wait = Math.min(BACKOFF_MAX_MS, wait * 2);
      }
    }
  }

  /**
   * Up to MAX_IN_FLIGHT appends at once: the store chains the next batch while the previous one
   * inserts and commits (it keeps their order). Full batches go at once; a partial one after flushMs.
   */
  function kick(): void {
    clearTimeout(timer);
    timer = undefined;
    while (pending.length > 0 && inFlight < MAX_IN_FLIGHT) {
      const batch = pending.slice(0, batchSize);
      pending = pending.slice(batch.length);
      inFlight += 1;
      const p = commit(batch).finally(() => {
        inFlight -= 1;
        committing.delete(p);
        if (pending.length >= batchSize) kick();
        else if (pending.length > 0) timer ??= setTimeout(kick, flushMs);
      });
      committing.add(p);
    }
  }

  /** Queues one record; resolves with its outcome once the batch holding it is committed. */
  const enqueue = (record: AuditRecord) =>
    new Promise<Outcome>((settle) => {
      pending.push({ record, settle });
      if (pending.length >= batchSize) {
        if (inFlight < MAX_IN_FLIGHT) kick();
      } else timer ??= setTimeout(kick, flushMs);
    });

  const handler = async (msg: InMessage): Promise<Outcome> => {
    // A message holds one record, or an array of them (the publisher packs records).
    const bodies = Array.isArray(msg.body) ? msg.body : [msg.body];
    const records: AuditRecord[] = [];
    for (const body of bodies) {
      const parsed = parseAuditRecord(body);
      if (parsed.ok) records.push(parsed.record);
      else {
        stats.invalid += 1;
        log.warn("invalid audit record dropped", { message_id: msg.messageId, routing_key: msg.routingKey, reason: parsed.error });
      }
    }
    if (records.length === 0) return dead(`invalid audit record${bodies.length > 1 ? "s" : ""}`);
    const outcomes = await Promise.all(records.map(enqueue));
    // Any part handed back: the whole message comes back later; parts already stored are skipped by id.
    return outcomes.find((o) => o.type !== "ack") ?? ack;
  };

  // Batches committing plus one filling.
  // Messages carry up to 100 records each (packed) or one: at most 300 in hand bounds memory either
  // way (≤ 30k records) and still fills batches when records arrive one per message.
  const consumer: Consumer = await opts.queue.consume("audit", handler, { prefetch: Math.min(300, batchSize * (MAX_IN_FLIGHT + 1)) });
  log.info("audit consumer started", { batch_size: batchSize, flush_ms: flushMs });

  return {
    async stop() {
      // Stop taking messages, then commit what is buffered (one attempt; else back to the broker).
      const stopped = consumer.stop();
      stopping.abort();
      kick();
      while (committing.size > 0 || pending.length > 0) {
        await Promise.all([...committing]);
        if (pending.length > 0) kick();
      }
      await stopped;
    },
    stats: () => ({ ...stats }),
  };
}
