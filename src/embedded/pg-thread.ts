/**
 * The embedded PostgreSQL thread (a Worker; its own entry point in the build). PGlite runs here,
 * off the thread that serves HTTP and runs the roles, and answers on a loopback socket
 * (pg-server.ts): SQL no longer competes with request handling for one thread, and at start-up
 * PostgreSQL boots while the main thread is still loading notify's modules.
 * Protocol with store.ts: one "start", then "close"; replies "log", "ready" or "failed", "closed".
 */
import { PGlite } from "@electric-sql/pglite";
import type { Logger } from "../runtime/log.ts";
import { servePglite, type PgServer } from "./pg-server.ts";
import { loadPgliteAssets } from "./pglite-assets.ts";
import type { ThreadReply, ThreadRequest } from "./store.ts";

declare const self: Worker;
/**
 * PostgreSQL zeroes its shared buffers at boot; at the default 128 MB that alone took ≈ 60 ms of
 * start-up (and 128 MB of memory). 32 MB holds an edge host's working set; the OS page cache holds
 * the rest of the data directory.
 */
const START_PARAMS = ["-c", "shared_buffers=32MB"];
const reply = (m: ThreadReply) => self.postMessage(m);

/** Log records go to the main thread's logger (its level, fields and redaction). */
function threadLog(fields: Record<string, unknown> = {}): Logger {
  const at =
    (level: "debug" | "info" | "warn" | "error") =>
    (msg: string, f?: Record<string, unknown>) =>
      reply({ type: "log", level, msg, fields: { ...fields, ...f } });
  return { level: "debug", debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error"), child: (f) => threadLog({ ...fields, ...f }) };
}

/**
 * PGlite as a wire-protocol backend only: notify talks to it through pg-server.ts, never through
 * PGlite's own query() and its type parsers, so the pg_type scan PGlite runs at start to build array
 * parsers (20–30 ms on a cold catalog, on the start-up critical path) is skipped.
 */
class WirePglite extends PGlite {
  override async _initArrayTypes(): Promise<void> {}
}

let db: PGlite | undefined;
let server: PgServer | undefined;

self.onmessage = async (e: MessageEvent<ThreadRequest>) => {
  const m = e.data;
  if (m.type === "start") {
    try {
      const started = performance.now();
      const assets = await loadPgliteAssets({ initdb: m.initdb });
      db = new WirePglite({ dataDir: m.dir, ...assets, startParams: [...PGlite.defaultStartParams, ...START_PARAMS] });
      await db.waitReady;
      server = await servePglite(db, threadLog(), (err) => reply({ type: "failed", message: `PGlite stopped answering: ${err.message}` }));
      reply({ type: "ready", url: server.url, ms: Math.round(performance.now() - started) });
    } catch (err) {
      reply({ type: "failed", message: describe(err) });
    }
  } else if (m.type === "close") {
    try {
      await server?.close();
      await db?.close();
    } finally {
      reply({ type: "closed" });
    }
  }
};

/** Emscripten's file-system errors are not Error instances: name their errno rather than "[object Object]". */
function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === "object" && err && "errno" in err) return `file system error (errno ${String(err.errno)})`;
  return String(err);
}
