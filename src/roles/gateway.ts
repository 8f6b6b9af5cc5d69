/**
 * The gateway role: HTTP (REST, docs, health, metrics) on NOTIFY_HTTP_PORT, WebSocket /ws when the
 * realtime extension is present, and the outbox relay.
 */
import type { App } from "../app.ts";
import { createHttpApp, type HttpExtensions } from "../http/app.ts";

export interface Gateway {
  port: number;
  stop(): Promise<void>;
}

export async function startGateway(app: App, ext: HttpExtensions = {}): Promise<Gateway> {
  const http = createHttpApp(app, ext);
  app.relay.start();
  const ws = ext.websocket;
  const common = {
    port: app.config.httpPort,
    hostname: app.config.httpHost,
    // Slow clients may not hold a connection forever; 0 would disable the timeout.
    idleTimeout: 30,
    maxRequestBodySize: app.config.maxBodyBytes + 1024,
  };
  const server = ws
    ? Bun.serve({
        ...common,
        // Bun.serve takes one websocket handler: /ws upgrades go to it, everything else to Hono.
        fetch: (req, srv) => (isSocketPath(req.url) && req.headers.get("upgrade")?.toLowerCase() === "websocket" ? ws.upgrade(req, srv) : http.fetch(req)),
        websocket: ws.handler,
      })
    : Bun.serve({ ...common, fetch: http.fetch });
  if (ws) await ws.start(server as never);
  app.log.info("gateway listening", { port: server.port, host: app.config.httpHost, websocket: !!ws });
  return {
    port: server.port!,
    async stop() {
      // Sockets first (clients reconnect elsewhere), then stop taking requests, let in-flight ones
      // finish, then flush what they accepted to the broker.
      await ws?.stop();
      await server.stop(false);
      await app.events.drain();
      await app.relay.stop();
    },
  };
}

/** True for /ws and /ws?...; parsed by hand because this runs for every request. */
function isSocketPath(url: string): boolean {
  const i = url.indexOf("/", url.indexOf("//") + 2);
  return url.startsWith("/ws", i) && (url.length === i + 3 || url[i + 3] === "?");
}
