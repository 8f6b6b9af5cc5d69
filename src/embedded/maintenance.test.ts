import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "../../test/support/services.ts";
import { createLogger } from "../runtime/log.ts";
import { createSql, migrate, type Sql } from "../store/db.ts";
import { startEmbeddedMaintenance } from "./maintenance.ts";
import { startEmbeddedStore, type EmbeddedStore } from "./store.ts";

const log = createLogger("silent");
let dir: string;
let store: EmbeddedStore;
let sql: Sql;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "notify-vacuum-"));
  store = await startEmbeddedStore({ dataDir: dir, log });
  sql = createSql(store.url, { max: 2 });
  await migrate(sql);
});

afterAll(async () => {
  await sql.end({ timeout: 1 });
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const size = async () => (await sql<{ b: number }[]>`SELECT pg_relation_size('queue_messages')::int AS b`)[0]!.b;
const churn = async () => {
  await sql`INSERT INTO queue_messages (queue, routing_key, headers, body) SELECT 'events', '', '{}'::jsonb, jsonb_build_object('i', g) FROM generate_series(1, 2000) g`;
  await sql`DELETE FROM queue_messages`;
};

test("single-user PostgreSQL has no autovacuum: without a pass the queue table grows with every message", async () => {
  await churn();
  const first = await size();
  await churn();
  await churn();
  expect(await size()).toBeGreaterThan(first * 2);
});

test("a vacuum pass lets the queue table reuse its space; a full pass gathers planner statistics", async () => {
  const m = startEmbeddedMaintenance(sql, log, { hotEveryMs: 3_600_000, allEveryMs: 3_600_000 });
  await churn();
  await m.run();
  const settled = await size();
  for (let i = 0; i < 5; i++) {
    await churn();
    await m.run();
  }
  expect(await size()).toBeLessThanOrEqual(settled);
  await sql`INSERT INTO queue_messages (queue, routing_key, headers, body) SELECT 'events', '', '{}'::jsonb, '{}'::jsonb FROM generate_series(1, 100)`;
  await m.run(true);
  expect((await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_stats WHERE tablename = 'queue_messages'`)[0]!.n).toBeGreaterThan(0);
  await m.stop();
});

test("the timer runs passes on its own, and stop() ends them", async () => {
  const m = startEmbeddedMaintenance(sql, log, { hotEveryMs: 50, allEveryMs: 3_600_000 });
  await churn();
  const grown = await size();
  await churn();
  await waitFor(async () => {
    await churn();
    return (await size()) <= grown;
  }, { what: "a timed pass keeping the table from growing", timeoutMs: 10_000, intervalMs: 100 });
  await m.stop();
});
