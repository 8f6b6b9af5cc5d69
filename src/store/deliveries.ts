/**
 * Deliveries: one per (notification, recipient, channel). The row is the claim that keeps a
 * message from being sent twice: only the worker that moves it to 'sending' may send it.
 */
import { isoTime, type Sql } from "./db.ts";
import { createBatcher } from "./batcher.ts";
import type { NotificationStatus } from "./notifications.ts";

export type DeliveryStatus = "queued" | "sending" | "retrying" | "sent" | "failed" | "skipped";
export const OPEN_DELIVERY: DeliveryStatus[] = ["queued", "sending", "retrying"];

export interface DeliveryContent {
  subject?: string;
  text?: string;
  html?: string;
  title?: string;
  /** Channel-specific extras (webhook URL, unsubscribe link, ...). */
  meta?: Record<string, unknown>;
}

export interface DeliveryRow {
  id: string;
  notification_id: string;
  user_id: string;
  channel: string;
  recipient: string | null;
  status: DeliveryStatus;
  attempts: number;
  max_attempts: number;
  error: string | null;
  content: DeliveryContent | null;
  provider: string | null;
  claimed_until: string | null;
  next_attempt_at: string | null;
  sent_at: string | null;
  created_at: string;
}

export interface NewDelivery {
  id: string;
  notification_id: string;
  user_id: string;
  channel: string;
  recipient: string | null;
  /** 'sending' inserts the row already claimed by the inserting worker (saves a round trip). */
  status: "queued" | "sending" | "skipped" | "failed";
  error: string | null;
  content: DeliveryContent | null;
  max_attempts: number;
  /** A 'queued' delivery not to send before this time (quiet hours). */
  next_attempt_at?: Date | null;
}

export function toDelivery(row: Record<string, unknown>): DeliveryRow {
  return {
    id: String(row.id),
    notification_id: String(row.notification_id),
    user_id: String(row.user_id),
    channel: String(row.channel),
    recipient: (row.recipient as string) ?? null,
    status: row.status as DeliveryStatus,
    attempts: Number(row.attempts),
    max_attempts: Number(row.max_attempts),
    error: (row.error as string) ?? null,
    content: (row.content as DeliveryContent) ?? null,
    provider: (row.provider as string) ?? null,
    claimed_until: isoTime(row.claimed_until),
    next_attempt_at: isoTime(row.next_attempt_at),
    sent_at: isoTime(row.sent_at),
    created_at: isoTime(row.created_at)!,
  };
}

/** A planned delivery as inserted: what the database set (attempts, claim, creation time) from `r`. */
function insertedRow(p: NewDelivery, r: Record<string, unknown>): DeliveryRow {
  return {
    id: p.id,
    notification_id: p.notification_id,
    user_id: p.user_id,
    channel: p.channel,
    recipient: p.recipient,
    status: p.status,
    attempts: Number(r.attempts),
    max_attempts: p.max_attempts,
    error: p.error,
    content: p.content,
    provider: null,
    claimed_until: isoTime(r.claimed_until),
    next_attempt_at: p.next_attempt_at ? p.next_attempt_at.toISOString() : null,
    sent_at: null,
    created_at: isoTime(r.created_at)!,
  };
}

/** What claiming a notification together with its planned deliveries found and did. */
export interface ClaimResult {
  /**
   * The status the notification had: "accepted" (claimed by this call), "processing" (claimed
   * before: a redelivery, continue idempotently), another (nothing to do), undefined (not stored).
   */
  status: NotificationStatus | undefined;
  /** The planned deliveries this call inserted (none unless the status is accepted or processing). */
  inserted: DeliveryRow[];
}

export function createDeliveryRepo(sql: Sql) {
  /**
   * Claims notifications (accepted → processing) and inserts their planned deliveries, in one
   * statement for the events in progress together. Deliveries go in only for a notification that
   * is accepted or already processing; its subqueries see the notifications as they were before
   * the statement, which is what a claim reports. The same notification twice in one batch (a
   * duplicate message): only the first call claims and inserts, the other sees "processing".
   */
  const claimer = createBatcher<{ notificationId: string; items: NewDelivery[]; claimMs: number }, ClaimResult>(
    async (calls) => {
      const first = new Map<string, number>();
      calls.forEach((c, i) => first.has(c.notificationId) || first.set(c.notificationId, i));
      const items = calls.flatMap((c, i) => (first.get(c.notificationId) === i ? c.items : []));
      const nids = [...first.keys()];
      const claimMs = Math.max(...calls.map((c) => c.claimMs));
      const rows = await sql`
        WITH c AS (
          UPDATE notifications SET status = 'processing', updated_at = now()
          WHERE id = ANY(${nids}::uuid[]) AND status = 'accepted' RETURNING id),
        s AS (
          SELECT n.id, CASE WHEN c.id IS NOT NULL THEN 'accepted' ELSE n.status END AS status
          FROM notifications n LEFT JOIN c ON c.id = n.id WHERE n.id = ANY(${nids}::uuid[])),
        ins AS (
          -- Rows inserted as 'sending' count their first attempt and carry this worker's claim.
          INSERT INTO deliveries (id, notification_id, user_id, channel, recipient, status, error, content, max_attempts, next_attempt_at, attempts, claimed_until)
          SELECT t.id, t.nid, t.uid, t.ch, t.rcp, t.st, t.err, t.cnt::jsonb, t.maxa, t.nxt,
                 CASE WHEN t.st = 'sending' THEN 1 ELSE 0 END,
                 CASE WHEN t.st = 'sending' THEN now() + make_interval(secs => ${claimMs / 1000}) END
          FROM unnest(${items.map((i) => i.id)}::uuid[], ${items.map((i) => i.notification_id)}::uuid[], ${items.map((i) => i.user_id)}::text[],
                      ${items.map((i) => i.channel)}::text[], ${items.map((i) => i.recipient)}::text[], ${items.map((i) => i.status)}::text[],
                      ${items.map((i) => i.error)}::text[], ${items.map((i) => (i.content ? JSON.stringify(i.content) : null))}::text[],
                      ${items.map((i) => i.max_attempts)}::int[], ${items.map((i) => i.next_attempt_at?.toISOString() ?? null)}::timestamptz[])
               AS t(id, nid, uid, ch, rcp, st, err, cnt, maxa, nxt)
          JOIN s ON s.id = t.nid AND s.status IN ('accepted', 'processing')
          ON CONFLICT (notification_id, user_id, channel) DO NOTHING
          RETURNING id, notification_id, attempts, claimed_until, created_at)
        SELECT s.id AS claim_id, s.status AS claim_status, d.id, d.attempts, d.claimed_until, d.created_at
        FROM s LEFT JOIN ins d ON d.notification_id = s.id`;
      const status = new Map<string, NotificationStatus>();
      const inserted = new Map<string, DeliveryRow>();
      const planned = new Map(items.map((i) => [i.id, i]));
      for (const r of rows) {
        status.set(String(r.claim_id), r.claim_status as NotificationStatus);
        // The rest of an inserted row is what was planned: not read back (its content is the
        // largest column, and would be serialised by PostgreSQL and parsed here again).
        if (r.id !== null) inserted.set(String(r.id), insertedRow(planned.get(String(r.id))!, r));
      }
      return calls.map((c, i) => {
        const st = status.get(c.notificationId);
        if (first.get(c.notificationId) !== i) return { status: st === "accepted" ? "processing" : st, inserted: [] };
        return { status: st, inserted: c.items.flatMap((d) => inserted.get(d.id) ?? []) };
      });
    },
    { maxBatch: 200, maxInFlight: 1 },
  );

  return {
    /**
     * Claims a notification and inserts its planned deliveries at once (see `claimer`). Concurrent
     * calls (one per event the worker is processing) share one statement.
     */
    claimAndInsert(notificationId: string, items: NewDelivery[], claimMs: number): Promise<ClaimResult> {
      return claimer.submit({ notificationId, items, claimMs });
    },

    async listByNotification(notificationId: string): Promise<DeliveryRow[]> {
      const rows = await sql`SELECT * FROM deliveries WHERE notification_id = ${notificationId} ORDER BY created_at, id`;
      return rows.map(toDelivery);
    },

    async get(id: string): Promise<DeliveryRow | undefined> {
      const [row] = await sql`SELECT * FROM deliveries WHERE id = ${id}`;
      return row ? toDelivery(row) : undefined;
    },

    async getMany(ids: string[]): Promise<DeliveryRow[]> {
      if (ids.length === 0) return [];
      const rows = await sql`SELECT * FROM deliveries WHERE id = ANY(${ids}::uuid[])`;
      return rows.map(toDelivery);
    },

    /**
     * Claims deliveries for sending, in one statement: from queued/retrying, or from 'sending' whose
     * claim expired (its worker died). Counts the attempt. Returns those this call claimed: the rest
     * someone else holds, or they are done.
     */
    async claimMany(ids: string[], claimMs: number): Promise<DeliveryRow[]> {
      if (ids.length === 0) return [];
      const rows = await sql`
        UPDATE deliveries SET status = 'sending', attempts = attempts + 1, updated_at = now(),
          claimed_until = now() + make_interval(secs => ${claimMs / 1000})
        WHERE id = ANY(${ids}::uuid[]) AND (status IN ('queued','retrying') OR (status = 'sending' AND claimed_until < now()))
        RETURNING *`;
      return rows.map(toDelivery);
    },

    /**
     * Many deliveries sent, one statement: the worker's group write (see dispatch.ts). The same
     * statement settles each notification whose last open delivery this was (to 'delivered', or
     * 'partially_delivered' when a sibling failed) and returns those notifications' ids: for a
     * one-recipient event that is the settle the worker would otherwise send next. Its subqueries
     * see the table as it was before the statement, so the rows it marks sent are left out of the
     * "still open" test by id. A sibling closed by another statement at the same moment may still
     * look open here: then no id is returned and the caller settles as before.
     */
    async markSentMany(items: Array<{ id: string; notificationId: string; provider: string | null; providerId: string | null }>): Promise<Set<string>> {
      if (items.length === 0) return new Set();
      const rows = await sql`
        WITH s AS (
          UPDATE deliveries d SET status = 'sent', sent_at = now(), error = NULL, claimed_until = NULL, updated_at = now(),
            provider = t.provider, provider_id = t.provider_id
          FROM unnest(${items.map((i) => i.id)}::uuid[], ${items.map((i) => i.provider)}::text[], ${items.map((i) => i.providerId)}::text[])
            AS t(id, provider, provider_id)
          WHERE d.id = t.id
          RETURNING d.id, d.notification_id)
        UPDATE notifications n SET updated_at = now(), status = CASE
            WHEN EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = n.id AND d.status = 'failed') THEN 'partially_delivered'
            ELSE 'delivered' END
        WHERE n.id IN (SELECT notification_id FROM s) AND n.status = 'processing'
          AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = n.id AND d.status IN ('queued','sending','retrying')
                          AND d.id NOT IN (SELECT id FROM s))
        RETURNING n.id`;
      return new Set(rows.map((r) => String(r.id)));
    },

    async markFailed(id: string, error: string, provider: string | null): Promise<void> {
      await sql`UPDATE deliveries SET status = 'failed', error = ${error}, claimed_until = NULL, updated_at = now(), provider = ${provider}
                WHERE id = ${id}`;
    },

    async markRetrying(id: string, error: string, nextAttemptAt: Date, provider: string | null): Promise<void> {
      await sql`UPDATE deliveries SET status = 'retrying', error = ${error}, claimed_until = NULL, next_attempt_at = ${nextAttemptAt},
                updated_at = now(), provider = ${provider} WHERE id = ${id}`;
    },

    /**
     * Postpones a claimed delivery that could not be tried at all (every provider's circuit open):
     * back to 'retrying' with the attempt this claim counted given back.
     */
    async markDeferred(id: string, reason: string, nextAttemptAt: Date): Promise<void> {
      await sql`UPDATE deliveries SET status = 'retrying', error = ${reason}, claimed_until = NULL, next_attempt_at = ${nextAttemptAt},
                attempts = greatest(attempts - 1, 0), updated_at = now() WHERE id = ${id}`;
    },

    /** Puts a failed delivery back in the queue (dead-letter replay). */
    async requeue(id: string): Promise<DeliveryRow | undefined> {
      const [row] = await sql`
        UPDATE deliveries SET status = 'queued', attempts = 0, error = NULL, next_attempt_at = NULL, updated_at = now()
        WHERE id = ${id} AND status = 'failed' RETURNING *`;
      if (row) await sql`UPDATE notifications SET status = 'processing', updated_at = now() WHERE id = ${row.notification_id as string}`;
      return row ? toDelivery(row) : undefined;
    },
  };
}

export type DeliveryRepo = ReturnType<typeof createDeliveryRepo>;
