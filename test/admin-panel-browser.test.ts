/**
 * The admin panel (/admin) in a real browser (Debian's Chromium driven by playwright-core) against
 * the compiled binary on PostgreSQL, RabbitMQ and a real SMTP server: sign in, write a template and
 * preview it, schedule a recurring campaign and pause it, follow a notification's deliveries,
 * replay a dead letter, cancel a scheduled send, keep the user directory and API keys — each
 * checked through the API as well — and what a manager types is shown as text, never run.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import { ensureBinary, startNotify, type NotifyProcess } from "./support/binary.ts";
import { createTestDb, createTestVhost, haveServices, type TestDb, type TestVhost } from "./support/services.ts";
import { startTestSmtp, type TestSmtp } from "./support/smtp.ts";

const KEY = "admin-panel-key-0123456789abcdef";
const CHROMIUM = process.env.NOTIFY_TEST_CHROMIUM ?? "/usr/bin/chromium";
// As the machine notes say: without the background-networking flags Chromium keeps dialling out
// (refused here) at every start.
const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

// Like the services: skipped where there is no Chromium, a failure where CI requires everything.
const skip = !(await haveServices) || (!existsSync(CHROMIUM) && process.env.NOTIFY_TEST_REQUIRE_SERVICES !== "1");

describe.skipIf(skip)("admin panel in a browser", () => {
  let db: TestDb, vhost: TestVhost, smtp: TestSmtp, notify: NotifyProcess, browser: Browser, page: Page, base: string;
  const problems: string[] = [];
  const questions: string[] = [];
  let declineNext = false;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install chromium; .ci/run does) or set NOTIFY_TEST_CHROMIUM`);
    await ensureBinary();
    [db, vhost, smtp] = await Promise.all([createTestDb(), createTestVhost(), startTestSmtp()]);
    // One attempt per delivery: a relay's refusal dead-letters it at once (the dead-letter view's test).
    notify = await startNotify(
      "all",
      { NOTIFY_DATABASE_URL: db.url, NOTIFY_AMQP_URL: vhost.url, NOTIFY_ADMIN_KEY: KEY, NOTIFY_LOG_LEVEL: "warn", NOTIFY_SMTP_URL: `${smtp.url}?starttls=off`, NOTIFY_MAX_ATTEMPTS: "1" },
      { readyTimeoutMs: 30_000 },
    );
    base = `http://127.0.0.1:${notify.port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await browser.newPage();
    // A CSP violation or a script error in the panel fails the test at the end.
    page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
    page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
    // Destructive buttons ask first: the operator says yes unless a step says otherwise.
    page.on("dialog", (d) => {
      questions.push(d.message());
      void (declineNext ? d.dismiss() : d.accept());
      declineNext = false;
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await notify?.kill("SIGKILL");
    await Promise.allSettled([db?.drop(), vhost?.drop(), smtp?.close()]);
  });

  const api = async (path: string) => {
    const res = await fetch(`${base}/api/v1${path}`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(res.status).toBe(200);
    return res.json() as Promise<any>;
  };
  const post = (path: string, body: unknown, key = KEY) =>
    fetch(`${base}/api/v1${path}`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  /** Waits for `check` to hold, with a deadline (the worker and the audit role act a moment later). */
  const until = async (what: string, check: () => Promise<boolean>, ms = 20_000) => {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
      await Bun.sleep(50);
    }
  };

  test("served from the binary with a strict Content-Security-Policy", async () => {
    const res = await fetch(`${base}/admin`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    const csp = res.headers.get("content-security-policy")!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).not.toContain("unsafe-eval");
    expect(csp).toContain("frame-ancestors 'none'");
    expect((await fetch(`${base}/admin/app.js`)).headers.get("content-type")).toContain("javascript");
  });

  test("a wrong key is refused; the admin key signs in", async () => {
    await page.goto(`${base}/admin`);
    await page.fill("#key", "not-a-real-key-0123456789");
    await page.click("#login-form button[type=submit]");
    await page.waitForSelector("#login-error:has-text('not valid')");
    await page.fill("#key", KEY);
    await page.click("#login-form button[type=submit]");
    await page.waitForSelector("#templates-table:has-text('No templates yet.')");
    expect(await page.isVisible("#nav")).toBe(true);
  });

  test("write a template, see it listed (its name as text), preview it with data", async () => {
    await page.click("#new-template");
    await page.fill("#template-key", "welcome");
    await page.fill("#template-name", "Welcome <img src=x onerror=alert(1)>");
    await page.fill("fieldset.variant [data-field=subject]", "Hi {{ name }}");
    await page.fill("fieldset.variant [data-field=text]", "Hello {{ name }}, welcome aboard.");
    await page.fill("fieldset.variant [data-field=html]", "<p>Hello <b>{{ name }}</b></p><script>parent.document.title = 'pwned'</script>");
    await page.click("#save-template");
    await page.waitForSelector("#template-result:has-text('Saved welcome (version 1)')");

    const stored = await api("/templates/welcome");
    expect(stored.name).toBe("Welcome <img src=x onerror=alert(1)>");
    expect(stored.variants[0]).toMatchObject({ channel: "email", subject: "Hi {{ name }}", text: "Hello {{ name }}, welcome aboard." });

    const row = page.locator("#templates-table tr[data-key=welcome]");
    expect(await row.textContent()).toContain("Welcome <img src=x onerror=alert(1)>");
    expect(await row.locator("img").count()).toBe(0);

    await page.fill("#preview-data", '{"name": "Ada"}');
    await page.click("#preview-button");
    await page.waitForSelector("#preview-text:has-text('Hello Ada, welcome aboard.')");
    const frame = page.locator("#preview iframe");
    expect(await frame.getAttribute("sandbox")).toBe("");
    expect(await page.frameLocator("#preview iframe").locator("b").textContent()).toBe("Ada");
    expect(await page.title()).toBe("notify · admin");
  });

  test("edit a template: the saved version goes up and the preview follows it", async () => {
    await page.click("#templates-table tr[data-key=welcome] button:has-text('Edit')");
    await page.waitForSelector("#template-form h3:has-text('Edit welcome')");
    expect(await page.getAttribute("#template-key", "readonly")).not.toBeNull();
    await page.fill("fieldset.variant [data-field=text]", "Welcome back, {{ name }}.");
    await page.click("#save-template");
    await page.waitForSelector("#template-result:has-text('Saved welcome (version 2)')");
    expect((await api("/templates/welcome")).version).toBe(2);
    await page.fill("#preview-data", '{"name": "Grace"}');
    await page.click("#preview-button");
    await page.waitForSelector("#preview-text:has-text('Welcome back, Grace.')");
  });

  test("a template the API refuses shows the field at fault and stores nothing", async () => {
    await page.click("#new-template");
    await page.fill("#template-key", "not a key!");
    await page.fill("#template-name", "Broken");
    await page.fill("fieldset.variant [data-field=text]", "Hello");
    await page.click("#save-template");
    await page.waitForSelector("#template-result.error");
    expect(await page.textContent("#template-result")).toContain("key:");
    expect((await api("/templates")).items.map((t: { key: string }) => t.key)).toEqual(["welcome"]);
  });

  test("an event rule: events that only name themselves get the template and channels; data sources edited (a bad URL refused); delete it", async () => {
    await page.click("nav a[data-view=rules]");
    await page.waitForSelector("#rules-table:has-text('No event rules yet.')");
    await page.click("#new-rule");
    await page.fill("#rule-event", "user.registered");
    await page.selectOption("#rule-template", "welcome");
    await page.selectOption("#rule-priority", "high");
    await page.click("#save-rule");
    await page.waitForSelector("#rule-result:has-text('Saved the rule for user.registered.')");
    expect(await api("/rules/user.registered")).toMatchObject({ event: "user.registered", template: "welcome", channels: ["email"], priority: "high" });
    await page.waitForSelector("#rules-table tr[data-event='user.registered']");
    // Data sources: one per line; a bad URL is refused naming it, a good one is stored.
    await page.fill("#rule-sources", "movie ftp://movies/{data.movie_id}");
    await page.click("#save-rule");
    await page.waitForSelector("#rule-result.error");
    expect(await page.textContent("#rule-result")).toContain("data_sources.0.url:");
    await page.fill("#rule-sources", "movie {base}/movies/{data.movie_id}");
    await page.click("#save-rule");
    await page.waitForSelector("#rule-result.ok");
    expect((await api("/rules/user.registered")).data_sources).toEqual([{ name: "movie", url: "{base}/movies/{data.movie_id}" }]);
    await page.fill("#rule-sources", "");
    await page.click("#save-rule");
    await until("data sources cleared", async () => (await api("/rules/user.registered")).data_sources.length === 0, 5_000);
    // A producer now names only the event: accepted, the rule supplies template and channels.
    const posted = await fetch(`${base}/api/v1/events`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ event: "user.registered", to: [{ user_id: "u9", email: "u9@example.test" }], data: { name: "Lin" } }),
    });
    expect(posted.status).toBe(202);
    await page.click("#rules-table tr[data-event='user.registered'] button:has-text('Delete')");
    await page.waitForSelector("#rules-table:has-text('No event rules yet.')");
    expect((await fetch(`${base}/api/v1/rules/user.registered`, { headers: { authorization: `Bearer ${KEY}` } })).status).toBe(404);
  });

  test("schedule a recurring campaign, see its next runs, pause it; a bad cron is refused", async () => {
    await page.click("nav a[data-view=campaigns]");
    await page.waitForSelector("#campaign-form");
    await page.fill("#campaign-name", "Weekly digest");
    await page.selectOption("#campaign-template", "welcome");
    await page.selectOption("#audience-kind", "user_ids");
    await page.fill("#audience-value", "u1\nu2");
    await page.selectOption("#schedule-kind", "cron");
    await page.fill("#schedule-timezone", "Europe/Berlin");

    await page.fill("#schedule-cron", "not a cron");
    await page.click("#create-campaign");
    await page.waitForSelector("#campaign-result.error");
    expect(await page.textContent("#campaign-result")).toContain("schedule.cron");
    expect((await api("/campaigns")).items).toHaveLength(0);

    await page.fill("#schedule-cron", "0 9 * * MON");
    await page.click("#preview-schedule");
    await page.waitForSelector("#schedule-next li >> nth=4");
    expect(await page.locator("#schedule-next li").count()).toBe(5);

    await page.click("#create-campaign");
    await page.waitForSelector("#campaign-result:has-text('Created Weekly digest (active)')");
    const [campaign] = (await api("/campaigns")).items;
    expect(campaign).toMatchObject({ name: "Weekly digest", template: "welcome", channels: ["email"], audience: { user_ids: ["u1", "u2"] }, schedule: { cron: "0 9 * * MON", timezone: "Europe/Berlin" } });

    const row = page.locator(`#campaigns-table tr[data-id="${campaign.id}"]`);
    await row.locator("button:has-text('Pause')").click();
    await page.waitForSelector(`#campaigns-table tr[data-id="${campaign.id}"] .status:has-text('paused')`);
    expect((await api(`/campaigns/${campaign.id}`)).status).toBe("paused");
  });

  test("messages: a notification's deliveries; a delivery the relay refused is dead-lettered, replayed from the panel and then delivered once", async () => {
    smtp.respond = ({ to }) => (to.includes("dl@example.test") ? { code: 451, message: "try again later" } : undefined);
    const res = await post("/events", { event: "order.shipped", to: [{ user_id: "dl", email: "dl@example.test" }], template: "welcome", channels: ["email"], data: { name: "Dee" } });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    await until("notification failed", async () => (await api(`/notifications/${id}`)).status === "failed");

    await page.click("nav a[data-view=messages]");
    await page.selectOption("#messages-status", "failed");
    await page.click("#messages-search");
    await page.click(`#messages-table tr[data-id="${id}"] button:has-text('Open')`);
    await page.waitForSelector(`#message-detail [data-id="${id}"]`);
    const delivery = page.locator("#deliveries-table tr[data-channel=email]");
    expect(await delivery.locator(".status").textContent()).toBe("failed");
    expect(await delivery.textContent()).toContain("dl@example.test");
    expect(await delivery.textContent()).toContain("dead-lettered");
    // Not cancellable any more: no button for it.
    expect(await page.locator("#message-detail button:has-text('Cancel')").count()).toBe(0);

    // The relay takes mail again; the operator replays the dead letter.
    smtp.respond = undefined;
    await page.click("nav a[data-view=dead-letters]");
    const [dl] = (await api("/dead-letters")).items as Array<{ id: string; ref_id: string; queue: string }>;
    expect(dl!.queue).toBe("deliveries");
    const row = page.locator(`#dead-letters-table tr[data-id="${dl!.id}"]`);
    expect(await row.textContent()).toContain("deliveries");
    await row.locator("button:has-text('Replay')").click();
    await page.waitForSelector(`p[role=status]:has-text('Replayed ${dl!.id}.')`);
    await page.waitForSelector("#dead-letters-table:has-text('No dead letters.')");
    await until("replayed delivery sent", async () => (await api(`/notifications/${id}`)).deliveries[0].status === "sent");
    expect(smtp.mails.filter((m) => m.to.includes("dl@example.test"))).toHaveLength(1);
    // Replayed once: the view can show it, without a second Replay button.
    await page.check("#dead-letters-replayed");
    await page.waitForSelector(`#dead-letters-table tr[data-id="${dl!.id}"]`);
    expect(await page.locator(`#dead-letters-table tr[data-id="${dl!.id}"] button`).count()).toBe(0);
    const replay = await post(`/dead-letters/${dl!.id}/replay`, {});
    expect(replay.status).toBe(409);
  });

  test("messages: a scheduled notification is cancelled from the panel; an unknown id shows the API's 404", async () => {
    const res = await post("/events", { event: "reminder", to: [{ user_id: "later", email: "later@example.test" }], template: "welcome", channels: ["email"], send_at: new Date(Date.now() + 3_600_000).toISOString() });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    await page.click("nav a[data-view=messages]");
    await page.fill("#message-id", id);
    await page.click("#message-open button[type=submit]");
    await page.waitForSelector(`#message-detail [data-id="${id}"] .status:has-text('scheduled')`);
    await page.click("#message-detail button:has-text('Cancel')");
    await page.waitForSelector(`#message-detail [data-id="${id}"] h3 .status:has-text('cancelled')`);
    expect((await api(`/notifications/${id}`)).status).toBe("cancelled");
    // An id that is not there: the API's answer, in the panel.
    await page.fill("#message-id", "00000000-0000-7000-8000-000000000000");
    await page.click("#message-open button[type=submit]");
    await page.waitForSelector("#message-detail .error:has-text('NOT_FOUND')");
  });

  test("users: create, edit (an emptied field is cleared), a bad e-mail is refused with its field, preferences (a bad time refused), delete", async () => {
    await page.click("nav a[data-view=users]");
    await page.waitForSelector("#users-table");
    await page.click("#new-user");
    await page.fill("#user-id", "ada");
    await page.fill("#user-email", "ada@example.test");
    await page.fill("#user-phone", "+4915112345678");
    await page.fill("#user-name", "Ada <b>Lovelace</b>");
    await page.fill("#user-attributes", '{"plan": "pro"}');
    await page.click("#save-user");
    await page.waitForSelector("#user-result:has-text('Saved ada.')");
    expect(await api("/users/ada")).toMatchObject({ email: "ada@example.test", phone: "+4915112345678", name: "Ada <b>Lovelace</b>", attributes: { plan: "pro" } });
    const row = page.locator("#users-table tr[data-id=ada]");
    await row.waitFor();
    expect(await row.locator("b").count()).toBe(0);

    await row.locator("button:has-text('Edit')").click();
    await page.fill("#user-phone", "");
    await page.fill("#user-email", "not-an-address");
    await page.click("#save-user");
    await page.waitForSelector("#user-result.error");
    expect(await page.textContent("#user-result")).toContain("email:");
    expect((await api("/users/ada")).email).toBe("ada@example.test");
    await page.fill("#user-email", "ada@lovelace.test");
    await page.click("#save-user");
    await page.waitForSelector("#user-result:has-text('Saved ada.')");
    expect(await api("/users/ada")).toMatchObject({ email: "ada@lovelace.test", phone: null, attributes: { plan: "pro" } });

    // The editor of an existing user carries its preferences.
    await page.waitForSelector("#prefs-form");
    await page.fill("#prefs-opt-outs", "marketing:email\n*:sms");
    await page.fill("#prefs-quiet-start", "25:00");
    await page.fill("#prefs-quiet-end", "07:00");
    await page.click("#save-prefs");
    await page.waitForSelector("#prefs-result.error");
    expect(await page.textContent("#prefs-result")).toContain("quiet_hours.start:");
    await page.fill("#prefs-quiet-start", "22:00");
    await page.fill("#prefs-quiet-timezone", "Europe/Berlin");
    await page.click("#save-prefs");
    await page.waitForSelector("#prefs-result:has-text('Saved the preferences of ada.')");
    expect(await api("/users/ada/preferences")).toMatchObject({
      opt_outs: [{ category: "marketing", channel: "email" }, { category: "*", channel: "sms" }],
      quiet_hours: { start: "22:00", end: "07:00", timezone: "Europe/Berlin" },
    });

    await page.click("#users-table tr[data-id=ada] button:has-text('Delete')");
    await page.waitForSelector("#users-table tr[data-id=ada]", { state: "detached" });
    expect((await fetch(`${base}/api/v1/users/ada`, { headers: { authorization: `Bearer ${KEY}` } })).status).toBe(404);
  });

  test("API keys: a key created in the panel is shown once and works with its scopes only; revoked, it is refused", async () => {
    await page.click("nav a[data-view=api-keys]");
    await page.waitForSelector("#api-key-form");
    await page.fill("#api-key-name", "shop backend");
    await page.click("#create-api-key");
    await page.waitForSelector("#api-key-result.error");
    expect(await page.textContent("#api-key-result")).toContain("scopes:");

    await page.check("#api-key-form [data-scope='events:write']");
    await page.click("#create-api-key");
    const key = (await page.textContent("#new-api-key", { timeout: 10_000 }))!;
    expect(key).toMatch(/^nk_/);
    const [record] = (await api("/api-keys")).items as Array<{ id: string; name: string; scopes: string[] }>;
    expect(record).toMatchObject({ name: "shop backend", scopes: ["events:write"] });
    expect(JSON.stringify(await api("/api-keys"))).not.toContain(key);

    expect((await post("/events", { event: "ping", to: [{ user_id: "k1", email: "k1@example.test" }], channels: ["email"], title: "hi", body: "hi" }, key)).status).toBe(202);
    expect((await fetch(`${base}/api/v1/templates`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(403);

    // Declined: nothing happens; the key still works.
    declineNext = true;
    await page.click(`#api-keys-table tr[data-id="${record!.id}"] button:has-text('Revoke')`);
    expect(questions.at(-1)).toContain('Revoke the key "shop backend"?');
    expect((await post("/events", { event: "ping", to: ["k1"], channels: ["email"], title: "hi" }, key)).status).toBe(202);
    expect(((await api("/api-keys")).items as Array<{ id: string; revoked_at: string | null }>).find((k) => k.id === record!.id)?.revoked_at).toBeNull();
    // Every destructive action of the earlier steps asked first.
    expect(questions).toEqual(
      expect.arrayContaining([
        expect.stringContaining("Delete the rule for user.registered?"),
        expect.stringContaining("Cancel this notification?"),
        expect.stringContaining("Delete the user ada?"),
      ]),
    );
    await page.click(`#api-keys-table tr[data-id="${record!.id}"] button:has-text('Revoke')`);
    await page.waitForSelector(`#api-keys-table tr[data-id="${record!.id}"] .revoked:not(:empty)`);
    await until("revoked key refused", async () => (await post("/events", { event: "ping", to: ["k1"], channels: ["email"], title: "hi" }, key)).status === 401, 10_000);
  });

  test("the audit log shows what was done here, by this key, in every view", async () => {
    await page.click("nav a[data-view=audit]");
    await page.waitForSelector("#audit-filter");
    await page.fill("#audit-target", "template:welcome");
    // The audit role stores records a moment after the action: search until they are there.
    const deadline = Date.now() + 20_000;
    while ((await page.locator("#audit-table tr[data-action='template.updated']").count()) === 0) {
      if (Date.now() > deadline) throw new Error("no template.updated record in the audit view within 20 s");
      await Promise.all([page.waitForResponse((r) => r.url().includes("/api/v1/audit")), page.click("#audit-search")]);
    }
    const actions = await page.locator("#audit-table td.action").allTextContents();
    expect(actions).toContain("template.created");
    expect(actions).toContain("template.updated");
    expect(await page.textContent("#audit-table")).toContain("template:welcome");
    // The panel acts as the key it was given: here the bootstrap admin key.
    expect(await page.textContent("#audit-table tr[data-action='template.created']")).toContain("admin:bootstrap-admin (NOTIFY_ADMIN_KEY)");

    // The operator's actions in the other views are there too.
    await page.fill("#audit-target", "");
    for (const action of ["dead_letter.replay", "api_key.created", "api_key.revoked", "notification.cancelled", "user.updated"]) {
      await page.fill("#audit-action", action);
      await until(`a ${action} record in the audit view`, async () => {
        await Promise.all([page.waitForResponse((r) => r.url().includes(`action=${action}`)), page.click("#audit-search")]);
        return (await page.locator(`#audit-table tr[data-action='${action}']`).count()) > 0;
      }, 10_000);
    }
  });

  test("no script error or CSP violation on the way; the preview's script was blocked by the sandbox", () => {
    // Refused requests (the wrong key's 401, the unknown notification's 404, the refused inputs'
    // 422) are logged by the browser as failed loads: expected. Anything else is not.
    const unexpected = problems.filter((p) => !/status of (401|404|422)/.test(p) && !p.includes("'allow-scripts' permission is not set"));
    expect(unexpected).toEqual([]);
    expect(problems.some((p) => p.includes("Blocked script execution in 'about:srcdoc'"))).toBe(true);
  });
});
