/**
 * Test clients for /ws: Bun's WebSocket (a real RFC 6455 client) recording every frame and the
 * close, and a raw TCP upgrade for asserting what the server answers before any upgrade.
 */
import { waitFor } from "./services.ts";

export interface WsClient {
  ws: WebSocket;
  frames: any[];
  closed: { code: number; reason: string } | null;
  opened: Promise<void>;
  send(msg: unknown): void;
  /** Waits for a frame matching `pred` (seen or future). */
  next(pred: (f: any) => boolean, what?: string, timeoutMs?: number): Promise<any>;
  waitClosed(timeoutMs?: number): Promise<{ code: number; reason: string }>;
  close(): void;
}

export function connectWs(url: string, opts: { protocols?: string[]; headers?: Record<string, string> } = {}): WsClient {
  const ws = new WebSocket(url, { protocols: opts.protocols, headers: opts.headers } as never);
  const c: WsClient = {
    ws,
    frames: [],
    closed: null,
    opened: new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve(), { once: true });
      ws.addEventListener("close", (e) => reject(new Error(`closed before open: ${e.code} ${e.reason}`)), { once: true });
    }),
    send: (msg) => ws.send(typeof msg === "string" ? msg : JSON.stringify(msg)),
    next: (pred, what = "frame", timeoutMs = 10_000) => waitFor(() => c.frames.find(pred), { what, timeoutMs }),
    waitClosed: (timeoutMs = 10_000) => waitFor(() => c.closed, { what: "socket closed", timeoutMs }),
    close: () => ws.close(),
  };
  c.opened.catch(() => {});
  ws.addEventListener("message", (e) => c.frames.push(JSON.parse(String(e.data))));
  ws.addEventListener("close", (e) => (c.closed = { code: e.code, reason: e.reason }));
  return c;
}

/** Sends an upgrade request over a raw socket; returns the status and the body of a refusal. */
export async function rawUpgrade(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; head: string; body: string }> {
  let buf = "";
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const sock = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, d) {
        buf += new TextDecoder().decode(d);
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const len = Number(/content-length:\s*(\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
        if (buf.startsWith("HTTP/1.1 101") || buf.length >= end + 4 + len) done();
      },
      close() {
        done();
      },
    },
  });
  const lines = [
    `GET ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Version: 13",
    `Sec-WebSocket-Key: ${Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64")}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  sock.write(lines.join("\r\n") + "\r\n\r\n");
  await Promise.race([finished, Bun.sleep(5000)]);
  sock.end();
  const end = buf.indexOf("\r\n\r\n");
  return { status: Number(buf.slice(9, 12)), head: buf.slice(0, end), body: buf.slice(end + 4) };
}
