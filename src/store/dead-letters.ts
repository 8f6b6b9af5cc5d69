/**
 * Dead letters: deliveries that ran out of attempts and messages the broker gave up on (poison),
 * listed by GET /api/v1/dead-letters and replayable.
 */
import { isoTime, type Sql } from "./db.ts";

export interface DeadLetter {
  id: string;
  queue: string;
  ref_id: string | null;
  payload: unknown;
  reason: string;
  created_at: string;
  replayed_at: string | null;
}

const toDeadLetter = (r: Record<string, unknown>): DeadLetter => ({
  id: String(r.id),
  queue: String(r.queue),
  ref_id: (r.ref_id as string) ?? null,
  payload: r.payload,
  reason: String(r.reason),
  created_at: isoTime(r.created_at)!,
  replayed_at: isoTime(r.replayed_at),
});

export function createDeadLetterRepo(sql: Sql) {
  return {
    async add(queue: string, refId: string | null, payload: unknown, reason: string, id: string = Bun.randomUUIDv7()): Promise<void> {
      await sql`INSERT INTO dead_letters (id, queue, ref_id, payload, reason)
                VALUES (${id}, ${queue}, ${refId}, ${sql.json(storable(payload) as never)}, ${reason}) ON CONFLICT (id) DO NOTHING`;
    },
    async list(limit: number, after?: string, includeReplayed = false): Promise<DeadLetter[]> {
      const rows = await sql`
        SELECT * FROM dead_letters
        WHERE (${includeReplayed} OR replayed_at IS NULL) AND (${after ?? null}::uuid IS NULL OR id < ${after ?? null}::uuid)
        ORDER BY id DESC LIMIT ${limit}`;
      return rows.map(toDeadLetter);
    },
    async get(id: string): Promise<DeadLetter | undefined> {
      const [row] = await sql`SELECT * FROM dead_letters WHERE id = ${id}`;
      return row ? toDeadLetter(row) : undefined;
    },
    async markReplayed(id: string): Promise<boolean> {
      const r = await sql`UPDATE dead_letters SET replayed_at = now() WHERE id = ${id} AND replayed_at IS NULL`;
      return r.count === 1;
    },
  };
}

export type DeadLetterRepo = ReturnType<typeof createDeadLetterRepo>;

/**
 * jsonb holds no U+0000, and a poison message may carry one (that is often why it is poison): it is
 * kept with each U+0000 spelled out as the six characters \u0000, so storing it cannot fail.
 */
function storable(v: unknown): unknown {
  // Plain values only: anything else (a Date in the broker's headers) serialises as it always has.
  if (typeof v === "string") return v.replaceAll("\0", "\\u0000");
  if (Array.isArray(v)) return v.map(storable);
  const plain = v && typeof v === "object" && [Object.prototype, null].includes(Object.getPrototypeOf(v));
  if (plain) return Object.fromEntries(Object.entries(v).map(([k, x]) => [storable(k) as string, storable(x)]));
  return v;
}
