/**
 * Issue 3 on the compiled binary: a rule routes an event to the webhook channel, the receiver
 * verifies the Standard Webhooks signature; rules and unsubscribe routes are mounted; the OpenAPI
 * document lists them. The seed's AMQP broadcast `{"title","body","sender"}` becomes a campaign that
 * reaches every user's inbox.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { AMQPClient } from "@cloudamqp/amqp-client";
import { EXCHANGES } from "../src/mq/topology.ts";
import { seedCampaignId } from "../src/services/seed-broadcast.ts";
import { generateWebhookSecret } from "../src/net/webhook-signature.ts";
import { ensureBinary, startNotify, type NotifyProcess } from "./support/binary.ts";
import { startWebhookReceiver, type WebhookReceiver } from "./support/channel-peers.ts";
import { createTestDb, createTestVhost, haveServices, waitFor, type TestDb, type TestVhost } from "./support/services.ts";

const KEY = "e2e-admin-key-0123456789abcdef";
const SECRET = generateWebhookSecret();

describe.skipIf(!(await haveServices))("compiled binary: channels", () => {
  let db: TestDb, vhost: TestVhost, receiver: WebhookReceiver, notify: NotifyProcess | undefined;
  beforeAll(async () => {
    await ensureBinary();
    [db, vhost] = await Promise.all([createTestDb({ migrate: false }), createTestVhost()]);
    receiver = startWebhookReceiver(SECRET, "127.0.0.2");
    notify = await startNotify("all", {
      NOTIFY_DATABASE_URL: db.url,
      NOTIFY_AMQP_URL: vhost.url,
      NOTIFY_ADMIN_KEY: KEY,
      NOTIFY_WEBHOOK_SECRET: SECRET,
      NOTIFY_WEBHOOK_ALLOW_LIST: "127.0.0.2",
    });
  });
  afterAll(async () => {
    await notify?.kill("SIGTERM");
    receiver?.stop();
    await Promise.allSettled([db?.drop(), vhost?.drop()]);
  });

  test("rule → webhook, signed; unsubscribe and OpenAPI served", async () => {
    const base = `http://127.0.0.1:${notify!.port}`;
    const headers = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };
    const rule = await fetch(`${base}/api/v1/rules/invoice.paid`, { method: "PUT", headers, body: JSON.stringify({ channels: ["webhook"], webhook_url: `${receiver.url}/hooks`, category: "billing" }) });
    expect(rule.status).toBe(201);
    const res = await fetch(`${base}/api/v1/events`, { method: "POST", headers, body: JSON.stringify({ event: "invoice.paid", to: [{ user_id: "b1" }], title: "Paid", body: "Invoice 9" }) });
    expect(res.status).toBe(202);
    const got = await waitFor(() => receiver.verified[0], { what: "signed webhook" });
    expect(got.body).toMatchObject({ type: "invoice.paid", data: { user_id: "b1", title: "Paid", text: "Invoice 9" } });
    expect(receiver.rejected).toEqual([]);
    expect((await fetch(`${base}/u/not-a-token`, { method: "POST" })).status).toBe(400);
    const doc = (await (await fetch(`${base}/api/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/api/v1/rules/{event}", "/api/v1/users/{id}/preferences", "/u/{token}"]));
  }, 60_000);

  test("seed broadcast over AMQP: a campaign to every user's inbox, taken once", async () => {
    const base = `http://127.0.0.1:${notify!.port}`;
    const headers = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };
    for (const id of ["s1", "s2"]) expect((await fetch(`${base}/api/v1/users/${id}`, { method: "PUT", headers, body: JSON.stringify({ name: id }) })).status).toBeLessThan(300);
    const amqp = new AMQPClient(vhost.url);
    await amqp.connect();
    try {
      const ch = await amqp.channel();
      await ch.confirmSelect();
      for (let i = 0; i < 2; i++) {
        await ch.basicPublish(EXCHANGES.events.name, "seed", JSON.stringify({ title: "Hello all", body: "From the seed", sender: "in_app" }), { messageId: "seed-e2e", deliveryMode: 2 });
      }
    } finally {
      await amqp.close();
    }
    const id = seedCampaignId("seed-e2e", null);
    const run = await waitFor(async () => {
      const r = await fetch(`${base}/api/v1/campaigns/${id}/runs`, { headers });
      const item = r.ok ? ((await r.json()) as { items: Array<Record<string, number>> }).items[0] : undefined;
      return item && (item.targeted ?? 0) > 0 && item.pending === 0 ? item : undefined;
    }, { what: "broadcast run accounted for" });
    const users = ((await (await fetch(`${base}/api/v1/users?limit=100`, { headers })).json()) as { items: unknown[] }).items.length;
    expect(run).toMatchObject({ targeted: users, sent: users, failed: 0 });
    const list = ((await (await fetch(`${base}/api/v1/campaigns?limit=100`, { headers })).json()) as { items: Array<{ name: string }> }).items;
    expect(list.filter((c) => c.name === "Seed broadcast: Hello all")).toHaveLength(1);
  }, 60_000);
});
