/**
 * Real services for integration tests. Each test file gets its own PostgreSQL database and its own
 * RabbitMQ vhost and removes them afterwards, so runs never see each other's leftovers.
 *
 * When a service is absent the test is skipped, unless NOTIFY_TEST_REQUIRE_SERVICES=1 (CI), where
 * absence is a failure.
 */
import postgres from "postgres";
import { migrate, createSql, type Sql } from "../../src/store/db.ts";

export const PG_BASE = process.env.NOTIFY_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const AMQP_BASE = process.env.NOTIFY_TEST_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
export const REQUIRE = process.env.NOTIFY_TEST_REQUIRE_SERVICES === "1";

async function reachable(host: string, port: number): Promise<boolean> {
  try {
    const s = await Bun.connect({ hostname: host, port, socket: { data() {}, open(s) { s.end(); } } });
    s.end();
    return true;
  } catch {
    return false;
  }
}

let pgUp: boolean | undefined;
let mqUp: boolean | undefined;

/** True when PostgreSQL and RabbitMQ answer. Throws in CI when they do not. */
export async function servicesAvailable(): Promise<boolean> {
  const pg = new URL(PG_BASE);
  const mq = new URL(AMQP_BASE);
  pgUp ??= await reachable(pg.hostname, Number(pg.port || 5432));
  mqUp ??= await reachable(mq.hostname, Number(mq.port || 5672));
  if (REQUIRE && !(pgUp && mqUp)) {
    throw new Error(`required services are down: postgres=${pgUp} rabbitmq=${mqUp}`);
  }
  return pgUp && mqUp;
}

/** `describe.skipIf(!(await haveServices))` in a test file. */
export const haveServices = servicesAvailable();

const suffix = () => `${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;

export interface TestDb {
  url: string;
  name: string;
  sql: Sql;
  drop(): Promise<void>;
}

/** Creates a fresh database with every migration applied. */
export async function createTestDb(opts: { migrate?: boolean } = {}): Promise<TestDb> {
  const name = `notify_t_${suffix()}`;
  const admin = postgres(PG_BASE, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(PG_BASE);
  u.pathname = `/${name}`;
  const url = u.toString();
  const sql = createSql(url, { max: 5 });
  if (opts.migrate !== false) await migrate(sql);
  return {
    url,
    name,
    sql,
    async drop() {
      await sql.end({ timeout: 1 });
      const a = postgres(PG_BASE, { max: 1, onnotice: () => {} });
      await a.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
    },
  };
}

export interface TestVhost {
  url: string;
  name: string;
  drop(): Promise<void>;
}

async function rabbitmqctl(...args: string[]): Promise<string> {
  const p = Bun.spawn(["rabbitmqctl", "-q", ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`rabbitmqctl ${args.join(" ")} failed (${code}): ${err || out}`);
  return out;
}
export { rabbitmqctl };

/** Creates a fresh RabbitMQ vhost the guest user may use. */
export async function createTestVhost(): Promise<TestVhost> {
  const name = `notify_t_${suffix()}`;
  await rabbitmqctl("add_vhost", name);
  await rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*");
  const u = new URL(AMQP_BASE);
  u.pathname = `/${encodeURIComponent(name)}`;
  return {
    url: u.toString(),
    name,
    async drop() {
      await rabbitmqctl("delete_vhost", name).catch(() => {});
    },
  };
}

/** Closes every client connection in a vhost, as the broker does on a restart or a network drop. */
export async function closeVhostConnections(vhost: string): Promise<void> {
  await rabbitmqctl("close_all_connections", "-p", vhost, "test: closed by broker");
}

/** Waits for a condition with a deadline instead of sleeping. */
export async function waitFor<T>(fn: () => T | Promise<T>, opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    await Bun.sleep(opts.intervalMs ?? 25);
  }
  throw new Error(`timed out waiting for ${opts.what ?? "condition"}${last ? `: ${String(last)}` : ""}`);
}
