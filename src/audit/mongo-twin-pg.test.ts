import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestDb, haveServices, type TestDb } from "../../test/support/services.ts";
import { isDuplicateKey, type Doc } from "./doc-collection.ts";
import { createPgDocDatabase } from "./mongo-twin-pg.ts";
import { makeRecord } from "./store.contract.ts";
import { createMongoAuditStore } from "./store-mongo.ts";
import type { AuditStore } from "./store.ts";
import { verifyCommand } from "./verify.ts";

const services = await haveServices;
const daysAgo = (d: number) => new Date(Date.now() - d * 86_400_000);

describe.skipIf(!services)("the PostgreSQL twin of the MongoDB collection subset", () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb({ migrate: false });
  });
  afterAll(async () => {
    await db?.drop();
  });

  test("filters, sort, limit, unique indexes and findOneAndUpdate behave as MongoDB's", async () => {
    const c = createPgDocDatabase(db.sql).collection<Doc & { n?: number; s?: string; at?: Date; o?: { k: string }; owner?: string | null }>("things");
    await c.createIndex({ n: 1 }, { name: "n_unique", unique: true });
    await c.insertMany([
      { _id: "a", n: 1, s: "x", at: daysAgo(3), o: { k: "p" }, owner: null },
      { _id: "b", n: 2, s: "y", at: daysAgo(2), o: { k: "q" } },
      { _id: "c", n: 10, s: "10", at: daysAgo(1), o: { k: "p" }, owner: "me" },
    ]);
    const ids = async (f: Parameters<typeof c.find>[0], o?: Parameters<typeof c.find>[1]) => {
      const out: string[] = [];
      for await (const d of c.find(f, o)) out.push(d._id);
      return out;
    };
    expect(await ids({ n: { $gte: 2 } }, { sort: { n: 1 } })).toEqual(["b", "c"]);
    expect(await ids({ n: { $lt: 10 } }, { sort: { n: -1 } })).toEqual(["b", "a"]); // numeric, not text, order
    expect(await ids({ s: { $gt: "1" } }, { sort: { n: 1 } })).toEqual(["a", "b", "c"]);
    expect(await ids({ n: { $gt: "0" as unknown as number } })).toEqual([]); // types do not cross, as in MongoDB
    expect(await ids({ at: { $gte: daysAgo(2.5), $lt: daysAgo(0.5) } }, { sort: { n: 1 } })).toEqual(["b", "c"]);
    expect(await ids({ "o.k": "p" }, { sort: { n: -1 }, limit: 1 })).toEqual(["c"]);
    expect(await ids({ _id: { $in: ["a", "c", "zz"] } }, { sort: { n: 1 } })).toEqual(["a", "c"]);
    expect(await ids({ owner: null }, { sort: { n: 1 } })).toEqual(["a", "b"]); // null matches missing
    expect(await ids({ $or: [{ n: 1 }, { s: "10" }] }, { sort: { n: 1 } })).toEqual(["a", "c"]);
    expect(await ids({ $and: [{ "o.k": "p" }, { $or: [{ n: 10 }, { s: "nope" }] }] })).toEqual(["c"]);
    expect((await c.findOne({ _id: "a" }))?.at).toBeInstanceOf(Date);
    expect(await c.countDocuments({ "o.k": "p" })).toBe(2);

    const dup = await c.insertMany([{ _id: "d", n: 2 }]).catch((e) => e);
    expect(isDuplicateKey(dup)).toBe(true);
    expect(isDuplicateKey(await c.insertMany([{ _id: "a", n: 99 }]).catch((e) => e))).toBe(true);

    // Of racing updates with the same precondition exactly one wins.
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => c.findOneAndUpdate({ _id: "b", $or: [{ owner: null }] }, { $set: { owner: `w${i}` } })),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await c.deleteMany({ n: { $gte: 2 } })).toBe(2);
  });

  test("MongoDB TTL retention: expire_at never decreases along seq; verify skips the expired prefix", async () => {
    const store: AuditStore = await createMongoAuditStore({ db: createPgDocDatabase(db.sql), ttlDays: 30 });
    const old = [makeRecord({ time: daysAgo(40).toISOString() }), makeRecord({ time: daysAgo(40).toISOString() })];
    const young = makeRecord({ time: daysAgo(1).toISOString() });
    const lateClock = makeRecord({ time: daysAgo(45).toISOString() });
    await store.append([...old, young, lateClock]);
    const rows = await db.sql<{ seq: number; exp: string }[]>`SELECT (doc->>'seq')::int AS seq, doc#>>'{expire_at,$date}' AS exp FROM mongo_twin_audit_records ORDER BY 1`;
    expect(rows.map((r) => r.exp)).toEqual([...rows.map((r) => r.exp)].sort());
    expect(Date.parse(rows[3]!.exp)).toBe(Date.parse(rows[2]!.exp)); // the late clock does not expire before its predecessor
    // Before the TTL monitor runs, and after it deleted the expired prefix: both verify.
    expect(await store.verify()).toEqual({ ok: true, count: 2 });
    await db.sql`DELETE FROM mongo_twin_audit_records WHERE doc#>>'{expire_at,$date}' < ${new Date().toISOString()}`;
    expect(await store.verify()).toEqual({ ok: true, count: 2 });
    await store.append([makeRecord()]);
    expect(await store.verify()).toEqual({ ok: true, count: 3 });
  });

  test("verifyCommand exits 2 when the store cannot be read", async () => {
    const lines: string[] = [];
    const broken = { kind: "postgres", verify: async () => Promise.reject(new Error("connection refused")) } as unknown as AuditStore;
    expect(await verifyCommand(broken, { print: (l) => lines.push(l) })).toBe(2);
    expect(lines).toEqual([expect.stringContaining("connection refused")]);
  });
});
