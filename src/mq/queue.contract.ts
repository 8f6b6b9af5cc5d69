/**
 * The semantics every Queue keeps (src/mq/queue.ts), as one suite. embedded.test.ts runs it against
 * the table queue on PostgreSQL and on the embedded PGlite store; amqp-contract.test.ts against
 * RabbitMQ. Messages carry ids unique to their test, so consumers of other tests never confuse them.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { waitFor } from "../../test/support/services.ts";
import { ack, dead, retry, type Consumer, type InMessage, type Queue } from "./queue.ts";
import { DEAD_REASON_HEADER, RETRY_COUNT_HEADER, SOURCE_QUEUE_HEADER, WORK_QUEUES } from "./topology.ts";

/** Small delivery limits so a poison message is dead-lettered after a few deliveries. */
export const CONTRACT_LIMITS = { events: 3, deliveries: 3, audit: 2 };

export interface QueueBackend {
  /** Opens a Queue over the backend; every call is another process's view of the same queues. */
  open(): Promise<Queue>;
  cleanup(): Promise<void>;
}

let seq = 0;
const uid = (what: string) => `${what}-${Date.now().toString(36)}-${++seq}`;

function collector(outcome = ack) {
  const seen = new Map<string, InMessage[]>();
  const handler = async (m: InMessage) => {
    if (m.messageId) seen.set(m.messageId, [...(seen.get(m.messageId) ?? []), m]);
    return outcome;
  };
  return { seen, handler };
}

export function queueContract(name: string, backend: () => Promise<QueueBackend>): void {
  describe(`Queue contract: ${name}`, () => {
    let b: QueueBackend;
    let mq: Queue;
    const consumers: Consumer[] = [];
    const extra: Queue[] = [];

    beforeAll(async () => {
      b = await backend();
      mq = await b.open();
    });
    afterEach(async () => {
      await Promise.allSettled(consumers.splice(0).map((c) => c.stop()));
    });
    afterAll(async () => {
      await Promise.allSettled([mq, ...extra].map((q) => q?.close()));
      await b?.cleanup();
    });
    async function consume(...args: Parameters<Queue["consume"]>): Promise<Consumer> {
      const c = await mq.consume(...args);
      consumers.push(c);
      return c;
    }

    test("publish → consume → ack: id, routing key, headers, no redelivery; acked is gone", async () => {
      const { seen, handler } = collector();
      await consume("events", handler, { prefetch: 10 });
      const id = uid("basic");
      await mq.publish("events", [{ body: { hello: "world" }, routingKey: "user.created", messageId: id, headers: { tenant: "t1", n: 7 } }]);
      const [m] = await waitFor(() => seen.get(id), { what: "delivery" });
      expect(m!.body).toEqual({ hello: "world" });
      expect(m!.routingKey).toBe("user.created");
      expect(m!.headers).toMatchObject({ tenant: "t1", n: 7 });
      expect(m!.redeliveries).toBe(0);
      await Promise.all(consumers.splice(0).map((c) => c.stop()));
      const after = collector();
      await consume("events", after.handler, { prefetch: 10 });
      const marker = uid("marker");
      await mq.publish("events", [{ body: {}, routingKey: "x", messageId: marker }]);
      await waitFor(() => after.seen.has(marker), { what: "marker" });
      expect(after.seen.has(id)).toBe(false);
      expect(seen.get(id)).toHaveLength(1);
    });

    test("a batch of 2000 arrives complete, each message once", async () => {
      const { seen, handler } = collector();
      await consume("deliveries", handler, { prefetch: 100 });
      const ids = Array.from({ length: 2_000 }, () => uid("batch"));
      await mq.publish("deliveries", ids.map((id) => ({ body: { id }, messageId: id })));
      await waitFor(() => ids.every((id) => seen.has(id)), { what: "all 2000 messages", timeoutMs: 30_000 });
      expect(ids.filter((id) => seen.get(id)!.length !== 1)).toEqual([]);
    });

    test("retry comes back after its delay, keeps routing key and headers, counts retries", async () => {
      const id = uid("retry");
      const arrivals: Array<{ at: number; m: InMessage }> = [];
      await consume(
        "events",
        async (m) => {
          if (m.messageId !== id) return ack;
          arrivals.push({ at: performance.now(), m });
          if (arrivals.length === 1) return retry(1_000, "provider busy");
          if (arrivals.length === 2) return retry(300, "still busy");
          return ack;
        },
        { prefetch: 5 },
      );
      await mq.publish("events", [{ body: { n: 1 }, routingKey: "order.paid", messageId: id, headers: { keep: "me" } }]);
      await waitFor(() => arrivals.length >= 3, { what: "two retries", timeoutMs: 10_000 });
      const [first, second, third] = arrivals;
      expect(second!.at - first!.at).toBeGreaterThanOrEqual(790);
      expect(third!.at - second!.at).toBeGreaterThanOrEqual(230);
      expect(first!.m.headers[RETRY_COUNT_HEADER]).toBeUndefined();
      expect(second!.m.headers[RETRY_COUNT_HEADER]).toBe(1);
      expect(third!.m.headers[RETRY_COUNT_HEADER]).toBe(2);
      for (const { m } of arrivals) {
        expect(m.routingKey).toBe("order.paid");
        expect(m.body).toEqual({ n: 1 });
        expect(m.headers.keep).toBe("me");
        expect(m.redeliveries).toBe(0);
      }
    });

    test('"dead" lands in dead-letters with the reason and the source queue', async () => {
      const dl = collector();
      await consume("dead-letters", dl.handler, { prefetch: 10 });
      const id = uid("dead");
      await consume("audit", async (m) => (m.messageId === id ? dead("template missing") : ack), { prefetch: 5 });
      await mq.publish("audit", [{ body: { a: 1 }, routingKey: "audit.thing", messageId: id }]);
      const [m] = await waitFor(() => dl.seen.get(id), { what: "dead letter" });
      expect(m!.headers[DEAD_REASON_HEADER]).toBe("template missing");
      expect(m!.headers[SOURCE_QUEUE_HEADER]).toBe(WORK_QUEUES.audit.name);
      expect(m!.routingKey).toBe("audit.thing");
      expect(m!.body).toEqual({ a: 1 });
    });

    test("a handler that always throws is redelivered, then dead-lettered at the delivery limit", async () => {
      const dl = collector();
      await consume("dead-letters", dl.handler, { prefetch: 10 });
      const id = uid("poison");
      const attempts: number[] = [];
      await consume(
        "audit",
        async (m) => {
          if (m.messageId !== id) return ack;
          attempts.push(m.redeliveries);
          throw new Error("boom");
        },
        { prefetch: 5 },
      );
      await mq.publish("audit", [{ body: { poison: true }, routingKey: "audit.poison", messageId: id }]);
      const [m] = await waitFor(() => dl.seen.get(id), { what: "poison message dead-lettered" });
      expect(attempts[0]).toBe(0);
      expect(attempts.length).toBeGreaterThanOrEqual(CONTRACT_LIMITS.audit);
      expect(attempts.length).toBeLessThanOrEqual(CONTRACT_LIMITS.audit + 1);
      expect(attempts).toEqual(attempts.map((_, i) => i));
      expect(String(m!.headers[DEAD_REASON_HEADER] ?? m!.headers["x-first-death-reason"])).toMatch(/delivery.limit/);
      expect(m!.body).toEqual({ poison: true });
    });

    test("stop() waits for handlers in flight; the message is acked, not redelivered", async () => {
      const id = uid("stop");
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let started = false;
      let finished = false;
      const c = await mq.consume(
        "deliveries",
        async (m) => {
          if (m.messageId !== id) return ack;
          started = true;
          await gate;
          finished = true;
          return ack;
        },
        { prefetch: 1 },
      );
      await mq.publish("deliveries", [{ body: {}, messageId: id }]);
      await waitFor(() => started, { what: "handler started" });
      let stopped = false;
      const stopping = c.stop().then(() => (stopped = true));
      await Bun.sleep(50); // gives stop() a chance to resolve early, which would be the bug
      expect(stopped).toBe(false);
      release();
      await stopping;
      expect(finished).toBe(true);
      const after = collector();
      await consume("deliveries", after.handler, { prefetch: 50 });
      const marker = uid("marker");
      await mq.publish("deliveries", [{ body: {}, messageId: marker }]);
      await waitFor(() => after.seen.has(marker), { what: "marker" });
      expect(after.seen.has(id)).toBe(false);
    });

    test("subscribe: every subscriber receives every realtime broadcast", async () => {
      const a: InMessage[] = [];
      const b2: InMessage[] = [];
      const sa = await mq.subscribe("realtime", (m) => void a.push(m));
      const sb = await mq.subscribe("realtime", async (m) => void b2.push(m));
      await mq.publish("realtime", [
        { body: { text: "hi" }, routingKey: "user-1", messageId: uid("rt") },
        { body: { text: "there" }, routingKey: "user-2", messageId: uid("rt") },
      ]);
      await waitFor(() => a.length === 2 && b2.length === 2, { what: "both subscribers got both" });
      expect(a.map((m) => m.routingKey)).toEqual(["user-1", "user-2"]);
      expect(b2.map((m) => m.body)).toEqual([{ text: "hi" }, { text: "there" }]);
      await sa.stop();
      await sb.stop();
    });

    test("competing consumers share a queue: each message is handled by exactly one", async () => {
      const other = await b.open();
      extra.push(other);
      const one = collector();
      const two = collector();
      await consume("events", one.handler, { prefetch: 20 });
      const c2 = await other.consume("events", two.handler, { prefetch: 20 });
      const ids = Array.from({ length: 300 }, () => uid("compete"));
      await mq.publish("events", ids.map((id) => ({ body: {}, routingKey: "c", messageId: id })));
      await waitFor(() => ids.every((id) => one.seen.has(id) || two.seen.has(id)), { what: "all handled" });
      expect(ids.filter((id) => one.seen.has(id) && two.seen.has(id))).toEqual([]);
      await c2.stop();
    });
  });
}
