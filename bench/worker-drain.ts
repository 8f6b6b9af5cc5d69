/**
 * What one event costs the worker pipeline, measured apart from acceptance: a compiled gateway
 * takes N one-recipient events while no worker runs, then one compiled worker drains them: e-mail
 * into the outbox folder (no SMTP, so the figure is notify's own work, not the relay's), or in-app
 * (inbox row and its announcement on notify.realtime). Prints
 * the drain rate and the CPU time per event of the worker, PostgreSQL and RabbitMQ over the drain
 * (from /proc, all processes of each), which varies far less between runs than a rate on this
 * shared machine.
 *
 *   bun run build && bun bench/worker-drain.ts [events=10000] [runs=3] [email|in_app]
 * Uses PostgreSQL and RabbitMQ on loopback; a fresh database and vhost per run, removed afterwards.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureBinary, startNotify } from "../test/support/binary.ts";
import { createTestDb, createTestVhost } from "../test/support/services.ts";
import { cpuMs, fmt } from "./support/stats.ts";

const EVENTS = Number(process.argv[2] ?? 10_000);
const RUNS = Number(process.argv[3] ?? 3);
const CHANNEL = process.argv[4] === "in_app" ? "in_app" : "email";
const KEY = "bench-admin-key-0123456789abcdef";

async function run(i: number): Promise<{ rate: number; worker: number; workerSys: number; pg: number; mq: number }> {
  const [db, vhost] = await Promise.all([createTestDb({ migrate: true }), createTestVhost()]);
  const dir = mkdtempSync(join(tmpdir(), "notify-bench-drain-"));
  const env = { NOTIFY_DATABASE_URL: db.url, NOTIFY_AMQP_URL: vhost.url, NOTIFY_ADMIN_KEY: KEY, NOTIFY_LOG_LEVEL: "warn", NOTIFY_DATA_DIR: dir };
  let gateway: Awaited<ReturnType<typeof startNotify>> | undefined;
  let worker: Awaited<ReturnType<typeof startNotify>> | undefined;
  try {
    gateway = await startNotify("gateway", env);
    const port = gateway.port;
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < EVENTS) {
          const k = next++;
          const r = await fetch(`http://127.0.0.1:${port}/api/v1/events`, {
            method: "POST",
            headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
            body: JSON.stringify({ event: "bench.drain", to: [{ user_id: `u${k % 500}`, email: `u${k % 500}@example.com`, name: "Bench" }], channels: [CHANNEL], title: `drain ${k}`, body: "hello" }),
          });
          const text = await r.text();
          if (r.status !== 202) throw new Error(`POST /events: ${r.status} ${text}`);
        }
      }),
    );
    const outbox = join(dir, "outbox");
    const count = async () => {
      if (CHANNEL === "in_app") return Number((await db.sql`SELECT count(*)::int AS n FROM deliveries WHERE status = 'sent'`)[0]!.n);
      try {
        return readdirSync(outbox).length;
      } catch {
        return 0;
      }
    };
    worker = await startNotify("worker", env);
    const wpid = worker.proc.pid;
    const isWorker = (_: string, pid: number) => pid === wpid;
    const before = { worker: cpuMs(isWorker), workerSys: cpuMs(isWorker, "system"), pg: cpuMs((c) => c === "postgres"), mq: cpuMs((c) => c === "beam.smp") };
    const started = performance.now();
    const deadline = Date.now() + 600_000;
    while ((await count()) < EVENTS) {
      if (Date.now() > deadline) throw new Error(`drain: ${await count()}/${EVENTS} after 10 min`);
      await Bun.sleep(20);
    }
    const secs = (performance.now() - started) / 1000;
    const per = (now: number, then: number) => (now - then) / EVENTS;
    const r = {
      rate: EVENTS / secs,
      worker: per(cpuMs(isWorker), before.worker),
      workerSys: per(cpuMs(isWorker, "system"), before.workerSys),
      pg: per(cpuMs((c) => c === "postgres"), before.pg),
      mq: per(cpuMs((c) => c === "beam.smp"), before.mq),
    };
    console.log(
      `run ${i}: ${EVENTS} events drained in ${fmt(secs, 2)} s = ${fmt(r.rate)} events/s; CPU per event: worker ${fmt(r.worker, 3)} ms (kernel ${fmt(r.workerSys, 3)}), PostgreSQL ${fmt(r.pg, 3)} ms, RabbitMQ ${fmt(r.mq, 3)} ms, together ${fmt(r.worker + r.pg + r.mq, 3)} ms`,
    );
    return r;
  } finally {
    await Promise.allSettled([gateway?.kill("SIGTERM"), worker?.kill("SIGTERM")].filter(Boolean) as Promise<number>[]);
    await Promise.allSettled([db.drop(), vhost.drop()]);
    rmSync(dir, { recursive: true, force: true });
  }
}

await ensureBinary();
console.log(`# worker drain: ${EVENTS} one-recipient ${CHANNEL === "email" ? "e-mail events (outbox)" : "in-app events"}, one worker, ${RUNS} runs`);
const runs = [];
for (let i = 1; i <= RUNS; i++) runs.push(await run(i));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  `median: ${fmt(median(runs.map((r) => r.rate)))} events/s; CPU per event: worker ${fmt(median(runs.map((r) => r.worker)), 3)} ms, PostgreSQL ${fmt(median(runs.map((r) => r.pg)), 3)} ms, RabbitMQ ${fmt(median(runs.map((r) => r.mq)), 3)} ms`,
);
