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
 *   5. raw nodemailer pool → SMTP sink, the better of 5 and 16 connections, nodemailer composing
 *      each message; beside it, finished messages handed over raw, as notify sends them;
 *   6. the least pipeline: (3) with one message per request, and a worker that sends each event
 *      with nodemailer as a finished message and acks it (bench/support/email-floor-worker.ts; no
 *      recipients, templates, delivery records, idempotency or retries);
 *   7. the compiled gateway and worker.
 * (6) and (7) get the same warm-up (3 s at half the raw rate, until delivered) and then the same
 * burst (the raw rate × seconds events, posted at up to 3× the raw rate); delivered/s is over the
 * whole burst, from its first POST to its last receipt.
 *
 *   bun run build && bun bench/floor.ts [seconds=6]     (FLOOR_ONLY=accept: the acceptance phases only)
 */
import { DEFAULT_SMTP_POOL } from "../src/channels/email.ts";
import { measureRawPublishRate } from "./amqp-publish.ts";
import { ensureBinary } from "../test/support/binary.ts";
import { createTestDb, createTestVhost } from "../test/support/services.ts";
import { eventBody, saturate } from "./support/load.ts";
import { emailBurst, emailWarmUp, rawSmtpLimit, startSink, type Sink } from "./support/sink.ts";
import { notifyStack } from "./support/stack.ts";
import { costs, fmt, pids, SERVICES, type Match } from "./support/stats.ts";

const SECONDS = Number(process.argv[2] ?? 6);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const JSON_TYPE = { "content-type": "application/json" };

async function accept(label: string, url: string, headers: Record<string, string>, server: Record<string, Match>, raw: number): Promise<void> {
  await saturate({ url, headers, body: (n) => eventBody(`warm-${n}`), seconds: 2, concurrency: CONCURRENCY });
  const { result: r, text } = await costs({ ...server, ...SERVICES }, () => saturate({ url, headers, body: (n) => eventBody(`run-${n}`), seconds: SECONDS, concurrency: CONCURRENCY }), (r) => r.count);
  console.log(`${label}: ${fmt(r.rate)} req/s = ${fmt((r.rate / raw) * 100, 1)}% of raw; CPU µs per request: ${text}${r.errors ? `; errors ${r.errors}` : ""}`);
}

/** (6) and (7): delivered/s over the burst after a warm-up (support/sink.ts), and CPU per e-mail over the burst. */
async function email(label: string, url: string, headers: Record<string, string>, workers: Record<string, Match>, sink: Sink, raw: number, prebuilt: number, tag: string): Promise<void> {
  await emailWarmUp({ url, headers, sink, raw, tag });
  const { result, text } = await costs({ ...workers, ...SERVICES, sink: pids(sink.pid) }, () => emailBurst({ url, headers, sink, raw, seconds: SECONDS, tag }), (r) => r.got);
  console.log(
    `${label}: ${fmt(result.rate)} delivered/s (${result.got}/${result.total}) = ${fmt((result.rate / raw) * 100, 1)}% of raw, ` +
      `${fmt((result.rate / prebuilt) * 100, 1)}% of raw with prebuilt messages; CPU µs per e-mail: ${text}`,
  );
}

function spawnReady(script: string, env: Record<string, string>) {
  const proc = Bun.spawn([process.execPath, `${import.meta.dir}/support/${script}`], { env: { ...process.env, ...env }, stdout: "pipe", stderr: "inherit" });
  return (async () => {
    const { value } = await proc.stdout.getReader().read();
    const line = new TextDecoder().decode(value);
    if (!line.startsWith("ready")) throw new Error(`${script} did not start`);
    return { port: Number(line.split(" ")[1]), pid: proc.pid, stop: async () => void (proc.kill(), await proc.exited) };
  })();
}

async function floorStack(env: Record<string, string>, worker?: Record<string, string>) {
  const [db, vhost] = await Promise.all([createTestDb({ migrate: true }), createTestVhost()]);
  const server = await spawnReady("accept-floor-server.ts", { FLOOR_MODE: "durable", FLOOR_DB: db.url, FLOOR_AMQP: vhost.url, ...env });
  const w = worker ? await spawnReady("email-floor-worker.ts", { FLOOR_AMQP: vhost.url, ...worker }) : undefined;
  return {
    url: `http://127.0.0.1:${server.port}/`,
    server: pids(server.pid),
    worker: pids(w?.pid ?? -1),
    stop: async () => {
      await Promise.allSettled([server.stop(), w?.stop()]);
      await Promise.allSettled([db.drop(), vhost.drop()]);
    },
  };
}

await ensureBinary();
console.log(`# the spine's targets: what this machine allows, and notify (${SECONDS}s phases, ${CONCURRENCY} concurrent clients)`);

const raw = (await measureRawPublishRate({ seconds: Math.min(SECONDS, 5), size: 1024 })).rate;
console.log(`raw RabbitMQ publish with confirms (1 KB, quorum): ${fmt(raw)} msg/s`);
{
  const s = await spawnReady("accept-floor-server.ts", { FLOOR_MODE: "hello" });
  await accept("Bun.serve, JSON.parse, 202 (HTTP ceiling)", `http://127.0.0.1:${s.port}/`, JSON_TYPE, { server: pids(s.pid) }, raw);
  await s.stop();
}
for (const pack of ["0", "1"]) {
  const s = await floorStack({ FLOOR_PACK: pack });
  await accept(`least durable accept (INSERT + publish with confirms, one message per ${pack === "1" ? "flush" : "request"})`, s.url, JSON_TYPE, { server: s.server }, raw);
  await s.stop();
}
{
  const s = await floorStack({ FLOOR_PACK: "1", FLOOR_STORE: "0" });
  await accept("broker-only accept (publish with confirms, one message per flush; no PostgreSQL)", s.url, JSON_TYPE, { server: s.server }, raw);
  await s.stop();
}
{
  const s = await notifyStack({}, false);
  await accept("notify gateway (compiled)", s.url, s.headers, { gateway: pids(s.gateway.proc.pid) }, raw);
  await s.stop();
}

if (process.env.FLOOR_ONLY === "accept") process.exit(0);
const sink = await startSink();
const limit = await rawSmtpLimit(sink.port, Math.min(SECONDS, 5));
const rawSmtp = limit.rate;
console.log(`raw nodemailer pool → SMTP sink: ${fmt(rawSmtp)} msg/s (${limit.text})`);
{
  const s = await floorStack({ FLOOR_PACK: "0" }, { FLOOR_SMTP_PORT: String(sink.port), FLOOR_POOL: String(DEFAULT_SMTP_POOL) });
  await email("least e-mail pipeline (floor accept + a worker that only sends and acks)", s.url, JSON_TYPE, { server: s.server, worker: s.worker }, sink, rawSmtp, limit.prebuilt, "floor");
  await s.stop();
}
{
  const s = await notifyStack({ NOTIFY_SMTP_URL: `smtp://127.0.0.1:${sink.port}?starttls=off`, NOTIFY_WORKER_CONCURRENCY: "64" }, true);
  await email("notify gateway + worker (compiled)", s.url, s.headers, { gateway: pids(s.gateway.proc.pid), worker: pids(s.worker!.proc.pid) }, sink, rawSmtp, limit.prebuilt, "notify");
  await s.stop();
}
await sink.stop();
process.exit(0);
