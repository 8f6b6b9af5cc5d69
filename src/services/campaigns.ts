/**
 * Campaigns as the API sees them: validation that needs more than a schema (cron, time zones,
 * the clock, templates), schedule previews, and the pause/resume/cancel state machine.
 *
 *   active ──pause──► paused ──resume──► active        (any) ──cancel──► cancelled
 *   active ──(no occurrence left)──► completed
 *
 * Pause stops fan-out after the batch in hand and holds back deliveries waiting for a
 * recipient's local time; what is already queued in the broker is still sent. Resume continues
 * each run from its cursor. Cancel additionally skips every delivery not yet handed to a
 * provider (status skipped, "campaign cancelled") so each run ends fully accounted for.
 */
import { AppError, type ErrorDetail } from "../runtime/errors.ts";
import type { CampaignInput, CampaignPatch, ScheduleInput } from "../schemas/campaign.ts";
import type { ChannelName } from "../schemas/event.ts";
import { checkAudience, type AudienceSpec } from "../store/audience.ts";
import type { CampaignRepo, CampaignRow, CampaignStatus, NewCampaign } from "../store/campaigns.ts";
import type { Sql } from "../store/db.ts";
import type { TemplateRepo } from "../store/templates.ts";
import { parseCron, parseLocalTime, slotsAfter, upcoming, type Schedule, type Slot, type SlotSpec } from "../scheduler/slots.ts";

export interface CampaignServiceDeps {
  sql: Sql;
  campaigns: CampaignRepo;
  templates: TemplateRepo;
  /** Channels with a provider, when this process can know (it runs a worker or the scheduler). */
  enabledChannels: () => Set<ChannelName> | undefined;
}

/** A one-off time this far in the past is a mistake, not clock skew; {"now": true} says "now". */
const AT_PAST_TOLERANCE_MS = 60_000;

const invalid = (details: ErrorDetail[]) => new AppError("VALIDATION_FAILED", `invalid campaign: ${details.map((d) => `${d.path} ${d.message}`).join("; ")}`, { status: 422, details });

/** The schedule as stored plus what the slot arithmetic needs. */
export function scheduleSpec(schedule: ScheduleInput, localTime: string | null | undefined, now: number): { stored: Schedule & { timezone?: string }; spec: SlotSpec } {
  const details: ErrorDetail[] = [];
  const kinds = (["at", "now", "cron"] as const).filter((k) => schedule[k] !== undefined);
  if (kinds.length !== 1) throw invalid([{ path: "schedule", message: 'needs exactly one of "at", "now" or "cron"' }]);
  const timezone = schedule.timezone ?? "UTC";
  let stored: Schedule & { timezone?: string };
  if (schedule.cron !== undefined) {
    try {
      parseCron(schedule.cron);
    } catch (err) {
      details.push({ path: "schedule.cron", message: `not a valid cron expression: ${(err as Error).message}` });
    }
    if (schedule.until !== undefined && Date.parse(schedule.until) <= now) details.push({ path: "schedule.until", message: "is in the past" });
    stored = { cron: schedule.cron, timezone, ...(schedule.until ? { until: schedule.until } : {}) };
  } else {
    if (schedule.until !== undefined) details.push({ path: "schedule.until", message: "only applies to a cron schedule" });
    if (schedule.at !== undefined) {
      if (Date.parse(schedule.at) < now - AT_PAST_TOLERANCE_MS) details.push({ path: "schedule.at", message: 'is in the past (use {"now": true} to send now)' });
      stored = { at: schedule.at, timezone };
    } else {
      // {now}: pinned to the moment of creation so every replica computes the same slot.
      stored = { at: new Date(now).toISOString(), timezone };
    }
  }
  let minutes: number | undefined;
  if (localTime) {
    try {
      minutes = parseLocalTime(localTime);
    } catch (err) {
      details.push({ path: "local_time", message: (err as Error).message });
    }
  }
  if (details.length) throw invalid(details);
  return { stored, spec: { schedule: stored, timezone, localTime: minutes } };
}

export function specOf(c: Pick<CampaignRow, "schedule" | "timezone" | "local_time">): SlotSpec {
  return { schedule: c.schedule, timezone: c.timezone, localTime: c.local_time ? parseLocalTime(c.local_time) : undefined };
}

/** Where a fresh (or rescheduled) campaign starts: the first slot due after `now`. */
function position(spec: SlotSpec, now: number): Pick<NewCampaign, "cursor_wall" | "next_at" | "next_slot"> {
  const first = "at" in spec.schedule && spec.localTime === undefined ? upcoming(spec, now - AT_PAST_TOLERANCE_MS - 1, 1)[0] : upcoming(spec, now, 1)[0];
  // A {now} or just-passed {at} with a local time: its slot's first zone has already passed; fire it now.
  const slot = first ?? ("at" in spec.schedule ? atSlotAnyway(spec) : undefined);
  if (!slot) return { cursor_wall: null, next_at: null, next_slot: null };
  return { cursor_wall: slot.wall - 1, next_at: new Date(slot.at), next_slot: slot.key };
}

function atSlotAnyway(spec: SlotSpec): Slot | undefined {
  const at = Date.parse((spec.schedule as { at: string }).at);
  return upcoming(spec, at - 2 * 86_400_000, 1)[0];
}

export function createCampaignService(deps: CampaignServiceDeps) {
  async function checkRefs(template: string | undefined, channels: ChannelName[] | undefined, audience: AudienceSpec | undefined): Promise<void> {
    const details: ErrorDetail[] = [];
    if (audience) {
      const kinds = (["all", "user_ids", "where"] as const).filter((k) => (audience as Record<string, unknown>)[k] !== undefined);
      if (kinds.length !== 1) details.push({ path: "audience", message: 'needs exactly one of "all", "user_ids" or "where"' });
      else {
        try {
          checkAudience(deps.sql, audience, 1000);
        } catch (err) {
          if (err instanceof AppError) details.push(...err.details);
          else throw err;
        }
      }
    }
    const enabled = deps.enabledChannels();
    channels?.forEach((c, i) => {
      if (enabled && !enabled.has(c)) details.push({ path: `channels.${i}`, message: `channel ${c} is not configured on this server` });
    });
    if (details.length) throw invalid(details);
    if (template !== undefined && !(await deps.templates.exists(template))) {
      throw new AppError("UNKNOWN_TEMPLATE", `template ${template} does not exist`, { details: [{ path: "template", message: "unknown template" }] });
    }
  }

  async function create(input: CampaignInput, actor: string): Promise<CampaignRow> {
    return deps.campaigns.insert(await prepare(Bun.randomUUIDv7(), input, actor));
  }

  /**
   * With an id the caller derived from something stable (a message id): a second call with the
   * same id creates nothing (even if that campaign was deleted since) and says so.
   */
  async function createOnce(id: string, input: CampaignInput, actor: string): Promise<{ created: boolean }> {
    return { created: (await deps.campaigns.insertOnce(await prepare(id, input, actor))) !== undefined };
  }

  async function prepare(id: string, input: CampaignInput, actor: string): Promise<NewCampaign> {
    const now = await deps.campaigns.clock();
    const { stored, spec } = scheduleSpec(input.schedule, input.local_time, now);
    await checkRefs(input.template, input.channels, input.audience as AudienceSpec);
    return {
      id,
      name: input.name,
      template: input.template,
      channels: [...new Set(input.channels)],
      audience: input.audience as AudienceSpec,
      schedule: stored,
      timezone: spec.timezone,
      local_time: input.local_time ?? null,
      data: input.data ?? {},
      category: input.category ?? null,
      ...position(spec, now),
      created_by: actor,
    };
  }

  async function get(id: string): Promise<CampaignRow> {
    const c = isUuid(id) ? await deps.campaigns.get(id) : undefined;
    if (!c) throw new AppError("NOT_FOUND", `campaign ${id} not found`);
    return c;
  }

  /** Edits apply to occurrences that have not fired yet; runs in progress keep what they started with. */
  async function patch(id: string, input: CampaignPatch): Promise<CampaignRow> {
    const c = await get(id);
    if (c.status === "cancelled" || c.status === "completed") throw new AppError("CONFLICT", `campaign is ${c.status}; it can no longer be changed`);
    await checkRefs(input.template, input.channels, input.audience as AudienceSpec | undefined);
    const next = {
      name: input.name ?? c.name,
      template: input.template ?? c.template,
      channels: input.channels ? [...new Set(input.channels)] : c.channels,
      audience: (input.audience as AudienceSpec | undefined) ?? c.audience,
      data: input.data ?? c.data,
      category: input.category ?? c.category,
      local_time: input.local_time === undefined ? c.local_time : input.local_time,
      schedule: c.schedule,
      timezone: c.timezone,
      cursor_wall: c.cursor_wall,
      next_at: c.next_at ? new Date(c.next_at) : null,
      next_slot: c.next_slot,
    };
    if (input.schedule || input.local_time !== undefined) {
      const now = await deps.campaigns.clock();
      const raw = input.schedule ?? ({ ...c.schedule } as ScheduleInput);
      const { stored, spec } = scheduleSpec(raw, next.local_time, now);
      Object.assign(next, { schedule: stored, timezone: spec.timezone }, position(spec, now));
    }
    const updated = await deps.campaigns.update(id, next, ["active", "paused"]);
    if (!updated) throw new AppError("CONFLICT", "campaign changed state while being edited; reload and retry");
    return updated;
  }

  async function transition(id: string, to: CampaignStatus, from: CampaignStatus[]): Promise<CampaignRow> {
    const c = await get(id);
    if (c.status === to) return c;
    const updated = await deps.campaigns.setStatus(id, to, from);
    if (!updated) throw new AppError("CONFLICT", `campaign is ${c.status}; cannot ${to === "active" ? "resume" : to === "paused" ? "pause" : "cancel"} it`);
    return updated;
  }

  /** Cancels the campaign and every run in progress; deliveries not yet with a provider are skipped. */
  async function cancel(id: string): Promise<CampaignRow> {
    const c = await get(id);
    if (c.status === "cancelled") return c;
    await deps.sql.begin(async (tx) => {
      const [row] = await tx`UPDATE campaigns SET status = 'cancelled', next_at = NULL, next_slot = NULL, updated_at = now()
                             WHERE id = ${id} AND status <> 'cancelled' RETURNING id`;
      if (!row) return;
      // Locks each run row: a fan-out batch holding it finishes first, one waiting for it sees 'cancelled' and stops.
      const runs = await tx`UPDATE campaign_runs SET status = 'cancelled', finished_at = now(), lease_until = NULL
                            WHERE campaign_id = ${id} AND status IN ('pending','running') RETURNING notification_id`;
      const nids = runs.map((r) => r.notification_id as string | null).filter((x): x is string => !!x);
      if (nids.length) {
        await tx`UPDATE deliveries SET status = 'skipped', error = 'campaign cancelled', next_attempt_at = NULL, updated_at = now()
                 WHERE notification_id = ANY(${nids}::uuid[]) AND status IN ('queued','retrying')`;
        await tx`UPDATE notifications SET status = 'cancelled', updated_at = now() WHERE id = ANY(${nids}::uuid[]) AND status IN ('accepted','processing')`;
      }
    });
    return get(id);
  }

  async function remove(id: string): Promise<void> {
    await cancel(id);
    await deps.campaigns.markDeleted(id);
  }

  async function preview(schedule: ScheduleInput, localTime: string | null | undefined, count: number): Promise<Array<{ slot: string; at: string }>> {
    const now = await deps.campaigns.clock();
    const { spec } = scheduleSpec(schedule, localTime, now);
    return upcoming(spec, "at" in spec.schedule ? now - AT_PAST_TOLERANCE_MS : now, count).map((s) => ({ slot: s.key, at: new Date(s.at).toISOString() }));
  }

  async function next(id: string, count: number): Promise<Array<{ slot: string; at: string }>> {
    const c = await get(id);
    if (c.status === "cancelled" || c.status === "completed" || c.cursor_wall === null) return [];
    const now = await deps.campaigns.clock();
    const spec = specOf(c);
    // From the campaign's own position, so a slot decided already is never shown again.
    return slotsAfter(spec, c.cursor_wall, count)
      .filter((s) => s.at > now - 1000 || s.key === c.next_slot)
      .map((s) => ({ slot: s.key, at: new Date(s.at).toISOString() }));
  }

  return {
    create,
    createOnce,
    get,
    patch,
    pause: (id: string) => transition(id, "paused", ["active"]),
    resume: (id: string) => transition(id, "active", ["paused"]),
    cancel,
    remove,
    preview,
    next,
  };
}

export type CampaignService = ReturnType<typeof createCampaignService>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const isUuid = (s: string) => UUID.test(s);
