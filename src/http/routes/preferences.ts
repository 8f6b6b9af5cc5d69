/**
 * GET|PUT /users/{id}/preferences for services holding an API key with users:write. End users
 * reach their own preferences through the JWT routes (issue 4), which call the same service.
 */
import type { Hono } from "hono";
import type { App } from "../../app.ts";
import { notFound } from "../../runtime/errors.ts";
import { PreferencesInput } from "../../schemas/preferences.ts";
import { createPreferenceService } from "../../services/preferences.ts";
import { requireScope } from "../auth.ts";
import type { Env } from "../env.ts";
import { jsonBody } from "../app.ts";
import { addOperations } from "../openapi.ts";
import { userId } from "./users.ts";

addOperations([
  { method: "get", path: "/api/v1/users/{id}/preferences", summary: "A user's preferences: opt-outs per category × channel, quiet hours", scope: "users:write", tag: "users" },
  { method: "put", path: "/api/v1/users/{id}/preferences", summary: "Replace a user's preferences", scope: "users:write", body: PreferencesInput, tag: "users" },
]);

export function preferenceRoutes(api: Hono<Env>, app: App) {
  const service = createPreferenceService({ preferences: app.repos.preferences });

  api.get("/users/:id/preferences", requireScope("users:write"), async (c) => {
    const id = userId(c.req.param("id"));
    if (!(await app.repos.users.get(id))) throw notFound("user", id);
    return c.json(await service.get(id));
  });

  api.put("/users/:id/preferences", requireScope("users:write"), async (c) => {
    const id = userId(c.req.param("id"));
    const body = await jsonBody(c);
    if (!(await app.repos.users.get(id))) throw notFound("user", id);
    return c.json(await service.set(id, body));
  });
}
