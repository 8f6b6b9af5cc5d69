/**
 * The narrow queue interface every role uses. Only src/mq/amqp.ts speaks AMQP; embedded mode
 * (SPEC 6) puts a PostgreSQL table queue behind the same interface.
 *
 * Semantics both implementations keep:
 * - publish() resolves only once every message is durable (publisher confirms), else rejects;
 * - a consumed message is acknowledged after its handler settles, never before;
 * - a handler's outcome decides: ack, retry after a delay (delay queues, not in-process sleeps),
 *   or dead-letter with a reason; a handler that throws is redelivered up to the delivery limit,
 *   then dead-lettered, so a poison message cannot loop.
 */

/** Where a message is published. Work queues are bound behind each topic by the topology. */
export type Topic = "events" | "deliveries" | "audit" | "realtime";

/** Durable work queues consumers compete on. */
export type WorkQueue = "events" | "deliveries" | "audit" | "dead-letters";

export interface OutMessage {
  /** JSON-serialisable body. */
  body: unknown;
  /** The body already serialised (a caller that stored the same JSON elsewhere); used instead of `body`. */
  json?: string;
  /** Topic routing key: the event name on "events", the user id on "realtime". */
  routingKey?: string;
  /** Stable id; consumers use it for idempotency. */
  messageId?: string;
  headers?: Record<string, string | number>;
}

export interface InMessage<T = unknown> {
  body: T;
  messageId?: string;
  routingKey: string;
  headers: Record<string, unknown>;
  /** How many times the broker has delivered this message before (0 on first delivery). */
  redeliveries: number;
}

export type Outcome =
  | { type: "ack" }
  | { type: "retry"; delayMs: number; reason: string }
  | { type: "dead"; reason: string };

export const ack: Outcome = { type: "ack" };
export const retry = (delayMs: number, reason: string): Outcome => ({ type: "retry", delayMs, reason });
export const dead = (reason: string): Outcome => ({ type: "dead", reason });

export type Handler<T = unknown> = (msg: InMessage<T>) => Promise<Outcome>;

export interface Consumer {
  /** Stops taking new messages and waits for handlers in flight to settle. */
  stop(): Promise<void>;
}

export interface ConsumeOptions {
  /** Messages in flight per consumer; set to the handler's concurrency. */
  prefetch: number;
}

export interface QueueHealth {
  ok: boolean;
  detail?: string;
}

export interface Queue {
  readonly kind: "amqp" | "embedded";
  publish(topic: Topic, messages: OutMessage[]): Promise<void>;
  consume<T = unknown>(queue: WorkQueue, handler: Handler<T>, opts: ConsumeOptions): Promise<Consumer>;
  /**
   * Broadcast subscription: every subscriber gets every message (one non-durable queue per
   * subscriber, removed when it goes away). Used for realtime fan-out across gateway replicas.
   */
  subscribe<T = unknown>(topic: "realtime", handler: (msg: InMessage<T>) => void | Promise<void>): Promise<Consumer>;
  health(): QueueHealth;
  close(): Promise<void>;
}

/** Thrown by publish() when the broker cannot take the message durably right now. */
export class QueueUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "QueueUnavailableError";
  }
}
