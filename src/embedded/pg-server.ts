/**
 * Serves one PGlite instance over the PostgreSQL wire protocol on a loopback socket, so the
 * postgres.js repositories run unchanged against the embedded store.
 *
 * PGlite is a single session. @electric-sql/pglite-socket multiplexes clients onto it message by
 * message, which lets two connections' Parse/Bind/Execute interleave (one client's Bind replaces
 * the other's unnamed portal). This server multiplexes by *batch* instead: everything a client
 * sends up to a Sync, a simple Query or a Flush runs as one exclusive unit, and a client that
 * leaves the session inside a transaction (or mid extended-protocol, after a Flush) owns it until
 * it is idle again. Statement names do not collide: postgres.js prefixes them per connection.
 * What a shared session cannot give: session-level settings and session advisory locks are common
 * to all connections (notify uses only transaction-scoped advisory locks), and LISTEN/NOTIFY.
 */
import type { PGlite } from "@electric-sql/pglite";
import { createServer, type Server, type Socket } from "node:net";
import type { Logger } from "../runtime/log.ts";

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
/** Sync, simple Query and Flush end a unit the client waits on; anything else is buffered. */
const BATCH_END = new Set(["S".charCodeAt(0), "Q".charCodeAt(0), "H".charCodeAt(0)]);
const FLUSH = "H".charCodeAt(0);
const TERMINATE = "X".charCodeAt(0);
const SYNC_MESSAGE = new Uint8Array([0x53, 0, 0, 0, 4]);

interface Unit {
  conn: Connection;
  bytes: Uint8Array;
  endsWithFlush: boolean;
}

class Connection {
  started = false;
  closed = false;
  buffer: Buffer = Buffer.alloc(0);
  constructor(
    readonly id: number,
    readonly socket: Socket,
  ) {}
}

export interface PgServer {
  /** postgres:// URL of the loopback listener. */
  url: string;
  close(): Promise<void>;
}

/** `onDead`: PGlite stopped answering (a failed unit, then a failed liveness check). */
export async function servePglite(db: PGlite, log: Logger, onDead: (err: Error) => void = () => {}): Promise<PgServer> {
  const pending: Unit[] = [];
  const conns = new Set<Connection>();
  let owner: Connection | undefined;
  let running = false;
  let seq = 0;

  const pump = async () => {
    if (running) return;
    running = true;
    try {
      for (;;) {
        const i = owner ? pending.findIndex((u) => u.conn === owner) : 0;
        if (i < 0 || pending.length === 0) break;
        const unit = pending.splice(i, 1)[0]!;
        if (unit.conn.closed) continue;
        try {
          await db.runExclusive(() =>
            db.execProtocolRawStream(unit.bytes, {
              onRawData: (chunk: Uint8Array) => {
                if (!unit.conn.closed && chunk.length) unit.conn.socket.write(chunk);
              },
            }),
          );
        } catch (err) {
          log.warn("embedded postgres: protocol unit failed; closing that connection", { err: (err as Error).message });
          unit.conn.socket.destroy();
          // One client's bad unit, or PGlite itself gone (a wasm trap)? Only a live one answers.
          const dead = await db.exec("SELECT 1").then(() => undefined, (e: unknown) => e as Error);
          if (dead) {
            // Nothing will answer again: fail every client now rather than leave them waiting.
            pending.length = 0;
            server.close();
            for (const c of conns) c.socket.destroy();
            onDead(dead);
            return;
          }
        }
        owner = unit.endsWithFlush || db.isInTransaction() ? unit.conn : undefined;
        if (unit.conn.closed && owner === unit.conn) await release(unit.conn);
      }
    } finally {
      running = false;
    }
  };

  /** A client that vanished while owning the session must not leave it in its transaction. */
  const release = async (conn: Connection) => {
    if (owner !== conn) return;
    await db.runExclusive(async () => {
      await db.execProtocolRaw(SYNC_MESSAGE);
      if (db.isInTransaction()) await db.exec("ROLLBACK");
    });
    owner = undefined;
  };

  const onData = (conn: Connection, chunk: Buffer) => {
    conn.buffer = conn.buffer.length ? Buffer.concat([conn.buffer, chunk]) : chunk;
    let start = 0;
    let cut = 0;
    const buf = conn.buffer;
    while (buf.length - cut >= 5) {
      if (!conn.started) {
        if (buf.length - cut < 8) break;
        const len = buf.readInt32BE(cut);
        if (buf.length - cut < len) break;
        const code = buf.readInt32BE(cut + 4);
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          conn.socket.write("N");
        } else if (code === CANCEL_REQUEST) {
          conn.socket.destroy(); // cancellation is not supported by a single session
          return;
        } else {
          conn.started = true;
          pending.push({ conn, bytes: new Uint8Array(buf.subarray(cut, cut + len)), endsWithFlush: false });
        }
        cut += len;
        start = cut;
        continue;
      }
      const type = buf[cut]!;
      const len = 1 + buf.readInt32BE(cut + 1);
      if (buf.length - cut < len) break;
      if (type === TERMINATE) {
        conn.socket.end();
        conn.buffer = Buffer.alloc(0);
        void pump();
        return;
      }
      cut += len;
      if (BATCH_END.has(type)) {
        pending.push({ conn, bytes: new Uint8Array(buf.subarray(start, cut)), endsWithFlush: type === FLUSH });
        start = cut;
      }
    }
    conn.buffer = start ? buf.subarray(start) : buf;
    void pump();
  };

  const server: Server = createServer((socket) => {
    const conn = new Connection(++seq, socket);
    conns.add(conn);
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => onData(conn, chunk));
    socket.on("error", () => {});
    socket.on("close", () => {
      conn.closed = true;
      conns.delete(conn);
      if (owner === conn && !running) void release(conn).then(pump);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  if (!addr || typeof addr !== "object") throw new Error("embedded postgres: no listen address");
  return {
    url: `postgres://postgres@127.0.0.1:${addr.port}/postgres`,
    close: async () => {
      for (const c of conns) c.socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
