/**
 * The seed system's AMQP shape (SPEC 3.7): `{"title","body","sender":"telegram"}` published to
 * notify.events. It names no recipient, only a channel, so notify takes it as a broadcast: a
 * one-off campaign to all users on the `sender` channel, sent now by the scheduler like any
 * campaign (ledger per recipient, resumable, cancellable, in the admin panel), rendered by the
 * template `seed-broadcast` (`{{ title }}` and `{{ body }}`). That template is created on first use
 * and is the operator's to restyle.
 *
 * Taken once per message: the campaign id is derived from the message's message_id (or, without
 * one, from its body), so a redelivery or the producer's retry of the same message creates nothing
 * twice. A message that is not a valid broadcast (unknown channel, empty title, a channel this
 * worker has no provider for) is dead-lettered at once with the field at fault.
 */
import { createHash } from "node:crypto";
import * as v from "valibot";
import type { AuditPublisher } from "../audit/publisher.ts";
import { ack, dead, type InMessage, type Outcome } from "../mq/queue.ts";
import { AppError } from "../runtime/errors.ts";
import type { Logger } from "../runtime/log.ts";
import { noLineBreaks, parse } from "../schemas/common.ts";
import { CHANNELS } from "../schemas/event.ts";
import type { TemplateInput } from "../schemas/template.ts";
import type { TemplateRepo } from "../store/templates.ts";
import type { CampaignService } from "./campaigns.ts";

export const SEED_TEMPLATE = "seed-broadcast";

/** Unknown members are ignored: the seed's producers may send more than these three. */
export const SeedBroadcast = v.object({
  title: v.pipe(v.string(), v.minLength(1, "must not be empty"), v.maxLength(998), noLineBreaks),
  body: v.pipe(v.string(), v.maxLength(100_000)),
  sender: v.picklist(CHANNELS, `must be one of ${CHANNELS.join(", ")}`),
});
export type SeedBroadcast = v.InferOutput<typeof SeedBroadcast>;

const TEMPLATE: TemplateInput = {
  name: "Seed broadcast (AMQP {title, body, sender})",
  variants: [
    { channel: "email", subject: "{{ title }}", text: "{{ body }}" },
    { channel: "in_app", title: "{{ title }}", text: "{{ body }}" },
    { channel: "telegram", text: "{{ title }}\n\n{{ body }}" },
    { channel: "sms", text: "{{ title }}: {{ body }}" },
    { channel: "webhook", title: "{{ title }}", text: "{{ body }}" },
  ],
};

/** The seed shape: names a sender and is not an event (an event has `event`). */
export function isSeedBroadcast(body: unknown): boolean {
  return typeof body === "object" && body !== null && !Array.isArray(body) && "sender" in body && !("event" in body);
}

/** A UUID (version 8, name-based) from the message id, or from the body when there is none. */
export function seedCampaignId(messageId: string | undefined, body: unknown): string {
  const h = createHash("sha256").update(messageId !== undefined ? `message:${messageId}` : `body:${JSON.stringify(body)}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString("hex");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export function createSeedBroadcaster(deps: { campaigns: CampaignService; templates: TemplateRepo; audit: AuditPublisher; log: Logger }) {
  const log = deps.log.child({ component: "seed-broadcast" });

  return async function take(msg: InMessage<unknown>): Promise<Outcome> {
    let input: SeedBroadcast;
    try {
      input = parse(SeedBroadcast, msg.body);
    } catch (err) {
      if (err instanceof AppError) return dead(`invalid seed broadcast: ${describe(err)}`);
      throw err;
    }
    // Two workers may both find it missing: both then write the same body, which is harmless.
    if (!(await deps.templates.exists(SEED_TEMPLATE))) await deps.templates.put(SEED_TEMPLATE, TEMPLATE, "system:seed-broadcast");
    const id = seedCampaignId(msg.messageId, msg.body);
    try {
      const { created } = await deps.campaigns.createOnce(
        id,
        {
          name: `Seed broadcast: ${input.title.slice(0, 200)}`,
          template: SEED_TEMPLATE,
          channels: [input.sender],
          audience: { all: true },
          schedule: { now: true },
          data: { title: input.title, body: input.body },
        },
        "system:amqp",
      );
      if (created) {
        deps.audit.record({
          actor: { type: "system", id: "amqp" },
          action: "campaign.created",
          target: { type: "campaign", id },
          outcome: "success",
          details: { source: "seed broadcast", message_id: msg.messageId ?? null, channel: input.sender },
        });
      }
      log.info("seed broadcast taken as a campaign", { campaign_id: id, channel: input.sender, created });
      return ack;
    } catch (err) {
      if (err instanceof AppError && err.status < 500) return dead(`invalid seed broadcast: ${describe(err)}`);
      throw err;
    }
  };
}

/** "sender: channel telegram is not configured on this server", naming the seed's own field. */
function describe(err: AppError): string {
  const d = err.details[0];
  if (!d) return err.message;
  return `${d.path.replace(/^channels\.0$/, "sender")}: ${d.message}`;
}
