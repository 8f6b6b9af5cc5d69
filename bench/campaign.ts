/**
 * A campaign to N recipients (default 1,000,000) delivered to the in-app inbox, with the compiled
 * binary as separate scheduler and worker processes on a fresh database and vhost.
 *
 * Prints:
 * - fan-out: recipients/s from the run's start to its expansion end (ledger insert + publish with
 *   confirms), target ≥ 20,000/s;
 * - fully accounted for: seconds until the run is `completed`, target ≤ 300 s;
 * - the raw limits measured in the same run: batched INSERT into a deliveries-shaped table
 *   (5000 rows per statement) and AMQP publish with confirms (bench/amqp-publish.ts);
 * - RSS of each process, sampled every second (first, max, last): it should stay flat.
 *
 *   bun run build && bun bench/campaign.ts [recipients=1000000] [workers=2]
 *   NOTIFY_TEST_DATABASE_URL / NOTIFY_TEST_AMQP_URL choose the services (defaults: local).
 */
import { readFileSync } from "node:fs";
import { createCampaignService } from "../src/services/campaigns.ts";
import { createCampaignRepo } from "../src/store/campaigns.ts";
import { createTemplateRepo } from "../src/store/templates.ts";
import { ensureBinary, startNotify, type NotifyProcess } from "../test/support/binary.ts";
import { createTestDb, createTestVhost, waitFor } from "../test/support/services.ts";
import { measureRawPublishRate } from "./amqp-publish.ts";

const N = Number(process.argv[2] ?? 1_000_000);
const WORKERS = Number(process.argv[3] ?? 2);
const BATCH = 5000;

const rssMb = (pid: number) => {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Math.round(Number(m[1]) / 1024) : 0;
  } catch {
    return 0;
  }
};

async function main() {
  await ensureBinary();
  const [db, vhost] = await Promise.all([createTestDb(), createTestVhost()]);
  const procs: NotifyProcess[] = [];
  try {
    const sql = db.sql;
    console.log(`seeding ${N} users…`);
    await sql`INSERT INTO users (id, name, attributes) SELECT 'u' || lpad(g::text, 8, '0'), 'User ' || g, '{"plan":"all"}'::jsonb FROM generate_series(1, ${N}) g`;
    await sql`ANALYZE users`;

    // Raw limit 1: batched INSERT of deliveries-shaped rows (same columns, same unique key, content included).
    await sql`CREATE TABLE bench_deliveries (LIKE deliveries INCLUDING DEFAULTS INCLUDING INDEXES)`;
    const rawRows = Math.min(N, 200_000);
    const content = JSON.stringify({ title: "News for User", text: "Hello User", meta: { locale: "en", template: "news", template_version: 1 } });
    const t0 = performance.now();
    for (let i = 0; i < rawRows; i += BATCH) {
      const ids = Array.from({ length: BATCH }, () => Bun.randomUUIDv7());
      const users = Array.from({ length: BATCH }, (_, k) => `u${i + k}`);
      await sql`INSERT INTO bench_deliveries (id, notification_id, user_id, channel, recipient, status, content, max_attempts)
                SELECT id, ${Bun.randomUUIDv7()}, uid, 'in_app', uid, 'queued', ${content}::jsonb, 6 FROM unnest(${ids}::uuid[], ${users}::text[]) AS t(id, uid)`;
    }
    const rawInsert = rawRows / ((performance.now() - t0) / 1000);
    await sql`DROP TABLE bench_deliveries`;
    // Raw limit 2: publish with confirms, small messages like {delivery_id}.
    const rawPublish = (await measureRawPublishRate({ seconds: 3, size: 64 })).rate;
    console.log(`raw batched insert: ${Math.round(rawInsert)} rows/s; raw publish with confirms: ${Math.round(rawPublish)} msg/s`);

    const env = { NOTIFY_DATABASE_URL: db.url, NOTIFY_AMQP_URL: vhost.url, NOTIFY_LOG_LEVEL: "warn", NOTIFY_WORKER_CONCURRENCY: "64" };
    for (let i = 0; i < WORKERS; i++) procs.push(await startNotify("worker", env));
    procs.push(await startNotify("scheduler", env));
    const templates = createTemplateRepo(sql);
    await templates.put("news", { name: "News", variants: [{ channel: "in_app", locale: "en", title: "News for {{ name }}", text: "Hello {{ name }}" }] } as never, "bench");
    const svc = createCampaignService({ sql, campaigns: createCampaignRepo(sql), templates, enabledChannels: () => undefined });

    const rss = procs.map(() => [] as number[]);
    const sampler = setInterval(() => procs.forEach((p, i) => rss[i]!.push(rssMb(p.proc.pid))), 1000);
    const started = performance.now();
    const c = await svc.create({ name: "bench", template: "news", channels: ["in_app"], audience: { all: true }, schedule: { now: true }, data: {} }, "bench");
    let expandedAt = 0;
    let last = 0;
    await waitFor(
      async () => {
        const [r] = await sql`SELECT r.status, r.expanded, r.recipients, r.started_at FROM campaign_runs r WHERE campaign_id = ${c.id}`;
        if (!r) return false;
        if (r.expanded && !expandedAt) expandedAt = performance.now();
        if (performance.now() - last > 10_000) {
          last = performance.now();
          const [s] = await sql`SELECT count(*) FILTER (WHERE d.status = 'sent')::int AS sent FROM deliveries d JOIN campaign_runs r ON r.notification_id = d.notification_id WHERE r.campaign_id = ${c.id}`;
          console.log(`  t=${Math.round((last - started) / 1000)}s recipients=${r.recipients} sent=${s?.sent ?? 0} rss=${procs.map((p) => rssMb(p.proc.pid)).join("/")} MB`);
        }
        return r.status === "completed";
      },
      { timeoutMs: 3_600_000, intervalMs: 200, what: "campaign accounted for" },
    );
    clearInterval(sampler);
    const total = (performance.now() - started) / 1000;
    const [run] = await sql`SELECT extract(epoch FROM (r.started_at)) AS s, r.recipients FROM campaign_runs r WHERE campaign_id = ${c.id}`;
    const fanoutSeconds = (expandedAt - started) / 1000;
    const fanout = N / fanoutSeconds;
    console.log(`recipients: ${run!.recipients}`);
    console.log(`fan-out (ledger + publish with confirms): ${Math.round(fanout)} recipients/s in ${fanoutSeconds.toFixed(1)} s (target ≥ 20000/s; ${(fanout / rawInsert * 100).toFixed(0)}% of raw insert, ${(fanout / rawPublish * 100).toFixed(0)}% of raw publish)`);
    console.log(`fully accounted for: ${total.toFixed(1)} s (target ≤ 300 s)`);
    procs.forEach((p, i) => {
      const s = rss[i]!;
      console.log(`RSS ${i < WORKERS ? `worker ${i + 1}` : "scheduler"}: first ${s[0] ?? 0} MB, max ${Math.max(0, ...s)} MB, last ${s.at(-1) ?? 0} MB`);
    });
  } finally {
    await Promise.allSettled(procs.map((p) => p.kill("SIGKILL")));
    await Promise.allSettled([db.drop(), vhost.drop()]);
  }
}

await main();
