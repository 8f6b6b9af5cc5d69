/**
 * Delayed single notifications (events with a future send_at). They wait in PostgreSQL as
 * 'scheduled' with no outbox row; when due, one statement moves them to 'accepted' and writes
 * their outbox rows, taking them with SKIP LOCKED so replicas share the work instead of
 * repeating it. Then we publish at once and clear the outbox rows ourselves (fast path); if we
 * die or the broker refuses in between, the outbox relay of any process publishes them within
 * seconds (slow path). Cancelling (DELETE /notifications/{id}) locks the same row, so it either
 * wins (the notification is never published) or finds it accepted and cancels that.
 */
import type { Queue } from "../mq/queue.ts";
import type { Logger } from "../runtime/log.ts";
import type { Sql } from "../store/db.ts";
import { toNotification, type NotificationRepo } from "../store/notifications.ts";
import { toEventMessage } from "../services/relay.ts";
import { schedulerMetrics } from "./metrics.ts";

/** Notifications released per statement; a backlog drains in several passes of one tick. */
const BATCH = 1000;

export function createDelayedPublisher(deps: { sql: Sql; queue: Queue; notifications: NotificationRepo; log: Logger }) {
  const log = deps.log.child({ component: "delayed" });

  /** Releases due notifications; returns how many. */
  async function releaseDue(): Promise<number> {
    let total = 0;
    for (;;) {
      const rows = await deps.sql`
        WITH due AS (
          SELECT id FROM notifications WHERE status = 'scheduled' AND send_at <= notify_clock()
          ORDER BY send_at LIMIT ${BATCH} FOR UPDATE SKIP LOCKED),
        moved AS (
          UPDATE notifications n SET status = 'accepted', updated_at = now() FROM due WHERE n.id = due.id RETURNING n.*),
        boxed AS (INSERT INTO outbox (notification_id) SELECT id FROM moved)
        SELECT * FROM moved`;
      if (rows.length === 0) return total;
      const list = rows.map(toNotification);
      total += list.length;
      schedulerMetrics.delayedReleased.inc(list.length);
      try {
        await deps.queue.publish("events", list.map(toEventMessage));
        await deps.notifications.clearOutbox(list.map((n) => n.id));
      } catch (err) {
        log.warn("publish of due notifications failed; the outbox relay will retry", { count: list.length, err: String(err) });
        return total;
      }
      log.info("delayed notifications released", { count: list.length });
      if (rows.length < BATCH) return total;
    }
  }

  return { releaseDue };
}
