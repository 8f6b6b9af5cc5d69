/**
 * The end user's inbox, shared by REST, GraphQL and the WebSocket: list, unread count, read,
 * read-all, archive. Every call takes the caller's user id from their token, never from input.
 * A change that can move the unread count is announced on the realtime topic so every gateway
 * recounts and pushes the new count to that user's sockets.
 */
import { AppError } from "../runtime/errors.ts";
import type { Logger } from "../runtime/log.ts";
import type { Queue } from "../mq/queue.ts";
import { inboxView, type InboxItem, type InboxRepo, type InboxRow } from "../store/inbox.ts";
import type { UnreadChangedSignal } from "../realtime/messages.ts";

export interface InboxPage {
  items: InboxItem[];
  next_cursor: string | null;
}

export interface ListOptions {
  limit: number;
  /** Opaque cursor from a previous page. */
  cursor?: string;
  /** An item id: only items newer than it, oldest first (catch-up). */
  since?: string;
  archived?: boolean;
}

export function createInboxService(deps: { inbox: InboxRepo; queue: Queue; log: Logger }) {
  const log = deps.log.child({ component: "inbox" });

  function announce(userId: string): void {
    const body: UnreadChangedSignal = { type: "unread_changed", user_id: userId };
    // The change is committed; a lost announcement only delays the pushed count until the next change.
    deps.queue.publish("realtime", [{ routingKey: userId, body }]).catch((err) => log.warn("unread announcement not published", { err: String(err) }));
  }

  /** The seq of one of the user's items; 404 for anything else (unknown or someone else's). */
  async function seqOf(userId: string, id: string, path: string): Promise<number> {
    const row = await deps.inbox.get(userId, id);
    if (!row) throw new AppError("NOT_FOUND", `inbox item ${id} not found`, { details: [{ path, message: "no such item in your inbox" }] });
    return row.seq;
  }

  async function list(userId: string, opts: ListOptions): Promise<InboxPage> {
    const cursor = opts.cursor ? decodeCursor(opts.cursor) : undefined;
    let rows: InboxRow[];
    if (opts.since !== undefined || cursor?.dir === "asc") {
      if (cursor && cursor.dir !== "asc") throw badCursor();
      const after = cursor?.seq ?? (await seqOf(userId, opts.since!, "since"));
      rows = await deps.inbox.listSince(userId, after, opts.limit + 1);
      return pageOf(rows, opts.limit, "asc");
    }
    rows = await deps.inbox.list(userId, { limit: opts.limit + 1, beforeSeq: cursor?.seq, archived: opts.archived });
    return pageOf(rows, opts.limit, "desc");
  }

  async function markRead(userId: string, id: string): Promise<{ item: InboxItem; unread_count: number }> {
    const r = await deps.inbox.markRead(userId, id);
    if (!r) throw new AppError("NOT_FOUND", `inbox item ${id} not found`);
    if (r.changed) announce(userId);
    return { item: inboxView(r.row), unread_count: await deps.inbox.unreadCount(userId) };
  }

  async function markAllRead(userId: string): Promise<{ updated: number; unread_count: number }> {
    const updated = await deps.inbox.markAllRead(userId);
    if (updated) announce(userId);
    return { updated, unread_count: await deps.inbox.unreadCount(userId) };
  }

  async function archive(userId: string, id: string): Promise<{ item: InboxItem; unread_count: number }> {
    const r = await deps.inbox.archive(userId, id);
    if (!r) throw new AppError("NOT_FOUND", `inbox item ${id} not found`);
    if (r.changed && !r.row.read) announce(userId);
    return { item: inboxView(r.row), unread_count: await deps.inbox.unreadCount(userId) };
  }

  return { list, markRead, markAllRead, archive, seqOf, unreadCount: (userId: string) => deps.inbox.unreadCount(userId) };
}

export type InboxService = ReturnType<typeof createInboxService>;

function pageOf(rows: InboxRow[], limit: number, dir: "asc" | "desc"): InboxPage {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items: items.map(inboxView), next_cursor: rows.length > limit && last ? Buffer.from(`${dir}:${last.seq}`).toString("base64url") : null };
}

function decodeCursor(raw: string): { dir: "asc" | "desc"; seq: number } {
  const m = /^(asc|desc):(\d{1,15})$/.exec(Buffer.from(raw, "base64url").toString("utf8"));
  if (!m) throw badCursor();
  return { dir: m[1] as "asc" | "desc", seq: Number(m[2]) };
}

const badCursor = () => new AppError("VALIDATION_FAILED", "invalid cursor", { details: [{ path: "cursor", message: "not a cursor returned by this API" }] });
