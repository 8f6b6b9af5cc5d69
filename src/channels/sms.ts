/**
 * SMS through a generic HTTP provider: one POST per message, JSON or form-encoded, with the field
 * names the provider expects.
 *
 *   NOTIFY_SMS_URL          enables the provider, e.g. https://sms.example.com/api/send
 *   NOTIFY_SMS_FORMAT       json (default) | form
 *   NOTIFY_SMS_TOKEN        Authorization: Bearer <token>
 *   NOTIFY_SMS_USERNAME, NOTIFY_SMS_PASSWORD   HTTP basic auth instead
 *   NOTIFY_SMS_FROM         sender id / number, sent in the "from" field when set
 *   NOTIFY_SMS_FIELD_TO, NOTIFY_SMS_FIELD_TEXT, NOTIFY_SMS_FIELD_FROM   field names (to, text, from)
 *   NOTIFY_SMS_ID_FIELD     dot path of the message id in a JSON answer (default id)
 *
 * Every request carries `Idempotency-Key: <delivery id>`, so a provider that honours it drops the
 * duplicate a crash between its answer and our bookkeeping could cause.
 */
import * as v from "valibot";
import { plainText } from "./content.ts";
import { httpFailure, parseJson, pick, providerHttpClient, requestFailure } from "./http-provider.ts";
import { SendError, type ChannelProvider, type ChannelSender } from "./types.ts";

const FieldName = v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.\-[\]]{1,64}$/, "must be a field name"));

const SmsConfig = v.object({
  url: v.pipe(v.string(), v.url(), v.regex(/^https?:\/\//, "must be an http(s) URL")),
  format: v.optional(v.picklist(["json", "form"], "must be json or form"), "json"),
  token: v.optional(v.pipe(v.string(), v.minLength(1))),
  username: v.optional(v.string()),
  password: v.optional(v.string()),
  from: v.optional(v.pipe(v.string(), v.maxLength(32))),
  fields: v.object({ to: FieldName, text: FieldName, from: FieldName }),
  idField: v.optional(v.pipe(v.string(), v.maxLength(128)), "id"),
  timeoutMs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(100)), 10_000),
});
type SmsConfig = v.InferOutput<typeof SmsConfig>;

export function createSmsHttpSender(config: SmsConfig): ChannelSender {
  const http = providerHttpClient(config.url, config.timeoutMs);
  const auth = config.token
    ? `Bearer ${config.token}`
    : config.username !== undefined
      ? `Basic ${Buffer.from(`${config.username}:${config.password ?? ""}`).toString("base64")}`
      : undefined;
  const secrets = [config.token, config.password].filter((s): s is string => !!s);
  return {
    provider: "sms-http",
    async send(msg, signal) {
      if (signal.aborted) throw new SendError("send aborted", { permanent: false });
      const fields: Record<string, string> = { [config.fields.to]: msg.to, [config.fields.text]: plainText(msg.content) };
      if (config.from) fields[config.fields.from] = config.from;
      const body = config.format === "json" ? JSON.stringify(fields) : new URLSearchParams(fields).toString();
      const headers: Record<string, string> = {
        "content-type": config.format === "json" ? "application/json" : "application/x-www-form-urlencoded",
        accept: "application/json",
        "idempotency-key": msg.deliveryId,
      };
      if (auth) headers.authorization = auth;
      let res;
      try {
        res = await http.request(config.url, { method: "POST", headers, body });
      } catch (err) {
        throw requestFailure("sms", err, secrets[0]);
      }
      if (res.status >= 200 && res.status < 300) {
        const id = pick(parseJson(res.body), config.idField);
        return { providerId: typeof id === "string" || typeof id === "number" ? String(id) : undefined };
      }
      throw httpFailure("sms", res.status, res.body, { retryAfter: res.headers["retry-after"], credentialsTransient: true });
    },
    async close() {},
  };
}

export const smsHttp: ChannelProvider<SmsConfig> = {
  name: "sms-http",
  channel: "sms",
  configSchema: SmsConfig,
  fromEnv(env) {
    if (!env.NOTIFY_SMS_URL) return undefined;
    return {
      url: env.NOTIFY_SMS_URL,
      format: env.NOTIFY_SMS_FORMAT || undefined,
      token: env.NOTIFY_SMS_TOKEN || undefined,
      username: env.NOTIFY_SMS_USERNAME || undefined,
      password: env.NOTIFY_SMS_PASSWORD || undefined,
      from: env.NOTIFY_SMS_FROM || undefined,
      fields: { to: env.NOTIFY_SMS_FIELD_TO || "to", text: env.NOTIFY_SMS_FIELD_TEXT || "text", from: env.NOTIFY_SMS_FIELD_FROM || "from" },
      idField: env.NOTIFY_SMS_ID_FIELD || undefined,
      timeoutMs: env.NOTIFY_SMS_TIMEOUT_MS ? Number(env.NOTIFY_SMS_TIMEOUT_MS) : undefined,
    };
  },
  address: (user) => user.phone ?? undefined,
  create: (config) => createSmsHttpSender(config),
};
