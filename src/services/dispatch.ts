/**
 * The worker's use-case: turn an accepted event into deliveries and send them.
 *
 * Exactly-once toward the recipient rests on three things:
 * - the notification is claimed (accepted → processing); a redelivered event message continues
 *   idempotently instead of starting over;
 * - deliveries are unique per (notification, recipient, channel), inserted ON CONFLICT DO NOTHING;
 * - a delivery is sent only by the worker that moved it to 'sending' (a claim with an expiry), and
 *   carries a stable id (Message-ID, webhook-id) so that the one unavoidable window — a crash
 *   between the provider accepting and our UPDATE — resends with the same id, which recipients'
 *   systems de-duplicate.
 */
import { AppError } from "../runtime/errors.ts";
import type { Logger } from "../runtime/log.ts";
import { metrics } from "../runtime/metrics.ts";
import { createSemaphore } from "../runtime/semaphore.ts";
import { withDeadline } from "../runtime/deadline.ts";
import { ack, dead, retry, type InMessage, type Outcome, type Queue } from "../mq/queue.ts";
import type { AcceptedEvent, ChannelName, InlineRecipient } from "../schemas/event.ts";
import type { ChannelRuntime } from "../channels/registry.ts";
import { sendWithFailover } from "../channels/failover.ts";
import { OPEN_DELIVERY, type DeliveryContent, type DeliveryRepo, type DeliveryRow, type NewDelivery } from "../store/deliveries.ts";
import type { DeadLetterRepo } from "../store/dead-letters.ts";
import type { NotificationRepo } from "../store/notifications.ts";
import type { TemplateRepo, StoredTemplate } from "../store/templates.ts";
import type { User, UserRepo } from "../store/users.ts";
import { backoffMs } from "./backoff.ts";
import { createBatcher } from "../store/batcher.ts";
import { NOTIFICATION_HEADER } from "./relay.ts";
import { deliveryJobs, jobIds } from "./delivery-jobs.ts";
import type { EventService } from "./events.ts";
import { nulPath } from "../schemas/common.ts";
import { isSeedBroadcast } from "./seed-broadcast.ts";

export interface UserDirectory {
  getMany(ids: string[]): Promise<Map<string, User>>;
}

/** Renders one channel's message for one recipient; throws on a template error (permanent). */
export type RenderFn = (template: StoredTemplate, channel: ChannelName, user: User, data: Record<string, unknown>) => DeliveryContent;

export interface Hooks {
  /** Decides whether a recipient accepts this message on this channel (preferences, quiet hours: issue 3). */
  screen?: (user: User, channel: ChannelName, event: AcceptedEvent) => Promise<Screening | undefined>;
  /** Called after a delivery reached a final state (audit, realtime push). */
  onDeliveryFinal?: (d: { id: string; notification_id: string; user_id: string; channel: string; status: "sent" | "failed" | "skipped"; error?: string | null }) => void;
  /** Adds data before rendering (enrichment, issue 5); throws to retry the event later. */
  enrich?: (event: AcceptedEvent) => Promise<Record<string, unknown>>;
}

/** A screen's verdict: skip (with the reason), send later (quiet hours), and extras for content.meta (unsubscribe link). */
export interface Screening {
  skip?: string;
  deferUntil?: Date;
  meta?: Record<string, unknown>;
}

export interface DispatcherDeps {
  notifications: NotificationRepo;
  deliveries: DeliveryRepo;
  deadLetters: DeadLetterRepo;
  templates: TemplateRepo;
  users: UserRepo;
  directory: UserDirectory;
  channels: Map<ChannelName, ChannelRuntime>;
  queue: Queue;
  events: EventService;
  render: RenderFn;
  log: Logger;
  concurrency: number;
  maxAttempts: number;
  sendTimeoutMs: number;
  hooks?: Hooks;
  /** Takes the seed's `{"title","body","sender"}` broadcast (SPEC 3.7; src/services/seed-broadcast.ts). */
  seedBroadcast?: (msg: InMessage<unknown>) => Promise<Outcome>;
}

/** How long a claim on a delivery lasts: the send timeout plus room for the bookkeeping around it. */
const claimMsFor = (sendTimeoutMs: number) => sendTimeoutMs + 5_000;
/** Templates are cached briefly per worker; a changed template is used within this time. */
const TEMPLATE_CACHE_MS = 2_000;

export function createDispatcher(deps: DispatcherDeps) {
  const log = deps.log.child({ component: "dispatch" });
  const sends = createSemaphore(deps.concurrency);
  const claimMs = claimMsFor(deps.sendTimeoutMs);
  const templateCache = new Map<string, { at: number; t: StoredTemplate | undefined }>();
  // Sends finishing together share one UPDATE (group write); alone, one goes out at once. Each
  // learns whether that UPDATE also settled its notification (then the caller's settle is not needed).
  const sentWriter = createBatcher<{ id: string; notificationId: string; provider: string | null; providerId: string | null }, boolean>(
    async (items) => {
      const settled = await deps.deliveries.markSentMany(items);
      return items.map((i) => settled.has(i.notificationId));
    },
    { maxBatch: 500, maxInFlight: 1 },
  );

  async function template(key: string): Promise<StoredTemplate | undefined> {
    const hit = templateCache.get(key);
    if (hit && Date.now() - hit.at < TEMPLATE_CACHE_MS) return hit.t;
    const t = await deps.templates.get(key);
    templateCache.set(key, { at: Date.now(), t });
    return t;
  }

  /** Producers publishing straight to notify.events (SPEC 3.7): store the event first, idempotently by message_id. */
  async function ingest(msg: InMessage<unknown>): Promise<{ id: string; event: AcceptedEvent } | Outcome> {
    try {
      // As REST and GraphQL refuse it: PostgreSQL cannot store U+0000, so no retry would help.
      const nul = nulPath({ body: msg.body, message_id: msg.messageId });
      if (nul !== undefined) return dead(`invalid event: ${nul} contains U+0000`);
      if (deps.seedBroadcast && isSeedBroadcast(msg.body)) return await deps.seedBroadcast(msg);
      const { event, status } = await deps.events.prepare(msg.body, { source: "amqp" });
      const key = msg.messageId;
      if (status === "scheduled" || key) {
        const r = await deps.events.accept(msg.body, { source: "amqp", idempotencyKey: key });
        // Stored and handed to the outbox relay (or the scheduler): this copy is done.
        log.debug("amqp event stored", { notification_id: r.id, replayed: r.replayed });
        return ack;
      }
      await deps.notifications.insertMany([{ id: event.notification_id, event: event.event, status: "accepted", payload: event, source: "amqp", send_at: null }], { outbox: false });
      return { id: event.notification_id, event };
    } catch (err) {
      if (err instanceof AppError && err.status < 500) return dead(`invalid event: ${err.message}`);
      throw err;
    }
  }

  async function resolveRecipients(event: AcceptedEvent): Promise<{ users: User[]; missing: string[] }> {
    const inline = event.to.filter((r): r is InlineRecipient => typeof r === "object");
    const ids = [...new Set(event.to.map((r) => (typeof r === "string" ? r : r.user_id)))];
    const stored = inline.length
      ? await deps.users.upsertInline(
          inline.map((r) => ({ id: r.user_id, email: r.email, phone: r.phone, name: r.name, locale: r.locale, timezone: r.timezone, telegram_chat_id: r.telegram_chat_id, attributes: r.attributes })),
        )
      : new Map<string, User>();
    // With the directory in this database, the upsert already read the inline recipients back;
    // a remote directory (gRPC) is asked for everyone, as it may know more than this database.
    const local = deps.directory === deps.users;
    const rest = local ? ids.filter((id) => !stored.has(id)) : ids;
    const found = rest.length ? await deps.directory.getMany(rest) : new Map<string, User>();
    if (local) for (const [id, u] of stored) found.set(id, u);
    // Inline fields win for this message even if the directory lookup went elsewhere (gRPC, cache).
    for (const r of inline) {
      found.set(r.user_id, withInline(found.get(r.user_id), r));
    }
    return { users: ids.map((id) => found.get(id)).filter((u): u is User => !!u), missing: ids.filter((id) => !found.has(id)) };
  }

  function content(t: StoredTemplate | undefined, event: AcceptedEvent, channel: ChannelName, user: User, data: Record<string, unknown>): DeliveryContent {
    if (t) return deps.render(t, channel, user, data);
    return { subject: event.title, title: event.title, text: event.body ?? "" };
  }

  /** Plans the deliveries of an event: one per recipient and channel, each queued, skipped or failed. */
  async function plan(nid: string, event: AcceptedEvent): Promise<{ deliveries: NewDelivery[]; users: Map<string, User> }> {
    const { users, missing } = await resolveRecipients(event);
    const data = { ...(event.data ?? {}), ...(deps.hooks?.enrich ? await deps.hooks.enrich(event) : {}) };
    const t = event.template ? await template(event.template) : undefined;
    const out: NewDelivery[] = [];
    const base = { notification_id: nid, max_attempts: deps.maxAttempts };
    for (const id of missing) {
      for (const channel of event.channels) {
        out.push({ ...base, id: Bun.randomUUIDv7(), user_id: id, channel, recipient: null, status: "skipped", error: "unknown user: not in the directory and no inline details", content: null });
      }
    }
    // Recipients are planned concurrently so their preference lookups share one query (group read).
    const planOne = async (user: User, channel: ChannelName): Promise<NewDelivery> => {
      const d: NewDelivery = { ...base, id: Bun.randomUUIDv7(), user_id: user.id, channel, recipient: null, status: "sending", error: null, content: null };
      const rt = deps.channels.get(channel);
      if (!rt) return Object.assign(d, { status: "failed" as const, error: `channel ${channel} is not configured` });
      const address = rt.provider.address(user, event);
      if (!address) return Object.assign(d, { status: "skipped" as const, error: `no ${channel} address for this user` });
      d.recipient = address;
      const screen = deps.hooks?.screen ? await deps.hooks.screen(user, channel, event) : undefined;
      if (screen?.skip) return Object.assign(d, { status: "skipped" as const, error: screen.skip });
      if (event.template && !t) return Object.assign(d, { status: "failed" as const, error: `template ${event.template} does not exist` });
      try {
        d.content = content(t, event, channel, user, data);
        if (screen?.meta) d.content.meta = { ...d.content.meta, ...screen.meta };
      } catch (err) {
        return Object.assign(d, { status: "failed" as const, error: `render: ${(err as Error).message}` });
      }
      if (screen?.deferUntil && screen.deferUntil.getTime() > Date.now()) {
        // Quiet hours: stored now, sent by a delivery job that waits until next_attempt_at.
        Object.assign(d, { status: "queued", next_attempt_at: screen.deferUntil });
      }
      return d;
    };
    out.push(...(await Promise.all(users.flatMap((user) => event.channels.map((channel) => planOne(user, channel))))));
    return { deliveries: out, users: new Map(users.map((u) => [u.id, u])) };
  }

  async function handleEvent(msg: InMessage<unknown>): Promise<Outcome> {
    let nid = typeof msg.headers[NOTIFICATION_HEADER] === "string" ? (msg.headers[NOTIFICATION_HEADER] as string) : undefined;
    let event = msg.body as AcceptedEvent;
    try {
      if (!nid) {
        const r = await ingest(msg);
        if ("type" in r) return r;
        nid = r.id;
        event = r.event;
      }
      if (event?.notification_id !== nid) {
        // A message that does not carry its event (not one notify published): plan from the stored one.
        const stored = await deps.notifications.get(nid);
        if (!stored) return dead(`notification ${nid} not found`);
        event = stored.payload;
      }
      // Planned first, then claimed and inserted in one statement (shared by the events in
      // progress). A notification already finished or cancelled gets nothing inserted: its plan
      // was wasted work, and that is rare (a duplicate message, a cancel in between).
      const { deliveries: planned, users: planUsers } = await plan(nid, event);
      let { status, inserted } = await deps.deliveries.claimAndInsert(nid, planned, claimMs);
      if (status === undefined) {
        // The broker confirmed the event before (or instead of) the gateway's INSERT: store it from the message.
        await deps.notifications.insertMany([{ id: nid, event: event.event, status: "accepted", payload: event, source: event.source, send_at: null }], { outbox: false });
        ({ status, inserted } = await deps.deliveries.claimAndInsert(nid, planned, claimMs));
      }
      if (status === undefined) return dead(`notification ${nid} not found`);
      if (status !== "accepted" && status !== "processing") return ack;
      const firstTime = status === "accepted" && msg.redeliveries === 0;

      for (const d of inserted) {
        if (d.status === "skipped" || d.status === "failed") {
          metrics.deliveries.inc({ channel: d.channel, outcome: d.status });
          deps.hooks?.onDeliveryFinal?.({ ...d, status: d.status });
        }
      }
      const deferred = inserted.filter((d) => d.status === "queued");
      if (deferred.length) await deps.queue.publish("deliveries", deliveryJobs(deferred.map((d) => d.id), "deferred"));
      let toSend: DeliveryRow[] = inserted.filter((d) => d.status === "sending");
      let heldUntil = 0;
      if (!firstTime) {
        // A redelivery: pick up whatever an earlier attempt left open (its claim expired or never taken).
        const mine = new Set(toSend.map((d) => d.id));
        const open = (await deps.deliveries.listByNotification(nid)).filter((d) => !mine.has(d.id) && (d.status === "queued" || d.status === "sending") && !notDue(d));
        const c = await claimOrHeld(open);
        toSend.push(...c.claimed);
        heldUntil = c.heldUntil;
      }
      // The recipients just resolved; only deliveries left by an earlier attempt need a lookup.
      const users = toSend.every((d) => planUsers.has(d.user_id)) ? planUsers : await usersFor(toSend, event);
      const settled = await Promise.all(toSend.map((d) => sends.run(() => send(d, event, users.get(d.user_id)))));
      if (!settled.includes(true)) await deps.notifications.settle(nid);
      // Deliveries still claimed by a worker that may have died: come back when the claim expires
      // (if that worker is alive and finishes, the next look finds them sent and stops). Even when
      // the claim ran out while this one sent its own: acking then left them to the reaper (75 s).
      if (heldUntil > 0) return retry(Math.max(0, heldUntil - Date.now()) + 250, "deliveries claimed elsewhere");
      return ack;
    } catch (err) {
      log.warn("event processing failed, will retry", { notification_id: nid, err: String(err) });
      return retry(backoffMs(Math.min(msg.redeliveries + 1, 4)), String(err));
    }
  }

  async function usersFor(ds: DeliveryRow[], event: AcceptedEvent): Promise<Map<string, User>> {
    const inline = new Map<string, InlineRecipient>();
    for (const r of event.to ?? []) if (typeof r === "object") inline.set(r.user_id, r);
    const ids = [...new Set(ds.map((d) => d.user_id))];
    const users = await deps.directory.getMany(ids);
    for (const id of ids) {
      const r = inline.get(id);
      if (r && !users.has(id)) users.set(id, withInline(undefined, r));
    }
    return users;
  }

  /**
   * Claims these open deliveries. Those someone else holds are not sent here: `heldUntil` is when
   * the last of their claims ends (0 when none is held), for the caller to come back then.
   */
  async function claimOrHeld(open: DeliveryRow[]): Promise<{ claimed: DeliveryRow[]; heldUntil: number }> {
    const claimed = await deps.deliveries.claimMany(open.map((d) => d.id), claimMs);
    const got = new Set(claimed.map((d) => d.id));
    let heldUntil = 0;
    for (const d of open) if (!got.has(d.id) && d.claimed_until) heldUntil = Math.max(heldUntil, Date.parse(d.claimed_until));
    return { claimed, heldUntil };
  }

  /**
   * Sends one claimed delivery and records the outcome. Never throws for provider errors. True when
   * recording it also settled the notification (it was the last open delivery).
   */
  async function send(d: DeliveryRow, event: AcceptedEvent, user: User | undefined): Promise<boolean> {
    const rt = deps.channels.get(d.channel as ChannelName);
    const started = performance.now();
    const dlog = log.child({ delivery_id: d.id, notification_id: d.notification_id, channel: d.channel, attempt: d.attempts });
    if (!rt || !d.recipient || !d.content) {
      await deps.deliveries.markFailed(d.id, !rt ? `channel ${d.channel} is not configured` : "delivery has no recipient or content", null);
      metrics.deliveries.inc({ channel: d.channel, outcome: "failed" });
      return false;
    }
    const message = {
      deliveryId: d.id,
      notificationId: d.notification_id,
      event: event.event,
      to: d.recipient,
      user: user ?? { id: d.user_id, email: null, phone: null, name: null, locale: null, timezone: null, telegram_chat_id: null, attributes: {} },
      content: d.content,
      attempt: d.attempts,
    };
    const outcome = await withDeadline(deps.sendTimeoutMs, (signal) => sendWithFailover(rt.senders, message, signal));
    const duration_ms = Math.round(performance.now() - started);
    if (outcome.ok) {
      const settled = await sentWriter.submit({ id: d.id, notificationId: d.notification_id, provider: outcome.provider, providerId: outcome.result.providerId ?? null });
      metrics.sendLatency.observe({ channel: d.channel }, duration_ms / 1000);
      metrics.deliveries.inc({ channel: d.channel, outcome: "sent" });
      if (event.accepted_at) metrics.endToEnd.observe({ channel: d.channel }, (Date.now() - Date.parse(event.accepted_at)) / 1000);
      dlog.info("delivery sent", { outcome: "sent", provider: outcome.provider, duration_ms });
      deps.hooks?.onDeliveryFinal?.({ ...d, status: "sent" });
      return settled;
    }
    if (outcome.kind === "unavailable") {
      // Every provider's circuit is open (or saturated): wait for the first probe without spending an attempt.
      const at = new Date(Math.max(outcome.retryAt, Date.now() + 250));
      await deps.deliveries.markDeferred(d.id, outcome.reason, at);
      metrics.deliveries.inc({ channel: d.channel, outcome: "deferred" });
      dlog.info("delivery deferred", { outcome: "deferred", reason: outcome.reason, retry_at: at.toISOString() });
      await deps.queue.publish("deliveries", deliveryJobs([d.id], `${d.attempts}:deferred`)).catch((err) =>
        dlog.warn("deferral publish failed; reaper will pick it up", { err: String(err) }),
      );
      return false;
    }
    const { error: e, provider } = outcome;
    if (e.permanent) {
      await deps.deliveries.markFailed(d.id, e.message, provider);
      metrics.deliveries.inc({ channel: d.channel, outcome: "failed" });
      dlog.warn("delivery failed", { outcome: "failed", error: e.message, duration_ms });
      deps.hooks?.onDeliveryFinal?.({ ...d, status: "failed", error: e.message });
    } else if (d.attempts >= d.max_attempts) {
      const error = `${e.message} (gave up after ${d.attempts} attempts; dead-lettered)`;
      await deps.deliveries.markFailed(d.id, error, provider);
      await deps.deadLetters.add("deliveries", d.id, { delivery_id: d.id, notification_id: d.notification_id }, error);
      metrics.deliveries.inc({ channel: d.channel, outcome: "dead" });
      metrics.deadLettered.inc({ queue: "deliveries" });
      dlog.warn("delivery dead-lettered", { outcome: "dead", error: e.message, duration_ms });
      deps.hooks?.onDeliveryFinal?.({ ...d, status: "failed", error });
    } else {
      const wait = Math.max(e.retryAfterMs ?? 0, backoffMs(d.attempts));
      await deps.deliveries.markRetrying(d.id, e.message, new Date(Date.now() + wait), provider);
      metrics.deliveries.inc({ channel: d.channel, outcome: "retry" });
      dlog.info("delivery will retry", { outcome: "retry", error: e.message, retry_in_ms: wait, duration_ms });
      // If this publish fails the reaper finds the row (status retrying, due) and publishes it again.
      await deps.queue.publish("deliveries", deliveryJobs([d.id], String(d.attempts))).catch((err) =>
        dlog.warn("retry publish failed; reaper will pick it up", { err: String(err) }),
      );
    }
    return false;
  }

  /**
   * A delivery job: a retry, a replay, or a pack of deliveries (campaign fan-out, the reaper). A
   * pack's deliveries are read, claimed and recorded together; each is still claimed on its own
   * row, so a redelivered pack sends only what no one has sent or holds.
   */
  async function handleDelivery(msg: InMessage<unknown>): Promise<Outcome> {
    const ids = jobIds(msg.body);
    if (!ids) return dead("delivery job without delivery_id or delivery_ids");
    try {
      const rows = await deps.deliveries.getMany(ids);
      if (rows.length === 0) return dead(`deliver${ids.length === 1 ? `y ${ids[0]}` : `ies ${ids[0]}… (${ids.length})`} not found`);
      const due: DeliveryRow[] = [];
      const later: DeliveryRow[] = [];
      for (const d of rows) if (OPEN_DELIVERY.includes(d.status)) (notDue(d) ? later : due).push(d);
      // Due but held by another claim (a worker that died holding it, or one still sending it):
      // this job comes back when that claim ends instead of leaving them to the reaper.
      const { claimed, heldUntil } = await claimOrHeld(due);
      const byNotification = new Map<string, DeliveryRow[]>();
      for (const d of claimed) {
        const group = byNotification.get(d.notification_id);
        if (group) group.push(d);
        else byNotification.set(d.notification_id, [d]);
      }
      await Promise.all(
        [...byNotification].map(async ([nid, ds]) => {
          const n = await deps.notifications.get(nid);
          if (!n || n.status === "cancelled") {
            await Promise.all(ds.map((d) => deps.deliveries.markFailed(d.id, "notification cancelled", null)));
            return;
          }
          const users = await usersFor(ds, n.payload);
          const settled = await Promise.all(ds.map((d) => sends.run(() => send(d, n.payload, users.get(d.user_id)))));
          if (!settled.includes(true)) await deps.notifications.settle(nid);
        }),
      );
      // Not due yet (a pack rarely mixes) or held elsewhere: the whole job comes back when the first
      // of them is due; by then the rest are sent and are skipped.
      const comeBack = [...later.map((d) => Date.parse(d.next_attempt_at!)), ...(heldUntil ? [heldUntil + 250] : [])];
      if (comeBack.length) return retry(Math.max(0, Math.min(...comeBack) - Date.now()), later.length ? "not due yet" : "deliveries claimed elsewhere");
      return ack;
    } catch (err) {
      log.warn("delivery job failed, will retry", { delivery_ids: ids.length > 3 ? `${ids[0]}… (${ids.length})` : ids.join(","), err: String(err) });
      return retry(backoffMs(Math.min(msg.redeliveries + 1, 4)), String(err));
    }
  }

  /** Poison messages the broker dead-lettered: recorded so they are visible and replayable. */
  async function handleDeadLetter(msg: InMessage<unknown>): Promise<Outcome> {
    const reason = String(msg.headers["x-notify-dead-reason"] ?? firstDeathReason(msg.headers) ?? "delivery limit reached");
    const source = String(msg.headers["x-notify-source-queue"] ?? firstDeathQueue(msg.headers) ?? "unknown");
    const ref = typeof msg.headers[NOTIFICATION_HEADER] === "string" ? (msg.headers[NOTIFICATION_HEADER] as string) : (jobIds(msg.body)?.[0] ?? null);
    await deps.deadLetters.add(source, ref, { body: msg.body, headers: msg.headers, routing_key: msg.routingKey }, reason);
    metrics.deadLettered.inc({ queue: source });
    log.warn("message dead-lettered", { queue: source, reason, ref_id: ref });
    return ack;
  }

  return { handleEvent, handleDelivery, handleDeadLetter };
}

/** A retrying delivery, or one queued for later (quiet hours), whose time has not come. */
function notDue(d: DeliveryRow): boolean {
  if ((d.status !== "retrying" && d.status !== "queued") || !d.next_attempt_at) return false;
  return Date.parse(d.next_attempt_at) - Date.now() > 100;
}

/** A recipient as an event names it inline: its fields win over the directory's (`u`). */
function withInline(u: User | undefined, r: InlineRecipient): User {
  return {
    id: r.user_id,
    email: r.email ?? u?.email ?? null,
    phone: r.phone ?? u?.phone ?? null,
    name: r.name ?? u?.name ?? null,
    locale: r.locale ?? u?.locale ?? null,
    timezone: r.timezone ?? u?.timezone ?? null,
    telegram_chat_id: r.telegram_chat_id ?? u?.telegram_chat_id ?? null,
    attributes: { ...(u?.attributes ?? {}), ...(r.attributes ?? {}) },
  };
}

function firstDeath(headers: Record<string, unknown>): Record<string, unknown> | undefined {
  const xd = headers["x-death"];
  return Array.isArray(xd) && xd.length ? (xd[0] as Record<string, unknown>) : undefined;
}
const firstDeathReason = (h: Record<string, unknown>) => firstDeath(h)?.reason as string | undefined;
const firstDeathQueue = (h: Record<string, unknown>) => firstDeath(h)?.queue as string | undefined;

export type Dispatcher = ReturnType<typeof createDispatcher>;
