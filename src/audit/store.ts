/**
 * One interface, two backends (store-pg.ts, store-mongo.ts), one contract suite (store.contract.ts).
 *
 * The hash chain: every store keeps one chain. append() runs under a store-wide lock (PostgreSQL
 * advisory lock / MongoDB lock document), reads the chain tip, and assigns seq = tip.seq + 1, ... and
 * prev_hash/hash in batch order. seq is contiguous and part of the hashed content, so verify reports
 * an edited record (its hash), a removed or reordered one (the next record's link) by seq and id.
 * Query order is seq (store order, newest first); `time` is the producer's clock and only filters.
 *
 * Retention and the anchor: applyRetention deletes the oldest records as a *seq prefix* and, in the
 * same step, saves a checkpoint {seq, hash} of the last deleted record. verify() starts from that
 * checkpoint (GENESIS_HASH/seq 0 when nothing was ever deleted). We keep a checkpoint rather than
 * trusting the oldest remaining record's prev_hash, because the latter would make a hand-deleted
 * head of the log undetectable. Known limit of any hash chain without an external witness: someone
 * who can rewrite every later record (or delete only the newest ones) is not detected.
 */
import type { AuditRecord, StoredAuditRecord } from "./record.ts";

export interface AuditFilter {
  /** "type:id" (e.g. "api_key:k1") or a bare id. */
  actor?: string;
  /** Exact action, e.g. "template.updated". */
  action?: string;
  /** "type:id" (e.g. "template:welcome") or a bare id. */
  target?: string;
  /** Inclusive lower bound on time. */
  since?: string | Date;
  /** Exclusive upper bound on time. */
  until?: string | Date;
}

export interface AuditQuery extends AuditFilter {
  /** Page size, 1..MAX_QUERY_LIMIT (default DEFAULT_QUERY_LIMIT). */
  limit?: number;
  /** next_cursor of the previous page. */
  cursor?: string | null;
}

export interface AuditPage {
  /** Newest first (by seq: store order). */
  items: StoredAuditRecord[];
  next_cursor: string | null;
}

export type VerifyResult =
  | { ok: true; count: number }
  | { ok: false; count: number; firstBad: { seq: number; id: string }; reason: string };

export interface RetentionResult {
  deleted: number;
  /** The checkpoint verify starts from after this run (unchanged when nothing was deleted). */
  anchor: { seq: number; hash: string };
}

export interface AuditStore {
  readonly kind: "postgres" | "mongodb";
  /**
   * Stores one batch atomically with respect to other appenders: assigns seq and the hash chain in
   * order. Records whose id is already stored (redeliveries) are skipped, so append is idempotent.
   * Rejects when the store is unavailable. PostgreSQL then stored nothing of the batch; MongoDB (no
   * transactions) may have stored a prefix of it, which a retry of the same batch skips by id.
   */
  append(records: AuditRecord[]): Promise<{ inserted: number; skipped: number }>;
  /** Newest first, cursor paginated. */
  query(q: AuditQuery): Promise<AuditPage>;
  /** Oldest first, streamed in pages (bounded memory whatever the size of the log). */
  export(filter?: AuditFilter): AsyncIterable<StoredAuditRecord>;
  /** Walks the whole chain from the retention anchor, streaming. */
  verify(): Promise<VerifyResult>;
  /** Deletes records older than `olderThanDays` (a seq prefix: stops at the first younger record). */
  applyRetention(olderThanDays: number): Promise<RetentionResult>;
  close(): Promise<void>;
}

export const DEFAULT_QUERY_LIMIT = 50;
export const MAX_QUERY_LIMIT = 1000;
/** Rows per page in export/verify: big enough to amortise round trips, small enough to stay < a few MB. */
export const STREAM_PAGE = 2000;

export function clampLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return DEFAULT_QUERY_LIMIT;
  return Math.max(1, Math.min(MAX_QUERY_LIMIT, Math.floor(limit)));
}

/** Cursors are opaque to clients; inside they are the seq of the last item served. */
export function encodeCursor(seq: number): string {
  return Buffer.from(`s:${seq}`).toString("base64url");
}

export function decodeCursor(cursor: string | null | undefined): number | undefined {
  if (!cursor) return undefined;
  const m = /^s:(\d{1,18})$/.exec(Buffer.from(cursor, "base64url").toString());
  if (!m) throw new InvalidCursorError();
  return Number(m[1]);
}

export class InvalidCursorError extends Error {
  constructor() {
    super("invalid cursor");
    this.name = "InvalidCursorError";
  }
}

export function toDate(d: string | Date | undefined): Date | undefined {
  if (d === undefined) return undefined;
  const date = d instanceof Date ? d : new Date(d);
  if (Number.isNaN(date.getTime())) throw new RangeError(`invalid date: ${String(d)}`);
  return date;
}

/** Cut-off for retention: the instant `days` before now. */
export function retentionCutoff(days: number, now = Date.now()): Date {
  if (!(days > 0)) throw new RangeError("retention days must be positive");
  return new Date(now - days * 86_400_000);
}
