/** POST /events, GET /notifications, GET|DELETE /notifications/{id}. */
import type { Hono } from "hono";
import type { App } from "../../app.ts";
import { AppError, notFound } from "../../runtime/errors.ts";
import { requireScope, type Principal } from "../auth.ts";
import type { Env } from "../env.ts";
import { jsonBody } from "../app.ts";
import { noteAudit } from "../audit-trail.ts";
import type { DeliveryRow } from "../../store/deliveries.ts";
import { NOTIFICATION_STATUSES, type NotificationRow } from "../../store/notifications.ts";
import { listNotifications } from "../../store/notification-list.ts";
import { Name, parse } from "../../schemas/common.ts";
import { page, pageParams } from "../pagination.ts";
import * as v from "valibot";

/** GET /notifications filters. */
const ListQuery = v.object({
  status: v.optional(v.picklist(NOTIFICATION_STATUSES, `must be one of ${NOTIFICATION_STATUSES.join(", ")}`)),
  event: v.optional(v.pipe(Name, v.minLength(1, "must not be empty"))),
});

export function eventRoutes(api: Hono<Env>, app: App) {
  api.post("/events", requireScope("events:write"), async (c) => {
    const body = await jsonBody(c);
    const principal = c.get("principal") as Principal;
    const key = c.req.header("idempotency-key");
    if (key !== undefined && (key.length === 0 || key.length > 255)) {
      throw new AppError("VALIDATION_FAILED", "Idempotency-Key must be 1..255 characters", { details: [{ path: "Idempotency-Key", message: "1..255 characters" }] });
    }
    const r = await app.events.accept(body, { source: principal.id, idempotencyKey: key });
    if (r.replayed) c.header("Idempotent-Replayed", "true");
    const ev = body as { event?: string; to?: unknown[]; channels?: string[] };
    noteAudit(c, { action: r.replayed ? "event.replayed" : "event.accepted", target: { type: "notification", id: r.id }, details: { event: ev.event, recipients: ev.to?.length, channels: ev.channels, status: r.status } });
    c.header("Location", `/api/v1/notifications/${r.id}`);
    return c.json(r.replayed ? r.response : { id: r.id, status: r.status }, 202);
  });

  // Newest first, optionally of one status and/or event name; the deliveries are in GET /notifications/{id}.
  api.get("/notifications", requireScope("notifications:read"), async (c) => {
    const { limit, after } = pageParams((k) => c.req.query(k), "uuid");
    const { status, event } = parse(ListQuery, { status: c.req.query("status"), event: c.req.query("event") });
    const rows = await listNotifications(app.sql, { limit: limit + 1, beforeId: after, status, event });
    return c.json(page(rows.map(({ id, event, status, created_at, send_at }) => ({ id, event, status, created_at, send_at })), limit, (n) => n.id));
  });

  api.get("/notifications/:id", requireScope("notifications:read"), async (c) => {
    const id = c.req.param("id");
    const n = await app.repos.notifications.get(id);
    if (!n) throw notFound("notification", id);
    const deliveries = await app.repos.deliveries.listByNotification(id);
    return c.json(notificationView(n, deliveries));
  });

  api.delete("/notifications/:id", requireScope("events:write"), async (c) => {
    const id = c.req.param("id");
    const r = await app.repos.notifications.cancel(id);
    if (!r) throw notFound("notification", id);
    if (!r.cancelled) throw new AppError("CONFLICT", `notification is ${r.status} and can no longer be cancelled`);
    noteAudit(c, { action: "notification.cancelled", target: { type: "notification", id } });
    return c.json({ id, status: "cancelled" });
  });
}

export function notificationView(n: NotificationRow, deliveries: DeliveryRow[]) {
  return {
    id: n.id,
    event: n.event,
    status: n.status,
    created_at: n.created_at,
    send_at: n.send_at,
    deliveries: deliveries.map((d) => ({
      id: d.id,
      channel: d.channel,
      recipient: d.recipient,
      user_id: d.user_id,
      status: d.status,
      attempts: d.attempts,
      error: d.error,
      sent_at: d.sent_at,
    })),
  };
}
