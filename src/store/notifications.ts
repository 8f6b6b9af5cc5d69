/**
 * Notifications, their outbox rows and idempotency records.
 */
import { isoTime, type Sql } from "./db.ts";
import { createBatcher } from "./batcher.ts";
import type { AcceptedEvent } from "../schemas/event.ts";

export const NOTIFICATION_STATUSES = ["scheduled", "accepted", "processing", "delivered", "partially_delivered", "failed", "cancelled"] as const;
export type NotificationStatus = (typeof NOTIFICATION_STATUSES)[number];
export const TERMINAL_NOTIFICATION: NotificationStatus[] = ["delivered", "partially_delivered", "failed", "cancelled"];

export interface NotificationRow {
  id: string;
  event: string;
  status: NotificationStatus;
  payload: AcceptedEvent;
  source: string | null;
  send_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface NewNotification {
  id: string;
  event: string;
  status: "accepted" | "scheduled";
  payload: AcceptedEvent;
  /** `payload` serialised once, for the INSERT and the publish alike. */
  payloadJson?: string;
  source: string;
  send_at: string | null;
}


export function toNotification(row: Record<string, unknown>): NotificationRow {
  return {
    id: String(row.id),
    event: String(row.event),
    status: row.status as NotificationStatus,
    payload: row.payload as AcceptedEvent,
    source: (row.source as string) ?? null,
    send_at: isoTime(row.send_at),
    created_at: isoTime(row.created_at)!,
    updated_at: isoTime(row.updated_at)!,
  };
}

export interface IdempotencyRecord {
  request_hash: string;
  notification_id: string;
  response: Record<string, unknown>;
}

export function createNotificationRepo(sql: Sql) {
  /**
   * Settles from concurrently processed events share one statement (group write): under load the
   * worker runs dozens of events at once, and one UPDATE of 50 rows costs PostgreSQL far less than
   * 50 UPDATEs. (Claims are made with the deliveries' insert: DeliveryRepo.claimAndInsert.)
   */
  // Cheap tests first: a campaign run's notification has a million deliveries and settle runs
  // after each send. The status test and NOT EXISTS (answered by the partial index
  // deliveries_open) stop almost every call; the counts run once, when the last one closes.
  const settler = createBatcher<string, NotificationStatus | undefined>(
    async (ids) => {
      const rows = await sql`
        UPDATE notifications n SET updated_at = now(), status = CASE
            WHEN NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = n.id AND d.status = 'failed') THEN 'delivered'
            WHEN EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = n.id AND d.status = 'sent') THEN 'partially_delivered'
            ELSE 'failed' END
        WHERE n.id = ANY(${[...new Set(ids)]}::uuid[]) AND n.status = 'processing'
          AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = n.id AND d.status IN ('queued','sending','retrying'))
        RETURNING n.id, n.status`;
      const byId = new Map(rows.map((r) => [String(r.id), r.status as NotificationStatus]));
      return ids.map((id) => byId.get(id));
    },
    { maxBatch: 500, maxInFlight: 1 },
  );
  return {
    /**
     * Inserts notifications (ignoring ids that exist: the worker may have stored one first from
     * its message). With `outbox`, rows to publish now also get an outbox row, in the same statement.
     */
    async insertMany(items: NewNotification[], opts: { outbox: boolean }): Promise<void> {
      if (items.length === 0) return;
      // The batch travels as one JSON document built from each payload's existing serialisation:
      // no second JSON.stringify and no text[] escaping of every payload character by the driver.
      const doc = `[${items
        .map((i) => `{"id":${JSON.stringify(i.id)},"event":${JSON.stringify(i.event)},"status":${JSON.stringify(i.status)},"payload":${i.payloadJson ?? JSON.stringify(i.payload)},"source":${JSON.stringify(i.source)},"send_at":${JSON.stringify(i.send_at)}}`)
        .join(",")}]`;
      const rows = sql`
          INSERT INTO notifications (id, event, status, payload, source, send_at)
          SELECT id, event, status, payload, source, send_at
          FROM jsonb_to_recordset(${doc}::text::jsonb) AS t(id uuid, event text, status text, payload jsonb, source text, send_at timestamptz)
          ON CONFLICT (id) DO NOTHING`;
      if (!opts.outbox) {
        await rows;
        return;
      }
      await sql`WITH n AS (${rows} RETURNING id, status)
                INSERT INTO outbox (notification_id) SELECT id FROM n WHERE status = 'accepted'`;
    },

    /** Outbox rows for notifications already stored (their publish failed). */
    async addOutbox(ids: string[]): Promise<void> {
      if (ids.length) await sql`INSERT INTO outbox (notification_id) SELECT unnest(${ids}::uuid[]) ON CONFLICT DO NOTHING`;
    },

    /**
     * One notification with an idempotency record, atomically. Returns the existing record when
     * the key was already used (the caller compares request hashes).
     */
    async insertIdempotent(item: NewNotification, scope: string, key: string, requestHash: string, response: Record<string, unknown>): Promise<IdempotencyRecord | undefined> {
      return sql.begin(async (tx) => {
        // A key older than 24 h is free again (SPEC 3.3); the periodic purge may not have run yet.
        await tx`DELETE FROM idempotency_keys WHERE scope = ${scope} AND key = ${key} AND created_at < now() - interval '24 hours'`;
        const [claimed] = await tx`
          INSERT INTO idempotency_keys (scope, key, request_hash, notification_id, response)
          VALUES (${scope}, ${key}, ${requestHash}, ${item.id}, ${tx.json(response as never)})
          ON CONFLICT (scope, key) DO NOTHING RETURNING key`;
        if (!claimed) {
          const [row] = await tx`SELECT request_hash, notification_id, response FROM idempotency_keys WHERE scope = ${scope} AND key = ${key}`;
          return { request_hash: String(row!.request_hash), notification_id: String(row!.notification_id), response: row!.response as Record<string, unknown> };
        }
        await tx`INSERT INTO notifications (id, event, status, payload, source, send_at)
                 VALUES (${item.id}, ${item.event}, ${item.status}, ${tx.json(item.payload as never)}, ${item.source}, ${item.send_at})`;
        if (item.status === "accepted") await tx`INSERT INTO outbox (notification_id) VALUES (${item.id})`;
        return undefined;
      });
    },

    async findIdempotency(scope: string, key: string): Promise<IdempotencyRecord | undefined> {
      const [row] = await sql`SELECT request_hash, notification_id, response FROM idempotency_keys
                              WHERE scope = ${scope} AND key = ${key} AND created_at > now() - interval '24 hours'`;
      return row ? { request_hash: String(row.request_hash), notification_id: String(row.notification_id), response: row.response as Record<string, unknown> } : undefined;
    },

    /** Keys expire after 24 h (SPEC 3.3). */
    async purgeIdempotency(): Promise<number> {
      const r = await sql`DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'`;
      return r.count;
    },

    async get(id: string): Promise<NotificationRow | undefined> {
      if (!isUuid(id)) return undefined;
      const [row] = await sql`SELECT * FROM notifications WHERE id = ${id}`;
      return row ? toNotification(row) : undefined;
    },

    /** Outbox rows the fast path has not cleared: left by a crash or a broker outage. */
    async claimStaleOutbox<T>(olderThanMs: number, limit: number, publish: (rows: NotificationRow[]) => Promise<T>): Promise<number> {
      return sql.begin(async (tx) => {
        const rows = await tx`
          SELECT n.* FROM outbox o JOIN notifications n ON n.id = o.notification_id
          WHERE o.created_at < now() - make_interval(secs => ${olderThanMs / 1000})
          ORDER BY o.created_at LIMIT ${limit}
          FOR UPDATE OF o SKIP LOCKED`;
        if (rows.length === 0) return 0;
        const list = rows.map(toNotification);
        await publish(list);
        await tx`DELETE FROM outbox WHERE notification_id = ANY(${list.map((r) => r.id)}::uuid[])`;
        return list.length;
      });
    },

    async clearOutbox(ids: string[]): Promise<void> {
      if (ids.length) await sql`DELETE FROM outbox WHERE notification_id = ANY(${ids}::uuid[])`;
    },

    /** Cancels a notification that has not been sent yet; returns the resulting status. */
    async cancel(id: string): Promise<{ status: NotificationStatus; cancelled: boolean } | undefined> {
      if (!isUuid(id)) return undefined;
      return sql.begin(async (tx) => {
        const [row] = await tx`SELECT status FROM notifications WHERE id = ${id} FOR UPDATE`;
        if (!row) return undefined;
        const status = row.status as NotificationStatus;
        if (status !== "scheduled" && status !== "accepted") return { status, cancelled: false };
        await tx`UPDATE notifications SET status = 'cancelled', updated_at = now() WHERE id = ${id}`;
        await tx`DELETE FROM outbox WHERE notification_id = ${id}`;
        return { status: "cancelled" as const, cancelled: true };
      });
    },

    /**
     * Recomputes a notification's status from its deliveries once none is open.
     * delivered: nothing failed; partially_delivered: some sent, some failed; failed: none sent, some failed.
     */
    settle: (id: string): Promise<NotificationStatus | undefined> => settler.submit(id),
  };
}

export type NotificationRepo = ReturnType<typeof createNotificationRepo>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (s: string) => UUID.test(s);
