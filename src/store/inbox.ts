/**
 * The in-app inbox (table inbox_items). Every query is scoped by user id: a guessed item id of
 * another user matches nothing, exactly like an id that does not exist.
 */
import type { Sql } from "./db.ts";

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
     * Stores an item unless one with this id exists (then returns the existing one). The per-user
     * lock makes seq order equal commit order. `beforeCommit` runs while the lock is held (the
     * realtime announcement, so announcements of one user leave in seq order); if it throws,
     * nothing is stored.
     */
    async insert(item: NewInboxItem, beforeCommit?: (row: InboxRow) => Promise<void>): Promise<{ row: InboxRow; inserted: boolean }> {
      return sql.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${INBOX_LOCK_SPACE}, hashtext(${item.user_id}))`;
        const data =
          item.data !== undefined
            ? tx`${JSON.stringify(item.data)}::jsonb`
            : tx`coalesce((SELECT payload->'data' FROM notifications WHERE id = ${item.notification_id}), '{}'::jsonb)`;
        const [row] = await tx`
          INSERT INTO inbox_items (id, user_id, seq, notification_id, event, title, body, data)
          SELECT ${item.id}, ${item.user_id}, coalesce(max(seq), 0) + 1, ${item.notification_id}, ${item.event},
                 ${item.title}, ${item.body}, ${data}
          FROM inbox_items WHERE user_id = ${item.user_id}
          ON CONFLICT (id) DO NOTHING
          RETURNING *`;
        const result = row ? { row: toInboxRow(row), inserted: true } : { row: toInboxRow((await tx`SELECT * FROM inbox_items WHERE id = ${item.id}`)[0]!), inserted: false };
        await beforeCommit?.(result.row);
        return result;
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

const isUuid = (s: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s);
