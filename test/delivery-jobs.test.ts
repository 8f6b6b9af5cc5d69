/**
 * Packed delivery jobs (campaign fan-out, the reaper, replays): one message names many deliveries;
 * the worker claims and sends them together, skips what is done or unknown, sends nothing twice
 * when the same pack arrives again, and brings back a pack whose deliveries are not due yet.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { deliveryJobs, jobIds, JOB_PACK } from "../src/services/delivery-jobs.ts";
import { createHarness, type Harness } from "./support/harness.ts";
import { haveServices, waitFor } from "./support/services.ts";

test("jobs: one id alone, packs of JOB_PACK; parsing refuses anything else", () => {
  const ids = Array.from({ length: JOB_PACK * 2 + 1 }, () => Bun.randomUUIDv7());
  const jobs = deliveryJobs(ids, "t");
  expect(jobs.map((j) => jobIds(j.body)!.length)).toEqual([JOB_PACK, JOB_PACK, 1]);
  expect(jobs.flatMap((j) => jobIds(j.body)!)).toEqual(ids);
  expect(jobs[2]!.body).toEqual({ delivery_id: ids.at(-1) });
  expect(new Set(jobs.map((j) => j.messageId)).size).toBe(3);
  for (const bad of [null, {}, { delivery_id: "x" }, { delivery_ids: [] }, { delivery_ids: ["x"] }, { delivery_ids: "a" }, { delivery_ids: Array(1001).fill(ids[0]) }]) {
    expect(jobIds(bad)).toBeUndefined();
  }
});

describe.skipIf(!(await haveServices))("packed delivery jobs through the worker", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(() => h?.close());

  async function ledger(n: number, status: (i: number) => string, nextAttempt?: Date) {
    const nid = Bun.randomUUIDv7();
    await h.db.sql`INSERT INTO notifications (id, event, status, payload, source) VALUES (${nid}, 'pack', 'processing', ${h.db.sql.json({ event: "pack", to: [], channels: ["email"], notification_id: nid, source: "t", accepted_at: new Date().toISOString() } as never)}, 't')`;
    const ids = Array.from({ length: n }, () => Bun.randomUUIDv7());
    for (const [i, id] of ids.entries()) {
      await h.db.sql`INSERT INTO users (id, email) VALUES (${`pk-${id}`}, ${`${id}@example.com`}) ON CONFLICT DO NOTHING`;
      await h.db.sql`INSERT INTO deliveries (id, notification_id, user_id, channel, recipient, status, content, max_attempts, next_attempt_at)
        VALUES (${id}, ${nid}, ${`pk-${id}`}, 'email', ${`${id}@example.com`}, ${status(i)}, ${h.db.sql.json({ subject: `pack ${id}`, text: "t" } as never)}, 3, ${nextAttempt ?? null})`;
    }
    return { nid, ids };
  }
  const mailsFor = (ids: string[]) => h.smtp.mails.filter((m) => ids.some((id) => m.subject === `pack ${id}`));

  test("a pack sends its open deliveries once, skips sent and unknown ones; the same pack again sends nothing", async () => {
    const { nid, ids } = await ledger(5, (i) => (i === 1 ? "sent" : "queued"));
    const job = { body: { delivery_ids: [...ids, Bun.randomUUIDv7()] }, messageId: "pack-1" };
    await h.app.queue.publish("deliveries", [job]);
    await waitFor(() => mailsFor(ids).length === 4, { what: "four mails" });
    const n = await waitFor(async () => {
      const [row] = await h.db.sql`SELECT status FROM notifications WHERE id = ${nid}`;
      return row!.status === "delivered" ? row : undefined;
    }, { what: "notification settled" });
    expect(n.status).toBe("delivered");
    await h.app.queue.publish("deliveries", [{ ...job, messageId: "pack-1-again" }]);
    // The marker job goes through the same queue after the duplicate: once it is sent, the duplicate was handled.
    const marker = await ledger(1, () => "queued");
    await h.app.queue.publish("deliveries", deliveryJobs(marker.ids, "marker"));
    await waitFor(() => mailsFor(marker.ids).length === 1, { what: "marker mail" });
    expect(mailsFor(ids)).toHaveLength(4);
    const rows = await h.db.sql`SELECT status, attempts FROM deliveries WHERE notification_id = ${nid}`;
    expect(rows.every((r) => r.status === "sent")).toBe(true);
    expect(rows.filter((r) => r.attempts === 1)).toHaveLength(4);
  });

  test("a pack that is not due yet comes back when it is", async () => {
    const due = new Date(Date.now() + 1500);
    const { ids } = await ledger(3, () => "retrying", due);
    await h.app.queue.publish("deliveries", deliveryJobs(ids, "later"));
    await waitFor(() => mailsFor(ids).length === 3, { what: "three mails after the wait", timeoutMs: 15_000 });
    // The worker counts a delivery due within 100 ms of its time (dispatch.ts notDue).
    for (const m of mailsFor(ids)) expect(m.receivedAt).toBeGreaterThanOrEqual(due.getTime() - 100);
  });

  test("a delivery held by another claim (its worker died holding it) is sent when that claim runs out, not left to the reaper", async () => {
    const { nid, ids } = await ledger(1, () => "sending");
    await h.db.sql`UPDATE deliveries SET attempts = 1, claimed_until = now() + interval '1500 milliseconds' WHERE id = ${ids[0]!}`;
    const published = Date.now();
    await h.app.queue.publish("deliveries", deliveryJobs(ids, "held"));
    // The reaper would take 60 s and more; the job itself comes back after the claim.
    await waitFor(() => mailsFor(ids).length === 1, { what: "the held delivery's mail", timeoutMs: 10_000 });
    expect(mailsFor(ids)[0]!.receivedAt).toBeGreaterThanOrEqual(published + 1_400);
    // The mail reaches the sink before the worker's batched "sent" write lands: wait for the row.
    const row = await waitFor(async () => {
      const [r] = await h.db.sql`SELECT status, attempts FROM deliveries WHERE notification_id = ${nid}`;
      return r!.status === "sent" ? r : undefined;
    }, { what: "the delivery marked sent" });
    expect(row).toMatchObject({ status: "sent", attempts: 2 });
  });
});
