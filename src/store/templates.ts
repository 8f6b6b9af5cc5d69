/**
 * Templates, versioned: every save writes a new row in template_versions and bumps templates.version.
 */
import type { Sql } from "./db.ts";
import type { TemplateInput } from "../schemas/template.ts";

export interface StoredTemplate extends TemplateInput {
  key: string;
  version: number;
  created_at: string;
  updated_at: string;
}

function toTemplate(row: Record<string, unknown>): StoredTemplate {
  const body = row.body as TemplateInput;
  return {
    ...body,
    key: String(row.key),
    version: Number(row.version),
    created_at: (row.created_at as Date).toISOString(),
    updated_at: (row.updated_at as Date).toISOString(),
  };
}

export function createTemplateRepo(sql: Sql) {
  return {
    async get(key: string): Promise<StoredTemplate | undefined> {
      const [row] = await sql`SELECT * FROM templates WHERE key = ${key} AND deleted_at IS NULL`;
      return row ? toTemplate(row) : undefined;
    },

    async getVersion(key: string, version: number): Promise<TemplateInput | undefined> {
      const [row] = await sql`SELECT body FROM template_versions WHERE key = ${key} AND version = ${version}`;
      return row?.body as TemplateInput | undefined;
    },

    async exists(key: string): Promise<boolean> {
      const [row] = await sql`SELECT 1 FROM templates WHERE key = ${key} AND deleted_at IS NULL`;
      return !!row;
    },

    async put(key: string, body: TemplateInput, actor?: string): Promise<{ template: StoredTemplate; created: boolean; before?: TemplateInput }> {
      return sql.begin(async (tx) => {
        const [prev] = await tx`SELECT version, body, deleted_at FROM templates WHERE key = ${key} FOR UPDATE`;
        // Versions continue across a delete, so an old version number never means two bodies.
        const [last] = await tx`SELECT coalesce(max(version), 0) AS v FROM template_versions WHERE key = ${key}`;
        const version = Number(last!.v) + 1;
        await tx`INSERT INTO template_versions (key, version, body, created_by) VALUES (${key}, ${version}, ${tx.json(body as never)}, ${actor ?? null})`;
        const [row] = await tx`
          INSERT INTO templates (key, name, category, version, body)
          VALUES (${key}, ${body.name}, ${body.category ?? null}, ${version}, ${tx.json(body as never)})
          ON CONFLICT (key) DO UPDATE SET name = EXCLUDED.name, category = EXCLUDED.category, version = EXCLUDED.version,
            body = EXCLUDED.body, updated_at = now(), deleted_at = NULL
          RETURNING *`;
        const live = prev && !prev.deleted_at;
        return { template: toTemplate(row!), created: !live, before: live ? (prev.body as TemplateInput) : undefined };
      });
    },

    async remove(key: string): Promise<StoredTemplate | undefined> {
      const [row] = await sql`UPDATE templates SET deleted_at = now() WHERE key = ${key} AND deleted_at IS NULL RETURNING *`;
      return row ? toTemplate(row) : undefined;
    },

    async list(limit: number, after?: string): Promise<StoredTemplate[]> {
      const rows = after
        ? await sql`SELECT * FROM templates WHERE deleted_at IS NULL AND key > ${after} ORDER BY key LIMIT ${limit}`
        : await sql`SELECT * FROM templates WHERE deleted_at IS NULL ORDER BY key LIMIT ${limit}`;
      return rows.map(toTemplate);
    },

    async versions(key: string): Promise<Array<{ version: number; created_at: string; created_by: string | null }>> {
      const rows = await sql`SELECT version, created_at, created_by FROM template_versions WHERE key = ${key} ORDER BY version DESC`;
      return rows.map((r) => ({ version: Number(r.version), created_at: (r.created_at as Date).toISOString(), created_by: (r.created_by as string) ?? null }));
    },
  };
}

export type TemplateRepo = ReturnType<typeof createTemplateRepo>;
