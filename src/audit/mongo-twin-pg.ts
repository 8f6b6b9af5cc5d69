/**
 * A PostgreSQL-backed "interface twin" of the DocCollection subset (doc-collection.ts), so the
 * MongoDB audit store runs against real storage in tests on machines where no MongoDB server can be
 * installed. Not a MongoDB emulator: it implements exactly the semantics listed in
 * doc-collection.ts, the way MongoDB defines them for the types we use.
 *
 * One table per collection, mongo_twin_<name>(_id text PRIMARY KEY, doc jsonb). Dates are stored as
 * {"$date": "<ISO>"} (Extended JSON) and compared as ISO text in the "C" collation; numbers compare
 * as jsonb numbers; comparisons only match values of the same type, as in MongoDB.
 * createIndex makes expression indexes (unique ones enforce like MongoDB's, error code 11000);
 * TTL indexes are accepted but nothing expires (no TTL monitor).
 */
import type { Sql } from "../store/db.ts";
import { DuplicateKeyError, type Doc, type DocCollection, type DocDatabase, type DocFilter, type FieldCondition, type Scalar } from "./doc-collection.ts";

const PATH = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
const TWIN_DDL_LOCK = 7_411_901_339;

function encode(v: unknown): unknown {
  if (v instanceof Date) return { $date: v.toISOString() };
  if (Array.isArray(v)) return v.map(encode);
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = encode(x);
    return out;
  }
  return v;
}

function decode(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(decode);
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && keys[0] === "$date" && typeof o.$date === "string") return new Date(o.$date);
    const out: Record<string, unknown> = {};
    for (const k of keys) out[k] = decode(o[k]);
    return out;
  }
  return v;
}

function pathExpr(path: string): string {
  if (!PATH.test(path)) throw new Error(`twin: unsupported field path ${JSON.stringify(path)}`);
  return `(doc #> '{${path.split(".").join(",")}}')`;
}

class Compiler {
  readonly params: unknown[] = [];
  private p(v: unknown): string {
    this.params.push(v);
    return `$${this.params.length}`;
  }

  filter(f: DocFilter): string {
    const parts: string[] = [];
    for (const [key, cond] of Object.entries(f)) {
      if (cond === undefined) continue;
      if (key === "$or" || key === "$and") {
        const subs = (cond as DocFilter[]).map((s) => this.filter(s));
        parts.push(subs.length ? `(${subs.join(key === "$or" ? " OR " : " AND ")})` : key === "$or" ? "false" : "true");
      } else if (key.startsWith("$")) {
        throw new Error(`twin: unsupported operator ${key}`);
      } else parts.push(this.field(pathExpr(key), cond as FieldCondition));
    }
    return parts.length ? parts.join(" AND ") : "true";
  }

  private field(e: string, cond: FieldCondition): string {
    if (cond === null || typeof cond !== "object" || cond instanceof Date) return this.eq(e, cond);
    const parts: string[] = [];
    for (const [op, v] of Object.entries(cond)) {
      if (v === undefined) continue;
      if (op === "$in") {
        const list = v as Scalar[];
        parts.push(list.length ? `(${list.map((x) => this.eq(e, x)).join(" OR ")})` : "false");
        continue;
      }
      const sqlOp = { $gt: ">", $gte: ">=", $lt: "<", $lte: "<=" }[op];
      if (!sqlOp) throw new Error(`twin: unsupported operator ${op}`);
      parts.push(this.compare(e, sqlOp, v as Scalar));
    }
    return parts.length ? `(${parts.join(" AND ")})` : "true";
  }

  private eq(e: string, v: Scalar): string {
    if (v === null) return `(${e} IS NULL OR ${e} = 'null'::jsonb)`;
    return `${e} = ${this.p(JSON.stringify(encode(v)))}::text::jsonb`;
  }

  private compare(e: string, op: string, v: Scalar): string {
    if (v instanceof Date) return `(jsonb_typeof(${e}) = 'object' AND (${e} ->> '$date') COLLATE "C" ${op} ${this.p(v.toISOString())})`;
    if (typeof v === "number") return `(jsonb_typeof(${e}) = 'number' AND ${e} ${op} ${this.p(JSON.stringify(v))}::text::jsonb)`;
    if (typeof v === "string") return `(jsonb_typeof(${e}) = 'string' AND (${e} #>> '{}') COLLATE "C" ${op} ${this.p(v)})`;
    throw new Error(`twin: unsupported comparison value ${String(v)}`);
  }

  order(sort: Record<string, 1 | -1> | undefined): string {
    const entries = Object.entries(sort ?? {});
    if (entries.length > 1) throw new Error("twin: sort by one field only");
    return entries.map(([k, d]) => `ORDER BY ${pathExpr(k)} ${d === -1 ? "DESC" : "ASC"}`).join("");
  }
}

function project<T>(doc: Record<string, unknown>, projection?: Record<string, 1>): T {
  const d = decode(doc) as Record<string, unknown>;
  if (!projection) return d as T;
  const out: Record<string, unknown> = { _id: d._id };
  for (const k of Object.keys(projection)) if (k in d) out[k] = d[k];
  return out as T;
}

function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: unknown })?.code === "23505";
}

export function createPgDocDatabase(sql: Sql, opts: { ownsSql?: boolean } = {}): DocDatabase {
  const ready = new Map<string, Promise<void>>();
  return {
    collection<T extends Doc>(name: string): DocCollection<T> {
      if (!/^[a-z][a-z0-9_]{0,40}$/.test(name)) throw new Error(`twin: unsupported collection name ${name}`);
      const table = `mongo_twin_${name}`;
      const ensure = () => {
        let p = ready.get(table);
        if (!p) {
          p = sql
            .begin(async (tx) => {
              // Two stores creating the same table at once would race on pg_type without this lock.
              await tx`SELECT pg_advisory_xact_lock(${TWIN_DDL_LOCK})`;
              await tx.unsafe(`CREATE TABLE IF NOT EXISTS ${table} (_id text PRIMARY KEY, doc jsonb NOT NULL)`);
            })
            .then(() => {});
          p.catch(() => ready.delete(table));
          ready.set(table, p);
        }
        return p;
      };
      const run = async <R extends object>(text: string, params: unknown[]) => {
        await ensure();
        try {
          return await sql.unsafe<R[]>(text, params as never[]);
        } catch (err) {
          if (isUniqueViolation(err)) throw new DuplicateKeyError(`E11000 duplicate key error collection: ${name}`, { cause: err });
          throw err;
        }
      };

      const find = async function* (filter: DocFilter, o: { sort?: Record<string, 1 | -1>; limit?: number; projection?: Record<string, 1> } = {}) {
        const c = new Compiler();
        const where = c.filter(filter);
        const rows = await run<{ doc: Record<string, unknown> }>(
          `SELECT doc FROM ${table} WHERE ${where} ${c.order(o.sort)} ${o.limit ? `LIMIT ${Math.floor(o.limit)}` : ""}`,
          c.params,
        );
        for (const r of rows) yield project<T>(r.doc, o.projection);
      };

      return {
        async insertMany(docs) {
          if (docs.length === 0) return;
          await run(`INSERT INTO ${table} (_id, doc) SELECT x->>'_id', x FROM jsonb_array_elements($1::text::jsonb) AS x`, [
            JSON.stringify(docs.map(encode)),
          ]);
        },
        find,
        async findOne(filter, o = {}) {
          for await (const d of find(filter, { ...o, limit: 1 })) return d;
          return null;
        },
        async deleteMany(filter) {
          const c = new Compiler();
          const rows = await run<{ n: number }>(`WITH d AS (DELETE FROM ${table} WHERE ${c.filter(filter)} RETURNING 1) SELECT count(*)::int AS n FROM d`, c.params);
          return rows[0]?.n ?? 0;
        },
        async countDocuments(filter) {
          const c = new Compiler();
          const rows = await run<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE ${c.filter(filter)}`, c.params);
          return rows[0]?.n ?? 0;
        },
        async createIndex(keys, o) {
          if (!/^[a-z0-9_]{1,40}$/.test(o.name)) throw new Error(`twin: unsupported index name ${o.name}`);
          const cols = Object.entries(keys).map(([k, d]) => `${pathExpr(k)}${d === -1 ? " DESC" : ""}`);
          await ensure();
          await sql.begin(async (tx) => {
            await tx`SELECT pg_advisory_xact_lock(${TWIN_DDL_LOCK})`;
            await tx.unsafe(`CREATE ${o.unique ? "UNIQUE " : ""}INDEX IF NOT EXISTS ${table}_${o.name} ON ${table} (${cols.join(", ")})`);
          });
        },
        async findOneAndUpdate(filter, update) {
          const set = encode(update.$set) as Record<string, unknown>;
          for (const k of Object.keys(set)) if (k.includes(".") || k === "_id") throw new Error(`twin: unsupported $set path ${k}`);
          const c = new Compiler();
          const where = c.filter(filter);
          const setParam = `$${c.params.push(JSON.stringify(set))}`;
          // FOR UPDATE + the re-checked WHERE make this as atomic as MongoDB's: of two racing callers
          // with the same filter, the second sees the first one's update and may no longer match.
          const rows = await run<{ doc: Record<string, unknown> }>(
            `UPDATE ${table} SET doc = doc || ${setParam}::text::jsonb
             WHERE _id = (SELECT _id FROM ${table} WHERE ${where} LIMIT 1 FOR UPDATE) AND ${where}
             RETURNING doc`,
            c.params,
          );
          return rows[0] ? project<T>(rows[0].doc) : null;
        },
      };
    },
    async close() {
      if (opts.ownsSql) await sql.end({ timeout: 5 });
    },
  };
}
