/**
 * POST /graphql (and GET for queries) with @hono/graphql-server; same auth as REST (API key or
 * user JWT), same body limit. Depth and cost limits run with the validation rules.
 */
import { graphqlServer } from "@hono/graphql-server";
import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { App } from "../app.ts";
import type { Env } from "../http/env.ts";
import { addOperations } from "../http/openapi.ts";
import { AppError } from "../runtime/errors.ts";
import { limitRule } from "./limits.ts";
import { createSchema } from "./schema.ts";

addOperations([{ method: "post", path: "/graphql", summary: "GraphQL (schema: docs/realtime.md). API key or user token; subscriptions over /ws (graphql-transport-ws)", tag: "graphql" }]);

export function graphqlRoutes(root: Hono<Env>, app: App): void {
  const server = graphqlServer({ schema: createSchema(app), validationRules: [limitRule] });
  const limit = bodyLimit({
    maxSize: app.config.maxBodyBytes,
    onError: () => {
      throw new AppError("PAYLOAD_TOO_LARGE", `request body exceeds ${app.config.maxBodyBytes} bytes`);
    },
  });
  root.on(["GET", "POST"], "/graphql", limit, async function graphqlRequest(c, next) {
    // The library matches the content type exactly; "application/json; charset=utf-8" is just as JSON.
    const type = c.req.header("content-type");
    if (type && /^application\/json\s*;/i.test(type)) {
      const headers = new Headers(c.req.raw.headers);
      headers.set("content-type", "application/json");
      c.req.raw = new Request(c.req.raw, { headers });
    }
    return server(c, next);
  });
}
