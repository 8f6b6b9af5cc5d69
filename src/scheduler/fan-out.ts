/**
 * Campaign run fan-out: expand the audience in batches, write each batch's ledger (deliveries,
 * unique per notification, user and channel) in one statement, and publish delivery jobs (packs
 * of ids, services/delivery-jobs.ts) to the "deliveries" topic with confirms. The worker's ordinary delivery path sends them.
 *
 * Exactly once per recipient:
 * - the run is leased (lease_owner/lease_until, renewed with every batch); a replica that loses
 *   the lease stops at its next batch, a crashed one's lease expires and another takes over;
 * - each batch commits its deliveries together with the run's cursor (the last user id done),
 *   so a restart resumes after the cursor; anything re-expanded hits ON CONFLICT DO NOTHING;
 * - published_cursor trails cursor by what the broker has confirmed; on resume the jobs between
 *   the two are published again (a duplicate job is harmless: the delivery claim lets one send).
 *
 * Rendering and screening (preferences, quiet hours: the worker's Hooks.screen) happen here, at
 * fan-out, so the worker's delivery path stays untouched and a delivery row carries its content.
 * Deliveries that must wait (the recipient's local time, quiet hours) are written as 'retrying'
 * with attempts 0 and next_attempt_at = when; releaseHeld() queues and publishes them when due.
 */
import type { ChannelRuntime } from "../channels/registry.ts";
import type { Queue } from "../mq/queue.ts";
import type { Logger } from "../runtime/log.ts";
import type { AcceptedEvent, ChannelName } from "../schemas/event.ts";
import type { Hooks } from "../services/dispatch.ts";
import { renderFor } from "../services/render.ts";
import type { AudienceSpec } from "../store/audience.ts";
import { toCampaign, toRun, type RunRow } from "../store/campaigns.ts";
import type { Sql } from "../store/db.ts";
import type { NotificationRepo } from "../store/notifications.ts";
import type { StoredTemplate, TemplateRepo } from "../store/templates.ts";
import type { User } from "../store/users.ts";
import { instantOf } from "./slots.ts";
import { deliveryJobs } from "../services/delivery-jobs.ts";
import { schedulerMetrics } from "./metrics.ts";

export type AudienceSource = (audience: AudienceSpec, batchSize: number, signal: AbortSignal) => AsyncIterable<User[]>;

export interface FanOutDeps {
  sql: Sql;
  queue: Queue;
  log: Logger;
  notifications: NotificationRepo;
  templates: TemplateRepo;
  channels: Map<ChannelName, ChannelRuntime>;
  audience: AudienceSource;
  screen?: Hooks["screen"];
  batchSize: number;
  maxAttempts: number;
  /** Who holds a lease: unique per process. */
  owner: string;
  leaseMs: number;
}

/** What the run's notification payload carries besides the event fields. */
export interface CampaignPayload extends AcceptedEvent {
  campaign: { id: string; run_id: string; slot: string; audience: AudienceSpec; timezone: string; local_time: string | null; local_wall: number | null };
}

class LeaseLost extends Error {}

/** A leased run with its fan-out positions. */
export type ClaimedRun = RunRow & { cursor: string | null; published_cursor: string | null };

/** A row of the ledger as inserted. */
interface Planned {
  id: string;
  user_id: string;
  channel: string;
  recipient: string | null;
  status: "queued" | "retrying" | "skipped" | "failed";
  error: string | null;
  content: string | null;
  hold_until: Date | null;
}

export function createFanOut(deps: FanOutDeps) {
  const log = deps.log.child({ component: "fan-out" });
  const leaseSecs = deps.leaseMs / 1000;

  /** Leases the oldest run that needs expanding (new, or left by a replica that died or paused). */
  async function claim(): Promise<ClaimedRun | undefined> {
    const [row] = await deps.sql`
      UPDATE campaign_runs r SET status = 'running', lease_owner = ${deps.owner}, lease_until = now() + make_interval(secs => ${leaseSecs}),
        started_at = coalesce(r.started_at, now())
      WHERE r.id = (
        SELECT r2.id FROM campaign_runs r2 JOIN campaigns c ON c.id = r2.campaign_id
        WHERE r2.status IN ('pending','running') AND NOT r2.expanded AND c.status IN ('active','completed')
          AND (r2.lease_until IS NULL OR r2.lease_until < now())
        ORDER BY r2.scheduled_at LIMIT 1 FOR UPDATE OF r2 SKIP LOCKED)
      RETURNING r.*, r.cursor AS run_cursor, r.published_cursor AS run_published_cursor`;
    return row ? Object.assign(toRun(row), { cursor: row.run_cursor as string | null, published_cursor: row.run_published_cursor as string | null }) : undefined;
  }

  /** The run's notification, created on its first lease (with the campaign as it was then). */
  async function notificationFor(run: RunRow): Promise<CampaignPayload> {
    if (run.notification_id) {
      const n = await deps.notifications.get(run.notification_id);
      return n!.payload as CampaignPayload;
    }
    const [c] = await deps.sql`SELECT * FROM campaigns WHERE id = ${run.campaign_id}`;
    const campaign = toCampaign(c!);
    const id = Bun.randomUUIDv7();
    const localWall = campaign.local_time ? Date.parse(`${run.slot.slice(0, 16)}Z`) : null;
    const payload: CampaignPayload = {
      event: `campaign.${campaign.id}`,
      to: [],
      template: campaign.template,
      channels: campaign.channels,
      data: campaign.data ?? {},
      category: campaign.category ?? undefined,
      priority: "normal",
      notification_id: id,
      source: "scheduler",
      accepted_at: new Date().toISOString(),
      campaign: { id: campaign.id, run_id: run.id, slot: run.slot, audience: campaign.audience, timezone: campaign.timezone, local_time: campaign.local_time, local_wall: localWall },
    };
    await deps.sql.begin(async (tx) => {
      // 'accepted' while expanding: settle() only finalises 'processing', so the notification
      // cannot look finished while recipients are still being added. No outbox row: nothing
      // publishes it as an event.
      await tx`INSERT INTO notifications (id, event, status, payload, source) VALUES (${id}, ${payload.event}, 'accepted', ${tx.json(payload as never)}, 'scheduler')`;
      const [ok] = await tx`UPDATE campaign_runs SET notification_id = ${id} WHERE id = ${run.id} AND notification_id IS NULL AND lease_owner = ${deps.owner} RETURNING id`;
      if (!ok) throw new LeaseLost("run taken over while creating its notification");
    });
    run.notification_id = id;
    return payload;
  }

  function plan(users: User[], p: CampaignPayload, template: StoredTemplate | undefined, now: number): Promise<Planned[]> {
    return Promise.all(
      users.flatMap((user) =>
        p.channels.map(async (channel): Promise<Planned> => {
          const d: Planned = { id: Bun.randomUUIDv7(), user_id: user.id, channel, recipient: null, status: "queued", error: null, content: null, hold_until: null };
          const rt = deps.channels.get(channel);
          if (!rt) return { ...d, status: "failed", error: `channel ${channel} is not configured` };
          const address = rt.provider.address(user);
          if (!address) return { ...d, status: "skipped", error: `no ${channel} address for this user` };
          d.recipient = address;
          if (!template) return { ...d, status: "failed", error: `template ${p.template} does not exist` };
          const screen = deps.screen ? await deps.screen(user, channel, p) : undefined;
          if (screen?.skip) return { ...d, status: "skipped", error: screen.skip };
          try {
            d.content = JSON.stringify(renderFor(template, channel, user, p.data ?? {}));
          } catch (err) {
            return { ...d, status: "failed", error: `render: ${(err as Error).message}` };
          }
          let hold = screen?.deferUntil?.getTime() ?? 0;
          if (p.campaign.local_wall !== null) hold = Math.max(hold, instantOf(user.timezone ?? p.campaign.timezone, p.campaign.local_wall));
          if (hold > now) Object.assign(d, { status: "retrying", hold_until: new Date(hold) });
          return d;
        }),
      ),
    );
  }

  /** Commits one batch: cursor and ledger together, only while we hold the lease of an active campaign. */
  async function commitBatch(run: RunRow, nid: string, rows: Planned[], lastUser: string, users: number): Promise<string[]> {
    return deps.sql.begin(async (tx) => {
      const [held] = await tx`
        UPDATE campaign_runs r SET cursor = ${lastUser}, recipients = recipients + ${users}, lease_until = now() + make_interval(secs => ${leaseSecs})
        WHERE r.id = ${run.id} AND r.lease_owner = ${deps.owner} AND r.status = 'running'
          AND EXISTS (SELECT 1 FROM campaigns c WHERE c.id = r.campaign_id AND c.status IN ('active','completed'))
        RETURNING r.id`;
      if (!held) throw new LeaseLost("lease lost, or the campaign was paused or cancelled");
      if (!rows.length) return [];
      const inserted = await tx`
        INSERT INTO deliveries (id, notification_id, user_id, channel, recipient, status, error, content, max_attempts, next_attempt_at)
        SELECT id, ${nid}, uid, ch, rcp, st, err, cnt::jsonb, ${deps.maxAttempts}, hold
        FROM unnest(${rows.map((r) => r.id)}::uuid[], ${rows.map((r) => r.user_id)}::text[], ${rows.map((r) => r.channel)}::text[],
                    ${rows.map((r) => r.recipient)}::text[], ${rows.map((r) => r.status)}::text[], ${rows.map((r) => r.error)}::text[],
                    ${rows.map((r) => r.content)}::text[], ${rows.map((r) => r.hold_until)}::timestamptz[])
             AS t(id, uid, ch, rcp, st, err, cnt, hold)
        ON CONFLICT (notification_id, user_id, channel) DO NOTHING
        RETURNING id, status`;
      return inserted.filter((r) => r.status === "queued").map((r) => String(r.id));
    });
  }

  async function publish(ids: string[]): Promise<void> {
    if (!ids.length) return;
    await deps.queue.publish("deliveries", deliveryJobs(ids, "campaign"));
    schedulerMetrics.published.inc(ids.length);
  }

  /** Jobs of a crashed predecessor that the broker may never have confirmed. */
  async function republishWindow(run: ClaimedRun, nid: string): Promise<void> {
    if (run.cursor === null || run.cursor === run.published_cursor) return;
    const rows = run.published_cursor === null
      ? await deps.sql`SELECT id FROM deliveries WHERE notification_id = ${nid} AND status = 'queued' AND user_id <= ${run.cursor}`
      : await deps.sql`SELECT id FROM deliveries WHERE notification_id = ${nid} AND status = 'queued' AND user_id > ${run.published_cursor} AND user_id <= ${run.cursor}`;
    await publish(rows.map((r) => String(r.id)));
    log.info("republished the unconfirmed window of a resumed run", { run_id: run.id, count: rows.length });
  }

  /** Expands one leased run until done, paused, cancelled, the lease is lost or `signal` aborts. */
  async function expand(run: ClaimedRun, signal: AbortSignal): Promise<"done" | "stopped"> {
    const rlog = log.child({ run_id: run.id, campaign_id: run.campaign_id, slot: run.slot });
    const started = performance.now();
    let publishing: Promise<void> = Promise.resolve();
    try {
      const p = await notificationFor(run);
      const nid = run.notification_id!;
      await republishWindow(run, nid);
      const template = p.template ? await deps.templates.get(p.template) : undefined;
      // Resuming: batches up to the one holding the cursor were done (re-doing one is harmless).
      let skipping = run.cursor !== null;
      let count = 0;
      const ac = new AbortController();
      const onAbort = () => ac.abort();
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        for await (let users of deps.audience(p.campaign.audience, deps.batchSize, ac.signal)) {
          if (signal.aborted) throw new LeaseLost("stopping");
          if (skipping) {
            const at = users.findIndex((u) => u.id === run.cursor);
            if (at < 0) continue;
            users = users.slice(at + 1);
            skipping = false;
            if (!users.length) continue;
          }
          const [clock] = await deps.sql`SELECT notify_clock() AS now`;
          const rows = await plan(users, p, template, (clock!.now as Date).getTime());
          const lastUser = users.at(-1)!.id;
          const ids = await commitBatch(run, nid, rows, lastUser, users.length);
          count += users.length;
          schedulerMetrics.fanout.inc(users.length);
          // One publish in flight while the next batch is read, planned and inserted.
          await publishing;
          publishing = publish(ids).then(() => deps.sql`UPDATE campaign_runs SET published_cursor = ${lastUser} WHERE id = ${run.id}`.then(() => undefined));
        }
      } finally {
        signal.removeEventListener("abort", onAbort);
      }
      if (skipping) rlog.warn("resume cursor not found in the audience (user removed?); the audience was walked again, the ledger kept it exactly once");
      await publishing;
      const [ok] = await deps.sql`
        UPDATE campaign_runs SET expanded = true, lease_until = NULL, published_cursor = cursor
        WHERE id = ${run.id} AND lease_owner = ${deps.owner} AND status = 'running' RETURNING id`;
      if (!ok) throw new LeaseLost("lease lost at the end of expansion");
      await deps.sql`UPDATE notifications SET status = 'processing', updated_at = now() WHERE id = ${nid} AND status = 'accepted'`;
      await deps.notifications.settle(nid);
      rlog.info("run expanded", { recipients: count, duration_ms: Math.round(performance.now() - started) });
      return "done";
    } catch (err) {
      await publishing.catch(() => undefined);
      if (!(err instanceof LeaseLost)) throw err;
      // Hand the run back at once (paused, stopping): whoever resumes it need not wait for the lease to expire.
      await deps.sql`UPDATE campaign_runs SET lease_until = NULL WHERE id = ${run.id} AND lease_owner = ${deps.owner}`.catch(() => undefined);
      rlog.info("run expansion stopped", { reason: err.message });
      return "stopped";
    }
  }

  /** Queues and publishes held deliveries (local time, quiet hours) of active campaigns once due. */
  async function releaseHeld(limit = 5000): Promise<number> {
    const rows = await deps.sql`
      WITH due AS (
        SELECT d.id FROM deliveries d
        WHERE d.status = 'retrying' AND d.attempts = 0 AND d.next_attempt_at <= notify_clock()
          AND d.notification_id IN (SELECT r.notification_id FROM campaign_runs r JOIN campaigns c ON c.id = r.campaign_id
                                    WHERE r.status = 'running' AND c.status IN ('active','completed') AND r.notification_id IS NOT NULL)
        LIMIT ${limit} FOR UPDATE OF d SKIP LOCKED)
      UPDATE deliveries d SET status = 'queued', next_attempt_at = NULL, updated_at = now() FROM due WHERE d.id = due.id
      RETURNING d.id`;
    // If this publish fails the rows are 'queued': the worker's reaper publishes them.
    await publish(rows.map((r) => String(r.id)));
    return rows.length;
  }

  /** Runs whose every delivery is final become completed (settling notifications a crashed worker left). */
  async function completeRuns(): Promise<number> {
    const open = await deps.sql`
      SELECT r.notification_id FROM campaign_runs r JOIN notifications n ON n.id = r.notification_id
      WHERE r.status = 'running' AND r.expanded AND n.status = 'processing' LIMIT 100`;
    for (const r of open) await deps.notifications.settle(String(r.notification_id));
    const done = await deps.sql`
      UPDATE campaign_runs r SET status = 'completed', finished_at = now() FROM notifications n
      WHERE r.notification_id = n.id AND r.status = 'running' AND r.expanded AND n.status IN ('delivered','partially_delivered','failed')
      RETURNING r.id, r.campaign_id`;
    for (const d of done) log.info("run completed", { run_id: d.id, campaign_id: d.campaign_id });
    if (done.length) schedulerMetrics.runs.inc({ status: "completed" }, done.length);
    return done.length;
  }

  return { claim, expand, releaseHeld, completeRuns };
}

export type FanOut = ReturnType<typeof createFanOut>;
