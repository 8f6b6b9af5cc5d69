/**
 * `notify export` / `notify import`: move the data of one notify database to another, typically
 * from the embedded store of an edge host to a real PostgreSQL. The format is JSON Lines: a header
 * line, then one {"table","row"} line per row, tables in foreign-key order (parents first), rows
 * as to_jsonb() gives them. Import migrates the target, refuses one that already holds data, loads
 * each table with jsonb_populate_recordset (so every column keeps its type) and moves serial
 * sequences past the imported ids. Generic over tables: a migration that adds one needs nothing here.
 */
import type { Sql } from "../store/db.ts";
import { migrate } from "../store/db.ts";

export const EXPORT_FORMAT = "notify-export/1";
/** Rows per INSERT on import; bounded so one statement stays a few MB. */
const IMPORT_BATCH = 500;
/** Tables that describe the schema, not data: the target's own migrations rebuild them. */
const SKIP = new Set(["schema_migrations"]);

export class TransferError extends Error {}

interface Header {
  format: string;
  schema_version: number;
  tables: string[];
  exported_at: string;
}

/** Public tables, parents before children. */
export async function tablesInOrder(sql: Sql): Promise<string[]> {
  const tables = (await sql<{ name: string }[]>`
    SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.relname`).map((r) => r.name).filter((t) => !SKIP.has(t));
  const deps = await sql<{ child: string; parent: string }[]>`
    SELECT c.relname AS child, p.relname AS parent FROM pg_constraint k
    JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE k.contype = 'f' AND n.nspname = 'public' AND c.relname <> p.relname`;
  const ordered: string[] = [];
  const seen = new Set<string>();
  const visit = (t: string, path: Set<string>) => {
    if (seen.has(t) || path.has(t)) return;
    path.add(t);
    for (const d of deps) if (d.child === t && tables.includes(d.parent)) visit(d.parent, path);
    seen.add(t);
    ordered.push(t);
  };
  for (const t of tables) visit(t, new Set());
  return ordered;
}

export async function exportData(sql: Sql, write: (line: string) => void | Promise<void>): Promise<Record<string, number>> {
  const tables = await tablesInOrder(sql);
  const [v] = await sql<{ v: number | null }[]>`SELECT max(version)::int AS v FROM schema_migrations`;
  const header: Header = { format: EXPORT_FORMAT, schema_version: v?.v ?? 0, tables, exported_at: new Date().toISOString() };
  await write(JSON.stringify(header) + "\n");
  const counts: Record<string, number> = {};
  for (const table of tables) {
    counts[table] = 0;
    // A consistent snapshot per table is enough: export runs against a stopped notify (the embedded store is locked to one process).
    const cursor = sql`SELECT to_jsonb(t) AS row FROM ${sql(table)} t`.cursor(1000);
    for await (const rows of cursor) {
      let chunk = "";
      for (const r of rows as unknown as { row: unknown }[]) chunk += JSON.stringify({ table, row: r.row }) + "\n";
      counts[table] += rows.length;
      await write(chunk);
    }
  }
  return counts;
}

export async function importData(sql: Sql, lines: AsyncIterable<string>): Promise<Record<string, number>> {
  await migrate(sql);
  let header: Header | undefined;
  const counts: Record<string, number> = {};
  let batch: unknown[] = [];
  let batchTable: string | undefined;
  let tables: Set<string> | undefined;
  return sql.begin(async (tx) => {
    const flush = async () => {
      if (!batchTable || batch.length === 0) return;
      await tx`INSERT INTO ${tx(batchTable)} SELECT * FROM jsonb_populate_recordset(NULL::${tx(batchTable)}, ${JSON.stringify(batch)}::text::jsonb)`;
      counts[batchTable] = (counts[batchTable] ?? 0) + batch.length;
      batch = [];
    };
    let n = 0;
    for await (const line of lines) {
      n++;
      if (!line.trim()) continue;
      let parsed: { table?: string; row?: unknown; format?: string };
      try {
        parsed = JSON.parse(line);
      } catch {
        throw new TransferError(`line ${n}: not JSON`);
      }
      if (!header) {
        if (parsed.format !== EXPORT_FORMAT) throw new TransferError(`line 1: not a notify export (expected format ${EXPORT_FORMAT})`);
        header = parsed as Header;
        tables = new Set(await tablesInOrder(tx as unknown as Sql));
        for (const t of header.tables) {
          if (!tables.has(t)) throw new TransferError(`the target has no table ${t}: is it an older notify version?`);
          const [{ any }] = (await tx`SELECT EXISTS (SELECT 1 FROM ${tx(t)}) AS any`) as unknown as [{ any: boolean }];
          if (any) throw new TransferError(`the target table ${t} already holds data: import needs an empty database`);
        }
        continue;
      }
      if (typeof parsed.table !== "string" || !tables!.has(parsed.table) || typeof parsed.row !== "object") {
        throw new TransferError(`line ${n}: expected {"table","row"} for a known table`);
      }
      if (parsed.table !== batchTable || batch.length >= IMPORT_BATCH) await flush();
      batchTable = parsed.table;
      batch.push(parsed.row);
    }
    await flush();
    if (!header) throw new TransferError("empty input: not a notify export");
    // Serial ids continue after the imported ones.
    await tx.unsafe(`
      DO $$ DECLARE r record; BEGIN
        FOR r IN SELECT c.relname AS t, a.attname AS col, pg_get_serial_sequence(quote_ident(c.relname), a.attname) AS seq
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid
                 WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
                   AND pg_get_serial_sequence(quote_ident(c.relname), a.attname) IS NOT NULL LOOP
          EXECUTE format('SELECT setval(%L, coalesce((SELECT max(%I) FROM %I), 0) + 1, false)', r.seq, r.col, r.t);
        END LOOP; END $$`);
    return counts;
  });
}

/** Splits a byte stream into lines without holding the whole file. */
export async function* readLines(stream: ReadableStream<Uint8Array>): AsyncIterable<string> {
  const decoder = new TextDecoder();
  let rest = "";
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
    rest += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = rest.indexOf("\n")) !== -1) {
      yield rest.slice(0, i);
      rest = rest.slice(i + 1);
    }
  }
  rest += decoder.decode();
  if (rest) yield rest;
}
