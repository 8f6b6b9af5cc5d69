/**
 * The least a durable accept can do, as a yardstick for the gateway (bench/floor.ts): Bun.serve,
 * JSON.parse, then (mode "durable") the row committed to PostgreSQL and the message confirmed by
 * RabbitMQ, in parallel, each shared by the requests that arrive together (group commit, one batch
 * in flight per side), then 202 (FLOOR_STORE=0: after the broker's confirm alone). No auth,
 * validation, idempotency, audit, metrics or logging.
 * Mode "hello" answers 202 after JSON.parse alone: the HTTP ceiling with the same load generator.
 *
 *   FLOOR_MODE=hello|durable [FLOOR_PACK=1] [FLOOR_STORE=0] FLOOR_PORT=… FLOOR_DB=postgres://… FLOOR_AMQP=amqp://… bun accept-floor-server.ts
 * Prints "ready" once listening.
 */
// A bench yardstick, like bench/amqp-publish.ts: the raw clients; of notify's code only the
// group-commit helper, so that batching is the same as the gateway's.
import { AMQPClient } from "@cloudamqp/amqp-client";
import postgres from "postgres";
import { createBatcher } from "../../src/store/batcher.ts";

const mode = process.env.FLOOR_MODE === "hello" ? "hello" : "durable";

/** Group commit with one flush in flight, as the gateway's accept path has (src/store/batcher.ts). */
function groupOf<T>(flush: (items: T[]) => Promise<void>): (item: T) => Promise<void> {
  const batcher = createBatcher<T, void>(async (items) => (await flush(items), items.map(() => undefined)), { maxBatch: 500, maxInFlight: 1 });
  return (item) => batcher.submit(item);
}

let accept: (body: Record<string, unknown>) => Promise<void> = async () => {};
if (mode === "durable") {
  const sql = postgres(process.env.FLOOR_DB!, { max: 4, onnotice: () => {} });
  const amqp = new AMQPClient(process.env.FLOOR_AMQP!);
  await amqp.connect();
  const ch = await amqp.channel();
  await ch.queueDeclare("floor.events", { durable: true }, { "x-queue-type": "quorum" });
  await ch.confirmSelect();
  // FLOOR_STORE=0: the broker's confirm alone makes the event durable (no PostgreSQL on the accept
  // path): what a broker-first design could reach.
  const commit = process.env.FLOOR_STORE === "0" ? undefined : groupOf<{ id: string; json: string }>(async (rows) => {
    const doc = `[${rows.map((r) => `{"id":"${r.id}","event":"bench","status":"accepted","payload":${r.json},"source":"floor","send_at":null}`).join(",")}]`;
    await sql`INSERT INTO notifications (id, event, status, payload, source, send_at)
              SELECT id, event, status, payload, source, send_at
              FROM jsonb_to_recordset(${doc}::text::jsonb) AS t(id uuid, event text, status text, payload jsonb, source text, send_at timestamptz)
              ON CONFLICT (id) DO NOTHING`;
  });
  // FLOOR_PACK=1: the requests of one flush travel as one message (a JSON array), as audit records do.
  const packed = process.env.FLOOR_PACK === "1";
  const publish = groupOf<{ id: string; json: string }>(async (msgs) => {
    if (packed) await ch.basicPublish("", "floor.events", `[${msgs.map((m) => m.json).join(",")}]`, { deliveryMode: 2, messageId: msgs[0]!.id, contentType: "application/json" });
    else await Promise.all(msgs.map((m) => ch.basicPublish("", "floor.events", m.json, { deliveryMode: 2, messageId: m.id, contentType: "application/json" })));
  });
  accept = async (body) => {
    const id = Bun.randomUUIDv7();
    const json = JSON.stringify({ ...body, notification_id: id });
    await Promise.all([commit?.({ id, json }), publish({ id, json })]);
  };
}

const server = Bun.serve({
  port: Number(process.env.FLOOR_PORT ?? 0),
  hostname: "127.0.0.1",
  async fetch(req) {
    const body = JSON.parse(await req.text()) as Record<string, unknown>;
    await accept(body);
    return Response.json({ status: "accepted" }, { status: 202 });
  },
});
console.log(`ready ${server.port}`);
