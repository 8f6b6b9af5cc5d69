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
import { createAmqpQueue, PACK_MAX } from "./amqp.ts";
import { ack, dead, retry, QueueUnavailableError, type Consumer, type InMessage, type Queue } from "./queue.ts";
import {
  DEAD_REASON_HEADER,
  EXCHANGES,
  PACK_HEADER,
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

// Queue semantics shared with the embedded queue (ack, batch, retry, dead, delivery limit, stop,
// subscribe) run in queue.contract.ts via amqp-contract.test.ts; this file keeps what is AMQP-only.
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

  /** "ready,unacknowledged" for a queue of this vhost, as the broker reports them (they lag a little). */
  async function queueCounts(name: string): Promise<string | undefined> {
    const row = (await rabbitmqctl("list_queues", "-p", vhost.name, "name", "messages_ready", "messages_unacknowledged")).split("\n").find((l) => l.startsWith(`${name}\t`));
    return row?.split("\t").slice(1).join();
  }

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

  test("events published together travel packed, and each is settled on its own: ack, retry, dead, a throw", async () => {
    const prefix = uid("pack");
    const TOTAL = PACK_MAX + 4;
    const id = (i: number) => `${prefix}-${i}`;
    const [RETRY, DEAD, THROW] = [id(3), id(7), id(PACK_MAX + 1)];
    await mq.publish("events", Array.from({ length: TOTAL }, (_, i) => ({ body: { i }, routingKey: "pack.test", messageId: id(i), headers: { h: `v${i}` } })));
    // Two broker messages carry the events: PACK_MAX and four.
    const ready = () => queueCounts(WORK_QUEUES.events.name);
    await waitFor(async () => (await ready()) === "2,0", { what: "two messages ready (the queue's counts lag a little)" });
    const dl = collector();
    await consume("dead-letters", dl.handler, { prefetch: 10 });
    const { seen, handler } = collector();
    await consume(
      "events",
      async (m) => {
        await handler(m);
        const times = seen.get(m.messageId!)!.length;
        if (m.messageId === RETRY && times === 1) return retry(1_000, "later");
        if (m.messageId === DEAD) return dead("refused");
        if (m.messageId === THROW && times === 1) throw new Error("handler failed");
        return ack;
      },
      { prefetch: 10 },
    );
    await waitFor(() => seen.get(RETRY)?.length === 2 && seen.get(THROW)?.length === 2 && dl.seen.has(DEAD), { what: "the retried and the thrown event back, the dead one dead-lettered" });
    await waitFor(async () => (await ready()) === "0,0", { what: "both packs acknowledged" });
    for (let i = 0; i < TOTAL; i++) {
      const got = seen.get(id(i))!;
      expect([id(i), got.length]).toEqual([id(i), id(i) === RETRY || id(i) === THROW ? 2 : 1]);
      for (const m of got) expect([m.body, m.routingKey, m.headers.h, m.headers[PACK_HEADER]]).toEqual([{ i }, "pack.test", `v${i}`, undefined]);
    }
    expect(seen.get(RETRY)![1]!.headers[RETRY_COUNT_HEADER]).toBe(1);
    const [d] = dl.seen.get(DEAD)!;
    expect([d!.body, d!.routingKey, d!.headers[DEAD_REASON_HEADER], d!.headers[SOURCE_QUEUE_HEADER], d!.headers.h]).toEqual([{ i: 7 }, "pack.test", "refused", WORK_QUEUES.events.name, "v7"]);
    expect(dl.seen.size).toBe(1);
  });

  test("a pack that reaches the dead letters whole is read there one event at a time, with the pack's reason", async () => {
    const prefix = uid("deadpack");
    const dl = collector();
    await consume("dead-letters", dl.handler, { prefetch: 10 });
    const raw = new AMQPClient(vhost.url);
    await raw.connect();
    try {
      const ch = await raw.channel();
      await ch.confirmSelect();
      const items = [0, 1, 2].map((i) => ({ id: `${prefix}-${i}`, key: "pack.dead", headers: { h: i }, body: { i } }));
      await ch.basicPublish(EXCHANGES.dead.name, WORK_QUEUES.events.name, JSON.stringify(items), { messageId: prefix, deliveryMode: 2, headers: { [PACK_HEADER]: 3, [DEAD_REASON_HEADER]: "delivery limit" } });
    } finally {
      await raw.close();
    }
    await waitFor(() => dl.seen.size === 3, { what: "three dead letters" });
    for (const i of [0, 1, 2]) {
      const [m] = dl.seen.get(`${prefix}-${i}`)!;
      expect([m!.body, m!.routingKey, m!.headers.h, m!.headers[DEAD_REASON_HEADER]]).toEqual([{ i }, "pack.dead", i, "delivery limit"]);
    }
  });

  test("acks sent together never cover a delivery still being handled or one requeued", async () => {
    const prefix = uid("acks");
    const seen = new Map<string, number>();
    const held: Array<() => void> = [];
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const TOTAL = 300;
    await consume(
      "deliveries",
      async (m) => {
        if (!m.messageId?.startsWith(prefix)) return ack;
        const n = Number(m.messageId.slice(prefix.length + 1));
        seen.set(m.messageId, (seen.get(m.messageId) ?? 0) + 1);
        // Every tenth fails once (requeued), every tenth+5 finishes only after all the others:
        // the acks of their neighbours leave as multiple acks around them.
        if (n % 10 === 3 && m.redeliveries === 0) throw new Error("requeue me");
        if (n % 10 === 5) await new Promise<void>((r) => held.push(r)).then(() => released);
        return ack;
      },
      { prefetch: 50 },
    );
    await mq.publish("deliveries", Array.from({ length: TOTAL }, (_, i) => ({ body: { i }, messageId: `${prefix}-${i}` })));
    await waitFor(() => seen.size === TOTAL && held.length === TOTAL / 10, { what: "every message delivered, the held ones waiting" });
    // Only the held ones are unacknowledged: nothing acked them along with their neighbours.
    const counts = () => queueCounts(WORK_QUEUES.deliveries.name);
    await waitFor(async () => (await counts()) === `0,${TOTAL / 10}`, { what: "only the held deliveries unacknowledged" });
    release();
    held.forEach((r) => r());
    await waitFor(async () => (await counts()) === "0,0", { what: "everything acknowledged" });
    for (const [id, times] of seen) expect([id, times]).toEqual([id, Number(id.slice(prefix.length + 1)) % 10 === 3 ? 2 : 1]);
    expect(lines.some((l) => l.msg.includes("consumer cancelled") || l.msg === "amqp connection lost; reconnecting")).toBe(false);
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
