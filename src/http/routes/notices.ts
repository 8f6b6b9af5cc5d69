/**
 * Seed compatibility: endpoints other services of the product already call (SPEC 3.3).
 * They translate into ordinary events, so everything else (durability, retries) is the same.
 */
import type { Hono } from "hono";
import * as v from "valibot";
import type { App } from "../../app.ts";
import { notFound } from "../../runtime/errors.ts";
import { Id, Key, parse } from "../../schemas/common.ts";
import { CHANNELS, type ChannelName } from "../../schemas/event.ts";
import { requireScope, type Principal } from "../auth.ts";
import type { Env } from "../env.ts";
import { jsonBody } from "../app.ts";

const NoticeSend = v.object({
  app: v.optional(v.pipe(v.string(), v.maxLength(64))),
  event: v.pipe(v.string(), v.minLength(1), v.maxLength(128)),
  notice_method: v.optional(v.pipe(v.array(v.picklist(CHANNELS)), v.minLength(1))),
  template: v.optional(Key),
  payload: v.optional(v.record(v.string(), v.unknown()), {}),
});

const ChannelSend = v.looseObject({
  template_id: Key,
  user_ids: v.union([v.pipe(v.array(Id), v.minLength(1)), v.pipe(v.string(), v.minLength(1))]),
});

/** Seed statuses: what the old service reported for a notice. */
function noticeStatus(status: string): string {
  return { scheduled: "pending", accepted: "pending", processing: "in_progress", delivered: "done", partially_delivered: "partial", failed: "failed", cancelled: "cancelled" }[status] ?? status;
}

export function noticeRoutes(api: Hono<Env>, app: App) {
  api.post("/notices/send", requireScope("events:write"), async (c) => {
    const body = parse(NoticeSend, await jsonBody(c));
    const principal = c.get("principal") as Principal;
    const payload = body.payload ?? {};
    const userId = typeof payload.user_id === "string" || typeof payload.user_id === "number" ? String(payload.user_id) : undefined;
    const eventName = body.app ? `${body.app}.${body.event}` : body.event;
    const event = {
      event: eventName.replace(/[^A-Za-z0-9_.:-]/g, "_"),
      to: Array.isArray(payload.user_ids) ? payload.user_ids.map(String) : userId ? [userId] : [],
      template: body.template ?? (typeof payload.template === "string" ? payload.template : undefined),
      channels: body.notice_method,
      data: payload,
    };
    const r = await app.events.accept(event, { source: principal.id, idempotencyKey: c.req.header("idempotency-key") });
    return c.json({ notice_id: r.id }, 202);
  });

  api.get("/notices/:id", requireScope("notifications:read"), async (c) => {
    const id = c.req.param("id");
    const n = await app.repos.notifications.get(id);
    if (!n) throw notFound("notice", id);
    const deliveries = await app.repos.deliveries.listByNotification(id);
    return c.json({
      notice_id: n.id,
      notice_status: noticeStatus(n.status),
      notice_result: deliveries.map((d) => ({ channel: d.channel, user_id: d.user_id, status: d.status, error: d.error })),
    });
  });

  api.post("/notifications/:channel", requireScope("events:write"), async (c) => {
    const channel = c.req.param("channel");
    if (!(CHANNELS as readonly string[]).includes(channel)) throw notFound("channel", channel);
    const body = parse(ChannelSend, await jsonBody(c));
    const principal = c.get("principal") as Principal;
    const ids = Array.isArray(body.user_ids) ? body.user_ids : body.user_ids.split(",").map((s) => s.trim()).filter(Boolean);
    const { template_id, user_ids: _ignored, ...data } = body;
    const r = await app.events.accept(
      { event: `${template_id}`, to: ids, template: template_id, channels: [channel as ChannelName], data },
      { source: principal.id, idempotencyKey: c.req.header("idempotency-key") },
    );
    return c.json({ id: r.id, status: r.status, notice_id: r.id }, 202);
  });
}
