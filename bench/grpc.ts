/**
 * gRPC backend bench (issue 5 targets):
 *   - UserDirectory.GetUsers, 100 ids per call, one client process, 16 calls in flight: calls/s,
 *     p50/p99 — the compiled backend as shipped (user cache on) and the same server code under
 *     Node, then both with the cache off, in the same run;
 *   - Audience.Resolve of 200k users: users/s and the server's RSS before/after.
 * Servers run in their own processes: the compiled dist/notify --role=grpc-backend, and our server
 * bundled for Node (.bench/grpc-server-node.mjs, built by this script); the client is this process.
 *
 *   node_modules/.bin/bun bench/grpc.ts [--seconds=5] [--concurrency=64]
 * The machine is shared with RabbitMQ and PostgreSQL (SPEC 7: all services co-located); figures move
 * with their load. Needs PostgreSQL (NOTIFY_TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createTestDb, createTestVhost } from "../test/support/services.ts";
import { ensureBinary, freePort, startNotify } from "../test/support/binary.ts";
import { createGrpcClients } from "../src/grpc/client.ts";
import { quietLog, seedUsers, userId } from "../src/grpc/testing.ts";

const arg = (name: string, def: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? def);
const SECONDS = arg("seconds", 5);
// 16 calls in flight: at 2,000 calls/s that is 8 ms each by Little's law, the load at which a
// p99 of 20 ms is meaningful. --concurrency=64 shows saturation.
const CONCURRENCY = arg("concurrency", 16);
const USERS = 200_000;
const IDS_PER_CALL = 100;
const TOKEN = "bench-token-0123456789";
const NODE = process.env.NOTIFY_BENCH_NODE ?? "/usr/bin/node";

const rssOf = (pid: number) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
};

async function spawnServer(cmd: string[], dbUrl: string, env: Record<string, string> = {}) {
  const child = Bun.spawn(cmd, { env: { ...process.env, NOTIFY_DATABASE_URL: dbUrl, NOTIFY_GRPC_TOKEN: TOKEN, NOTIFY_LOG_LEVEL: "silent", ...env }, stdout: "pipe", stderr: "inherit" });
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`server exited: ${text}`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  const { port } = JSON.parse(text.split("\n")[0]!) as { port: number };
  return { child, port };
}

async function spawnBinary(dbUrl: string, amqpUrl: string, env: Record<string, string>) {
  const port = await freePort();
  const p = await startNotify("grpc-backend", { NOTIFY_DATABASE_URL: dbUrl, NOTIFY_AMQP_URL: amqpUrl, NOTIFY_ADMIN_KEY: "bench-admin-key-0123456789abcdef", NOTIFY_GRPC_TOKEN: TOKEN, NOTIFY_GRPC_PORT: String(port), NOTIFY_LOG_LEVEL: "warn", ...env });
  return { child: { pid: p.proc.pid, kill: (s: NodeJS.Signals) => void p.kill(s), exited: p.proc.exited }, port };
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;

async function benchGetUsers(port: number, label: string) {
  const clients = createGrpcClients({ url: `127.0.0.1:${port}`, token: TOKEN, log: quietLog });
  const ids = () => Array.from({ length: IDS_PER_CALL }, () => userId(1 + Math.floor(Math.random() * USERS)));
  // Warm-up, three seconds at the same load: connection, JIT, PostgreSQL's plan cache and, where it
  // is on, the backend's user cache (a backend serving workers all day is warm; three seconds of
  // random ids touch ≈ 99 % of the 200k users).
  const warmEnd = performance.now() + 3000;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => { while (performance.now() < warmEnd) await clients.users.getUsers(ids()); }));
  const lat: number[] = [];
  let errors = 0;
  const end = performance.now() + SECONDS * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        try {
          const res = await clients.users.getUsers(ids(), { deadlineMs: 2000 });
          if (res.users.length < 90) errors++;
        } catch {
          errors++;
        }
        lat.push(performance.now() - t);
      }
    }),
  );
  const secs = (performance.now() - started) / 1000;
  clients.close();
  lat.sort((a, b) => a - b);
  const r = { label, calls_per_s: Math.round(lat.length / secs), profiles_per_s: Math.round((lat.length * IDS_PER_CALL) / secs), p50_ms: +pct(lat, 50).toFixed(2), p99_ms: +pct(lat, 99).toFixed(2), errors };
  console.log(`GetUsers x${IDS_PER_CALL} ids  ${label.padEnd(14)} ${String(r.calls_per_s).padStart(6)} calls/s  p50 ${r.p50_ms} ms  p99 ${r.p99_ms} ms  errors ${errors}`);
  return r;
}

async function benchResolve(port: number, pid: number) {
  const clients = createGrpcClients({ url: `127.0.0.1:${port}`, token: TOKEN, log: quietLog });
  const rssBefore = rssOf(pid);
  let serverRssMax = rssBefore;
  const started = performance.now();
  let n = 0;
  let batches = 0;
  for await (const users of clients.audience.resolve({ all: true }, 1000)) {
    n += users.length;
    if (++batches % 20 === 0) serverRssMax = Math.max(serverRssMax, rssOf(pid));
  }
  const secs = (performance.now() - started) / 1000;
  const rssAfter = rssOf(pid);
  clients.close();
  const r = { users: n, users_per_s: Math.round(n / secs), server_rss_before_mb: +rssBefore.toFixed(1), server_rss_max_mb: +serverRssMax.toFixed(1), server_rss_after_mb: +rssAfter.toFixed(1) };
  console.log(`Resolve ${n} users: ${r.users_per_s} users/s; server RSS ${r.server_rss_before_mb} → max ${r.server_rss_max_mb} → ${r.server_rss_after_mb} MB`);
  return r;
}

const [db, vhost] = await Promise.all([createTestDb(), createTestVhost()]);
try {
  await seedUsers(db.sql, USERS);
  await db.sql`ANALYZE users`;
  console.log(`gRPC bench: ${USERS} users, ${SECONDS}s per run, concurrency ${CONCURRENCY}, Bun ${Bun.version}`);

  // The compiled binary's grpc-backend role as it ships (user rows kept in memory, dropped when
  // PostgreSQL announces a change), and the very same server code under Node: test/support/
  // grpc-server.ts (startGrpcServer from src/grpc) bundled by `bun build --target=node`. Each with
  // the cache on and off (NOTIFY_GRPC_USER_CACHE_TTL_MS=0).
  await ensureBinary();
  const nodeBundle = join(import.meta.dir, "../.bench/grpc-server-node.mjs");
  const built = await Bun.build({ entrypoints: [join(import.meta.dir, "../test/support/grpc-server.ts")], target: "node", format: "esm", outdir: join(import.meta.dir, "../.bench"), naming: "grpc-server-node.mjs" });
  if (!built.success) throw new Error(`bundling the server for Node failed: ${built.logs.join("\n")}`);
  const bun = await spawnBinary(db.url, vhost.url, {});
  const uncached = await spawnBinary(db.url, vhost.url, { NOTIFY_GRPC_USER_CACHE_TTL_MS: "0" });
  const node = await spawnServer([NODE, nodeBundle], db.url);
  const nodeUncached = await spawnServer([NODE, nodeBundle], db.url, { NOTIFY_GRPC_USER_CACHE_TTL_MS: "0" });
  const servers = [bun, uncached, node, nodeUncached];
  try {
    const rssCold = rssOf(bun.child.pid);
    const rBun = await benchGetUsers(bun.port, "bun");
    const rssWarm = rssOf(bun.child.pid);
    console.log(`  bun backend RSS ${rssCold.toFixed(1)} → ${rssWarm.toFixed(1)} MB with the user cache filled`);
    const rNode = await benchGetUsers(node.port, "node");
    const rUncached = await benchGetUsers(uncached.port, "bun, no cache");
    const rNodeUncached = await benchGetUsers(nodeUncached.port, "node, no cache");
    // Resolve does not touch the user cache; it runs on the backend without one, so the RSS it
    // reports is what streaming 200k users holds, not the cache filled by the GetUsers run.
    const resolve = await benchResolve(uncached.port, uncached.child.pid);
    const ratio = rBun.calls_per_s / rNode.calls_per_s;
    const ratioUncached = rUncached.calls_per_s / rNodeUncached.calls_per_s;
    console.log(`ratio bun/node (GetUsers calls/s): ${ratio.toFixed(2)} with the cache, ${ratioUncached.toFixed(2)} without`);
    const targets = {
      getusers_calls_per_s: rBun.calls_per_s >= 2000,
      getusers_p99_ms: rBun.p99_ms <= 20,
      resolve_users_per_s: resolve.users_per_s >= 100_000,
    };
    console.log(JSON.stringify({ bench: "grpc", getUsers: { bun: rBun, bun_rss_mb: { cold: +rssCold.toFixed(1), warm: +rssWarm.toFixed(1) }, node: rNode, bun_no_cache: rUncached, node_no_cache: rNodeUncached, ratio: +ratio.toFixed(2), ratio_no_cache: +ratioUncached.toFixed(2) }, resolve, targets }));
    console.log(`targets: ≥2000 calls/s ${targets.getusers_calls_per_s ? "ok" : "MISSED"}; p99 ≤20 ms ${targets.getusers_p99_ms ? "ok" : "MISSED"}; ≥100k users/s ${targets.resolve_users_per_s ? "ok" : "MISSED"}`);
  } finally {
    for (const s of servers) s.child.kill("SIGTERM");
    await Promise.all(servers.map((s) => s.child.exited));
  }
} finally {
  await Promise.all([db.drop(), vhost.drop()]);
}
