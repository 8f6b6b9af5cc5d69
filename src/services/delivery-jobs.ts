/**
 * Delivery jobs on the "deliveries" topic: `{"delivery_id": id}` for one delivery (retries,
 * deferrals, replays) or `{"delivery_ids": [...]}` for up to JOB_PACK of them (campaign fan-out,
 * held releases, the reaper): a million-recipient campaign is ten thousand broker messages, and the
 * worker claims, sends and records a pack's deliveries together.
 */
import type { OutMessage } from "../mq/queue.ts";
import { isUuid } from "../store/notifications.ts";

export const JOB_PACK = 100;
/** Anything longer is not a job we wrote. */
const MAX_IDS = 1000;

/** Jobs for these deliveries, JOB_PACK per message; `tag` makes message ids distinct per purpose. */
export function deliveryJobs(ids: string[], tag: string): OutMessage[] {
  const out: OutMessage[] = [];
  for (let i = 0; i < ids.length; i += JOB_PACK) {
    const pack = ids.slice(i, i + JOB_PACK);
    out.push(
      pack.length === 1
        ? { body: { delivery_id: pack[0] }, messageId: `${pack[0]}:${tag}` }
        : { body: { delivery_ids: pack }, messageId: `${pack[0]}+${pack.length}:${tag}` },
    );
  }
  return out;
}

/** The delivery ids a job names, or undefined if it is not a delivery job. */
export function jobIds(body: unknown): string[] | undefined {
  const b = body as { delivery_id?: unknown; delivery_ids?: unknown } | null;
  if (!b || typeof b !== "object") return undefined;
  if (typeof b.delivery_id === "string") return isUuid(b.delivery_id) ? [b.delivery_id] : undefined;
  const ids = b.delivery_ids;
  if (!Array.isArray(ids) || ids.length === 0 || ids.length > MAX_IDS) return undefined;
  return ids.every((id) => typeof id === "string" && isUuid(id)) ? [...new Set(ids as string[])] : undefined;
}
