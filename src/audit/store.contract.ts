/**
 * The one contract every AuditStore keeps. store.test.ts runs it against PostgreSQL, against the
 * MongoDB store over the PostgreSQL twin, and against a real MongoDB when NOTIFY_TEST_MONGO_URL is set.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { AuditRecord, StoredAuditRecord } from "./record.ts";
import { InvalidCursorError, STREAM_PAGE, type AuditStore } from "./store.ts";
import { verifyCommand } from "./verify.ts";

export interface ContractBackend {
  /** A store instance; every call opens another instance over the same storage (for concurrency). */
  open(): Promise<AuditStore>;
  /** Edits a stored record's details behind the store's back, as someone with database access would. */
  tamper(seq: number, details: Record<string, unknown>): Promise<void>;
  /** Drops the storage. */
  cleanup(): Promise<void>;
}

let n = 0;
/** A valid record; uuid v7 ids, time now unless given. */
export function makeRecord(over: Partial<AuditRecord> = {}): AuditRecord {
  n += 1;
  return {
    id: Bun.randomUUIDv7(),
    time: new Date().toISOString(),
    actor: { type: "api_key", id: `k${n % 3}`, name: "shop backend" },
    action: "event.accepted",
    target: { type: "notification", id: `n${n}` },
    outcome: "success",
    request_id: `req-${n}`,
    details: { n, nested: { list: [1, "two", { three: 3 }], flag: true, none: null } },
    ...over,
  };
}

const daysAgo = (d: number) => new Date(Date.now() - d * 86_400_000).toISOString();

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

export function runAuditStoreContract(name: string, makeBackend: () => Promise<ContractBackend>): void {
  describe(`AuditStore contract: ${name}`, () => {
    let backend: ContractBackend;
    let store: AuditStore;
    const extra: AuditStore[] = [];

    beforeEach(async () => {
      backend = await makeBackend();
      store = await backend.open();
    });
    afterEach(async () => {
      for (const s of extra.splice(0)) await s.close();
      await store.close();
      await backend.cleanup();
    });

    test("an empty store verifies", async () => {
      expect(await store.verify()).toEqual({ ok: true, count: 0 });
      expect(await store.query({})).toEqual({ items: [], next_cursor: null });
    });

    test("append assigns contiguous seq and a hash chain; records round-trip", async () => {
      const a = makeRecord({ details: { before: { subject: "Hi" }, after: { subject: "Hello ✓ \u0000" }, n: 1.5 } });
      const b = makeRecord({ actor: { type: "system", id: "scheduler" }, request_id: undefined });
      const c = makeRecord({ time: "2026-01-02T03:04:05Z" });
      expect(await store.append([a, b])).toEqual({ inserted: 2, skipped: 0 });
      expect(await store.append([c])).toEqual({ inserted: 1, skipped: 0 });
      const page = await store.query({});
      expect(page.items.map((r) => r.seq)).toEqual([3, 2, 1]);
      const [rc, rb, ra] = page.items as [StoredAuditRecord, StoredAuditRecord, StoredAuditRecord];
      expect(ra.prev_hash).toBe("0".repeat(64));
      expect(rb.prev_hash).toBe(ra.hash);
      expect(rc.prev_hash).toBe(rb.hash);
      expect(ra.details).toEqual({ before: { subject: "Hi" }, after: { subject: "Hello ✓ \uFFFD" }, n: 1.5 });
      expect(ra.actor).toEqual({ type: "api_key", id: a.actor.id, name: "shop backend" });
      expect(rb.actor).toEqual({ type: "system", id: "scheduler" });
      expect(rb.request_id).toBeUndefined();
      expect(rc.time).toBe("2026-01-02T03:04:05.000Z");
      expect(ra.id).toBe(a.id);
      expect(await store.verify()).toEqual({ ok: true, count: 3 });
    });

    test("redelivered ids are skipped, within a batch and across batches", async () => {
      const a = makeRecord();
      const b = makeRecord();
      expect(await store.append([a, a, b])).toEqual({ inserted: 2, skipped: 1 });
      expect(await store.append([b, a])).toEqual({ inserted: 0, skipped: 2 });
      const c = makeRecord();
      expect(await store.append([a, c])).toEqual({ inserted: 1, skipped: 1 });
      expect((await store.query({})).items.map((r) => r.id)).toEqual([c.id, b.id, a.id]);
      expect(await store.verify()).toEqual({ ok: true, count: 3 });
    });

    test("query filters by actor, target, action and time, newest first, with cursors", async () => {
      const recs = [
        makeRecord({ actor: { type: "api_key", id: "k1" }, action: "template.updated", target: { type: "template", id: "welcome" }, time: daysAgo(3) }),
        makeRecord({ actor: { type: "user", id: "k1" }, action: "auth.failed", target: { type: "user", id: "u1" }, outcome: "denied", time: daysAgo(2) }),
        makeRecord({ actor: { type: "admin", id: "root" }, action: "template.updated", target: { type: "template", id: "digest" }, time: daysAgo(1) }),
        makeRecord({ actor: { type: "api_key", id: "k1" }, action: "event.accepted", target: { type: "notification", id: "welcome" }, time: daysAgo(0) }),
      ];
      await store.append(recs);
      const ids = async (q: Parameters<AuditStore["query"]>[0]) => (await store.query(q)).items.map((r) => r.seq);
      expect(await ids({ actor: "k1" })).toEqual([4, 2, 1]);
      expect(await ids({ actor: "api_key:k1" })).toEqual([4, 1]);
      expect(await ids({ actor: "user:k1" })).toEqual([2]);
      expect(await ids({ target: "welcome" })).toEqual([4, 1]);
      expect(await ids({ target: "template:welcome" })).toEqual([1]);
      expect(await ids({ action: "template.updated" })).toEqual([3, 1]);
      expect(await ids({ action: "template.updated", actor: "admin:root" })).toEqual([3]);
      expect(await ids({ since: daysAgo(2.5) })).toEqual([4, 3, 2]);
      expect(await ids({ since: new Date(Date.parse(daysAgo(2.5))), until: daysAgo(0.5) })).toEqual([3, 2]);
      expect(await ids({ actor: "k1", target: "template:welcome", action: "template.updated", since: daysAgo(4), until: daysAgo(0) })).toEqual([1]);
      expect(await ids({ actor: "nobody" })).toEqual([]);

      // Pages cover everything once, newest first.
      const seen: number[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: Awaited<ReturnType<AuditStore["query"]>> = await store.query({ limit: 3, cursor });
        seen.push(...page.items.map((r) => r.seq));
        cursor = page.next_cursor;
        pages += 1;
      } while (cursor);
      expect(seen).toEqual([4, 3, 2, 1]);
      expect(pages).toBe(2);
      const filtered = await store.query({ actor: "k1", limit: 2 });
      expect(filtered.items.map((r) => r.seq)).toEqual([4, 2]);
      expect((await store.query({ actor: "k1", limit: 2, cursor: filtered.next_cursor })).items.map((r) => r.seq)).toEqual([1]);
      expect(store.query({ cursor: "bogus" })).rejects.toBeInstanceOf(InvalidCursorError);
    });

    test("export streams oldest first across pages, with filters", async () => {
      const total = STREAM_PAGE + 150;
      const batch: AuditRecord[] = [];
      for (let i = 0; i < total; i++) batch.push(makeRecord({ action: i % 2 ? "delivery.sent" : "delivery.failed" }));
      for (let i = 0; i < total; i += 500) await store.append(batch.slice(i, i + 500));
      const all = await collect(store.export());
      expect(all.length).toBe(total);
      expect(all.every((r, i) => r.seq === i + 1)).toBe(true);
      expect(all.map((r) => r.id)).toEqual(batch.map((r) => r.id));
      const sent = await collect(store.export({ action: "delivery.sent" }));
      expect(sent.length).toBe(Math.floor(total / 2));
      expect(sent.every((r, i, a) => i === 0 || r.seq > a[i - 1]!.seq)).toBe(true);
      expect(await store.verify()).toEqual({ ok: true, count: total });
    });

    test("a hand-edited record is detected and named by verify", async () => {
      const recs = Array.from({ length: 10 }, () => makeRecord());
      await store.append(recs);
      expect(await store.verify()).toEqual({ ok: true, count: 10 });
      await backend.tamper(6, { n: "changed by hand" });
      const res = await store.verify();
      expect(res).toMatchObject({ ok: false, count: 5, firstBad: { seq: 6, id: recs[5]!.id } });
      const lines: string[] = [];
      expect(await verifyCommand(store, { print: (l) => lines.push(l) })).toBe(1);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`seq 6 id ${recs[5]!.id}`);
    });

    test("verifyCommand prints one line and exits 0 when intact", async () => {
      await store.append([makeRecord(), makeRecord()]);
      const lines: string[] = [];
      expect(await verifyCommand(store, { print: (l) => lines.push(l) })).toBe(0);
      expect(lines).toEqual([expect.stringContaining("ok, 2 records intact")]);
    });

    test("two store instances appending at once keep one valid chain", async () => {
      const other = await backend.open();
      extra.push(other);
      const perWriter = 15;
      const writer = async (s: AuditStore) => {
        for (let i = 0; i < perWriter; i++) await s.append(Array.from({ length: 20 }, () => makeRecord()));
      };
      await Promise.all([writer(store), writer(other), writer(store), writer(other)]);
      const total = perWriter * 20 * 4;
      expect(await store.verify()).toEqual({ ok: true, count: total });
      expect(await other.verify()).toEqual({ ok: true, count: total });
      const seqs = (await collect(store.export())).map((r) => r.seq);
      expect(seqs).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    });

    test("retention deletes an old prefix, keeps verify intact, and appends keep chaining", async () => {
      const old = Array.from({ length: 5 }, () => makeRecord({ time: daysAgo(40) }));
      const young = makeRecord({ time: daysAgo(1) });
      const lateClock = makeRecord({ time: daysAgo(45) }); // old time, but after a young record in seq order
      await store.append([...old, young, lateClock]);
      const r1 = await store.applyRetention(30);
      expect(r1.deleted).toBe(5);
      expect(r1.anchor.seq).toBe(5);
      expect((await store.query({})).items.map((r) => r.id)).toEqual([lateClock.id, young.id]);
      expect(await store.verify()).toEqual({ ok: true, count: 2 });

      expect((await store.applyRetention(30)).deleted).toBe(0);
      expect(await store.verify()).toEqual({ ok: true, count: 2 });

      await store.append([makeRecord({ time: daysAgo(0.01) })]);
      expect(await store.verify()).toEqual({ ok: true, count: 3 });
      expect((await store.query({ limit: 1 })).items[0]?.seq).toBe(8);

      // Everything old: the whole log goes, the anchor carries the chain on.
      await store.append([makeRecord({ time: daysAgo(50) })]);
      const all = await store.applyRetention(0.001);
      expect(all.deleted).toBe(4);
      expect(await store.verify()).toEqual({ ok: true, count: 0 });
      await store.append([makeRecord()]);
      const [first] = (await store.query({})).items;
      expect(first?.seq).toBe(10);
      expect(first?.prev_hash).toBe(all.anchor.hash);
      expect(await store.verify()).toEqual({ ok: true, count: 1 });
    });

    test("deleting the oldest remaining record by hand is detected after retention", async () => {
      await store.append([makeRecord({ time: daysAgo(40) }), makeRecord(), makeRecord()]);
      await store.applyRetention(30);
      // Tampering with seq 2's content is the same class of edit as removing it: verify names it.
      await backend.tamper(2, { removed: true });
      expect(await store.verify()).toMatchObject({ ok: false, firstBad: { seq: 2 } });
    });
  });
}
