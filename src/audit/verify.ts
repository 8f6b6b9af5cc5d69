/**
 * The chain check both stores run while streaming records in seq order, and `notify audit verify`.
 */
import { chainHash, type StoredAuditRecord } from "./record.ts";
import type { AuditStore, VerifyResult } from "./store.ts";

export interface ChainVerifier {
  /** Returns a failure for the first bad record, else undefined. */
  next(record: StoredAuditRecord): Extract<VerifyResult, { ok: false }> | undefined;
  done(): VerifyResult;
}

export interface VerifierOptions {
  /**
   * Take the first record's prev_hash as the anchor when it does not link to the checkpoint. Only
   * for MongoDB TTL retention, which deletes in the background without writing a checkpoint; it
   * cannot detect a deleted head of the log.
   */
  trustFirstLink?: boolean;
}

export function createChainVerifier(anchor: { seq: number; hash: string }, opts: VerifierOptions = {}): ChainVerifier {
  let expectedSeq = anchor.seq + 1;
  let expectedPrev = anchor.hash;
  let count = 0;
  const fail = (r: StoredAuditRecord, reason: string) => ({ ok: false as const, count, firstBad: { seq: r.seq, id: r.id }, reason });
  return {
    next(r) {
      if (count === 0 && opts.trustFirstLink && r.prev_hash !== expectedPrev) {
        expectedSeq = r.seq;
        expectedPrev = r.prev_hash;
      }
      const { hash, ...unhashed } = r;
      if (chainHash(unhashed) !== hash) return fail(r, "record altered: its content does not match its hash");
      if (r.prev_hash !== expectedPrev) {
        return fail(r, count === 0 ? "chain broken: first record does not link to the retention anchor" : `chain broken: prev_hash does not match record ${expectedSeq - 1}`);
      }
      if (r.seq !== expectedSeq) return fail(r, `records missing: expected seq ${expectedSeq}`);
      count += 1;
      expectedSeq = r.seq + 1;
      expectedPrev = hash;
      return undefined;
    },
    done: () => ({ ok: true, count }),
  };
}

export interface VerifyCommandIo {
  /** One line, newline added. */
  print(line: string): void;
}

/**
 * `notify audit verify`: prints one line and returns the exit code (0 intact, 1 broken, 2 when the
 * store cannot be read, so a monitoring job tells "tampered" from "could not check").
 */
export async function verifyCommand(store: AuditStore, io: VerifyCommandIo = { print: (l) => process.stdout.write(l + "\n") }): Promise<number> {
  const started = performance.now();
  let result: VerifyResult;
  try {
    result = await store.verify();
  } catch (err) {
    io.print(`audit verify: could not read the ${store.kind} audit store: ${err instanceof Error ? err.message : String(err)}`);
    return 2;
  }
  const ms = Math.round(performance.now() - started);
  if (result.ok) {
    io.print(`audit verify: ok, ${result.count} records intact (${store.kind}, ${ms} ms)`);
    return 0;
  }
  io.print(
    `audit verify: BROKEN at seq ${result.firstBad.seq} id ${result.firstBad.id}: ${result.reason} (${result.count} records intact before it, ${store.kind})`,
  );
  return 1;
}
