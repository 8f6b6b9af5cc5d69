/**
 * What the spine's targets (issue 2) could reach on this machine at all, beside what notify reaches,
 * in one run with one load generator. Each figure is printed with its share of the raw limit the
 * target divides by, and the CPU each process spent per request or e-mail.
 *
 * Durable acceptance (target ≥ 60 % of the raw publish-with-confirm rate):
 *   1. raw RabbitMQ publish with confirms (bench/amqp-publish.ts);
 *   2. Bun.serve answering 202 after JSON.parse: the HTTP ceiling with this load generator;
 *   3. the least a durable accept can do: Bun.serve, group-committed INSERT into notify's own
 *      notifications table and publish with confirms, in parallel, then 202
 *      (bench/support/accept-floor-server.ts; no auth, validation, idempotency, audit, metrics or
 *      logs), once with one broker message per request (as notify publishes events) and once with
 *      the requests of one flush packed into one message;
 *   4. the compiled gateway.
 * Event → e-mail (target ≥ 70 % of the raw nodemailer → sink rate):
 *   5. raw nodemailer pool → SMTP sink, the better of 5 and 16 connections;
 *   6. the least pipeline: (3) with one message per request, and a worker that sends each event with
 *      nodemailer and acks it (bench/support/email-floor-worker.ts; no recipients, templates,
 *      delivery records, idempotency or retries);
 *   7. the compiled gateway and worker.
 * (6) and (7) get the same warm-up (3 s at half the raw rate, until delivered) and then the same
 * burst (the raw rate × seconds events, posted at up to 3× the raw rate); delivered/s is over the
 * whole burst, from its first POST to its last receipt.
 *
 *   bun run build && bun bench/floor.ts [seconds=6]
 */
import { DEFAULT_SMTP_POOL } from "../src/channels/email.ts";
import { measureRawPublishRate } from "./amqp-publish.ts";
import { ensureBinary, startNotify } from "../test/support/binary.ts";
import { createTestDb, createTestVhost } from "../test/support/services.ts";
import { eventBody, openLoop, saturate } from "./support/load.ts";
import { rawSmtpRate, startSink, waitDelivered, type Sink } from "./support/sink.ts";
import { fmt } from "./support/stats.ts";

const SECONDS = Number(process.argv[2] ?? 6);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const KEY = "bench-admin-key-0123456789abcdef";
const JSON_TYPE = { "content-type": "application/json" };
const GROUPS: Record<string, RegExp> = { postgres: /^postgres/, rabbitmq: /beam/, sink: /smtp-sink/ };

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

/** CPU per unit of work, by process group, over `work()`; the load generator is this process. */
async function costs<T>(groups: Record<string, RegExp>, work: () => Promise<T>, units: (r: T) => number): Promise<{ result: T; text: string }> {
  const before = Object.fromEntries(await Promise.all(Object.entries(groups).map(async ([k, re]) => [k, await cpu(re)] as const)));
  const me = process.cpuUsage();
  const result = await work();
  const mine = process.cpuUsage(me);
  const n = units(result);
  const parts = await Promise.all(Object.entries(groups).map(async ([k, re]) => `${k} ${fmt((((await cpu(re)) - before[k]!) / n) * 1e6)}`));
  return { result, text: [...parts, `load generator ${fmt((mine.user + mine.system) / n)}`].join(", ") };
}

async function accept(label: string, url: string, headers: Record<string, string>, server: Record<string, RegExp>, raw: number): Promise<void> {
  await saturate({ url, headers, body: (n) => eventBody(`warm-${n}`), seconds: 2, concurrency: CONCURRENCY });
  const { result: r, text } = await costs({ ...server, postgres: GROUPS.postgres!, rabbitmq: GROUPS.rabbitmq! }, () => saturate({ url, headers, body: (n) => eventBody(`run-${n}`), seconds: SECONDS, concurrency: CONCURRENCY }), (r) => r.count);
  console.log(`${label}: ${fmt(r.rate)} req/s = ${fmt((r.rate / raw) * 100, 1)}% of raw; CPU µs per request: ${text}${r.errors ? `; errors ${r.errors}` : ""}`);
}

/** The burst of (6) and (7): delivered/s over it, and CPU per e-mail. */
async function email(label: string, url: string, headers: Record<string, string>, workers: Record<string, RegExp>, sink: Sink, raw: number, tag: string): Promise<void> {
  // Warm-up, as for acceptance: fresh processes spend their first seconds compiling.
  const warm = await openLoop({ url, headers, body: eventBody, rate: raw / 2, seconds: 3, tag: `${tag}warm` });
  await waitDelivered(sink, warm.sentAt.keys(), 120_000);
  const n = Math.round(raw * SECONDS);
  const { result, text } = await costs(
    { ...workers, ...GROUPS },
    async () => {
      const t0 = Date.now();
      const burst = await openLoop({ url, headers, body: eventBody, rate: raw * 3, seconds: n / (raw * 3), tag });
      const got = await waitDelivered(sink, burst.sentAt.keys(), 180_000);
      const last = Math.max(...[...burst.sentAt.keys()].map((k) => sink.receipts.get(k) ?? 0));
      return { got, total: burst.total, rate: got / ((last - t0) / 1000) };
    },
    (r) => r.got,
  );
  console.log(`${label}: ${fmt(result.rate)} delivered/s (${result.got}/${result.total}) = ${fmt((result.rate / raw) * 100, 1)}% of raw; CPU µs per e-mail: ${text}`);
}

function spawnReady(script: string, env: Record<string, string>) {
  const proc = Bun.spawn([process.execPath, `${import.meta.dir}/support/${script}`], { env: { ...process.env, ...env }, stdout: "pipe", stderr: "inherit" });
  return (async () => {
    const { value } = await proc.stdout.getReader().read();
    const line = new TextDecoder().decode(value);
    if (!line.startsWith("ready")) throw new Error(`${script} did not start`);
    return { port: Number(line.split(" ")[1]), stop: async () => void (proc.kill(), await proc.exited) };
  })();
}

async function notifyStack(extra: Record<string, string>, worker: boolean) {
  const [db, vhost] = await Promise.all([createTestDb({ migrate: true }), createTestVhost()]);
  const env = { NOTIFY_DATABASE_URL: db.url, NOTIFY_AMQP_URL: vhost.url, NOTIFY_ADMIN_KEY: KEY, NOTIFY_LOG_LEVEL: "warn", NOTIFY_MAIL_FROM: "bench@notify.test", ...extra };
  const gw = await startNotify("gateway", env);
  const wk = worker ? await startNotify("worker", env) : undefined;
  const base = `http://127.0.0.1:${gw.port}/api/v1`;
  const headers = { authorization: `Bearer ${KEY}`, ...JSON_TYPE };
  await fetch(`${base}/templates/bench`, {
    method: "PUT",
    headers,
    body: JSON.stringify({ name: "Bench", variants: [{ channel: "email", subject: "{{ n }}", text: "Hello {{ name }}, your code is {{ code }}.\n{{ pad }}" }] }),
  });
  return {
    url: `${base}/events`,
    headers,
    stop: async () => {
      await Promise.allSettled([gw.kill("SIGTERM"), wk?.kill("SIGTERM")]);
      await Promise.allSettled([db.drop(), vhost.drop()]);
    },
  };
}

async function floorStack(env: Record<string, string>, worker?: Record<string, string>) {
  const [db, vhost] = await Promise.all([createTestDb({ migrate: true }), createTestVhost()]);
  const server = await spawnReady("accept-floor-server.ts", { FLOOR_MODE: "durable", FLOOR_DB: db.url, FLOOR_AMQP: vhost.url, ...env });
  const w = worker ? await spawnReady("email-floor-worker.ts", { FLOOR_AMQP: vhost.url, ...worker }) : undefined;
  return {
    url: `http://127.0.0.1:${server.port}/`,
    stop: async () => {
      await Promise.allSettled([server.stop(), w?.stop()]);
      await Promise.allSettled([db.drop(), vhost.drop()]);
    },
  };
}

await ensureBinary();
console.log(`# the spine's targets: what this machine allows, and notify (${SECONDS}s phases, ${CONCURRENCY} concurrent clients)`);
const FLOOR = { server: /accept-floor-server/ };

const raw = (await measureRawPublishRate({ seconds: Math.min(SECONDS, 5), size: 1024 })).rate;
console.log(`raw RabbitMQ publish with confirms (1 KB, quorum): ${fmt(raw)} msg/s`);
{
  const s = await spawnReady("accept-floor-server.ts", { FLOOR_MODE: "hello" });
  await accept("Bun.serve, JSON.parse, 202 (HTTP ceiling)", `http://127.0.0.1:${s.port}/`, JSON_TYPE, FLOOR, raw);
  await s.stop();
}
for (const pack of ["0", "1"]) {
  const s = await floorStack({ FLOOR_PACK: pack });
  await accept(`least durable accept (INSERT + publish with confirms, one message per ${pack === "1" ? "flush" : "request"})`, s.url, JSON_TYPE, FLOOR, raw);
  await s.stop();
}
{
  const s = await notifyStack({}, false);
  await accept("notify gateway (compiled)", s.url, s.headers, { gateway: /--role=gateway/ }, raw);
  await s.stop();
}

const sink = await startSink();
await rawSmtpRate(sink.port, 2, 5); // the sink's warm-up
const rawByPool = { 5: await rawSmtpRate(sink.port, Math.min(SECONDS, 5), 5), [DEFAULT_SMTP_POOL]: await rawSmtpRate(sink.port, Math.min(SECONDS, 5), DEFAULT_SMTP_POOL) };
const rawSmtp = Math.max(...Object.values(rawByPool));
console.log(`raw nodemailer pool → SMTP sink: ${fmt(rawSmtp)} msg/s (${Object.entries(rawByPool).map(([k, r]) => `${k} connections ${fmt(r)}`).join(", ")})`);
{
  const s = await floorStack({ FLOOR_PACK: "0" }, { FLOOR_SMTP_PORT: String(sink.port), FLOOR_POOL: String(DEFAULT_SMTP_POOL) });
  await email("least e-mail pipeline (floor accept + a worker that only sends and acks)", s.url, JSON_TYPE, { server: /accept-floor-server/, worker: /email-floor-worker/ }, sink, rawSmtp, "floor");
  await s.stop();
}
{
  const s = await notifyStack({ NOTIFY_SMTP_URL: `smtp://127.0.0.1:${sink.port}?starttls=off`, NOTIFY_WORKER_CONCURRENCY: "64" }, true);
  await email("notify gateway + worker (compiled)", s.url, s.headers, { gateway: /--role=gateway/, worker: /--role=worker/ }, sink, rawSmtp, "notify");
  await s.stop();
}
await sink.stop();
process.exit(0);
