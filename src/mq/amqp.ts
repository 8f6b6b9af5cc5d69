/**
 * The RabbitMQ implementation of Queue (src/mq/queue.ts), and the only module that imports the AMQP
 * client.
 *
 * One connection per process, re-established with backoff after any loss. Every (re)connect declares
 * the whole topology of topology.ts, opens one confirm channel shared by every publisher, and gives
 * each consumer its own channel again. Publishes are pipelined on the confirm channel and resolve
 * only on the broker's confirm; whatever is unconfirmed when the connection drops rejects with
 * QueueUnavailableError, so the caller retries (at-least-once, messageId for idempotency).
 *
 * Longer than our usual file because only this module may import the client; it reads in four
 * sections: connection, publishing, consuming, topology.
 */
import { AMQPClient, type AMQPChannel, type AMQPConsumer, type AMQPMessage, type AMQPProperties } from "@cloudamqp/amqp-client";
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "../runtime/log.ts";
import { createSemaphore, type Semaphore } from "../runtime/semaphore.ts";
import { redactUrl } from "../runtime/log.ts";
import {
  CONNECTION_NAME_PREFIX,
  DEAD_REASON_HEADER,
  DELIVERY_KEY,
  EXCHANGES,
  PACK_HEADER,
  RETRY_COUNT_HEADER,
  ROUTING_KEY_HEADER,
  SOURCE_QUEUE_HEADER,
  WORK_QUEUES,
  retryLevel,
  retryQueueName,
} from "./topology.ts";
import {
  QueueUnavailableError,
  dead,
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

/** First reconnect delay; doubles per failed attempt up to the max (a restarting broker takes seconds). */
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;
/** TCP connect plus AMQP handshake takes milliseconds on a LAN; 5 s means the host is gone. */
const CONNECT_TIMEOUT_MS = 5_000;
/** Heartbeat (s) unless the URL sets one: notices a silently dead peer (network drop) in about 2x this. */
const DEFAULT_HEARTBEAT_S = 15;
/** publish() waits this long for a reconnect in progress, then fails so the caller retries instead of hanging. */
const DEFAULT_CONNECT_WAIT_MS = 2_000;
/** A confirm slower than this means the broker is in trouble (quorum without a leader); the caller retries. */
const DEFAULT_CONFIRM_TIMEOUT_MS = 15_000;
/**
 * Unconfirmed publishes on the confirm channel at once. Enough to keep the pipe full (confirm latency
 * of tens of ms at 25k msg/s), and bounded because the client keeps one frameMax buffer (8 KB) per
 * unconfirmed message in a pool it never shrinks.
 */
const MAX_UNCONFIRMED = 1_024;
/** A full window resumes once this many are left: refills in chunks, without a wake-up per confirm. */
const DRAIN_LOW_WATER = (MAX_UNCONFIRMED * 3) / 4;
/** Realtime is best effort: a stalled gateway loses its oldest broadcasts rather than filling the broker. */
const REALTIME_MAX_LENGTH = 10_000;
const REALTIME_PREFETCH = 256;
/** A retry waits 80–100% of the asked delay: spreads a burst of retries without exceeding the level's TTL. */
const RETRY_JITTER = 0.2;
/** Closing a channel or the connection should take milliseconds; past this the socket is dropped. */
const CLOSE_TIMEOUT_MS = 2_000;
/** Broker bookkeeping headers, not copied onto a retried or dead-lettered copy. */
const BROKER_HEADERS = new Set([
  "x-death",
  "x-delivery-count",
  "x-first-death-exchange",
  "x-first-death-queue",
  "x-first-death-reason",
  "x-last-death-exchange",
  "x-last-death-queue",
  "x-last-death-reason",
]);

export interface AmqpQueueOptions {
  url: string;
  log: Logger;
  /** Names the connection and consumer tags in the management UI. Defaults to host:pid. */
  instanceId?: string;
  /**
   * Overrides x-delivery-limit per work queue (tests use a small one). A queue that already exists
   * with another limit keeps it: RabbitMQ cannot change queue arguments in place (use a policy).
   */
  deliveryLimits?: Partial<Record<WorkQueue, number>>;
  connectWaitMs?: number;
  confirmTimeoutMs?: number;
}

/**
 * Connects to RabbitMQ and returns the Queue. Resolves even when the broker is unreachable (it keeps
 * reconnecting in the background and health() says why); rejects only when the broker refuses the
 * credentials or the vhost, which retrying cannot fix.
 */
export async function createAmqpQueue(opts: AmqpQueueOptions): Promise<Queue> {
  const queue = new AmqpQueue(opts);
  await queue.start();
  return queue;
}

class AmqpQueue implements Queue {
  readonly kind = "amqp" as const;
  private client?: AMQPClient;
  private pub?: ConfirmChannel;
  private pubOpening?: Promise<ConfirmChannel>;
  private lastError = "connecting";
  private blocked?: string;
  private closing?: Promise<void>;
  private attempt = 0;
  private timer?: ReturnType<typeof setTimeout>;
  private readonly waiters = new Set<() => void>();
  private readonly runners = new Set<Runner>();
  private readonly log: Logger;
  private readonly clientUrl: string;
  private readonly safeUrl: string;
  private readonly limits: Record<WorkQueue, number>;
  private readonly connectWaitMs: number;
  readonly confirmTimeoutMs: number;
  readonly instanceId: string;
  private consumerSeq = 0;

  constructor(opts: AmqpQueueOptions) {
    this.log = opts.log.child({ component: "amqp" });
    this.instanceId = opts.instanceId ?? `${hostname()}:${process.pid}`;
    let u: URL;
    try {
      u = new URL(opts.url);
    } catch {
      throw new TypeError("invalid AMQP URL (not shown: it may hold a password)");
    }
    if (u.protocol !== "amqp:" && u.protocol !== "amqps:") throw new TypeError(`not an AMQP URL: ${redactUrl(opts.url)}`);
    if (!u.searchParams.has("name")) u.searchParams.set("name", `${CONNECTION_NAME_PREFIX}:${this.instanceId}`);
    if (!u.searchParams.has("heartbeat")) u.searchParams.set("heartbeat", String(DEFAULT_HEARTBEAT_S));
    this.clientUrl = u.toString();
    this.safeUrl = redactUrl(opts.url);
    const limits = {} as Record<WorkQueue, number>;
    for (const [name, spec] of entries(WORK_QUEUES)) limits[name] = opts.deliveryLimits?.[name] ?? spec.deliveryLimit;
    this.limits = limits;
    this.connectWaitMs = opts.connectWaitMs ?? DEFAULT_CONNECT_WAIT_MS;
    this.confirmTimeoutMs = opts.confirmTimeoutMs ?? DEFAULT_CONFIRM_TIMEOUT_MS;
  }

  async start(): Promise<void> {
    try {
      await this.connect();
    } catch (err) {
      if (isRefused(err)) {
        this.closing = Promise.resolve();
        throw new QueueUnavailableError(`RabbitMQ refused ${this.safeUrl}: ${message(err)}`, { cause: err });
      }
      this.lastError = message(err);
      this.log.warn("amqp broker unreachable; reconnecting in the background", { url: this.safeUrl, err: this.lastError });
      this.scheduleReconnect();
    }
  }

  // ── connection ────────────────────────────────────────────────────────────────────────────────

  private async connect(): Promise<void> {
    const started = Date.now();
    const client = new AMQPClient(this.clientUrl, undefined, null);
    guardProtocolHeaderWrite(client);
    client.onerror = (err) => this.log.debug("amqp connection error", { err: err.message });
    client.ondisconnect = (err) => this.onDisconnect(client, err);
    client.onblocked = (reason) => {
      this.blocked = reason;
      this.log.warn("amqp broker blocked publishing", { reason });
    };
    client.onunblocked = () => {
      this.blocked = undefined;
      this.log.info("amqp broker unblocked publishing");
    };
    let pub: ConfirmChannel;
    try {
      await withTimeout(client.connect(), CONNECT_TIMEOUT_MS, "connect timed out");
      await declareTopology(client, this.limits, this.log);
      pub = await ConfirmChannel.open(client, this.log);
    } catch (err) {
      void shutdown(client);
      throw err;
    }
    if (this.closing) return void shutdown(client);
    this.client = client;
    this.pub = pub;
    this.blocked = undefined;
    this.log.info("amqp connected", { url: this.safeUrl, attempt: this.attempt, duration_ms: Date.now() - started });
    this.attempt = 0;
    for (const wake of this.waiters) wake();
    for (const runner of this.runners) void runner.attach(client);
  }

  private onDisconnect(client: AMQPClient, err?: Error): void {
    if (client !== this.client) return;
    this.client = undefined;
    this.pub = undefined;
    this.lastError = err?.message ?? "connection lost";
    this.log.warn("amqp connection lost; reconnecting", { err: this.lastError });
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closing || this.timer) return;
    const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** this.attempt++);
    // Half fixed, half random: replicas that lost the broker together do not come back in lockstep.
    const wait = ceiling / 2 + (Math.random() * ceiling) / 2;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect().catch((err: unknown) => {
        this.lastError = message(err);
        const fields = { attempt: this.attempt, err: this.lastError };
        if (this.attempt <= 3 || this.attempt % 20 === 0) this.log.warn("amqp reconnect failed", fields);
        else this.log.debug("amqp reconnect failed", fields);
        this.scheduleReconnect();
      });
    }, wait);
  }

  /** True while `client` is the live connection (runners use it to tell a lost connection from a lost channel). */
  isCurrent(client: AMQPClient): boolean {
    return this.client === client && !client.closed;
  }

  private waitConnected(ms: number): Promise<void> {
    if (this.client || this.closing) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.waiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  /** The live confirm channel; waits briefly for a reconnect in progress. */
  private async publisher(): Promise<ConfirmChannel> {
    if (!this.client) await this.waitConnected(this.connectWaitMs);
    if (this.closing) throw new QueueUnavailableError("queue is closed");
    const client = this.client;
    if (!client) throw new QueueUnavailableError(`RabbitMQ unavailable: ${this.lastError}`);
    if (this.blocked) throw new QueueUnavailableError(`RabbitMQ blocks publishing: ${this.blocked}`);
    if (this.pub && !this.pub.closed) return this.pub;
    // The channel was closed by a channel error on a live connection: open another one.
    this.pubOpening ??= ConfirmChannel.open(client, this.log)
      .then((pub) => {
        if (this.client === client) this.pub = pub;
        return pub;
      })
      .finally(() => (this.pubOpening = undefined));
    return this.pubOpening;
  }

  // ── Queue ─────────────────────────────────────────────────────────────────────────────────────

  async publish(topic: Topic, messages: OutMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const durable = topic !== "realtime";
    const timestamp = new Date();
    // Serialise first: a body JSON cannot represent is the caller's bug, reported before anything is sent.
    const list: Array<OutMessage & { exchange?: string }> = topic === "events" ? packEvents(messages) : messages;
    const out = list.map((m) => ({
      exchange: m.exchange ?? EXCHANGES[topic].name,
      key: topic === "deliveries" ? DELIVERY_KEY : (m.routingKey ?? ""),
      body: m.json ?? JSON.stringify(m.body) ?? "null",
      props: {
        contentType: "application/json",
        deliveryMode: durable ? 2 : 1,
        messageId: m.messageId ?? randomUUID(),
        timestamp,
        headers: m.headers,
      } satisfies AMQPProperties,
    }));
    try {
      const pub = await this.publisher();
      const pending: Promise<void>[] = [];
      // One socket write per batch instead of one per message: the client writes each publish on
      // its own, and that write was the largest cost of the gateway's accept path in a profile.
      const socket = (this.client as unknown as { socket?: { cork?(): void; uncork?(): void } } | undefined)?.socket;
      socket?.cork?.();
      try {
        for (const m of out) {
          if (pub.full) {
            socket?.uncork?.();
            await pub.drained();
            if (pub.closed) throw new QueueUnavailableError("connection lost while publishing");
            socket?.cork?.();
          }
          // Realtime is not mandatory: no gateway listening is normal, not an error.
          pending.push(pub.send(m.exchange, m.key, m.body, m.props, durable));
        }
      } finally {
        socket?.uncork?.();
      }
      await confirmed(pending, pub, this.confirmTimeoutMs);
    } catch (err) {
      throw unavailable(err);
    }
  }

  /** Publishes a copy of a consumed message or of one event of a pack (retry, dead-letter) and waits for its confirm. */
  async republish(exchange: string, routingKey: string, body: string | Uint8Array, props: AMQPProperties): Promise<void> {
    try {
      const pub = await this.publisher();
      if (pub.full) await pub.drained();
      await confirmed([pub.send(exchange, routingKey, body, props, true)], pub, this.confirmTimeoutMs);
    } catch (err) {
      throw unavailable(err);
    }
  }

  async consume<T = unknown>(queue: WorkQueue, handler: Handler<T>, opts: ConsumeOptions): Promise<Consumer> {
    if (!Number.isInteger(opts.prefetch) || opts.prefetch < 1 || opts.prefetch > 65_535) {
      throw new RangeError(`prefetch must be an integer in 1..65535, got ${opts.prefetch}`);
    }
    return this.run(new WorkRunner(this, this.log.child({ queue: WORK_QUEUES[queue].name }), queue, handler as Handler, opts.prefetch));
  }

  async subscribe<T = unknown>(topic: "realtime", handler: (msg: InMessage<T>) => void | Promise<void>): Promise<Consumer> {
    return this.run(new BroadcastRunner(this, this.log.child({ exchange: EXCHANGES[topic].name }), handler as (msg: InMessage) => void | Promise<void>));
  }

  private async run(runner: Runner): Promise<Consumer> {
    if (this.closing) throw new QueueUnavailableError("queue is closed");
    this.runners.add(runner);
    // Attached now when connected (so the caller knows it is live), else on the next connect.
    if (this.client) await runner.attach(this.client);
    return runner;
  }

  forget(runner: Runner): void {
    this.runners.delete(runner);
  }

  consumerTag(what: string): string {
    return `${CONNECTION_NAME_PREFIX}:${this.instanceId}:${what}:${++this.consumerSeq}`;
  }

  health(): QueueHealth {
    if (this.closing) return { ok: false, detail: "closed" };
    if (!this.client) return { ok: false, detail: `disconnected: ${this.lastError}` };
    if (this.blocked) return { ok: false, detail: `publishing blocked by the broker: ${this.blocked}` };
    return { ok: true };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      clearTimeout(this.timer);
      this.timer = undefined;
      for (const wake of this.waiters) wake();
      await Promise.allSettled([...this.runners].map((r) => r.stop()));
      const client = this.client;
      this.client = undefined;
      this.pub = undefined;
      if (client) await shutdown(client);
      this.log.info("amqp closed");
    })();
    return this.closing;
  }
}

// ── publishing ──────────────────────────────────────────────────────────────────────────────────

type ConfirmEntry = [tag: number, resolve: (tag: number) => void, reject: (err?: Error) => void];

/**
 * A channel in confirm mode. send() resolves when the broker confirmed the message, and rejects on a
 * nack, on a return (unroutable, mandatory), or when the channel closes first.
 *
 * It reaches into two @cloudamqp/amqp-client 4.1.1 internals (pinned exactly in package.json):
 * - on close the client rejects each pending confirm promise, some of them before basicPublish has
 *   chained them (their socket write callback is still pending), which Bun treats as a fatal
 *   unhandled rejection; we resolve them with -1 instead and send() turns that into a rejection;
 * - likewise a nack rejects the pending promise; we record the tag and let it resolve.
 */
class ConfirmChannel {
  private readonly nacked = new Set<number>();
  private readonly returned = new Set<string>();
  private unconfirmed = 0;
  private drainWaiters: Array<() => void> = [];
  /** Rejects when the channel closes; publish batches race against it so none waits forever. */
  readonly lost: Promise<never>;
  private lose!: (err: Error) => void;

  private constructor(
    private readonly ch: AMQPChannel,
    private readonly log: Logger,
  ) {
    this.lost = new Promise<never>((_, reject) => (this.lose = reject));
    this.lost.catch(() => {});
    const internals = ch as unknown as { unconfirmedPublishes?: ConfirmEntry[] };
    const entries = internals.unconfirmedPublishes;
    if (!Array.isArray(entries)) throw new Error("@cloudamqp/amqp-client internals changed: see ConfirmChannel in src/mq/amqp.ts");
    const setClosed = ch.setClosed.bind(ch);
    ch.setClosed = (err?: Error) => {
      for (const entry of entries) {
        const resolve = entry[1];
        entry[2] = () => resolve(-1);
      }
      this.lose(new QueueUnavailableError(`channel closed: ${err?.message ?? "by client"}`, { cause: err }));
      this.returned.clear();
      this.wakeDrainWaiters();
      setClosed(err);
    };
    const publishConfirmed = ch.publishConfirmed.bind(ch);
    ch.publishConfirmed = (tag: number, multiple: boolean, nack: boolean) => {
      if (nack) for (const [t] of entries) if (t === tag || (multiple && t < tag)) this.nacked.add(t);
      publishConfirmed(tag, multiple, false);
    };
    ch.onReturn = (msg: AMQPMessage) => {
      const id = msg.properties.messageId;
      if (id) this.returned.add(id);
      this.log.warn("amqp message returned by the broker", {
        exchange: msg.exchange,
        routing_key: msg.routingKey,
        message_id: id,
        reply: `${msg.replyCode} ${msg.replyText}`,
      });
    };
  }

  static async open(client: AMQPClient, log: Logger): Promise<ConfirmChannel> {
    const ch = await client.channel();
    await ch.confirmSelect();
    return new ConfirmChannel(ch, log);
  }

  get closed(): boolean {
    return this.ch.closed;
  }

  get full(): boolean {
    return this.unconfirmed >= MAX_UNCONFIRMED;
  }

  /** Resolves when the window has room again (DRAIN_LOW_WATER), or the channel closed. */
  drained(): Promise<void> {
    if (!this.full || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private wakeDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  send(exchange: string, routingKey: string, body: string | Uint8Array, props: AMQPProperties, mandatory: boolean): Promise<void> {
    this.unconfirmed++;
    const settle = () => {
      if (--this.unconfirmed <= DRAIN_LOW_WATER && this.drainWaiters.length) this.wakeDrainWaiters();
    };
    return this.ch.basicPublish(exchange, routingKey, body, props, mandatory).then(
      (tag) => {
        settle();
        if (tag < 0) throw new QueueUnavailableError("channel closed before the broker confirmed");
        if (this.nacked.delete(tag)) throw new QueueUnavailableError("broker refused the message (nack)");
        if (mandatory && this.returned.size && props.messageId && this.returned.delete(props.messageId)) {
          throw new QueueUnavailableError(`unroutable: no queue bound to ${exchange || "(default)"} for "${routingKey}"`);
        }
      },
      (err: unknown) => {
        settle();
        throw err;
      },
    );
  }
}

/**
 * The pinned client writes the AMQP protocol header from the socket's connect callback and drops
 * the promise of that write; when the peer resets the connection right away (a proxy or load
 * balancer with no broker behind it) the rejection is unhandled and Bun ends the process. The
 * socket's own error event already fails the connect attempt, so the write's rejection is only
 * swallowed here. Verified against @cloudamqp/amqp-client 4.1.1's AMQPClient.send.
 */
function guardProtocolHeaderWrite(client: AMQPClient): void {
  const internals = client as unknown as { send?: (bytes: Uint8Array) => Promise<void> };
  const send = internals.send;
  if (typeof send !== "function") throw new Error("@cloudamqp/amqp-client internals changed: see guardProtocolHeaderWrite in src/mq/amqp.ts");
  internals.send = function guardedSend(this: unknown, bytes: Uint8Array) {
    const p = send.call(this, bytes);
    // Only the 8-byte protocol header ("AMQP" 0 0 9 1) is sent without anyone awaiting it.
    if (bytes.length === 8 && bytes[0] === 65 && bytes[1] === 77) p.catch(() => {});
    return p;
  };
}

/**
 * Events published together travel as one broker message of up to PACK_MAX events, straight to the
 * events work queue: RabbitMQ's cost is per message (a quorum log entry, its routing and confirm),
 * and one per event was a third of the CPU an accepted event cost the machine. The worker's runner
 * unpacks them and settles each event on its own (WorkRunner.handlePack). A single event, and what
 * producers publish to notify.events themselves, stays one message routed by its event name.
 */
export const PACK_MAX = 8;

interface PackItem {
  id: string;
  key: string;
  headers: Record<string, string | number>;
  body: unknown;
}

function packEvents(messages: OutMessage[]): Array<OutMessage & { exchange?: string }> {
  if (messages.length < 2) return messages;
  const out: Array<OutMessage & { exchange?: string }> = [];
  for (let i = 0; i < messages.length; i += PACK_MAX) {
    const group = messages.slice(i, i + PACK_MAX);
    if (group.length === 1) {
      out.push(group[0]!);
      continue;
    }
    const items = group.map(
      (m) => `{"id":${JSON.stringify(m.messageId ?? randomUUID())},"key":${JSON.stringify(m.routingKey ?? "")},"headers":${JSON.stringify(m.headers ?? {})},"body":${m.json ?? JSON.stringify(m.body) ?? "null"}}`,
    );
    // The default exchange routes by queue name: a pack is for notify's own workers, not for
    // whatever else is bound to notify.events by event name.
    out.push({ exchange: "", routingKey: WORK_QUEUES.events.name, json: `[${items.join(",")}]`, body: undefined, headers: { [PACK_HEADER]: group.length } });
  }
  return out;
}

/** Waits for every confirm, failing early when the channel is lost or the broker is too slow. */
async function confirmed(pending: Promise<void>[], pub: ConfirmChannel, timeoutMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new QueueUnavailableError(`no confirm from RabbitMQ within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([Promise.all(pending), pub.lost, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ── consuming ───────────────────────────────────────────────────────────────────────────────────

/** One consumer: its own channel, re-opened after a reconnect, and the handlers it has in flight. */
abstract class Runner implements Consumer {
  private ch?: AMQPChannel;
  private consumer?: AMQPConsumer;
  private stopped?: Promise<void>;
  private retryTimer?: ReturnType<typeof setTimeout>;
  private readonly inflight = new Set<Promise<void>>();
  /** The current channel's unsettled deliveries; a reconnect starts a new one. */
  private acks?: AckBatch;

  constructor(
    protected readonly owner: AmqpQueue,
    protected readonly log: Logger,
    private readonly what: string,
  ) {}

  /** Prepares the channel (qos, declarations) and returns the queue to consume. */
  protected abstract open(ch: AMQPChannel): Promise<string>;
  /** Handles one delivery, acknowledging or rejecting it. Must not throw. */
  protected abstract handle(msg: AMQPMessage): Promise<void>;

  async attach(client: AMQPClient): Promise<void> {
    if (this.stopped || (this.ch && !this.ch.closed)) return;
    let ch: AMQPChannel | undefined;
    try {
      ch = await client.channel();
      const queue = await this.open(ch);
      const consumer = await ch.basicConsume(queue, { noAck: false, tag: this.owner.consumerTag(this.what) }, (msg) => this.dispatch(msg));
      if (this.stopped) return void ch.close().catch(() => {});
      this.ch = ch;
      this.consumer = consumer;
      const attached = ch;
      consumer.wait().then(
        () => this.lost(client, attached),
        (err: unknown) => this.lost(client, attached, err),
      );
      this.log.debug("amqp consumer attached", { queue, tag: consumer.tag });
    } catch (err) {
      ch?.close().catch(() => {});
      if (this.owner.isCurrent(client)) {
        this.log.warn("amqp consumer could not start; retrying", { err: message(err) });
        this.retryLater(client);
      }
    }
  }

  private lost(client: AMQPClient, ch: AMQPChannel, err?: unknown): void {
    if (this.ch !== ch) return;
    this.ch = undefined;
    this.consumer = undefined;
    if (this.stopped) return; // stop() closes the channel once the handlers in flight have acked
    if (!ch.closed) ch.close().catch(() => {}); // cancelled by the broker: the channel itself is still open
    // A lost connection is handled by the reconnect (which re-attaches every runner); this is a
    // channel-level loss: the broker cancelled us (queue deleted) or closed the channel on an error.
    if (this.owner.isCurrent(client)) {
      this.log.warn("amqp consumer cancelled by the broker; re-subscribing", { err: err ? message(err) : "cancelled" });
      this.retryLater(client);
    }
  }

  private retryLater(client: AMQPClient): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (this.owner.isCurrent(client)) void this.attach(client);
    }, 1_000);
  }

  private dispatch(msg: AMQPMessage): void {
    if (this.acks?.channel !== msg.channel) this.acks = new AckBatch(msg.channel);
    this.acks.delivered(msg.deliveryTag);
    const p: Promise<void> = this.handle(msg)
      .catch((err: unknown) => this.log.error("amqp delivery bookkeeping failed", { err }))
      .finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      clearTimeout(this.retryTimer);
      const { ch, consumer } = this;
      if (ch && consumer && !ch.closed) await withTimeout(consumer.cancel(), CLOSE_TIMEOUT_MS, "cancel timed out").catch(() => {});
      // Deliveries that arrived before the cancel-ok are in flight too; wait for all and their acks.
      while (this.inflight.size) await Promise.allSettled([...this.inflight]);
      if (ch && !ch.closed) await withTimeout(ch.close(), CLOSE_TIMEOUT_MS, "channel close timed out").catch(() => {});
      this.owner.forget(this);
    })();
    return this.stopped;
  }

  /** Acknowledges at the end of this event-loop turn, together with the turn's other acks (AckBatch). */
  protected ack(msg: AMQPMessage): Promise<void> {
    return this.acks?.channel === msg.channel ? this.acks.ack(msg.deliveryTag) : msg.ack();
  }

  /** Requeues (or, requeue false, dead-letters) at once; the tag leaves the ack batch first. */
  protected nack(msg: AMQPMessage, requeue: boolean): Promise<void> {
    if (this.acks?.channel === msg.channel) this.acks.settledElsewhere(msg.deliveryTag);
    return msg.nack(requeue);
  }

  /** Ack/nack failures mean the channel is gone: the broker redelivers the message, nothing to do. */
  protected async settle(op: () => Promise<void>, what: string, msg: AMQPMessage): Promise<void> {
    try {
      await op();
    } catch (err) {
      this.log.debug(`amqp ${what} not sent; the broker will redeliver`, { message_id: msg.properties.messageId, err: message(err) });
    }
  }
}

class WorkRunner extends Runner {
  private readonly calls: Semaphore;

  constructor(
    owner: AmqpQueue,
    log: Logger,
    private readonly queue: WorkQueue,
    private readonly handler: Handler,
    private readonly prefetch: number,
  ) {
    super(owner, log, queue);
    this.calls = createSemaphore(prefetch);
  }

  protected override async open(ch: AMQPChannel): Promise<string> {
    await ch.basicQos(this.prefetch);
    return WORK_QUEUES[this.queue].name;
  }

  protected override async handle(msg: AMQPMessage): Promise<void> {
    const headers = msg.properties.headers ?? {};
    const kept = headers[ROUTING_KEY_HEADER];
    const routingKey = typeof kept === "string" ? kept : msg.routingKey;
    let body: unknown;
    const text = msg.bodyToString() ?? "";
    try {
      body = JSON.parse(text);
    } catch {
      // The dead-letter queue is where malformed messages end up: its reader gets the raw text.
      if (this.queue === "dead-letters") body = text;
      else {
        this.log.warn("amqp malformed JSON; dead-lettering", { message_id: msg.properties.messageId, routing_key: routingKey });
        return this.outcome(msg, routingKey, headers, dead("malformed JSON"));
      }
    }
    const redeliveries = Number(headers["x-delivery-count"] ?? 0) || 0;
    // Packs are published to the events queue; one reaches notify.dead-letters whole when the
    // broker dead-letters it (its delivery limit), and is unpacked there too.
    if (headers[PACK_HEADER] !== undefined && (this.queue === "events" || this.queue === "dead-letters")) {
      if (isPack(body)) return this.handlePack(msg, body, headers, redeliveries);
      if (this.queue === "events") {
        this.log.warn("amqp malformed event pack; dead-lettering", { message_id: msg.properties.messageId });
        return this.outcome(msg, routingKey, headers, dead("malformed event pack"));
      }
    }
    let outcome: Outcome;
    try {
      outcome = await this.call({ body, messageId: msg.properties.messageId, routingKey, headers, redeliveries });
    } catch (err) {
      // Requeued: the quorum queue counts it, and past x-delivery-limit dead-letters it to notify.dead.
      this.log.warn("amqp handler failed; requeueing", { message_id: msg.properties.messageId, redeliveries, err });
      return this.settle(() => this.nack(msg, true), "nack", msg);
    }
    return this.outcome(msg, routingKey, headers, outcome);
  }

  /** The handler, at most `prefetch` at once: a pack brings several events in one delivery. */
  private async call(m: InMessage): Promise<Outcome> {
    const outcome = await this.calls.run(() => this.handler(m));
    if (!outcome || typeof outcome !== "object") throw new TypeError(`handler returned ${String(outcome)}, not an Outcome`);
    return outcome;
  }

  /**
   * Each event of a pack is handled and settled on its own: a retry or a dead letter is published
   * for that event alone, and one whose handler throws goes back to the work queue alone (where
   * the broker's delivery limit counts it, as for any message). The pack is acked once every event
   * is settled; if a copy cannot be published, the whole pack is requeued and the events already
   * done are seen again (the worker's claims make that harmless, as for any redelivery).
   */
  private async handlePack(msg: AMQPMessage, items: PackItem[], packHeaders: NonNullable<AMQPProperties["headers"]>, redeliveries: number): Promise<void> {
    // What the broker or a dead-lettering added to the pack (x-death, the dead reason) belongs to each event.
    const { [PACK_HEADER]: _, ...shared } = packHeaders;
    const settled = await Promise.all(
      items.map(async (item) => {
        const headers = { ...shared, ...item.headers };
        let outcome: Outcome | Requeue;
        try {
          outcome = await this.call({ body: item.body, messageId: item.id, routingKey: item.key, headers, redeliveries });
        } catch (err) {
          this.log.warn("amqp handler failed on an event of a pack; requeueing it alone", { message_id: item.id, redeliveries, err });
          outcome = { type: "requeue" };
        }
        return this.dispose(outcome, { routingKey: item.key, headers, messageId: item.id, contentType: "application/json", timestamp: msg.properties.timestamp, body: () => JSON.stringify(item.body) ?? "null" });
      }),
    );
    return this.finish(msg, settled.every(Boolean));
  }

  private async outcome(msg: AMQPMessage, routingKey: string, headers: NonNullable<AMQPProperties["headers"]>, outcome: Outcome): Promise<void> {
    const { messageId, contentType, timestamp } = msg.properties;
    const done = await this.dispose(outcome, { routingKey, headers, messageId, contentType, timestamp, body: () => msg.body ?? new Uint8Array(0) });
    return this.finish(msg, done);
  }

  /** Acks a delivery whose outcome was carried out, or requeues it when it could not be. */
  private finish(msg: AMQPMessage, done: boolean): Promise<void> {
    return done ? this.settle(() => this.ack(msg), "ack", msg) : this.settle(() => this.nack(msg, true), "nack", msg);
  }

  /**
   * Carries out an outcome for one message or one event of a pack, short of acking it: nothing for
   * an ack, nothing (but a log line) for a dead letter its reader refuses (dead-lettering it again
   * would loop through notify.dead back into this queue), else the copy published (forward()).
   * False when that copy could not be published: the caller requeues.
   */
  private async dispose(outcome: Outcome | Requeue, m: Original): Promise<boolean> {
    if (outcome.type === "ack") return true;
    if (outcome.type === "dead" && this.queue === "dead-letters") {
      this.log.warn("amqp dead letter discarded by its handler", { message_id: m.messageId, reason: outcome.reason });
      return true;
    }
    const { exchange, key, props } = this.forward(m, outcome);
    try {
      await this.owner.republish(exchange, key, m.body(), props);
    } catch (err) {
      this.log.warn(`amqp ${outcome.type} publish failed; requeueing`, { message_id: props.messageId, err: message(err) });
      return false;
    }
    this.log.debug(`amqp message ${outcome.type === "retry" ? "scheduled for retry" : outcome.type === "dead" ? "dead-lettered" : "requeued alone"}`, {
      message_id: props.messageId,
      reason: "reason" in outcome ? outcome.reason : undefined,
      via: key,
    });
    return true;
  }

  /**
   * Where a copy goes and with what properties: a retry to the delay queue of its level, a dead
   * letter to notify.dead, an event of a pack whose handler threw back to this work queue.
   */
  private forward({ routingKey, headers, messageId, contentType, timestamp }: Original, outcome: Exclude<Outcome, { type: "ack" }> | Requeue): { exchange: string; key: string; props: AMQPProperties } {
    const spec = WORK_QUEUES[this.queue];
    const copy: NonNullable<AMQPProperties["headers"]> = {};
    for (const [k, v] of Object.entries(headers)) if (!BROKER_HEADERS.has(k)) copy[k] = v;
    copy[ROUTING_KEY_HEADER] = routingKey;
    const props: AMQPProperties = {
      contentType: contentType ?? "application/json",
      deliveryMode: 2,
      // Without an id a returned copy could not be told apart; foreign producers may omit it.
      messageId: messageId ?? randomUUID(),
      timestamp,
      headers: copy,
    };
    // The default exchange routes straight to a queue by its name.
    if (outcome.type === "requeue") return { exchange: "", key: spec.name, props };
    if (outcome.type === "retry") {
      const level = retryLevel(spec, outcome.delayMs);
      const jittered = Math.round(Math.max(0, outcome.delayMs) * (1 - RETRY_JITTER * Math.random()));
      props.expiration = String(Math.min(level, jittered));
      copy[RETRY_COUNT_HEADER] = (Number(headers[RETRY_COUNT_HEADER] ?? 0) || 0) + 1;
      return { exchange: "", key: retryQueueName(spec, level), props };
    }
    copy[DEAD_REASON_HEADER] = outcome.reason;
    copy[SOURCE_QUEUE_HEADER] = spec.name;
    return { exchange: EXCHANGES.dead.name, key: routingKey, props };
  }
}

/** An event of a pack whose handler threw: back to its work queue alone. */
type Requeue = { type: "requeue" };

/** What a copy is made from: a consumed message, or one event of a pack. */
interface Original {
  routingKey: string;
  headers: NonNullable<AMQPProperties["headers"]>;
  messageId?: string;
  contentType?: string;
  timestamp?: Date;
  /** Serialised only when a copy is published. */
  body: () => string | Uint8Array;
}

function isPack(body: unknown): body is PackItem[] {
  return (
    Array.isArray(body) &&
    body.length > 0 &&
    body.every((i) => typeof i === "object" && i !== null && typeof i.id === "string" && typeof i.key === "string" && typeof i.headers === "object" && i.headers !== null && "body" in i)
  );
}

class BroadcastRunner extends Runner {
  constructor(
    owner: AmqpQueue,
    log: Logger,
    private readonly handler: (msg: InMessage) => void | Promise<void>,
  ) {
    super(owner, log, "realtime");
  }

  protected override async open(ch: AMQPChannel): Promise<string> {
    const q = await ch.queueDeclare(
      "",
      { durable: false, exclusive: true, autoDelete: true },
      { "x-max-length": REALTIME_MAX_LENGTH, "x-overflow": "drop-head" },
    );
    await ch.queueBind(q.name, EXCHANGES.realtime.name, "#");
    await ch.basicQos(REALTIME_PREFETCH);
    return q.name;
  }

  protected override async handle(msg: AMQPMessage): Promise<void> {
    try {
      const body: unknown = JSON.parse(msg.bodyToString() ?? "");
      const headers = msg.properties.headers ?? {};
      await this.handler({ body, messageId: msg.properties.messageId, routingKey: msg.routingKey, headers, redeliveries: 0 });
    } catch (err) {
      // Broadcasts are best effort: a failure is logged, never redelivered.
      this.log.warn("amqp realtime handler failed", { message_id: msg.properties.messageId, err });
    }
    return this.settle(() => this.ack(msg), "ack", msg);
  }
}

/**
 * The acks of one channel, sent together. A quorum queue writes every ack to its log as a command
 * of its own, and each ack frame is a socket write on both sides; under load most deliveries finish
 * in the same event-loop turn as others (their bookkeeping shares one statement), so the acks of a
 * turn leave at its end: one `multiple` ack for the run of finished tags with nothing unsettled
 * below it, and single acks for finished tags above an unfinished one. A multiple ack never covers
 * a delivery still being handled or one settled otherwise (a nack), because the run stops at the
 * first tag that is not finished. The delay is one turn of the loop, no timer.
 */
class AckBatch {
  /** Delivered and not yet acked or nacked, in delivery (= tag) order. */
  private readonly unsettled = new Set<number>();
  private readonly finished = new Set<number>();
  private waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];
  private scheduled = false;

  constructor(readonly channel: Pick<AMQPChannel, "basicAck">) {}

  delivered(tag: number): void {
    this.unsettled.add(tag);
  }

  /** A nack (sent at once by the caller): the tag must not be covered by a later multiple ack. */
  settledElsewhere(tag: number): void {
    this.unsettled.delete(tag);
    this.finished.delete(tag);
  }

  ack(tag: number): Promise<void> {
    this.finished.add(tag);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private flush(): void {
    this.scheduled = false;
    const waiters = this.waiters;
    this.waiters = [];
    const sends: Promise<void>[] = [];
    try {
      let upTo = -1;
      let run = 0;
      for (const tag of this.unsettled) {
        if (!this.finished.has(tag)) break;
        this.unsettled.delete(tag);
        this.finished.delete(tag);
        upTo = tag;
        run++;
      }
      if (upTo >= 0) sends.push(this.channel.basicAck(upTo, run > 1));
      for (const tag of this.finished) {
        this.unsettled.delete(tag);
        sends.push(this.channel.basicAck(tag, false));
      }
      this.finished.clear();
    } catch (err) {
      sends.push(Promise.reject(err));
    }
    Promise.all(sends).then(
      () => waiters.forEach((w) => w.resolve()),
      (err: unknown) => waiters.forEach((w) => w.reject(err)),
    );
  }
}

// ── topology ────────────────────────────────────────────────────────────────────────────────────

function workQueueArguments(queue: WorkQueue, deliveryLimit: number): Record<string, unknown> {
  const args: Record<string, unknown> = { "x-queue-type": "quorum", "x-delivery-limit": deliveryLimit };
  // notify.dead-letters cannot dead-letter into itself: past its limit a message is dropped.
  if (queue !== "dead-letters") {
    args["x-dead-letter-exchange"] = EXCHANGES.dead.name;
    // At-least-once dead-lettering keeps the message until notify.dead-letters confirmed it; it
    // requires reject-publish overflow, which never triggers here (no length limit).
    args["x-dead-letter-strategy"] = "at-least-once";
    args["x-overflow"] = "reject-publish";
  }
  return args;
}

/**
 * Declares every exchange, queue and binding of topology.ts. Idempotent; a queue that already exists
 * with other arguments (older release, operator change) is kept as it is, with a warning.
 */
async function declareTopology(client: AMQPClient, limits: Record<WorkQueue, number>, log: Logger): Promise<void> {
  let ch = await client.channel();
  const declare = async (what: string, active: (ch: AMQPChannel) => Promise<unknown>, passive: (ch: AMQPChannel) => Promise<unknown>) => {
    try {
      await active(ch);
    } catch (err) {
      if (!message(err).includes("PRECONDITION_FAILED")) throw err;
      log.warn("amqp existing declaration differs; keeping it", { what, err: message(err) });
      ch = await client.channel(); // the failed declaration closed the channel
      await passive(ch);
    }
  };
  for (const ex of Object.values(EXCHANGES)) {
    await declare(
      ex.name,
      (c) => c.exchangeDeclare(ex.name, ex.type, { durable: true }),
      (c) => c.exchangeDeclare(ex.name, ex.type, { passive: true }),
    );
  }
  for (const [queue, spec] of entries(WORK_QUEUES)) {
    await declare(
      spec.name,
      (c) => c.queueDeclare(spec.name, { durable: true, exclusive: false, autoDelete: false }, workQueueArguments(queue, limits[queue])),
      (c) => c.queueDeclare(spec.name, { passive: true }),
    );
    await ch.queueBind(spec.name, spec.exchange, spec.bindingKey);
    for (const level of spec.retryDelaysMs) {
      const name = retryQueueName(spec, level);
      const args = {
        "x-queue-type": "classic",
        "x-message-ttl": level,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": spec.name,
      };
      await declare(
        name,
        (c) => c.queueDeclare(name, { durable: true, exclusive: false, autoDelete: false }, args),
        (c) => c.queueDeclare(name, { passive: true }),
      );
    }
  }
  await ch.close();
}

// ── helpers ─────────────────────────────────────────────────────────────────────────────────────

function entries<K extends string, V>(record: Record<K, V>): Array<[K, V]> {
  return Object.entries(record) as Array<[K, V]>;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The broker said no to the credentials or the vhost: retrying cannot help. */
function isRefused(err: unknown): boolean {
  return /ACCESS_REFUSED|NOT_ALLOWED|\((403|530)\)/.test(message(err));
}

function unavailable(err: unknown): QueueUnavailableError {
  return err instanceof QueueUnavailableError ? err : new QueueUnavailableError(`RabbitMQ publish failed: ${message(err)}`, { cause: err });
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  p.catch(() => {}); // the loser of the race may still reject later
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Closes a connection politely, or drops its socket when the broker does not answer. */
async function shutdown(client: AMQPClient): Promise<void> {
  client.ondisconnect = undefined;
  try {
    if (!client.closed) await withTimeout(client.close("notify closing"), CLOSE_TIMEOUT_MS, "close timed out");
  } catch {
    // already gone or unresponsive
  } finally {
    client.socket?.destroy();
  }
}
