/**
 * Runs the configured roles in this process until SIGTERM/SIGINT, then stops them in reverse
 * order within NOTIFY_SHUTDOWN_TIMEOUT_MS: stop taking work, finish what is in flight, exit 0.
 */
import { Hono } from "hono";
import type { Config } from "../config.ts";
import type { Logger } from "../runtime/log.ts";
import { createLifecycle } from "../runtime/lifecycle.ts";
import { redactUrl } from "../runtime/log.ts";
import { healthRoutes } from "../http/routes/health.ts";
import type { Env } from "../http/env.ts";
import { buildApp } from "./context.ts";
import { isEmbedded } from "../config.ts";
import { ensureLocalAdminKey } from "../embedded/admin-key.ts";
import type { EmbeddedStore } from "../embedded/store.ts";
import { migrate } from "../store/db.ts";
import { startGateway } from "./gateway.ts";
import { startWorker } from "./worker.ts";
import { ROLE_STARTERS } from "./registry.ts";
import { services } from "../grpc/proto.ts";
import { schemaDocument } from "../graphql/schema.ts";

/** `earlyStore`: the embedded store main.ts already started for this run, if it did. */
export async function runRoles(config: Config, log: Logger, earlyStore?: Promise<EmbeddedStore>): Promise<number> {
  const started = performance.now();
  const lifecycle = createLifecycle(log);
  let stopping: Promise<number> | undefined;
  const shutdown = (signal: string) => {
    stopping ??= (async () => {
      log.info("shutting down", { signal, deadline_ms: config.shutdownTimeoutMs });
      const clean = await lifecycle.stop(config.shutdownTimeoutMs);
      log.info("stopped", { clean });
      return clean ? 0 : 1;
    })();
    return stopping;
  };
  let finish!: (code: number) => void;
  const done = new Promise<number>((resolve) => (finish = resolve));
  process.once("SIGTERM", () => shutdown("SIGTERM").then(finish));
  process.once("SIGINT", () => shutdown("SIGINT").then(finish));

  if (!config.adminKey && isEmbedded(config)) {
    const local = ensureLocalAdminKey(config.dataDir);
    config.adminKey = local.key;
    process.stderr.write(`notify: no NOTIFY_ADMIN_KEY: using the admin key ${local.created ? "created" : "kept"} in ${local.path}\n`);
  }
  prepare(config);
  const app = await buildApp(config, log, lifecycle, earlyStore);
  // Without its database the process can do nothing: stop, and exit 1 so a supervisor restarts it.
  void app.storageLost?.then(async (reason) => {
    log.error("embedded PostgreSQL lost; stopping", { err: reason });
    await shutdown("storage-lost");
    finish(1);
  });
  // Not ready until every role has started: a gateway that answers while the worker is still
  // starting would be sent traffic nobody delivers yet.
  let starting = true;
  app.readiness.set("startup", async () => (starting ? { ok: false, detail: "roles starting" } : { ok: true }));
  // The embedded store was migrated when it was opened (src/embedded/open.ts).
  if (config.autoMigrate && app.mode.database !== "embedded") await migrate(app.sql, log);
  app.relay.start();
  lifecycle.add("relay", () => app.relay.stop());

  for (const role of config.roles) {
    if (role === "gateway") {
      const gw = await startGateway(app, ROLE_STARTERS.gatewayExtensions?.(app));
      lifecycle.add("gateway", gw.stop);
    } else if (role === "worker") {
      const w = await startWorker(app, ROLE_STARTERS.workerOptions?.(app));
      lifecycle.add("worker", w.stop);
    } else {
      const start = ROLE_STARTERS.roles[role];
      if (!start) {
        log.warn("role not available in this build", { role });
        continue;
      }
      const stop = await start(app);
      lifecycle.add(role, stop);
    }
  }

  // Roles without HTTP serve health and metrics on the admin port.
  if (!config.roles.includes("gateway")) {
    const admin = new Hono<Env>();
    healthRoutes(admin, app);
    const server = Bun.serve({ port: config.adminPort, hostname: config.httpHost, fetch: admin.fetch });
    lifecycle.add("admin-http", () => server.stop(true));
  }

  starting = false;
  log.info("notify ready", {
    roles: config.roles,
    database: config.databaseUrl ? redactUrl(config.databaseUrl) : "embedded",
    broker: config.amqpUrl ? redactUrl(config.amqpUrl) : "embedded",
    channels: [...app.channels.keys()],
    startup_ms: Math.round(performance.now() - started),
  });
  return done;
}

/**
 * CPU-only set-up the roles would do anyway (protos, the GraphQL SDL), done before the database is
 * awaited: in embedded mode PostgreSQL is still booting on its own thread meanwhile.
 */
function prepare(config: Config): void {
  if (config.roles.includes("grpc-backend") || config.grpcUrl) services();
  if (config.roles.includes("gateway")) schemaDocument();
}
