/**
 * Campaigns and their runs (tables campaigns, campaign_runs). The scheduler's own statements
 * (due slots, leases, fan-out) live beside the code that needs them in src/scheduler/.
 */
import { isoTime, type Sql } from "./db.ts";
import type { ChannelName } from "../schemas/event.ts";
import type { AudienceSpec } from "./audience.ts";
import type { Schedule } from "../scheduler/slots.ts";

export type CampaignStatus = "active" | "paused" | "completed" | "cancelled";
export type RunStatus = "pending" | "running" | "completed" | "missed" | "cancelled";

export interface CampaignRow {
  id: string;
  name: string;
  template: string;
  channels: ChannelName[];
  audience: AudienceSpec;
  schedule: Schedule & { timezone?: string };
  timezone: string;
  local_time: string | null;
  data: Record<string, unknown>;
  category: string | null;
  status: CampaignStatus;
  cursor_wall: number | null;
  next_at: string | null;
  next_slot: string | null;
  missed_count: number;
  created_by: string | null;
  created_at: string;
  updated_at: string;
}

export interface RunCounters {
  targeted: number;
  sent: number;
  failed: number;
  skipped: number;
  pending: number;
}

export interface RunRow {
  id: string;
  campaign_id: string;
  slot: string;
  scheduled_at: string;
  status: RunStatus;
  notification_id: string | null;
  recipients: number;
  expanded: boolean;
  started_at: string | null;
  finished_at: string | null;
}

/** `timestamp` (no zone) columns come back as Dates read in the process zone; we only store UTC wall clocks. */
const wallMs = (d: unknown) => (d === null || d === undefined ? null : d instanceof Date ? d.getTime() : Date.parse(`${String(d)}Z`));

export function toCampaign(r: Record<string, unknown>): CampaignRow {
  return {
    id: String(r.id),
    name: String(r.name),
    template: String(r.template),
    channels: r.channels as ChannelName[],
    audience: r.audience as AudienceSpec,
    schedule: r.schedule as CampaignRow["schedule"],
    timezone: String(r.timezone),
    local_time: (r.local_time as string) ?? null,
    data: (r.data as Record<string, unknown>) ?? {},
    category: (r.category as string) ?? null,
    status: r.status as CampaignStatus,
    cursor_wall: wallMs(r.cursor_wall),
    next_at: isoTime(r.next_at),
    next_slot: (r.next_slot as string) ?? null,
    missed_count: Number(r.missed_count ?? 0),
    created_by: (r.created_by as string) ?? null,
    created_at: isoTime(r.created_at)!,
    updated_at: isoTime(r.updated_at)!,
  };
}

export function toRun(r: Record<string, unknown>): RunRow {
  return {
    id: String(r.id),
    campaign_id: String(r.campaign_id),
    slot: String(r.slot),
    scheduled_at: isoTime(r.scheduled_at)!,
    status: r.status as RunStatus,
    notification_id: (r.notification_id as string) ?? null,
    recipients: Number(r.recipients ?? 0),
    expanded: Boolean(r.expanded),
    started_at: isoTime(r.started_at),
    finished_at: isoTime(r.finished_at),
  };
}

/** A wall clock in ms → the text PostgreSQL reads as `timestamp`. */
export const wallText = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString().slice(0, 23).replace("T", " "));

export interface NewCampaign {
  id: string;
  name: string;
  template: string;
  channels: ChannelName[];
  audience: AudienceSpec;
  schedule: CampaignRow["schedule"];
  timezone: string;
  local_time: string | null;
  data: Record<string, unknown>;
  category: string | null;
  cursor_wall: number | null;
  next_at: Date | null;
  next_slot: string | null;
  created_by: string;
}

export function createCampaignRepo(sql: Sql) {
  async function insert(c: NewCampaign, once: boolean): Promise<CampaignRow | undefined> {
    const [row] = await sql`
      INSERT INTO campaigns (id, name, template, channels, audience, schedule, timezone, local_time, data, category, status, cursor_wall, next_at, next_slot, created_by)
      VALUES (${c.id}, ${c.name}, ${c.template}, ${c.channels}::text[], ${sql.json(c.audience as never)}, ${sql.json(c.schedule as never)}, ${c.timezone},
              ${c.local_time}, ${sql.json(c.data as never)}, ${c.category}, ${c.next_at ? "active" : "completed"}, ${wallText(c.cursor_wall)}::timestamp,
              ${c.next_at}, ${c.next_slot}, ${c.created_by})
      ${once ? sql`ON CONFLICT (id) DO NOTHING` : sql``}
      RETURNING *`;
    return row ? toCampaign(row) : undefined;
  }

  return {
    /** The scheduler's clock (the database's; see notify_clock() in migrations/0006). */
    async clock(): Promise<number> {
      const [row] = await sql`SELECT notify_clock() AS now`;
      return (row!.now as Date).getTime();
    },

    async insert(c: NewCampaign): Promise<CampaignRow> {
      return (await insert(c, false))!;
    },

    /** Inserts unless a campaign with this id exists (even a deleted one); undefined when it did. */
    insertOnce: (c: NewCampaign): Promise<CampaignRow | undefined> => insert(c, true),

    async get(id: string): Promise<CampaignRow | undefined> {
      const [row] = await sql`SELECT * FROM campaigns WHERE id = ${id} AND deleted_at IS NULL`;
      return row ? toCampaign(row) : undefined;
    },

    /** Newest first; the cursor is "created_at|id". */
    async list(limit: number, after?: { created_at: string; id: string }): Promise<CampaignRow[]> {
      const rows = after
        ? await sql`SELECT * FROM campaigns WHERE deleted_at IS NULL AND (created_at, id) < (${after.created_at}::timestamptz, ${after.id}::uuid)
                    ORDER BY created_at DESC, id DESC LIMIT ${limit}`
        : await sql`SELECT * FROM campaigns WHERE deleted_at IS NULL ORDER BY created_at DESC, id DESC LIMIT ${limit}`;
      return rows.map(toCampaign);
    },

    /** Replaces the editable fields and the schedule position, if the campaign is still in `allowed` states. */
    async update(id: string, c: Omit<NewCampaign, "id" | "created_by">, allowed: CampaignStatus[]): Promise<CampaignRow | undefined> {
      const [row] = await sql`
        UPDATE campaigns SET name = ${c.name}, template = ${c.template}, channels = ${c.channels}::text[], audience = ${sql.json(c.audience as never)},
          schedule = ${sql.json(c.schedule as never)}, timezone = ${c.timezone}, local_time = ${c.local_time}, data = ${sql.json(c.data as never)},
          category = ${c.category}, cursor_wall = ${wallText(c.cursor_wall)}::timestamp, next_at = ${c.next_at}, next_slot = ${c.next_slot},
          status = CASE WHEN ${c.next_at === null} AND status = 'active' THEN 'completed' ELSE status END, updated_at = now()
        WHERE id = ${id} AND deleted_at IS NULL AND status = ANY(${allowed}::text[])
        RETURNING *`;
      return row ? toCampaign(row) : undefined;
    },

    async setStatus(id: string, to: CampaignStatus, from: CampaignStatus[]): Promise<CampaignRow | undefined> {
      const [row] = await sql`UPDATE campaigns SET status = ${to}, updated_at = now()
                              WHERE id = ${id} AND deleted_at IS NULL AND status = ANY(${from}::text[]) RETURNING *`;
      return row ? toCampaign(row) : undefined;
    },

    async markDeleted(id: string): Promise<boolean> {
      const r = await sql`UPDATE campaigns SET deleted_at = now(), updated_at = now() WHERE id = ${id} AND deleted_at IS NULL`;
      return r.count > 0;
    },

    /** Newest slot first; the cursor is "scheduled_at|id". */
    async runs(campaignId: string, limit: number, after?: { scheduled_at: string; id: string }): Promise<RunRow[]> {
      const rows = after
        ? await sql`SELECT * FROM campaign_runs WHERE campaign_id = ${campaignId} AND (scheduled_at, id) < (${after.scheduled_at}::timestamptz, ${after.id}::uuid)
                    ORDER BY scheduled_at DESC, id DESC LIMIT ${limit}`
        : await sql`SELECT * FROM campaign_runs WHERE campaign_id = ${campaignId} ORDER BY scheduled_at DESC, id DESC LIMIT ${limit}`;
      return rows.map(toRun);
    },

    /**
     * Progress of runs, counted from their deliveries (the per-recipient ledger), so the numbers
     * can never drift from what happened. targeted = recipients × channels written so far.
     */
    async counters(notificationIds: string[]): Promise<Map<string, RunCounters>> {
      const out = new Map<string, RunCounters>();
      if (!notificationIds.length) return out;
      const rows = await sql`
        SELECT notification_id, count(*)::int AS targeted,
               count(*) FILTER (WHERE status = 'sent')::int AS sent,
               count(*) FILTER (WHERE status = 'failed')::int AS failed,
               count(*) FILTER (WHERE status = 'skipped')::int AS skipped,
               count(*) FILTER (WHERE status IN ('queued','sending','retrying'))::int AS pending
        FROM deliveries WHERE notification_id = ANY(${notificationIds}::uuid[]) GROUP BY notification_id`;
      for (const r of rows) out.set(String(r.notification_id), { targeted: r.targeted as number, sent: r.sent as number, failed: r.failed as number, skipped: r.skipped as number, pending: r.pending as number });
      return out;
    },
  };
}

export type CampaignRepo = ReturnType<typeof createCampaignRepo>;
