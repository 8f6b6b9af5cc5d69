/**
 * PostgreSQL access: one porsager/postgres pool per process and the migration runner.
 */
import postgres from "postgres";
import type { Logger } from "../runtime/log.ts";
import { MIGRATIONS, type Migration } from "./migrations.ts";

export type Sql = postgres.Sql<Record<string, unknown>>;

/** Arbitrary but fixed: every notify process takes this advisory lock to migrate. */
const MIGRATION_LOCK_KEY = 7_411_901_337;

export function createSql(url: string, opts: { max?: number; log?: Logger } = {}): Sql {
  return postgres(url, {
    max: opts.max ?? 10,
    idle_timeout: 30,
    connect_timeout: 5,
    // Notices (e.g. "relation already exists, skipping") are not worth a log line each.
    onnotice: () => {},
    transform: { undefined: null },
    connection: { application_name: "notify" },
  }) as Sql;
}

export interface MigrateResult {
  applied: string[];
  current: number;
}

export async function migrate(sql: Sql, log?: Logger, migrations: Migration[] = MIGRATIONS): Promise<MigrateResult> {
  const current = Math.max(0, ...migrations.map((m) => m.version));
  // Every start after the first: all applied, which one read shows without the lock and transaction
  // (migrations only ever add rows here).
  const have = await sql<{ version: number }[]>`SELECT version FROM schema_migrations`.catch(() => []);
  const seen = new Set(have.map((r) => r.version));
  if (migrations.every((m) => seen.has(m.version))) return { applied: [], current };
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
    await tx`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`;
    const done = new Set((await tx<{ version: number }[]>`SELECT version FROM schema_migrations`).map((r) => r.version));
    const applied: string[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await tx.unsafe(m.sql);
      await tx`INSERT INTO schema_migrations (version, name) VALUES (${m.version}, ${m.name})`;
      applied.push(m.name);
      log?.info("migration applied", { migration: m.name });
    }
    return { applied, current };
  });
}

/** A timestamptz column as ISO 8601 text (null stays null), the shape every API answer uses. */
export const isoTime = (d: unknown): string | null => (d instanceof Date ? d.toISOString() : ((d as string | null) ?? null));
