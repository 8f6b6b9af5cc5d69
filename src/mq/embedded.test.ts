/**
 * The embedded table queue: the shared Queue contract on real PostgreSQL and on the embedded PGlite
 * store, plus what only a table queue has to prove: a claim left by a dead process comes back
 * after its lease (or at once for the exclusive embedded process), and publish() is durable.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDb, haveServices, waitFor, type TestDb } from "../../test/support/services.ts";
import { startEmbeddedStore, type EmbeddedStore } from "../embedded/store.ts";
import { createLogger } from "../runtime/log.ts";
import { createSql, migrate, type Sql } from "../store/db.ts";
import { createEmbeddedQueue } from "./embedded.ts";
import { ack, type InMessage } from "./queue.ts";
import { CONTRACT_LIMITS, queueContract } from "./queue.contract.ts";

const log = createLogger("silent");

describe.skipIf(!(await haveServices))("embedded queue on PostgreSQL", () => {
  queueContract("embedded table queue on PostgreSQL", async () => {
    const db = await createTestDb();
    return {
      open: async () => createEmbeddedQueue({ sql: db.sql, log, deliveryLimits: CONTRACT_LIMITS, pollMs: 50 }),
      cleanup: () => db.drop(),
    };
  });

  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(() => db?.drop());

  test("a message claimed by a process that died comes back after the lease, with redeliveries = 1", async () => {
    // The "dead" process: its own connection, a short lease, a handler that never returns.
    const deadSql = createSql(db.url, { max: 1 });
    const doomed = createEmbeddedQueue({ sql: deadSql, log, leaseMs: 600, pollMs: 50 });
    let taken = false;
    await doomed.consume("deliveries", async () => {
      taken = true;
      return new Promise<never>(() => {});
    }, { prefetch: 1 });
    const live = createEmbeddedQueue({ sql: db.sql, log, leaseMs: 600, pollMs: 50 });
    await live.publish("deliveries", [{ body: { n: 1 }, messageId: "lease-1" }]);
    await waitFor(() => taken, { what: "claimed by the doomed consumer" });
    await deadSql.end({ timeout: 0 }); // the process is gone: no ack, no lease renewal
    const seen: InMessage[] = [];
    const claimedAt = performance.now();
    const c = await live.consume("deliveries", async (m) => (seen.push(m), ack), { prefetch: 1 });
    await waitFor(() => seen.length === 1, { what: "redelivery after lease expiry" });
    expect(performance.now() - claimedAt).toBeGreaterThan(200);
    expect(seen[0]!.redeliveries).toBe(1);
    expect(seen[0]!.body).toEqual({ n: 1 });
    await c.stop();
    await live.close();
  });

  test("stop() during a claim returns at once, not after the poll interval", async () => {
    const q = createEmbeddedQueue({ sql: db.sql, log, pollMs: 30_000 });
    const c = await q.consume("audit", async () => ack, { prefetch: 4 });
    const t = performance.now();
    await c.stop(); // the consumer's first claim is still on its way to PostgreSQL
    expect(performance.now() - t).toBeLessThan(2_000);
    await q.close();
  });

  test("a long handler keeps its lease renewed: nobody else takes the message meanwhile", async () => {
    const q1 = createEmbeddedQueue({ sql: db.sql, log, leaseMs: 300, pollMs: 30 });
    const q2 = createEmbeddedQueue({ sql: db.sql, log, leaseMs: 300, pollMs: 30 });
    const by: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const handler = (who: string) => async (m: InMessage) => {
      if (m.messageId !== "long-1") return ack;
      by.push(who);
      await gate;
      return ack;
    };
    const c1 = await q1.consume("events", handler("q1"), { prefetch: 1 });
    const c2 = await q2.consume("events", handler("q2"), { prefetch: 1 });
    await q1.publish("events", [{ body: {}, routingKey: "k", messageId: "long-1" }]);
    await waitFor(() => by.length === 1, { what: "first claim" });
    await Bun.sleep(1_000); // three lease lengths: a lapsed lease would let the other consumer in
    release();
    await Promise.all([c1.stop(), c2.stop()]);
    expect(by).toHaveLength(1);
    const rows = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM queue_messages WHERE message_id = 'long-1'`;
    expect(rows[0]!.n).toBe(0);
  });

  test("exclusive: a restarted embedded process takes back its previous run's claims at once", async () => {
    const q1 = createEmbeddedQueue({ sql: db.sql, log, instanceId: "run-1", leaseMs: 3_600_000, pollMs: 30 });
    let taken = false;
    await q1.consume("audit", async () => ((taken = true), new Promise<never>(() => {})), { prefetch: 1 });
    await q1.publish("audit", [{ body: {}, routingKey: "a", messageId: "excl-1" }]);
    await waitFor(() => taken, { what: "claimed by run 1" });
    const q2 = createEmbeddedQueue({ sql: db.sql, log, instanceId: "run-2", exclusive: true, pollMs: 30 });
    const seen: InMessage[] = [];
    const c = await q2.consume("audit", async (m) => (seen.push(m), ack), { prefetch: 1 });
    await waitFor(() => seen.some((m) => m.messageId === "excl-1"), { what: "redelivered to run 2 without waiting an hour" });
    expect(seen.find((m) => m.messageId === "excl-1")!.redeliveries).toBe(1);
    await c.stop();
  });

  test("health() reports the embedded queue; publish after close fails clearly", async () => {
    const q = createEmbeddedQueue({ sql: db.sql, log });
    expect(q.health()).toEqual({ ok: true, detail: "embedded (PostgreSQL table)" });
    expect(q.kind).toBe("embedded");
    await q.close();
    await expect(q.publish("events", [{ body: {} }])).rejects.toThrow(/closed/);
  });
});

describe("embedded queue on the embedded PGlite store", () => {
  let dir: string;
  let store: EmbeddedStore;
  const sqls: Sql[] = [];
  queueContract("embedded table queue on PGlite", async () => {
    dir = mkdtempSync(join(tmpdir(), "notify-eq-"));
    store = await startEmbeddedStore({ dataDir: dir, log });
    const sql = createSql(store.url, { max: 4 });
    sqls.push(sql);
    await migrate(sql);
    return {
      open: async () => createEmbeddedQueue({ sql, log, deliveryLimits: CONTRACT_LIMITS, pollMs: 50 }),
      cleanup: async () => {
        await Promise.all(sqls.map((s) => s.end({ timeout: 1 })));
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  });
});
