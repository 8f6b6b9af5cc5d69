/**
 * The embedded Queue (SPEC 6): RabbitMQ's work queues as rows of one table (migration 0008) in the
 * database notify already uses, with the semantics of src/mq/amqp.ts:
 *
 * - publish() resolves after the INSERT committed;
 * - consumers claim batches with FOR UPDATE SKIP LOCKED and hold each message under a lease that
 *   is renewed while the handler runs; a process that dies (kill -9) leaves the lease to expire and
 *   the message is delivered again (or at once on restart of the embedded all-in-one process,
 *   which owns its data directory exclusively);
 * - ack deletes the row after the handler settled; retry moves available_at by the delay (with the
 *   same jitter) and counts x-notify-retries; dead (or a delivery count past the queue's limit)
 *   moves the row to "dead-letters" with the reason and source queue headers;
 * - subscribe("realtime") is an in-process broadcast: embedded mode is one process.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "../runtime/log.ts";
import type { Sql } from "../store/db.ts";
import { createBatcher, type Batcher } from "../store/batcher.ts";
import { DEAD_REASON_HEADER, RETRY_COUNT_HEADER, ROUTING_KEY_HEADER, SOURCE_QUEUE_HEADER, WORK_QUEUES } from "./topology.ts";
import {
  QueueUnavailableError,
  type ConsumeOptions,
  type Consumer,
  type Handler,
  type InMessage,
  type OutMessage,
  type Outcome,
  type Queue,
  type QueueHealth,
  type Topic,
  type WorkQueue,
} from "./queue.ts";

/** Long enough for a send at NOTIFY_SEND_TIMEOUT_MS's default (30 s) plus renewal slack; renewed every third of it. */
const DEFAULT_LEASE_MS = 60_000;
/** An idle consumer looks for due retries this often; new publishes in this process wake it at once. */
const DEFAULT_POLL_MS = 250;
/**
 * The same when this process owns the table alone (embedded all-in-one): every message, and every
 * retry's due time, comes from this process, which wakes its consumers itself (a timer per retry),
 * so polling is only a safety net. At 250 ms the idle process spent ≈ 7 % of a core on polls.
 */
const EXCLUSIVE_POLL_MS = 5_000;
/** A retry waits 80–100% of the asked delay, as on RabbitMQ. */
const RETRY_JITTER = 0.2;
/** Longest retry delay, the RabbitMQ path's last level: longer waits belong to scheduled sends. */
const MAX_RETRY_MS = 3_600_000;

const TOPIC_QUEUE: Record<Exclude<Topic, "realtime">, WorkQueue> = { events: "events", deliveries: "deliveries", audit: "audit" };

export interface EmbeddedQueueOptions {
  sql: Sql;
  log: Logger;
  instanceId?: string;
  /** Overrides the per-queue delivery limit of topology.ts (tests use a small one). */
  deliveryLimits?: Partial<Record<WorkQueue, number>>;
  leaseMs?: number;
  pollMs?: number;
  /**
   * This process is the only one using the table (embedded all-in-one owns its data directory):
   * leases left by a previous, crashed run are released at once instead of after they expire.
   */
  exclusive?: boolean;
}

interface Row {
  id: string;
  routing_key: string;
  message_id: string | null;
  headers: Record<string, unknown>;
  body: unknown;
  deliveries: number;
}

export function createEmbeddedQueue(opts: EmbeddedQueueOptions): Queue {
  return new EmbeddedQueue(opts);
}

class EmbeddedQueue implements Queue {
  readonly kind = "embedded" as const;
  private readonly sql: Sql;
  private readonly log: Logger;
  private readonly owner: string;
  private readonly limits: Record<WorkQueue, number>;
  readonly leaseMs: number;
  readonly pollMs: number;
  private readonly wakers = new Map<WorkQueue, Set<() => void>>();
  private readonly subscribers = new Set<(msg: InMessage) => void | Promise<void>>();
  private readonly runners = new Set<Runner>();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private recovered?: Promise<void>;
  /** Acks of every runner leave together: one DELETE per batch instead of one per message. */
  readonly acks: Batcher<string, void>;
  private lastError?: string;
  private closed = false;

  constructor(private readonly opts: EmbeddedQueueOptions) {
    this.sql = opts.sql;
    this.log = opts.log.child({ component: "embedded-queue" });
    this.owner = opts.instanceId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    const limits = {} as Record<WorkQueue, number>;
    for (const [name, spec] of Object.entries(WORK_QUEUES) as [WorkQueue, (typeof WORK_QUEUES)[WorkQueue]][]) {
      limits[name] = opts.deliveryLimits?.[name] ?? spec.deliveryLimit;
    }
    this.limits = limits;
    this.leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
    this.pollMs = opts.pollMs ?? (opts.exclusive ? EXCLUSIVE_POLL_MS : DEFAULT_POLL_MS);
    this.acks = createBatcher<string, void>(
      async (ids) => {
        await this.sql`DELETE FROM queue_messages WHERE id = ANY(${ids}::bigint[])`;
        return ids.map(() => undefined);
      },
      { maxBatch: 500, maxInFlight: 1 },
    );
  }

  async publish(topic: Topic, messages: OutMessage[]): Promise<void> {
    if (this.closed) throw new QueueUnavailableError("embedded queue is closed");
    if (messages.length === 0) return;
    if (topic === "realtime") return this.broadcast(messages);
    const queue = TOPIC_QUEUE[topic];
    try {
      await this.insert(queue, messages.map((m) => ({ routingKey: m.routingKey ?? "", messageId: m.messageId ?? null, headers: m.headers ?? {}, body: m.body, json: m.json })));
      this.ok();
    } catch (err) {
      this.failed(err);
      throw new QueueUnavailableError(`embedded queue: publish failed: ${(err as Error).message}`, { cause: err });
    }
    this.wake(queue);
  }

  async insert(queue: WorkQueue, rows: Array<{ routingKey: string; messageId: string | null; headers: Record<string, unknown>; body: unknown; json?: string }>, delayMs = 0): Promise<void> {
    await this.sql`
      INSERT INTO queue_messages (queue, routing_key, message_id, headers, body, available_at)
      SELECT ${queue}, r.k, r.m, r.h::jsonb, r.b::jsonb, now() + make_interval(secs => ${delayMs / 1000})
      FROM unnest(${rows.map((r) => r.routingKey)}::text[], ${rows.map((r) => r.messageId)}::text[],
                  ${rows.map((r) => JSON.stringify(r.headers))}::text[], ${rows.map((r) => r.json ?? JSON.stringify(r.body ?? null))}::text[]) AS r(k, m, h, b)`;
  }

  async consume<T = unknown>(queue: WorkQueue, handler: Handler<T>, opts: ConsumeOptions): Promise<Consumer> {
    await this.recover();
    const runner = new Runner(this, queue, handler as Handler, Math.max(1, opts.prefetch), this.limits[queue]);
    this.runners.add(runner);
    runner.start();
    return { stop: async () => {
      await runner.stop();
      this.runners.delete(runner);
    } };
  }

  async subscribe<T = unknown>(_topic: "realtime", handler: (msg: InMessage<T>) => void | Promise<void>): Promise<Consumer> {
    const h = handler as (msg: InMessage) => void | Promise<void>;
    this.subscribers.add(h);
    return { stop: async () => void this.subscribers.delete(h) };
  }

  health(): QueueHealth {
    if (this.closed) return { ok: false, detail: "closed" };
    return this.lastError ? { ok: false, detail: this.lastError } : { ok: true, detail: "embedded (PostgreSQL table)" };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.runners].map((r) => r.stop()));
    this.runners.clear();
    this.subscribers.clear();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  // ── internals shared with the runners ───────────────────────────────────────────────────────

  get instance(): string {
    return this.owner;
  }

  get db(): Sql {
    return this.sql;
  }

  logger(): Logger {
    return this.log;
  }

  ok(): void {
    this.lastError = undefined;
  }

  failed(err: unknown): void {
    this.lastError = (err as Error).message ?? String(err);
  }

  onWake(queue: WorkQueue, fn: () => void): () => void {
    let set = this.wakers.get(queue);
    if (!set) this.wakers.set(queue, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  wake(queue: WorkQueue): void {
    for (const fn of this.wakers.get(queue) ?? []) fn();
  }

  /** Wakes the queue's consumers when a message this process delayed becomes due. */
  wakeAfter(queue: WorkQueue, ms: number): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.wake(queue);
    }, ms + 5);
    timer.unref();
    this.timers.add(timer);
  }

  private broadcast(messages: OutMessage[]): void {
    for (const m of messages) {
      const msg: InMessage = { body: structuredClone(m.body), messageId: m.messageId, routingKey: m.routingKey ?? "", headers: { ...m.headers }, redeliveries: 0 };
      for (const h of this.subscribers) {
        // Broadcasts are best effort, as on RabbitMQ: a failing subscriber is logged, never retried.
        queueMicrotask(() => {
          Promise.resolve()
            .then(() => h(msg))
            .catch((err) => this.log.warn("embedded realtime handler failed", { message_id: m.messageId, err }));
        });
      }
    }
  }

  /** Releases leases a crashed previous run left behind, when this process owns the table alone. */
  private recover(): Promise<void> {
    this.recovered ??= (async () => {
      if (!this.opts.exclusive) return;
      const released = await this.sql`
        UPDATE queue_messages SET available_at = now(), leased_by = NULL
        WHERE leased_by IS NOT NULL AND leased_by <> ${this.owner}`;
      if (released.count) this.log.info("embedded queue: released messages held by a previous run", { count: released.count });
    })();
    return this.recovered;
  }
}

class Runner {
  private stopping = false;
  private loop?: Promise<void>;
  private readonly inFlight = new Map<string, Promise<void>>();
  private wakeUp?: () => void;
  private unwake?: () => void;
  private renewTimer?: ReturnType<typeof setInterval>;
  private readonly log: Logger;

  constructor(
    private readonly q: EmbeddedQueue,
    private readonly queue: WorkQueue,
    private readonly handler: Handler,
    private readonly prefetch: number,
    private readonly limit: number,
  ) {
    this.log = q.logger();
  }

  start(): void {
    this.unwake = this.q.onWake(this.queue, () => this.wakeUp?.());
    this.renewTimer = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.q.leaseMs / 3)));
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeUp?.();
    await this.loop;
    await Promise.allSettled(this.inFlight.values());
    clearInterval(this.renewTimer);
    this.unwake?.();
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      const room = this.prefetch - this.inFlight.size;
      let claimed: Row[] = [];
      if (room > 0) {
        try {
          claimed = await this.claim(room);
          this.q.ok();
        } catch (err) {
          this.q.failed(err);
          this.log.warn("embedded queue: claim failed; retrying", { queue: this.queue, err: (err as Error).message });
        }
      }
      for (const row of claimed) {
        const p = this.handle(row).finally(() => {
          this.inFlight.delete(row.id);
          this.wakeUp?.();
        });
        this.inFlight.set(row.id, p);
      }
      // A full batch means more may be waiting: claim again as soon as there is room.
      if (claimed.length > 0 && claimed.length === room) continue;
      // stop() may have come while the claim was in flight, when there was no wait to cut short.
      if (this.stopping) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, this.q.pollMs);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.wakeUp = done;
      });
      this.wakeUp = undefined;
    }
  }

  private async claim(n: number): Promise<Row[]> {
    const rows = await this.q.db<Row[]>`
      UPDATE queue_messages m
      SET deliveries = m.deliveries + 1, leased_by = ${this.q.instance},
          available_at = now() + make_interval(secs => ${this.q.leaseMs / 1000})
      FROM (SELECT id FROM queue_messages
            WHERE queue = ${this.queue} AND available_at <= now()
            ORDER BY available_at, id LIMIT ${n} FOR UPDATE SKIP LOCKED) c
      WHERE m.id = c.id
      RETURNING m.id::text AS id, m.routing_key, m.message_id, m.headers, m.body, m.deliveries`;
    return rows.sort((a, b) => Number(a.id) - Number(b.id));
  }

  private async renew(): Promise<void> {
    if (this.inFlight.size === 0) return;
    try {
      await this.q.db`
        UPDATE queue_messages SET available_at = now() + make_interval(secs => ${this.q.leaseMs / 1000})
        WHERE id = ANY(${[...this.inFlight.keys()]}::bigint[]) AND leased_by = ${this.q.instance}`;
    } catch (err) {
      this.log.warn("embedded queue: lease renewal failed", { queue: this.queue, err: (err as Error).message });
    }
  }

  private async handle(row: Row): Promise<void> {
    const kept = row.headers[ROUTING_KEY_HEADER];
    const routingKey = typeof kept === "string" ? kept : row.routing_key;
    const redeliveries = row.deliveries - 1;
    if (redeliveries > this.limit) {
      // RabbitMQ's x-delivery-limit: a message that keeps killing or failing its consumer stops here.
      if (this.queue === "dead-letters") return this.settle(row, () => this.q.acks.submit(row.id));
      return this.deadLetter(row, routingKey, "delivery limit reached");
    }
    let outcome: Outcome;
    try {
      outcome = await this.handler({ body: row.body, messageId: row.message_id ?? undefined, routingKey, headers: row.headers, redeliveries });
      if (!outcome || typeof outcome !== "object") throw new TypeError(`handler returned ${String(outcome)}, not an Outcome`);
    } catch (err) {
      this.log.warn("embedded queue: handler failed; requeueing", { message_id: row.message_id, redeliveries, err });
      return this.settle(row, () => this.q.db`UPDATE queue_messages SET available_at = now(), leased_by = NULL WHERE id = ${row.id}`, true);
    }
    if (outcome.type === "ack") return this.settle(row, () => this.q.acks.submit(row.id));
    if (outcome.type === "dead") {
      if (this.queue === "dead-letters") {
        this.log.warn("embedded dead letter discarded by its handler", { message_id: row.message_id, reason: outcome.reason });
        return this.settle(row, () => this.q.acks.submit(row.id));
      }
      return this.deadLetter(row, routingKey, outcome.reason);
    }
    const delayMs = Math.min(MAX_RETRY_MS, Math.round(Math.max(0, outcome.delayMs) * (1 - RETRY_JITTER * Math.random())));
    const headers = { ...row.headers, [ROUTING_KEY_HEADER]: routingKey, [RETRY_COUNT_HEADER]: (Number(row.headers[RETRY_COUNT_HEADER] ?? 0) || 0) + 1 };
    return this.settle(row, async () => {
      await this.q.db`
        UPDATE queue_messages SET headers = ${JSON.stringify(headers)}::text::jsonb, deliveries = 0, leased_by = NULL,
          available_at = now() + make_interval(secs => ${delayMs / 1000})
        WHERE id = ${row.id}`;
      this.q.wakeAfter(this.queue, delayMs);
    });
  }

  private deadLetter(row: Row, routingKey: string, reason: string): Promise<void> {
    const headers = { ...row.headers, [ROUTING_KEY_HEADER]: routingKey, [DEAD_REASON_HEADER]: reason, [SOURCE_QUEUE_HEADER]: WORK_QUEUES[this.queue].name };
    return this.settle(row, async () => {
      await this.q.db`
        UPDATE queue_messages SET queue = 'dead-letters', headers = ${JSON.stringify(headers)}::text::jsonb, deliveries = 0,
          leased_by = NULL, available_at = now(), message_id = coalesce(message_id, ${randomUUID()})
        WHERE id = ${row.id}`;
      this.q.wake("dead-letters");
    });
  }

  /**
   * Settling is one UPDATE/DELETE. If it fails the lease simply runs out and the message comes
   * back (at-least-once, as when an AMQP ack is lost with its channel).
   */
  private async settle(row: Row, op: () => Promise<unknown>, wakeSelf = false): Promise<void> {
    try {
      await op();
      if (wakeSelf) this.q.wake(this.queue);
    } catch (err) {
      this.q.failed(err);
      this.log.warn("embedded queue: settle failed; the message will be delivered again", { message_id: row.message_id, err: (err as Error).message });
    }
  }
}
