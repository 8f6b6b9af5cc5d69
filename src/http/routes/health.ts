/**
 * Liveness is "the process answers": it never checks dependencies, so an outage of PostgreSQL
 * does not make an orchestrator restart every replica at once. Readiness checks what this role
 * needs and answers 503 (with each check) while it cannot do its work.
 */
import type { Hono } from "hono";
import type { App } from "../../app.ts";
import { renderMetrics } from "../../runtime/metrics.ts";
import type { Env } from "../env.ts";

export async function readiness(app: App): Promise<{ ok: boolean; checks: Record<string, { ok: boolean; detail?: string }> }> {
  const checks: Record<string, { ok: boolean; detail?: string }> = {};
  const pg = app.sql`SELECT 1`.then(
    () => ({ ok: true }),
    (err: Error) => ({ ok: false, detail: err.message }),
  );
  const timeout = new Promise<{ ok: boolean; detail: string }>((r) => setTimeout(() => r({ ok: false, detail: "timed out" }), 2000));
  checks.database = { ...(await Promise.race([pg, timeout])), ...({ mode: app.mode.database } as object) };
  const q = app.queue.health();
  checks.queue = { ...q, ...({ mode: app.mode.queue } as object) };
  for (const [name, check] of app.readiness) {
    checks[name] = await check().catch((err: Error) => ({ ok: false, detail: err.message }));
  }
  if (app.lifecycle.stopping) checks.shutdown = { ok: false, detail: "draining" };
  return { ok: Object.values(checks).every((c) => c.ok), checks };
}

export function healthRoutes(root: Hono<Env>, app: App) {
  root.get("/livez", (c) => c.json({ status: "ok" }));
  root.get("/readyz", async (c) => {
    const r = await readiness(app);
    if (!r.ok) c.header("Retry-After", "5");
    return c.json({ status: r.ok ? "ready" : "not_ready", roles: app.config.roles, checks: r.checks }, r.ok ? 200 : 503);
  });
  root.get("/metrics", async (c) => {
    const m = await renderMetrics();
    return c.body(m.body, 200, { "Content-Type": m.contentType });
  });
}
