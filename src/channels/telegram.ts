/**
 * Telegram through the Bot API `sendMessage` (core.telegram.org/bots/api#sendmessage).
 *
 *   NOTIFY_TELEGRAM_BOT_TOKEN       enables the provider (from @BotFather)
 *   NOTIFY_TELEGRAM_API_URL         default https://api.telegram.org (a local Bot API server, a test peer)
 *   NOTIFY_TELEGRAM_BOT_USERNAME    for /start deep links (t.me/<bot>?start=<token>)
 *   NOTIFY_TELEGRAM_WEBHOOK_SECRET  path segment and X-Telegram-Bot-Api-Secret-Token of the webhook
 *   NOTIFY_TELEGRAM_RATE            default 30/s, Telegram's documented bulk limit per bot
 *
 * A template's `html` part is sent with parse_mode HTML (values escaped by the template engine's
 * telegram-html mode); otherwise the text goes plain, so nothing in it is read as markup.
 */
import * as v from "valibot";
import { ESCAPERS } from "../templates/escape.ts";
import { isFreeForm } from "./content.ts";
import { httpFailure, parseJson, pick, providerHttpClient, requestFailure } from "./http-provider.ts";
import { SendError, type ChannelProvider, type ChannelSender, type OutboundMessage } from "./types.ts";

export const DEFAULT_TELEGRAM_API = "https://api.telegram.org";

const TelegramConfig = v.object({
  token: v.pipe(v.string(), v.regex(/^[0-9]{3,20}:[A-Za-z0-9_-]{20,100}$/, "must be a bot token such as 123456:ABC-DEF...")),
  apiUrl: v.optional(v.pipe(v.string(), v.url(), v.regex(/^https?:\/\//, "must be an http(s) URL")), DEFAULT_TELEGRAM_API),
  botUsername: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z][A-Za-z0-9_]{3,31}$/, "must be a bot username without @"))),
  // Telegram allows 1-256 characters A-Z a-z 0-9 _ - for secret_token.
  webhookSecret: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{16,256}$/, "must be 16-256 characters A-Z a-z 0-9 _ -"))),
  timeoutMs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(100)), 10_000),
});
export type TelegramConfig = v.InferOutput<typeof TelegramConfig>;

/** The settings as read from the environment (also used by the gateway's link and webhook routes). */
export function telegramEnv(env: Record<string, string | undefined>) {
  const token = env.NOTIFY_TELEGRAM_BOT_TOKEN;
  if (!token) return undefined;
  return {
    token,
    apiUrl: env.NOTIFY_TELEGRAM_API_URL || undefined,
    botUsername: env.NOTIFY_TELEGRAM_BOT_USERNAME?.replace(/^@/, "") || undefined,
    webhookSecret: env.NOTIFY_TELEGRAM_WEBHOOK_SECRET || undefined,
    timeoutMs: env.NOTIFY_TELEGRAM_TIMEOUT_MS ? Number(env.NOTIFY_TELEGRAM_TIMEOUT_MS) : undefined,
  };
}

/** Parsed settings or undefined when Telegram is not configured (invalid settings also read as absent here; start-up reports them). */
export function telegramSettings(env: Record<string, string | undefined>): TelegramConfig | undefined {
  const raw = telegramEnv(env);
  if (!raw) return undefined;
  const r = v.safeParse(TelegramConfig, raw);
  return r.success ? r.output : undefined;
}

const esc = ESCAPERS["telegram-html"];

/** The sendMessage body: HTML when the template has an html part or a free-form title to bold. */
export function telegramMessage(msg: OutboundMessage): Record<string, unknown> {
  const c = msg.content;
  const base = { chat_id: msg.to, link_preview_options: { is_disabled: true } };
  if (c.html) return { ...base, text: c.html, parse_mode: "HTML" };
  if (isFreeForm(c) && c.title) return { ...base, text: c.text ? `<b>${esc(c.title)}</b>\n${esc(c.text)}` : `<b>${esc(c.title)}</b>`, parse_mode: "HTML" };
  return { ...base, text: c.text || c.title || "" };
}

// Bot API descriptions that mean this chat will never accept the message.
const PERMANENT_400 = /chat not found|user not found|bot was blocked|user is deactivated|peer_id_invalid|chat_id is empty|message is too long|can't parse entities|message text is empty/i;

export function createTelegramSender(config: TelegramConfig): ChannelSender {
  const http = providerHttpClient(config.apiUrl, config.timeoutMs);
  const url = `${config.apiUrl.replace(/\/+$/, "")}/bot${config.token}/sendMessage`;
  return {
    provider: "telegram",
    async send(msg, signal) {
      if (signal.aborted) throw new SendError("send aborted", { permanent: false });
      let res;
      try {
        res = await http.request(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(telegramMessage(msg)) });
      } catch (err) {
        // The token is part of the URL: never let it into an error (they reach logs and the API).
        throw requestFailure("telegram", err, config.token);
      }
      const body = parseJson(res.body);
      if (res.status >= 200 && res.status < 300 && pick(body, "ok") === true) {
        const id = pick(body, "result.message_id");
        return { providerId: id === undefined ? undefined : String(id) };
      }
      const description = String(pick(body, "description") ?? res.body.slice(0, 200));
      if (res.status === 429) {
        const after = Number(pick(body, "parameters.retry_after"));
        throw new SendError(`telegram HTTP 429: ${description}`, { permanent: false, retryAfterMs: Number.isFinite(after) && after > 0 ? after * 1000 : undefined });
      }
      // 403: the user blocked the bot or left the chat; only they can undo it.
      if (res.status === 403 || (res.status === 400 && PERMANENT_400.test(description))) {
        throw new SendError(`telegram HTTP ${res.status}: ${description}`, { permanent: true });
      }
      // 401/404: our token is wrong or revoked — a provider fault for the circuit, not the message's.
      if (res.status === 401 || res.status === 404) throw new SendError(`telegram HTTP ${res.status}: bot token rejected (${description})`, { permanent: false });
      throw httpFailure("telegram", res.status, description, { retryAfter: res.headers["retry-after"] });
    },
    async close() {},
  };
}

export const telegram: ChannelProvider<TelegramConfig> = {
  name: "telegram",
  channel: "telegram",
  configSchema: TelegramConfig,
  defaultRate: "30/s",
  fromEnv: (env) => telegramEnv(env),
  address: (user) => user.telegram_chat_id ?? undefined,
  create: (config) => createTelegramSender(config),
};
