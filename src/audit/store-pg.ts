/**
 * The PostgreSQL audit store (table audit_records, migrations/0003_audit.sql).
 *
 * Concurrency: each append is one transaction that takes pg_advisory_xact_lock(AUDIT_CHAIN_LOCK),
 * then reads the chain tip and the ids already stored, then inserts the whole batch in one
 * statement. Two audit processes appending at once therefore serialise per batch and build one
 * chain; the seq primary key is a second guard (a forked chain would collide on seq).
 */
import type { Sql } from "../store/db.ts";
import { chainRecords, GENESIS_HASH, parseRef, prepareBatch, type AuditRecord, type StoredAuditRecord } from "./record.ts";
import {
  clampLimit,
  decodeCursor,
  encodeCursor,
  retentionCutoff,
  STREAM_PAGE,
  toDate,
  type AuditFilter,
  type AuditPage,
  type AuditQuery,
  type AuditStore,
  type RetentionResult,
  type VerifyResult,
} from "./store.ts";
import { createChainVerifier } from "./verify.ts";

/** Arbitrary but fixed, distinct from the migration lock: serialises appenders and retention. */
export const AUDIT_CHAIN_LOCK = 7_411_901_338;

interface Row {
  seq: string;
  id: string;
  time: Date;
  actor_type: string;
  actor_id: string;
  actor_name: string | null;
  action: string;
  target_type: string;
  target_id: string;
  outcome: string;
  request_id: string | null;
  details: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

const COLUMNS = "seq, id, time, actor_type, actor_id, actor_name, action, target_type, target_id, outcome, request_id, details, prev_hash, hash";

export function rowToRecord(r: Row): StoredAuditRecord {
  const rec: StoredAuditRecord = {
    id: r.id,
    time: r.time.toISOString(),
    actor: { type: r.actor_type as StoredAuditRecord["actor"]["type"], id: r.actor_id },
    action: r.action,
    target: { type: r.target_type, id: r.target_id },
    outcome: r.outcome as StoredAuditRecord["outcome"],
    details: r.details,
    seq: Number(r.seq),
    prev_hash: r.prev_hash,
    hash: r.hash,
  };
  if (r.actor_name != null) rec.actor.name = r.actor_name;
  if (r.request_id != null) rec.request_id = r.request_id;
  return rec;
}

/** Flat rows for jsonb_to_recordset: one parameter per batch instead of 14 per record. */
export function recordsToJson(records: StoredAuditRecord[]): string {
  return JSON.stringify(
    records.map((r) => ({
      seq: r.seq,
      id: r.id,
      time: r.time,
      actor_type: r.actor.type,
      actor_id: r.actor.id,
      actor_name: r.actor.name ?? null,
      action: r.action,
      target_type: r.target.type,
      target_id: r.target.id,
      outcome: r.outcome,
      request_id: r.request_id ?? null,
      details: r.details,
      prev_hash: r.prev_hash,
      hash: r.hash,
    })),
  );
}

/**
 * The one INSERT the store uses (also measured raw by bench/audit-ingest.ts). jsonb_to_recordset
 * parses the batch server-side: one bind parameter, no 65535-parameter ceiling, no per-row planning.
 */
export async function insertRecords(sql: Sql, json: string): Promise<void> {
  await sql.unsafe(
    `INSERT INTO audit_records (${COLUMNS})
     SELECT ${COLUMNS} FROM jsonb_to_recordset($1::text::jsonb) AS x(
       seq bigint, id uuid, time timestamptz, actor_type text, actor_id text, actor_name text, action text,
       target_type text, target_id text, outcome text, request_id text, details jsonb, prev_hash text, hash text)`,
    [json],
  );
}

type Tail = { seq: number; hash: string };
const tail = (chained: StoredAuditRecord[]): Tail => {
  const last = chained[chained.length - 1]!;
  return { seq: last.seq, hash: last.hash };
};

function isStoredIdConflict(err: unknown): boolean {
  const e = err as { code?: string; constraint_name?: string };
  return e?.code === "23505" && e.constraint_name === "audit_records_id_key";
}

export interface PgAuditStoreOptions {
  sql: Sql;
  /** Close the pool on close() (true when the store created it). */
  ownsSql?: boolean;
}

export function createPgAuditStore(opts: PgAuditStoreOptions): AuditStore {
  const { sql } = opts;
  /** The chain tail the latest append in this process will leave (a prediction, see append). */
  let lastTail: Promise<Tail | undefined> = Promise.resolve(undefined);

  async function readAnchor(q: Sql): Promise<{ seq: number; hash: string }> {
    const [a] = await q<{ seq: string; hash: string }[]>`SELECT seq, hash FROM audit_chain_anchor WHERE id`;
    return a ? { seq: Number(a.seq), hash: a.hash } : { seq: 0, hash: GENESIS_HASH };
  }

  /** WHERE clause pieces for a filter, with positional parameters. */
  function where(f: AuditFilter, params: unknown[]): string[] {
    const parts: string[] = [];
    const p = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    for (const [field, value] of [["actor", f.actor], ["target", f.target]] as const) {
      if (!value) continue;
      const ref = parseRef(value);
      parts.push(
        ref.typed
          ? `(${field}_id = ${p(ref.whole)} OR (${field}_type = ${p(ref.typed.type)} AND ${field}_id = ${p(ref.typed.id)}))`
          : `${field}_id = ${p(ref.whole)}`,
      );
    }
    if (f.action) parts.push(`action = ${p(f.action)}`);
    const since = toDate(f.since);
    const until = toDate(f.until);
    if (since) parts.push(`time >= ${p(since.toISOString())}::timestamptz`);
    if (until) parts.push(`time < ${p(until.toISOString())}::timestamptz`);
    return parts;
  }

  return {
    kind: "postgres",

    async append(records: AuditRecord[]) {
      const batch = prepareBatch(records);
      if (batch.length === 0) return { inserted: 0, skipped: records.length };
      // Pipelining inside one process: the previous append publishes its final chain tail as soon
      // as it has checked it under the lock, i.e. before its INSERT and COMMIT. This batch hashes off
      // that tail meanwhile, then takes the lock (queued behind the previous one, so order holds)
      // and checks the prediction against the real tip; another process may have moved it, in which
      // case the batch is re-chained under the lock. Correctness never rests on the prediction.
      const previous = lastTail;
      let publishTail!: (t: Tail | undefined) => void;
      lastTail = new Promise<Tail | undefined>((r) => (publishTail = r));
      try {
        const predicted = await previous;
        let chained = predicted ? chainRecords(batch, predicted.seq, predicted.hash) : undefined;

        // Redeliveries are rare: insert optimistically, and only when the unique id says some record
        // is already stored, redo the batch without those (looked up under the same lock).
        const run = (checkStored: boolean) =>
          sql.begin(async (tx) => {
            await tx`SELECT pg_advisory_xact_lock(${AUDIT_CHAIN_LOCK})`;
            let fresh = batch;
            if (checkStored) {
              const stored = await tx<{ id: string }[]>`SELECT id::text FROM audit_records WHERE id = ANY(${batch.map((r) => r.id)}::uuid[])`;
              const skip = new Set(stored.map((r) => r.id));
              fresh = batch.filter((r) => !skip.has(r.id));
              if (fresh.length === 0) {
                publishTail(undefined);
                return { inserted: 0, skipped: records.length };
              }
            }
            const [tip] = await tx<{ seq: string; hash: string }[]>`SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1`;
            const prev = tip ? { seq: Number(tip.seq), hash: tip.hash } : await readAnchor(tx as unknown as Sql);
            if (checkStored || !chained || !predicted || predicted.seq !== prev.seq || predicted.hash !== prev.hash) {
              chained = chainRecords(fresh, prev.seq, prev.hash);
            }
            publishTail(tail(chained));
            await insertRecords(tx as unknown as Sql, recordsToJson(chained));
            return { inserted: fresh.length, skipped: records.length - fresh.length };
          });
        try {
          return await run(false);
        } catch (err) {
          if (!isStoredIdConflict(err)) throw err;
          return await run(true);
        }
      } finally {
        // Failed before publishing (or published a tail that was then rolled back): the next batch
        // finds out under the lock. Resolving twice is a no-op.
        publishTail(undefined);
      }
    },

    async query(q: AuditQuery): Promise<AuditPage> {
      const limit = clampLimit(q.limit);
      const params: unknown[] = [];
      const parts = where(q, params);
      const before = decodeCursor(q.cursor);
      if (before !== undefined) {
        params.push(before);
        parts.push(`seq < $${params.length}`);
      }
      params.push(limit + 1);
      const rows = await sql.unsafe<Row[]>(
        `SELECT ${COLUMNS} FROM audit_records ${parts.length ? "WHERE " + parts.join(" AND ") : ""}
         ORDER BY seq DESC LIMIT $${params.length}`,
        params as never[],
      );
      const items = rows.slice(0, limit).map(rowToRecord);
      const last = items[items.length - 1];
      return { items, next_cursor: rows.length > limit && last ? encodeCursor(last.seq) : null };
    },

    async *export(filter: AuditFilter = {}) {
      let after = 0;
      for (;;) {
        const params: unknown[] = [];
        const parts = where(filter, params);
        params.push(after);
        parts.push(`seq > $${params.length}`);
        const rows = await sql.unsafe<Row[]>(
          `SELECT ${COLUMNS} FROM audit_records WHERE ${parts.join(" AND ")} ORDER BY seq ASC LIMIT ${STREAM_PAGE}`,
          params as never[],
        );
        for (const r of rows) yield rowToRecord(r);
        if (rows.length < STREAM_PAGE) return;
        after = Number(rows[rows.length - 1]!.seq);
      }
    },

    async verify(): Promise<VerifyResult> {
      // One snapshot for the whole walk, so a retention run meanwhile cannot move the anchor
      // under our feet. Keyset pages keep memory bounded.
      return sql.begin("isolation level repeatable read read only", async (tx) => {
        const q = tx as unknown as Sql;
        const anchor = await readAnchor(q);
        const check = createChainVerifier(anchor);
        let after = anchor.seq;
        for (;;) {
          const rows = await q.unsafe<Row[]>(
            `SELECT ${COLUMNS} FROM audit_records WHERE seq > $1 ORDER BY seq ASC LIMIT ${STREAM_PAGE}`,
            [after],
          );
          for (const r of rows) {
            const bad = check.next(rowToRecord(r));
            if (bad) return bad;
          }
          if (rows.length < STREAM_PAGE) return check.done();
          after = Number(rows[rows.length - 1]!.seq);
        }
      });
    },

    async applyRetention(olderThanDays: number): Promise<RetentionResult> {
      const cutoff = retentionCutoff(olderThanDays).toISOString();
      return sql.begin(async (tx) => {
        const q = tx as unknown as Sql;
        await tx`SELECT pg_advisory_xact_lock(${AUDIT_CHAIN_LOCK})`;
        // The prefix ends before the first record (in seq order) that is still young, so a record
        // with a late clock never gets deleted early and the remaining log has no holes.
        const [young] = await tx<{ seq: string }[]>`SELECT min(seq)::text AS seq FROM audit_records WHERE time >= ${cutoff}::timestamptz`;
        const limit = young?.seq != null ? `seq < ${Number(young.seq)}` : "true";
        const [last] = await q.unsafe<{ seq: string; hash: string }[]>(
          `SELECT seq, hash FROM audit_records WHERE ${limit} ORDER BY seq DESC LIMIT 1`,
        );
        if (!last) return { deleted: 0, anchor: await readAnchor(q) };
        const anchor = { seq: Number(last.seq), hash: last.hash };
        const res = await tx`DELETE FROM audit_records WHERE seq <= ${anchor.seq}`;
        await tx`INSERT INTO audit_chain_anchor (id, seq, hash, deleted) VALUES (true, ${anchor.seq}, ${anchor.hash}, ${res.count})
                 ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash,
                   deleted = audit_chain_anchor.deleted + EXCLUDED.deleted, updated_at = now()`;
        return { deleted: res.count, anchor };
      });
    },

    async close() {
      if (opts.ownsSql) await sql.end({ timeout: 5 });
    },
  };
}
