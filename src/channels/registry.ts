/**
 * The static provider registry. Providers are listed by name; a channel may list several providers
 * (NOTIFY_<CHANNEL>_PROVIDERS=a,b) for failover in that order.
 */
import * as v from "valibot";
import type { ChannelName } from "../schemas/event.ts";
import { email } from "./email.ts";
import type { ChannelProvider, ChannelSender, ProviderDeps } from "./types.ts";

export const PROVIDERS: ChannelProvider<any>[] = [email];

export interface ChannelRuntime {
  channel: ChannelName;
  provider: ChannelProvider<any>;
  senders: ChannelSender[];
}

export class ChannelConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("; "));
  }
}

/** Builds senders for every configured provider. Throws ChannelConfigError listing every problem. */
export function createChannels(env: Record<string, string | undefined>, deps: ProviderDeps): Map<ChannelName, ChannelRuntime> {
  const problems: string[] = [];
  const out = new Map<ChannelName, ChannelRuntime>();
  for (const provider of PROVIDERS) {
    const raw = provider.fromEnv(env, deps);
    if (raw === undefined) continue;
    const parsed = v.safeParse(provider.configSchema, raw);
    if (!parsed.success) {
      for (const issue of parsed.issues) problems.push(`${provider.channel}/${provider.name}: ${v.getDotPath(issue) ?? ""} ${issue.message}`);
      continue;
    }
    const sender = provider.create(parsed.output, deps);
    const existing = out.get(provider.channel);
    if (existing) existing.senders.push(sender);
    else out.set(provider.channel, { channel: provider.channel, provider, senders: [sender] });
  }
  if (problems.length) throw new ChannelConfigError(problems);
  return out;
}
