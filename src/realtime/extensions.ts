/**
 * What the realtime capability adds to the gateway: user JWT authentication, the inbox routes,
 * GraphQL at /graphql and the /ws endpoint.
 */
import type { App } from "../app.ts";
import type { HttpExtensions } from "../http/app.ts";
import { inboxRoutes } from "../http/routes/inbox.ts";
import { createUserAuthenticator, createUserTokenVerifier } from "../http/user-auth.ts";
import { graphqlRoutes } from "../graphql/route.ts";
import { createGatewaySockets } from "./gateway-sockets.ts";

export function realtimeExtensions(app: App): HttpExtensions {
  const verify = createUserTokenVerifier(app.config);
  return {
    api: [inboxRoutes],
    root: [graphqlRoutes],
    authenticateUser: createUserAuthenticator(verify),
    websocket: createGatewaySockets(app, verify),
  };
}

/** Several capabilities' extensions as one (routes in order; the first authenticateUser and websocket win). */
export function mergeExtensions(list: HttpExtensions[]): HttpExtensions {
  return {
    api: list.flatMap((e) => e.api ?? []),
    root: list.flatMap((e) => e.root ?? []),
    authenticateUser: list.find((e) => e.authenticateUser)?.authenticateUser,
    websocket: list.find((e) => e.websocket)?.websocket,
  };
}
