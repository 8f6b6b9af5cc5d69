/**
 * Everything /ws needs in one gateway process: the hub (realtime topic → local sockets), the
 * socket server (upgrade, limits) and both protocols. The gateway role plugs it into Bun.serve.
 */
import type { Server, WebSocketHandler } from "bun";
import type { App } from "../app.ts";
import { createSchema } from "../graphql/schema.ts";
import type { UserTokenVerifier } from "../http/user-auth.ts";
import { createGraphqlWsProtocol } from "./graphql-ws.ts";
import { createHub } from "./hub.ts";
import { createNotifyProtocol } from "./notify-protocol.ts";
import { createSocketServer, type SocketData, type SocketProtocol } from "./sockets.ts";

export interface GatewaySockets {
  /** Upgrades a /ws request, or answers why not (401, 403, 404, 429). */
  upgrade(req: Request, server: Server<SocketData>): Promise<Response | undefined>;
  handler: WebSocketHandler<SocketData>;
  /** Once listening: subscribes this process to the realtime topic. */
  start(server: Server<SocketData>): Promise<void>;
  /** Closes every socket (1001) and leaves the realtime topic. */
  stop(): Promise<void>;
  connections(): number;
}

export function createGatewaySockets(app: App, verifyUser: UserTokenVerifier | undefined): GatewaySockets {
  const hub = createHub(app);
  // The protocols need the socket server and it needs them: resolved through this indirection.
  let graphql: SocketProtocol | undefined;
  const sockets = createSocketServer({
    app,
    hub,
    verifyUser,
    notify: createNotifyProtocol(app, hub),
    graphql: { open: (ws) => graphql!.open(ws), message: (ws, t) => graphql!.message(ws, t), close: (ws) => graphql!.close(ws) },
  });
  graphql = createGraphqlWsProtocol({ app, hub, schema: createSchema(app), authenticateLate: sockets.authenticateLate });
  return {
    upgrade: sockets.upgrade,
    handler: sockets.handler,
    async start(server) {
      sockets.start();
      await hub.start(server as Server<unknown>);
    },
    async stop() {
      sockets.stop();
      await hub.stop();
    },
    connections: sockets.connections,
  };
}
