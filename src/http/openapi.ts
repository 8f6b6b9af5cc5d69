/**
 * The OpenAPI document, generated from the same valibot schemas that validate requests.
 * Capabilities add their operations by calling addOperations() at module load (static, compile-safe).
 */
import { toJsonSchema } from "@valibot/to-json-schema";
import type * as v from "valibot";
import { ApiKeyInput } from "../schemas/api-key.ts";
import { EventInput } from "../schemas/event.ts";
import { TemplateInput } from "../schemas/template.ts";
import { UserInput } from "../schemas/user.ts";
import pkg from "../../package.json" with { type: "json" };

export interface Operation {
  method: "get" | "post" | "put" | "patch" | "delete";
  path: string;
  summary: string;
  scope?: string;
  /** "user" for end-user JWT routes. */
  auth?: "key" | "user" | "none";
  body?: v.GenericSchema;
  status?: number;
  tag: string;
}

const operations: Operation[] = [
  { method: "post", path: "/api/v1/events", summary: "Accept an event (202 once durable). Idempotency-Key header supported.", scope: "events:write", body: EventInput, status: 202, tag: "events" },
  { method: "get", path: "/api/v1/notifications", summary: "Notifications, newest first (?status=, ?event=, cursor pagination)", scope: "notifications:read", tag: "events" },
  { method: "get", path: "/api/v1/notifications/{id}", summary: "A notification and its deliveries", scope: "notifications:read", tag: "events" },
  { method: "delete", path: "/api/v1/notifications/{id}", summary: "Cancel a scheduled or not yet sent notification", scope: "events:write", tag: "events" },
  { method: "post", path: "/api/v1/notices/send", summary: "Seed compatibility: send a notice", scope: "events:write", status: 202, tag: "seed" },
  { method: "get", path: "/api/v1/notices/{id}", summary: "Seed compatibility: notice status", scope: "notifications:read", tag: "seed" },
  { method: "post", path: "/api/v1/notifications/{channel}", summary: "Seed compatibility: send a template on one channel to user ids", scope: "events:write", status: 202, tag: "seed" },
  { method: "put", path: "/api/v1/users/{id}", summary: "Create or replace a recipient", scope: "users:write", body: UserInput, tag: "users" },
  { method: "get", path: "/api/v1/users/{id}", summary: "A recipient", scope: "users:write", tag: "users" },
  { method: "delete", path: "/api/v1/users/{id}", summary: "Remove a recipient", scope: "users:write", status: 204, tag: "users" },
  { method: "get", path: "/api/v1/users", summary: "List recipients (cursor pagination)", scope: "users:write", tag: "users" },
  { method: "put", path: "/api/v1/templates/{key}", summary: "Create or update a template (a new version)", scope: "templates:write", body: TemplateInput, tag: "templates" },
  { method: "get", path: "/api/v1/templates/{key}", summary: "A template", scope: "templates:write", tag: "templates" },
  { method: "get", path: "/api/v1/templates/{key}/versions", summary: "A template's versions", scope: "templates:write", tag: "templates" },
  { method: "delete", path: "/api/v1/templates/{key}", summary: "Delete a template", scope: "templates:write", status: 204, tag: "templates" },
  { method: "get", path: "/api/v1/templates", summary: "List templates", scope: "templates:write", tag: "templates" },
  { method: "post", path: "/api/v1/templates/{key}/preview", summary: "Render a variant with sample data", scope: "templates:write", tag: "templates" },
  { method: "post", path: "/api/v1/api-keys", summary: "Create an API key (shown once)", scope: "admin", body: ApiKeyInput, status: 201, tag: "admin" },
  { method: "get", path: "/api/v1/api-keys", summary: "List API keys", scope: "admin", tag: "admin" },
  { method: "delete", path: "/api/v1/api-keys/{id}", summary: "Revoke an API key", scope: "admin", status: 204, tag: "admin" },
  { method: "get", path: "/api/v1/dead-letters", summary: "Dead letters", scope: "admin", tag: "admin" },
  { method: "post", path: "/api/v1/dead-letters/{id}/replay", summary: "Replay a dead letter", scope: "admin", status: 202, tag: "admin" },
  { method: "get", path: "/livez", summary: "Liveness", auth: "none", tag: "health" },
  { method: "get", path: "/readyz", summary: "Readiness with per-dependency checks (503 when not ready)", auth: "none", tag: "health" },
  { method: "get", path: "/metrics", summary: "Prometheus metrics", auth: "none", tag: "health" },
];

export function addOperations(ops: Operation[]): void {
  operations.push(...ops);
}

const ErrorSchema = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message", "details"],
      properties: {
        code: { type: "string", description: "Stable error code, e.g. VALIDATION_FAILED" },
        message: { type: "string" },
        details: { type: "array", items: { type: "object", properties: { path: { type: "string" }, message: { type: "string" } } } },
      },
    },
  },
};

let cached: unknown;

export function openApiDocument(): unknown {
  if (cached) return cached;
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of operations) {
    const params = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: "path", required: true, schema: { type: "string" } }));
    const entry: Record<string, unknown> = {
      summary: op.summary,
      tags: [op.tag],
      parameters: params,
      security: op.auth === "none" ? [] : op.auth === "user" ? [{ userJwt: [] }] : [{ apiKey: [] }],
      "x-required-scope": op.scope,
      responses: {
        [String(op.status ?? 200)]: { description: "Success" },
        default: { description: "Error", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
      },
    };
    if (op.body) {
      entry.requestBody = { required: true, content: { "application/json": { schema: toJsonSchema(op.body, { errorMode: "ignore" }) } } };
    }
    (paths[op.path] ??= {})[op.method] = entry;
  }
  cached = {
    openapi: "3.1.0",
    info: { title: "notify", version: pkg.version, description: "Notification and audit system: REST API v1." },
    servers: [{ url: "/" }],
    components: {
      securitySchemes: {
        apiKey: { type: "http", scheme: "bearer", description: "API key (nk_...)" },
        userJwt: { type: "http", scheme: "bearer", bearerFormat: "JWT", description: "End-user JWT" },
      },
      schemas: { Error: ErrorSchema },
    },
    paths,
  };
  return cached;
}
