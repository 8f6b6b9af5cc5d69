/**
 * Our own WebSocket protocol (docs/realtime.md). Server → client: `notification`, `unread_count`,
 * `pong`, `error`, `resync`. Client → server: `ping`, `read` {id}, `read_all`.
 *
 * Catch-up after `?since=<id>`: the socket is held by the hub (live items for its user are
 * buffered) before the database is read, so an item committed during the read is either in the
 * read or in the buffer; the buffer is then flushed skipping seqs already sent, and the socket
 * joins its user's topic in the same tick. No gap, no duplicate at the boundary.
 */
import type { App } from "../app.ts";
import { AppError } from "../runtime/errors.ts";
import { userTopic, type Hub } from "./hub.ts";
import { notificationFrame } from "./messages.ts";
import { sendFrame, type Socket, type SocketProtocol } from "./sockets.ts";

/** Missed items replayed at reconnect; beyond this the client is told to reload over REST. */
export const CATCHUP_MAX = 1000;

interface NotifyState {
  closed: boolean;
}

export function createNotifyProtocol(app: App, hub: Hub): SocketProtocol {
  const log = app.log.child({ component: "ws" });
  const error = (ws: Socket, code: string, message: string, ref?: unknown) => sendFrame(ws, JSON.stringify({ type: "error", code, message, ref }));

  async function catchUp(ws: Socket, userId: string, sinceSeq: number): Promise<void> {
    const state = ws.data.state as NotifyState;
    const holder = hub.hold(userId);
    try {
      let last = sinceSeq;
      const rows = await app.repos.inbox.listSince(userId, sinceSeq, CATCHUP_MAX + 1);
      if (state.closed) return;
      if (rows.length > CATCHUP_MAX) {
        last = await app.repos.inbox.headSeq(userId);
        if (state.closed) return;
        sendFrame(ws, JSON.stringify({ type: "resync", reason: `more than ${CATCHUP_MAX} missed messages: reload GET /api/v1/inbox` }));
      } else {
        for (const r of rows) {
          if (!sendFrame(ws, notificationFrame(r))) return;
          last = r.seq;
        }
      }
      const live = holder.buffer.filter((s) => s.seq > last).sort((a, b) => a.seq - b.seq);
      for (const s of live) if (!sendFrame(ws, notificationFrame(s.item))) return;
      ws.subscribe(userTopic(userId));
    } finally {
      hub.release(holder);
    }
    hub.recount(userId);
  }

  async function command(ws: Socket, userId: string, msg: { type?: unknown; id?: unknown }): Promise<void> {
    switch (msg.type) {
      case "ping":
        sendFrame(ws, JSON.stringify({ type: "pong" }));
        return;
      case "read":
        if (typeof msg.id !== "string") return void error(ws, "VALIDATION_FAILED", "read needs an item id", msg.id);
        await app.inbox.markRead(userId, msg.id);
        return;
      case "read_all":
        await app.inbox.markAllRead(userId);
        return;
      default:
        error(ws, "UNKNOWN_TYPE", "expected ping, read or read_all", msg.type);
    }
  }

  return {
    open(ws) {
      const userId = ws.data.principal!.id;
      ws.data.state = { closed: false } satisfies NotifyState;
      if (ws.data.sinceSeq !== null) {
        catchUp(ws, userId, ws.data.sinceSeq).catch((err) => {
          log.warn("ws catch-up failed", { err: String(err) });
          ws.close(1011, "catch-up failed; reconnect");
        });
        return;
      }
      ws.subscribe(userTopic(userId));
      hub.recount(userId);
    },
    message(ws, text) {
      let msg: { type?: unknown; id?: unknown };
      try {
        msg = JSON.parse(text);
      } catch {
        error(ws, "MALFORMED_JSON", "frames must be JSON objects");
        return;
      }
      if (!msg || typeof msg !== "object") return void error(ws, "MALFORMED_JSON", "frames must be JSON objects");
      command(ws, ws.data.principal!.id, msg).catch((err) => {
        if (err instanceof AppError) error(ws, err.code, err.message, msg.id);
        else {
          log.warn("ws command failed", { err: String(err) });
          error(ws, "INTERNAL", "internal error", msg.id);
        }
      });
    },
    close(ws) {
      (ws.data.state as NotifyState).closed = true;
    },
  };
}
