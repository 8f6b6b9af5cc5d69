/**
 * E-mail over SMTP with nodemailer. NOTIFY_SMTP_URL (smtp://user:pass@host:port, smtps:// for TLS),
 * NOTIFY_MAIL_FROM. A pooled transport keeps connections warm; the pool is exercised against a
 * real SMTP server in tests because Bun has had "socket already destroyed" issues with it.
 */
import { Readable } from "node:stream";
import nodemailer from "nodemailer";
import SMTPPool from "nodemailer/lib/smtp-pool";
import * as v from "valibot";
import { composeMail, mailOptions, mailSender, type ComposedMail } from "./mail-message.ts";
import { SendError, type ChannelProvider, type ChannelSender } from "./types.ts";

/** Pooled connections per relay (NOTIFY_SMTP_POOL). */
export const DEFAULT_SMTP_POOL = 16;

const Config = v.object({
  /** "smtp" for NOTIFY_SMTP_URL, "smtp-2" for NOTIFY_SMTP_URL_2, ...: the name failover and metrics use. */
  name: v.optional(v.pipe(v.string(), v.regex(/^smtp(-[2-9])?$/)), "smtp"),
  url: v.pipe(v.string(), v.url()),
  from: v.pipe(v.string(), v.regex(/^[^\r\n]+$/, "must not contain line breaks")),
  /** Connections in the pool. Most relays throttle far more than a handful per client. */
  // 16, not nodemailer's 5: a message takes several round trips to the relay, and with the worker,
  // PostgreSQL and RabbitMQ sharing the cores five connections were what limited e-mail throughput
  // (alternating end-to-end runs on a 2-core host: +35 % delivered/s at 16, 32 no better;
  // BENCHMARKS.md, ninth session).
  maxConnections: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100)), DEFAULT_SMTP_POOL),
  timeoutMs: v.optional(v.number(), 30_000),
});
type Config = v.InferOutput<typeof Config>;

/**
 * A finished message as nodemailer's transports take a mail (what `sendMail` would make of it: its
 * options and its MimeNode), holding only what the SMTP pool reads: the envelope, the Message-ID
 * and the message stream. `sendMail` would first build a MimeNode around the raw text and parse the
 * envelope's addresses again, ≈ 60 of the worker's ≈ 500 µs of CPU per e-mail (BENCHMARKS.md,
 * eleventh session).
 */
function poolMail(mail: ComposedMail, signal: AbortSignal): Parameters<SMTPPool["send"]>[0] {
  const raw = Buffer.from(mail.raw);
  const message = {
    getEnvelope: () => ({ from: mail.envelope.from, to: [...mail.envelope.to] }),
    messageId: () => mail.messageId,
    getHeader: (key: string) => (key.toLowerCase() === "message-id" ? mail.messageId : undefined),
    createReadStream: () => Readable.from([raw], { objectMode: false }),
  };
  return { data: { signal }, message } as unknown as Parameters<SMTPPool["send"]>[0];
}

/** SMTP reply codes and transport errors that are worth another attempt. */
function classify(err: unknown): SendError {
  const e = err as { responseCode?: number; code?: string; message?: string; response?: string };
  const code = e.responseCode;
  const text = (e.response ?? e.message ?? String(err)).slice(0, 500);
  if (typeof code === "number") {
    if (code >= 500) return new SendError(`SMTP ${code}: ${text}`, { permanent: true, cause: err });
    return new SendError(`SMTP ${code}: ${text}`, { permanent: false, cause: err });
  }
  // EENVELOPE: nodemailer refused the envelope itself (no valid recipient): retrying cannot help.
  if (e.code === "EENVELOPE") return new SendError(`invalid envelope: ${text}`, { permanent: true, cause: err });
  return new SendError(`SMTP transport: ${e.code ?? "error"}: ${text}`, { permanent: false, cause: err });
}

export const email: ChannelProvider<Config> = {
  name: "smtp",
  channel: "email",
  configSchema: Config,
  // NOTIFY_SMTP_URL, then NOTIFY_SMTP_URL_2 .. _9: further relays, tried in that order when the
  // ones before fail or have their circuit open.
  fromEnv(env, deps) {
    if (!env.NOTIFY_SMTP_URL) return undefined;
    const relays = [["smtp", env.NOTIFY_SMTP_URL]];
    for (let i = 2; i <= 9; i++) if (env[`NOTIFY_SMTP_URL_${i}`]) relays.push([`smtp-${i}`, env[`NOTIFY_SMTP_URL_${i}`]!]);
    return relays.map(([name, url]) => ({
      name,
      url,
      from: deps.mailFrom,
      maxConnections: env.NOTIFY_SMTP_POOL ? Number(env.NOTIFY_SMTP_POOL) : undefined,
      timeoutMs: env.NOTIFY_SEND_TIMEOUT_MS ? Number(env.NOTIFY_SEND_TIMEOUT_MS) : undefined,
    }));
  },
  address: (user) => user.email ?? undefined,
  create(config, deps): ChannelSender {
    const u = new URL(config.url);
    const pool = new SMTPPool({
      maxConnections: config.maxConnections,
      maxMessages: 1000,
      host: u.hostname,
      port: Number(u.port || (u.protocol === "smtps:" ? 465 : 587)),
      secure: u.protocol === "smtps:",
      auth: u.username ? { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } : undefined,
      connectionTimeout: Math.min(config.timeoutMs, 10_000),
      greetingTimeout: Math.min(config.timeoutMs, 10_000),
      socketTimeout: config.timeoutMs,
      // Loopback relays in development rarely have certificates; operators opt in to strict TLS with ?tls=strict.
      tls: { rejectUnauthorized: u.searchParams.get("tls") === "strict" },
      ignoreTLS: u.searchParams.get("starttls") === "off",
    });
    // Messages notify composed go to the pool as they are; the rest through nodemailer's composer,
    // over the same connections.
    const composer = nodemailer.createTransport(pool);
    // The send's signal goes to the pool too: when the deadline passes, the pool drops the message
    // from its queue or closes the connection delivering it. A relay that stalls would otherwise
    // hold that connection until the socket timeout, and a pool of them would stop all e-mail.
    const poolSend = (mail: ComposedMail, signal: AbortSignal) =>
      new Promise<void>((resolve, reject) => {
        pool.send(poolMail(mail, signal), (err) => (err ? reject(err) : resolve()));
      });
    const sender = mailSender(config.from);
    return {
      provider: config.name,
      async send(msg, signal) {
        if (signal.aborted) throw new SendError("send aborted", { permanent: false });
        const composed = composeMail(msg, sender);
        let onAbort = () => {};
        const abort = new Promise<never>((_, reject) => {
          onAbort = () => reject(new SendError("send timed out", { permanent: false }));
          signal.addEventListener("abort", onAbort, { once: true });
        });
        try {
          if (composed) {
            await Promise.race([poolSend(composed, signal), abort]);
            return { providerId: composed.messageId };
          }
          const mail = mailOptions(msg, sender);
          const info = await Promise.race([composer.sendMail({ ...mail, signal }), abort]);
          return { providerId: info.messageId ?? mail.messageId };
        } catch (err) {
          throw err instanceof SendError ? err : classify(err);
        } finally {
          signal.removeEventListener("abort", onAbort);
        }
      },
      async close() {
        pool.close();
      },
    };
  },
};
