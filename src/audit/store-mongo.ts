/**
 * The MongoDB audit store, written against DocCollection (doc-collection.ts) so the same code runs
 * over the official driver and over the PostgreSQL twin in tests.
 *
 * Collections: audit_records (one document per record, _id = record id, so a redelivered record
 * collides instead of duplicating) and audit_meta ({_id:"lock"}: the appenders' lease lock;
 * {_id:"anchor"}: the retention checkpoint).
 *
 * Concurrency without transactions (a standalone mongod has none): an appender takes the lock
 * document with findOneAndUpdate (a lease, so a crashed holder cannot block forever), reads the tip
 * (highest seq) and appends. The unique index on seq is the second guard: if a lease ever expired
 * under a slow holder, the two chains would collide on seq and the later insert fails instead of
 * forking the chain. The tip is always read from the records themselves, so a crash between
 * insertMany and unlock leaves nothing to repair.
 *
 * Retention: applyRetention writes the checkpoint, then deletes the prefix (a crash in between only
 * leaves records verify already skips). Optional TTL (ttlDays): records carry expire_at, kept
 * non-decreasing along seq so the TTL monitor only ever removes a prefix; verify then skips expired
 * records and trusts the first remaining record's link (a weaker check, documented in verify.ts).
 */
import { randomUUID } from "node:crypto";
import { delay } from "../runtime/lifecycle.ts";
import { type DocCollection, type DocDatabase, type DocFilter, type Doc, isDuplicateKey } from "./doc-collection.ts";
import { chainRecords, GENESIS_HASH, parseRef, prepareBatch, type AuditRecord, type StoredAuditRecord } from "./record.ts";
import {
  clampLimit,
  decodeCursor,
  encodeCursor,
  retentionCutoff,
  STREAM_PAGE,
  toDate,
  type AuditFilter,
  type AuditStore,
  type VerifyResult,
} from "./store.ts";
import { createChainVerifier } from "./verify.ts";

/** Longer than any sane append of one batch; short enough that a crashed holder blocks only briefly. */
const LOCK_LEASE_MS = 30_000;
/** How long append waits for the lock before failing (the consumer then retries the batch). */
const LOCK_WAIT_MS = 60_000;

interface RecordDoc extends Doc {
  seq: number;
  time: Date;
  actor: StoredAuditRecord["actor"];
  action: string;
  target: StoredAuditRecord["target"];
  outcome: StoredAuditRecord["outcome"];
  request_id?: string;
  details: Record<string, unknown>;
  prev_hash: string;
  hash: string;
  expire_at?: Date;
}

interface MetaDoc extends Doc {
  owner?: string | null;
  until?: Date;
  seq?: number;
  hash?: string;
}

function toDoc(r: StoredAuditRecord, expireAt?: Date): RecordDoc {
  const d: RecordDoc = {
    _id: r.id,
    seq: r.seq,
    time: new Date(r.time),
    actor: r.actor,
    action: r.action,
    target: r.target,
    outcome: r.outcome,
    details: r.details,
    prev_hash: r.prev_hash,
    hash: r.hash,
  };
  if (r.request_id !== undefined) d.request_id = r.request_id;
  if (expireAt) d.expire_at = expireAt;
  return d;
}

function fromDoc(d: RecordDoc): StoredAuditRecord {
  const r: StoredAuditRecord = {
    id: d._id,
    time: (d.time instanceof Date ? d.time : new Date(d.time as unknown as string)).toISOString(),
    actor: { type: d.actor.type, id: d.actor.id },
    action: d.action,
    target: { type: d.target.type, id: d.target.id },
    outcome: d.outcome,
    details: d.details ?? {},
    seq: Number(d.seq),
    prev_hash: d.prev_hash,
    hash: d.hash,
  };
  if (d.actor.name != null) r.actor.name = d.actor.name;
  if (d.request_id != null) r.request_id = d.request_id;
  return r;
}

function refFilter(field: "actor" | "target", value: string): DocFilter {
  const ref = parseRef(value);
  const whole: DocFilter = { [`${field}.id`]: ref.whole };
  return ref.typed ? { $or: [whole, { [`${field}.type`]: ref.typed.type, [`${field}.id`]: ref.typed.id }] } : whole;
}

function toFilter(f: AuditFilter): DocFilter[] {
  const parts: DocFilter[] = [];
  if (f.actor) parts.push(refFilter("actor", f.actor));
  if (f.target) parts.push(refFilter("target", f.target));
  if (f.action) parts.push({ action: f.action });
  const since = toDate(f.since);
  const until = toDate(f.until);
  if (since || until) parts.push({ time: { ...(since ? { $gte: since } : {}), ...(until ? { $lt: until } : {}) } });
  return parts;
}

const and = (parts: DocFilter[]): DocFilter => (parts.length === 0 ? {} : parts.length === 1 ? parts[0]! : { $and: parts });

export interface MongoAuditStoreOptions {
  db: DocDatabase;
  /** Optional TTL retention in days (a TTL index on expire_at). applyRetention works either way. */
  ttlDays?: number;
  /** Close the database on close(). */
  ownsDb?: boolean;
}

export async function createMongoAuditStore(opts: MongoAuditStoreOptions): Promise<AuditStore> {
  const records = opts.db.collection<RecordDoc>("audit_records");
  const meta = opts.db.collection<MetaDoc>("audit_meta");
  const ttlMs = opts.ttlDays ? opts.ttlDays * 86_400_000 : 0;

  await records.createIndex({ seq: 1 }, { name: "seq_unique", unique: true });
  await records.createIndex({ "actor.id": 1, seq: -1 }, { name: "actor_seq" });
  await records.createIndex({ "target.id": 1, seq: -1 }, { name: "target_seq" });
  await records.createIndex({ action: 1, seq: -1 }, { name: "action_seq" });
  await records.createIndex({ time: 1 }, { name: "time" });
  if (ttlMs) await records.createIndex({ expire_at: 1 }, { name: "expire_at_ttl", expireAfterSeconds: 0 });
  await insertIfAbsent(meta, { _id: "lock", owner: null, until: new Date(0) });
  await insertIfAbsent(meta, { _id: "anchor", seq: 0, hash: GENESIS_HASH });

  async function readAnchor(): Promise<{ seq: number; hash: string }> {
    const a = await meta.findOne({ _id: "anchor" });
    return { seq: Number(a?.seq ?? 0), hash: a?.hash ?? GENESIS_HASH };
  }

  async function withLock<T>(fn: () => Promise<T>): Promise<T> {
    const owner = randomUUID();
    const deadline = Date.now() + LOCK_WAIT_MS;
    let wait = 2;
    for (;;) {
      const now = new Date();
      const got = await meta.findOneAndUpdate(
        { _id: "lock", $or: [{ owner: null }, { until: { $lt: now } }] },
        { $set: { owner, until: new Date(now.getTime() + LOCK_LEASE_MS) } },
      );
      if (got) break;
      if (Date.now() > deadline) throw new Error("audit store: timed out waiting for the append lock");
      await delay(wait + Math.random() * wait);
      wait = Math.min(wait * 2, 100);
    }
    try {
      return await fn();
    } finally {
      await meta.findOneAndUpdate({ _id: "lock", owner }, { $set: { owner: null, until: new Date(0) } }).catch(() => {});
    }
  }

  async function* scan(filter: DocFilter[], after: number): AsyncGenerator<StoredAuditRecord> {
    for (;;) {
      let n = 0;
      let last = after;
      for await (const d of records.find(and([...filter, { seq: { $gt: after } }]), { sort: { seq: 1 }, limit: STREAM_PAGE })) {
        n += 1;
        last = Number(d.seq);
        yield fromDoc(d);
      }
      if (n < STREAM_PAGE) return;
      after = last;
    }
  }

  async function verifyOnce(): Promise<{ result: VerifyResult; anchor: { seq: number; hash: string } }> {
    const anchor = await readAnchor();
    const check = createChainVerifier(anchor, { trustFirstLink: ttlMs > 0 });
    // With TTL the expired prefix may be half deleted by the TTL monitor right now: skip it.
    const live: DocFilter[] = ttlMs ? [{ expire_at: { $gt: new Date() } }] : [];
    for await (const r of scan(live, anchor.seq)) {
      const bad = check.next(r);
      if (bad) return { result: bad, anchor };
    }
    return { result: check.done(), anchor };
  }

  return {
    kind: "mongodb",

    async append(input: AuditRecord[]) {
      const batch = prepareBatch(input);
      if (batch.length === 0) return { inserted: 0, skipped: input.length };
      return withLock(async () => {
        const stored = new Set<string>();
        for await (const d of records.find({ _id: { $in: batch.map((r) => r.id) } }, { projection: { _id: 1 } })) stored.add(d._id);
        const fresh = stored.size ? batch.filter((r) => !stored.has(r.id)) : batch;
        if (fresh.length === 0) return { inserted: 0, skipped: input.length };
        const tip = await records.findOne({}, { sort: { seq: -1 } });
        const prev = tip ? { seq: Number(tip.seq), hash: tip.hash } : await readAnchor();
        let expireFloor = tip?.expire_at instanceof Date ? tip.expire_at.getTime() : 0;
        const docs = chainRecords(fresh, prev.seq, prev.hash).map((r) => {
          if (!ttlMs) return toDoc(r);
          expireFloor = Math.max(expireFloor, Date.parse(r.time) + ttlMs);
          return toDoc(r, new Date(expireFloor));
        });
        await records.insertMany(docs);
        return { inserted: fresh.length, skipped: input.length - fresh.length };
      });
    },

    async query(q) {
      const limit = clampLimit(q.limit);
      const parts = toFilter(q);
      const before = decodeCursor(q.cursor);
      if (before !== undefined) parts.push({ seq: { $lt: before } });
      const items: StoredAuditRecord[] = [];
      for await (const d of records.find(and(parts), { sort: { seq: -1 }, limit: limit + 1 })) items.push(fromDoc(d));
      const more = items.length > limit;
      if (more) items.pop();
      const last = items[items.length - 1];
      return { items, next_cursor: more && last ? encodeCursor(last.seq) : null };
    },

    export(filter: AuditFilter = {}) {
      return scan(toFilter(filter), 0);
    },

    async verify() {
      // No snapshot reads here: if retention moved the anchor while we walked, walk again.
      let { result, anchor } = await verifyOnce();
      for (let i = 0; i < 3 && !result.ok; i++) {
        const now = await readAnchor();
        if (now.seq === anchor.seq && now.hash === anchor.hash) break;
        ({ result, anchor } = await verifyOnce());
      }
      return result;
    },

    async applyRetention(olderThanDays: number) {
      const cutoff = retentionCutoff(olderThanDays);
      return withLock(async () => {
        const young = await records.findOne({ time: { $gte: cutoff } }, { sort: { seq: 1 } });
        const last = await records.findOne(young ? { seq: { $lt: Number(young.seq) } } : {}, { sort: { seq: -1 } });
        const current = await readAnchor();
        if (!last || Number(last.seq) <= current.seq) return { deleted: 0, anchor: current };
        const anchor = { seq: Number(last.seq), hash: last.hash };
        // Checkpoint first: a crash before the delete leaves records verify skips anyway.
        await meta.findOneAndUpdate({ _id: "anchor" }, { $set: { seq: anchor.seq, hash: anchor.hash } });
        const deleted = await records.deleteMany({ seq: { $lte: anchor.seq } });
        return { deleted, anchor };
      });
    },

    async close() {
      if (opts.ownsDb) await opts.db.close();
    },
  };
}

async function insertIfAbsent<T extends Doc>(c: DocCollection<T>, doc: T): Promise<void> {
  try {
    await c.insertMany([doc]);
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
  }
}
