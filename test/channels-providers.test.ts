/**
 * Channel providers end to end (REST → RabbitMQ → worker → provider) against real protocol peers
 * on loopback: SMTP with failover to a second relay, Telegram Bot API (429 retry_after, chat not
 * found), a generic SMS API, Twilio's Messages API, and a webhook receiver verifying signatures.
 * SSRF: webhook URLs aimed at loopback in every spelling reach nothing (a canary counts).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTwilioSender } from "../src/channels/twilio.ts";
import { createWebhookSender } from "../src/channels/webhook.ts";
import { createSmsHttpSender } from "../src/channels/sms.ts";
import { outboundMessage } from "../src/channels/testing.ts";
import { generateWebhookSecret } from "../src/net/webhook-signature.ts";
import { HttpRequestError, createSafeHttpClient } from "../src/net/ssrf.ts";
import { channelHttpExtension, channelWorkerHooks } from "../src/roles/channel-features.ts";
import { freePort } from "./support/binary.ts";
import { startHttpCapture, startTelegramPeer, startWebhookReceiver, type HttpCapture, type TelegramPeer, type WebhookReceiver } from "./support/channel-peers.ts";
import { createHarness, type Harness } from "./support/harness.ts";
import { haveServices, waitFor } from "./support/services.ts";
import { startTestSmtp, type TestSmtp } from "./support/smtp.ts";

const SECRET = generateWebhookSecret();

describe.skipIf(!(await haveServices))("channel providers", () => {
  let h: Harness, smtp2: TestSmtp, tg: TelegramPeer, sms: HttpCapture, receiver: WebhookReceiver, canary: HttpCapture;
  beforeAll(async () => {
    [smtp2] = await Promise.all([startTestSmtp()]);
    tg = startTelegramPeer();
    sms = startHttpCapture();
    // The receiver lives on 127.0.0.2, the only private address the webhook channel may reach;
    // the canary on 127.0.0.1 stays refused in every spelling.
    receiver = startWebhookReceiver(SECRET, "127.0.0.2");
    canary = startHttpCapture("127.0.0.1");
    const closed = await freePort();
    h = await createHarness({
      ext: () => channelHttpExtension(),
      workerOptions: (app) => ({ hooks: channelWorkerHooks(app) }),
      env: {
        NOTIFY_SMTP_URL: `smtp://127.0.0.1:${closed}?starttls=off`,
        NOTIFY_SMTP_URL_2: smtp2.url,
        NOTIFY_EMAIL_BREAKER_THRESHOLD: "2",
        NOTIFY_EMAIL_BREAKER_COOLDOWN_MS: "600000",
        NOTIFY_TELEGRAM_BOT_TOKEN: tg.token,
        NOTIFY_TELEGRAM_API_URL: tg.url,
        NOTIFY_SMS_URL: `${sms.url}/api/send`,
        NOTIFY_SMS_TOKEN: "sms-bearer-token",
        NOTIFY_SMS_FROM: "Notify",
        NOTIFY_SMS_FIELD_TEXT: "message",
        NOTIFY_WEBHOOK_SECRET: SECRET,
        NOTIFY_WEBHOOK_ALLOW_LIST: "127.0.0.2",
      },
    });
  });
  afterAll(async () => {
    await h?.close();
    await smtp2?.close();
    for (const s of [tg, sms, receiver, canary]) s?.stop();
  });

  const post = async (body: unknown) => {
    const res = await h.request("/api/v1/events", { method: "POST", json: body });
    expect(res.status).toBe(202);
    return ((await res.json()) as { id: string }).id;
  };
  const settled = (id: string) =>
    waitFor(async () => {
      const n = (await (await h.request(`/api/v1/notifications/${id}`)).json()) as any;
      return n.deliveries?.length && n.deliveries.every((d: any) => ["sent", "failed", "skipped"].includes(d.status)) ? n : undefined;
    }, { what: `notification ${id} settled`, timeoutMs: 20_000 });

  test("e-mail: the first relay refuses connections, the second delivers, and the first one's circuit opens", async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await post({ event: "fo", to: [{ user_id: `fo${i}`, email: `fo${i}@example.com` }], channels: ["email"], title: "Failover", body: `n=${i}` }));
    for (const id of ids) expect((await settled(id)).deliveries[0]).toMatchObject({ status: "sent", attempts: 1 });
    expect(smtp2.mails.filter((m) => m.subject === "Failover")).toHaveLength(3);
    const providers = await h.db.sql`SELECT provider FROM deliveries WHERE user_id LIKE 'fo%'`;
    expect(providers.every((r) => r.provider === "smtp-2")).toBe(true);
    const metrics = await (await h.request("/metrics", { key: null })).text();
    expect(metrics).toMatch(/notify_channel_circuit_state\{channel="email",provider="smtp"\} 2/);
    expect(metrics).toMatch(/notify_channel_circuit_state\{channel="email",provider="smtp-2"\} 0/);
  });

  test("telegram: HTML with escaped values; 429 retry_after honoured, then sent once", async () => {
    await h.request("/api/v1/templates/tg", { method: "PUT", json: { name: "TG", variants: [{ channel: "telegram", text: "plain {{ name }}", html: "<b>Hi</b> {{ name }}" }] } });
    await h.request("/api/v1/users/tg1", { method: "PUT", json: { name: "<Eve & Co>", telegram_chat_id: "4242" } });
    tg.script.set("4242", [{ status: 429, body: { ok: false, error_code: 429, description: "Too Many Requests: retry after 1", parameters: { retry_after: 1 } } }]);
    const n = await settled(await post({ event: "tg", to: ["tg1"], template: "tg", channels: ["telegram"] }));
    expect(n.deliveries[0]).toMatchObject({ status: "sent", attempts: 2 });
    const sent = tg.sent.filter((m) => m.chat_id === "4242");
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ parse_mode: "HTML", text: "<b>Hi</b> &lt;Eve &amp; Co&gt;" });
  });

  test("telegram: 400 chat not found and 403 blocked fail at once", async () => {
    tg.script.set("777", [{ status: 400, body: { ok: false, error_code: 400, description: "Bad Request: chat not found" } }]);
    tg.script.set("778", [{ status: 403, body: { ok: false, error_code: 403, description: "Forbidden: bot was blocked by the user" } }]);
    const n = await settled(await post({ event: "tg", to: [{ user_id: "tg777", telegram_chat_id: "777" }, { user_id: "tg778", telegram_chat_id: "778" }], channels: ["telegram"], title: "x", body: "y" }));
    const byUser = Object.fromEntries(n.deliveries.map((d: any) => [d.user_id, d]));
    expect(byUser.tg777).toMatchObject({ status: "failed", attempts: 1 });
    expect(byUser.tg777.error).toContain("chat not found");
    expect(byUser.tg778.error).toContain("blocked");
  });

  test("sms: generic JSON API with bearer auth and field mapping", async () => {
    const n = await settled(await post({ event: "otp", to: [{ user_id: "s1", phone: "+15550001111" }], channels: ["sms"], title: "Code", body: "1234" }));
    expect(n.deliveries[0]).toMatchObject({ status: "sent" });
    const req = sms.requests.find((r) => r.body.includes("+15550001111"))!;
    expect(req.path).toBe("/api/send");
    expect(req.headers.get("authorization")).toBe("Bearer sms-bearer-token");
    expect(req.headers.get("idempotency-key")).toBe(n.deliveries[0].id);
    expect(JSON.parse(req.body)).toEqual({ to: "+15550001111", message: "Code\n1234", from: "Notify" });
  });

  test("webhook: signed per Standard Webhooks, webhook-id = delivery id; rule URL wins over the user's", async () => {
    await h.request("/api/v1/users/w1", { method: "PUT", json: { attributes: { webhook_url: `${receiver.url}/users/w1` } } });
    const n = await settled(await post({ event: "order.paid", to: ["w1"], channels: ["webhook"], title: "Paid", body: "Order 7" }));
    expect(n.deliveries[0]).toMatchObject({ status: "sent", recipient: `${receiver.url}/users/w1` });
    const got = receiver.verified.find((v) => v.id === n.deliveries[0].id)!;
    expect(got.body).toMatchObject({ type: "order.paid", data: { delivery_id: n.deliveries[0].id, user_id: "w1", title: "Paid", text: "Order 7" } });
    expect(receiver.rejected).toEqual([]);

    expect((await h.request("/api/v1/rules/order.shipped", { method: "PUT", json: { channels: ["webhook"], webhook_url: `${receiver.url}/crm` } })).status).toBe(201);
    const r = await settled(await post({ event: "order.shipped", to: ["w1"], title: "Shipped", body: "Order 7" }));
    expect(r.deliveries[0]).toMatchObject({ status: "sent", recipient: `${receiver.url}/crm` });
    expect(receiver.requests.some((q) => q.path === "/crm")).toBe(true);
  });

  test("free-form events (title/body, no template) reach every channel", async () => {
    const n = await settled(await post({
      event: "ff",
      to: [{ user_id: "ff1", email: "ff1@example.com", phone: "+15550002222", telegram_chat_id: "9001", attributes: { webhook_url: `${receiver.url}/ff` } }],
      channels: ["email", "sms", "telegram", "webhook"],
      title: "Hello <all>",
      body: "Body & more",
    }));
    expect(n.deliveries.map((d: any) => d.status)).toEqual(["sent", "sent", "sent", "sent"]);
    expect(smtp2.mails.find((m) => m.to.includes("ff1@example.com"))).toMatchObject({ subject: "Hello <all>", text: expect.stringContaining("Body & more") });
    expect(JSON.parse(sms.requests.find((r) => r.body.includes("+15550002222"))!.body).message).toBe("Hello <all>\nBody & more");
    expect(tg.sent.find((m) => m.chat_id === "9001")).toMatchObject({ parse_mode: "HTML", text: "<b>Hello &lt;all&gt;</b>\nBody &amp; more" });
    expect(receiver.verified.find((v) => v.body.data.user_id === "ff1")?.body.data).toMatchObject({ title: "Hello <all>", text: "Body & more" });
  });

  test("SSRF: webhook URLs resolving to loopback in any spelling are refused; the canary hears nothing", async () => {
    const port = new URL(canary.url).port;
    const urls = [
      `http://127.0.0.1:${port}/a`,
      `http://2130706433:${port}/decimal`,
      `http://0x7f.0.0.1:${port}/hex`,
      `http://127.1:${port}/short`,
      `http://[::ffff:127.0.0.1]:${port}/mapped`,
      `http://[::1]:${port}/v6`,
      `http://localhost:${port}/name`,
      `http://localhost.:${port}/trailing-dot`,
      `http://${(await Bun.file("/etc/hostname").text().catch(() => "localhost")).trim() || "localhost"}:${port}/hosts-file`,
    ];
    const to = urls.map((u, i) => ({ user_id: `ssrf${i}`, attributes: { webhook_url: u } }));
    const n = await settled(await post({ event: "ssrf", to, channels: ["webhook"], title: "t", body: "b" }));
    for (const d of n.deliveries) {
      expect(d.status).toBe("failed");
      expect(d.error).toMatch(/webhook refused: refusing to connect to .*(loopback|reserved name)|webhook dns/);
    }
    expect(n.deliveries.filter((d: any) => /refused/.test(d.error)).length).toBeGreaterThanOrEqual(urls.length - 1);
    expect(canary.requests).toHaveLength(0);
  });

  test("SSRF: private, link-local, metadata and redirect targets never get a connection (spy transport)", async () => {
    const attempted: string[] = [];
    const http = createSafeHttpClient({
      allowList: ["127.0.0.2"],
      transport: async (req) => {
        attempted.push(req.address);
        throw new HttpRequestError("NETWORK", "spy: not connecting", { phase: "connect" });
      },
    });
    const sender = createWebhookSender({ secret: SECRET, allowPrivate: false, allowList: [], timeoutMs: 2000 }, http);
    const targets = ["http://10.0.0.1/x", "http://192.168.1.1/x", "http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/x", "http://[::ffff:169.254.169.254]/x", "http://2852039166/x", "http://0.0.0.0/x"];
    for (const url of targets) {
      const err = await sender.send(outboundMessage(url), AbortSignal.timeout(2000)).catch((e) => e);
      expect(err).toMatchObject({ permanent: true });
      expect(String(err.message)).toContain("webhook refused");
    }
    expect(attempted).toEqual([]);
    // A receiver answering with a redirect to the canary: not followed, failed permanently.
    const redirector = startHttpCapture("127.0.0.2");
    redirector.respond = () => new Response(null, { status: 307, headers: { location: `${canary.url}/redirected` } });
    const real = createWebhookSender({ secret: SECRET, allowPrivate: false, allowList: ["127.0.0.2"], timeoutMs: 2000 });
    const err = await real.send(outboundMessage(`${redirector.url}/r`), AbortSignal.timeout(2000)).catch((e) => e);
    redirector.stop();
    expect(err).toMatchObject({ permanent: true });
    expect(canary.requests).toHaveLength(0);
  });

  test("Twilio preset: form-encoded To/From/Body with basic auth; error 21211 is permanent", async () => {
    const twilio = startHttpCapture();
    const sid = "AC" + "0123456789abcdef".repeat(2);
    const sender = createTwilioSender({ accountSid: sid, authToken: "twilio-auth-token", from: "+15559990000", baseUrl: twilio.url, timeoutMs: 2000 });
    const r = await sender.send(outboundMessage("+15551234567", { content: { text: "Your code is 42", meta: { template: "otp" } } }), AbortSignal.timeout(2000));
    expect(r.providerId).toMatch(/^SM/);
    const req = twilio.requests[0]!;
    expect(req.path).toBe(`/2010-04-01/Accounts/${sid}/Messages.json`);
    expect(req.headers.get("content-type")).toBe("application/x-www-form-urlencoded");
    expect(req.headers.get("authorization")).toBe(`Basic ${Buffer.from(`${sid}:twilio-auth-token`).toString("base64")}`);
    expect(Object.fromEntries(new URLSearchParams(req.body))).toEqual({ To: "+15551234567", From: "+15559990000", Body: "Your code is 42" });
    twilio.respond = () => Response.json({ code: 21211, message: "The 'To' number is not a valid phone number.", status: 400 }, { status: 400 });
    const err = await sender.send(outboundMessage("+1"), AbortSignal.timeout(2000)).catch((e) => e);
    expect(err).toMatchObject({ permanent: true });
    expect(err.message).toContain("21211");
    expect(err.message).not.toContain("twilio-auth-token");
    twilio.stop();
  });

  test("generic SMS, form body with basic auth; 5xx is transient, 400 permanent", async () => {
    const peer = startHttpCapture();
    const sender = createSmsHttpSender({ url: `${peer.url}/sms`, format: "form", username: "u", password: "p", fields: { to: "dst", text: "txt", from: "src" }, from: "ACME", idField: "id", timeoutMs: 2000 });
    await sender.send(outboundMessage("+15550003333", { content: { text: "hi", meta: { template: "t" } } }), AbortSignal.timeout(2000));
    expect(Object.fromEntries(new URLSearchParams(peer.requests[0]!.body))).toEqual({ dst: "+15550003333", txt: "hi", src: "ACME" });
    expect(peer.requests[0]!.headers.get("authorization")).toBe(`Basic ${Buffer.from("u:p").toString("base64")}`);
    peer.respond = () => new Response("busy", { status: 503, headers: { "retry-after": "7" } });
    expect(await sender.send(outboundMessage("+1555"), AbortSignal.timeout(2000)).catch((e) => e)).toMatchObject({ permanent: false, retryAfterMs: 7000 });
    peer.respond = () => new Response("bad number", { status: 400 });
    expect(await sender.send(outboundMessage("+1555"), AbortSignal.timeout(2000)).catch((e) => e)).toMatchObject({ permanent: true });
    peer.stop();
  });
});
