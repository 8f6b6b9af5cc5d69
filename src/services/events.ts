/**
 * Accepting events: validate, resolve defaults, write durably, answer. Shared by REST, GraphQL,
 * the seed endpoints and AMQP ingestion.
 *
 * Durability: before the 202, the event is both committed to PostgreSQL (group commit: concurrent
 * requests share one INSERT) and confirmed by RabbitMQ (publisher confirms), in parallel. When the
 * broker cannot confirm, the stored row gets an outbox row instead and the relay publishes it once
 * the broker is back, so a RabbitMQ outage costs no accepted event. When PostgreSQL cannot take the
 * row but the broker confirmed, the worker stores it from the message. Only when neither can take
 * it does the caller get 503 with Retry-After, never a 202.
 *
 * Why not "always outbox, then relay": that costs an outbox INSERT and DELETE per event on the hot
 * path; the outbox is only needed while the broker is unavailable.
 */
import { createHash } from "node:crypto";
import { AppError } from "../runtime/errors.ts";
import type { Logger } from "../runtime/log.ts";
import { metrics } from "../runtime/metrics.ts";
import { parse } from "../schemas/common.ts";
import { EventInput, type AcceptedEvent, type ChannelName } from "../schemas/event.ts";
import { createBatcher } from "../store/batcher.ts";
import type { NewNotification, NotificationRepo } from "../store/notifications.ts";
import type { TemplateRepo } from "../store/templates.ts";
import type { OutMessage, Queue } from "../mq/queue.ts";
import { toEventMessage, type Relay } from "./relay.ts";

export interface AcceptResult {
  id: string;
  status: "accepted" | "scheduled";
  replayed: boolean;
  /** The first response, on an idempotent replay. */
  response: Record<string, unknown>;
}

export interface AcceptContext {
  /** Who sent it: API key id, "amqp", "admin"... Also the idempotency scope. */
  source: string;
  idempotencyKey?: string;
}

export interface EventRule {
  template?: string;
  channels?: ChannelName[];
  category?: string;
  priority?: AcceptedEvent["priority"];
  webhook_url?: string;
}

export interface EventServiceDeps {
  notifications: NotificationRepo;
  templates: TemplateRepo;
  relay: Relay;
  queue: Queue;
  log: Logger;
  maxRecipients: number;
  /**
   * Channels that have a configured provider, when this process can know (it runs the worker too);
   * undefined on a gateway-only process, whose environment need not carry provider settings.
   */
  enabledChannels: () => Set<ChannelName> | undefined;
  /** Event rules (issue 3); undefined when the event has none. */
  findRule?: (event: string) => Promise<EventRule | undefined>;
}

/** Templates known to exist, remembered briefly so a hot event does not cost a lookup per request. */
const TEMPLATE_CACHE_MS = 5_000;

export function createEventService(deps: EventServiceDeps) {
  const known = new Map<string, number>();
  const templateExists = async (key: string) => {
    const until = known.get(key);
    if (until && until > Date.now()) return true;
    const ok = await deps.templates.exists(key);
    if (ok) known.set(key, Date.now() + TEMPLATE_CACHE_MS);
    return ok;
  };

  const none = <T>(items: T[]) => items.map(() => undefined);
  // One INSERT and one publish in flight: what arrives meanwhile shares the next one. More in
  // flight (this was 4 and 8) made smaller batches, and every batch costs PostgreSQL a commit and
  // RabbitMQ a log write and its confirms: on the 2-core bench host one in flight accepted 15-25 %
  // more events with less CPU in every process, and p99 at half load fell from 42 to 14-25 ms
  // (BENCHMARKS.md, ninth session).
  const committer = createBatcher<NewNotification, void>(async (items) => (await deps.notifications.insertMany(items, { outbox: false }), none(items)), {
    maxBatch: 500,
    maxInFlight: 1,
  });
  const publisher = createBatcher<OutMessage, void>(async (msgs) => (await deps.queue.publish("events", msgs), none(msgs)), { maxBatch: 500, maxInFlight: 1 });
  const outboxer = createBatcher<string, void>(async (ids) => (await deps.notifications.addOutbox(ids), none(ids)), { maxBatch: 500, maxInFlight: 2 });

  /** Validates and resolves an event; throws AppError naming the field at fault. */
  async function prepare(input: unknown, ctx: AcceptContext): Promise<{ event: AcceptedEvent; status: "accepted" | "scheduled" }> {
    const ev = parse(EventInput, input);
    if (ev.to.length > deps.maxRecipients) {
      throw new AppError("PAYLOAD_TOO_LARGE", `at most ${deps.maxRecipients} recipients per event`, {
        details: [{ path: "to", message: `has ${ev.to.length} recipients; the limit is ${deps.maxRecipients}` }],
      });
    }
    const rule = deps.findRule ? await deps.findRule(ev.event) : undefined;
    const template = ev.template ?? rule?.template;
    const channels = ev.channels ?? rule?.channels;
    if (!template && ev.body === undefined && ev.title === undefined) {
      throw new AppError("NO_TEMPLATE", `event ${ev.event} has no rule; give a template (or title/body)`, {
        status: 422,
        details: [{ path: "template", message: "required when no rule is defined for this event" }],
      });
    }
    if (!channels) {
      throw new AppError("NO_CHANNELS", `event ${ev.event} has no rule; give channels`, {
        details: [{ path: "channels", message: "required when no rule is defined for this event" }],
      });
    }
    const enabled = deps.enabledChannels();
    const disabled = enabled ? channels.filter((c) => !enabled.has(c)) : [];
    if (disabled.length) {
      throw new AppError("CHANNEL_NOT_CONFIGURED", `channel ${disabled.join(", ")} has no provider configured`, {
        status: 422,
        details: disabled.map((c) => ({ path: `channels.${channels.indexOf(c)}`, message: `channel ${c} is not configured on this server` })),
      });
    }
    if (template && !(await templateExists(template))) {
      throw new AppError("UNKNOWN_TEMPLATE", `template ${template} does not exist`, { details: [{ path: "template", message: "unknown template" }] });
    }
    if (ev.expires_at && ev.send_at && Date.parse(ev.expires_at) <= Date.parse(ev.send_at)) {
      throw new AppError("VALIDATION_FAILED", "expires_at must be after send_at", { details: [{ path: "expires_at", message: "must be after send_at" }] });
    }
    const now = new Date();
    let status: "accepted" | "scheduled" = "accepted";
    if (ev.send_at) {
      const at = new Date(ev.send_at);
      if (at.getTime() > now.getTime() + 1000) status = "scheduled";
    }
    const event: AcceptedEvent = {
      ...ev,
      template,
      channels: [...new Set(channels)],
      category: ev.category ?? rule?.category,
      // The schema defaults priority to "normal"; a rule's priority applies only when the producer gave none.
      priority: (isObject(input) && input.priority !== undefined ? ev.priority : rule?.priority) ?? ev.priority ?? "normal",
      webhook_url: rule?.webhook_url,
      notification_id: Bun.randomUUIDv7(),
      source: ctx.source,
      accepted_at: now.toISOString(),
    };
    return { event, status };
  }

  async function accept(input: unknown, ctx: AcceptContext): Promise<AcceptResult> {
    const started = performance.now();
    const idemKey = ctx.idempotencyKey ?? (isObject(input) && typeof input.idempotency_key === "string" ? input.idempotency_key : undefined);
    const requestHash = idemKey ? hashBody(input) : "";
    if (idemKey) {
      const prior = await durable(() => deps.notifications.findIdempotency(ctx.source, idemKey));
      if (prior) return replay(prior, requestHash);
    }
    const { event, status } = await prepare(input, ctx).catch((err) => {
      // A lookup that failed for want of the database (rule, template) is not the caller's fault.
      if (err instanceof AppError) throw err;
      return durable(() => Promise.reject(err));
    });
    const row: NewNotification = { id: event.notification_id, event: event.event, status, payload: event, payloadJson: JSON.stringify(event), source: ctx.source, send_at: event.send_at ?? null };
    const response = { id: event.notification_id, status };
    if (idemKey) {
      const prior = await durable(() => deps.notifications.insertIdempotent(row, ctx.source, idemKey, requestHash, response));
      if (prior) return replay(prior, requestHash);
      if (status === "accepted") deps.relay.enqueue(row);
    } else if (status === "scheduled") {
      await durable(() => committer.submit(row));
    } else {
      // While the broker is known to be down, go straight to the outbox instead of waiting on a reconnect.
      const publish = deps.queue.health().ok ? publisher.submit(toEventMessage(row)) : Promise.reject(new Error("broker unavailable"));
      const [stored, published] = await Promise.allSettled([committer.submit(row), publish]);
      if (published.status === "rejected") {
        metrics.publishFailures.inc({ topic: "events" });
        if (stored.status === "rejected") await durable(() => Promise.reject(stored.reason));
        // Stored but not published: the outbox keeps it until the broker is back.
        await durable(() => outboxer.submit(row.id));
      } else if (stored.status === "rejected") {
        deps.log.warn("event confirmed by the broker but not stored; the worker will store it", { notification_id: row.id, err: String(stored.reason) });
      }
    }
    metrics.eventsAccepted.inc({ source: ctx.source === "amqp" ? "amqp" : "api" });
    metrics.acceptLatency.observe((performance.now() - started) / 1000);
    return { id: row.id, status, replayed: false, response };
  }

  return { accept, prepare, drain: () => Promise.all([committer.drain(), publisher.drain(), outboxer.drain()]).then(() => {}) };
}

export type EventService = ReturnType<typeof createEventService>;

function replay(prior: { request_hash: string; response: Record<string, unknown>; notification_id: string }, requestHash: string): AcceptResult {
  if (prior.request_hash !== requestHash) {
    throw new AppError("IDEMPOTENCY_MISMATCH", "this idempotency key was used with a different request body", {
      details: [{ path: "idempotency_key", message: "reused with a different body" }],
    });
  }
  const status = prior.response.status === "scheduled" ? "scheduled" : "accepted";
  return { id: prior.notification_id, status, replayed: true, response: prior.response };
}

/** A storage failure becomes 503 + Retry-After: the event was not taken, the caller should retry. */
async function durable<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AppError) throw err;
    metrics.eventsRejected.inc({ code: "UNAVAILABLE" });
    throw new AppError("UNAVAILABLE", "the event could not be stored durably; retry later", { retryAfter: 2, status: 503 });
  }
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

/** Canonical JSON (sorted keys) so that the same body in another key order is the same request. */
export function hashBody(body: unknown): string {
  return createHash("sha256").update(canonical(body)).digest("hex");
}

function canonical(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(canonical).join(",")}]`;
  if (isObject(x)) return `{${Object.keys(x).sort().map((k) => `${JSON.stringify(k)}:${canonical(x[k])}`).join(",")}}`;
  return JSON.stringify(x) ?? "null";
}
