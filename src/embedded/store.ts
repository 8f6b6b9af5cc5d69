/**
 * Embedded storage (SPEC 6): PGlite — PostgreSQL compiled to wasm — persisted under
 * NOTIFY_DATA_DIR/pg, running on its own thread (pg-thread.ts) and served on a loopback socket, so
 * the same postgres.js repositories and the same SQL migrations run unchanged. One process owns a
 * data directory at a time: a second one would corrupt it, so it is refused.
 *
 * This module stays light (no PGlite import): main.ts starts the store before it loads the rest of
 * notify, so PostgreSQL boots while the main thread loads modules, and hands it to the run.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Logger } from "../runtime/log.ts";
import { entryPoint } from "../runtime/entry-point.ts";

export interface EmbeddedStore {
  /** postgres:// URL for createSql (loopback, this process only). */
  url: string;
  /** Absolute path of the PostgreSQL data directory. */
  dir: string;
  /** True when this start created the database. */
  created: boolean;
  /**
   * Settles with the reason if PostgreSQL is lost after it started (its thread failed or exited,
   * or PGlite stopped answering); never while it runs. A process without its database cannot do
   * anything useful: the run stops and exits 1, so a supervisor restarts it (PostgreSQL recovers
   * from its WAL; accepted events were committed).
   */
  lost: Promise<string>;
  /** Whether `lost` has settled, for decisions that cannot wait (how long a stop waits). */
  readonly isLost: boolean;
  /** The PostgreSQL thread (tests end it to stand for a crash). */
  thread: Worker;
  close(): Promise<void>;
}

export class DataDirInUseError extends Error {
  override name = "DataDirInUseError";
}

/** By name, not instanceof: main.ts and the commands are separate bundles with a class each. */
export function isDataDirInUse(err: unknown): boolean {
  return err instanceof Error && err.name === "DataDirInUseError";
}

/** Messages between this module and the PostgreSQL thread. */
export type ThreadRequest = { type: "start"; dir: string; initdb: boolean } | { type: "close" };
export type ThreadReply =
  | { type: "log"; level: "debug" | "info" | "warn" | "error"; msg: string; fields: Record<string, unknown> }
  | { type: "ready"; url: string; ms: number }
  | { type: "failed"; message: string }
  | { type: "closed" };

const LOCK_FILE = "notify.pid";
const THREAD_ENTRY = entryPoint("embedded/pg-thread.ts", new URL("./pg-thread.ts", import.meta.url));
const CLOSE_TIMEOUT_MS = 10_000;

export function startEmbeddedStore(opts: { dataDir: string; log: Logger }): Promise<EmbeddedStore> {
  const root = resolve(opts.dataDir);
  const dir = join(root, "pg");
  let unlock: () => void;
  try {
    mkdirSync(dir, { recursive: true });
    unlock = lockDataDir(root);
  } catch (err) {
    return Promise.reject(err);
  }
  const created = !existsSync(join(dir, "PG_VERSION"));
  const log = opts.log.child({ component: "embedded-postgres" });
  const worker = new Worker(THREAD_ENTRY);
  let onClosed: (() => void) | undefined;
  let closing: Promise<void> | undefined;
  let isLost = false;
  let markLost!: (reason: string) => void;
  const lost = new Promise<string>((resolve) => (markLost = resolve));
  return new Promise<EmbeddedStore>((resolveStore, reject) => {
    let ready = false;
    const fail = (message: string) => {
      if (ready) {
        if (closing) return;
        log.error("embedded postgres failed", { err: message });
        isLost = true;
        markLost(message);
        return;
      }
      worker.terminate();
      unlock();
      reject(new Error(`embedded postgres: ${message}`));
    };
    worker.onerror = (e) => fail(e.message);
    worker.addEventListener("close", () => fail("its thread exited"));
    worker.onmessage = (e: MessageEvent<ThreadReply>) => {
      const m = e.data;
      if (m.type === "log") log[m.level](m.msg, m.fields);
      else if (m.type === "failed") fail(m.message);
      else if (m.type === "closed") onClosed?.();
      else if (m.type === "ready") {
        ready = true;
        log.debug("embedded postgres started", { dir, created, duration_ms: m.ms });
        resolveStore({
          url: m.url,
          dir,
          created,
          lost,
          get isLost() {
            return isLost;
          },
          thread: worker,
          close: () =>
            (closing ??= new Promise<void>((done) => {
              // A lost thread will not answer "closed": no point waiting for it.
              const timer = setTimeout(() => onClosed?.(), isLost ? 0 : CLOSE_TIMEOUT_MS);
              onClosed = () => {
                clearTimeout(timer);
                worker.terminate();
                unlock();
                done();
              };
              worker.postMessage({ type: "close" } satisfies ThreadRequest);
            })),
        });
      }
    };
    worker.postMessage({ type: "start", dir, initdb: created } satisfies ThreadRequest);
  });
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
