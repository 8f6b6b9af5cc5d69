/**
 * Opens the process's storage and queue: PostgreSQL and RabbitMQ when their URLs are set, the
 * embedded store (PGlite under NOTIFY_DATA_DIR/pg) and the table queue when not (SPEC 6). Each is
 * chosen independently, so every combination works, but only for one process running every role:
 * an embedded store belongs to one process, and the embedded queue's realtime broadcast does not
 * leave the process.
 */
import { resolve } from "node:path";
import type { App } from "../app.ts";
import { ROLES, type Config } from "../config.ts";
import { createAmqpQueue } from "../mq/amqp.ts";
import { createEmbeddedQueue } from "../mq/embedded.ts";
import type { Queue } from "../mq/queue.ts";
import type { Lifecycle } from "../runtime/lifecycle.ts";
import type { Logger } from "../runtime/log.ts";
import { redactUrl } from "../runtime/log.ts";
import { createSql, migrate, type Sql } from "../store/db.ts";
import { startEmbeddedMaintenance } from "./maintenance.ts";
import { isDataDirInUse, startEmbeddedStore, type EmbeddedStore } from "./store.ts";

/** Connections to the embedded store: one session behind them, so a few suffice to keep it busy. */
const EMBEDDED_POOL = 8;

export class EmbeddedModeError extends Error {}

export interface Storage {
  sql: Sql;
  queue: Queue;
  mode: App["mode"];
  lost?: Promise<string>;
}

/** `early`: the embedded store main.ts started for this run, if it did. */
export async function openStorage(config: Config, log: Logger, lifecycle: Lifecycle, early?: Promise<EmbeddedStore>): Promise<Storage> {
  const embeddedParts = [!config.databaseUrl && "NOTIFY_DATABASE_URL", !config.amqpUrl && "NOTIFY_AMQP_URL"].filter(Boolean);
  if (embeddedParts.length && config.roles.length !== ROLES.length) {
    throw new EmbeddedModeError(
      `--role=${config.roles.join(",")} needs ${embeddedParts.join(" and ")}: without them notify runs embedded, ` +
        "which is one process running every role (--role=all, the default)",
    );
  }
  const dataDir = resolve(config.dataDir);
  let url = config.databaseUrl;
  let store: EmbeddedStore | undefined;
  if (!url) {
    const opened = await (early ?? startEmbeddedStore({ dataDir, log })).catch((err: Error) => {
      throw isDataDirInUse(err) ? new EmbeddedModeError(err.message) : err;
    });
    lifecycle.add("embedded-postgres", () => opened.close());
    url = opened.url;
    store = opened;
  }
  const sql = createSql(url, { max: config.databaseUrl ? 20 : EMBEDDED_POOL, log });
  // With the embedded store lost there is nothing to finish: a connection still trying to reach
  // it would hold the stop for the whole timeout.
  lifecycle.add("postgres", () => sql.end({ timeout: store?.isLost ? 0 : 5 }));
  // The embedded store is created here, so it is also migrated here, whatever NOTIFY_AUTO_MIGRATE says.
  if (!config.databaseUrl) {
    await migrate(sql, log);
    const maintenance = startEmbeddedMaintenance(sql, log.child({ component: "embedded-postgres" }));
    lifecycle.add("embedded-vacuum", () => maintenance.stop());
  }
  const queue = config.amqpUrl
    ? await createAmqpQueue({ url: config.amqpUrl, log })
    : createEmbeddedQueue({ sql, log, exclusive: !config.databaseUrl });
  lifecycle.add("queue", () => queue.close());
  const mode: App["mode"] = { database: config.databaseUrl ? "postgres" : "embedded", queue: config.amqpUrl ? "amqp" : "embedded" };
  announce(config, log, mode, dataDir);
  return { sql, queue, mode, lost: store?.lost };
}

/** The start-up banner: one log line for machines, a short block on stderr for the person at the terminal. */
function announce(config: Config, log: Logger, mode: App["mode"], dataDir: string): void {
  const outbox = config.smtpUrl ? undefined : resolve(dataDir, "outbox");
  const database = mode.database === "embedded" ? `embedded PostgreSQL (PGlite) at ${resolve(dataDir, "pg")}` : redactUrl(config.databaseUrl!);
  const queue = mode.queue === "embedded" ? "embedded table queue (queue_messages, same database)" : redactUrl(config.amqpUrl!);
  const email = outbox ? `outbox ${outbox} (NOTIFY_SMTP_URL unset)` : redactUrl(config.smtpUrl!);
  log.info("notify storage", { database_mode: mode.database, queue_mode: mode.queue, database, queue, email, data_dir: dataDir });
  if (mode.database === "embedded" || mode.queue === "embedded") {
    if (config.logLevel === "silent") return;
    process.stderr.write(
      `notify: embedded mode — one process runs every role\n` +
        `  database  ${database}\n` +
        `  queue     ${queue}\n` +
        `  e-mail    ${email}\n` +
        `  set NOTIFY_DATABASE_URL / NOTIFY_AMQP_URL / NOTIFY_SMTP_URL to use servers instead\n`,
    );
  }
}
