/**
 * The spine's figures (issue 2, SPEC 7), each printed beside the raw limit measured in the same run:
 *   1. durable acceptance at one compiled gateway (events/s) vs raw RabbitMQ publish-with-confirm;
 *      p50/p99 accept latency at half that load;
 *   2. event → e-mail end to end at an SMTP sink (delivered/s, after a warm-up) vs raw nodemailer pool → the same sink;
 *      p50/p99 POST → SMTP receipt at half the raw rate;
 *   3. peak RSS of the gateway and worker processes.
 *
 *   bun run build && bun bench/spine.ts [seconds=10]
 * Uses PostgreSQL and RabbitMQ on loopback (NOTIFY_TEST_DATABASE_URL / NOTIFY_TEST_AMQP_URL), a fresh
 * database and vhost per phase, removed afterwards.
 */
import { DEFAULT_SMTP_POOL } from "../src/channels/email.ts";
import { measureRawPublishRate } from "./amqp-publish.ts";
import { ensureBinary, startNotify } from "../test/support/binary.ts";
import { createTestDb, createTestVhost } from "../test/support/services.ts";
import { fmt, sampleRss, summary } from "./support/stats.ts";
import { eventBody, openLoop, saturate as load } from "./support/load.ts";
import { rawSmtpRate, startSink, waitDelivered } from "./support/sink.ts";

const SECONDS = Number(process.argv[2] ?? 10);
const KEY = "bench-admin-key-0123456789abcdef";
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);

async function stack(extraEnv: Record<string, string> = {}, withWorker = true) {
  const [db, vhost] = await Promise.all([createTestDb({ migrate: true }), createTestVhost()]);
  const env = { NOTIFY_DATABASE_URL: db.url, NOTIFY_AMQP_URL: vhost.url, NOTIFY_ADMIN_KEY: KEY, NOTIFY_LOG_LEVEL: "warn", NOTIFY_MAIL_FROM: "bench@notify.test", ...extraEnv };
  const gateway = await startNotify("gateway", env);
  const worker = withWorker ? await startNotify("worker", env) : undefined;
  const base = `http://127.0.0.1:${gateway.port}/api/v1`;
  const headers = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };
  await fetch(`${base}/templates/bench`, {
    method: "PUT",
    headers,
    body: JSON.stringify({ name: "Bench", variants: [{ channel: "email", subject: "{{ n }}", text: "Hello {{ name }}, your code is {{ code }}.\n{{ pad }}" }] }),
  });
  return {
    base,
    headers,
    gateway,
    worker,
    async stop() {
      await Promise.allSettled([gateway.kill("SIGTERM"), worker?.kill("SIGTERM")].filter(Boolean) as Promise<number>[]);
      await Promise.allSettled([db.drop(), vhost.drop()]);
    },
  };
}

/** Closed loop: CONCURRENCY requests in flight for `seconds`. Returns accepted/s. */
function saturate(base: string, headers: Record<string, string>, seconds: number, tag: string) {
  return load({ url: `${base}/events`, headers, body: (n) => eventBody(`${tag}-${n}`), seconds, concurrency: CONCURRENCY });
}

/** Open loop at `rate`/s for `seconds`, events tagged `tag-<i>`. */
function paced(base: string, headers: Record<string, string>, rate: number, seconds: number, tag: string) {
  return openLoop({ url: `${base}/events`, headers, body: eventBody, rate, seconds, tag });
}

async function main() {
  await ensureBinary();
  const results: Record<string, unknown> = { date: new Date().toISOString(), seconds: SECONDS, concurrency: CONCURRENCY };
  console.log(`# notify spine bench (${SECONDS}s phases, ${CONCURRENCY} concurrent clients)`);

  // 1. Durable acceptance.
  const raw = await measureRawPublishRate({ seconds: Math.min(SECONDS, 5), size: 1024 });
  console.log(`raw RabbitMQ publish with confirms (1 KB, quorum): ${fmt(raw.rate)} msg/s`);
  {
    const s = await stack({}, false);
    const rss = sampleRss({ gateway: s.gateway.proc.pid });
    await saturate(s.base, s.headers, 2, "warm");
    const sat = await saturate(s.base, s.headers, SECONDS, "acc");
    console.log(`durable acceptance at one gateway: ${fmt(sat.rate)} events/s (${fmt((sat.rate / raw.rate) * 100, 1)}% of raw; target ≥ 60%), errors ${sat.errors}`);
    const half = await paced(s.base, s.headers, sat.rate / 2, SECONDS, "half");
    const lat = summary(half.latencies);
    console.log(`accept latency at half load (${fmt(sat.rate / 2)}/s): p50 ${fmt(lat.p50, 1)} ms, p99 ${fmt(lat.p99, 1)} ms (target p99 ≤ 20 ms), errors ${half.errors}`);
    const peak = await rss.stop();
    results.acceptance = { raw_publish_rate: raw.rate, accepted_rate: sat.rate, ratio: sat.rate / raw.rate, half_load: sat.rate / 2, p50_ms: lat.p50, p99_ms: lat.p99, gateway_rss_mb: peak.gateway };
    await s.stop();
  }

  // 2. End to end by e-mail.
  const sink = await startSink();
  // The limit is the better of nodemailer's default pool (5) and notify's (16), each after a
  // warm-up of the sink (its first seconds run before the JIT has tiered it up).
  await rawSmtpRate(sink.port, 2, 5);
  const rawByPool = { 5: await rawSmtpRate(sink.port, Math.min(SECONDS, 5), 5), [DEFAULT_SMTP_POOL]: await rawSmtpRate(sink.port, Math.min(SECONDS, 5), DEFAULT_SMTP_POOL) };
  const rawSmtp = Math.max(...Object.values(rawByPool));
  console.log(`raw nodemailer pool → SMTP sink: ${fmt(rawSmtp)} msg/s (${Object.entries(rawByPool).map(([k, r]) => `${k} connections ${fmt(r)}`).join(", ")})`);
  {
    // The worker's own SMTP pool (NOTIFY_SMTP_POOL, default DEFAULT_SMTP_POOL).
    const s = await stack({ NOTIFY_SMTP_URL: `smtp://127.0.0.1:${sink.port}?starttls=off`, NOTIFY_WORKER_CONCURRENCY: "64" });
    const rss = sampleRss({ gateway: s.gateway.proc.pid, worker: s.worker!.proc.pid });
    // Warm-up, as the acceptance phase has: fresh processes spend their first seconds compiling
    // (JavaScriptCore's JIT threads took ≈ 11 % of the machine's CPU in an unwarmed run).
    const warm = await paced(s.base, s.headers, rawSmtp / 2, 3, "e2ewarm");
    await waitDelivered(sink, warm.sentAt.keys(), 120_000);
    // Throughput: post a burst of SECONDS × raw rate events as fast as accepted; delivered/s over the whole drain.
    const n = Math.round(rawSmtp * SECONDS);
    const t0 = Date.now();
    const burst = await paced(s.base, s.headers, rawSmtp * 3, n / (rawSmtp * 3), "e2e");
    const got = await waitDelivered(sink, burst.sentAt.keys(), 120_000);
    const last = Math.max(...[...burst.sentAt.keys()].map((k) => sink.receipts.get(k) ?? 0));
    const deliveredRate = got / ((last - t0) / 1000);
    console.log(`event → e-mail end to end: ${fmt(deliveredRate)} delivered/s (${got}/${burst.total}; ${fmt((deliveredRate / rawSmtp) * 100, 1)}% of raw; target ≥ 70%)`);
    // Latency at half the raw rate.
    const half = await paced(s.base, s.headers, rawSmtp / 2, SECONDS, "e2ehalf");
    const got2 = await waitDelivered(sink, half.sentAt.keys(), 60_000);
    const lats = [...half.sentAt].filter(([k]) => sink.receipts.has(k)).map(([k, t]) => sink.receipts.get(k)! - t);
    const l = summary(lats);
    console.log(`POST → SMTP receipt at half load (${fmt(rawSmtp / 2)}/s): p50 ${fmt(l.p50)} ms, p99 ${fmt(l.p99)} ms (target p99 ≤ 250 ms), delivered ${got2}/${half.total}`);
    const peak = await rss.stop();
    console.log(`peak RSS: gateway ${peak.gateway} MB, worker ${peak.worker} MB (target ≤ 150 MB each)`);
    results.email = { raw_smtp_rate: rawSmtp, raw_smtp_by_pool: rawByPool, delivered_rate: deliveredRate, ratio: deliveredRate / rawSmtp, delivered: got, posted: burst.total, half_load: rawSmtp / 2, p50_ms: l.p50, p99_ms: l.p99, rss_mb: peak };
    await s.stop();
  }
  await sink.stop();
  await Bun.write(`${import.meta.dir}/../.bench/spine.json`, JSON.stringify(results, null, 2));
  process.exit(0);
}

await main();
