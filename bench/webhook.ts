/**
 * Webhook channel end to end (issue 3 target: ≥ 5k deliveries/s), beside the raw HTTP-sink rate
 * measured in the same run:
 *   raw:  this process POSTs signed-size JSON bodies straight to the sink (fetch, keep-alive, C in flight);
 *   e2e:  POST /events (R recipients each, channel webhook) → compiled notify (all roles) → RabbitMQ →
 *         worker → SSRF-safe client → the same sink. Rate = deliveries received / time from the first
 *         POST to the last receipt.
 *
 *   bun run build && bun bench/webhook.ts [deliveries=20000] [recipients-per-event=100]
 */
import { ensureBinary, startNotify } from "../test/support/binary.ts";
import { createTestDb, createTestVhost } from "../test/support/services.ts";
import { generateWebhookSecret } from "../src/net/webhook-signature.ts";
import { fmt, sampleRss } from "./support/stats.ts";

const TOTAL = Number(process.argv[2] ?? 20_000);
const PER_EVENT = Number(process.argv[3] ?? 100);
const TARGET = 5_000;
const KEY = "bench-admin-key-0123456789abcdef";
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);

let received = 0;
let lastAt = 0;
// 127.0.0.2: the webhook channel is allowed to reach only this private address (NOTIFY_WEBHOOK_ALLOW_LIST).
const sink = Bun.serve({
  hostname: "127.0.0.2",
  port: 0,
  async fetch(req) {
    await req.arrayBuffer();
    received++;
    lastAt = performance.now();
    return new Response(null, { status: 204 });
  },
});
const sinkUrl = `http://127.0.0.2:${sink.port}`;

async function rawRate(n: number): Promise<number> {
  const body = JSON.stringify({ type: "bench", timestamp: new Date().toISOString(), data: { text: "x".repeat(200) } });
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < n) await (await fetch(`${sinkUrl}/raw`, { method: "POST", body, headers: { "content-type": "application/json" } })).arrayBuffer();
    }),
  );
  return n / ((performance.now() - started) / 1000);
}

await ensureBinary();
const [db, vhost] = await Promise.all([createTestDb({ migrate: false }), createTestVhost()]);
try {
  const raw = await rawRate(Math.min(TOTAL, 20_000));
  received = 0;
  const notify = await startNotify("all", {
    NOTIFY_DATABASE_URL: db.url,
    NOTIFY_AMQP_URL: vhost.url,
    NOTIFY_ADMIN_KEY: KEY,
    NOTIFY_LOG_LEVEL: "warn",
    NOTIFY_WEBHOOK_SECRET: generateWebhookSecret(),
    NOTIFY_WEBHOOK_ALLOW_LIST: "127.0.0.2",
    NOTIFY_WORKER_CONCURRENCY: String(CONCURRENCY),
  });
  const rss = sampleRss({ notify: notify.proc.pid });
  const base = `http://127.0.0.1:${notify.port}/api/v1`;
  const headers = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };
  const events = Math.ceil(TOTAL / PER_EVENT);
  const started = performance.now();
  let e = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (e < events) {
        const i = e++;
        const to = Array.from({ length: PER_EVENT }, (_, j) => ({ user_id: `b${i}-${j}`, attributes: { webhook_url: `${sinkUrl}/hook` } }));
        const res = await fetch(`${base}/events`, { method: "POST", headers, body: JSON.stringify({ event: "bench.webhook", to, channels: ["webhook"], title: "Bench", body: "x".repeat(150) }) });
        if (res.status !== 202) throw new Error(`POST /events: ${res.status} ${await res.text()}`);
      }
    }),
  );
  const want = events * PER_EVENT;
  const deadline = Date.now() + 300_000;
  while (received < want && Date.now() < deadline) await Bun.sleep(50);
  const seconds = (lastAt - started) / 1000;
  const rate = received / seconds;
  const peak = await rss.stop();
  console.log(`raw HTTP sink (fetch, ${CONCURRENCY} in flight):   ${fmt(raw)} req/s`);
  console.log(`webhook end to end (${fmt(want)} deliveries, ${PER_EVENT}/event): ${fmt(rate)} deliveries/s in ${fmt(seconds, 2)} s (${fmt((rate / raw) * 100, 1)}% of raw; target ≥ ${fmt(TARGET)}/s: ${rate >= TARGET ? "met" : "NOT met"})`);
  console.log(`received ${fmt(received)}/${fmt(want)}; peak RSS notify ${fmt(peak.notify ?? 0)} MB`);
  await notify.kill("SIGTERM");
} finally {
  sink.stop(true);
  await Promise.allSettled([db.drop(), vhost.drop()]);
}
