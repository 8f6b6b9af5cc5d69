/**
 * Test support for the audit subsystem: a tiny in-memory Queue with the semantics audit relies on
 * (prefetch window, ack only after the handler settles, retry re-delivers after the delay, dead
 * goes aside, a throwing handler is redelivered). Only the "audit" topic/queue is modelled.
 */
import type { Consumer, Handler, InMessage, OutMessage, Outcome, Queue, WorkQueue } from "../mq/queue.ts";

export interface MemoryQueue extends Queue {
  /** Messages waiting (not delivered). */
  readonly ready: InMessage[];
  /** Delivered, handler not settled yet. */
  unacked(): number;
  acked: number;
  readonly deadLettered: Array<{ msg: InMessage; reason: string }>;
  /** When set, publish() rejects with it. */
  failPublish?: Error;
  published: number;
  /** Redelivers a copy of a message, as the broker does after a lost ack. */
  redeliver(msg: InMessage): void;
}

export function createMemoryQueue(): MemoryQueue {
  const consumers = new Set<{ handler: Handler; prefetch: number; inFlight: number; stopped: boolean; settled: Set<Promise<unknown>> }>();
  const q: MemoryQueue = {
    kind: "embedded",
    ready: [],
    acked: 0,
    published: 0,
    deadLettered: [],
    unacked: () => [...consumers].reduce((n, c) => n + c.inFlight, 0),
    async publish(_topic, messages: OutMessage[]) {
      await Promise.resolve();
      if (q.failPublish) throw q.failPublish;
      for (const m of messages) {
        q.ready.push({ body: structuredClone(m.body), messageId: m.messageId, routingKey: m.routingKey ?? "", headers: { ...(m.headers ?? {}) }, redeliveries: 0 });
      }
      q.published += messages.length;
      pump();
    },
    async consume<T>(_queue: WorkQueue, handler: Handler<T>, opts: { prefetch: number }): Promise<Consumer> {
      const c = { handler: handler as Handler, prefetch: opts.prefetch, inFlight: 0, stopped: false, settled: new Set<Promise<unknown>>() };
      consumers.add(c);
      pump();
      return {
        async stop() {
          c.stopped = true;
          await Promise.all([...c.settled]);
          consumers.delete(c);
        },
      };
    },
    async subscribe() {
      throw new Error("not modelled");
    },
    health: () => ({ ok: true }),
    async close() {},
    redeliver(msg) {
      q.ready.push({ ...msg, redeliveries: msg.redeliveries + 1 });
      pump();
    },
  };

  function pump(): void {
    for (const c of consumers) {
      while (!c.stopped && c.inFlight < c.prefetch && q.ready.length > 0) {
        const msg = q.ready.shift()!;
        c.inFlight += 1;
        const p: Promise<void> = c
          .handler(msg)
          .catch((): Outcome => ({ type: "retry", delayMs: 0, reason: "handler threw" }))
          .then((o) => {
            c.inFlight -= 1;
            c.settled.delete(p);
            if (o.type === "ack") q.acked += 1;
            else if (o.type === "dead") q.deadLettered.push({ msg, reason: o.reason });
            else setTimeout(() => q.redeliver(msg), Math.min(o.delayMs, 50));
            pump();
          });
        c.settled.add(p);
      }
    }
  }
  return q;
}
