/**
 * Batched inbox writes (the in-app channel groups concurrent sends): seq stays gapless and per-user
 * ordered inside one batch and across concurrent batches, a resent id returns the stored item, and
 * a failing announcement stores nothing.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestDb, haveServices, type TestDb } from "../../test/support/services.ts";
import { createInboxRepo, type NewInboxItem } from "./inbox.ts";

const services = await haveServices;

describe.skipIf(!services)("inbox insertMany", () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(() => db?.drop());

  const item = (user_id: string, title: string): NewInboxItem => ({ id: Bun.randomUUIDv7(), user_id, notification_id: null, event: "t", title, body: null, data: { title } });

  test("one batch: seqs per user follow the order given; announcements see every row in that order", async () => {
    const inbox = createInboxRepo(db.sql);
    const items = [item("a", "a1"), item("b", "b1"), item("a", "a2"), item("a", "a3"), item("b", "b2")];
    let announced: string[] = [];
    const rows = await inbox.insertMany(items, async (rs) => void (announced = rs.map((r) => `${r.title}:${r.seq}`)));
    expect(items.map((i) => `${rows.get(i.id)!.title}:${rows.get(i.id)!.seq}`)).toEqual(["a1:1", "b1:1", "a2:2", "a3:3", "b2:2"]);
    expect(announced).toEqual(["a1:1", "b1:1", "a2:2", "a3:3", "b2:2"]);
    expect(rows.get(items[0]!.id)!.data).toEqual({ title: "a1" });
  });

  test("a resent id returns the stored item (same seq) and is announced again; new items continue the sequence", async () => {
    const inbox = createInboxRepo(db.sql);
    const first = item("c", "c1");
    await inbox.insertMany([first]);
    const again = { ...first, title: "changed" };
    const next = item("c", "c2");
    let announced: string[] = [];
    const rows = await inbox.insertMany([again, next], async (rs) => void (announced = rs.map((r) => `${r.title}:${r.seq}`)));
    expect(rows.get(first.id)).toMatchObject({ title: "c1", seq: 1 });
    expect(rows.get(next.id)).toMatchObject({ title: "c2", seq: 2 });
    expect(announced).toEqual(["c1:1", "c2:2"]);
  });

  test("if the announcement fails nothing of the batch is stored", async () => {
    const inbox = createInboxRepo(db.sql);
    const items = [item("d", "d1"), item("e", "e1")];
    await expect(inbox.insertMany(items, async () => Promise.reject(new Error("broker down")))).rejects.toThrow("broker down");
    expect(await inbox.headSeq("d")).toBe(0);
    expect(await inbox.headSeq("e")).toBe(0);
  });

  test("concurrent batches over the same users never deadlock and leave gapless seqs", async () => {
    const inbox = createInboxRepo(db.sql);
    const users = ["u1", "u2", "u3", "u4"];
    // Each batch names the users in a different order: without one lock order they would deadlock.
    await Promise.all(Array.from({ length: 12 }, (_, b) => inbox.insertMany(Array.from({ length: 8 }, (_, k) => item(users[(b + k) % 4]!, `${b}-${k}`)))));
    for (const u of users) {
      const seqs = (await db.sql`SELECT seq FROM inbox_items WHERE user_id = ${u} ORDER BY seq`).map((r) => Number(r.seq));
      expect(seqs).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
    }
  });
});
