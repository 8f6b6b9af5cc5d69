/**
 * The one value that holds every component of a process, handed to roles, routes and services
 * explicitly (no hidden singletons besides the root logger and the metrics registry).
 */
import type { Config } from "./config.ts";
import type { AuditPublisher } from "./audit/publisher.ts";
import type { Logger } from "./runtime/log.ts";
import type { Lifecycle } from "./runtime/lifecycle.ts";
import type { Queue } from "./mq/queue.ts";
import type { Sql } from "./store/db.ts";
import type { ChannelName } from "./schemas/event.ts";
import type { ChannelRuntime } from "./channels/registry.ts";
import type { ApiKeyRepo } from "./store/api-keys.ts";
import type { UserRepo } from "./store/users.ts";
import type { TemplateRepo } from "./store/templates.ts";
import type { NotificationRepo } from "./store/notifications.ts";
import type { DeliveryRepo } from "./store/deliveries.ts";
import type { DeadLetterRepo } from "./store/dead-letters.ts";
import type { RuleRepo } from "./store/rules.ts";
import type { PreferenceRepo } from "./store/preferences.ts";
import type { EventService } from "./services/events.ts";
import type { Relay } from "./services/relay.ts";
import type { InboxRepo } from "./store/inbox.ts";
import type { InboxService } from "./services/inbox.ts";

export interface Repos {
  apiKeys: ApiKeyRepo;
  users: UserRepo;
  templates: TemplateRepo;
  notifications: NotificationRepo;
  deliveries: DeliveryRepo;
  deadLetters: DeadLetterRepo;
  rules: RuleRepo;
  preferences: PreferenceRepo;
  inbox: InboxRepo;
}

export interface App {
  config: Config;
  log: Logger;
  lifecycle: Lifecycle;
  sql: Sql;
  queue: Queue;
  repos: Repos;
  channels: Map<ChannelName, ChannelRuntime>;
  events: EventService;
  relay: Relay;
  /** The end user's in-app inbox (REST, GraphQL, WebSocket). */
  inbox: InboxService;
  /** Publishes audit records (never blocks, never throws). */
  audit: AuditPublisher;
  /** Extra readiness checks roles register (name → check). */
  readiness: Map<string, () => Promise<{ ok: boolean; detail?: string }>>;
  /** Which parts run embedded (SPEC 6), for the banner and /readyz. */
  mode: { database: "postgres" | "embedded"; queue: "amqp" | "embedded" };
  /** Embedded mode: settles with the reason if the embedded PostgreSQL is lost (the run then stops, exit 1). */
  storageLost?: Promise<string>;
}
