/**
 * What durable acceptance can reach on this machine at all, beside what the gateway reaches, in one
 * run and with one load generator (issue 2's target: ≥ 60 % of the raw publish-with-confirm rate):
 *   1. raw RabbitMQ publish with confirms (the target's denominator, bench/amqp-publish.ts);
 *   2. Bun.serve answering 202 after JSON.parse: the HTTP ceiling with this load generator;
 *   3. the least a durable accept can do: Bun.serve, group-committed INSERT into notify's own
 *      notifications table and publish with confirms, in parallel, then 202 (bench/support/
 *      accept-floor-server.ts; no auth, validation, idempotency, audit, metrics or logs), once
 *      with one broker message per request (as notify publishes events) and once with the requests
 *      of one flush packed into one message;
 *   4. the compiled gateway, with everything.
 * Each HTTP figure is printed with its share of (1) and the CPU each process spent per request.
 *
 *   bun run build && bun bench/accept-floor.ts [seconds=6]
 */
import { measureRawPublishRate } from "./amqp-publish.ts";
import { ensureBinary, startNotify } from "../test/support/binary.ts";
import { createTestDb, createTestVhost } from "../test/support/services.ts";
import { eventBody, saturate } from "./support/load.ts";
import { fmt } from "./support/stats.ts";

const SECONDS = Number(process.argv[2] ?? 6);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const KEY = "bench-admin-key-0123456789abcdef";

/** CPU seconds used so far by the processes whose command line matches. */
async function cpu(match: RegExp): Promise<number> {
  let ticks = 0;
  for (const pid of new Bun.Glob("[0-9]*").scanSync({ cwd: "/proc", onlyFiles: false })) {
    try {
      const cmd = await Bun.file(`/proc/${pid}/cmdline`).text();
      if (!match.test(cmd)) continue;
      const stat = (await Bun.file(`/proc/${pid}/stat`).text()).split(") ")[1]!.split(" ");
      ticks += Number(stat[11]) + Number(stat[12]);
    } catch {}
  }
  return ticks / 100;
}

/** Runs the load against `url` and prints rate, share of raw and CPU per request by process. */
async function measure(label: string, url: string, headers: Record<string, string>, server: RegExp, raw: number): Promise<number> {
  await saturate({ url, headers, body: (n) => eventBody(`warm-${n}`), seconds: 2, concurrency: CONCURRENCY });
  const groups: Record<string, RegExp> = { server, postgres: /^postgres/, rabbitmq: /beam/ };
  const before = Object.fromEntries(await Promise.all(Object.entries(groups).map(async ([k, re]) => [k, await cpu(re)] as const)));
  const me = process.cpuUsage();
  const r = await saturate({ url, headers, body: (n) => eventBody(`run-${n}`), seconds: SECONDS, concurrency: CONCURRENCY });
  const mine = process.cpuUsage(me);
  const per = async (k: string) => `${k} ${fmt((((await cpu(groups[k]!)) - before[k]!) / r.count) * 1e6)}`;
  const costs = [await per("server"), await per("postgres"), await per("rabbitmq"), `load generator ${fmt((mine.user + mine.system) / r.count)}`];
  console.log(`${label}: ${fmt(r.rate)} req/s = ${fmt((r.rate / raw) * 100, 1)}% of raw; CPU µs per request: ${costs.join(", ")}${r.errors ? `; errors ${r.errors}` : ""}`);
  return r.rate;
}

async function floorServer(mode: "hello" | "durable", env: Record<string, string>) {
  const proc = Bun.spawn([process.execPath, `${import.meta.dir}/support/accept-floor-server.ts`], {
    env: { ...process.env, ...env, FLOOR_MODE: mode },
    stdout: "pipe",
    stderr: "inherit",
  });
  const { value } = await proc.stdout.getReader().read();
  const port = Number(/ready (\d+)/.exec(new TextDecoder().decode(value))?.[1]);
  if (!port) throw new Error(`accept-floor-server (${mode}) did not start`);
  return { url: `http://127.0.0.1:${port}/`, stop: async () => void (proc.kill(), await proc.exited) };
}

await ensureBinary();
console.log(`# durable acceptance: the floor and the gateway (${SECONDS}s phases, ${CONCURRENCY} concurrent clients)`);
const raw = (await measureRawPublishRate({ seconds: Math.min(SECONDS, 5), size: 1024 })).rate;
console.log(`raw RabbitMQ publish with confirms (1 KB, quorum): ${fmt(raw)} msg/s`);
const json = { "content-type": "application/json" };
{
  const s = await floorServer("hello", {});
  await measure("Bun.serve, JSON.parse, 202 (HTTP ceiling)", s.url, json, /accept-floor-server/, raw);
  await s.stop();
}
{
  const [db, vhost] = await Promise.all([createTestDb({ migrate: true }), createTestVhost()]);
  for (const pack of ["0", "1"]) {
    const s = await floorServer("durable", { FLOOR_DB: db.url, FLOOR_AMQP: vhost.url, FLOOR_PACK: pack });
    const what = pack === "1" ? "one message per flush" : "one message per request";
    await measure(`least durable accept (INSERT + publish with confirms, ${what})`, s.url, json, /accept-floor-server/, raw);
    await s.stop();
  }
  await Promise.allSettled([db.drop(), vhost.drop()]);
}
{
  const [db, vhost] = await Promise.all([createTestDb({ migrate: true }), createTestVhost()]);
  const env = { NOTIFY_DATABASE_URL: db.url, NOTIFY_AMQP_URL: vhost.url, NOTIFY_ADMIN_KEY: KEY, NOTIFY_LOG_LEVEL: "warn" };
  const gw = await startNotify("gateway", env);
  const base = `http://127.0.0.1:${gw.port}/api/v1`;
  const headers = { authorization: `Bearer ${KEY}`, ...json };
  await fetch(`${base}/templates/bench`, { method: "PUT", headers, body: JSON.stringify({ name: "Bench", variants: [{ channel: "email", subject: "{{ n }}", text: "Hello {{ name }}" }] }) });
  await measure("notify gateway (compiled)", `${base}/events`, headers, /--role=gateway/, raw);
  await gw.kill("SIGTERM");
  await Promise.allSettled([db.drop(), vhost.drop()]);
}
process.exit(0);
