/**
 * Campaigns: POST|GET /campaigns, GET|PATCH|DELETE /campaigns/{id},
 * POST /campaigns/{id}/{pause|resume|cancel}, GET /campaigns/{id}/runs, GET /campaigns/{id}/next,
 * POST /campaigns/preview-schedule. Scope campaigns:write.
 */
import type { Hono } from "hono";
import type { App } from "../../app.ts";
import { AppError } from "../../runtime/errors.ts";
import { parse } from "../../schemas/common.ts";
import { CampaignInput, CampaignPatch, SchedulePreview } from "../../schemas/campaign.ts";
import { createCampaignService } from "../../services/campaigns.ts";
import { isUuid } from "../../store/notifications.ts";
import { createCampaignRepo, type CampaignRepo, type CampaignRow, type RunRow } from "../../store/campaigns.ts";
import { requireScope, type Principal } from "../auth.ts";
import type { Env } from "../env.ts";
import { jsonBody } from "../app.ts";
import { addOperations } from "../openapi.ts";
import { invalidCursor, page, pageParams } from "../pagination.ts";

addOperations([
  { method: "post", path: "/api/v1/campaigns", summary: "Create a campaign (one-off, now, or cron with time zone)", scope: "campaigns:write", body: CampaignInput, status: 201, tag: "campaigns" },
  { method: "get", path: "/api/v1/campaigns", summary: "List campaigns, newest first", scope: "campaigns:write", tag: "campaigns" },
  { method: "get", path: "/api/v1/campaigns/{id}", summary: "A campaign with its next slot and its latest run's progress", scope: "campaigns:write", tag: "campaigns" },
  { method: "patch", path: "/api/v1/campaigns/{id}", summary: "Change a campaign (applies to occurrences not fired yet)", scope: "campaigns:write", body: CampaignPatch, tag: "campaigns" },
  { method: "delete", path: "/api/v1/campaigns/{id}", summary: "Cancel and remove a campaign", scope: "campaigns:write", status: 204, tag: "campaigns" },
  { method: "post", path: "/api/v1/campaigns/{id}/pause", summary: "Pause: stop fan-out and held sends; queued deliveries finish", scope: "campaigns:write", tag: "campaigns" },
  { method: "post", path: "/api/v1/campaigns/{id}/resume", summary: "Resume a paused campaign from where each run stopped", scope: "campaigns:write", tag: "campaigns" },
  { method: "post", path: "/api/v1/campaigns/{id}/cancel", summary: "Cancel: no further occurrences; unsent deliveries are skipped", scope: "campaigns:write", tag: "campaigns" },
  { method: "get", path: "/api/v1/campaigns/{id}/runs", summary: "Runs (one per occurrence) with progress: targeted, sent, failed, skipped, pending", scope: "campaigns:write", tag: "campaigns" },
  { method: "get", path: "/api/v1/campaigns/{id}/next", summary: "The campaign's next occurrences (?count=5)", scope: "campaigns:write", tag: "campaigns" },
  { method: "post", path: "/api/v1/campaigns/preview-schedule", summary: "The next occurrences of a schedule, before saving", scope: "campaigns:write", body: SchedulePreview, tag: "campaigns" },
]);

export function campaignView(c: CampaignRow) {
  return {
    id: c.id,
    name: c.name,
    status: c.status,
    template: c.template,
    channels: c.channels,
    audience: c.audience,
    schedule: c.schedule,
    local_time: c.local_time,
    data: c.data,
    category: c.category,
    next_run: c.next_at ? { slot: c.next_slot, at: c.next_at } : null,
    missed_count: c.missed_count,
    created_by: c.created_by,
    created_at: c.created_at,
    updated_at: c.updated_at,
  };
}

async function runViews(repo: CampaignRepo, runs: RunRow[]) {
  const counters = await repo.counters(runs.map((r) => r.notification_id).filter((x): x is string => !!x));
  return runs.map((r) => {
    const c = (r.notification_id && counters.get(r.notification_id)) || { targeted: 0, sent: 0, failed: 0, skipped: 0, pending: 0 };
    return {
      id: r.id,
      slot: r.slot,
      scheduled_at: r.scheduled_at,
      status: r.status,
      recipients: r.recipients,
      expanding: (r.status === "pending" || r.status === "running") && !r.expanded,
      ...c,
      notification_id: r.notification_id,
      started_at: r.started_at,
      finished_at: r.finished_at,
    };
  });
}

function countParam(raw: string | undefined): number {
  if (raw === undefined) return 5;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 100) throw new AppError("VALIDATION_FAILED", "count must be an integer from 1 to 100", { details: [{ path: "count", message: "must be 1..100" }] });
  return n;
}

function decodeCursor(raw: string | undefined): { at: string; id: string } | undefined {
  if (raw === undefined) return undefined;
  const [at, id] = raw.split("|");
  if (!at || !id || Number.isNaN(Date.parse(at)) || !isUuid(id)) throw invalidCursor();
  return { at: new Date(Date.parse(at)).toISOString(), id };
}

export function campaignRoutes(api: Hono<Env>, app: App) {
  const repo = createCampaignRepo(app.sql);
  const service = createCampaignService({
    sql: app.sql,
    campaigns: repo,
    templates: app.repos.templates,
    enabledChannels: () => (app.config.roles.includes("worker") || app.config.roles.includes("scheduler") ? new Set(app.channels.keys()) : undefined),
  });
  const auth = requireScope("campaigns:write");
  const actor = (p: Principal) => `${p.type}:${p.id}`;

  api.post("/campaigns/preview-schedule", auth, async (c) => {
    const input = parse(SchedulePreview, await jsonBody(c));
    return c.json({ items: await service.preview(input.schedule, input.local_time, input.count) });
  });

  api.post("/campaigns", auth, async (c) => {
    const input = parse(CampaignInput, await jsonBody(c));
    const created = await service.create(input, actor(c.get("principal") as Principal));
    return c.json(campaignView(created), 201);
  });

  api.get("/campaigns", auth, async (c) => {
    const { limit, after } = pageParams((k) => c.req.query(k));
    const cur = decodeCursor(after);
    const rows = await repo.list(limit + 1, cur && { created_at: cur.at, id: cur.id });
    const p = page(rows, limit, (r) => `${r.created_at}|${r.id}`);
    return c.json({ items: p.items.map(campaignView), next_cursor: p.next_cursor });
  });

  api.get("/campaigns/:id", auth, async (c) => {
    const campaign = await service.get(c.req.param("id"));
    const [last] = await repo.runs(campaign.id, 1);
    return c.json({ ...campaignView(campaign), last_run: last ? (await runViews(repo, [last]))[0] : null });
  });

  api.patch("/campaigns/:id", auth, async (c) => {
    const input = parse(CampaignPatch, await jsonBody(c));
    return c.json(campaignView(await service.patch(c.req.param("id"), input)));
  });

  api.delete("/campaigns/:id", auth, async (c) => {
    await service.remove(c.req.param("id"));
    return c.body(null, 204);
  });

  api.post("/campaigns/:id/pause", auth, async (c) => c.json(campaignView(await service.pause(c.req.param("id")))));
  api.post("/campaigns/:id/resume", auth, async (c) => c.json(campaignView(await service.resume(c.req.param("id")))));
  api.post("/campaigns/:id/cancel", auth, async (c) => c.json(campaignView(await service.cancel(c.req.param("id")))));

  api.get("/campaigns/:id/runs", auth, async (c) => {
    const campaign = await service.get(c.req.param("id"));
    const { limit, after } = pageParams((k) => c.req.query(k));
    const cur = decodeCursor(after);
    const rows = await repo.runs(campaign.id, limit + 1, cur && { scheduled_at: cur.at, id: cur.id });
    const p = page(rows, limit, (r) => `${r.scheduled_at}|${r.id}`);
    return c.json({ items: await runViews(repo, p.items), next_cursor: p.next_cursor });
  });

  api.get("/campaigns/:id/next", auth, async (c) => {
    return c.json({ items: await service.next(c.req.param("id"), countParam(c.req.query("count"))) });
  });
}
