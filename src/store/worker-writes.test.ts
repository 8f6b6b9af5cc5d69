/**
 * The worker's folded statements: marking deliveries sent settles the notification in the same
 * statement when nothing else is open (and only then), and the inline-recipient upsert reads the
 * stored entries back (written ones and untouched ones alike).
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

  /** A notification being processed, with deliveries in these states. */
  async function notification(statuses: Array<NewDelivery["status"]>) {
    const notifications = createNotificationRepo(db.sql);
    const deliveries = createDeliveryRepo(db.sql);
    const id = Bun.randomUUIDv7();
    const payload = { event: "t", to: ["u"], channels: ["email"], notification_id: id } as unknown as AcceptedEvent;
    await notifications.insertMany([{ id, event: "t", status: "accepted", payload, source: "api", send_at: null }], { outbox: false });
    expect(await notifications.claim(id)).toBe("accepted");
    const rows = await deliveries.insertMany(
      statuses.map((status, i) => ({ id: Bun.randomUUIDv7(), notification_id: id, user_id: `u${i}`, channel: "email", recipient: `u${i}@example.test`, status, error: null, content: { text: "x" }, max_attempts: 3 })),
      30_000,
    );
    return { id, ids: rows.map((r) => r.id), deliveries, notifications };
  }
  const statusOf = async (id: string) => (await db.sql`SELECT status FROM notifications WHERE id = ${id}`)[0]!.status;
  const sent = (ids: string[], notificationId: string) => ids.map((id) => ({ id, notificationId, provider: "smtp", providerId: `<${id}@x>` }));

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
