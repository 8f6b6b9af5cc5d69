/** The recipient directory: PUT|GET|DELETE /users/{id}, GET /users. */
import type { Hono } from "hono";
import type { App } from "../../app.ts";
import { AppError, notFound } from "../../runtime/errors.ts";
import { Id, parse } from "../../schemas/common.ts";
import { UserInput } from "../../schemas/user.ts";
import { requireScope } from "../auth.ts";
import type { Env } from "../env.ts";
import { jsonBody } from "../app.ts";
import { noteAudit } from "../audit-trail.ts";
import { page, pageParams } from "../pagination.ts";
import * as v from "valibot";

export function userId(raw: string): string {
  const r = v.safeParse(Id, raw);
  if (!r.success) throw new AppError("VALIDATION_FAILED", "invalid user id", { details: [{ path: "id", message: r.issues[0]!.message }] });
  return r.output;
}

export function userRoutes(api: Hono<Env>, app: App) {
  api.put("/users/:id", requireScope("users:write"), async (c) => {
    const id = userId(c.req.param("id"));
    const input = parse(UserInput, await jsonBody(c));
    const { user, created, before } = await app.repos.users.put(id, input);
    noteAudit(c, { action: created ? "user.created" : "user.updated", target: { type: "user", id }, details: { before: before ?? null, after: input } });
    return c.json(user, created ? 201 : 200);
  });

  api.get("/users/:id", requireScope("users:write"), async (c) => {
    const id = userId(c.req.param("id"));
    const user = await app.repos.users.get(id);
    if (!user) throw notFound("user", id);
    return c.json(user);
  });

  api.delete("/users/:id", requireScope("users:write"), async (c) => {
    const id = userId(c.req.param("id"));
    const user = await app.repos.users.remove(id);
    if (!user) throw notFound("user", id);
    return c.body(null, 204);
  });

  api.get("/users", requireScope("users:write"), async (c) => {
    const { limit, after } = pageParams((k) => c.req.query(k));
    const rows = await app.repos.users.list(limit + 1, after);
    return c.json(page(rows, limit, (u) => u.id));
  });
}
