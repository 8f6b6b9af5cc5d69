/**
 * An event as producers send it (POST /api/v1/events, GraphQL sendEvent, AMQP notify.events).
 */
import * as v from "valibot";
import { Attributes, Email, Id, Key, Locale, Name, Phone, TimeZone, Timestamp } from "./common.ts";

export const CHANNELS = ["email", "sms", "telegram", "webhook", "in_app"] as const;
export type ChannelName = (typeof CHANNELS)[number];
export const PRIORITIES = ["low", "normal", "high", "critical"] as const;

export const InlineRecipient = v.strictObject({
  user_id: Id,
  email: v.optional(Email),
  phone: v.optional(Phone),
  name: v.optional(Name),
  locale: v.optional(Locale),
  timezone: v.optional(TimeZone),
  telegram_chat_id: v.optional(v.pipe(v.string(), v.regex(/^-?[0-9]{1,20}$/, "must be a Telegram chat id"))),
  attributes: v.optional(Attributes),
});
export type InlineRecipient = v.InferOutput<typeof InlineRecipient>;

export const Recipient = v.union([Id, InlineRecipient], "must be a user id or an object with user_id");

export const EventInput = v.strictObject({
  event: v.pipe(v.string(), v.regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/, "must be an event name such as user.registered")),
  to: v.pipe(v.array(Recipient), v.minLength(1, "needs at least one recipient")),
  template: v.optional(Key),
  channels: v.optional(v.pipe(v.array(v.picklist(CHANNELS, `must be one of ${CHANNELS.join(", ")}`)), v.minLength(1), v.maxLength(CHANNELS.length))),
  data: v.optional(v.record(v.string(), v.unknown()), {}),
  category: v.optional(Key),
  priority: v.optional(v.picklist(PRIORITIES, `must be one of ${PRIORITIES.join(", ")}`), "normal"),
  send_at: v.optional(Timestamp),
  /** Not worth sending after this: a delivery that would go out later (quiet hours, a late schedule) is skipped. */
  expires_at: v.optional(Timestamp),
  idempotency_key: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(255))),
  /** Free-form message without a template. */
  title: v.optional(v.pipe(v.string(), v.maxLength(1000))),
  body: v.optional(v.pipe(v.string(), v.maxLength(100_000))),
});
export type EventInput = v.InferOutput<typeof EventInput>;

/** What the gateway stores and publishes after validation: the event plus resolved defaults. */
export interface AcceptedEvent extends EventInput {
  notification_id: string;
  channels: ChannelName[];
  source: string;
  accepted_at: string;
  /** From the event rule: where the webhook channel posts (instead of the user's own URL). */
  webhook_url?: string;
}
