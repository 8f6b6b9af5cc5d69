/**
 * Audience (segment) expansion: the users of `{"all": true}`, `{"user_ids": [...]}` or
 * `{"where": {"attributes.plan": "premium", "locale": "ru"}}`, page by page.
 *
 * A generator, pulled by its consumer: the next page is queried only when the consumer asks for it,
 * so whoever reads slowly (a gRPC stream waiting for 'drain', a campaign inserting its ledger)
 * slows the query instead of making anyone buffer. Usable locally (embedded mode) and behind
 * Audience.Resolve.
 */
import type postgres from "postgres";
import { AppError } from "../runtime/errors.ts";
import type { Sql } from "./db.ts";
import { toUser, type User } from "./users.ts";
import { nulPath } from "../schemas/common.ts";

export type AudienceSpec = { all: true } | { user_ids: string[] } | { where: Record<string, string> };

/** Columns a `where` may compare besides attributes.*; anything else is a validation error. */
export const WHERE_COLUMNS = ["locale", "timezone"] as const;

export const DEFAULT_BATCH_SIZE = 1000;
/** Large enough to amortise a round trip, small enough that one batch stays far below message size limits. */
export const MAX_BATCH_SIZE = 5000;

export interface StreamAudienceOptions {
  /** Stops paging at the next page boundary (the generator returns). */
  signal?: AbortSignal;
  /** Called before each page query (metrics, tests that watch flow control). */
  onQuery?: () => void;
}

const invalid = (path: string, message: string) => new AppError("VALIDATION_FAILED", message, { details: [{ path, message }] });

/** Checks an audience and turns a `where` into SQL conditions; throws VALIDATION_FAILED. */
export function compileWhere(sql: Sql, where: Record<string, string>): postgres.PendingQuery<postgres.Row[]> {
  const entries = Object.entries(where);
  if (entries.length === 0) throw invalid("audience.where", "where needs at least one condition");
  const attributes: Record<string, unknown> = {};
  const conditions: postgres.PendingQuery<postgres.Row[]>[] = [];
  for (const [key, value] of entries) {
    if (typeof value !== "string") throw invalid(`audience.where.${key}`, "values are compared as strings");
    if (key.startsWith("attributes.")) {
      const path = key.slice("attributes.".length).split(".");
      if (path.some((p) => p === "")) throw invalid(`audience.where.${key}`, `bad attribute path "${key}"`);
      // {"attributes.a.b": "x"} → {"a": {"b": "x"}}: containment on nested objects.
      let node = attributes;
      for (const p of path.slice(0, -1)) {
        const next = node[p];
        if (next !== undefined && (typeof next !== "object" || next === null)) throw invalid(`audience.where.${key}`, `conflicting attribute paths at "${p}"`);
        node = (node[p] ??= {}) as Record<string, unknown>;
      }
      node[path.at(-1)!] = value;
    } else if ((WHERE_COLUMNS as readonly string[]).includes(key)) {
      conditions.push(sql`${sql(key)} = ${value}`);
    } else {
      throw invalid(`audience.where.${key}`, `unknown where key "${key}" (expected attributes.<key>, ${WHERE_COLUMNS.join(", ")})`);
    }
  }
  // One containment test for all attribute conditions: answered by users_attributes_gin (jsonb_path_ops).
  // sql.json, not `${JSON.stringify(x)}::jsonb`: postgres.js serialises a string bound to a jsonb
  // parameter as a JSON *string*, which contains nothing.
  if (Object.keys(attributes).length) conditions.unshift(sql`attributes @> ${sql.json(attributes as postgres.JSONValue)}`);
  return conditions.reduce((a, c) => sql`${a} AND ${c}`);
}

/** Validates the shape of an audience before any query (so a stream fails before its first batch). */
export function checkAudience(sql: Sql, audience: AudienceSpec, batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH_SIZE) {
    throw invalid("batch_size", `batch_size must be an integer from 1 to ${MAX_BATCH_SIZE}`);
  }
  // PostgreSQL stores and compares no U+0000: a filter or id holding one could only fail in the query.
  if ("where" in audience) {
    const nul = nulPath(audience.where, "audience.where");
    if (nul !== undefined) throw invalid(nul, "may not contain U+0000");
    compileWhere(sql, audience.where);
  } else if ("user_ids" in audience) {
    if (!Array.isArray(audience.user_ids)) throw invalid("audience.user_ids", "user_ids must be a list");
    if (audience.user_ids.some((id) => typeof id !== "string" || id === "" || id.includes("\0"))) throw invalid("audience.user_ids", "user ids must be non-empty strings without U+0000");
  } else if (!("all" in audience) || audience.all !== true) throw invalid("audience", "audience needs all, user_ids or where");
}

/**
 * Yields the audience's users in pages of at most `batchSize` (never an empty page), ascending by
 * id. Keyset pagination (`id > last ORDER BY id LIMIT n`) keeps every page an index range scan, so
 * page 200 costs what page 1 costs.
 */
export async function* streamAudience(sql: Sql, audience: AudienceSpec, batchSize = DEFAULT_BATCH_SIZE, opts: StreamAudienceOptions = {}): AsyncGenerator<User[], void, undefined> {
  checkAudience(sql, audience, batchSize);
  const { signal, onQuery } = opts;

  if ("user_ids" in audience) {
    // An explicit list pages through the sorted, de-duplicated list itself: each page asks for one
    // slice, so a million ids are never sent to PostgreSQL at once.
    const ids = [...new Set(audience.user_ids)].sort();
    for (let i = 0; i < ids.length; i += batchSize) {
      if (signal?.aborted) return;
      onQuery?.();
      const rows = await sql`SELECT id, email, phone, name, locale, timezone, telegram_chat_id, attributes
        FROM users WHERE id = ANY(${ids.slice(i, i + batchSize)}::text[]) ORDER BY id`;
      if (rows.length) yield rows.map(toUser);
    }
    return;
  }

  const filter = "where" in audience ? compileWhere(sql, audience.where) : sql`TRUE`;
  let last: string | undefined;
  for (;;) {
    if (signal?.aborted) return;
    onQuery?.();
    const after = last === undefined ? sql`TRUE` : sql`id > ${last}`;
    const rows = await sql`SELECT id, email, phone, name, locale, timezone, telegram_chat_id, attributes
      FROM users WHERE ${filter} AND ${after} ORDER BY id LIMIT ${batchSize}`;
    if (rows.length === 0) return;
    last = String(rows.at(-1)!.id);
    yield rows.map(toUser);
    if (rows.length < batchSize) return;
  }
}
