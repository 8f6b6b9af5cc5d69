/**
 * Edge mode figures on the compiled binary (SPEC 7): events/s end to end in embedded mode, by e-mail
 * (POST /events → a file in the outbox folder) and in-app (→ an inbox row, counted by the worker's
 * sent deliveries on /metrics), each beside the same run on PostgreSQL + RabbitMQ (same sinks, so
 * only storage and queue differ); ready time after start with an existing data
 * directory; binary size.
 *
 *   bun run build && bun bench/embedded.ts [events=2000] [concurrency=32]
 *
 * Each end-to-end run first sends 1,000 events to warm up, then times [events] more.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, ensureBinary, startNotify, type NotifyProcess } from "../test/support/binary.ts";
import { createTestDb, createTestVhost, haveServices, waitFor } from "../test/support/services.ts";

const EVENTS = Number(process.argv[2] ?? 2000);
const CONCURRENCY = Number(process.argv[3] ?? 32);
const WARM = 1000;
const ADMIN_KEY = "bench-admin-key-0123456789abcdef";

type Channel = "email" | "in_app";

async function endToEnd(label: string, channel: Channel, extraEnv: Record<string, string>): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "notify-bench-edge-"));
  const env = { NOTIFY_DATA_DIR: dir, NOTIFY_ADMIN_KEY: ADMIN_KEY, NOTIFY_LOG_LEVEL: "warn", NOTIFY_GRPC_PORT: "0", NOTIFY_ADMIN_PORT: "0", ...extraEnv };
  const n = await startNotify("all", env, { readyTimeoutMs: 60_000 });
  // E-mails are counted as files in the outbox; in-app messages as the worker's sent deliveries.
  const count =
    channel === "email"
      ? async () => {
          try {
            return readdirSync(join(dir, "outbox")).filter((f) => f.endsWith(".eml")).length;
          } catch {
            return 0;
          }
        }
      : async () => {
          const text = await (await fetch(`http://127.0.0.1:${n.port}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
          return Number(/^notify_deliveries_total\{channel="in_app",outcome="sent"\} (\d+)/m.exec(text)?.[1] ?? 0);
        };
  const sink = channel === "email" ? "outbox" : "inbox";
  try {
    // Warm-up: long enough for the JIT to tier up notify's hot paths and PostgreSQL's wasm.
    await send(n, WARM, "warm", channel);
    await waitFor(async () => (await count()) >= WARM, { what: "warm-up", timeoutMs: 120_000 });
    const started = performance.now();
    await send(n, EVENTS, "run", channel);
    const acceptedMs = performance.now() - started;
    await waitFor(async () => (await count()) >= WARM + EVENTS, { what: `${EVENTS} ${sink} messages`, timeoutMs: 600_000, intervalMs: 50 });
    const ms = performance.now() - started;
    const rate = EVENTS / (ms / 1000);
    console.log(`${label}: ${EVENTS} events → ${sink} in ${Math.round(ms)} ms = ${Math.round(rate)} events/s (accepted in ${Math.round(acceptedMs)} ms)`);
    return rate;
  } finally {
    await n.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
}

async function send(n: NotifyProcess, count: number, tag: string, channel: Channel): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (i < count) {
        const k = i++;
        const r = await fetch(`http://127.0.0.1:${n.port}/api/v1/events`, {
          method: "POST",
          headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
          body: JSON.stringify({ event: "bench.edge", to: [{ user_id: `u${k % 500}`, email: `u${k % 500}@example.com` }], channels: [channel], title: `${tag} ${k}`, body: "hello" }),
        });
        const text = await r.text(); // read, so the keep-alive connection is reused
        if (r.status !== 202) throw new Error(`POST /events: ${r.status} ${text}`);
      }
    }),
  );
}

async function readyTime(runs = 9): Promise<number[]> {
  const dir = mkdtempSync(join(tmpdir(), "notify-bench-ready-"));
  const env = { NOTIFY_DATA_DIR: dir, NOTIFY_LOG_LEVEL: "warn", NOTIFY_GRPC_PORT: "0", NOTIFY_ADMIN_PORT: "0" };
  try {
    await (await startNotify("all", env, { readyTimeoutMs: 60_000 })).kill("SIGTERM"); // creates the data dir
    const out: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t = performance.now();
      const n = await startNotify("all", env, { readyTimeoutMs: 60_000, readyPollMs: 2 });
      out.push(Math.round(performance.now() - t));
      await n.kill("SIGTERM");
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await ensureBinary();
console.log(`binary: ${(statSync(BINARY).size / 1e6).toFixed(1)} MB (budget 120 MB)`);
const ready = await readyTime();
console.log(`ready after start, existing data dir: ${ready.join(", ")} ms (median ${ready.sort((a, b) => a - b)[Math.floor(ready.length / 2)]} ms; target 300 ms)`);
for (const channel of ["email", "in_app"] as const) {
  const embedded = await endToEnd(`embedded (PGlite + table queue), ${channel}`, channel, {});
  if (await haveServices) {
    const db = await createTestDb({ migrate: false });
    const vhost = await createTestVhost();
    try {
      const servers = await endToEnd(`PostgreSQL + RabbitMQ, ${channel}`, channel, { NOTIFY_DATABASE_URL: db.url, NOTIFY_AMQP_URL: vhost.url });
      console.log(`${channel}: embedded / servers: ${(embedded / servers).toFixed(2)}; target ≥ 1000 events/s embedded`);
    } finally {
      await db.drop();
      await vhost.drop();
    }
  }
}
process.exit(0);
