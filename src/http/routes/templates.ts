/** Templates: PUT|GET|DELETE /templates/{key}, GET /templates, POST /templates/{key}/preview. */
import type { Hono } from "hono";
import * as v from "valibot";
import type { App } from "../../app.ts";
import { AppError, notFound } from "../../runtime/errors.ts";
import { Key, Locale, parse } from "../../schemas/common.ts";
import { CHANNELS } from "../../schemas/event.ts";
import { TemplateInput } from "../../schemas/template.ts";
import { checkTemplate, renderPreview } from "../../services/render.ts";
import { requireScope, type Principal } from "../auth.ts";
import type { Env } from "../env.ts";
import { jsonBody } from "../app.ts";
import { noteAudit } from "../audit-trail.ts";
import { page, pageParams } from "../pagination.ts";

const Preview = v.strictObject({
  channel: v.optional(v.picklist(CHANNELS)),
  locale: v.optional(Locale),
  data: v.optional(v.record(v.string(), v.unknown()), {}),
  user: v.optional(v.record(v.string(), v.unknown()), {}),
});

function templateKey(raw: string): string {
  const r = v.safeParse(Key, raw);
  if (!r.success) throw new AppError("VALIDATION_FAILED", "invalid template key", { details: [{ path: "key", message: r.issues[0]!.message }] });
  return r.output;
}

export function templateRoutes(api: Hono<Env>, app: App) {
  api.put("/templates/:key", requireScope("templates:write"), async (c) => {
    const key = templateKey(c.req.param("key"));
    const input = parse(TemplateInput, await jsonBody(c));
    checkTemplate(input);
    const p = c.get("principal") as Principal;
    const { template, created, before } = await app.repos.templates.put(key, input, `${p.type}:${p.id}`);
    noteAudit(c, { action: created ? "template.created" : "template.updated", target: { type: "template", id: key }, details: { version: template.version, before: before ?? null, after: input } });
    return c.json(template, created ? 201 : 200);
  });

  api.get("/templates/:key", requireScope("templates:write"), async (c) => {
    const key = templateKey(c.req.param("key"));
    const t = await app.repos.templates.get(key);
    if (!t) throw notFound("template", key);
    return c.json(t);
  });

  api.get("/templates/:key/versions", requireScope("templates:write"), async (c) => {
    const key = templateKey(c.req.param("key"));
    const versions = await app.repos.templates.versions(key);
    if (!versions.length) throw notFound("template", key);
    return c.json({ items: versions, next_cursor: null });
  });

  api.delete("/templates/:key", requireScope("templates:write"), async (c) => {
    const key = templateKey(c.req.param("key"));
    const t = await app.repos.templates.remove(key);
    if (!t) throw notFound("template", key);
    noteAudit(c, { action: "template.deleted", target: { type: "template", id: key }, details: { version: t.version } });
    return c.body(null, 204);
  });

  api.get("/templates", requireScope("templates:write"), async (c) => {
    const { limit, after } = pageParams((k) => c.req.query(k));
    const rows = await app.repos.templates.list(limit + 1, after);
    return c.json(page(rows, limit, (t) => t.key));
  });

  api.post("/templates/:key/preview", requireScope("templates:write"), async (c) => {
    const key = templateKey(c.req.param("key"));
    const t = await app.repos.templates.get(key);
    if (!t) throw notFound("template", key);
    const input = parse(Preview, await jsonBody(c));
    return c.json(renderPreview(t, input));
  });
}
