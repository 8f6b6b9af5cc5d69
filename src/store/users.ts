/**
 * The recipient directory (table users).
 */
import type { Sql } from "./db.ts";
import { createBatcher } from "./batcher.ts";

export interface User {
  id: string;
  email: string | null;
  phone: string | null;
  name: string | null;
  locale: string | null;
  timezone: string | null;
  telegram_chat_id: string | null;
  attributes: Record<string, unknown>;
  created_at?: string;
  updated_at?: string;
}

export type UserInput = Partial<Omit<User, "id" | "created_at" | "updated_at">>;

const COLUMNS = ["email", "phone", "name", "locale", "timezone", "telegram_chat_id"] as const;

export function toUser(row: Record<string, unknown>): User {
  return {
    id: String(row.id),
    email: (row.email as string) ?? null,
    phone: (row.phone as string) ?? null,
    name: (row.name as string) ?? null,
    locale: (row.locale as string) ?? null,
    timezone: (row.timezone as string) ?? null,
    telegram_chat_id: (row.telegram_chat_id as string) ?? null,
    attributes: (row.attributes as Record<string, unknown>) ?? {},
    created_at: row.created_at instanceof Date ? row.created_at.toISOString() : (row.created_at as string | undefined),
    updated_at: row.updated_at instanceof Date ? row.updated_at.toISOString() : (row.updated_at as string | undefined),
  };
}

/** Later fields win, absent ones keep earlier values; attributes merge. */
function mergeInline(users: Array<{ id: string } & UserInput>): Array<{ id: string } & UserInput> {
  const byId = new Map<string, { id: string } & UserInput>();
  for (const u of users) {
    const prev = byId.get(u.id);
    if (!prev) byId.set(u.id, { ...u });
    else {
      for (const k of COLUMNS) if (u[k] !== undefined && u[k] !== null) (prev as Record<string, unknown>)[k] = u[k];
      if (u.attributes) prev.attributes = { ...prev.attributes, ...u.attributes };
    }
  }
  return [...byId.values()];
}

/** The users row for an input: every column present, unknown ones NULL. */
function userRow(id: string, u: UserInput) {
  return {
    id,
    email: u.email ?? null,
    phone: u.phone ?? null,
    name: u.name ?? null,
    locale: u.locale ?? null,
    timezone: u.timezone ?? null,
    telegram_chat_id: u.telegram_chat_id ?? null,
    attributes: u.attributes ?? {},
  };
}

export function createUserRepo(sql: Sql) {
  const upserter = createBatcher<Array<{ id: string } & UserInput>, Map<string, User>>(
    async (calls) => {
      const rows = mergeInline(calls.flat()).map((u) => userRow(u.id, u));
      const ids = rows.map((r) => r.id);
      // The WHERE skips rows that would not change: a recipient named in every event is not
      // rewritten every time. The same statement reads the entries back (so the worker needs no
      // second lookup for inline recipients): the rows it wrote from RETURNING, the others as
      // they were, which is as they are, since it did not change them.
      const stored = await sql`
        WITH up AS (
          INSERT INTO users ${sql(rows as Record<string, unknown>[], "id", ...COLUMNS, "attributes")}
          ON CONFLICT (id) DO UPDATE SET
            email = COALESCE(EXCLUDED.email, users.email),
            phone = COALESCE(EXCLUDED.phone, users.phone),
            name = COALESCE(EXCLUDED.name, users.name),
            locale = COALESCE(EXCLUDED.locale, users.locale),
            timezone = COALESCE(EXCLUDED.timezone, users.timezone),
            telegram_chat_id = COALESCE(EXCLUDED.telegram_chat_id, users.telegram_chat_id),
            attributes = users.attributes || EXCLUDED.attributes,
            updated_at = now()
          WHERE (users.email, users.phone, users.name, users.locale, users.timezone, users.telegram_chat_id, users.attributes)
            IS DISTINCT FROM (COALESCE(EXCLUDED.email, users.email), COALESCE(EXCLUDED.phone, users.phone), COALESCE(EXCLUDED.name, users.name),
                              COALESCE(EXCLUDED.locale, users.locale), COALESCE(EXCLUDED.timezone, users.timezone),
                              COALESCE(EXCLUDED.telegram_chat_id, users.telegram_chat_id), users.attributes || EXCLUDED.attributes)
          RETURNING *)
        SELECT * FROM up
        UNION ALL
        SELECT * FROM users WHERE id = ANY(${ids}::text[]) AND id NOT IN (SELECT id FROM up)`;
      const all = new Map(stored.map((r) => [String(r.id), toUser(r)]));
      return calls.map(() => all);
    },
    { maxBatch: 100, maxInFlight: 1 },
  );
  const reader = createBatcher<string[], Map<string, User>>(
    async (calls) => {
      const rows = await sql`SELECT * FROM users WHERE id = ANY(${[...new Set(calls.flat())]}::text[])`;
      const all = new Map(rows.map((r) => [String(r.id), toUser(r)]));
      return calls.map(() => all);
    },
    { maxBatch: 100, maxInFlight: 1 },
  );
  return {
    async get(id: string): Promise<User | undefined> {
      const [row] = await sql`SELECT * FROM users WHERE id = ${id}`;
      return row ? toUser(row) : undefined;
    },

    /** Lookups made at the same time (one per event in progress) share one query (group read). */
    async getMany(ids: string[]): Promise<Map<string, User>> {
      if (ids.length === 0) return new Map();
      const found = await reader.submit(ids);
      return new Map(ids.flatMap((id) => (found.has(id) ? [[id, found.get(id)!] as const] : [])));
    },

    /** Full replace (PUT semantics). Returns the stored user and whether it was created. */
    async put(id: string, input: UserInput): Promise<{ user: User; created: boolean; before?: User }> {
      return sql.begin(async (tx) => {
        const [prev] = await tx`SELECT * FROM users WHERE id = ${id} FOR UPDATE`;
        const [row] = await tx`
          INSERT INTO users ${tx(userRow(id, input) as Record<string, unknown>)}
          ON CONFLICT (id) DO UPDATE SET
            email = EXCLUDED.email, phone = EXCLUDED.phone, name = EXCLUDED.name, locale = EXCLUDED.locale,
            timezone = EXCLUDED.timezone, telegram_chat_id = EXCLUDED.telegram_chat_id,
            attributes = EXCLUDED.attributes, updated_at = now()
          RETURNING *`;
        return { user: toUser(row!), created: !prev, before: prev ? toUser(prev) : undefined };
      });
    },

    /**
     * Merges inline recipients from events into the directory: fields given overwrite, fields
     * absent are kept. Calls made at the same time share one statement; the same id twice (in one
     * event or across events) is merged first, since one INSERT cannot update a row twice.
     * Returns these users' entries as stored afterwards.
     */
    async upsertInline(users: Array<{ id: string } & UserInput>): Promise<Map<string, User>> {
      if (users.length === 0) return new Map();
      const all = await upserter.submit(users);
      return new Map(users.flatMap((u) => (all.has(u.id) ? [[u.id, all.get(u.id)!] as const] : [])));
    },

    async remove(id: string): Promise<User | undefined> {
      const [row] = await sql`DELETE FROM users WHERE id = ${id} RETURNING *`;
      return row ? toUser(row) : undefined;
    },

    /** Keyset pagination by id. */
    async list(limit: number, after?: string): Promise<User[]> {
      const rows = after
        ? await sql`SELECT * FROM users WHERE id > ${after} ORDER BY id LIMIT ${limit}`
        : await sql`SELECT * FROM users ORDER BY id LIMIT ${limit}`;
      return rows.map(toUser);
    },
  };
}

export type UserRepo = ReturnType<typeof createUserRepo>;
