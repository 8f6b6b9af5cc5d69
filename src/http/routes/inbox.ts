/**
 * The end user's inbox (user JWT): GET /inbox, GET /inbox/unread-count, POST /inbox/{id}/read,
 * POST /inbox/read-all, POST /inbox/{id}/archive. The user id always comes from the token.
 */
import type { Hono } from "hono";
import type { App } from "../../app.ts";
import { AppError } from "../../runtime/errors.ts";
import type { Principal } from "../auth.ts";
import type { Env } from "../env.ts";
import { addOperations } from "../openapi.ts";
import { pageParams } from "../pagination.ts";
import { requireUser } from "../user-auth.ts";

addOperations([
  { method: "get", path: "/api/v1/inbox", summary: "The caller's in-app inbox, newest first (?limit, ?cursor, ?archived=true); ?since=<item id> lists newer items oldest first", auth: "user", tag: "inbox" },
  { method: "get", path: "/api/v1/inbox/unread-count", summary: "Unread items, counted from stored state", auth: "user", tag: "inbox" },
  { method: "post", path: "/api/v1/inbox/{id}/read", summary: "Mark one item read", auth: "user", tag: "inbox" },
  { method: "post", path: "/api/v1/inbox/read-all", summary: "Mark every item read", auth: "user", tag: "inbox" },
  { method: "post", path: "/api/v1/inbox/{id}/archive", summary: "Archive one item (leaves the inbox and the unread count)", auth: "user", tag: "inbox" },
]);

export function inboxRoutes(api: Hono<Env>, app: App) {
  const me = (c: { get(k: "principal"): Principal | null | undefined }) => (c.get("principal") as Principal).id;

  api.get("/inbox", requireUser(), async (c) => {
    const { limit } = pageParams((k) => (k === "cursor" ? undefined : c.req.query(k)));
    const archived = c.req.query("archived");
    if (archived !== undefined && archived !== "true" && archived !== "false") {
      throw new AppError("VALIDATION_FAILED", "archived must be true or false", { details: [{ path: "archived", message: "must be true or false" }] });
    }
    const since = c.req.query("since");
    return c.json(await app.inbox.list(me(c), { limit, cursor: c.req.query("cursor") || undefined, since: since || undefined, archived: archived === "true" }));
  });

  api.get("/inbox/unread-count", requireUser(), async (c) => c.json({ count: await app.inbox.unreadCount(me(c)) }));

  api.post("/inbox/read-all", requireUser(), async (c) => c.json(await app.inbox.markAllRead(me(c))));

  api.post("/inbox/:id/read", requireUser(), async (c) => {
    const r = await app.inbox.markRead(me(c), c.req.param("id"));
    return c.json({ ...r.item, unread_count: r.unread_count });
  });

  api.post("/inbox/:id/archive", requireUser(), async (c) => {
    const r = await app.inbox.archive(me(c), c.req.param("id"));
    return c.json({ ...r.item, unread_count: r.unread_count });
  });
}
