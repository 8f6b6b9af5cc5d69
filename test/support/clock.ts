/**
 * A controllable database clock for scheduler tests: redefines notify_clock() in the test
 * database (every process using it, compiled binaries included, sees the same time) as
 * `at + (real time since set) × rate`.
 */
import type { Sql } from "../../src/store/db.ts";

export async function setClock(sql: Sql, at: Date | string, rate = 1): Promise<void> {
  await sql`CREATE TABLE IF NOT EXISTS test_clock (id int PRIMARY KEY, base timestamptz NOT NULL, set_at timestamptz NOT NULL, rate float8 NOT NULL)`;
  await sql`INSERT INTO test_clock VALUES (1, ${new Date(at)}, clock_timestamp(), ${rate})
            ON CONFLICT (id) DO UPDATE SET base = EXCLUDED.base, set_at = EXCLUDED.set_at, rate = EXCLUDED.rate`;
  await sql.unsafe(`CREATE OR REPLACE FUNCTION notify_clock() RETURNS timestamptz LANGUAGE sql STABLE AS
    'SELECT base + (clock_timestamp() - set_at) * rate FROM test_clock WHERE id = 1'`);
}

export async function dbClock(sql: Sql): Promise<number> {
  const [r] = await sql`SELECT notify_clock() AS now`;
  return (r!.now as Date).getTime();
}
