/**
 * The worker's safety net. Deliveries whose message was lost (a retry publish that failed while the
 * broker was down, a claim whose worker died after its event message was acknowledged) are found
 * in PostgreSQL and published again. Several workers may run it: SKIP LOCKED plus touching
 * updated_at keeps them from republishing the same rows at the same time, and the delivery claim
 * keeps a duplicate message from becoming a duplicate send.
 */
import type { Logger } from "../runtime/log.ts";
import { delay } from "../runtime/lifecycle.ts";
import type { Queue } from "../mq/queue.ts";
import type { Sql } from "../store/db.ts";
import { deliveryJobs } from "./delivery-jobs.ts";

/** A delivery untouched this long while open is presumed orphaned. Longer than any retry publish takes. */
const ORPHAN_AFTER_S = 60;
const EVERY_MS = 15_000;

export function startReaper(deps: { sql: Sql; queue: Queue; log: Logger; everyMs?: number; orphanAfterS?: number }): () => Promise<void> {
  const abort = new AbortController();
  const orphanAfter = deps.orphanAfterS ?? ORPHAN_AFTER_S;
  const loop = (async () => {
    while (!abort.signal.aborted) {
      await delay(deps.everyMs ?? EVERY_MS, abort.signal);
      if (abort.signal.aborted) break;
      try {
        await deps.sql.begin(async (tx) => {
          const rows = await tx`
            SELECT id FROM deliveries
            WHERE updated_at < now() - make_interval(secs => ${orphanAfter})
              AND ((status = 'retrying' AND next_attempt_at < now() - make_interval(secs => ${orphanAfter}))
                OR (status = 'sending' AND claimed_until < now())
                OR (status = 'queued' AND (next_attempt_at IS NULL OR next_attempt_at < now() - make_interval(secs => ${orphanAfter}))))
            LIMIT 500 FOR UPDATE SKIP LOCKED`;
          if (!rows.length) return;
          const ids = rows.map((r) => String(r.id));
          await deps.queue.publish("deliveries", deliveryJobs(ids, "reap"));
          await tx`UPDATE deliveries SET updated_at = now() WHERE id = ANY(${ids}::uuid[])`;
          deps.log.info("reaper republished orphaned deliveries", { count: ids.length });
        });
      } catch (err) {
        deps.log.debug("reaper pass failed", { err: String(err) });
      }
    }
  })();
  return async () => {
    abort.abort();
    await loop;
  };
}
