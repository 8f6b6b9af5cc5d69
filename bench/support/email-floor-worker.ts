/**
 * The least an e-mail worker can do, as a yardstick for notify's (bench/floor.ts): consume the events
 * accept-floor-server.ts queued (one per message), send each with nodemailer's pool to the sink as a
 * finished message (subject: the event's data.n, as notify's bench template renders it; the text
 * quoted-printable, as notify composes it), ack. No recipients, templates,
 * delivery records, idempotency, retries, audit or metrics.
 *
 *   FLOOR_AMQP=amqp://… FLOOR_SMTP_PORT=… [FLOOR_POOL=16] [FLOOR_PREFETCH=64] bun email-floor-worker.ts
 * Prints "ready" once consuming.
 */
// A bench yardstick, like bench/amqp-publish.ts: the raw client, with no notify code in the path.
import { AMQPClient } from "@cloudamqp/amqp-client";
import nodemailer from "nodemailer";
import { finishedMessage } from "./finished-message.ts";

const transport = nodemailer.createTransport({
  pool: true,
  maxConnections: Number(process.env.FLOOR_POOL ?? 16),
  maxMessages: 1000,
  host: "127.0.0.1",
  port: Number(process.env.FLOOR_SMTP_PORT),
  secure: false,
  ignoreTLS: true,
});
const amqp = new AMQPClient(process.env.FLOOR_AMQP!);
await amqp.connect();
const ch = await amqp.channel();
await ch.queueDeclare("floor.events", { durable: true }, { "x-queue-type": "quorum" });
await ch.basicQos(Number(process.env.FLOOR_PREFETCH ?? 64));
await ch.basicConsume("floor.events", { noAck: false }, (msg) => {
  const event = JSON.parse(msg.bodyToString() ?? "{}") as { to: Array<{ email: string; name?: string }>; data: { n: string; code: string; pad: string } };
  const to = event.to[0]!;
  transport
    .sendMail(finishedMessage("bench@notify.test", to.email, event.data.n, `Hello ${to.name}, your code is ${event.data.code}.\n${event.data.pad}`))
    .then(
      () => msg.ack(),
      () => msg.nack(true),
    );
});
console.log("ready 0");
