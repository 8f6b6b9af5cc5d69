/**
 * The audit role (consume notify.audit in batches into MongoDB or PostgreSQL, apply retention) and
 * what the other roles add for it: delivery outcomes from the worker, and the query/export routes
 * the gateway serves.
 */
import type { Hono } from "hono";
import * as v from "valibot";
import type { App } from "../app.ts";
import { createAuditConsumer } from "../audit/consumer.ts";
import { openAuditStore } from "../audit/open-store.ts";
import { createPgAuditStore } from "../audit/store-pg.ts";
import { InvalidCursorError, MAX_QUERY_LIMIT, type AuditStore } from "../audit/store.ts";
import type { HttpExtensions } from "../http/app.ts";
import { requireScope } from "../http/auth.ts";
import type { Env } from "../http/env.ts";
import { addOperations } from "../http/openapi.ts";
import { delay } from "../runtime/lifecycle.ts";
import { AppError } from "../runtime/errors.ts";
import type { Hooks } from "../services/dispatch.ts";
import { Timestamp, parse } from "../schemas/common.ts";

/** Retention runs this often; deleting is cheap, a day's slack is not a compliance problem. */
const RETENTION_EVERY_MS = 6 * 3_600_000;

const stores = new WeakMap<App, Promise<AuditStore>>();

/** The store this process reads and writes: MongoDB when configured, else the main PostgreSQL. One per process. */
export function auditStore(app: App): Promise<AuditStore> {
  let store = stores.get(app);
  if (!store) {
    store = (async () => {
      const s = app.config.mongoUrl ? await openAuditStore({ mongoUrl: app.config.mongoUrl }) : createPgAuditStore({ sql: app.sql });
      app.lifecycle.add("audit-store", () => s.close());
      return s;
    })();
    stores.set(app, store);
  }
  return store;
}

export async function startAuditRole(app: App): Promise<() => Promise<void>> {
  const store = await auditStore(app);
  const consumer = await createAuditConsumer({ queue: app.queue, store, log: app.log });
  const abort = new AbortController();
  const retention = (async () => {
    while (!abort.signal.aborted && app.config.auditRetentionDays > 0) {
      try {
        const r = await store.applyRetention(app.config.auditRetentionDays);
        if (r.deleted) app.log.info("audit retention applied", { deleted: r.deleted, days: app.config.auditRetentionDays });
      } catch (err) {
        app.log.warn("audit retention failed", { err: String(err) });
      }
      await delay(RETENTION_EVERY_MS, abort.signal);
    }
  })();
  app.log.info("audit consuming", { store: store.kind });
  return async () => {
    abort.abort();
    await consumer.stop();
    await retention;
  };
}

/** Delivery outcomes on record: what happened to the e-mail for user u123 on the 5th. */
export function auditHooks(app: App): Hooks {
  return {
    onDeliveryFinal(d) {
      app.audit.record({
        actor: { type: "system", id: "worker" },
        action: `delivery.${d.status}`,
        target: { type: "delivery", id: d.id },
        outcome: d.status === "failed" ? "failure" : "success",
        details: { notification_id: d.notification_id, user_id: d.user_id, channel: d.channel, ...(d.error ? { error: d.error } : {}) },
      });
    },
  };
}

/** GET /api/v1/audit and the GraphQL `audit` query: the same validation, the same store. */
export async function queryAudit(app: App, raw: Record<string, unknown>) {
  const q = parse(Query, raw);
  try {
    return await (await auditStore(app)).query(q);
  } catch (err) {
    if (err instanceof InvalidCursorError) throw new AppError("VALIDATION_FAILED", "invalid cursor", { details: [{ path: "cursor", message: "not a cursor returned by this API" }] });
    throw err;
  }
}

const Query = v.object({
  actor: v.optional(v.pipe(v.string(), v.maxLength(300))),
  action: v.optional(v.pipe(v.string(), v.maxLength(200))),
  target: v.optional(v.pipe(v.string(), v.maxLength(300))),
  since: v.optional(Timestamp),
  until: v.optional(Timestamp),
  limit: v.optional(v.pipe(v.string(), v.regex(/^\d+$/, "must be a whole number"), v.transform(Number), v.minValue(1), v.maxValue(MAX_QUERY_LIMIT))),
  cursor: v.optional(v.pipe(v.string(), v.maxLength(500))),
});

export function auditHttpExtension(app: App): HttpExtensions {
  const store = () => auditStore(app);
  addOperations([
    { method: "get", path: "/api/v1/audit", summary: "Audit log: ?actor=type:id&action=&target=type:id&since=&until=&limit=&cursor= (newest first)", scope: "audit:read", tag: "audit" },
    { method: "get", path: "/api/v1/audit/export", summary: "Audit log as NDJSON, oldest first (same filters)", scope: "audit:read", tag: "audit" },
  ]);
  return {
    api: [
      (api: Hono<Env>) => {
        api.get("/audit", requireScope("audit:read"), async (c) => c.json(await queryAudit(app, c.req.query())));
        api.get("/audit/export", requireScope("audit:read"), async (c) => {
          const { limit: _l, cursor: _c, ...filter } = parse(Query, c.req.query());
          const records = (await store()).export(filter);
          const encoder = new TextEncoder();
          const stream = new ReadableStream<Uint8Array>({
            async start(controller) {
              try {
                for await (const r of records) controller.enqueue(encoder.encode(JSON.stringify(r) + "\n"));
                controller.close();
              } catch (err) {
                controller.error(err);
              }
            },
          });
          return c.body(stream, 200, { "Content-Type": "application/x-ndjson", "Content-Disposition": 'attachment; filename="audit.ndjson"' });
        });
      },
    ],
  };
}
