/**
 * User preferences (table user_preferences): opt-outs per category × channel and quiet hours.
 * The worker reads them for every recipient, so concurrent lookups share one query (group read).
 */
import type { OptOut, PreferencesInput, QuietHours } from "../schemas/preferences.ts";
import { createBatcher } from "./batcher.ts";
import type { Sql } from "./db.ts";

export interface Preferences {
  opt_outs: OptOut[];
  quiet_hours: QuietHours | null;
  updated_at: string | null;
}

export const DEFAULT_PREFERENCES: Preferences = { opt_outs: [], quiet_hours: null, updated_at: null };

function toPreferences(row: Record<string, unknown>): Preferences {
  return {
    opt_outs: (row.opt_outs as OptOut[]) ?? [],
    quiet_hours: (row.quiet_hours as QuietHours | null) ?? null,
    updated_at: row.updated_at instanceof Date ? row.updated_at.toISOString() : ((row.updated_at as string) ?? null),
  };
}

export function createPreferenceRepo(sql: Sql) {
  const reader = createBatcher<string, Preferences>(
    async (ids) => {
      const rows = await sql`SELECT * FROM user_preferences WHERE user_id = ANY(${[...new Set(ids)]}::text[])`;
      const byId = new Map(rows.map((r) => [String(r.user_id), toPreferences(r)]));
      return ids.map((id) => byId.get(id) ?? DEFAULT_PREFERENCES);
    },
    { maxBatch: 500, maxInFlight: 1 },
  );

  return {
    /** Defaults when the user never set any. */
    get: (userId: string): Promise<Preferences> => reader.submit(userId),

    async put(userId: string, input: PreferencesInput): Promise<Preferences> {
      const [row] = await sql`
        INSERT INTO user_preferences (user_id, opt_outs, quiet_hours)
        VALUES (${userId}, ${sql.json(input.opt_outs as never)}, ${input.quiet_hours ? sql.json(input.quiet_hours as never) : null})
        ON CONFLICT (user_id) DO UPDATE SET opt_outs = EXCLUDED.opt_outs, quiet_hours = EXCLUDED.quiet_hours, updated_at = now()
        RETURNING *`;
      return toPreferences(row!);
    },

    /** Adds one opt-out (idempotent), keeping everything else: the unsubscribe link's write. */
    async addOptOut(userId: string, optOut: OptOut): Promise<void> {
      const entry = sql.json([optOut] as never);
      await sql`
        INSERT INTO user_preferences (user_id, opt_outs) VALUES (${userId}, ${entry})
        ON CONFLICT (user_id) DO UPDATE SET updated_at = now(),
          opt_outs = CASE WHEN user_preferences.opt_outs @> ${entry} THEN user_preferences.opt_outs
                          ELSE user_preferences.opt_outs || ${entry} END`;
    },
  };
}

export type PreferenceRepo = ReturnType<typeof createPreferenceRepo>;
