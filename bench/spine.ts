/**
 * The spine's figures (issue 2, SPEC 7), each printed beside the raw limit measured in the same run:
 *   1. durable acceptance at one compiled gateway (events/s) vs raw RabbitMQ publish-with-confirm;
 *      p50/p99 accept latency at half that load, as the load generator measures it, and the share
 *      within 20 ms of the gateway's own accept histogram (request to durable acceptance);
 *   2. event → e-mail end to end at an SMTP sink (delivered/s, after a warm-up) vs raw nodemailer pool → the same sink
 *      (nodemailer composing each message, and beside it handed finished messages as notify does);
 *      p50/p99 POST → SMTP receipt at half the raw rate, and at half the delivered rate (as the
 *      acceptance latency is measured: at half of what the pipeline itself sustains);
 *   3. peak RSS of the gateway and worker processes.
 *
 *   bun run build && bun bench/spine.ts [seconds=10]
 * Uses PostgreSQL and RabbitMQ on loopback (NOTIFY_TEST_DATABASE_URL / NOTIFY_TEST_AMQP_URL), a fresh
 * database and vhost per phase, removed afterwards.
 */
import { measureRawPublishRate } from "./amqp-publish.ts";
import { ensureBinary } from "../test/support/binary.ts";
import { acceptHistogram, fmt, sampleRss, shareWithin, summary } from "./support/stats.ts";
import { eventBody, openLoop, saturate as load } from "./support/load.ts";
import { emailBurst, emailWarmUp, rawSmtpLimit, startSink, waitDelivered } from "./support/sink.ts";
import { notifyStack as stack } from "./support/stack.ts";

const SECONDS = Number(process.argv[2] ?? 10);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);

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
    const metricsUrl = s.base.replace(/\/api\/v1$/, "/metrics");
    const h0 = await acceptHistogram(metricsUrl, s.headers);
    const half = await paced(s.base, s.headers, sat.rate / 2, SECONDS, "half");
    const h1 = await acceptHistogram(metricsUrl, s.headers);
    const lat = summary(half.latencies);
    const within20 = shareWithin(h0, h1, "0.02");
    console.log(
      `accept latency at half load (${fmt(sat.rate / 2)}/s): p50 ${fmt(lat.p50, 1)} ms, p99 ${fmt(lat.p99, 1)} ms (target p99 ≤ 20 ms), errors ${half.errors}; ` +
        `the gateway's own accept histogram: ${fmt(within20 * 100, 2)}% within 20 ms`,
    );
    const peak = await rss.stop();
    results.acceptance = { raw_publish_rate: raw.rate, accepted_rate: sat.rate, ratio: sat.rate / raw.rate, half_load: sat.rate / 2, p50_ms: lat.p50, p99_ms: lat.p99, server_share_within_20ms: within20, gateway_rss_mb: peak.gateway };
    await s.stop();
  }

  // 2. End to end by e-mail.
  const sink = await startSink();
  const limit = await rawSmtpLimit(sink.port, Math.min(SECONDS, 5));
  const rawSmtp = limit.rate;
  console.log(`raw nodemailer pool → SMTP sink: ${fmt(rawSmtp)} msg/s (${limit.text})`);
  {
    // The worker's own SMTP pool (NOTIFY_SMTP_POOL, default DEFAULT_SMTP_POOL).
    const s = await stack({ NOTIFY_SMTP_URL: `smtp://127.0.0.1:${sink.port}?starttls=off`, NOTIFY_WORKER_CONCURRENCY: "64" });
    const rss = sampleRss({ gateway: s.gateway.proc.pid, worker: s.worker!.proc.pid });
    await emailWarmUp({ url: s.url, headers: s.headers, sink, raw: rawSmtp, tag: "e2e" });
    const { rate: deliveredRate, got, total } = await emailBurst({ url: s.url, headers: s.headers, sink, raw: rawSmtp, seconds: SECONDS, tag: "e2e" });
    console.log(
      `event → e-mail end to end: ${fmt(deliveredRate)} delivered/s (${got}/${total}; ${fmt((deliveredRate / rawSmtp) * 100, 1)}% of raw; target ≥ 70%; ` +
        `${fmt((deliveredRate / limit.prebuilt) * 100, 1)}% of raw with prebuilt messages)`,
    );
    // Latency at half the raw rate, then at half the delivered rate.
    const latency = async (rate: number, tag: string, what: string) => {
      const half = await paced(s.base, s.headers, rate, SECONDS, tag);
      const got2 = await waitDelivered(sink, half.sentAt.keys(), 60_000);
      const l = summary([...half.sentAt].filter(([k]) => sink.receipts.has(k)).map(([k, t]) => sink.receipts.get(k)! - t));
      console.log(`POST → SMTP receipt at ${what} (${fmt(rate)}/s): p50 ${fmt(l.p50)} ms, p99 ${fmt(l.p99)} ms (target p99 ≤ 250 ms), delivered ${got2}/${half.total}`);
      return { rate, p50_ms: l.p50, p99_ms: l.p99 };
    };
    const halfRaw = await latency(rawSmtp / 2, "e2ehalf", "half the raw rate");
    const halfDelivered = await latency(deliveredRate / 2, "e2ehalfd", "half the delivered rate");
    const peak = await rss.stop();
    console.log(`peak RSS: gateway ${peak.gateway} MB, worker ${peak.worker} MB (target ≤ 150 MB each)`);
    results.email = {
      raw_smtp_rate: rawSmtp,
      raw_smtp_by_pool: limit.byPool,
      raw_smtp_prebuilt_rate: limit.prebuilt,
      delivered_rate: deliveredRate,
      ratio: deliveredRate / rawSmtp,
      ratio_prebuilt: deliveredRate / limit.prebuilt,
      delivered: got,
      posted: total,
      latency_half_raw: halfRaw,
      latency_half_delivered: halfDelivered,
      rss_mb: peak,
    };
    await s.stop();
  }
  await sink.stop();
  await Bun.write(`${import.meta.dir}/../.bench/spine.json`, JSON.stringify(results, null, 2));
  process.exit(0);
}

await main();
