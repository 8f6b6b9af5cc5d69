/**
 * POST /graphql (and GET for queries) with @hono/graphql-server; same auth as REST (API key or
 * user JWT), same body limit. Depth and cost limits run with the validation rules.
 */
import { graphqlServer } from "@hono/graphql-server";
import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { GraphQLError, parse, visit, type ASTVisitor, type ValidationContext, type ValidationRule } from "graphql";
import type { App } from "../app.ts";
import type { Env } from "../http/env.ts";
import { addOperations } from "../http/openapi.ts";
import { AppError } from "../runtime/errors.ts";
import { nulPath } from "../schemas/common.ts";
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
    const body = json ? await c.req.text() : undefined;
    const refusal = refuse(body, c.req.query("query"), c.req.query("variables"));
    if (refusal) return c.json({ errors: [refusal] }, 400);
    if (json) {
      const headers = new Headers(c.req.raw.headers);
      headers.set("content-type", "application/json");
      c.req.raw = new Request(c.req.raw.url, { method: "POST", headers, body });
    }
    return server(c, next);
  });
}

/**
 * Requests answered here rather than by the library: malformed JSON, variables or query text (it
 * would print a stack trace to stderr for each: not a log line, and a flood of them on demand), and
 * strings holding U+0000, which PostgreSQL cannot store (as on REST, refused before they get there).
 */
function refuse(body: string | undefined, urlQuery?: string, urlVariables?: string): { message: string; locations?: unknown; extensions: Record<string, unknown> } | undefined {
  const bad = (message: string, code = "BAD_REQUEST", extra: Record<string, unknown> = {}) => ({ message, extensions: { code, ...extra } });
  let fields: { query?: unknown; variables?: unknown } = {};
  if (body !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return bad("the request body is not valid JSON");
    }
    if (parsed && typeof parsed === "object") fields = parsed;
  }
  let variables: unknown = urlVariables ?? fields.variables;
  if (typeof variables === "string") {
    try {
      variables = JSON.parse(variables);
    } catch {
      return bad("variables are not valid JSON");
    }
  }
  if (variables != null && (typeof variables !== "object" || Array.isArray(variables))) return bad("variables must be a JSON object");
  let nul = nulPath(variables, "variables");
  const query = urlQuery ?? (typeof fields.query === "string" ? fields.query : undefined);
  if (query !== undefined) {
    try {
      visit(parse(query), { StringValue: (node) => void (node.value.includes("\0") && (nul ??= "query")) });
    } catch (err) {
      const e = err as GraphQLError;
      return { message: e.message, locations: e.locations, extensions: { code: "GRAPHQL_PARSE_FAILED" } };
    }
  }
  return nul === undefined ? undefined : bad("strings may not contain U+0000 (NUL)", "VALIDATION_FAILED", { path: nul });
}
