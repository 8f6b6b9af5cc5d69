/**
 * The gateway role: HTTP (REST, docs, health, metrics) on NOTIFY_HTTP_PORT and the outbox relay.
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
  const server = Bun.serve({
    port: app.config.httpPort,
    hostname: app.config.httpHost,
    fetch: http.fetch,
    // Slow clients may not hold a connection forever; 0 would disable the timeout.
    idleTimeout: 30,
    maxRequestBodySize: app.config.maxBodyBytes + 1024,
  });
  app.log.info("gateway listening", { port: server.port, host: app.config.httpHost });
  return {
    port: server.port!,
    async stop() {
      // Stop taking requests, let in-flight ones finish, then flush what they accepted to the broker.
      await server.stop(false);
      await app.events.drain();
      await app.relay.stop();
    },
  };
}
