/** Test helpers for channel senders. */
import type { OutboundMessage } from "./types.ts";

/** A message to `to` as the dispatcher hands it to a sender (fresh ids); `over` replaces fields. */
export function outboundMessage(to: string, over: Partial<OutboundMessage> = {}): OutboundMessage {
  return {
    deliveryId: Bun.randomUUIDv7(),
    notificationId: Bun.randomUUIDv7(),
    event: "test",
    to,
    user: { id: "u", email: null, phone: null, name: null, locale: null, timezone: null, telegram_chat_id: null, attributes: {} },
    content: { title: "t", text: "b" },
    attempt: 1,
    ...over,
  };
}
