/**
 * Rules, preferences, quiet hours (with a controllable clock), one-click unsubscribe, locale
 * fallback, template injection through the API, and Telegram chat binding — through REST, the
 * broker and the worker, with mail arriving at a real SMTP server.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { channelHttpExtension, channelWorkerHooks } from "../src/roles/channel-features.ts";
import { startTelegramPeer, type TelegramPeer } from "./support/channel-peers.ts";
import { createHarness, type Harness } from "./support/harness.ts";
import { haveServices, waitFor } from "./support/services.ts";

declare global {
  var __pwned: unknown;
}

const WEBHOOK_SECRET = "tg-webhook-secret-0123456789";

describe.skipIf(!(await haveServices))("rules, preferences, unsubscribe", () => {
  let h: Harness, tg: TelegramPeer;
  let clock = () => new Date();
  beforeAll(async () => {
    tg = startTelegramPeer();
    h = await createHarness({
      ext: () => channelHttpExtension(),
      workerOptions: (app) => ({ hooks: channelWorkerHooks(app, { now: () => clock() }) }),
      env: {
        NOTIFY_PUBLIC_URL: "https://notify.example.test",
        NOTIFY_UNSUBSCRIBE_SECRET: "unsubscribe-secret-for-tests-0123",
        NOTIFY_TELEGRAM_BOT_TOKEN: tg.token,
        NOTIFY_TELEGRAM_API_URL: tg.url,
        NOTIFY_TELEGRAM_BOT_USERNAME: "notify_test_bot",
        NOTIFY_TELEGRAM_WEBHOOK_SECRET: WEBHOOK_SECRET,
      },
    });
    const t = await h.request("/api/v1/templates/welcome", {
      method: "PUT",
      json: {
        name: "Welcome",
        category: "account",
        default_locale: "en",
        variables: ["link"],
        variants: [
          { channel: "email", locale: "en", subject: "Welcome {{ name }}", text: "EN {{ link }}" },
          { channel: "email", locale: "ru", subject: "Привет {{ name }}", text: "RU {{ link }}" },
        ],
      },
    });
    expect(t.status).toBe(201);
  });
  afterAll(async () => {
    await h?.close();
    tg?.stop();
  });

  const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;
  const post = async (body: unknown) => {
    const res = await h.request("/api/v1/events", { method: "POST", json: body });
    expect(res.status).toBe(202);
    return ((await res.json()) as { id: string }).id;
  };
  const deliveries = (id: string, done = (d: any) => ["sent", "failed", "skipped"].includes(d.status)) =>
    waitFor(async () => {
      const n = await json(h.request(`/api/v1/notifications/${id}`));
      return n.deliveries?.length && n.deliveries.every(done) ? n.deliveries : undefined;
    }, { what: `deliveries of ${id}`, timeoutMs: 20_000 });
  const mailTo = (addr: string) => waitFor(() => h.smtp.mails.find((m) => m.to.includes(addr)), { what: `mail to ${addr}` });

  test("rules: validated (unknown template → 422 naming template), stored, listed, applied, deleted", async () => {
    const bad = await h.request("/api/v1/rules/user.registered", { method: "PUT", json: { template: "nope", channels: ["email", "pigeon"] } });
    expect(bad.status).toBe(422);
    expect((await json(bad)).error.details.map((d: any) => d.path)).toContain("channels.1");
    const unknown = await h.request("/api/v1/rules/user.registered", { method: "PUT", json: { template: "nope", channels: ["email"] } });
    expect(unknown.status).toBe(422);
    expect(await json(unknown)).toMatchObject({ error: { code: "UNKNOWN_TEMPLATE", details: [{ path: "template" }] } });
    const rule = { template: "welcome", channels: ["email"], category: "account", priority: "high", data_sources: [{ name: "movie", url: "https://movies.example/api/movies/{data.movie_id}" }] };
    const put = await h.request("/api/v1/rules/user.registered", { method: "PUT", json: rule });
    expect(put.status).toBe(201);
    expect(await json(h.request("/api/v1/rules/user.registered"))).toMatchObject({ event: "user.registered", ...rule });
    expect((await json(h.request("/api/v1/rules"))).items.map((r: any) => r.event)).toContain("user.registered");
    const noScope = await h.request("/api/v1/api-keys", { method: "POST", json: { name: "events", scopes: ["events:write"] } });
    expect((await h.request("/api/v1/rules", { key: (await json(noScope)).key })).status).toBe(403);

    const id = await post({ event: "user.registered", to: [{ user_id: "r1", email: "r1@example.com", name: "Rita" }], data: { link: "L1" } });
    expect((await mailTo("r1@example.com")).subject).toBe("Welcome Rita");
    const row = await h.db.sql`SELECT payload FROM notifications WHERE id = ${id}`;
    expect(row[0]!.payload).toMatchObject({ template: "welcome", channels: ["email"], category: "account", priority: "high" });

    expect((await h.request("/api/v1/rules/user.registered", { method: "DELETE" })).status).toBe(204);
    expect((await h.request("/api/v1/rules/user.registered")).status).toBe(404);
    const none = await h.request("/api/v1/events", { method: "POST", json: { event: "user.registered", to: ["r1"], data: { link: "L" } } });
    expect(none.status).toBe(422);
  });

  test("locale fallback end to end: ru-RU → ru; de → the template's default (en)", async () => {
    await post({ event: "w", to: [{ user_id: "l1", email: "l1@example.com", name: "Иван", locale: "ru-RU" }, { user_id: "l2", email: "l2@example.com", name: "Hans", locale: "de-DE" }], template: "welcome", channels: ["email"], data: { link: "X" } });
    expect(await mailTo("l1@example.com")).toMatchObject({ subject: "Привет Иван", text: expect.stringContaining("RU X") });
    expect(await mailTo("l2@example.com")).toMatchObject({ subject: "Welcome Hans", text: expect.stringContaining("EN X") });
  });

  test("preferences: validated, 404 for unknown users; an opted-out delivery is skipped with the reason", async () => {
    expect((await h.request("/api/v1/users/ghost/preferences")).status).toBe(404);
    await h.request("/api/v1/users/p1", { method: "PUT", json: { email: "p1@example.com" } });
    expect(await json(h.request("/api/v1/users/p1/preferences"))).toEqual({ opt_outs: [], quiet_hours: null, updated_at: null });
    const bad = await h.request("/api/v1/users/p1/preferences", { method: "PUT", json: { opt_outs: [{ category: "news", channel: "fax" }], quiet_hours: { start: "25:00", end: "08:00" } } });
    expect(bad.status).toBe(422);
    expect((await json(bad)).error.details.map((d: any) => d.path).sort()).toEqual(["opt_outs.0.channel", "quiet_hours.start"]);
    const ok = await h.request("/api/v1/users/p1/preferences", { method: "PUT", json: { opt_outs: [{ category: "news", channel: "email" }] } });
    expect(ok.status).toBe(200);
    const [skipped] = await deliveries(await post({ event: "digest", to: ["p1"], channels: ["email"], category: "news", title: "News", body: "b" }));
    expect(skipped).toMatchObject({ status: "skipped", error: "opted out of news on email" });
    const [sent] = await deliveries(await post({ event: "bill", to: ["p1"], channels: ["email"], category: "billing", title: "Bill", body: "b" }));
    expect(sent.status).toBe("sent");
  });

  test("quiet hours (controllable clock): deferred until the window ends, then sent; critical goes at once", async () => {
    await h.request("/api/v1/users/q1", { method: "PUT", json: { email: "q1@example.com", timezone: "Asia/Tokyo" } });
    await h.request("/api/v1/users/q1/preferences", { method: "PUT", json: { quiet_hours: { start: "22:00", end: "08:00" } } });
    // 07:59:57 in Tokyo: three seconds of quiet left.
    clock = () => new Date("2026-05-01T22:59:57Z");
    const id = await post({ event: "promo", to: ["q1"], channels: ["email"], title: "Later", body: "b" });
    const [queued] = await deliveries(id, (d) => d.status === "queued");
    const row = (await h.db.sql`SELECT next_attempt_at FROM deliveries WHERE id = ${queued.id}`)[0]!;
    const wait = (row.next_attempt_at as Date).getTime() - Date.now();
    expect(wait).toBeGreaterThan(1000);
    expect(wait).toBeLessThanOrEqual(3000);
    const critical = await post({ event: "alarm", to: ["q1"], channels: ["email"], priority: "critical", title: "Now", body: "b" });
    expect((await deliveries(critical))[0].status).toBe("sent");
    expect(h.smtp.mails.filter((m) => m.subject === "Later")).toHaveLength(0);
    const [later] = await deliveries(id);
    expect(later).toMatchObject({ status: "sent", attempts: 1 });
    expect(Date.parse(later.sent_at)).toBeGreaterThanOrEqual((row.next_attempt_at as Date).getTime() - 100);
    // Midday in Tokyo: no wait.
    clock = () => new Date("2026-05-01T03:00:00Z");
    expect((await deliveries(await post({ event: "promo", to: ["q1"], channels: ["email"], title: "Noon", body: "b" })))[0].status).toBe("sent");
    clock = () => new Date();
  });

  test("quiet hours past the event's expires_at: skipped with the reason; already expired: skipped; expires_at before send_at: 422", async () => {
    await h.request("/api/v1/users/q2", { method: "PUT", json: { email: "q2@example.com", timezone: "Asia/Tokyo" } });
    await h.request("/api/v1/users/q2/preferences", { method: "PUT", json: { quiet_hours: { start: "22:00", end: "08:00" } } });
    // 23:00 in Tokyo: nine hours of quiet left, the offer ends in one.
    clock = () => new Date("2026-05-01T14:00:00Z");
    try {
      const soon = new Date(Date.now() + 3_600_000).toISOString();
      const [skipped] = await deliveries(await post({ event: "flash", to: ["q2"], channels: ["email"], title: "Flash", body: "b", expires_at: soon }));
      expect(skipped).toMatchObject({ status: "skipped", error: expect.stringContaining("past the event's expires_at") });
      // Ends after the window: waits like any other.
      const later = new Date(Date.now() + 86_400_000).toISOString();
      expect((await deliveries(await post({ event: "flash", to: ["q2"], channels: ["email"], title: "Flash2", body: "b", expires_at: later }), (d) => d.status === "queued"))[0].status).toBe("queued");
    } finally {
      clock = () => new Date();
    }
    const past = new Date(Date.now() - 1000).toISOString();
    const [expired] = await deliveries(await post({ event: "flash", to: [{ user_id: "q3", email: "q3@example.com" }], channels: ["email"], title: "Old", body: "b", expires_at: past }));
    expect(expired).toMatchObject({ status: "skipped", error: expect.stringContaining("expired at") });
    expect(h.smtp.mails.filter((m) => m.subject === "Flash" || m.subject === "Old")).toHaveLength(0);
    const bad = await h.request("/api/v1/events", { method: "POST", json: { event: "flash", to: ["q2"], channels: ["email"], title: "t", send_at: "2030-01-02T00:00:00Z", expires_at: "2030-01-01T00:00:00Z" } });
    expect(bad.status).toBe(422);
    expect((await json(bad)).error.details).toEqual([{ path: "expires_at", message: "must be after send_at" }]);
  });

  test("unsubscribe round trip: List-Unsubscribe headers, page without login, one-click POST, next mail skipped", async () => {
    await post({ event: "n", to: [{ user_id: "un1", email: "un1@example.com" }], channels: ["email"], category: "news", title: "Issue 1", body: "b" });
    const mail = await mailTo("un1@example.com");
    const url = mail.headers["list-unsubscribe"]!.replace(/^<|>$/g, "");
    expect(url).toStartWith("https://notify.example.test/u/");
    expect(mail.headers["list-unsubscribe-post"]).toBe("List-Unsubscribe=One-Click");
    const path = new URL(url).pathname;
    const page = await h.request(path, { key: null });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<b>news</b>");
    expect((await h.request(path.slice(0, -3) + "AAA", { key: null, method: "POST" })).status).toBe(400);
    const click = await h.request(path, { key: null, method: "POST", body: "List-Unsubscribe=One-Click", headers: { "content-type": "application/x-www-form-urlencoded" } });
    expect(click.status).toBe(200);
    const [d] = await deliveries(await post({ event: "n", to: ["un1"], channels: ["email"], category: "news", title: "Issue 2", body: "b" }));
    expect(d).toMatchObject({ status: "skipped", error: "opted out of news on email" });
    const critical = await post({ event: "n", to: ["un1"], channels: ["email"], category: "security", priority: "critical", title: "Crit", body: "b" });
    await deliveries(critical);
    expect(h.smtp.mails.find((m) => m.subject === "Crit")?.headers["list-unsubscribe"]).toBeUndefined();
  });

  test("template injection: rejected at save naming the tag; a stored one bypassing the API fails at render, no code runs", async () => {
    globalThis.__pwned = undefined;
    const payload = '{{ it.constructor.constructor("globalThis.__pwned = 1")() }}';
    const res = await h.request("/api/v1/templates/evil", { method: "PUT", json: { name: "Evil", variants: [{ channel: "email", text: `Hi ${payload}` }] } });
    expect(res.status).toBe(422);
    const err = await json(res);
    expect(err.error.code).toBe("TEMPLATE_INVALID");
    expect(err.error.details[0].path).toBe("variants.0.text");
    expect(err.error.details[0].message).toContain("it.constructor");
    for (const tag of ["{{ process.exit(1) }}", "{{ name.constructor }}", "{{ __proto__ }}", "<%= process.pid %>{{ this }}"]) {
      const r = await h.request("/api/v1/templates/evil", { method: "PUT", json: { name: "Evil", variants: [{ channel: "email", text: tag }] } });
      expect(r.status).toBe(422);
    }
    const body = { name: "Evil", variants: [{ channel: "email", subject: "s", text: `Hi ${payload}` }] };
    await h.db.sql`INSERT INTO templates (key, name, version, body) VALUES ('evil', 'Evil', 1, ${h.db.sql.json(body as never)})`;
    const [d] = await deliveries(await post({ event: "e", to: [{ user_id: "ev1", email: "ev1@example.com" }], template: "evil", channels: ["email"] }));
    expect(d.status).toBe("failed");
    expect(d.error).toContain("render");
    expect(globalThis.__pwned).toBeUndefined();
    expect(h.smtp.mails.find((m) => m.to.includes("ev1@example.com"))).toBeUndefined();
  });

  test("telegram: deep link, /start <token> through the verified webhook binds the chat once", async () => {
    await h.request("/api/v1/users/t1", { method: "PUT", json: { name: "Tom" } });
    const link = await h.request("/api/v1/users/t1/telegram-link", { method: "POST" });
    expect(link.status).toBe(201);
    const { url, token, expires_at } = await json(link);
    expect(url).toBe(`https://t.me/notify_test_bot?start=${token}`);
    expect(Date.parse(expires_at)).toBeGreaterThan(Date.now());
    const update = (text: string) => ({ update_id: 1, message: { message_id: 5, chat: { id: 555001, type: "private" }, from: { id: 555001 }, text } });
    const hook = (secret: string, header: string, text: string) =>
      h.request(`/api/v1/telegram/webhook/${secret}`, { key: null, method: "POST", json: update(text), headers: { "x-telegram-bot-api-secret-token": header } });
    expect((await hook(WEBHOOK_SECRET, "wrong-secret-wrong-secret", `/start ${token}`)).status).toBe(404);
    expect((await hook("wrong-secret-wrong-secret", WEBHOOK_SECRET, `/start ${token}`)).status).toBe(404);
    expect((await h.db.sql`SELECT telegram_chat_id FROM users WHERE id = 't1'`)[0]!.telegram_chat_id).toBeNull();
    const ok = await hook(WEBHOOK_SECRET, WEBHOOK_SECRET, `/start ${token}`);
    expect(await json(ok)).toMatchObject({ method: "sendMessage", chat_id: 555001, text: expect.stringContaining("on for this chat") });
    expect((await json(h.request("/api/v1/users/t1"))).telegram_chat_id).toBe("555001");
    expect((await json(hook(WEBHOOK_SECRET, WEBHOOK_SECRET, `/start ${token}`))).text).toContain("not valid");
    const [d] = await deliveries(await post({ event: "tg", to: ["t1"], channels: ["telegram"], title: "Bound", body: "b" }));
    expect(d).toMatchObject({ status: "sent", recipient: "555001" });
    expect(tg.sent.some((m) => m.chat_id === "555001")).toBe(true);
  });
});
