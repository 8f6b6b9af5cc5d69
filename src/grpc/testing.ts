/**
 * Test support for src/grpc/*.test.ts and bench/grpc.ts (never imported by the binary).
 */
import { loadConfig, type Config } from "../config.ts";
import { createLogger } from "../runtime/log.ts";
import type { Sql } from "../store/db.ts";

export const quietLog = createLogger((process.env.NOTIFY_LOG_LEVEL as "silent") ?? "silent");

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ NOTIFY_LOG_LEVEL: "silent", ...env });
}

/**
 * n users u000001..: one INSERT ... SELECT generate_series, so 200k rows take about a second.
 * Every 10th user has plan=premium, every 3rd locale ru, the rest en.
 */
export async function seedUsers(sql: Sql, n: number, prefix = "u"): Promise<void> {
  await sql`
    INSERT INTO users (id, email, name, locale, timezone, attributes)
    SELECT ${prefix} || lpad(i::text, 7, '0'),
           ${prefix} || i || '@example.com',
           'User ' || i,
           CASE WHEN i % 3 = 0 THEN 'ru' ELSE 'en' END,
           'Europe/Moscow',
           jsonb_build_object('plan', CASE WHEN i % 10 = 0 THEN 'premium' ELSE 'free' END, 'n', i)
    FROM generate_series(1, ${n}::int) AS i`;
}

export const userId = (i: number, prefix = "u") => `${prefix}${String(i).padStart(7, "0")}`;
