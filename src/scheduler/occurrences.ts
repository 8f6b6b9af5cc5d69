/**
 * Deciding campaign occurrences. Each tick, a replica takes the due campaigns (FOR UPDATE SKIP
 * LOCKED, so replicas split them rather than queue on them), walks every slot from the
 * campaign's cursor up to the database clock, and records each one as a campaign_runs row:
 * INSERT ... ON CONFLICT (campaign_id, slot) DO NOTHING. The row is the decision: whoever
 * inserts it fires that occurrence; a replica that died after deciding left the row behind, so
 * the next one cannot fire the slot again.
 *
 * Catch-up: when several slots are due at once (every scheduler was down, or several slots of a
 * DST gap), only the latest fires, and only if it is younger than NOTIFY_SCHEDULER_CATCHUP_S;
 * the others are recorded as 'missed'. Never a burst of stale runs.
 */
import type { Logger } from "../runtime/log.ts";
import type { Sql } from "../store/db.ts";
import { toCampaign, wallText, type CampaignRow } from "../store/campaigns.ts";
import { specOf } from "../services/campaigns.ts";
import { slotsAfter, type Slot } from "./slots.ts";
import { schedulerMetrics } from "./metrics.ts";

/** Campaigns decided per transaction. */
const CAMPAIGNS_PER_TICK = 50;
/** Slots walked per campaign per tick; a longer backlog continues on the next tick. */
const SLOTS_PER_PASS = 2000;
/** Missed slots recorded as rows per pass (the rest only counted in campaigns.missed_count). */
const MISSED_ROWS_MAX = 500;

export interface Decision {
  campaign_id: string;
  fired?: Slot;
  missed: number;
}

/** Splits the slots due by `now` into the one to fire (if any) and the missed ones. */
export function decide(due: Slot[], now: number, catchupMs: number): { fire?: Slot; missed: Slot[] } {
  if (due.length === 0) return { missed: [] };
  const last = due.at(-1)!;
  if (now - last.at <= catchupMs) return { fire: last, missed: due.slice(0, -1) };
  return { missed: due };
}

export function createOccurrences(deps: { sql: Sql; log: Logger; catchupS: number }) {
  const log = deps.log.child({ component: "occurrences" });

  async function decideCampaign(tx: Sql, c: CampaignRow, now: number): Promise<Decision> {
    const spec = specOf(c);
    const due: Slot[] = [];
    let next: Slot | undefined;
    let more = false;
    const slots = slotsAfter(spec, c.cursor_wall, SLOTS_PER_PASS + 1);
    for (const s of slots) {
      if (s.at > now) {
        next = s;
        break;
      }
      if (due.length === SLOTS_PER_PASS) {
        more = true;
        break;
      }
      due.push(s);
    }
    // With more slots behind this pass, none of these is the latest: all are missed.
    const { fire, missed } = more ? { fire: undefined, missed: due } : decide(due, now, deps.catchupS * 1000);
    const recorded = missed.slice(-MISSED_ROWS_MAX);
    const rows = [...recorded.map((s) => ({ s, status: "missed" })), ...(fire ? [{ s: fire, status: "pending" }] : [])];
    let firedNow: Slot | undefined;
    if (rows.length) {
      const inserted = await tx`
        INSERT INTO campaign_runs (id, campaign_id, slot, scheduled_at, status, finished_at)
        SELECT id, ${c.id}, slot, at, st, CASE WHEN st = 'missed' THEN now() END
        FROM unnest(${rows.map(() => Bun.randomUUIDv7())}::uuid[], ${rows.map((r) => r.s.key)}::text[],
                    ${rows.map((r) => new Date(r.s.at).toISOString())}::timestamptz[], ${rows.map((r) => r.status)}::text[]) AS t(id, slot, at, st)
        ON CONFLICT (campaign_id, slot) DO NOTHING
        RETURNING slot, status`;
      if (fire && inserted.some((r) => r.slot === fire.key && r.status === "pending")) firedNow = fire;
    }
    const last = due.at(-1);
    if (!more && !next && last) next = slotsAfter(spec, last.wall, 1)[0];
    await tx`
      UPDATE campaigns SET cursor_wall = ${wallText(last?.wall ?? c.cursor_wall)}::timestamp, next_at = ${next ? new Date(next.at) : null},
        next_slot = ${next?.key ?? null}, missed_count = missed_count + ${missed.length},
        status = CASE WHEN ${!next && !more} THEN 'completed' ELSE status END, updated_at = now()
      WHERE id = ${c.id}`;
    if (firedNow) schedulerMetrics.slots.inc({ outcome: "fired" });
    if (missed.length) schedulerMetrics.slots.inc({ outcome: "missed" }, missed.length);
    if (firedNow || missed.length) log.info("occurrence decided", { campaign_id: c.id, fired: firedNow?.key, missed: missed.length, next_slot: next?.key ?? null });
    return { campaign_id: c.id, fired: firedNow, missed: missed.length };
  }

  /** One pass over the due campaigns; returns the decisions taken. */
  async function fireDue(): Promise<Decision[]> {
    return deps.sql.begin(async (tx) => {
      const [clock] = await tx`SELECT notify_clock() AS now`;
      const now = (clock!.now as Date).getTime();
      const rows = await tx`
        SELECT * FROM campaigns WHERE status = 'active' AND next_at <= ${new Date(now)} AND deleted_at IS NULL
        ORDER BY next_at LIMIT ${CAMPAIGNS_PER_TICK} FOR UPDATE SKIP LOCKED`;
      const out: Decision[] = [];
      for (const row of rows) out.push(await decideCampaign(tx as unknown as Sql, toCampaign(row), now));
      return out;
    });
  }

  return { fireDue };
}
