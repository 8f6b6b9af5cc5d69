/**
 * The scheduler against real PostgreSQL, RabbitMQ and an SMTP server, with a controllable
 * database clock: delayed sends and cancellation, the campaign API and its validation, DST
 * slots, catch-up, campaign runs through the worker, and three replicas stopped and started at
 * random over many minute slots (exactly once per slot, none missed).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHttpApp } from "../src/http/app.ts";
import { ROLE_STARTERS } from "../src/roles/registry.ts";
import { startScheduler } from "../src/roles/scheduler.ts";
import { instantOf, upcoming, wallOf } from "../src/scheduler/slots.ts";
import { decide } from "../src/scheduler/occurrences.ts";
import { ADMIN_KEY, createHarness, type Harness } from "./support/harness.ts";
import { dbClock, setClock } from "./support/clock.ts";
import { haveServices, waitFor } from "./support/services.ts";

const slotsOf = (cron: string, tz: string, from: string, n: number) =>
  upcoming({ schedule: { cron, timezone: tz }, timezone: tz }, Date.parse(from), n).map((s) => `${s.key} @ ${new Date(s.at).toISOString()}`);

describe("slots: time zones and DST", () => {
  test("America/New_York: a 02:30 slot on the spring-forward day fires once right after the gap", () => {
    expect(slotsOf("30 2 * * *", "America/New_York", "2026-03-07T00:00:00Z", 3)).toEqual([
      "2026-03-07T02:30 America/New_York @ 2026-03-07T07:30:00.000Z",
      "2026-03-08T02:30 America/New_York @ 2026-03-08T07:00:00.000Z", // 03:00 EDT, the first instant after the gap
      "2026-03-09T02:30 America/New_York @ 2026-03-09T06:30:00.000Z",
    ]);
  });

  test("America/New_York: the repeated 01:xx hour in November fires once per wall time (first pass)", () => {
    const s = slotsOf("*/30 * * * *", "America/New_York", "2026-11-01T04:00:00Z", 6);
    expect(s).toEqual([
      "2026-11-01T00:30 America/New_York @ 2026-11-01T04:30:00.000Z",
      "2026-11-01T01:00 America/New_York @ 2026-11-01T05:00:00.000Z",
      "2026-11-01T01:30 America/New_York @ 2026-11-01T05:30:00.000Z",
      "2026-11-01T02:00 America/New_York @ 2026-11-01T07:00:00.000Z",
      "2026-11-01T02:30 America/New_York @ 2026-11-01T07:30:00.000Z",
      "2026-11-01T03:00 America/New_York @ 2026-11-01T08:00:00.000Z",
    ]);
    expect(new Set(s.map((x) => x.split(" @ ")[0])).size).toBe(6);
  });

  test("Europe/London: 01:30 does not exist on 29 March; repeated on 25 October fires once", () => {
    expect(slotsOf("30 1 * * *", "Europe/London", "2026-03-28T00:00:00Z", 3)).toEqual([
      "2026-03-28T01:30 Europe/London @ 2026-03-28T01:30:00.000Z",
      "2026-03-29T01:30 Europe/London @ 2026-03-29T01:00:00.000Z",
      "2026-03-30T01:30 Europe/London @ 2026-03-30T00:30:00.000Z",
    ]);
    expect(slotsOf("30 1 * * *", "Europe/London", "2026-10-24T00:00:00Z", 3)).toEqual([
      "2026-10-24T01:30 Europe/London @ 2026-10-24T00:30:00.000Z",
      "2026-10-25T01:30 Europe/London @ 2026-10-25T00:30:00.000Z",
      "2026-10-26T01:30 Europe/London @ 2026-10-26T01:30:00.000Z",
    ]);
  });

  test("Australia/Lord_Howe: 30-minute shifts (02:00→02:30 in October, 02:00→01:30 in April)", () => {
    expect(slotsOf("15 2 * * *", "Australia/Lord_Howe", "2026-10-03T00:00:00Z", 2)).toEqual([
      "2026-10-04T02:15 Australia/Lord_Howe @ 2026-10-03T15:30:00.000Z", // 02:15 does not exist: 02:30 LHDT
      "2026-10-05T02:15 Australia/Lord_Howe @ 2026-10-04T15:15:00.000Z",
    ]);
    expect(slotsOf("*/15 * * * *", "Australia/Lord_Howe", "2026-10-03T15:00:00Z", 5)).toEqual([
      "2026-10-04T01:45 Australia/Lord_Howe @ 2026-10-03T15:15:00.000Z",
      "2026-10-04T02:00 Australia/Lord_Howe @ 2026-10-03T15:30:00.000Z",
      "2026-10-04T02:15 Australia/Lord_Howe @ 2026-10-03T15:30:00.000Z",
      "2026-10-04T02:30 Australia/Lord_Howe @ 2026-10-03T15:30:00.000Z",
      "2026-10-04T02:45 Australia/Lord_Howe @ 2026-10-03T15:45:00.000Z",
    ]);
    // 01:30–01:59 happen twice on 5 April; each wall time is one slot, at its first occurrence.
    expect(slotsOf("*/15 1 * * *", "Australia/Lord_Howe", "2026-04-04T13:59:00Z", 5)).toEqual([
      "2026-04-05T01:00 Australia/Lord_Howe @ 2026-04-04T14:00:00.000Z",
      "2026-04-05T01:15 Australia/Lord_Howe @ 2026-04-04T14:15:00.000Z",
      "2026-04-05T01:30 Australia/Lord_Howe @ 2026-04-04T14:30:00.000Z",
      "2026-04-05T01:45 Australia/Lord_Howe @ 2026-04-04T14:45:00.000Z",
      "2026-04-06T01:00 Australia/Lord_Howe @ 2026-04-05T14:30:00.000Z",
    ]);
  });

  test("several slots of one gap due at once: the latest fires, the rest are missed (no burst)", () => {
    const due = upcoming({ schedule: { cron: "*/30 * * * *", timezone: "America/New_York" }, timezone: "America/New_York" }, Date.parse("2026-03-08T06:45:00Z"), 3);
    expect(due.map((s) => s.at)).toEqual([Date.parse("2026-03-08T07:00:00Z"), Date.parse("2026-03-08T07:00:00Z"), Date.parse("2026-03-08T07:00:00Z")]);
    const d = decide(due, Date.parse("2026-03-08T07:00:01Z"), 900_000);
    expect(d.fire?.key).toBe("2026-03-08T03:00 America/New_York");
    expect(d.missed.map((s) => s.key)).toEqual(["2026-03-08T02:00 America/New_York", "2026-03-08T02:30 America/New_York"]);
    expect(decide(due, Date.parse("2026-03-08T08:00:00Z"), 900_000).fire).toBeUndefined();
  });

  test("wall ↔ instant round trip", () => {
    const t = Date.parse("2026-07-01T12:34:00Z");
    expect(instantOf("Asia/Kolkata", wallOf("Asia/Kolkata", t))).toBe(t);
  });
});

describe.skipIf(!(await haveServices))("scheduler: delayed sends, campaigns, replicas", () => {
  let h: Harness;
  let http: ReturnType<typeof createHttpApp>;
  const stops: Array<() => Promise<void>> = [];
  const req = (path: string, init: { method?: string; json?: unknown } = {}) =>
    Promise.resolve(
      http.request(path, {
        method: init.method ?? "GET",
        headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
        body: init.json === undefined ? undefined : JSON.stringify(init.json),
      }),
    );
  const scheduler = async () => {
    const stop = await startScheduler(h.app, { leaseMs: 2_000 });
    stops.push(stop);
    return stop;
  };
  const ensureScheduler = async () => {
    if (!stops.length) await scheduler();
  };

  beforeAll(async () => {
    h = await createHarness({ env: { NOTIFY_SCHEDULER_TICK_MS: "50", NOTIFY_SCHEDULER_CATCHUP_S: "600", NOTIFY_ROLE: "gateway,worker,scheduler" } });
    http = createHttpApp(h.app, ROLE_STARTERS.gatewayExtensions?.(h.app));
    const t = await h.request("/api/v1/templates/promo", {
      method: "PUT",
      json: { name: "Promo", variants: [{ channel: "email", locale: "en", subject: "Hello {{ name }}", text: "Offer for {{ name }}: {{ code }}" }] },
    });
    expect(t.status).toBe(201);
    for (const [id, tz] of [["p1", "Europe/London"], ["p2", "Asia/Tokyo"], ["p3", "America/New_York"]] as const) {
      await h.request(`/api/v1/users/${id}`, { method: "PUT", json: { email: `${id}@example.com`, name: id.toUpperCase(), timezone: tz, attributes: { plan: "premium" } } });
    }
    await h.request("/api/v1/users/f1", { method: "PUT", json: { email: "f1@example.com", name: "F1", attributes: { plan: "free" } } });
  });
  afterAll(async () => {
    for (const s of stops) await s().catch(() => {});
    await h?.close();
  });

  test("campaign list cursors that this API did not hand out are 422, not a failed query", async () => {
    const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64url");
    for (const cur of ["2026-01-01T00:00:00Z|not-a-uuid", "yesterday|01a2124c-6bf4-7457-af7b-325b126f8296", "x"]) {
      const r = await req(`/api/v1/campaigns?cursor=${b64(cur)}`);
      expect([cur, r.status]).toEqual([cur, 422]);
    }
  });

  test("send_at: held in PostgreSQL, cancellable until due, published once when the clock passes it", async () => {
    await setClock(h.db.sql, "2026-06-01T10:00:00Z");
    const ev = (to: string) => ({ event: "reminder", to: [{ user_id: to, email: `${to}@example.com` }], channels: ["email"], title: "Reminder", body: "see you", send_at: "2026-06-01T10:05:00Z" });
    // send_at is checked against the wall clock at acceptance; the test clock is far in the past, so the event stays scheduled.
    const a = (await (await h.request("/api/v1/events", { method: "POST", json: { ...ev("d1"), send_at: "2099-01-01T00:00:00Z" } })).json()) as any;
    const b = (await (await h.request("/api/v1/events", { method: "POST", json: { ...ev("d2"), send_at: "2099-01-01T00:00:00Z" } })).json()) as any;
    expect([a.status, b.status]).toEqual(["scheduled", "scheduled"]);
    await scheduler();
    const cancel = await h.request(`/api/v1/notifications/${b.id}`, { method: "DELETE" });
    expect(cancel.status).toBeLessThan(300);
    expect([...(await h.db.sql`SELECT count(*)::int AS n FROM outbox`)]).toEqual([{ n: 0 }]);
    await setClock(h.db.sql, "2099-01-01T00:00:01Z");
    await waitFor(() => h.smtp.mails.find((m) => m.to.includes("d1@example.com")), { what: "delayed mail" });
    const [row] = await h.db.sql`SELECT status FROM notifications WHERE id = ${b.id}`;
    expect(row!.status).toBe("cancelled");
    await waitFor(async () => (await h.db.sql`SELECT status FROM notifications WHERE id = ${a.id}`)[0]!.status === "delivered");
    expect(h.smtp.mails.filter((m) => m.to.includes("d1@example.com"))).toHaveLength(1);
    expect(h.smtp.mails.filter((m) => m.to.includes("d2@example.com"))).toHaveLength(0);
  });

  test("campaign API validation: 422 naming the field, nothing stored", async () => {
    await setClock(h.db.sql, "2026-06-01T10:00:00Z");
    const base = { name: "x", template: "promo", channels: ["email"], audience: { all: true }, schedule: { cron: "0 9 * * 1", timezone: "Europe/Moscow" } };
    const cases: Array<[unknown, string, string]> = [
      [{ ...base, schedule: { cron: "61 * * * *" } }, "schedule.cron", "VALIDATION_FAILED"],
      [{ ...base, schedule: { cron: "0 9 * *" } }, "schedule.cron", "VALIDATION_FAILED"],
      [{ ...base, schedule: { cron: "0 9 * * 1", timezone: "Mars/Olympus" } }, "schedule.timezone", "VALIDATION_FAILED"],
      [{ ...base, schedule: { cron: "0 9 * * 1", until: "2026-01-01T00:00:00Z" } }, "schedule.until", "VALIDATION_FAILED"],
      [{ ...base, schedule: { at: "2026-05-01T00:00:00Z" } }, "schedule.at", "VALIDATION_FAILED"],
      [{ ...base, schedule: { at: "2026-07-01T00:00:00Z", cron: "* * * * *" } }, "schedule", "VALIDATION_FAILED"],
      [{ ...base, template: "nope" }, "template", "UNKNOWN_TEMPLATE"],
      [{ ...base, channels: ["email", "pigeon"] }, "channels.1", "VALIDATION_FAILED"],
      [{ ...base, audience: { where: { "shoe.size": "42" } } }, "audience.where.shoe.size", "VALIDATION_FAILED"],
      [{ ...base, local_time: "25:00" }, "local_time", "VALIDATION_FAILED"],
    ];
    for (const [body, path, code] of cases) {
      const r = await req("/api/v1/campaigns", { method: "POST", json: body });
      const e = (await r.json()) as any;
      expect({ status: r.status, code: e.error?.code, path: e.error?.details?.[0]?.path }).toEqual({ status: 422, code, path });
    }
    expect([...(await h.db.sql`SELECT count(*)::int AS n FROM campaigns`)]).toEqual([{ n: 0 }]);
    const noKey = await http.request("/api/v1/campaigns", { method: "POST", body: "{}" });
    expect(noKey.status).toBe(401);
  });

  test("preview shows the next occurrences in the zone; GET /campaigns/{id}/next agrees", async () => {
    await setClock(h.db.sql, "2026-06-01T10:00:00Z");
    const p = (await (await req("/api/v1/campaigns/preview-schedule", { method: "POST", json: { schedule: { cron: "0 18 * * 5", timezone: "Europe/Moscow" }, count: 3 } })).json()) as any;
    expect(p.items).toEqual([
      { slot: "2026-06-05T18:00 Europe/Moscow", at: "2026-06-05T15:00:00.000Z" },
      { slot: "2026-06-12T18:00 Europe/Moscow", at: "2026-06-12T15:00:00.000Z" },
      { slot: "2026-06-19T18:00 Europe/Moscow", at: "2026-06-19T15:00:00.000Z" },
    ]);
    const c = (await (await req("/api/v1/campaigns", { method: "POST", json: { name: "Friday", template: "promo", channels: ["email"], audience: { where: { "attributes.plan": "premium" } }, schedule: { cron: "0 18 * * 5", timezone: "Europe/Moscow", until: "2027-06-01T00:00:00Z" } } })).json()) as any;
    expect(c.next_run).toEqual({ slot: "2026-06-05T18:00 Europe/Moscow", at: "2026-06-05T15:00:00.000Z" });
    const n = (await (await req(`/api/v1/campaigns/${c.id}/next?count=3`)).json()) as any;
    expect(n.items).toEqual(p.items);
    await req(`/api/v1/campaigns/${c.id}`, { method: "DELETE" });
    expect((await req(`/api/v1/campaigns/${c.id}`)).status).toBe(404);
  });

  test("a one-off campaign to a segment: one run, each premium user e-mailed once, counters add up, completed", async () => {
    await setClock(h.db.sql, "2026-06-01T10:00:00Z");
    const res = await req("/api/v1/campaigns", { method: "POST", json: { name: "Launch", template: "promo", channels: ["email"], audience: { where: { "attributes.plan": "premium" } }, data: { code: "X1" }, schedule: { at: "2026-06-01T10:01:00Z" } } });
    expect(res.status).toBe(201);
    const c = (await res.json()) as any;
    await ensureScheduler();
    await setClock(h.db.sql, "2026-06-01T10:01:00Z");
    const run = await waitFor(async () => {
      const runs = (await (await req(`/api/v1/campaigns/${c.id}/runs`)).json()) as any;
      return runs.items[0]?.status === "completed" ? runs.items[0] : undefined;
    }, { what: "run completed", timeoutMs: 20_000 });
    expect(run).toMatchObject({ slot: "2026-06-01T10:01:00 UTC", recipients: 3, targeted: 3, sent: 3, failed: 0, skipped: 0, pending: 0 });
    for (const id of ["p1", "p2", "p3"]) expect(h.smtp.mails.filter((m) => m.to.includes(`${id}@example.com`) && m.text.includes("X1"))).toHaveLength(1);
    expect(h.smtp.mails.some((m) => m.to.includes("f1@example.com"))).toBe(false);
    const after = (await (await req(`/api/v1/campaigns/${c.id}`)).json()) as any;
    expect(after.status).toBe("completed");
  });

  test("cancel before the occurrence fires: nothing is sent, no run", async () => {
    await setClock(h.db.sql, "2026-06-02T10:00:00Z");
    const c = (await (await req("/api/v1/campaigns", { method: "POST", json: { name: "Oops", template: "promo", channels: ["email"], audience: { user_ids: ["p1"] }, data: { code: "CANCELLED" }, schedule: { at: "2026-06-02T10:00:30Z" } } })).json()) as any;
    const r = await req(`/api/v1/campaigns/${c.id}/cancel`, { method: "POST" });
    expect(((await r.json()) as any).status).toBe("cancelled");
    await ensureScheduler();
    await setClock(h.db.sql, "2026-06-02T10:01:00Z");
    const ticks = (await h.db.sql`SELECT count(*)::int AS n FROM campaign_runs`)[0]!.n as number;
    // Let the scheduler pass the slot: a later campaign due after it must fire first.
    const probe = (await (await req("/api/v1/campaigns", { method: "POST", json: { name: "Probe", template: "promo", channels: ["email"], audience: { user_ids: ["nobody"] }, schedule: { now: true } } })).json()) as any;
    await waitFor(async () => (await h.db.sql`SELECT 1 FROM campaign_runs WHERE campaign_id = ${probe.id}`).length > 0);
    expect([...(await h.db.sql`SELECT count(*)::int AS n FROM campaign_runs WHERE campaign_id = ${c.id}`)]).toEqual([{ n: 0 }]);
    expect(ticks).toBeGreaterThanOrEqual(0);
    expect(h.smtp.mails.some((m) => m.text.includes("CANCELLED"))).toBe(false);
  });

  test("catch-up: after downtime only the latest slot within the deadline fires; older ones are recorded missed", async () => {
    for (const s of stops.splice(0)) await s();
    await setClock(h.db.sql, "2026-06-03T09:59:30Z");
    const mk = async (name: string, cron: string) =>
      (await (await req("/api/v1/campaigns", { method: "POST", json: { name, template: "promo", channels: ["email"], audience: { user_ids: ["nobody"] }, schedule: { cron, timezone: "UTC" } } })).json()) as any;
    const within = await mk("within", "*/5 * * * *");
    // Schedulers down for 32 minutes: slots 10:00 … 10:30 pass (7 slots); the latest is 2 minutes old.
    await setClock(h.db.sql, "2026-06-03T10:32:00Z");
    await scheduler();
    await waitFor(async () => (await h.db.sql`SELECT 1 FROM campaign_runs WHERE campaign_id = ${within.id} AND status <> 'missed'`).length > 0);
    const runs = await h.db.sql`SELECT slot, status FROM campaign_runs WHERE campaign_id = ${within.id} ORDER BY slot`;
    expect(runs.filter((r) => r.status !== "missed").map((r) => r.slot)).toEqual(["2026-06-03T10:30 UTC"]);
    expect(runs.filter((r) => r.status === "missed")).toHaveLength(6);
    for (const s of stops.splice(0)) await s();
    await req(`/api/v1/campaigns/${within.id}/cancel`, { method: "POST" });
    // A daily 11:00 slot, schedulers down from 10:32 to 12:59: the slot is older than the deadline (600 s), so it is missed.
    const beyond = await mk("beyond", "0 11 * * *");
    await setClock(h.db.sql, "2026-06-03T12:59:00Z");
    await scheduler();
    await waitFor(async () => {
      const [c] = await h.db.sql`SELECT next_slot FROM campaigns WHERE id = ${beyond.id}`;
      return c!.next_slot === "2026-06-04T11:00 UTC";
    });
    const b = await h.db.sql`SELECT slot, status FROM campaign_runs WHERE campaign_id = ${beyond.id}`;
    expect([...b]).toEqual([{ slot: "2026-06-03T11:00 UTC", status: "missed" }]);
    const view = (await (await req(`/api/v1/campaigns/${beyond.id}`)).json()) as any;
    expect(view.missed_count).toBe(1);
    await req(`/api/v1/campaigns/${beyond.id}/cancel`, { method: "POST" });
  });

  test("three replicas stopped and started at random over 40 minute-slots: each slot fires exactly once, none missed", async () => {
    for (const s of stops.splice(0)) await s();
    await setClock(h.db.sql, "2026-06-04T00:00:30Z", 60); // one clock minute per second
    const c = (await (await req("/api/v1/campaigns", { method: "POST", json: { name: "every minute", template: "promo", channels: ["email"], audience: { user_ids: ["nobody"] }, schedule: { cron: "* * * * *", timezone: "Europe/London" } } })).json()) as any;
    const live: Array<() => Promise<void>> = [await scheduler(), await scheduler(), await scheduler()];
    const until = Date.parse("2026-06-04T00:40:30Z");
    let restarts = 0;
    while ((await dbClock(h.db.sql)) < until) {
      await Bun.sleep(100 + Math.floor(Math.random() * 300));
      if (live.length > 1 && Math.random() < 0.5) {
        const [stop] = live.splice(Math.floor(Math.random() * live.length), 1);
        await stop!();
      } else if (live.length < 3) {
        live.push(await scheduler());
        restarts++;
      }
    }
    await waitFor(async () => (await h.db.sql`SELECT 1 FROM campaign_runs WHERE campaign_id = ${c.id} AND slot = '2026-06-04T01:40 Europe/London'`).length > 0);
    for (const s of live) await s();
    const runs = await h.db.sql`SELECT slot, status FROM campaign_runs WHERE campaign_id = ${c.id} ORDER BY slot`;
    const expected = Array.from({ length: 40 }, (_, i) => `2026-06-04T01:${String(i + 1).padStart(2, "0")} Europe/London`);
    // London is UTC+1 in June: 00:01Z … 00:40Z are 01:01 … 01:40 local.
    expect(runs.map((r) => r.slot).slice(0, 40)).toEqual(expected);
    expect(runs.filter((r) => r.status === "missed")).toHaveLength(0);
    expect(restarts).toBeGreaterThan(3);
  }, 120_000);
});

describe.skipIf(!(await haveServices))("scheduler: idle cost", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness({ env: { NOTIFY_SCHEDULER_TICK_MS: "50" } });
  });
  afterAll(() => h?.close());

  test("an idle tick is one statement (the probe), not one per step", async () => {
    let statements = 0;
    const sql = new Proxy(h.app.sql, {
      apply: (target, self, args) => (statements++, Reflect.apply(target, self, args)),
      get: (target, key, recv) => (key === "begin" && statements++, Reflect.get(target, key, recv)),
    });
    const stop = await startScheduler({ ...h.app, sql });
    const t = performance.now();
    await Bun.sleep(1_000); // the quantity measured is what happens over time: 20 ticks of 50 ms
    const ticks = (performance.now() - t) / 50;
    await stop();
    // One probe per tick, plus the fan-out loop's first claim. Without the probe: ≈ 8 per tick.
    expect(statements).toBeGreaterThan(ticks / 2);
    expect(statements).toBeLessThanOrEqual(ticks + 3);
  });
});
