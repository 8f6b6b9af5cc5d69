/**
 * The worker's folded statements: a notification is claimed in the statement that inserts its
 * planned deliveries (and nothing is inserted for one that is not claimable); marking deliveries
 * sent settles the notification in the same statement when nothing else is open (and only then);
 * the inline-recipient upsert reads the stored entries back (written ones and untouched ones alike).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestDb, haveServices, type TestDb } from "../../test/support/services.ts";
import { createDeliveryRepo, type NewDelivery } from "./deliveries.ts";
import { createNotificationRepo } from "./notifications.ts";
import { createUserRepo } from "./users.ts";
import type { AcceptedEvent } from "../schemas/event.ts";

const services = await haveServices;

describe.skipIf(!services)("worker writes", () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(() => db?.drop());

  const plan = (nid: string, statuses: Array<NewDelivery["status"]>, prefix = "u"): NewDelivery[] =>
    statuses.map((status, i) => ({ id: Bun.randomUUIDv7(), notification_id: nid, user_id: `${prefix}${i}`, channel: "email", recipient: `${prefix}${i}@example.test`, status, error: null, content: { text: "x" }, max_attempts: 3 }));

  /** A stored notification, accepted. */
  async function accepted() {
    const id = Bun.randomUUIDv7();
    const payload = { event: "t", to: ["u"], channels: ["email"], notification_id: id } as unknown as AcceptedEvent;
    await createNotificationRepo(db.sql).insertMany([{ id, event: "t", status: "accepted", payload, source: "api", send_at: null }], { outbox: false });
    return id;
  }

  /** A notification being processed, with deliveries in these states. */
  async function notification(statuses: Array<NewDelivery["status"]>) {
    const deliveries = createDeliveryRepo(db.sql);
    const id = await accepted();
    const { status, inserted } = await deliveries.claimAndInsert(id, plan(id, statuses), 30_000);
    expect(status).toBe("accepted");
    return { id, ids: inserted.map((r) => r.id), deliveries };
  }
  const statusOf = async (id: string) => (await db.sql`SELECT status FROM notifications WHERE id = ${id}`)[0]!.status;
  const sent = (ids: string[], notificationId: string) => ids.map((id) => ({ id, notificationId, provider: "smtp", providerId: `<${id}@x>` }));

  test("claimAndInsert: an accepted notification is claimed and its deliveries inserted, 'sending' ones claimed for this worker", async () => {
    const deliveries = createDeliveryRepo(db.sql);
    const id = await accepted();
    const planned = plan(id, ["sending", "skipped"]);
    const r = await deliveries.claimAndInsert(id, planned, 30_000);
    expect(r.status).toBe("accepted");
    expect(r.inserted.map((d) => d.id)).toEqual(planned.map((d) => d.id));
    const [sending, skipped] = r.inserted;
    expect(sending).toMatchObject({ status: "sending", attempts: 1 });
    expect(Date.parse(sending!.claimed_until!)).toBeGreaterThan(Date.now() + 20_000);
    expect(skipped).toMatchObject({ status: "skipped", attempts: 0, claimed_until: null });
    // Built from the plan and what the INSERT returned: the same rows as read back.
    const stored = await deliveries.listByNotification(id);
    expect(r.inserted).toEqual(planned.map((d) => stored.find((x) => x.id === d.id)!));
    expect(await statusOf(id)).toBe("processing");

    // A redelivery plans again (new ids): "processing", and nothing new goes in.
    const again = await deliveries.claimAndInsert(id, plan(id, ["sending", "skipped"]), 30_000);
    expect(again).toEqual({ status: "processing", inserted: [] });
    expect(await deliveries.listByNotification(id)).toHaveLength(2);
  });

  test("claimAndInsert: nothing is inserted for a finished, cancelled or unknown notification", async () => {
    const deliveries = createDeliveryRepo(db.sql);
    for (const final of ["delivered", "cancelled"]) {
      const id = await accepted();
      await db.sql`UPDATE notifications SET status = ${final} WHERE id = ${id}`;
      expect(await deliveries.claimAndInsert(id, plan(id, ["sending"]), 30_000)).toEqual({ status: final as never, inserted: [] });
      expect(await deliveries.listByNotification(id)).toHaveLength(0);
    }
    const unknown = Bun.randomUUIDv7();
    expect(await deliveries.claimAndInsert(unknown, plan(unknown, ["sending"]), 30_000)).toEqual({ status: undefined, inserted: [] });
  });

  test("claimAndInsert calls made together share one statement: each its own rows; the same notification twice, only the first claims", async () => {
    const deliveries = createDeliveryRepo(db.sql);
    const [a, b] = [await accepted(), await accepted()];
    const [pa, pb, pa2] = [plan(a, ["sending"]), plan(b, ["sending", "sending"]), plan(a, ["sending"])];
    const [ra, rb, ra2] = await Promise.all([deliveries.claimAndInsert(a, pa, 30_000), deliveries.claimAndInsert(b, pb, 30_000), deliveries.claimAndInsert(a, pa2, 30_000)]);
    expect(ra).toMatchObject({ status: "accepted" });
    expect(ra.inserted.map((d) => d.id)).toEqual(pa.map((d) => d.id));
    expect(rb.inserted.map((d) => d.id)).toEqual(pb.map((d) => d.id));
    expect(ra2).toEqual({ status: "processing", inserted: [] });
    expect(await deliveries.listByNotification(a)).toHaveLength(1);
  });

  test("the last open delivery sent: settled as delivered in the same statement", async () => {
    const n = await notification(["sending"]);
    const settled = await n.deliveries.markSentMany(sent(n.ids, n.id));
    expect([...settled]).toEqual([n.id]);
    expect(await statusOf(n.id)).toBe("delivered");
    expect((await n.deliveries.get(n.ids[0]!))).toMatchObject({ status: "sent", provider: "smtp" });
  });

  test("a sibling still open: not settled, the notification stays processing; the sibling sent later settles it", async () => {
    const n = await notification(["sending", "sending"]);
    expect((await n.deliveries.markSentMany(sent([n.ids[0]!], n.id))).size).toBe(0);
    expect(await statusOf(n.id)).toBe("processing");
    expect([...(await n.deliveries.markSentMany(sent([n.ids[1]!], n.id)))]).toEqual([n.id]);
    expect(await statusOf(n.id)).toBe("delivered");
  });

  test("both deliveries in one statement: settled; a failed sibling makes it partially delivered", async () => {
    const both = await notification(["sending", "sending"]);
    expect([...(await both.deliveries.markSentMany(sent(both.ids, both.id)))]).toEqual([both.id]);
    expect(await statusOf(both.id)).toBe("delivered");

    const mixed = await notification(["sending", "failed", "skipped"]);
    expect([...(await mixed.deliveries.markSentMany(sent([mixed.ids[0]!], mixed.id)))]).toEqual([mixed.id]);
    expect(await statusOf(mixed.id)).toBe("partially_delivered");
  });

  test("a notification no longer processing (cancelled) is left as it is", async () => {
    const n = await notification(["sending"]);
    await db.sql`UPDATE notifications SET status = 'cancelled' WHERE id = ${n.id}`;
    expect((await n.deliveries.markSentMany(sent(n.ids, n.id))).size).toBe(0);
    expect(await statusOf(n.id)).toBe("cancelled");
  });

  test("upsertInline returns the stored entries: new, changed, and unchanged (with fields only the directory had)", async () => {
    const users = createUserRepo(db.sql);
    await users.put("known", { email: "k@example.test", name: "Known", locale: "de", attributes: { plan: "pro" } });
    await users.put("same", { email: "s@example.test", phone: "+4915100000000" });
    const before = (await db.sql`SELECT updated_at FROM users WHERE id = 'same'`)[0]!.updated_at;
    const got = await users.upsertInline([
      { id: "fresh", email: "f@example.test", name: "Fresh" },
      { id: "known", email: "k2@example.test", attributes: { tier: 2 } },
      { id: "same", email: "s@example.test" },
    ]);
    expect([...got.keys()].sort()).toEqual(["fresh", "known", "same"]);
    expect(got.get("fresh")).toMatchObject({ email: "f@example.test", name: "Fresh", locale: null });
    expect(got.get("known")).toMatchObject({ email: "k2@example.test", name: "Known", locale: "de", attributes: { plan: "pro", tier: 2 } });
    expect(got.get("same")).toMatchObject({ email: "s@example.test", phone: "+4915100000000" });
    // The unchanged entry was read, not rewritten.
    expect((await db.sql`SELECT updated_at FROM users WHERE id = 'same'`)[0]!.updated_at).toEqual(before);
    // What the directory now holds is what the upsert answered.
    expect(await users.getMany(["fresh", "known", "same"])).toEqual(got);
  });

  test("upsertInline calls made together share one statement and each gets its own users", async () => {
    const users = createUserRepo(db.sql);
    const [a, b] = await Promise.all([users.upsertInline([{ id: "p1", email: "p1@example.test" }]), users.upsertInline([{ id: "p2", name: "P2" }, { id: "p1", name: "P one" }])]);
    expect([...a.keys()]).toEqual(["p1"]);
    expect([...b.keys()].sort()).toEqual(["p1", "p2"]);
    // Both calls named p1: merged before the one INSERT, both see the merged entry.
    expect(a.get("p1")).toMatchObject({ email: "p1@example.test", name: "P one" });
    expect(b.get("p1")).toEqual(a.get("p1")!);
  });
});
