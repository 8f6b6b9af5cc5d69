/**
 * The data commands of the CLI: `notify migrate`, `notify outbox`, `notify export [file]`,
 * `notify import <file>` (and the database behind `notify audit verify`). They work on
 * NOTIFY_DATABASE_URL when set, else on the embedded store under NOTIFY_DATA_DIR (which must not be
 * in use by a running notify: it is locked to one process).
 */
import { createWriteStream } from "node:fs";
import type { Config } from "../config.ts";
import type { Logger } from "../runtime/log.ts";
import { createSql, migrate, type Sql } from "../store/db.ts";
import { runOutbox } from "./outbox-cli.ts";
import { isDataDirInUse, startEmbeddedStore } from "./store.ts";
import { exportData, importData, readLines, TransferError } from "./transfer.ts";

export { runOutbox };

/** A PostgreSQL URL for `fn`: NOTIFY_DATABASE_URL, else the embedded store, opened for the call. */
export async function withDatabaseUrl<T>(config: Config, log: Logger, fn: (url: string) => Promise<T>): Promise<T> {
  const store = config.databaseUrl ? undefined : await startEmbeddedStore({ dataDir: config.dataDir, log });
  try {
    return await fn(config.databaseUrl ?? store!.url);
  } finally {
    await store?.close();
  }
}

async function withDatabase<T>(config: Config, log: Logger, fn: (sql: Sql) => Promise<T>): Promise<T> {
  return withDatabaseUrl(config, log, async (url) => {
    const sql = createSql(url, { max: 1 });
    try {
      return await fn(sql);
    } finally {
      await sql.end({ timeout: 5 });
    }
  });
}

export async function runMigrate(config: Config, log: Logger): Promise<number> {
  try {
    const r = await withDatabase(config, log, (sql) => migrate(sql, log));
    const where = config.databaseUrl ? "" : ` in the embedded store under ${config.dataDir}`;
    process.stdout.write(`migrations: ${r.applied.length ? `applied ${r.applied.join(", ")}` : "up to date"} (schema version ${r.current})${where}\n`);
    return 0;
  } catch (err) {
    return fail(err);
  }
}

export async function runExport(config: Config, log: Logger, file: string | undefined): Promise<number> {
  const toStdout = !file || file === "-";
  const out = toStdout ? undefined : createWriteStream(file, { flags: "wx" });
  const write = (s: string) =>
    out
      ? new Promise<void>((resolve, reject) => (out.write(s) ? resolve() : out.once("drain", resolve).once("error", reject)))
      : void process.stdout.write(s);
  try {
    const counts = await withDatabase(config, log, (sql) => exportData(sql, write));
    if (out) await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    process.stderr.write(`notify: exported ${total} rows from ${Object.keys(counts).length} tables${toStdout ? "" : ` to ${file}`}\n`);
    return 0;
  } catch (err) {
    return fail(err);
  }
}

export async function runImport(config: Config, log: Logger, file: string | undefined): Promise<number> {
  if (!file) {
    process.stderr.write("notify: import needs a file (or - for standard input)\n");
    return 2;
  }
  const input = file === "-" ? Bun.stdin.stream() : Bun.file(file).stream();
  try {
    const counts = await withDatabase(config, log, (sql) => importData(sql, readLines(input)));
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    process.stderr.write(`notify: imported ${total} rows into ${Object.keys(counts).length} tables (${config.databaseUrl ? "NOTIFY_DATABASE_URL" : "embedded store"})\n`);
    return 0;
  } catch (err) {
    return fail(err);
  }
}

function fail(err: unknown): number {
  if (err instanceof TransferError || isDataDirInUse(err) || (err as NodeJS.ErrnoException).code === "EEXIST" || (err as NodeJS.ErrnoException).code === "ENOENT") {
    process.stderr.write(`notify: ${(err as Error).message}\n`);
    return 2;
  }
  throw err;
}
