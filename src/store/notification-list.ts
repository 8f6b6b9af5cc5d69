/** Notifications, newest first, for GraphQL `notifications(filter, first, after)`. Keyset on uuid v7 ids (time-ordered). */
import type { Sql } from "./db.ts";
import { toNotification, type NotificationRow } from "./notifications.ts";

export async function listNotifications(sql: Sql, opts: { limit: number; beforeId?: string; status?: string; event?: string }): Promise<NotificationRow[]> {
  const rows = await sql`
    SELECT * FROM notifications WHERE true
      ${opts.beforeId ? sql`AND id < ${opts.beforeId}` : sql``}
      ${opts.status ? sql`AND status = ${opts.status}` : sql``}
      ${opts.event ? sql`AND event = ${opts.event}` : sql``}
    ORDER BY id DESC LIMIT ${opts.limit}`;
  return rows.map(toNotification);
}
