/** Dead letters (admin): list and replay. */
import type { Hono } from "hono";
import type { App } from "../../app.ts";
import { AppError, notFound } from "../../runtime/errors.ts";
import { requireScope } from "../auth.ts";
import type { Env } from "../env.ts";
import { page, pageParams } from "../pagination.ts";
import { NOTIFICATION_HEADER } from "../../services/relay.ts";
import { isUuid } from "../../store/notifications.ts";
import { deliveryJobs, jobIds } from "../../services/delivery-jobs.ts";

export function deadLetterRoutes(api: Hono<Env>, app: App) {
  api.get("/dead-letters", requireScope("admin"), async (c) => {
    const { limit, after } = pageParams((k) => c.req.query(k), "uuid");
    const rows = await app.repos.deadLetters.list(limit + 1, after, c.req.query("include_replayed") === "true");
    return c.json(page(rows, limit, (d) => d.id));
  });

  api.post("/dead-letters/:id/replay", requireScope("admin"), async (c) => {
    const id = c.req.param("id");
    const dl = isUuid(id) ? await app.repos.deadLetters.get(id) : undefined;
    if (!dl) throw notFound("dead letter", id);
    if (dl.replayed_at) throw new AppError("CONFLICT", "this dead letter was already replayed");
    if (dl.queue === "deliveries" || dl.queue.includes("deliveries")) {
      // A job the broker dead-lettered carries its ids in the message body (one, or a pack); a
      // delivery the worker gave up on is the ref itself.
      const p = dl.payload as { body?: unknown } | null;
      const ids = jobIds(p?.body) ?? jobIds(p) ?? (dl.ref_id ? [dl.ref_id] : []);
      for (const deliveryId of ids) await app.repos.deliveries.requeue(deliveryId);
      await app.queue.publish("deliveries", deliveryJobs(ids, `replay:${dl.id}`));
    } else {
      const p = dl.payload as { body?: unknown; headers?: Record<string, unknown>; routing_key?: string };
      const nid = p.headers?.[NOTIFICATION_HEADER];
      await app.queue.publish("events", [
        { body: p.body, routingKey: p.routing_key ?? "replay", messageId: typeof nid === "string" ? nid : dl.id, headers: typeof nid === "string" ? { [NOTIFICATION_HEADER]: nid } : {} },
      ]);
    }
    await app.repos.deadLetters.markReplayed(id);
    return c.json({ id, replayed: true }, 202);
  });
}
