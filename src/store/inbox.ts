/**
 * The in-app inbox (table inbox_items). Every query is scoped by user id: a guessed item id of
 * another user matches nothing, exactly like an id that does not exist.
 */
import type { Sql } from "./db.ts";
import { isUuid } from "./notifications.ts";

export interface InboxItem {
  id: string;
  event: string;
  title: string | null;
  body: string | null;
  data: Record<string, unknown>;
  read: boolean;
  archived: boolean;
  created_at: string;
}

/** An item with its per-user position, for cursors and catch-up. */
export interface InboxRow extends InboxItem {
  user_id: string;
  seq: number;
  notification_id: string | null;
}

export interface NewInboxItem {
  id: string;
  user_id: string;
  notification_id: string | null;
  event: string;
  title: string | null;
  body: string | null;
  /** Undefined: the event's data, read from the notification in the same statement. */
  data?: Record<string, unknown>;
}

/** Namespace of the per-user advisory lock (the first key of pg_advisory_xact_lock(int, int)). */
const INBOX_LOCK_SPACE = 4;

export function toInboxRow(row: Record<string, unknown>): InboxRow {
  return {
    id: String(row.id),
    user_id: String(row.user_id),
    seq: Number(row.seq),
    notification_id: (row.notification_id as string) ?? null,
    event: String(row.event),
    title: (row.title as string) ?? null,
    body: (row.body as string) ?? null,
    data: (row.data as Record<string, unknown>) ?? {},
    read: row.read_at != null,
    archived: row.archived_at != null,
    created_at: row.created_at instanceof Date ? row.created_at.toISOString() : String(row.created_at),
  };
}

/** The public shape: no internal ordering or ownership fields. */
export function inboxView(r: InboxRow): InboxItem {
  return { id: r.id, event: r.event, title: r.title, body: r.body, data: r.data, read: r.read, archived: r.archived, created_at: r.created_at };
}

export function createInboxRepo(sql: Sql) {
  return {
    /**
     * Stores items unless one with the same id exists (then the existing one is returned). Under
     * per-user advisory locks, taken in one fixed order so two batches cannot deadlock, so that seq
     * order is commit order. `beforeCommit` runs while the locks are held (the realtime
     * announcements, so a user's announcements leave in seq order); if it throws, nothing is
     * stored. One transaction for the whole batch: the worker's concurrent in-app sends share it.
     */
    async insertMany(items: NewInboxItem[], beforeCommit?: (rows: InboxRow[]) => Promise<void>): Promise<Map<string, InboxRow>> {
      const unique = [...new Map(items.map((i) => [i.id, i])).values()];
      if (unique.length === 0) return new Map();
      return sql.begin(async (tx) => {
        const users = [...new Set(unique.map((i) => i.user_id))];
        await tx`SELECT pg_advisory_xact_lock(${INBOX_LOCK_SPACE}, h) FROM (SELECT DISTINCT hashtext(u) AS h FROM unnest(${users}::text[]) AS u ORDER BY 1) AS s`;
        const inserted = await tx`
          WITH input AS (
            SELECT * FROM unnest(${unique.map((i) => i.id)}::uuid[], ${unique.map((i) => i.user_id)}::text[], ${unique.map((i) => i.notification_id)}::uuid[],
                                 ${unique.map((i) => i.event)}::text[], ${unique.map((i) => i.title)}::text[], ${unique.map((i) => i.body)}::text[],
                                 ${unique.map((i) => (i.data === undefined ? null : JSON.stringify(i.data)))}::text[])
                     WITH ORDINALITY AS t(id, user_id, nid, event, title, body, data, ord)
          ), fresh AS (
            SELECT i.* FROM input i WHERE NOT EXISTS (SELECT 1 FROM inbox_items x WHERE x.id = i.id)
          ), heads AS (
            SELECT u AS user_id, (SELECT coalesce(max(seq), 0) FROM inbox_items WHERE user_id = u) AS head
            FROM (SELECT DISTINCT user_id AS u FROM fresh) AS s
          )
          INSERT INTO inbox_items (id, user_id, seq, notification_id, event, title, body, data)
          SELECT f.id, f.user_id, h.head + row_number() OVER (PARTITION BY f.user_id ORDER BY f.ord), f.nid, f.event, f.title, f.body,
                 coalesce(f.data::jsonb, (SELECT n.payload->'data' FROM notifications n WHERE n.id = f.nid), '{}'::jsonb)
          FROM fresh f JOIN heads h USING (user_id)
          ORDER BY f.user_id, f.ord
          ON CONFLICT (id) DO NOTHING
          RETURNING *`;
        const rows = new Map(inserted.map((r) => [String(r.id), toInboxRow(r)]));
        const existing = unique.filter((i) => !rows.has(i.id)).map((i) => i.id);
        if (existing.length) for (const r of await tx`SELECT * FROM inbox_items WHERE id = ANY(${existing}::uuid[])`) rows.set(String(r.id), toInboxRow(r));
        // Announcements in the order the items came, which per user is seq order.
        await beforeCommit?.(unique.flatMap((i) => rows.get(i.id) ?? []));
        return rows;
      });
    },

    async get(userId: string, id: string): Promise<InboxRow | undefined> {
      if (!isUuid(id)) return undefined;
      const [row] = await sql`SELECT * FROM inbox_items WHERE user_id = ${userId} AND id = ${id}`;
      return row ? toInboxRow(row) : undefined;
    },

    /** Newest first; `beforeSeq` continues a page. Archived items only when asked for. */
    async list(userId: string, opts: { limit: number; beforeSeq?: number; archived?: boolean }): Promise<InboxRow[]> {
      const rows = await sql`
        SELECT * FROM inbox_items
        WHERE user_id = ${userId}
          AND ${opts.archived ? sql`archived_at IS NOT NULL` : sql`archived_at IS NULL`}
          ${opts.beforeSeq !== undefined ? sql`AND seq < ${opts.beforeSeq}` : sql``}
        ORDER BY seq DESC LIMIT ${opts.limit}`;
      return rows.map(toInboxRow);
    },

    /** Oldest first after `afterSeq`: what a reconnecting client missed, in order (archived included: it was delivered). */
    async listSince(userId: string, afterSeq: number, limit: number): Promise<InboxRow[]> {
      const rows = await sql`SELECT * FROM inbox_items WHERE user_id = ${userId} AND seq > ${afterSeq} ORDER BY seq LIMIT ${limit}`;
      return rows.map(toInboxRow);
    },

    async headSeq(userId: string): Promise<number> {
      const [row] = await sql`SELECT coalesce(max(seq), 0) AS seq FROM inbox_items WHERE user_id = ${userId}`;
      return Number(row!.seq);
    },

    async unreadCount(userId: string): Promise<number> {
      const [row] = await sql`SELECT count(*)::int AS n FROM inbox_items WHERE user_id = ${userId} AND read_at IS NULL AND archived_at IS NULL`;
      return Number(row!.n);
    },

    /** Returns the row (read) or undefined when the user has no such item; `changed` when it was unread. */
    async markRead(userId: string, id: string): Promise<{ row: InboxRow; changed: boolean } | undefined> {
      if (!isUuid(id)) return undefined;
      const [row] = await sql`
        WITH prev AS (SELECT id, read_at FROM inbox_items WHERE user_id = ${userId} AND id = ${id})
        UPDATE inbox_items i SET read_at = coalesce(i.read_at, now())
        FROM prev WHERE i.id = prev.id
        RETURNING i.*, prev.read_at IS NULL AS changed`;
      return row ? { row: toInboxRow(row), changed: Boolean(row.changed) } : undefined;
    },

    async markAllRead(userId: string): Promise<number> {
      const r = await sql`UPDATE inbox_items SET read_at = now() WHERE user_id = ${userId} AND read_at IS NULL AND archived_at IS NULL`;
      return r.count;
    },

    async archive(userId: string, id: string): Promise<{ row: InboxRow; changed: boolean } | undefined> {
      if (!isUuid(id)) return undefined;
      const [row] = await sql`
        WITH prev AS (SELECT id, archived_at FROM inbox_items WHERE user_id = ${userId} AND id = ${id})
        UPDATE inbox_items i SET archived_at = coalesce(i.archived_at, now())
        FROM prev WHERE i.id = prev.id
        RETURNING i.*, prev.archived_at IS NULL AS changed`;
      return row ? { row: toInboxRow(row), changed: Boolean(row.changed) } : undefined;
    },
  };
}

export type InboxRepo = ReturnType<typeof createInboxRepo>;

