/**
 * The raw limit for durable publishing: 1 KB persistent messages with publisher confirms into a
 * quorum queue on a fresh vhost, through the bare AMQP client (no notify code in the path). Other
 * benches (event acceptance, campaign fan-out) divide their rate by this one.
 *
 * It also measures the same load through notify's Queue.publish, in batches and as many concurrent
 * single-message publishes (the gateway's shape), and prints the ratio to the raw rate.
 *
 *   bun bench/amqp-publish.ts [seconds=5] [size=1024]     (NOTIFY_BENCH_ROUNDS=2)
 *   NOTIFY_BENCH_AMQP_URL=amqp://guest:guest@127.0.0.1:5672
 */
// A bench of the raw client is the one place besides src/mq/amqp.ts that imports it: that is the point.
import { AMQPClient } from "@cloudamqp/amqp-client";
import { createAmqpQueue } from "../src/mq/amqp.ts";
import type { OutMessage, Queue } from "../src/mq/queue.ts";
import { createLogger } from "../src/runtime/log.ts";
import { rabbitmqctl } from "../test/support/services.ts";

const BASE_URL = process.env.NOTIFY_BENCH_AMQP_URL ?? process.env.NOTIFY_TEST_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
/**
 * The raw publisher keeps RAW_LANES batches of RAW_BATCH messages in flight: each lane writes a whole
 * batch, waits for its confirms, and writes the next. On the 2-core box this beat one-at-a-time
 * loops with a sliding window (the client scans its unconfirmed list per confirm, so a long list
 * costs, and a promise per await costs too).
 */
const RAW_LANES = 2;
const RAW_BATCH = 1_000;

export interface RateResult {
  rate: number;
  messages: number;
  seconds: number;
}

/**
 * Publishes `size`-byte persistent messages with confirms into a quorum queue for `seconds` and
 * returns confirmed messages per second. `url` is the broker (vhost part
 * ignored): a fresh vhost is created and dropped around the run.
 */
export async function measureRawPublishRate(opts: { url?: string; seconds: number; size: number }): Promise<RateResult> {
  const vhost = await createVhost(opts.url);
  const client = new AMQPClient(vhost.url);
  try {
    await client.connect();
    const ch = await client.channel();
    await ch.queueDeclare("bench.raw", { durable: true }, { "x-queue-type": "quorum" });
    await ch.confirmSelect();
    const body = new Uint8Array(opts.size).fill(120);
    const props = { deliveryMode: 2, contentType: "application/json" };
    let confirmed = 0;
    const deadline = performance.now() + opts.seconds * 1000;
    const started = performance.now();
    const lane = async () => {
      while (performance.now() < deadline) {
        const pending: Promise<number>[] = [];
        for (let i = 0; i < RAW_BATCH; i++) pending.push(ch.basicPublish("", "bench.raw", body, props));
        await Promise.all(pending);
        confirmed += RAW_BATCH;
      }
    };
    await Promise.all(Array.from({ length: RAW_LANES }, lane));
    const seconds = (performance.now() - started) / 1000;
    return { rate: confirmed / seconds, messages: confirmed, seconds };
  } finally {
    await client.close().catch(() => {});
    await vhost.drop();
  }
}

/** The same load through Queue.publish: `concurrency` callers, each publishing `batch` messages per call. */
export async function measureQueuePublishRate(opts: {
  url?: string;
  seconds: number;
  size: number;
  batch: number;
  concurrency: number;
}): Promise<RateResult> {
  const vhost = await createVhost(opts.url);
  let mq: Queue | undefined;
  try {
    mq = await createAmqpQueue({ url: vhost.url, log: createLogger("warn"), instanceId: "bench" });
    const pad = "x".repeat(Math.max(0, opts.size - 40));
    let n = 0;
    let confirmed = 0;
    const deadline = performance.now() + opts.seconds * 1000;
    const started = performance.now();
    const caller = async () => {
      while (performance.now() < deadline) {
        const batch: OutMessage[] = [];
        for (let i = 0; i < opts.batch; i++) batch.push({ body: { n: ++n, pad }, messageId: `m${n}` });
        await mq!.publish("deliveries", batch);
        confirmed += batch.length;
      }
    };
    await Promise.all(Array.from({ length: opts.concurrency }, caller));
    const seconds = (performance.now() - started) / 1000;
    return { rate: confirmed / seconds, messages: confirmed, seconds };
  } finally {
    await mq?.close();
    await vhost.drop();
  }
}

/** A fresh vhost on the broker of `url`, so queues start empty and runs never see each other. */
async function createVhost(url: string = BASE_URL): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `notify_bench_${process.pid}_${Date.now().toString(36)}`;
  const u = new URL(url);
  await rabbitmqctl("add_vhost", name);
  await rabbitmqctl("set_permissions", "-p", name, decodeURIComponent(u.username) || "guest", ".*", ".*", ".*");
  u.pathname = `/${encodeURIComponent(name)}`;
  return { url: u.toString(), drop: () => rabbitmqctl("delete_vhost", name).then(() => {}) };
}

if (import.meta.main) {
  const seconds = Number(process.argv[2] ?? 5);
  const size = Number(process.argv[3] ?? 1024);
  // The box is shared (2 cores): alternate the measurements and keep each one's best round.
  const rounds = Number(process.env.NOTIFY_BENCH_ROUNDS ?? 2);
  const shapes = [
    { batch: 100, concurrency: 8 },
    { batch: 1_000, concurrency: 2 },
    { batch: 1, concurrency: 512 },
  ];
  const best = (a: RateResult | undefined, b: RateResult) => (a && a.rate >= b.rate ? a : b);
  let raw: RateResult | undefined;
  const viaQueue: Array<RateResult | undefined> = shapes.map(() => undefined);
  for (let round = 0; round < rounds; round++) {
    raw = best(raw, await measureRawPublishRate({ url: BASE_URL, seconds, size }));
    for (const [i, shape] of shapes.entries()) viaQueue[i] = best(viaQueue[i], await measureQueuePublishRate({ url: BASE_URL, seconds, size, ...shape }));
  }
  const fmt = (r: RateResult) => `${Math.round(r.rate).toLocaleString("en")} msg/s (${r.messages} in ${r.seconds.toFixed(1)} s)`;
  console.log(`raw publish with confirms, quorum, ${size} B persistent: ${fmt(raw!)}   [best of ${rounds}]`);
  for (const [i, shape] of shapes.entries()) {
    const r = viaQueue[i]!;
    console.log(`Queue.publish, ${shape.concurrency} callers x batches of ${shape.batch}: ${fmt(r)} = ${((100 * r.rate) / raw!.rate).toFixed(0)}% of raw`);
  }
}
