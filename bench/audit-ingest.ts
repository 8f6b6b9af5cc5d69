/**
 * Audit ingest into PostgreSQL (issue 6 target: ≥ 20,000 records/s stored by one audit process),
 * beside the raw limit measured in the same run on the same table:
 *
 *   raw      batched multi-row INSERT of pre-built rows (no lock, no chain, no duplicate check), both
 *            as the store's jsonb_to_recordset statement and as a plain VALUES list; the faster one
 *            is the limit
 *   store    createPgAuditStore().append() in batches of 500: normalise, sha256 chain, advisory
 *            lock, tip check, insert, commit; one batch at a time, and two in flight as the
 *            consumer runs them (the figure for one audit process)
 *   pipeline (when RabbitMQ and src/mq/amqp.ts are there) publisher → notify.audit → consumer →
 *            store, from the first record() to the last commit
 *
 *   bun bench/audit-ingest.ts [records=100000]
 *   NOTIFY_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test  (a fresh database is created next to it)
 *   NOTIFY_BENCH_AMQP_URL=amqp://guest:guest@127.0.0.1:5672
 */
import postgres from "postgres";
import { createAuditConsumer } from "../src/audit/consumer.ts";
import { createAuditPublisher } from "../src/audit/publisher.ts";
import { chainRecords, GENESIS_HASH, type AuditRecord } from "../src/audit/record.ts";
import { createPgAuditStore, insertRecords, recordsToJson } from "../src/audit/store-pg.ts";
import { createSql, migrate, type Sql } from "../src/store/db.ts";
import { createLogger } from "../src/runtime/log.ts";

const TARGET = 20_000;
const BATCH = 500;
const N = Number(process.argv[2] ?? 100_000);
const BASE = process.env.NOTIFY_BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const AMQP_BASE = process.env.NOTIFY_BENCH_AMQP_URL ?? process.env.NOTIFY_TEST_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const log = createLogger("silent");

/** A typical record: a template change or a delivery outcome, ~400 bytes of JSON. */
function makeRecord(i: number): AuditRecord {
  return {
    id: Bun.randomUUIDv7(),
    time: new Date().toISOString(),
    actor: { type: i % 10 ? "api_key" : "user", id: `k${i % 50}`, name: "shop backend" },
    action: i % 3 ? "delivery.sent" : "event.accepted",
    target: { type: "delivery", id: `d${i}` },
    outcome: "success",
    request_id: `req-${i}`,
    details: { channel: "email", attempt: 1, provider: "smtp", message_id: `<${i}@notify>`, duration_ms: 12.5, notification_id: `n${i}`, role: "worker" },
  };
}

async function freshDb(): Promise<{ url: string; sql: Sql; drop: () => Promise<void> }> {
  const name = `notify_bench_audit_${process.pid}_${Date.now().toString(36)}`;
  const admin = postgres(BASE, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(BASE);
  u.pathname = `/${name}`;
  const sql = createSql(u.toString(), { max: 4 });
  await migrate(sql);
  return {
    url: u.toString(),
    sql,
    async drop() {
      await sql.end({ timeout: 1 });
      const a = postgres(BASE, { max: 1, onnotice: () => {} });
      await a.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
    },
  };
}

const rate = (n: number, ms: number) => Math.round((n / ms) * 1000);
const fmt = (n: number) => n.toLocaleString("en-US");

async function reset(sql: Sql) {
  await sql`TRUNCATE audit_records`;
  await sql`DELETE FROM audit_chain_anchor`;
  await sql`VACUUM ANALYZE audit_records`.catch(() => {});
}

/** Pre-built chained rows, so the raw runs time only the INSERT. */
function buildBatches(n: number): { json: string[]; rows: Record<string, unknown>[][] } {
  const json: string[] = [];
  const rows: Record<string, unknown>[][] = [];
  let seq = 0;
  let prev = GENESIS_HASH;
  for (let i = 0; i < n; i += BATCH) {
    const chained = chainRecords(Array.from({ length: Math.min(BATCH, n - i) }, (_, j) => makeRecord(i + j)), seq, prev);
    seq += chained.length;
    prev = chained[chained.length - 1]!.hash;
    const s = recordsToJson(chained);
    json.push(s);
    rows.push(JSON.parse(s));
  }
  return { json, rows };
}

async function rawJsonRecordset(sql: Sql, batches: string[]): Promise<number> {
  const t = performance.now();
  for (const b of batches) await insertRecords(sql, b);
  return performance.now() - t;
}

async function rawValues(sql: Sql, batches: Record<string, unknown>[][]): Promise<number> {
  const t = performance.now();
  for (const b of batches) {
    await sql`INSERT INTO audit_records ${sql(b.map((r) => ({ ...r, details: sql.json(r.details as never) })) as never)}`;
  }
  return performance.now() - t;
}

/** `inFlight` appenders over one store, as the consumer runs them (2: one hashes while one commits). */
async function viaStore(sql: Sql, n: number, inFlight = 1): Promise<number> {
  const store = createPgAuditStore({ sql });
  const batches: AuditRecord[][] = [];
  for (let i = 0; i < n; i += BATCH) batches.push(Array.from({ length: Math.min(BATCH, n - i) }, (_, j) => makeRecord(i + j)));
  const t = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < batches.length) await store.append(batches[next++]!);
    }),
  );
  const ms = performance.now() - t;
  const v = await store.verify();
  if (!v.ok || v.count !== n) throw new Error(`store run did not verify: ${JSON.stringify(v)}`);
  return ms;
}

/**
 * One audit process draining RabbitMQ: the records are published first (as the other roles would,
 * packed 100 per message), then the consumer starts; the clock runs from its start to the last
 * record stored. This is the audit role's own rate, without a publisher sharing its CPU.
 */
async function viaConsumerDrain(sql: Sql, n: number): Promise<number | string> {
  const amqp = await import("../src/mq/amqp.ts");
  const { createTestVhost } = await import("../test/support/services.ts");
  process.env.NOTIFY_TEST_AMQP_URL ??= AMQP_BASE;
  const vhost = await createTestVhost();
  const queue = await amqp.createAmqpQueue({ url: vhost.url, log });
  try {
    const pub = createAuditPublisher({ queue, log, role: "bench", maxBuffer: n, batchSize: BATCH });
    for (let i = 0; i < n; i++) {
      pub.record(makeRecord(i));
      if (i % 5_000 === 4_999) await Bun.sleep(0);
    }
    await pub.stop(120_000);
    const store = createPgAuditStore({ sql });
    const t = performance.now();
    const consumer = await createAuditConsumer({ queue, store, log, batchSize: BATCH, flushMs: 50 });
    await untilStored(sql, n, t, "drain", 10);
    const ms = performance.now() - t;
    await consumer.stop();
    return ms;
  } finally {
    await queue.close();
    await vhost.drop();
  }
}

/** Waits until `n` audit records are stored; a run stuck for 5 minutes is an error. */
async function untilStored(sql: Sql, n: number, started: number, what: string, everyMs: number): Promise<void> {
  for (;;) {
    const [{ c }] = (await sql`SELECT count(*)::int AS c FROM audit_records`) as unknown as [{ c: number }];
    if (c >= n) return;
    if (performance.now() - started > 300_000) throw new Error(`${what} stalled at ${c}/${n}`);
    await Bun.sleep(everyMs);
  }
}

async function viaPipeline(sql: Sql, n: number): Promise<number | string> {
  const amqp = await import("../src/mq/amqp.ts").catch(() => undefined);
  if (!amqp) return "skipped: src/mq/amqp.ts not present";
  const { createTestVhost } = await import("../test/support/services.ts");
  process.env.NOTIFY_TEST_AMQP_URL ??= AMQP_BASE;
  let vhost: Awaited<ReturnType<typeof createTestVhost>>;
  try {
    vhost = await createTestVhost();
  } catch (err) {
    return `skipped: no RabbitMQ (${err instanceof Error ? err.message.split("\n")[0] : String(err)})`;
  }
  const queue = await amqp.createAmqpQueue({ url: vhost.url, log });
  try {
    const store = createPgAuditStore({ sql });
    const consumer = await createAuditConsumer({ queue, store, log, batchSize: BATCH, flushMs: 50 });
    const pub = createAuditPublisher({ queue, log, role: "bench", maxBuffer: n, batchSize: BATCH });
    const t = performance.now();
    for (let i = 0; i < n; i++) {
      const r = makeRecord(i);
      pub.record(r);
      // Let the publisher's loop run between bursts, as request handlers would.
      if (i % 5_000 === 4_999) await Bun.sleep(0);
    }
    await untilStored(sql, n, t, "pipeline", 20);
    const ms = performance.now() - t;
    await pub.stop();
    await consumer.stop();
    return ms;
  } finally {
    await queue.close();
    await vhost.drop();
  }
}

const db = await freshDb();
try {
  console.log(`audit ingest: ${fmt(N)} records, batches of ${BATCH}, fresh database, PostgreSQL ${(await db.sql`SHOW server_version`)[0]!.server_version}`);
  const built = buildBatches(N);
  // Warm-up: connections, plans, JIT of our own code.
  await rawJsonRecordset(db.sql, built.json.slice(0, 10));
  await reset(db.sql);
  await viaStore(db.sql, 5_000);

  const results: Record<string, number[]> = {
    "raw INSERT (jsonb_to_recordset)": [],
    "raw INSERT (VALUES)": [],
    "store.append, 1 batch at a time": [],
    "store.append, 2 in flight": [],
  };
  for (let round = 0; round < 2; round++) {
    await reset(db.sql);
    results["raw INSERT (jsonb_to_recordset)"]!.push(rate(N, await rawJsonRecordset(db.sql, built.json)));
    await reset(db.sql);
    results["raw INSERT (VALUES)"]!.push(rate(N, await rawValues(db.sql, built.rows)));
    await reset(db.sql);
    results["store.append, 1 batch at a time"]!.push(rate(N, await viaStore(db.sql, N, 1)));
    await reset(db.sql);
    results["store.append, 2 in flight"]!.push(rate(N, await viaStore(db.sql, N, 2)));
  }
  const best = (k: string) => Math.max(...results[k]!);
  const raw = Math.max(best("raw INSERT (jsonb_to_recordset)"), best("raw INSERT (VALUES)"));
  for (const k of Object.keys(results)) {
    console.log(`  ${k.padEnd(34)} ${fmt(best(k)).padStart(8)} records/s  (runs: ${results[k]!.map(fmt).join(", ")})`);
  }
  // The audit role's consumer runs two appends in flight: that is the figure for one audit process.
  const store = best("store.append, 2 in flight");
  console.log(`  store.append (2 in flight) / raw limit  ${((store / raw) * 100).toFixed(0)}%`);

  await reset(db.sql);
  const pipeN = Math.min(N, 50_000);
  const p = await viaPipeline(db.sql, pipeN);
  if (typeof p === "number") console.log(`  publisher → RabbitMQ → consumer → PG ${fmt(rate(pipeN, p)).padStart(8)} records/s  (${fmt(pipeN)} records, ${((rate(pipeN, p) / raw) * 100).toFixed(0)}% of raw)`);
  else console.log(`  publisher → RabbitMQ → consumer → PG ${p}`);

  await reset(db.sql);
  const drain = await viaConsumerDrain(db.sql, pipeN).catch((err) => `skipped: ${String(err)}`);
  const drainRate = typeof drain === "number" ? rate(pipeN, drain) : 0;
  if (typeof drain === "number") console.log(`  audit consumer draining RabbitMQ → PG ${fmt(drainRate).padStart(8)} records/s  (${fmt(pipeN)} records published first; ${((drainRate / raw) * 100).toFixed(0)}% of raw)`);
  else console.log(`  audit consumer draining RabbitMQ → PG ${drain}`);

  console.log(`  target ≥ ${fmt(TARGET)} records/s stored by one audit process: ${drainRate >= TARGET ? "met" : "NOT met"} (consumer draining the queue: ${fmt(drainRate)}/s; store.append, 2 in flight: ${fmt(store)}/s)`);
} finally {
  await db.drop();
}
