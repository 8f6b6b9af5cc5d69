/**
 * The channel provider contract. A provider file exports one `ChannelProvider`: its name, the
 * channel it serves, a valibot schema for its settings and a factory. The registry imports
 * providers by name; adding a provider adds a file and a line there, never a branch in a switch.
 */
import type * as v from "valibot";
import type { Logger } from "../runtime/log.ts";
import type { Queue } from "../mq/queue.ts";
import type { Sql } from "../store/db.ts";
import type { AcceptedEvent, ChannelName } from "../schemas/event.ts";
import type { DeliveryContent } from "../store/deliveries.ts";
import type { User } from "../store/users.ts";

export interface OutboundMessage {
  deliveryId: string;
  notificationId: string;
  event: string;
  /** Address on this channel: e-mail, phone, chat id, URL or user id. */
  to: string;
  user: User;
  content: DeliveryContent;
  /** Attempt number, from 1. */
  attempt: number;
}

export interface SendResult {
  /** Provider's id for the message (SMTP Message-ID, SMS sid, Telegram message_id...). */
  providerId?: string;
}

/**
 * Thrown by send(). `permanent` failures fail the delivery at once (SMTP 5xx, invalid address);
 * others are retried with backoff. `retryAfterMs` honours the provider's own hint (429 retry_after).
 */
export class SendError extends Error {
  readonly permanent: boolean;
  readonly retryAfterMs?: number;
  constructor(message: string, opts: { permanent: boolean; retryAfterMs?: number; cause?: unknown }) {
    super(message, { cause: opts.cause });
    this.name = "SendError";
    this.permanent = opts.permanent;
    this.retryAfterMs = opts.retryAfterMs;
  }
}

export interface ChannelSender {
  readonly provider: string;
  send(msg: OutboundMessage, signal: AbortSignal): Promise<SendResult>;
  close(): Promise<void>;
}

export interface ProviderDeps {
  log: Logger;
  /** Public base URL of the gateway (unsubscribe links, deep links). */
  publicUrl: string;
  mailFrom: string;
  dataDir: string;
  /** Storage and broker, for providers that keep state (in_app stores the inbox and announces on the realtime topic). */
  sql?: Sql;
  queue?: Queue;
  /**
   * False in a process that never sends (no worker role): providers then leave no trace of their
   * own, such as the outbox folder. Every role builds the channels (the gateway checks an event's
   * channels against them when it runs the worker too).
   */
  sends?: boolean;
}

export interface ChannelProvider<C = unknown> {
  /** Provider name, e.g. "smtp", "twilio", "telegram-bot". */
  name: string;
  channel: ChannelName;
  /** Settings schema; the registry reports its issues as configuration errors. */
  configSchema: v.GenericSchema<unknown, C>;
  /**
   * Reads the provider's settings from NOTIFY_* variables; undefined when it is not configured.
   * An array configures several instances (e.g. two SMTP relays), each becoming its own sender
   * for failover; the sender's `provider` name must then differ per instance.
   */
  fromEnv(env: Record<string, string | undefined>, deps: ProviderDeps): unknown | unknown[] | undefined;
  create(config: C, deps: ProviderDeps): ChannelSender;
  /**
   * The address of a user on this channel, or undefined when the user has none. `event` is given
   * when the address may come from the event (a webhook URL from the event rule).
   */
  address(user: User, event?: AcceptedEvent): string | undefined;
  /** Send rate when NOTIFY_<CHANNEL>_RATE is not set, e.g. "30/s" for Telegram's documented limit. */
  defaultRate?: string;
}
