/**
 * The gateway's HTTP application. Tests call `app.request()`; the gateway role serves it with
 * Bun.serve. One wide log line per request; one onError mapping every error to the SPEC shape.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { App } from "../app.ts";
import { nulPath } from "../schemas/common.ts";
import { AppError } from "../runtime/errors.ts";
import { metrics } from "../runtime/metrics.ts";
import { bearerToken, createKeyAuthenticator, type Principal } from "./auth.ts";
import type { Env } from "./env.ts";
import { recordRequest } from "./audit-trail.ts";
import { createRateLimiter } from "./rate-limit.ts";
import { apiKeyRoutes } from "./routes/api-keys.ts";
import { deadLetterRoutes } from "./routes/dead-letters.ts";
import { eventRoutes } from "./routes/events.ts";
import { healthRoutes } from "./routes/health.ts";
import { noticeRoutes } from "./routes/notices.ts";
import { openapiRoutes } from "./routes/openapi.ts";
import { adminRoutes } from "./routes/admin.ts";
import { templateRoutes } from "./routes/templates.ts";
import { userRoutes } from "./routes/users.ts";
import type { GatewaySockets } from "../realtime/gateway-sockets.ts";

/** Resolves a user JWT; provided by the realtime issue. Returns null when the token is not a user token. */
export type UserAuthenticator = (token: string) => Promise<Principal | null>;

export interface HttpExtensions {
  /** Routes other capabilities mount under /api/v1 (rules, inbox, campaigns, audit...). */
  api?: Array<(api: Hono<Env>, app: App) => void>;
  /** Routes mounted at the root (graphql, admin panel...). */
  root?: Array<(root: Hono<Env>, app: App) => void>;
  authenticateUser?: UserAuthenticator;
  /** The /ws endpoint: Bun's one websocket handler and its upgrade route (src/realtime). */
  websocket?: GatewaySockets;
}

export function createHttpApp(app: App, ext: HttpExtensions = {}): Hono<Env> {
  const authenticateKey = createKeyAuthenticator({ apiKeys: app.repos.apiKeys, adminKey: app.config.adminKey });
  const limiter = createRateLimiter(app.config.rateLimitPerKey);
  const root = new Hono<Env>();

  root.use(async function requestContext(c, next) {
    const started = performance.now();
    const requestId = c.req.header("x-request-id")?.slice(0, 128).replace(/[^\w.-]/g, "") || Bun.randomUUIDv7();
    c.set("requestId", requestId);
    c.set("log", app.log.child({ request_id: requestId }));
    let resolved: Promise<Principal | null> | undefined;
    c.set("authenticate", () => {
      resolved ??= (async () => {
        const token = bearerToken(c.req.header("authorization"));
        if (!token) return null;
        const p = (await authenticateKey(token)) ?? (ext.authenticateUser ? await ext.authenticateUser(token) : null);
        if (p && p.type !== "user" && !limiter.take(p.id)) {
          throw new AppError("RATE_LIMITED", "rate limit exceeded for this API key", { retryAfter: 1 });
        }
        c.set("principal", p);
        return p;
      })();
      return resolved;
    });
    await next();
    c.header("X-Request-Id", requestId);
    recordRequest(app.audit, c);
    const route = c.req.routePath || "unmatched";
    if (!route.startsWith("/livez") && !route.startsWith("/metrics")) {
      metrics.httpRequests.inc({ method: c.req.method, route, status: String(c.res.status) });
      const p = c.get("principal");
      app.log.info("request", {
        request_id: requestId,
        method: c.req.method,
        path: c.req.path,
        route,
        status: c.res.status,
        duration_ms: Math.round((performance.now() - started) * 10) / 10,
        actor: p ? `${p.type}:${p.id}` : undefined,
      });
    }
  });

  root.onError(function errorHandler(err, c) {
    const requestId = c.get("requestId");
    if (err instanceof AppError) {
      if (err.retryAfter) c.header("Retry-After", String(err.retryAfter));
      return c.json({ error: { code: err.code, message: err.message, details: err.details, request_id: requestId } }, err.status as 400);
    }
    if (isHttpException(err)) {
      const status = err.status;
      const code = status === 413 ? "PAYLOAD_TOO_LARGE" : status === 401 ? "UNAUTHENTICATED" : status === 404 ? "NOT_FOUND" : "BAD_REQUEST";
      return c.json({ error: { code, message: err.message || code, details: [], request_id: requestId } }, status as 400);
    }
    app.log.error("unhandled error", { request_id: requestId, err });
    return c.json({ error: { code: "INTERNAL", message: "internal error", details: [], request_id: requestId } }, 500);
  });

  root.notFound((c) => c.json({ error: { code: "NOT_FOUND", message: `no route for ${c.req.method} ${c.req.path}`, details: [] } }, 404));

  healthRoutes(root, app);
  openapiRoutes(root, app);
  adminRoutes(root, app);

  const api = new Hono<Env>();
  api.use(
    bodyLimit({
      maxSize: app.config.maxBodyBytes,
      onError: () => {
        throw new AppError("PAYLOAD_TOO_LARGE", `request body exceeds ${app.config.maxBodyBytes} bytes`);
      },
    }),
  );
  eventRoutes(api, app);
  noticeRoutes(api, app);
  userRoutes(api, app);
  templateRoutes(api, app);
  apiKeyRoutes(api, app);
  deadLetterRoutes(api, app);
  for (const mount of ext.api ?? []) mount(api, app);
  root.route("/api/v1", api);
  for (const mount of ext.root ?? []) mount(root, app);
  return root;
}

function isHttpException(err: unknown): err is Error & { status: number } {
  return typeof (err as { status?: unknown }).status === "number" && typeof (err as { getResponse?: unknown }).getResponse === "function";
}

/** Reads a JSON body or throws 400 MALFORMED_JSON. */
export async function jsonBody(c: { req: { text(): Promise<string>; header(n: string): string | undefined } }): Promise<unknown> {
  const text = await c.req.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new AppError("MALFORMED_JSON", "request body is not valid JSON", { details: [{ path: "(body)", message: "not valid JSON" }] });
  }
  // PostgreSQL stores no U+0000 in text or jsonb: refused here, naming the field, rather than
  // failing in the database (a 500, or a 503 "retry later" on the accept path that no retry fixes).
  if (text.includes("\\u0000")) {
    const at = nulPath(body);
    if (at !== undefined) throw new AppError("VALIDATION_FAILED", "strings may not contain U+0000 (NUL)", { details: [{ path: at || "(body)", message: "contains U+0000" }] });
  }
  return body;
}
