/**
 * The HTTP side of the audit log: every request that changes state, and every authentication or
 * authorisation failure, becomes an audit record. Routes that know better (a template's before and
 * after, the id they created) say so with `noteAudit(c, ...)`; others get a record derived from the
 * route. Publishing never blocks or fails the request (the publisher buffers).
 */
import type { Context } from "hono";
import type { AuditPublisher } from "../audit/publisher.ts";
import type { Env } from "./env.ts";

export interface AuditNote {
  action?: string;
  target?: { type: string; id: string };
  details?: Record<string, unknown>;
}

const MUTATING = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const VERB: Record<string, string> = { POST: "created", PUT: "updated", PATCH: "updated", DELETE: "deleted" };

/** Adds to (or overrides) the record this request will produce. */
export function noteAudit(c: Context<Env>, note: AuditNote): void {
  const prev = c.get("audit") ?? {};
  c.set("audit", { ...prev, ...note, details: { ...prev.details, ...note.details } });
}

/** "/api/v1/templates/:key/preview" → { type: "template", id: <key> }, action "template.<verb>". */
function derive(c: Context<Env>): { action: string; target: { type: string; id: string } } {
  const route = (c.req.routePath || c.req.path).replace(/^\/api\/v1\//, "");
  const parts = route.split("/").filter(Boolean);
  const noun = (parts[0] ?? "request").replace(/-/g, "_").replace(/s$/, "");
  const param = parts.find((p) => p.startsWith(":"));
  const id = param ? c.req.param(param.slice(1)) ?? "" : "";
  const tail = parts[parts.length - 1];
  const verb = tail && !tail.startsWith(":") && parts.length > 1 ? tail.replace(/-/g, "_") : VERB[c.req.method] ?? "changed";
  return { action: `${noun}.${verb}`, target: { type: noun, id: id || "-" } };
}

export function recordRequest(audit: AuditPublisher, c: Context<Env>): void {
  const status = c.res.status;
  const failedAuth = status === 401 || status === 403;
  if (!failedAuth && (!MUTATING.has(c.req.method) || status >= 400)) return;
  // Liveness probes and the unsubscribe page are not API calls worth a record each.
  if (c.req.path === "/livez" || c.req.path === "/readyz") return;
  const p = c.get("principal");
  const note = c.get("audit") ?? {};
  const derived = derive(c);
  audit.record({
    actor: p ? { type: p.type === "admin" ? "admin" : p.type, id: p.id, name: p.name } : { type: "system", id: "anonymous" },
    action: failedAuth ? (status === 401 ? "auth.failed" : "auth.denied") : (note.action ?? derived.action),
    target: note.target ?? derived.target,
    outcome: failedAuth ? "denied" : "success",
    request_id: c.get("requestId"),
    details: {
      method: c.req.method,
      path: c.req.path,
      status,
      ...(failedAuth ? { ip: c.req.header("x-forwarded-for")?.split(",")[0]?.trim() } : {}),
      ...note.details,
    },
  });
}
