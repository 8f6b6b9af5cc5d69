/**
 * The RabbitMQ Queue against a real broker, one fresh vhost for the file. Messages carry ids unique
 * to their test, so a consumer left from an earlier test never confuses a later one.
 */
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
// Only to act as a foreign producer that publishes bytes notify would never send (malformed JSON).
import { AMQPClient } from "@cloudamqp/amqp-client";
import { createServer } from "node:net";
import { closeVhostConnections, createTestVhost, haveServices, rabbitmqctl, waitFor, type TestVhost } from "../../test/support/services.ts";
import { createLogger, type LogLevel, type Logger } from "../runtime/log.ts";
import { createAmqpQueue } from "./amqp.ts";
import { ack, dead, retry, QueueUnavailableError, type Consumer, type InMessage, type Queue } from "./queue.ts";
import {
  DEAD_REASON_HEADER,
  EXCHANGES,
  RETRY_COUNT_HEADER,
  SOURCE_QUEUE_HEADER,
  WORK_QUEUES,
  retryQueueName,
} from "./topology.ts";

// Retries wait for real delay queues and the chaos test waits for reconnects.
setDefaultTimeout(30_000);

const LEVEL = (process.env.NOTIFY_LOG_LEVEL ?? "silent") as LogLevel;
/** Small limits so a poison message reaches notify.dead-letters in a few deliveries. */
const LIMITS = { events: 3, deliveries: 3, audit: 2 };

function capturingLogger(): { log: Logger; lines: Array<{ msg: string } & Record<string, unknown>> } {
  const lines: Array<{ msg: string } & Record<string, unknown>> = [];
  const echo = createLogger(LEVEL);
  const log = createLogger("debug", {}, (line) => {
    lines.push(JSON.parse(line));
    if (echo.level !== "silent") process.stdout.write(line);
  });
  return { log, lines };
}

let seq = 0;
const uid = (what: string) => `${what}-${Date.now().toString(36)}-${++seq}`;

/** Records every message a consumer sees, by messageId, and acks it. */
function collector(outcome = ack) {
  const seen = new Map<string, InMessage[]>();
  const handler = async (m: InMessage) => {
    if (m.messageId) seen.set(m.messageId, [...(seen.get(m.messageId) ?? []), m]);
    return outcome;
  };
  return { seen, handler };
}

describe.skipIf(!(await haveServices))("amqp queue", () => {
  let vhost: TestVhost;
  let mq: Queue;
  const { log, lines } = capturingLogger();
  const consumers: Consumer[] = [];
  const extra: Queue[] = [];

  beforeAll(async () => {
    vhost = await createTestVhost();
    mq = await createAmqpQueue({ url: vhost.url, log, instanceId: "test", deliveryLimits: LIMITS });
  });

  // Consumers compete on the work queues: each test's own are stopped before the next one starts.
  afterEach(async () => {
    await Promise.allSettled(consumers.splice(0).map((c) => c.stop()));
  });

  afterAll(async () => {
    await Promise.allSettled([mq, ...extra].map((q) => q?.close()));
    await vhost?.drop();
  });

  async function consume(...args: Parameters<Queue["consume"]>): Promise<Consumer> {
    const c = await mq.consume(...args);
    consumers.push(c);
    return c;
  }

  test("declares the whole topology: quorum work queues with a delivery limit, TTL delay queues", async () => {
    expect(mq.health()).toEqual({ ok: true });
    const out = await rabbitmqctl("list_queues", "-p", vhost.name, "name", "type", "arguments");
    const queues = new Map(
      out
        .trim()
        .split("\n")
        .map((l) => l.split("\t"))
        .filter((cols) => cols[0]?.startsWith("notify."))
        .map((cols) => [cols[0]!, { type: cols[1]!, args: cols[2] ?? "" }]),
    );
    for (const [name, spec] of Object.entries(WORK_QUEUES)) {
      const q = queues.get(spec.name);
      expect(q?.type).toBe("quorum");
      expect(q?.args).toContain("x-delivery-limit");
      if (name !== "dead-letters") expect(q?.args).toContain(EXCHANGES.dead.name);
      for (const level of spec.retryDelaysMs) {
        const r = queues.get(retryQueueName(spec, level));
        expect(r?.type).toBe("classic");
        expect(r?.args).toContain(`{"x-message-ttl",${level}}`);
        expect(r?.args).toContain(spec.name);
      }
    }
    expect(queues.get(WORK_QUEUES.audit.name)?.args).toContain(`{"x-delivery-limit",${LIMITS.audit}}`);
    const exchanges = await rabbitmqctl("list_exchanges", "-p", vhost.name, "name", "type", "durable");
    for (const ex of Object.values(EXCHANGES)) expect(exchanges).toContain(`${ex.name}\t${ex.type}\ttrue`);
  });

  test("a second process re-declares without failing, even with other limits", async () => {
    const same = await createAmqpQueue({ url: vhost.url, log, instanceId: "second", deliveryLimits: LIMITS });
    const other = await createAmqpQueue({ url: vhost.url, log, instanceId: "third" }); // default limits differ
    extra.push(same, other);
    expect(same.health()).toEqual({ ok: true });
    expect(other.health()).toEqual({ ok: true });
    expect(lines.some((l) => l.msg === "amqp existing declaration differs; keeping it")).toBe(true);
    await other.publish("deliveries", [{ body: { via: "other" }, messageId: uid("other") }]);
    await same.close();
    await other.close();
  });

  test("publish → consume → ack, with id, routing key, headers and redelivery count", async () => {
    const { seen, handler } = collector();
    await consume("events", handler, { prefetch: 10 });
    const id = uid("basic");
    await mq.publish("events", [{ body: { hello: "world" }, routingKey: "user.created", messageId: id, headers: { tenant: "t1", n: 7 } }]);
    const [m] = await waitFor(() => seen.get(id), { what: "delivery" });
    expect(m!.body).toEqual({ hello: "world" });
    expect(m!.routingKey).toBe("user.created");
    expect(m!.headers).toMatchObject({ tenant: "t1", n: 7 });
    expect(m!.redeliveries).toBe(0);
  });

  test("a batch is pipelined and every message arrives", async () => {
    const { seen, handler } = collector();
    await consume("deliveries", handler, { prefetch: 200 });
    const ids = Array.from({ length: 3_000 }, () => uid("batch"));
    const started = performance.now();
    await mq.publish(
      "deliveries",
      ids.map((id) => ({ body: { id, pad: "x".repeat(1000) }, messageId: id })),
    );
    const ms = performance.now() - started;
    console.log(`  publish 3000 x 1 KB: ${ms.toFixed(0)} ms (${Math.round(3_000_000 / ms)} msg/s)`);
    await waitFor(() => ids.every((id) => seen.has(id)), { what: "all 3000 messages" });
  });

  test("retry goes through the delay queue, comes back later and counts retries", async () => {
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
    }
  });

  test('"dead" lands in notify.dead-letters with the reason and source queue', async () => {
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

  test("a handler that always throws is dead-lettered after the delivery limit", async () => {
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
    console.log(`  poison: delivered ${attempts.length} times (x-delivery-limit ${LIMITS.audit}) before dead-lettering`);
    expect(attempts[0]).toBe(0);
    expect(attempts.length).toBeGreaterThanOrEqual(LIMITS.audit);
    expect(attempts).toEqual(attempts.map((_, i) => i)); // x-delivery-count grows by one per attempt
    expect(m!.headers["x-first-death-reason"]).toBe("delivery_limit");
    expect(m!.body).toEqual({ poison: true });
  });

  test("malformed JSON from a foreign producer is dead-lettered and the consumer keeps working", async () => {
    const dl = collector();
    await consume("dead-letters", dl.handler, { prefetch: 10 });
    const { seen, handler } = collector();
    await consume("events", handler, { prefetch: 10 });
    const bad = uid("malformed");
    const good = uid("good");
    const raw = new AMQPClient(vhost.url);
    await raw.connect();
    try {
      const ch = await raw.channel();
      await ch.confirmSelect();
      await ch.basicPublish(EXCHANGES.events.name, "x.y", "{not json", { messageId: bad, deliveryMode: 2 });
    } finally {
      await raw.close();
    }
    await mq.publish("events", [{ body: { ok: true }, routingKey: "x.y", messageId: good }]);
    const [d] = await waitFor(() => dl.seen.get(bad), { what: "malformed message dead-lettered" });
    expect(d!.headers[DEAD_REASON_HEADER]).toBe("malformed JSON");
    expect(d!.body).toBe("{not json"); // the dead-letter reader gets the raw text
    await waitFor(() => seen.get(good), { what: "next message still consumed" });
    expect(seen.has(bad)).toBe(false);
  });

  test("stop() waits for handlers in flight and their acks", async () => {
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
    // Acked, not requeued: a fresh consumer never sees it again.
    const after = collector();
    const probe = await consume("deliveries", after.handler, { prefetch: 50 });
    const marker = uid("marker");
    await mq.publish("deliveries", [{ body: {}, messageId: marker }]);
    await waitFor(() => after.seen.has(marker), { what: "marker" });
    expect(after.seen.has(id)).toBe(false);
    await probe.stop();
  });

  test("subscribe: every subscriber receives every realtime broadcast", async () => {
    const a: InMessage[] = [];
    const b: InMessage[] = [];
    const gateway2 = await createAmqpQueue({ url: vhost.url, log, instanceId: "gateway-2" });
    extra.push(gateway2);
    const sa = await mq.subscribe("realtime", (m) => void a.push(m));
    const sb = await gateway2.subscribe("realtime", async (m) => void b.push(m));
    await mq.publish("realtime", [
      { body: { text: "hi" }, routingKey: "user-1", messageId: uid("rt") },
      { body: { text: "there" }, routingKey: "user-2", messageId: uid("rt") },
    ]);
    await waitFor(() => a.length === 2 && b.length === 2, { what: "both subscribers got both" });
    expect(a.map((m) => m.routingKey)).toEqual(["user-1", "user-2"]);
    expect(b.map((m) => m.body)).toEqual([{ text: "hi" }, { text: "there" }]);
    await sa.stop();
    await sb.stop();
    await gateway2.close();
  });

  test("broker drops every connection mid-stream: publishers and consumers recover, nothing confirmed is lost", async () => {
    const consumed = new Set<string>();
    const prefix = uid("chaos");
    await consume(
      "deliveries",
      async (m) => {
        if (m.messageId?.startsWith(prefix)) consumed.add(m.messageId);
        return ack;
      },
      { prefetch: 50 },
    );
    const lostBefore = lines.filter((l) => l.msg === "amqp connection lost; reconnecting").length;
    let dropped = false;
    const closing = closeVhostConnections(vhost.name).then(() => (dropped = true));
    const confirmed: string[] = [];
    let rejected = 0;
    let next = 0;
    const TOTAL = 2_000;
    const BATCH = 20;
    // Four publishers keep batches in flight until the broker has dropped the connection and at
    // least TOTAL messages went out, so some publishes are cut off mid-confirm.
    const publisher = async () => {
      while (!dropped || next < TOTAL) {
        const batch = Array.from({ length: BATCH }, () => `${prefix}-${next++}`);
        for (;;) {
          try {
            await mq.publish("deliveries", batch.map((id) => ({ body: { id, pad: "x".repeat(1000) }, messageId: id })));
            confirmed.push(...batch);
            break;
          } catch (err) {
            expect(err).toBeInstanceOf(QueueUnavailableError);
            rejected++;
            await waitFor(() => mq.health().ok, { what: "reconnected", timeoutMs: 10_000 });
          }
        }
      }
    };
    await Promise.all([publisher(), publisher(), publisher(), publisher()]);
    await closing;
    await waitFor(() => confirmed.every((id) => consumed.has(id)), { what: "every confirmed message consumed", timeoutMs: 30_000 });
    expect(confirmed.length).toBeGreaterThanOrEqual(TOTAL);
    expect(consumed.size).toBe(confirmed.length);
    expect(rejected).toBeGreaterThan(0); // batches in flight at the drop rejected; none resolved unconfirmed
    expect(lines.filter((l) => l.msg === "amqp connection lost; reconnecting").length).toBeGreaterThan(lostBefore);
    expect(mq.health()).toEqual({ ok: true });
    console.log(`  chaos: ${confirmed.length} confirmed, ${consumed.size} distinct consumed, ${rejected} publish calls rejected and retried`);
  });

  test("a realtime subscription is re-created after the broker drops the connection", async () => {
    const got: InMessage[] = [];
    const sub = await mq.subscribe("realtime", (m) => void got.push(m));
    consumers.push(sub);
    const lostBefore = lines.filter((l) => l.msg === "amqp connection lost; reconnecting").length;
    await closeVhostConnections(vhost.name);
    await waitFor(() => lines.filter((l) => l.msg === "amqp connection lost; reconnecting").length > lostBefore, { what: "drop noticed" });
    // Broadcasts sent before the new queue is bound are lost by design (best effort): keep pinging.
    const id = uid("rt-after");
    await waitFor(
      async () => {
        if (mq.health().ok) await mq.publish("realtime", [{ body: { ping: true }, routingKey: "u", messageId: id }]);
        return got.some((m) => m.messageId === id);
      },
      { what: "broadcast after reconnect", intervalMs: 50 },
    );
  });

  test("publish rejects quickly with QueueUnavailableError when RabbitMQ is unreachable", async () => {
    const port = await closedPort();
    const q = await createAmqpQueue({ url: `amqp://guest:guest@127.0.0.1:${port}/`, log });
    extra.push(q);
    const health = q.health();
    expect(health.ok).toBe(false);
    expect(health.detail).toContain("disconnected");
    expect(JSON.stringify(lines)).not.toContain("guest:guest");
    const started = performance.now();
    const err = await q.publish("events", [{ body: {}, routingKey: "x" }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QueueUnavailableError);
    expect(performance.now() - started).toBeLessThan(3_000);
    await q.close();
  });

  test("wrong credentials fail at start instead of retrying forever", async () => {
    const u = new URL(vhost.url);
    u.password = "wrong";
    const err = await createAmqpQueue({ url: u.toString(), log }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QueueUnavailableError);
    expect(String((err as Error).message)).not.toContain("wrong");
  });
});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}
