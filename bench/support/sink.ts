/**
 * The SMTP sink (bench/support/smtp-sink.ts) in its own process, and the receipt time of every
 * message by subject, for the benches that measure e-mail end to end.
 */
import nodemailer from "nodemailer";

export interface Sink {
  port: number;
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
  return { port: await port, receipts, stop: async () => void (proc.kill(), await proc.exited) };
}

/** The raw limit: nodemailer's pool straight to the sink, 32 sends in flight. */
export async function rawSmtpRate(port: number, seconds: number, connections: number): Promise<number> {
  const transport = nodemailer.createTransport({ pool: true, maxConnections: connections, maxMessages: 1000, host: "127.0.0.1", port, secure: false, ignoreTLS: true });
  let sent = 0;
  const end = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (performance.now() < end) {
        await transport.sendMail({ from: "bench@notify.test", to: "raw@bench.test", subject: `raw-${sent}`, text: "Hello Bench User, your code is 123456.\n" + "x".repeat(700) });
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
