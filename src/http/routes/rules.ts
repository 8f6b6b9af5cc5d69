/** Event rules: PUT|GET|DELETE /rules/{event}, GET /rules (scope templates:write). */
import type { Hono } from "hono";
import * as v from "valibot";
import type { App } from "../../app.ts";
import { AppError, notFound } from "../../runtime/errors.ts";
import { parse } from "../../schemas/common.ts";
import { EventName, RuleInput } from "../../schemas/rule.ts";
import { requireScope } from "../auth.ts";
import type { Env } from "../env.ts";
import { jsonBody } from "../app.ts";
import { addOperations } from "../openapi.ts";
import { page, pageParams } from "../pagination.ts";

addOperations([
  { method: "put", path: "/api/v1/rules/{event}", summary: "Create or replace the rule of an event (template, channels, category, priority, webhook_url, data_sources)", scope: "templates:write", body: RuleInput, tag: "rules" },
  { method: "get", path: "/api/v1/rules/{event}", summary: "An event rule", scope: "templates:write", tag: "rules" },
  { method: "delete", path: "/api/v1/rules/{event}", summary: "Delete an event rule", scope: "templates:write", status: 204, tag: "rules" },
  { method: "get", path: "/api/v1/rules", summary: "List event rules (cursor pagination)", scope: "templates:write", tag: "rules" },
]);

function eventName(raw: string): string {
  const r = v.safeParse(EventName, raw);
  if (!r.success) throw new AppError("VALIDATION_FAILED", "invalid event name", { details: [{ path: "event", message: r.issues[0]!.message }] });
  return r.output;
}

export function ruleRoutes(api: Hono<Env>, app: App) {
  api.put("/rules/:event", requireScope("templates:write"), async (c) => {
    const event = eventName(c.req.param("event"));
    const input = parse(RuleInput, await jsonBody(c));
    if (input.template && !(await app.repos.templates.exists(input.template))) {
      throw new AppError("UNKNOWN_TEMPLATE", `template ${input.template} does not exist`, { details: [{ path: "template", message: "unknown template" }] });
    }
    const { rule, created } = await app.repos.rules.put(event, input);
    return c.json(rule, created ? 201 : 200);
  });

  api.get("/rules/:event", requireScope("templates:write"), async (c) => {
    const event = eventName(c.req.param("event"));
    const rule = await app.repos.rules.get(event);
    if (!rule) throw notFound("rule", event);
    return c.json(rule);
  });

  api.delete("/rules/:event", requireScope("templates:write"), async (c) => {
    const event = eventName(c.req.param("event"));
    if (!(await app.repos.rules.remove(event))) throw notFound("rule", event);
    return c.body(null, 204);
  });

  api.get("/rules", requireScope("templates:write"), async (c) => {
    const { limit, after } = pageParams((k) => c.req.query(k));
    const rows = await app.repos.rules.list(limit + 1, after);
    return c.json(page(rows, limit, (r) => r.event));
  });
}
