/**
 * The SMTP sink (bench/support/smtp-sink.ts) in its own process, and the receipt time of every
 * message by subject, for the benches that measure e-mail end to end.
 */
import nodemailer from "nodemailer";
import { DEFAULT_SMTP_POOL } from "../../src/channels/email.ts";
import { finishedMessage } from "./finished-message.ts";
import { eventBody, openLoop } from "./load.ts";

export interface Sink {
  port: number;
  pid: number;
  receipts: Map<string, number>;
  stop(): Promise<void>;
}

export async function startSink(): Promise<Sink> {
  const proc = Bun.spawn([process.execPath, `${import.meta.dir}/smtp-sink.ts`], { stdout: "pipe", stderr: "inherit" });
  const receipts = new Map<string, number>();
  let resolvePort: (p: number) => void = () => {};
  const port = new Promise<number>((r) => (resolvePort = r));
  (async () => {
    let buf = "";
    for await (const chunk of proc.stdout) {
      buf += new TextDecoder().decode(chunk);
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.startsWith("ready ")) resolvePort(Number(line.slice(6)));
        else {
          const sp = line.indexOf(" ");
          receipts.set(line.slice(sp + 1), Number(line.slice(0, sp)));
        }
      }
    }
  })();
  return { port: await port, pid: proc.pid, receipts, stop: async () => void (proc.kill(), await proc.exited) };
}

const RAW_TEXT = "Hello Bench User, your code is 123456.\n" + "x".repeat(700);

/**
 * The raw limit: nodemailer's pool straight to the sink, 32 sends in flight. `prebuilt`: each
 * message handed to nodemailer as finished MIME text (`raw`), as notify sends (src/channels/
 * mail-message.ts), instead of composed by nodemailer from fields.
 */
export async function rawSmtpRate(port: number, seconds: number, connections: number, prebuilt = false): Promise<number> {
  const transport = nodemailer.createTransport({ pool: true, maxConnections: connections, maxMessages: 1000, host: "127.0.0.1", port, secure: false, ignoreTLS: true });
  const mail = (n: number) =>
    prebuilt ? finishedMessage("bench@notify.test", "raw@bench.test", `raw-${n}`, RAW_TEXT) : { from: "bench@notify.test", to: "raw@bench.test", subject: `raw-${n}`, text: RAW_TEXT };
  let sent = 0;
  const end = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (performance.now() < end) {
        await transport.sendMail(mail(sent));
        sent++;
      }
    }),
  );
  transport.close();
  return sent / ((performance.now() - started) / 1000);
}

/** Waits until the sink has every tag (deadline `timeoutMs`); returns how many arrived. */
export async function waitDelivered(sink: Sink, tags: Iterable<string>, timeoutMs: number): Promise<number> {
  const want = [...tags];
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (want.every((t) => sink.receipts.has(t))) return want.length;
    await Bun.sleep(100);
  }
  return want.filter((t) => sink.receipts.has(t)).length;
}

/**
 * The raw limit the e-mail targets divide by: the better of nodemailer's default pool (5) and
 * notify's (16), each after a warm-up of the sink (its first seconds run before the JIT has tiered
 * it up), with nodemailer composing each message (the issue's "raw nodemailer → sink"). Beside it,
 * `prebuilt`: the same with finished messages handed over raw, the like-for-like limit since notify
 * composes its own (at 16 connections).
 */
export async function rawSmtpLimit(port: number, seconds: number): Promise<{ rate: number; byPool: Record<number, number>; prebuilt: number; text: string }> {
  await rawSmtpRate(port, 2, 5);
  const byPool = { 5: await rawSmtpRate(port, seconds, 5), [DEFAULT_SMTP_POOL]: await rawSmtpRate(port, seconds, DEFAULT_SMTP_POOL) };
  const rate = Math.max(...Object.values(byPool));
  const prebuilt = await rawSmtpRate(port, seconds, DEFAULT_SMTP_POOL, true);
  const f = (r: number) => Math.round(r).toLocaleString("en-US");
  return { rate, byPool, prebuilt, text: `${Object.entries(byPool).map(([k, r]) => `${k} connections ${f(r)}`).join(", ")}; prebuilt messages, ${DEFAULT_SMTP_POOL} connections ${f(prebuilt)}` };
}

/**
 * Warm-up before an e-mail throughput figure: 3 s at half the raw rate, until delivered. Fresh
 * processes spend their first seconds compiling (JavaScriptCore's JIT threads took ≈ 11 % of the
 * machine's CPU in an unwarmed run).
 */
export async function emailWarmUp(opts: { url: string; headers: Record<string, string>; sink: Sink; raw: number; tag: string }): Promise<void> {
  const warm = await openLoop({ url: opts.url, headers: opts.headers, body: eventBody, rate: opts.raw / 2, seconds: 3, tag: `${opts.tag}warm` });
  await waitDelivered(opts.sink, warm.sentAt.keys(), 120_000);
}

/**
 * E-mail throughput: a burst of raw × seconds events posted at up to 3× the raw rate; delivered/s
 * is over the whole burst, from its first POST to its last receipt.
 */
export async function emailBurst(opts: { url: string; headers: Record<string, string>; sink: Sink; raw: number; seconds: number; tag: string }): Promise<{ rate: number; got: number; total: number }> {
  const { url, headers, sink, raw, tag } = opts;
  const n = Math.round(raw * opts.seconds);
  const t0 = Date.now();
  const burst = await openLoop({ url, headers, body: eventBody, rate: raw * 3, seconds: n / (raw * 3), tag });
  const got = await waitDelivered(sink, burst.sentAt.keys(), 180_000);
  const last = Math.max(...[...burst.sentAt.keys()].map((k) => sink.receipts.get(k) ?? 0));
  return { rate: got / ((last - t0) / 1000), got, total: burst.total };
}
