/**
 * The e-mail phase of spine.ts alone, for comparing two builds: a compiled gateway and worker, the
 * SMTP sink, a warm-up, then a burst of raw × seconds events; prints delivered/s beside the raw
 * nodemailer → sink limit (composing and prebuilt), the CPU each process spent per e-mail
 * (from /proc) and peak RSS. Alternate builds with NOTIFY_BENCH_EXEC=/path/to/other/notify.
 *
 *   bun run build && bun bench/email-burst.ts [seconds=5] [raw rate; measured when omitted]
 */
import { ensureBinary } from "../test/support/binary.ts";
import { emailBurst, emailWarmUp, rawSmtpLimit, startSink } from "./support/sink.ts";
import { notifyStack } from "./support/stack.ts";
import { costs, fmt, pids, sampleRss, SERVICES } from "./support/stats.ts";

const SECONDS = Number(process.argv[2] ?? 5);
await ensureBinary();
const sink = await startSink();
let raw = Number(process.argv[3] ?? 0);
if (!raw) {
  const limit = await rawSmtpLimit(sink.port, 3);
  raw = limit.rate;
  console.log(`raw nodemailer pool → SMTP sink: ${fmt(raw)} msg/s (${limit.text})`);
}
const s = await notifyStack({ NOTIFY_SMTP_URL: `smtp://127.0.0.1:${sink.port}?starttls=off`, NOTIFY_WORKER_CONCURRENCY: "64" });
try {
  const rss = sampleRss({ gateway: s.gateway.proc.pid, worker: s.worker!.proc.pid });
  await emailWarmUp({ url: s.url, headers: s.headers, sink, raw, tag: "warm" });
  const workers = { gateway: pids(s.gateway.proc.pid), worker: pids(s.worker!.proc.pid) };
  const { result: r, text } = await costs({ ...workers, ...SERVICES, sink: pids(sink.pid) }, () => emailBurst({ url: s.url, headers: s.headers, sink, raw, seconds: SECONDS, tag: "burst" }), (r) => r.got);
  const peak = await rss.stop();
  console.log(
    `${process.env.NOTIFY_BENCH_EXEC ?? "dist/notify"}: ${fmt(r.rate)} delivered/s (${r.got}/${r.total}) = ${fmt((r.rate / raw) * 100, 1)}% of raw; ` +
      `CPU µs per e-mail: ${text}; peak RSS gateway ${peak.gateway} MB, worker ${peak.worker} MB`,
  );
} finally {
  await s.stop();
  await sink.stop();
}
process.exit(0);
