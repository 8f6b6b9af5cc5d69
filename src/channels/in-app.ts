/**
 * In-app messages: stored in the user's inbox, then announced on the realtime topic (routing key =
 * user id) so whichever gateway holds the user's sockets pushes it. Always enabled, no settings.
 *
 * Idempotent by delivery id: a resend after a crash finds the stored item and announces it again
 * (the first announcement may not have gone out); sockets receive the same item id, never a second item.
 */
import * as v from "valibot";
import { createInboxRepo } from "../store/inbox.ts";
import type { NotificationSignal } from "../realtime/messages.ts";
import { inboxView } from "../store/inbox.ts";
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
    return {
      provider: "inbox",
      async send(msg, signal) {
        if (signal.aborted) throw new SendError("send aborted", { permanent: false });
        const { row } = await inbox.insert({
          id: msg.deliveryId,
          user_id: msg.to,
          notification_id: msg.notificationId,
          event: msg.event,
          title: msg.content.title ?? msg.content.subject ?? null,
          body: msg.content.text ?? null,
        });
        const body: NotificationSignal = { type: "notification", user_id: row.user_id, seq: row.seq, item: inboxView(row) };
        try {
          await queue.publish("realtime", [{ routingKey: row.user_id, body, messageId: row.id }]);
        } catch (err) {
          // Stored but not announced: retry, which announces the same item again.
          throw new SendError(`stored; realtime announcement failed: ${String((err as Error)?.message ?? err)}`, { permanent: false, cause: err });
        }
        return { providerId: row.id };
      },
      async close() {},
    };
  },
};
