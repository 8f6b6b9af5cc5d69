/**
 * Event rules (table event_rules). `find` is cached briefly per process: it sits on the hot path
 * of POST /events. A change made through this process is seen at once; other gateways see it
 * within RULE_CACHE_MS.
 */
import type { RuleInput } from "../schemas/rule.ts";
import type { Sql } from "./db.ts";

export interface StoredRule extends RuleInput {
  event: string;
  created_at: string;
  updated_at: string;
}

// Short: an admin changing a rule expects it to apply within a couple of seconds.
export const RULE_CACHE_MS = 2_000;
const CACHE_MAX = 10_000;

const iso = (d: unknown) => (d instanceof Date ? d.toISOString() : String(d));

function toRule(row: Record<string, unknown>): StoredRule {
  const r: StoredRule = {
    event: String(row.event),
    channels: row.channels as StoredRule["channels"],
    data_sources: (row.data_sources as StoredRule["data_sources"]) ?? [],
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
  if (row.template) r.template = String(row.template);
  if (row.category) r.category = String(row.category);
  if (row.priority) r.priority = row.priority as StoredRule["priority"];
  if (row.webhook_url) r.webhook_url = String(row.webhook_url);
  return r;
}

export function createRuleRepo(sql: Sql, opts: { cacheMs?: number; now?: () => number } = {}) {
  const cacheMs = opts.cacheMs ?? RULE_CACHE_MS;
  const now = opts.now ?? Date.now;
  const cache = new Map<string, { at: number; rule: StoredRule | undefined }>();

  async function get(event: string): Promise<StoredRule | undefined> {
    const [row] = await sql`SELECT * FROM event_rules WHERE event = ${event}`;
    return row ? toRule(row) : undefined;
  }

  return {
    get,

    /** Cached lookup for event acceptance (negative answers are cached too). */
    async find(event: string): Promise<StoredRule | undefined> {
      const hit = cache.get(event);
      if (hit && now() - hit.at < cacheMs) return hit.rule;
      const rule = await get(event);
      if (cache.size >= CACHE_MAX) cache.clear();
      cache.set(event, { at: now(), rule });
      return rule;
    },

    async put(event: string, input: RuleInput): Promise<{ rule: StoredRule; created: boolean }> {
      const [row] = await sql`
        INSERT INTO event_rules (event, template, channels, category, priority, webhook_url, data_sources)
        VALUES (${event}, ${input.template ?? null}, ${input.channels}::text[], ${input.category ?? null}, ${input.priority ?? null},
                ${input.webhook_url ?? null}, ${sql.json((input.data_sources ?? []) as never)})
        ON CONFLICT (event) DO UPDATE SET template = EXCLUDED.template, channels = EXCLUDED.channels, category = EXCLUDED.category,
          priority = EXCLUDED.priority, webhook_url = EXCLUDED.webhook_url, data_sources = EXCLUDED.data_sources, updated_at = now()
        RETURNING *, (xmax = 0) AS inserted`;
      cache.delete(event);
      return { rule: toRule(row!), created: row!.inserted === true };
    },

    async remove(event: string): Promise<StoredRule | undefined> {
      const [row] = await sql`DELETE FROM event_rules WHERE event = ${event} RETURNING *`;
      cache.delete(event);
      return row ? toRule(row) : undefined;
    },

    async list(limit: number, after?: string): Promise<StoredRule[]> {
      const rows = after
        ? await sql`SELECT * FROM event_rules WHERE event > ${after} ORDER BY event LIMIT ${limit}`
        : await sql`SELECT * FROM event_rules ORDER BY event LIMIT ${limit}`;
      return rows.map(toRule);
    },
  };
}

export type RuleRepo = ReturnType<typeof createRuleRepo>;
