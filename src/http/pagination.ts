/** Cursor pagination: `?limit=&cursor=` → `{items, next_cursor}`. Cursors are opaque base64url. */
import { AppError } from "../runtime/errors.ts";
import { isUuid } from "../store/notifications.ts";

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;

/** A cursor this API did not hand out (a key of the wrong shape, or holding U+0000): 422, never a query. */
export const invalidCursor = () =>
  new AppError("VALIDATION_FAILED", "invalid cursor", { details: [{ path: "cursor", message: "not a cursor returned by this API" }] });

/** `key: "uuid"`: the list is keyed by a uuid, so a cursor must decode to one. */
export function pageParams(query: (k: string) => string | undefined, key: "text" | "uuid" = "text"): { limit: number; after?: string } {
  const raw = query("limit");
  let limit = DEFAULT_LIMIT;
  if (raw !== undefined) {
    limit = Number(raw);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
      throw new AppError("VALIDATION_FAILED", `limit must be an integer from 1 to ${MAX_LIMIT}`, { details: [{ path: "limit", message: `must be 1..${MAX_LIMIT}` }] });
    }
  }
  const cursor = query("cursor");
  if (!cursor) return { limit };
  const after = Buffer.from(cursor, "base64url").toString("utf8");
  if (after.includes("\0") || (key === "uuid" && !isUuid(after))) throw invalidCursor();
  return { limit, after };
}

/** Fetch limit+1 rows; this trims and builds the cursor from the last row's key. */
export function page<T>(rows: T[], limit: number, keyOf: (row: T) => string): { items: T[]; next_cursor: string | null } {
  const items = rows.slice(0, limit);
  const next = rows.length > limit ? Buffer.from(keyOf(items[items.length - 1]!), "utf8").toString("base64url") : null;
  return { items, next_cursor: next };
}
