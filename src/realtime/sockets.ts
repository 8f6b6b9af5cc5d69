/**
 * The gateway's one Bun `websocket` handler (Bun.serve accepts only one): /ws upgrades are
 * authenticated here, then each socket speaks either our protocol or graphql-ws
 * (subprotocol "graphql-transport-ws"), dispatched per socket.
 *
 * Limits: frame size (maxPayloadLength → close 1009), connections per user (429 at upgrade),
 * inbound messages per second (close 1008), idle sockets (Bun pings, then closes), slow readers
 * (Bun's backpressure limit closes them), token expiry (close 4001).
 */
import type { Server, ServerWebSocket, WebSocketHandler } from "bun";
import type { App } from "../app.ts";
import { bearerToken, createKeyAuthenticator, type Principal } from "../http/auth.ts";
import { looksLikeJwt, type UserTokenVerifier } from "../http/user-auth.ts";
import { AppError } from "../runtime/errors.ts";
import type { Hub } from "./hub.ts";
import { realtimeMetrics } from "./metrics.ts";

export const GRAPHQL_WS = "graphql-transport-ws";

/** Close codes (docs/realtime.md). graphql-ws sockets also use that protocol's 44xx codes. */
export const CLOSE = {
  GOING_AWAY: 1001,
  POLICY: 1008,
  TOO_BIG: 1009,
  TOKEN_EXPIRED: 4001,
} as const;

export interface SocketData {
  kind: "notify" | "graphql";
  /** null on a graphql-ws socket until connection_init authenticates it. */
  principal: Principal | null;
  /** Token expiry, epoch seconds; 0 for API keys (revocation is checked at connect). */
  exp: number;
  /** Native protocol: the seq of the `?since=` item. */
  sinceSeq: number | null;
  /** Inbound rate: token bucket. */
  tokens: number;
  at: number;
  /** Per-protocol state, set by the protocol. */
  state?: unknown;
}

export type Socket = ServerWebSocket<SocketData>;

export interface SocketProtocol {
  open(ws: Socket): void;
  message(ws: Socket, text: string): void;
  close(ws: Socket): void;
}

export interface SocketServerDeps {
  app: App;
  hub: Hub;
  verifyUser?: UserTokenVerifier;
  notify: SocketProtocol;
  graphql: SocketProtocol;
}

export function createSocketServer(deps: SocketServerDeps) {
  const { app, hub } = deps;
  const limits = app.config.ws;
  const log = app.log.child({ component: "ws" });
  const authenticateKey = createKeyAuthenticator({ apiKeys: app.repos.apiKeys, adminKey: app.config.adminKey });
  const perUser = new Map<string, number>();
  const all = new Set<Socket>();
  // Expiry buckets by second: the sweep touches only sockets whose token has expired.
  const expiring = new Map<number, Set<Socket>>();
  let sweeper: ReturnType<typeof setInterval> | undefined;

  /** Verifies a token: a user JWT, or (graphql-ws only) an API key. */
  async function authenticate(token: string, allowKeys: boolean): Promise<{ principal: Principal; exp: number }> {
    if (looksLikeJwt(token)) {
      if (!deps.verifyUser) throw new AppError("UNAUTHENTICATED", "user tokens are not configured on this server (NOTIFY_JWT_SECRET or NOTIFY_JWKS_URL)");
      return deps.verifyUser(token);
    }
    const principal = allowKeys ? await authenticateKey(token) : null;
    if (!principal) throw new AppError("UNAUTHENTICATED", allowKeys ? "invalid token or API key" : "a user token is required");
    return { principal, exp: 0 };
  }

  function reserve(p: Principal): void {
    if (p.type !== "user") return;
    const n = perUser.get(p.id) ?? 0;
    if (n >= limits.maxConnectionsPerUser) {
      throw new AppError("TOO_MANY_CONNECTIONS", `at most ${limits.maxConnectionsPerUser} connections per user on one gateway`, { status: 429, retryAfter: 5 });
    }
    perUser.set(p.id, n + 1);
  }

  function unreserve(p: Principal | null): void {
    if (p?.type !== "user") return;
    const n = (perUser.get(p.id) ?? 1) - 1;
    if (n <= 0) perUser.delete(p.id);
    else perUser.set(p.id, n);
  }

  function watchExpiry(ws: Socket): void {
    if (!ws.data.exp) return;
    const set = expiring.get(ws.data.exp) ?? new Set();
    set.add(ws);
    expiring.set(ws.data.exp, set);
  }

  function sweep(): void {
    const now = Math.floor(Date.now() / 1000);
    for (const [sec, set] of expiring) {
      if (sec > now) continue;
      expiring.delete(sec);
      for (const ws of set) ws.close(CLOSE.TOKEN_EXPIRED, "token expired");
    }
  }

  /** Called by the graphql-ws protocol when connection_init authenticates a socket. */
  async function authenticateLate(ws: Socket, token: string): Promise<void> {
    const { principal, exp } = await authenticate(token, true);
    reserve(principal);
    ws.data.principal = principal;
    ws.data.exp = exp;
    watchExpiry(ws);
  }

  async function upgrade(req: Request, server: Server<SocketData>): Promise<Response | undefined> {
    let reserved: Principal | null = null;
    try {
      const origin = req.headers.get("origin");
      if (origin && limits.allowedOrigins.length && !limits.allowedOrigins.includes(origin)) {
        throw new AppError("FORBIDDEN_ORIGIN", `origin ${origin.slice(0, 200)} may not open /ws`, { status: 403 });
      }
      const url = new URL(req.url);
      const offered = (req.headers.get("sec-websocket-protocol") ?? "").split(",").map((s) => s.trim()).filter(Boolean);
      const kind = offered.includes(GRAPHQL_WS) ? "graphql" : "notify";
      const b = offered.indexOf("bearer");
      const token = (b >= 0 ? offered[b + 1] : undefined) ?? url.searchParams.get("token") ?? bearerToken(req.headers.get("authorization") ?? undefined);
      let principal: Principal | null = null;
      let exp = 0;
      if (token) ({ principal, exp } = await authenticate(token, kind === "graphql"));
      // graphql-ws clients usually authenticate in connection_init instead; our protocol needs it now.
      else if (kind === "notify") throw new AppError("UNAUTHENTICATED", "a user token is required: Sec-WebSocket-Protocol: bearer, <jwt> or ?token=");
      let sinceSeq: number | null = null;
      const since = url.searchParams.get("since");
      if (since && kind === "notify") sinceSeq = await app.inbox.seqOf(principal!.id, since, "since");
      if (principal) reserve(principal);
      reserved = principal;
      const data: SocketData = { kind, principal, exp, sinceSeq, tokens: limits.messagesPerSecond, at: performance.now() };
      const protocol = kind === "graphql" ? GRAPHQL_WS : b >= 0 ? "bearer" : undefined;
      if (!server.upgrade(req, { data, headers: protocol ? { "Sec-WebSocket-Protocol": protocol } : undefined })) {
        throw new AppError("BAD_REQUEST", "expected a WebSocket upgrade request");
      }
      return undefined;
    } catch (err) {
      unreserve(reserved);
      if (!(err instanceof AppError)) throw err;
      realtimeMetrics.refused.inc({ code: err.code });
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (err.retryAfter) headers["retry-after"] = String(err.retryAfter);
      return new Response(JSON.stringify(err.toJSON()), { status: err.status, headers });
    }
  }

  /** Inbound rate limit; a socket over it is closed (a client that floods would do so again). */
  function allow(ws: Socket): boolean {
    const now = performance.now();
    const d = ws.data;
    // Bursts of up to two seconds' worth are fine: a client flushing a few queued commands at reconnect.
    d.tokens = Math.min(limits.messagesPerSecond * 2, d.tokens + ((now - d.at) / 1000) * limits.messagesPerSecond);
    d.at = now;
    if (d.tokens < 1) return false;
    d.tokens -= 1;
    return true;
  }

  const protocolOf = (ws: Socket) => (ws.data.kind === "graphql" ? deps.graphql : deps.notify);

  const handler: WebSocketHandler<SocketData> = {
    maxPayloadLength: limits.maxPayloadBytes,
    idleTimeout: limits.idleTimeoutS,
    sendPings: true,
    backpressureLimit: limits.backpressureBytes,
    closeOnBackpressureLimit: true,
    // Per-socket compressor state would cost far more than the 20 KB a socket may use.
    perMessageDeflate: false,
    open(ws) {
      all.add(ws);
      realtimeMetrics.sockets.inc({ protocol: ws.data.kind });
      watchExpiry(ws);
      protocolOf(ws).open(ws);
    },
    message(ws, message) {
      if (!allow(ws)) {
        ws.close(CLOSE.POLICY, "rate limit exceeded");
        return;
      }
      const text = typeof message === "string" ? message : message.toString("utf8");
      try {
        protocolOf(ws).message(ws, text);
      } catch (err) {
        log.warn("ws message handler failed", { err: String(err) });
      }
    },
    close(ws, code) {
      all.delete(ws);
      realtimeMetrics.sockets.dec({ protocol: ws.data.kind });
      realtimeMetrics.closed.inc({ code: String(code) });
      if (ws.data.exp) expiring.get(ws.data.exp)?.delete(ws);
      unreserve(ws.data.principal);
      protocolOf(ws).close(ws);
    },
  };

  return {
    upgrade,
    handler,
    authenticateLate,
    start(): void {
      sweeper = setInterval(sweep, 1000);
    },
    /** Closes every socket (1001) so the server can stop; clients reconnect to another replica. */
    stop(): void {
      if (sweeper) clearInterval(sweeper);
      for (const ws of all) ws.close(CLOSE.GOING_AWAY, "server shutting down");
    },
    connections: () => all.size,
  };
}

export type SocketServer = ReturnType<typeof createSocketServer>;

/** Sends a frame; false when the socket is closing or over its backpressure limit (frame dropped). */
export function sendFrame(ws: Socket, frame: string): boolean {
  const r = ws.send(frame);
  if (r === 0) {
    realtimeMetrics.dropped.inc();
    return false;
  }
  return true;
}
