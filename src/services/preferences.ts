/**
 * Preferences as a use-case: read and replace a user's preferences (called by the API-key route
 * and, for end users, by the JWT routes of issue 4 with the caller's own id), and the worker's
 * screen deciding per recipient and channel: opted out → skipped with the reason; quiet hours →
 * sent when they end (priority "critical" goes at once), or skipped when they end after the event's
 * expires_at; past expires_at → skipped; e-mail gets a one-click unsubscribe link.
 */
import type { AcceptedEvent, ChannelName } from "../schemas/event.ts";
import { parse } from "../schemas/common.ts";
import { PreferencesInput, type OptOut } from "../schemas/preferences.ts";
import type { PreferenceRepo, Preferences } from "../store/preferences.ts";
import type { User } from "../store/users.ts";
import type { Screening } from "./dispatch.ts";
import { quietUntil } from "./quiet-hours.ts";
import type { UnsubscribeSigner } from "./unsubscribe.ts";

/** The category of a message that names none: opt-outs and unsubscribe links use this key. */
export const DEFAULT_CATEGORY = "general";

/**
 * Channels quiet hours hold back. In-app messages wait silently in the inbox and webhooks go to
 * machines, so neither disturbs anyone at night.
 */
const QUIET_CHANNELS: ReadonlySet<ChannelName> = new Set(["email", "sms", "telegram"]);

export function createPreferenceService(deps: { preferences: PreferenceRepo }) {
  return {
    get: (userId: string): Promise<Preferences> => deps.preferences.get(userId),
    /** Validates (422 naming the field) and replaces. */
    async set(userId: string, input: unknown): Promise<Preferences> {
      return deps.preferences.put(userId, parse(PreferencesInput, input));
    },
  };
}

export type PreferenceService = ReturnType<typeof createPreferenceService>;

export function isOptedOut(optOuts: readonly OptOut[], category: string, channel: string): boolean {
  return optOuts.some((o) => (o.category === "*" || o.category === category) && (o.channel === "*" || o.channel === channel));
}

export interface ScreenDeps {
  preferences: PreferenceRepo;
  /** Injected so tests can put the clock inside or outside quiet hours. */
  now?: () => Date;
  unsubscribe?: UnsubscribeSigner;
  publicUrl: string;
}

export function createPreferenceScreen(deps: ScreenDeps) {
  const now = deps.now ?? (() => new Date());
  const base = deps.publicUrl.replace(/\/+$/, "");
  return async function screen(user: User, channel: ChannelName, event: AcceptedEvent): Promise<Screening | undefined> {
    const prefs = await deps.preferences.get(user.id);
    const category = event.category ?? DEFAULT_CATEGORY;
    if (isOptedOut(prefs.opt_outs, category, channel)) return { skip: `opted out of ${category} on ${channel}` };
    const expires = event.expires_at ? Date.parse(event.expires_at) : Infinity;
    if (Date.now() >= expires) return { skip: `expired at ${event.expires_at} before it could be sent` };
    if (event.priority === "critical") return undefined;
    const out: Screening = {};
    if (channel === "email" && deps.unsubscribe) {
      out.meta = { unsubscribe_url: `${base}/u/${deps.unsubscribe.sign({ userId: user.id, category, channel: "email" })}` };
    }
    if (prefs.quiet_hours && QUIET_CHANNELS.has(channel)) {
      const t = now();
      const until = quietUntil(prefs.quiet_hours, prefs.quiet_hours.timezone ?? user.timezone ?? "UTC", t);
      // The injected clock says what time it is for the recipient; the wait it implies runs on real time.
      if (until) out.deferUntil = new Date(Date.now() + (until.getTime() - t.getTime()));
      if (out.deferUntil && out.deferUntil.getTime() > expires) {
        return { skip: `quiet hours until ${out.deferUntil.toISOString()}, past the event's expires_at ${event.expires_at}` };
      }
    }
    return out.meta || out.deferUntil ? out : undefined;
  };
}
