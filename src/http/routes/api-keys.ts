/** API keys (admin): POST /api-keys → the key, shown once; GET; DELETE revokes. */
import type { Hono } from "hono";
import type { App } from "../../app.ts";
import { notFound } from "../../runtime/errors.ts";
import { parse } from "../../schemas/common.ts";
import { ApiKeyInput } from "../../schemas/api-key.ts";
import { requireScope, type Principal } from "../auth.ts";
import type { Env } from "../env.ts";
import { jsonBody } from "../app.ts";
import { isUuid } from "../../store/notifications.ts";
import { noteAudit } from "../audit-trail.ts";
import { page, pageParams } from "../pagination.ts";

export function apiKeyRoutes(api: Hono<Env>, app: App) {
  api.post("/api-keys", requireScope("admin"), async (c) => {
    const input = parse(ApiKeyInput, await jsonBody(c));
    const p = c.get("principal") as Principal;
    const { record, key } = await app.repos.apiKeys.create(input.name, [...new Set(input.scopes)], `${p.type}:${p.id}`);
    noteAudit(c, { action: "api_key.created", target: { type: "api_key", id: record.id }, details: { name: record.name, scopes: record.scopes, prefix: record.prefix } });
    return c.json({ ...record, key }, 201);
  });

  api.get("/api-keys", requireScope("admin"), async (c) => {
    const { limit, after } = pageParams((k) => c.req.query(k), "uuid");
    const rows = await app.repos.apiKeys.list(limit + 1, after);
    return c.json(page(rows, limit, (k) => k.id));
  });

  api.delete("/api-keys/:id", requireScope("admin"), async (c) => {
    const id = c.req.param("id");
    const rec = isUuid(id) ? await app.repos.apiKeys.revoke(id) : undefined;
    if (!rec) throw notFound("api key", id);
    noteAudit(c, { action: "api_key.revoked", target: { type: "api_key", id }, details: { name: rec.name } });
    return c.body(null, 204);
  });
}
