/**
 * The static provider registry. Providers are listed by name; a channel may have several
 * providers (or several instances of one, e.g. NOTIFY_SMTP_URL and NOTIFY_SMTP_URL_2), tried in
 * order for failover: registry order, or NOTIFY_<CHANNEL>_PROVIDERS=a,b to choose and order them.
 * Every sender is wrapped with its own circuit breaker and, when a rate is set, a token bucket.
 */
import * as v from "valibot";
import type { ChannelName } from "../schemas/event.ts";
import { createCircuitBreaker, DEFAULT_BREAKER_COOLDOWN_MS, DEFAULT_BREAKER_THRESHOLD } from "./circuit-breaker.ts";
import { email } from "./email.ts";
import { emailOutbox } from "./email-outbox.ts";
import type { GuardedSender } from "./failover.ts";
import { inApp } from "./in-app.ts";
import { observeCircuit } from "./metrics.ts";
import { createTokenBucket, parseRate } from "./rate-limit.ts";
import { smsHttp } from "./sms.ts";
import { telegram } from "./telegram.ts";
import { twilio } from "./twilio.ts";
import type { ChannelProvider, ChannelSender, ProviderDeps } from "./types.ts";
import { webhook } from "./webhook.ts";

export const PROVIDERS: ChannelProvider<any>[] = [email, emailOutbox, inApp, smsHttp, twilio, telegram, webhook];

export interface ChannelRuntime {
  channel: ChannelName;
  provider: ChannelProvider<any>;
  /** In failover order; each one a GuardedSender (breaker, rate limit). */
  senders: ChannelSender[];
}

export class ChannelConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("; "));
  }
}

// A burst waits this long at most for a rate-limit token; longer, and the delivery is postponed.
const DEFAULT_RATE_MAX_WAIT_MS = 5_000;

const envPrefix = (channel: string) => `NOTIFY_${channel.toUpperCase()}_`;

/** Builds senders for every configured provider. Throws ChannelConfigError listing every problem. */
export function createChannels(env: Record<string, string | undefined>, deps: ProviderDeps): Map<ChannelName, ChannelRuntime> {
  const problems: string[] = [];
  const built = new Map<ChannelName, { provider: ChannelProvider<any>; sender: ChannelSender }[]>();
  for (const provider of PROVIDERS) {
    const raw = provider.fromEnv(env, deps);
    if (raw === undefined) continue;
    for (const instance of Array.isArray(raw) ? raw : [raw]) {
      const parsed = v.safeParse(provider.configSchema, instance);
      if (!parsed.success) {
        for (const issue of parsed.issues) problems.push(`${provider.channel}/${provider.name}: ${v.getDotPath(issue) ?? ""} ${issue.message}`);
        continue;
      }
      let sender: ChannelSender;
      try {
        sender = provider.create(parsed.output, deps);
      } catch (err) {
        problems.push(`${provider.channel}/${provider.name}: ${(err as Error).message}`);
        continue;
      }
      const list = built.get(provider.channel) ?? [];
      list.push({ provider, sender });
      built.set(provider.channel, list);
    }
  }
  const out = new Map<ChannelName, ChannelRuntime>();
  for (const [channel, list] of built) {
    const prefix = envPrefix(channel);
    const order = env[`${prefix}PROVIDERS`]?.split(",").map((s) => s.trim()).filter(Boolean);
    let chosen = list;
    if (order?.length) {
      const unknown = order.filter((name) => !list.some((e) => e.sender.provider === name));
      if (unknown.length) problems.push(`${prefix}PROVIDERS: ${unknown.join(", ")} not configured (configured: ${list.map((e) => e.sender.provider).join(", ")})`);
      chosen = order.map((name) => list.find((e) => e.sender.provider === name)).filter((e): e is (typeof list)[number] => !!e);
    }
    const threshold = intEnv(env, `${prefix}BREAKER_THRESHOLD`, DEFAULT_BREAKER_THRESHOLD, problems);
    const coolDownMs = intEnv(env, `${prefix}BREAKER_COOLDOWN_MS`, DEFAULT_BREAKER_COOLDOWN_MS, problems);
    const maxRateWaitMs = intEnv(env, `${prefix}RATE_MAX_WAIT_MS`, DEFAULT_RATE_MAX_WAIT_MS, problems);
    const senders = chosen.map(({ provider, sender }) => {
      let rate;
      try {
        rate = parseRate(env[`${prefix}RATE`] ?? provider.defaultRate);
      } catch (err) {
        problems.push(`${prefix}RATE: ${(err as Error).message}`);
      }
      const breaker = createCircuitBreaker({ threshold, coolDownMs, onChange: (state) => observeCircuit(channel, sender.provider, state, deps.log) });
      observeCircuit(channel, sender.provider, "closed");
      const guarded: GuardedSender = {
        provider: sender.provider,
        send: (msg, signal) => sender.send(msg, signal),
        close: () => sender.close(),
        breaker,
        limiter: rate ? createTokenBucket(rate) : undefined,
        maxRateWaitMs,
      };
      return guarded;
    });
    if (senders.length) out.set(channel, { channel, provider: chosen[0]!.provider, senders });
  }
  if (problems.length) throw new ChannelConfigError(problems);
  return out;
}

function intEnv(env: Record<string, string | undefined>, name: string, def: number, problems: string[]): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    problems.push(`${name}: expected a positive integer, got "${raw}"`);
    return def;
  }
  return n;
}
