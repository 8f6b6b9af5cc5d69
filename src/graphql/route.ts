/**
 * POST /graphql (and GET for queries) with @hono/graphql-server; same auth as REST (API key or
 * user JWT), same body limit. Depth and cost limits run with the validation rules.
 */
import { graphqlServer } from "@hono/graphql-server";
import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { GraphQLError, parse, type ASTVisitor, type ValidationContext, type ValidationRule } from "graphql";
import type { App } from "../app.ts";
import type { Env } from "../http/env.ts";
import { addOperations } from "../http/openapi.ts";
import { AppError } from "../runtime/errors.ts";
import { limitRule } from "./limits.ts";
import { createSchema } from "./schema.ts";

addOperations([{ method: "post", path: "/graphql", summary: "GraphQL (schema: docs/realtime.md). API key or user token; subscriptions over /ws (graphql-transport-ws)", tag: "graphql" }]);

/**
 * A subscription is a stream: over a single HTTP answer it could only fail (graphql-js resolves it
 * once with no event and reports a null). Refused at validation, with where to go instead.
 */
const noSubscriptionsOverHttp: ValidationRule = (ctx: ValidationContext): ASTVisitor => ({
  OperationDefinition(node) {
    if (node.operation !== "subscription") return;
    ctx.reportError(
      new GraphQLError("subscriptions are served over WebSocket: /ws with the graphql-transport-ws protocol", { nodes: [node], extensions: { code: "SUBSCRIPTION_OVER_HTTP" } }),
    );
  },
});

export function graphqlRoutes(root: Hono<Env>, app: App): void {
  const server = graphqlServer({ schema: createSchema(app), validationRules: [limitRule, noSubscriptionsOverHttp] });
  const limit = bodyLimit({
    maxSize: app.config.maxBodyBytes,
    onError: () => {
      throw new AppError("PAYLOAD_TOO_LARGE", `request body exceeds ${app.config.maxBodyBytes} bytes`);
    },
  });
  root.on(["GET", "POST"], "/graphql", limit, async function graphqlRequest(c, next) {
    // The library matches the content type exactly; "application/json; charset=utf-8" is just as JSON.
    const type = c.req.header("content-type");
    const json = c.req.method === "POST" && !!type && /^application\/json\s*(;|$)/i.test(type);
    // Malformed JSON, variables and query text are answered here: the library would print a stack
    // trace to stderr for each (not a log line, and a flood of them on demand).
    let body: string | undefined;
    let variables = c.req.query("variables");
    let query = c.req.query("query");
    if (json) {
      body = await c.req.text();
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        return c.json({ errors: [{ message: "the request body is not valid JSON", extensions: { code: "BAD_REQUEST" } }] }, 400);
      }
      const fields = parsed as { query?: unknown; variables?: unknown } | null;
      if (typeof fields?.variables === "string" && variables === undefined) variables = fields.variables;
      if (typeof fields?.query === "string" && query === undefined) query = fields.query;
    }
    if (query !== undefined) {
      try {
        parse(query);
      } catch (err) {
        const e = err as GraphQLError;
        return c.json({ errors: [{ message: e.message, locations: e.locations, extensions: { code: "GRAPHQL_PARSE_FAILED" } }] }, 400);
      }
    }
    if (variables !== undefined) {
      try {
        JSON.parse(variables);
      } catch {
        return c.json({ errors: [{ message: "variables are not valid JSON", extensions: { code: "BAD_REQUEST" } }] }, 400);
      }
    }
    if (json) {
      const headers = new Headers(c.req.raw.headers);
      headers.set("content-type", "application/json");
      c.req.raw = new Request(c.req.raw.url, { method: "POST", headers, body });
    }
    return server(c, next);
  });
}
