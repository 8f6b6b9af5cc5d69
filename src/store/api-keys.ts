/**
 * API keys. The key is shown once at creation; only its sha256 is stored.
 * Format: nk_<8 hex id prefix>_<43 chars base64url secret>.
 */
import { createHash, randomBytes } from "node:crypto";
import { isoTime, type Sql } from "./db.ts";
import type { Scope } from "../schemas/api-key.ts";

export interface ApiKeyRecord {
  id: string;
  name: string;
  prefix: string;
  scopes: Scope[];
  created_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
}

export function hashKey(key: string): Buffer {
  return createHash("sha256").update(key).digest();
}

function toRecord(row: Record<string, unknown>): ApiKeyRecord {
  return {
    id: String(row.id),
    name: String(row.name),
    prefix: String(row.prefix),
    scopes: row.scopes as Scope[],
    created_at: isoTime(row.created_at)!,
    revoked_at: isoTime(row.revoked_at),
    last_used_at: isoTime(row.last_used_at),
  };
}

export function createApiKeyRepo(sql: Sql) {
  return {
    async create(name: string, scopes: Scope[], createdBy?: string): Promise<{ record: ApiKeyRecord; key: string }> {
      const id = Bun.randomUUIDv7();
      const prefix = `nk_${id.replace(/-/g, "").slice(-8)}`;
      const key = `${prefix}_${randomBytes(32).toString("base64url")}`;
      const [row] = await sql`
        INSERT INTO api_keys (id, name, key_hash, prefix, scopes, created_by)
        VALUES (${id}, ${name}, ${hashKey(key)}, ${prefix}, ${scopes}, ${createdBy ?? null}) RETURNING *`;
      return { record: toRecord(row!), key };
    },

    async findActiveByHash(hash: Buffer): Promise<ApiKeyRecord | undefined> {
      const [row] = await sql`SELECT * FROM api_keys WHERE key_hash = ${hash} AND revoked_at IS NULL`;
      return row ? toRecord(row) : undefined;
    },

    async list(limit: number, after?: string): Promise<ApiKeyRecord[]> {
      const rows = after
        ? await sql`SELECT * FROM api_keys WHERE id < ${after} ORDER BY id DESC LIMIT ${limit}`
        : await sql`SELECT * FROM api_keys ORDER BY id DESC LIMIT ${limit}`;
      return rows.map(toRecord);
    },

    async revoke(id: string): Promise<ApiKeyRecord | undefined> {
      const [row] = await sql`UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = ${id} RETURNING *`;
      return row ? toRecord(row) : undefined;
    },

    async touch(ids: string[]): Promise<void> {
      if (ids.length) await sql`UPDATE api_keys SET last_used_at = now() WHERE id = ANY(${ids}::uuid[])`;
    },
  };
}

export type ApiKeyRepo = ReturnType<typeof createApiKeyRepo>;
