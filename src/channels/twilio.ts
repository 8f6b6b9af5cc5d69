/**
 * SMS through Twilio's Messages API, or anything compatible with it:
 * POST {base}/2010-04-01/Accounts/{sid}/Messages.json, form-encoded To/From/Body, HTTP basic
 * auth with the account SID and auth token.
 *
 *   NOTIFY_SMS_TWILIO_ACCOUNT_SID   enables the provider (AC...)
 *   NOTIFY_SMS_TWILIO_AUTH_TOKEN
 *   NOTIFY_SMS_TWILIO_FROM          sending number (E.164), or
 *   NOTIFY_SMS_TWILIO_MESSAGING_SERVICE_SID
 *   NOTIFY_SMS_TWILIO_BASE_URL      default https://api.twilio.com
 */
import * as v from "valibot";
import { plainText } from "./content.ts";
import { httpFailure, parseJson, pick, providerHttpClient, requestFailure } from "./http-provider.ts";
import { SendError, type ChannelProvider, type ChannelSender } from "./types.ts";

const TwilioConfig = v.pipe(
  v.object({
    accountSid: v.pipe(v.string(), v.regex(/^AC[0-9a-fA-F]{32}$/, "must be an account SID (AC + 32 hex digits)")),
    authToken: v.pipe(v.string(), v.minLength(8, "looks too short for an auth token")),
    from: v.optional(v.pipe(v.string(), v.regex(/^\+?[0-9A-Za-z ]{3,20}$/, "must be a phone number or alphanumeric sender id"))),
    messagingServiceSid: v.optional(v.pipe(v.string(), v.regex(/^MG[0-9a-fA-F]{32}$/, "must be a messaging service SID (MG...)"))),
    baseUrl: v.optional(v.pipe(v.string(), v.url(), v.regex(/^https?:\/\//, "must be an http(s) URL")), "https://api.twilio.com"),
    timeoutMs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(100)), 10_000),
  }),
  v.check((c) => !!c.from || !!c.messagingServiceSid, "set NOTIFY_SMS_TWILIO_FROM or NOTIFY_SMS_TWILIO_MESSAGING_SERVICE_SID"),
);
type TwilioConfig = v.InferOutput<typeof TwilioConfig>;

// Twilio error codes that no retry can fix: invalid/unreachable To, unsubscribed recipient, ...
const PERMANENT_CODES = new Set([21211, 21408, 21610, 21612, 21614, 21617, 30003, 30005, 30006]);

export function createTwilioSender(config: TwilioConfig): ChannelSender {
  const http = providerHttpClient(config.baseUrl, config.timeoutMs);
  const url = `${config.baseUrl.replace(/\/+$/, "")}/2010-04-01/Accounts/${config.accountSid}/Messages.json`;
  const auth = `Basic ${Buffer.from(`${config.accountSid}:${config.authToken}`).toString("base64")}`;
  return {
    provider: "twilio",
    async send(msg, signal) {
      if (signal.aborted) throw new SendError("send aborted", { permanent: false });
      const form = new URLSearchParams({ To: msg.to, Body: plainText(msg.content) });
      if (config.messagingServiceSid) form.set("MessagingServiceSid", config.messagingServiceSid);
      else form.set("From", config.from!);
      let res;
      try {
        res = await http.request(url, {
          method: "POST",
          // Twilio de-duplicates requests carrying the same idempotency token.
          headers: { authorization: auth, "content-type": "application/x-www-form-urlencoded", accept: "application/json", "i-twilio-idempotency-token": msg.deliveryId },
          body: form.toString(),
        });
      } catch (err) {
        throw requestFailure("twilio", err, config.authToken);
      }
      const body = parseJson(res.body);
      if (res.status >= 200 && res.status < 300) {
        const sid = pick(body, "sid");
        return { providerId: typeof sid === "string" ? sid : undefined };
      }
      const code = Number(pick(body, "code"));
      const message = String(pick(body, "message") ?? res.body.slice(0, 200));
      if (PERMANENT_CODES.has(code)) throw new SendError(`twilio ${code}: ${message}`, { permanent: true });
      throw httpFailure("twilio", res.status, Number.isFinite(code) ? `${code} ${message}` : message, { retryAfter: res.headers["retry-after"], credentialsTransient: true });
    },
    async close() {},
  };
}

export const twilio: ChannelProvider<TwilioConfig> = {
  name: "twilio",
  channel: "sms",
  configSchema: TwilioConfig,
  fromEnv(env) {
    if (!env.NOTIFY_SMS_TWILIO_ACCOUNT_SID) return undefined;
    return {
      accountSid: env.NOTIFY_SMS_TWILIO_ACCOUNT_SID,
      authToken: env.NOTIFY_SMS_TWILIO_AUTH_TOKEN ?? "",
      from: env.NOTIFY_SMS_TWILIO_FROM || undefined,
      messagingServiceSid: env.NOTIFY_SMS_TWILIO_MESSAGING_SERVICE_SID || undefined,
      baseUrl: env.NOTIFY_SMS_TWILIO_BASE_URL || undefined,
      timeoutMs: env.NOTIFY_SMS_TIMEOUT_MS ? Number(env.NOTIFY_SMS_TIMEOUT_MS) : undefined,
    };
  },
  address: (user) => user.phone ?? undefined,
  create: (config) => createTwilioSender(config),
};
