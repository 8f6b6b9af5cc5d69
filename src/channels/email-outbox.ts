/**
 * E-mail without an SMTP server (SPEC 6): when NOTIFY_SMTP_URL is unset, each e-mail is written as
 * an RFC 5322 message to NOTIFY_DATA_DIR/outbox/<delivery id>.eml, built exactly as it would be for
 * SMTP (mail-message.ts: same Message-ID and headers). The write is atomic (temp file + rename) and
 * keyed by delivery id, so a resend after a crash replaces the same file: never two copies.
 * `notify outbox` lists the folder.
 */
import nodemailer from "nodemailer";
import { mkdirSync } from "node:fs";
import { rename, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import * as v from "valibot";
import { composeMail, mailOptions, mailSender, messageIdOf } from "./mail-message.ts";
import { SendError, type ChannelProvider, type ChannelSender } from "./types.ts";

const Config = v.object({
  dir: v.pipe(v.string(), v.minLength(1)),
  from: v.pipe(v.string(), v.regex(/^[^\r\n]+$/, "must not contain line breaks")),
});
type Config = v.InferOutput<typeof Config>;

/** Delivery ids are uuids; anything else must not become a path. */
const SAFE_ID = /^[A-Za-z0-9_-]{1,128}$/;

export function outboxDir(dataDir: string): string {
  return resolve(dataDir, "outbox");
}

export const emailOutbox: ChannelProvider<Config> = {
  name: "outbox",
  channel: "email",
  configSchema: Config,
  fromEnv(env, deps) {
    if (env.NOTIFY_SMTP_URL) return undefined;
    return { dir: outboxDir(deps.dataDir), from: deps.mailFrom };
  },
  address: (user) => user.email ?? undefined,
  create(config, deps): ChannelSender {
    // Only where e-mail is sent: a gateway or gRPC backend must not leave an outbox folder behind
    // (in ./data when NOTIFY_DATA_DIR is unset).
    if (deps.sends !== false) {
      mkdirSync(config.dir, { recursive: true });
      deps.log.info("e-mail goes to the outbox folder (NOTIFY_SMTP_URL is unset)", { dir: config.dir });
    }
    const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: "windows" });
    const sender = mailSender(config.from);
    return {
      provider: "outbox",
      async send(msg) {
        if (!SAFE_ID.test(msg.deliveryId)) throw new SendError("delivery id is not a safe file name", { permanent: true });
        let raw: Buffer | string;
        try {
          raw = composeMail(msg, sender)?.raw ?? ((await transport.sendMail(mailOptions(msg, sender))).message as Buffer);
        } catch (err) {
          // nodemailer refuses a malformed envelope or header: retrying builds the same message.
          throw new SendError(`cannot build the message: ${(err as Error).message}`, { permanent: true, cause: err });
        }
        const target = join(config.dir, `${msg.deliveryId}.eml`);
        const temp = join(config.dir, `.${msg.deliveryId}.${process.pid}.tmp`);
        try {
          // Asynchronous: a synchronous write blocked the event loop for as long as the disk took
          // (measured up to 0.4 ms per file, a third of the process's time under load).
          await writeFile(temp, raw);
          await rename(temp, target);
        } catch (err) {
          throw new SendError(`outbox write failed: ${(err as Error).message}`, { permanent: false, cause: err });
        }
        return { providerId: messageIdOf(msg, sender.domain) };
      },
      async close() {
        transport.close();
      },
    };
  },
};
