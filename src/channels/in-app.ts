/**
 * In-app messages: stored in the user's inbox and announced on the realtime topic (routing key =
 * user id) so whichever gateway holds the user's sockets pushes it. Always enabled, no settings.
 *
 * The announcement is confirmed by the broker before the item commits, under the per-user lock:
 * a user's announcements therefore reach every gateway in seq order (a client that resumes from
 * the last id it saw cannot skip an earlier one), and an item is never stored unannounced.
 * Idempotent by delivery id: a resend finds the stored item and announces the same id again.
 * Concurrent sends are grouped: one transaction and one confirmed publish per batch.
 */
import * as v from "valibot";
import { createInboxRepo } from "../store/inbox.ts";
import { signalsMessage, type NotificationSignal, type UnreadChangedSignal } from "../realtime/messages.ts";
import { inboxView, type InboxRow, type NewInboxItem } from "../store/inbox.ts";
import { createBatcher } from "../store/batcher.ts";
import { SendError, type ChannelProvider, type ChannelSender } from "./types.ts";

const Config = v.object({});
type Config = v.InferOutput<typeof Config>;

export const inApp: ChannelProvider<Config> = {
  name: "inbox",
  channel: "in_app",
  configSchema: Config,
  fromEnv: () => ({}),
  // Every known user has an inbox; the address is the user id itself.
  address: (user) => user.id,
  create(_config, deps): ChannelSender {
    const { sql, queue } = deps;
    if (!sql || !queue) throw new Error("the in_app provider needs the database and the queue (ProviderDeps.sql, ProviderDeps.queue)");
    const inbox = createInboxRepo(sql);
    // One message per batch, items in seq order per user (gateways take every realtime message).
    const announce = (rows: InboxRow[]) =>
      queue.publish("realtime", [signalsMessage(rows.map((row): NotificationSignal => ({ type: "notification", user_id: row.user_id, seq: row.seq, item: inboxView(row) })))]);
    // The worker's concurrent in-app sends share one transaction and one confirmed publish.
    const writer = createBatcher<NewInboxItem, InboxRow>(
      async (items) => {
        const rows = await inbox.insertMany(items, announce);
        // Counts are recounted by gateways from committed state, so this goes after the commit.
        const users = [...new Set([...rows.values()].map((r) => r.user_id))];
        queue.publish("realtime", [signalsMessage(users.map((user_id): UnreadChangedSignal => ({ type: "unread_changed", user_id })))]).catch(() => {});
        return items.map((i) => rows.get(i.id)!);
      },
      { maxBatch: 200, maxInFlight: 2 },
    );
    return {
      provider: "inbox",
      async send(msg, signal) {
        if (signal.aborted) throw new SendError("send aborted", { permanent: false });
        let row: InboxRow;
        try {
          row = await writer.submit({
            id: msg.deliveryId,
            user_id: msg.to,
            notification_id: msg.notificationId,
            event: msg.event,
            title: msg.content.title ?? msg.content.subject ?? null,
            body: msg.content.text ?? null,
          });
        } catch (err) {
          throw new SendError(`inbox: ${String((err as Error)?.message ?? err)}`, { permanent: false, cause: err });
        }
        return { providerId: row.id };
      },
      close: () => writer.drain(),
    };
  },
};
