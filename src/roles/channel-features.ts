/**
 * Issue 3's contributions to the gateway (rules, preferences, unsubscribe, Telegram linking) and
 * to the worker (the preference screen: opt-outs, quiet hours, unsubscribe links).
 */
import type { App } from "../app.ts";
import type { HttpExtensions } from "../http/app.ts";
import { preferenceRoutes } from "../http/routes/preferences.ts";
import { ruleRoutes } from "../http/routes/rules.ts";
import { telegramRoutes } from "../http/routes/telegram.ts";
import { unsubscribeRoutes } from "../http/routes/unsubscribe.ts";
import type { Hooks } from "../services/dispatch.ts";
import { createPreferenceScreen } from "../services/preferences.ts";
import { createUnsubscribeSigner } from "../services/unsubscribe.ts";

export function channelHttpExtension(): HttpExtensions {
  return { api: [ruleRoutes, preferenceRoutes, telegramRoutes], root: [unsubscribeRoutes] };
}

/** `now` is injectable so tests can place the clock inside or outside quiet hours. */
export function channelWorkerHooks(app: App, opts: { now?: () => Date } = {}): Hooks {
  const unsubscribe = createUnsubscribeSigner({ unsubscribeSecret: app.config.unsubscribeSecret, adminKey: app.config.adminKey, jwtSecret: app.config.jwtSecret });
  if (!unsubscribe) app.log.warn("no NOTIFY_UNSUBSCRIBE_SECRET (nor admin key / JWT secret): e-mails go out without unsubscribe links");
  return { screen: createPreferenceScreen({ preferences: app.repos.preferences, unsubscribe, publicUrl: app.config.publicUrl, now: opts.now }) };
}
