/**
 * The seed's AMQP shape `{"title","body","sender"}` (SPEC 3.7) on real RabbitMQ, PostgreSQL and an
 * SMTP server: taken as a campaign to every user on that channel, sent once per message even when
 * the producer publishes it again, and refused into the dead letters when it is not a valid broadcast.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { AMQPClient } from "@cloudamqp/amqp-client";
import { EXCHANGES } from "../src/mq/topology.ts";
import { startAuditRole } from "../src/roles/audit.ts";
import { ROLE_STARTERS } from "../src/roles/registry.ts";
import { startScheduler } from "../src/roles/scheduler.ts";
import { seedCampaignId, SEED_TEMPLATE } from "../src/services/seed-broadcast.ts";
import { createHarness, type Harness } from "./support/harness.ts";
import { haveServices, waitFor } from "./support/services.ts";

describe.skipIf(!(await haveServices))("seed broadcast over AMQP", () => {
  let h: Harness;
  let stopScheduler: () => Promise<void>;
  let stopAudit: () => Promise<void>;
  let raw: AMQPClient;
  const publish = async (body: unknown, messageId?: string) => {
    const ch = await raw.channel();
    await ch.confirmSelect();
    await ch.basicPublish(EXCHANGES.events.name, "seed", JSON.stringify(body), { messageId, deliveryMode: 2, contentType: "application/json" });
    await ch.close();
  };
  const campaigns = async () => ((await (await h.request("/api/v1/campaigns?limit=100")).json()) as { items: Array<{ id: string; name: string; template: string; channels: string[]; audience: unknown; status: string }> }).items;
  const deadLetters = async () => ((await (await h.request("/api/v1/dead-letters")).json()) as { items: Array<{ reason: string }> }).items;
  const mailsTo = (addr: string) => h.smtp.mails.filter((m) => m.to.includes(addr));

  beforeAll(async () => {
    h = await createHarness({ env: { NOTIFY_SCHEDULER_TICK_MS: "50", NOTIFY_ROLE: "gateway,worker,scheduler" }, ext: (app) => ROLE_STARTERS.gatewayExtensions!(app) });
    stopScheduler = await startScheduler(h.app, { leaseMs: 2_000 });
    stopAudit = await startAuditRole(h.app);
    for (const id of ["sb1", "sb2"]) await h.request(`/api/v1/users/${id}`, { method: "PUT", json: { email: `${id}@example.com`, name: id } });
    await h.request("/api/v1/users/sb3", { method: "PUT", json: { name: "no address" } });
    raw = new AMQPClient(h.app.config.amqpUrl!);
    await raw.connect();
  });
  afterAll(async () => {
    await raw?.close().catch(() => {});
    await stopScheduler?.();
    await stopAudit?.();
    await h?.close();
  });

  test("sent to every user on the sender's channel, once, however often the message arrives", async () => {
    const seed = { title: "New episode out", body: "Season 2, episode 5 is here.", sender: "email", app: "content" };
    await publish(seed, "seed-msg-1");
    await publish(seed, "seed-msg-1"); // the producer's retry
    await waitFor(() => mailsTo("sb1@example.com").length > 0 && mailsTo("sb2@example.com").length > 0, { what: "the broadcast's mails" });
    const [mail] = mailsTo("sb1@example.com");
    expect(mail!.subject).toBe("New episode out");
    expect(mail!.text).toContain("Season 2, episode 5 is here.");

    // One campaign, to all users, by the built-in template, accounted for: sb3 has no address.
    const id = seedCampaignId("seed-msg-1", seed);
    await waitFor(async () => (await campaigns()).find((c) => c.id === id)?.status === "completed", { what: "campaign completed" });
    const mine = (await campaigns()).filter((c) => c.name.startsWith("Seed broadcast: New episode out"));
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ template: SEED_TEMPLATE, channels: ["email"], audience: { all: true } });
    const latestRun = async () => ((await (await h.request(`/api/v1/campaigns/${id}/runs`)).json()) as { items: Array<Record<string, number>> }).items[0];
    const run = await waitFor(async () => {
      const r = await latestRun();
      return r && r.pending === 0 ? r : undefined;
    }, { what: "run fully accounted for" });
    expect(run).toMatchObject({ targeted: 3, sent: 2, skipped: 1, pending: 0 });
    expect(mailsTo("sb1@example.com")).toHaveLength(1);
    expect(mailsTo("sb2@example.com")).toHaveLength(1);

    // Audited once, as the broker's doing.
    const audited = await waitFor(async () => {
      const r = (await (await h.request(`/api/v1/audit?action=campaign.created&target=campaign:${id}`)).json()) as { items: Array<{ actor: unknown }> };
      return r.items.length ? r.items : undefined;
    }, { what: "audit record" });
    expect(audited).toHaveLength(1);
    expect(audited[0]!.actor).toMatchObject({ type: "system", id: "amqp" });

    // The template is the operator's to restyle.
    const t = await h.request(`/api/v1/templates/${SEED_TEMPLATE}`);
    expect(t.status).toBe(200);
  });

  test("without a message_id the same body is taken once; a different body is a new broadcast", async () => {
    const before = (await campaigns()).length;
    const seed = { title: "Maintenance tonight", body: "From 02:00 UTC.", sender: "email" };
    await publish(seed);
    await publish(seed);
    await publish({ ...seed, body: "From 03:00 UTC." });
    await waitFor(async () => (await campaigns()).length >= before + 2, { what: "two campaigns" });
    await waitFor(() => h.smtp.mails.filter((m) => m.subject === "Maintenance tonight").length >= 4, { what: "two mails per user" });
    // Everything published before this probe has been taken (one queue, in order, one worker).
    await publish({ title: "probe", body: "", sender: "email" }, "seed-probe");
    await waitFor(async () => (await campaigns()).some((c) => c.id === seedCampaignId("seed-probe", null)), { what: "probe campaign" });
    expect((await campaigns()).filter((c) => c.name === "Seed broadcast: Maintenance tonight")).toHaveLength(2);
  });

  test("not a valid broadcast: dead-lettered at once, naming the field; nothing created", async () => {
    const before = (await campaigns()).length;
    await publish({ title: "x", body: "y", sender: "pigeon" }, "seed-bad-channel");
    await publish({ title: "", body: "y", sender: "email" }, "seed-bad-title");
    await publish({ title: "a\r\nBcc: x@example.com", body: "y", sender: "email" }, "seed-bad-header");
    await publish({ title: "x", body: "y", sender: "telegram" }, "seed-unconfigured"); // no Telegram bot here
    const dead = await waitFor(async () => {
      const items = (await deadLetters()).filter((d) => d.reason.startsWith("invalid seed broadcast"));
      return items.length >= 4 ? items : undefined;
    }, { what: "four dead letters" });
    const reasons = dead.map((d) => d.reason);
    for (const want of ["sender: must be one of", "title: must not be empty", "title: must not contain line breaks", "sender: channel telegram is not configured"]) {
      expect(reasons.filter((r) => r.includes(want))).toHaveLength(1);
    }
    expect((await campaigns()).length).toBe(before);
  });
});
