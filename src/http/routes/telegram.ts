/**
 * Binding a Telegram chat to a user with a deep link:
 * 1. POST /users/{id}/telegram-link (users:write) → {url: "https://t.me/<bot>?start=<token>", token, expires_at};
 * 2. the user opens the link and presses Start; Telegram sends "/start <token>" to our webhook
 *    POST /telegram/webhook/{secret} (registered with setWebhook, secret_token = the same secret);
 * 3. the token is used once and the chat id is stored on the user.
 * The webhook answers with a sendMessage method call in the response body, so the user sees a
 * confirmation without another request from us.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { Hono } from "hono";
import type { App } from "../../app.ts";
import { telegramSettings } from "../../channels/telegram.ts";
import { AppError, notFound } from "../../runtime/errors.ts";
import { createTelegramLinkRepo } from "../../store/telegram-links.ts";
import { requireScope } from "../auth.ts";
import type { Env } from "../env.ts";
import { addOperations } from "../openapi.ts";
import { userId } from "./users.ts";

addOperations([
  { method: "post", path: "/api/v1/users/{id}/telegram-link", summary: "A one-time /start deep link that binds the user's Telegram chat", scope: "users:write", status: 201, tag: "users" },
  { method: "post", path: "/api/v1/telegram/webhook/{secret}", summary: "Telegram Bot API webhook (verifies X-Telegram-Bot-Api-Secret-Token)", auth: "none", tag: "telegram" },
]);

// An hour is enough to open a link sent by e-mail or shown on a page, short enough that a leaked one soon dies.
const LINK_TTL_MS = 60 * 60 * 1000;

const sameSecret = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/** "/start <token>" or "/start@bot_name <token>"; deep-link payloads are A-Z a-z 0-9 _ - up to 64. */
const START = /^\/start(?:@[A-Za-z0-9_]+)?\s+([A-Za-z0-9_-]{1,64})\s*$/;

export function telegramRoutes(api: Hono<Env>, app: App) {
  const settings = telegramSettings(app.config.env);
  const links = createTelegramLinkRepo(app.sql);

  api.post("/users/:id/telegram-link", requireScope("users:write"), async (c) => {
    const id = userId(c.req.param("id"));
    if (!settings?.botUsername) {
      throw new AppError("TELEGRAM_NOT_CONFIGURED", "Telegram deep links need NOTIFY_TELEGRAM_BOT_TOKEN and NOTIFY_TELEGRAM_BOT_USERNAME", {
        status: 422,
        details: [{ path: "NOTIFY_TELEGRAM_BOT_USERNAME", message: "not configured on this server" }],
      });
    }
    if (!(await app.repos.users.get(id))) throw notFound("user", id);
    const token = randomBytes(24).toString("base64url");
    const expiresAt = new Date(Date.now() + LINK_TTL_MS);
    await links.create(id, token, expiresAt);
    return c.json({ url: `https://t.me/${settings.botUsername}?start=${token}`, token, expires_at: expiresAt.toISOString() }, 201);
  });

  api.post("/telegram/webhook/:secret", async (c) => {
    const expected = settings?.webhookSecret;
    const header = c.req.header("x-telegram-bot-api-secret-token") ?? "";
    // Unconfigured, or either secret wrong: look like a route that does not exist.
    if (!expected || !sameSecret(c.req.param("secret"), expected) || !sameSecret(header, expected)) {
      throw new AppError("NOT_FOUND", `no route for POST ${c.req.path.replace(/[^/]+$/, "{secret}")}`);
    }
    let update: { message?: { text?: unknown; chat?: { id?: unknown } } };
    try {
      update = (await c.req.json()) as typeof update;
    } catch {
      throw new AppError("MALFORMED_JSON", "request body is not valid JSON", { details: [{ path: "(body)", message: "not valid JSON" }] });
    }
    const text = update?.message?.text;
    const chatId = update?.message?.chat?.id;
    const m = typeof text === "string" ? text.match(START) : null;
    // Anything else (other commands, edits, joins) is acknowledged and ignored, or Telegram would resend it.
    if (!m || (typeof chatId !== "number" && typeof chatId !== "string") || !/^-?\d{1,20}$/.test(String(chatId))) return c.json({ ok: true });
    const user = await links.consume(m[1]!, String(chatId));
    c.get("log").info("telegram link", { outcome: user ? "linked" : "rejected", user_id: user });
    const reply = user ? "Notifications are now on for this chat." : "This link is not valid any more. Ask for a new one.";
    return c.json({ method: "sendMessage", chat_id: chatId, text: reply });
  });
}
