/**
 * Webhook and in-app channels end to end (issue 3 target: ≥ 5k deliveries/s), beside the raw limit
 * measured in the same run:
 *   webhook raw: this process POSTs signed-size JSON bodies straight to the sink (fetch, keep-alive, C in flight);
 *   webhook e2e: POST /events (R recipients each, channel webhook) → compiled notify (all roles) →
 *                RabbitMQ → worker → SSRF-safe client → the same sink.
 *   in_app raw:  announcement-sized messages published with confirms to the realtime exchange (C in flight);
 *   in_app e2e:  POST /events (R recipients each, channel in_app) → notify → worker → inbox row committed
 *                and announced → received here from the realtime exchange, as a gateway receives it.
 *   Rate = deliveries received / time from the first POST to the last receipt.
 *
 *   bun run build && bun bench/webhook.ts [deliveries=100000] [recipients-per-event=100] [webhook|in_app]
 */
import { ensureBinary, startNotify } from "../test/support/binary.ts";
import { createTestDb, createTestVhost } from "../test/support/services.ts";
import { generateWebhookSecret } from "../src/net/webhook-signature.ts";
import { fmt, sampleRss } from "./support/stats.ts";
import { createAmqpQueue } from "../src/mq/amqp.ts";
import { createLogger } from "../src/runtime/log.ts";
import type { Queue } from "../src/mq/queue.ts";
import { realtimeSignals } from "../src/realtime/messages.ts";

const TOTAL = Number(process.argv[2] ?? 100_000);
const PER_EVENT = Number(process.argv[3] ?? 100);
const CHANNEL = (process.argv[4] ?? "webhook") as "webhook" | "in_app";
if (CHANNEL !== "webhook" && CHANNEL !== "in_app") throw new Error("channel: webhook or in_app");
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
/** Confirmed publishes of announcement-sized messages to the realtime exchange, C in flight. */
async function rawPublishRate(mq: Queue, n: number): Promise<number> {
  const item = { id: Bun.randomUUIDv7(), event: "bench.in_app", title: "Bench", body: "x".repeat(150), data: {}, read: false, archived: false, created_at: new Date().toISOString() };
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < n) await mq.publish("realtime", [{ routingKey: "raw", body: { type: "notification", user_id: "raw", seq: next, item }, messageId: `raw${next}` }]);
    }),
  );
  return n / ((performance.now() - started) / 1000);
}

let mq: Queue | undefined;
try {
  let raw: number;
  if (CHANNEL === "in_app") {
    mq = await createAmqpQueue({ url: vhost.url, log: createLogger("warn"), instanceId: "bench" });
    const consumer = await mq.subscribe("realtime", (m) => {
      if (m.routingKey === "raw") return;
      const n = (realtimeSignals(m.body) ?? []).filter((s) => s.type === "notification").length;
      if (n === 0) return;
      received += n;
      lastAt = performance.now();
    });
    raw = await rawPublishRate(mq, Math.min(TOTAL, 20_000));
    void consumer;
  } else raw = await rawRate(Math.min(TOTAL, 20_000));
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
        const to = Array.from({ length: PER_EVENT }, (_, j) => (CHANNEL === "webhook" ? { user_id: `b${i}-${j}`, attributes: { webhook_url: `${sinkUrl}/hook` } } : { user_id: `b${i}-${j}`, name: "Bench" }));
        const res = await fetch(`${base}/events`, { method: "POST", headers, body: JSON.stringify({ event: `bench.${CHANNEL}`, to, channels: [CHANNEL], title: "Bench", body: "x".repeat(150) }) });
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
  console.log(CHANNEL === "webhook" ? `raw HTTP sink (fetch, ${CONCURRENCY} in flight):   ${fmt(raw)} req/s` : `raw publish with confirms to the realtime exchange (${CONCURRENCY} in flight): ${fmt(raw)} msg/s`);
  console.log(`${CHANNEL} end to end (${fmt(want)} deliveries, ${PER_EVENT}/event): ${fmt(rate)} deliveries/s in ${fmt(seconds, 2)} s (${fmt((rate / raw) * 100, 1)}% of raw; target ≥ ${fmt(TARGET)}/s: ${rate >= TARGET ? "met" : "NOT met"})`);
  console.log(`received ${fmt(received)}/${fmt(want)}; peak RSS notify ${fmt(peak.notify ?? 0)} MB`);
  await notify.kill("SIGTERM");
} finally {
  await mq?.close();
  sink.stop(true);
  await Promise.allSettled([db.drop(), vhost.drop()]);
}
