/**
 * The worker role: consumes events and delivery jobs, sends through channel providers, records
 * poison messages. Delivery prefetch follows the send concurrency, so a worker never holds more
 * sends than it can work on (the rest stay in the broker for other workers).
 */
import type { App } from "../app.ts";
import { createDispatcher, type Hooks, type UserDirectory } from "../services/dispatch.ts";
import { startReaper } from "../services/reaper.ts";
import { renderFor } from "../services/render.ts";
import { createCampaignService } from "../services/campaigns.ts";
import { createSeedBroadcaster } from "../services/seed-broadcast.ts";
import { createCampaignRepo } from "../store/campaigns.ts";

/**
 * Events in hand per send slot. Planning an event is a few statements that concurrent events share
 * (group commit), so more events in hand means fewer, larger statements; the sends they lead to
 * stay limited by the concurrency. Embedded, concurrency 32: 32 → 128 events in hand took
 * events/s from ≈ 750 to ≈ 1,090.
 */
const EVENTS_PER_SEND = 4;

export async function startWorker(app: App, opts: { directory?: UserDirectory; hooks?: Hooks } = {}): Promise<{ stop(): Promise<void> }> {
  const campaigns = createCampaignService({
    sql: app.sql,
    campaigns: createCampaignRepo(app.sql),
    templates: app.repos.templates,
    enabledChannels: () => new Set(app.channels.keys()),
  });
  const dispatcher = createDispatcher({
    ...app.repos,
    directory: opts.directory ?? app.repos.users,
    channels: app.channels,
    queue: app.queue,
    events: app.events,
    render: renderFor,
    log: app.log,
    concurrency: app.config.workerConcurrency,
    maxAttempts: app.config.maxAttempts,
    sendTimeoutMs: app.config.sendTimeoutMs,
    hooks: opts.hooks,
    seedBroadcast: createSeedBroadcaster({ campaigns, templates: app.repos.templates, audit: app.audit, log: app.log }),
  });
  const prefetch = app.config.workerConcurrency;
  // Over RabbitMQ, events published together arrive packed (up to PACK_MAX in one message), so a
  // message already brings several events: one message per send slot keeps about as many in hand
  // (four per slot peaked at 146 MB RSS with packs of 8 and 161 MB with packs of 16 in a 30,000-event
  // e-mail burst; one per slot, 131–134 MB: BENCHMARKS.md, tenth session).
  const eventsInHand = app.queue.kind === "amqp" ? prefetch : prefetch * EVENTS_PER_SEND;
  const consumers = [
    await app.queue.consume("events", dispatcher.handleEvent, { prefetch: eventsInHand }),
    // A delivery job may be a pack of JOB_PACK deliveries: fewer of them in hand keep memory bounded
    // (sends are limited by the concurrency anyway) while single retries still run side by side.
    await app.queue.consume("deliveries", dispatcher.handleDelivery, { prefetch: Math.min(prefetch, 16) }),
    await app.queue.consume("dead-letters", dispatcher.handleDeadLetter, { prefetch: 10 }),
  ];
  const stopReaper = startReaper({ sql: app.sql, queue: app.queue, log: app.log });
  app.log.info("worker consuming", { prefetch, channels: [...app.channels.keys()] });
  return {
    async stop() {
      await stopReaper();
      // Stop taking messages and finish the ones in hand; unacked ones return to the broker.
      await Promise.all(consumers.map((c) => c.stop()));
    },
  };
}
