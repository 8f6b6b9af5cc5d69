/**
 * The scheduler as the compiled binary, killed with SIGKILL:
 * - three `notify --role=scheduler` processes over many minute slots (the database clock runs
 *   60× fast), SIGKILLed and restarted at random while at least one lives: every slot fires
 *   exactly once, none is missed;
 * - a campaign to 100,000 recipients whose scheduler is SIGKILLed halfway through the fan-out
 *   and replaced: every recipient gets exactly one in-app message (counted at the inbox).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createCampaignService } from "../src/services/campaigns.ts";
import { createCampaignRepo } from "../src/store/campaigns.ts";
import { ensureBinary, startNotify, type NotifyProcess } from "./support/binary.ts";
import { dbClock, setClock } from "./support/clock.ts";
import { ADMIN_KEY, createHarness, type Harness } from "./support/harness.ts";
import { haveServices, waitFor } from "./support/services.ts";

describe.skipIf(!(await haveServices))("compiled binary: scheduler replicas and a 100k run under SIGKILL", () => {
  let h: Harness;
  let env: Record<string, string>;
  const procs: NotifyProcess[] = [];
  const spawn = async () => {
    const p = await startNotify("scheduler", env);
    procs.push(p);
    return p;
  };

  beforeAll(async () => {
    await ensureBinary();
    h = await createHarness({ env: { NOTIFY_WORKER_CONCURRENCY: "64" } });
    env = {
      NOTIFY_DATABASE_URL: h.db.url,
      NOTIFY_AMQP_URL: h.vhost.url,
      NOTIFY_ADMIN_KEY: ADMIN_KEY,
      NOTIFY_SCHEDULER_TICK_MS: "50",
      NOTIFY_CAMPAIGN_BATCH_SIZE: "1000",
      NOTIFY_LOG_LEVEL: "warn",
    };
    const t = await h.request("/api/v1/templates/news", { method: "PUT", json: { name: "News", variants: [{ channel: "in_app", locale: "en", title: "News for {{ name }}", text: "Hello {{ name }}" }] } });
    expect(t.status).toBe(201);
  });
  afterAll(async () => {
    await Promise.allSettled(procs.map((p) => p.kill("SIGKILL")));
    await h?.close();
  });

  const insertCampaign = async (name: string, schedule: unknown, audience: unknown) => {
    // The API is covered in scheduler.test.ts; here the service that backs it is enough.
    const svc = createCampaignService({ sql: h.app.sql, campaigns: createCampaignRepo(h.app.sql), templates: h.app.repos.templates, enabledChannels: () => undefined });
    return svc.create({ name, template: "news", channels: ["in_app"], audience: audience as never, schedule: schedule as never, data: {} }, "test");
  };

  test("three scheduler processes, SIGKILL and restart at random over 30 minute-slots: exactly once, none missed", async () => {
    await setClock(h.db.sql, "2026-07-01T00:00:30Z", 60);
    const c = await insertCampaign("every minute", { cron: "* * * * *", timezone: "America/New_York" }, { user_ids: ["nobody"] });
    const live = [await spawn(), await spawn(), await spawn()];
    const until = Date.parse("2026-07-01T00:30:30Z");
    let kills = 0;
    while ((await dbClock(h.db.sql)) < until) {
      await Bun.sleep(200 + Math.floor(Math.random() * 600));
      if (live.length > 1 && Math.random() < 0.5) {
        const [victim] = live.splice(Math.floor(Math.random() * live.length), 1);
        await victim!.kill("SIGKILL");
        kills++;
      } else if (live.length < 3) {
        live.push(await spawn());
      }
    }
    // New York is UTC-4 in July: 00:01Z … 00:30Z are 20:01 … 20:30 on 30 June.
    await waitFor(async () => (await h.db.sql`SELECT 1 FROM campaign_runs WHERE campaign_id = ${c.id} AND slot = '2026-06-30T20:30 America/New_York'`).length > 0, { timeoutMs: 10_000 });
    for (const p of live) await p.kill("SIGKILL");
    const runs = await h.db.sql`SELECT slot, status FROM campaign_runs WHERE campaign_id = ${c.id} ORDER BY slot`;
    const expected = Array.from({ length: 30 }, (_, i) => `2026-06-30T20:${String(i + 1).padStart(2, "0")} America/New_York`);
    expect(runs.map((r) => r.slot).slice(0, 30)).toEqual(expected);
    expect(runs.filter((r) => r.status === "missed")).toHaveLength(0);
    expect(kills).toBeGreaterThan(3);
  }, 120_000);

  test("100,000 recipients, the scheduler SIGKILLed halfway and replaced: each recipient exactly once in the inbox", async () => {
    const N = 100_000;
    await setClock(h.db.sql, "2026-07-02T00:00:00Z", 1);
    await h.db.sql`INSERT INTO users (id, name, attributes)
                   SELECT 'r' || lpad(g::text, 6, '0'), 'R' || g, '{"plan":"bulk"}'::jsonb FROM generate_series(1, ${N}) g`;
    const c = await insertCampaign("bulk", { now: true }, { where: { "attributes.plan": "bulk" } });
    const first = await spawn();
    const run = await waitFor(async () => {
      const [r] = await h.db.sql`SELECT id, recipients FROM campaign_runs WHERE campaign_id = ${c.id}`;
      return r && (r.recipients as number) >= N / 2 ? r : undefined;
    }, { timeoutMs: 60_000, intervalMs: 10, what: "half the fan-out" });
    await first.kill("SIGKILL");
    const [mid] = await h.db.sql`SELECT recipients, expanded, lease_until > now() AS leased FROM campaign_runs WHERE id = ${run.id}`;
    expect(mid!.expanded).toBe(false);
    expect(mid!.recipients as number).toBeLessThan(N);
    await spawn();
    await waitFor(async () => (await h.db.sql`SELECT status FROM campaign_runs WHERE id = ${run.id}`)[0]!.status === "completed", { timeoutMs: 240_000, intervalMs: 500, what: "run completed" });
    const [sink] = await h.db.sql`SELECT count(*)::int AS items, count(DISTINCT user_id)::int AS users FROM inbox_items WHERE event = ${"campaign." + c.id}`;
    expect(sink).toEqual({ items: N, users: N });
    const [ledger] = await h.db.sql`
      SELECT count(*)::int AS n, count(*) FILTER (WHERE d.status = 'sent')::int AS sent FROM deliveries d
      JOIN campaign_runs r ON r.notification_id = d.notification_id WHERE r.id = ${run.id}`;
    expect(ledger).toEqual({ n: N, sent: N });
    const [done] = await h.db.sql`SELECT recipients FROM campaign_runs WHERE id = ${run.id}`;
    // Resumed after the committed cursor: no batch counted twice.
    expect(done!.recipients).toBe(N);
  }, 300_000);
});
