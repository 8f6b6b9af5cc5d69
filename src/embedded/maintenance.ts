/**
 * Vacuum for the embedded store. PGlite runs PostgreSQL in single-user mode, which has no
 * autovacuum: without this, every queue message and every updated delivery would leave a dead row
 * behind for good, and the hot tables (queue_messages above all: a row in and out per message) would
 * grow and slow down for as long as the process runs. PostgreSQL servers vacuum themselves.
 */
import type { Logger } from "../runtime/log.ts";
import type { Sql } from "../store/db.ts";

/** Tables rewritten on every message or delivery: vacuumed often (a few ms each when kept small). */
const HOT_TABLES = ["queue_messages", "deliveries", "notifications"] as const;
const HOT_EVERY_MS = 10_000;
/** The whole database, with fresh planner statistics. */
const ALL_EVERY_MS = 10 * 60_000;

export interface Maintenance {
  /** One pass now (hot tables; `all`: the whole database with ANALYZE). */
  run(all?: boolean): Promise<void>;
  stop(): Promise<void>;
}

export function startEmbeddedMaintenance(sql: Sql, log: Logger, opts: { hotEveryMs?: number; allEveryMs?: number } = {}): Maintenance {
  let running: Promise<void> | undefined;
  let stopped = false;
  const run = (all = false): Promise<void> =>
    (running ??= (async () => {
      const started = performance.now();
      try {
        if (all) await sql`VACUUM (ANALYZE)`;
        else for (const t of HOT_TABLES) await sql.unsafe(`VACUUM (ANALYZE) ${t}`);
        log.debug("embedded vacuum", { scope: all ? "database" : "hot tables", duration_ms: Math.round(performance.now() - started) });
      } catch (err) {
        if (!stopped) log.warn("embedded vacuum failed; next pass retries", { err: (err as Error).message });
      } finally {
        running = undefined;
      }
    })());
  const hot = setInterval(() => void run(false), opts.hotEveryMs ?? HOT_EVERY_MS);
  const all = setInterval(() => void run(true), opts.allEveryMs ?? ALL_EVERY_MS);
  hot.unref();
  all.unref();
  return {
    run,
    async stop() {
      stopped = true;
      clearInterval(hot);
      clearInterval(all);
      await running;
    },
  };
}
