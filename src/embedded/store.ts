/**
 * Embedded storage (SPEC 6): PGlite — PostgreSQL compiled to wasm, running in this process —
 * persisted under NOTIFY_DATA_DIR/pg and served on a loopback socket (pg-server.ts), so the same
 * postgres.js repositories and the same SQL migrations run unchanged. One process owns a data
 * directory at a time: a second one would corrupt it, so it is refused.
 */
import { PGlite } from "@electric-sql/pglite";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Logger } from "../runtime/log.ts";
import { loadPgliteAssets } from "./pglite-assets.ts";
import { servePglite } from "./pg-server.ts";

export interface EmbeddedStore {
  /** postgres:// URL for createSql (loopback, this process only). */
  url: string;
  /** Absolute path of the PostgreSQL data directory. */
  dir: string;
  /** True when this start created the database. */
  created: boolean;
  close(): Promise<void>;
}

export class DataDirInUseError extends Error {}

const LOCK_FILE = "notify.pid";

export async function startEmbeddedStore(opts: { dataDir: string; log: Logger }): Promise<EmbeddedStore> {
  const root = resolve(opts.dataDir);
  const dir = join(root, "pg");
  mkdirSync(dir, { recursive: true });
  const unlock = lockDataDir(root);
  try {
    const created = !existsSync(join(dir, "PG_VERSION"));
    const started = performance.now();
    const assets = await loadPgliteAssets({ initdb: created });
    const db = await PGlite.create({ dataDir: dir, ...assets });
    const server = await servePglite(db, opts.log.child({ component: "embedded-postgres" }));
    opts.log.debug("embedded postgres started", { dir, created, duration_ms: Math.round(performance.now() - started) });
    return {
      url: server.url,
      dir,
      created,
      close: async () => {
        await server.close();
        await db.close();
        unlock();
      },
    };
  } catch (err) {
    unlock();
    throw err;
  }
}

/** A pid file: refused while the pid it names is alive; a stale one (kill -9) is taken over. */
function lockDataDir(root: string): () => void {
  const path = join(root, LOCK_FILE);
  if (existsSync(path)) {
    const pid = Number(readFileSync(path, "utf8").trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
      throw new DataDirInUseError(`data directory ${root} is in use by process ${pid} (embedded mode runs one process per data directory)`);
    }
  }
  writeFileSync(path, `${process.pid}\n`);
  return () => {
    try {
      if (readFileSync(path, "utf8").trim() === String(process.pid)) rmSync(path);
    } catch {
      // already gone
    }
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
