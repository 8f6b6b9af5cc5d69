/**
 * Builds the App value for a process: storage, queue, repositories, channels and services.
 * Roles take what they need from it.
 */
import type { App } from "../app.ts";
import type { Config } from "../config.ts";
import { EmbeddedModeError, openStorage } from "../embedded/open.ts";
import type { EmbeddedStore } from "../embedded/store.ts";
import type { Logger } from "../runtime/log.ts";
import type { Lifecycle } from "../runtime/lifecycle.ts";
import { createChannels } from "../channels/registry.ts";
import { createApiKeyRepo } from "../store/api-keys.ts";
import { createUserRepo } from "../store/users.ts";
import { createTemplateRepo } from "../store/templates.ts";
import { createNotificationRepo } from "../store/notifications.ts";
import { createDeliveryRepo } from "../store/deliveries.ts";
import { createDeadLetterRepo } from "../store/dead-letters.ts";
import { createRuleRepo } from "../store/rules.ts";
import { createPreferenceRepo } from "../store/preferences.ts";
import { createInboxRepo } from "../store/inbox.ts";
import { createInboxService } from "../services/inbox.ts";
import { createEventService } from "../services/events.ts";
import { createRelay } from "../services/relay.ts";
import { createAuditPublisher } from "../audit/publisher.ts";

export class StartupError extends Error {}

export async function buildApp(config: Config, log: Logger, lifecycle: Lifecycle, earlyStore?: Promise<EmbeddedStore>): Promise<App> {
  // PostgreSQL/RabbitMQ when configured, else embedded (SPEC 6): src/embedded/open.ts.
  const { sql, queue, mode, lost } = await openStorage(config, log, lifecycle, earlyStore).catch((err: Error) => {
    throw err instanceof EmbeddedModeError ? new StartupError(err.message) : err;
  });

  const repos = {
    apiKeys: createApiKeyRepo(sql),
    users: createUserRepo(sql),
    templates: createTemplateRepo(sql),
    notifications: createNotificationRepo(sql),
    deliveries: createDeliveryRepo(sql),
    deadLetters: createDeadLetterRepo(sql),
    rules: createRuleRepo(sql),
    preferences: createPreferenceRepo(sql),
    inbox: createInboxRepo(sql),
  };
  const channels = createChannels(config.env, { log, publicUrl: config.publicUrl, mailFrom: config.mailFrom, dataDir: config.dataDir, sql, queue, sends: config.roles.includes("worker") });
  lifecycle.add("channels", async () => {
    for (const rt of channels.values()) for (const s of rt.senders) await s.close();
  });
  const relay = createRelay({ queue, notifications: repos.notifications, log });
  const events = createEventService({
    notifications: repos.notifications,
    templates: repos.templates,
    relay,
    queue,
    log,
    maxRecipients: config.maxRecipients,
    enabledChannels: () => (config.roles.includes("worker") ? new Set(channels.keys()) : undefined),
    findRule: (event) => repos.rules.find(event),
  });
  // Stopped before the queue (lifecycle runs in reverse), so its last records still get out.
  const audit = createAuditPublisher({ queue, log, role: config.roles.join(","), includePii: config.auditIncludePii });
  lifecycle.add("audit-publisher", () => audit.stop(3_000));
  return {
    config,
    log,
    lifecycle,
    sql,
    queue,
    repos,
    channels,
    events,
    relay,
    inbox: createInboxService({ inbox: repos.inbox, queue, log }),
    audit,
    readiness: new Map(),
    mode,
    storageLost: lost,
  };
}
