import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createLogger } from "../runtime/log.ts";
import { createTestDb, haveServices, waitFor, type TestDb } from "../../test/support/services.ts";
import { createAuditConsumer } from "./consumer.ts";
import type { AuditRecord } from "./record.ts";
import { makeRecord } from "./store.contract.ts";
import { createPgAuditStore } from "./store-pg.ts";
import type { AuditStore } from "./store.ts";
import { createMemoryQueue } from "./testing.ts";

// The consumer's batching, ack-after-commit and outage behaviour against the real PostgreSQL store
// and an in-memory Queue (the same paths over RabbitMQ are in audit-e2e.test.ts).
const log = createLogger("silent");
const services = await haveServices;

describe.skipIf(!services)("audit consumer", () => {
  let db: TestDb;
  let store: AuditStore;
  beforeAll(async () => {
    db = await createTestDb();
    store = createPgAuditStore({ sql: db.sql });
  });
  afterAll(async () => {
    await db?.drop();
  });
  const count = async () => Number((await db.sql`SELECT count(*)::int AS n FROM audit_records`)[0]!.n);
  const publish = (queue: ReturnType<typeof createMemoryQueue>, recs: AuditRecord[]) =>
    queue.publish("audit", recs.map((r) => ({ body: r, messageId: r.id, routingKey: r.action })));

  test("stores many records per insert and acks only what is committed", async () => {
    await db.sql`TRUNCATE audit_records`;
    const queue = createMemoryQueue();
    const consumer = await createAuditConsumer({ queue, store, log, batchSize: 200, flushMs: 20 });
    const recs = Array.from({ length: 1_050 }, () => makeRecord());
    await publish(queue, recs);
    await waitFor(() => queue.acked === 1_050, { what: "all acked" });
    expect(await count()).toBe(1_050);
    const s = consumer.stats();
    expect(s.stored).toBe(1_050);
    expect(s.batches).toBeLessThanOrEqual(10);
    expect(await store.verify()).toEqual({ ok: true, count: 1_050 });
    await consumer.stop();
  });

  test("redelivered records are not stored twice; invalid ones are dead-lettered", async () => {
    await db.sql`TRUNCATE audit_records`;
    const queue = createMemoryQueue();
    const consumer = await createAuditConsumer({ queue, store, log, batchSize: 50, flushMs: 10 });
    const recs = Array.from({ length: 20 }, () => makeRecord());
    await publish(queue, [...recs, ...recs.slice(0, 5)]);
    await waitFor(() => queue.acked === 25, { what: "acked" });
    await publish(queue, recs.slice(10));
    await queue.publish("audit", [{ body: { id: "nope", action: "x" }, messageId: "bad", routingKey: "x" }]);
    await waitFor(() => queue.acked === 35 && queue.deadLettered.length === 1, { what: "second round" });
    expect(await count()).toBe(20);
    expect(queue.deadLettered[0]!.reason).toContain("invalid audit record");
    expect(consumer.stats()).toMatchObject({ stored: 20, invalid: 1 });
    await consumer.stop();
  });

  test("a store outage pauses consumption without acking; nothing is lost, no hot loop", async () => {
    await db.sql`TRUNCATE audit_records`;
    let down = true;
    let attempts = 0;
    const flaky: AuditStore = {
      ...store,
      append: async (records) => {
        attempts += 1;
        if (down) throw new Error("connection refused");
        return store.append(records);
      },
    };
    const queue = createMemoryQueue();
    const consumer = await createAuditConsumer({ queue, store: flaky, log, batchSize: 100, flushMs: 10 });
    await publish(queue, Array.from({ length: 500 }, () => makeRecord()));
    await waitFor(() => consumer.stats().paused, { what: "paused" });
    const attemptsAt = attempts;
    await Bun.sleep(600); // observe: what would a hot loop do in this time?
    expect(attempts - attemptsAt).toBeLessThanOrEqual(4);
    expect(queue.acked).toBe(0);
    expect(queue.unacked()).toBe(300); // prefetch = 3 × batch: the rest waits in the queue
    expect(queue.ready.length).toBe(200);
    expect(await count()).toBe(0);
    down = false;
    await waitFor(() => queue.acked === 500, { what: "all stored after recovery", timeoutMs: 20_000 });
    expect(await count()).toBe(500);
    expect(consumer.stats().paused).toBe(false);
    expect(await store.verify()).toEqual({ ok: true, count: 500 });
    await consumer.stop();
  });

  test("a batch held longer than holdMaxMs goes back to the broker as a retry, then is stored", async () => {
    await db.sql`TRUNCATE audit_records`;
    let down = true;
    const flaky: AuditStore = { ...store, append: async (r) => (down ? Promise.reject(new Error("down")) : store.append(r)) };
    const queue = createMemoryQueue();
    const consumer = await createAuditConsumer({ queue, store: flaky, log, batchSize: 10, flushMs: 5, holdMaxMs: 300 });
    await publish(queue, Array.from({ length: 10 }, () => makeRecord()));
    await waitFor(() => consumer.stats().appendFailures >= 3, { what: "held" });
    setTimeout(() => (down = false), 500);
    await waitFor(() => queue.acked === 10, { what: "stored after retry", timeoutMs: 20_000 });
    expect(await count()).toBe(10);
    await consumer.stop();
  });

  test("stop commits what is buffered", async () => {
    await db.sql`TRUNCATE audit_records`;
    const queue = createMemoryQueue();
    const consumer = await createAuditConsumer({ queue, store, log, batchSize: 500, flushMs: 60_000 });
    await publish(queue, Array.from({ length: 7 }, () => makeRecord()));
    await waitFor(() => queue.unacked() === 7, { what: "delivered" });
    await consumer.stop();
    expect(queue.acked).toBe(7);
    expect(await count()).toBe(7);
  });
});
