/**
 * Webhooks: the message as JSON, POSTed to the URL of the event rule (`webhook_url`) or, without
 * one, of the user (`attributes.webhook_url`), signed per Standard Webhooks.
 *
 *   NOTIFY_WEBHOOK_SECRET         whsec_... used when the user has no attributes.webhook_secret
 *   NOTIFY_WEBHOOK_ALLOW_PRIVATE  true: allow every private/loopback/link-local destination
 *   NOTIFY_WEBHOOK_ALLOW_LIST     comma-separated host names or IPs/CIDRs that may be private
 *   NOTIFY_WEBHOOK_TIMEOUT_MS     default 10000
 *
 * SPEC 5: destinations are checked at connect time by the SSRF-safe client (loopback, private,
 * link-local refused, DNS rebinding included). `webhook-id` is the delivery id, stable across
 * retries, so receivers can de-duplicate.
 */
import * as v from "valibot";
import { createSafeHttpClient, type SafeHttpClient } from "../net/ssrf.ts";
import { signWebhook } from "../net/webhook-signature.ts";
import { httpFailure, requestFailure } from "./http-provider.ts";
import { SendError, type ChannelProvider, type ChannelSender } from "./types.ts";

const Secret = v.pipe(v.string(), v.regex(/^(whsec_)?[A-Za-z0-9+/]{16,}={0,2}$/, "must be whsec_<base64>"));

const WebhookConfig = v.object({
  secret: v.optional(Secret),
  allowPrivate: v.optional(v.boolean(), false),
  allowList: v.optional(v.array(v.string()), []),
  timeoutMs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(100)), 10_000),
});
type WebhookConfig = v.InferOutput<typeof WebhookConfig>;

const isHttpUrl = (s: unknown): s is string => typeof s === "string" && /^https?:\/\/[^\s]+$/i.test(s) && s.length <= 2048;

export function createWebhookSender(config: WebhookConfig, http?: SafeHttpClient): ChannelSender {
  const client = http ?? createSafeHttpClient({ allowPrivate: config.allowPrivate, allowList: config.allowList, timeoutMs: config.timeoutMs, maxRedirects: 0 });
  return {
    provider: "webhook",
    async send(msg, signal) {
      if (signal.aborted) throw new SendError("send aborted", { permanent: false });
      // The user's own secret signs only the user's own URL; a rule's URL gets the global secret.
      const userUrl = msg.user.attributes?.webhook_url;
      const userSecret = msg.user.attributes?.webhook_secret;
      const secret = msg.to === userUrl && typeof userSecret === "string" && userSecret ? userSecret : config.secret;
      if (!secret) throw new SendError("webhook: no signing secret (set NOTIFY_WEBHOOK_SECRET or the user's attributes.webhook_secret)", { permanent: true });
      const c = msg.content;
      const body = JSON.stringify({
        type: msg.event,
        timestamp: new Date().toISOString(),
        data: {
          notification_id: msg.notificationId,
          delivery_id: msg.deliveryId,
          user_id: msg.user.id,
          event: msg.event,
          title: c.title ?? c.subject ?? null,
          text: c.text ?? null,
          html: c.html ?? null,
          locale: c.meta?.locale ?? null,
        },
      });
      let headers;
      try {
        headers = signWebhook({ id: msg.deliveryId, timestamp: Math.floor(Date.now() / 1000), body, secret });
      } catch (err) {
        throw new SendError(`webhook: bad signing secret: ${(err as Error).message}`, { permanent: true });
      }
      let res;
      try {
        res = await client.request(msg.to, { method: "POST", headers: { ...headers, "content-type": "application/json", "user-agent": "notify-webhooks" }, body });
      } catch (err) {
        throw requestFailure("webhook", err);
      }
      if (res.status >= 200 && res.status < 300) return { providerId: msg.deliveryId };
      if (res.status >= 300 && res.status < 400) throw new SendError(`webhook HTTP ${res.status}: redirects are not followed`, { permanent: true });
      throw httpFailure("webhook", res.status, res.body, { retryAfter: res.headers["retry-after"] });
    },
    async close() {},
  };
}

export const webhook: ChannelProvider<WebhookConfig> = {
  name: "webhook",
  channel: "webhook",
  configSchema: WebhookConfig,
  // Always on: it needs no credentials of its own; a delivery without a secret fails saying so.
  fromEnv(env) {
    const allowPrivate = env.NOTIFY_WEBHOOK_ALLOW_PRIVATE;
    return {
      secret: env.NOTIFY_WEBHOOK_SECRET || undefined,
      allowPrivate: allowPrivate === undefined || allowPrivate === "" ? undefined : /^(1|true|yes|on)$/i.test(allowPrivate),
      allowList: (env.NOTIFY_WEBHOOK_ALLOW_LIST ?? "").split(",").map((s) => s.trim()).filter(Boolean),
      timeoutMs: env.NOTIFY_WEBHOOK_TIMEOUT_MS ? Number(env.NOTIFY_WEBHOOK_TIMEOUT_MS) : undefined,
    };
  },
  address(user, event) {
    if (isHttpUrl(event?.webhook_url)) return event.webhook_url;
    const url = user.attributes?.webhook_url;
    return isHttpUrl(url) ? url : undefined;
  },
  create: (config) => createWebhookSender(config),
};
