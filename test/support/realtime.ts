/**
 * Two in-process gateways (each its own App, HTTP server and realtime queue) and a worker on one
 * fresh database and vhost, with user JWTs (HS256) signed by the test.
 */
import { SignJWT } from "jose";
import type { App } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { startGateway, type Gateway } from "../../src/roles/gateway.ts";
import { startWorker } from "../../src/roles/worker.ts";
import { buildApp } from "../../src/roles/context.ts";
import { realtimeExtensions } from "../../src/realtime/extensions.ts";
import type { GatewaySockets } from "../../src/realtime/gateway-sockets.ts";
import { createLifecycle, type Lifecycle } from "../../src/runtime/lifecycle.ts";
import { createLogger } from "../../src/runtime/log.ts";
import { createTestDb, createTestVhost, type TestDb, type TestVhost } from "./services.ts";

export const ADMIN_KEY = "rt-admin-key-0123456789abcdef";
export const JWT_SECRET = "rt-jwt-secret-0123456789abcdef-0123456789";
export const ISSUER = "https://auth.example.test";
export const AUDIENCE = "notify";

export interface Node {
  app: App;
  gateway: Gateway;
  sockets: GatewaySockets;
  url: string;
  ws: string;
}

export interface Cluster {
  a: Node;
  b: Node;
  db: TestDb;
  vhost: TestVhost;
  token(sub: string, opts?: { expiresIn?: string | number; audience?: string; secret?: string }): Promise<string>;
  post(node: Node, path: string, body: unknown, auth?: string): Promise<Response>;
  get(node: Node, path: string, auth: string): Promise<Response>;
  close(): Promise<void>;
}

export function signToken(sub: string, opts: { expiresIn?: string | number; audience?: string; secret?: string; issuer?: string } = {}): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setIssuer(opts.issuer ?? ISSUER)
    .setAudience(opts.audience ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(opts.expiresIn ?? "10m")
    .sign(new TextEncoder().encode(opts.secret ?? JWT_SECRET));
}

export async function createCluster(env: Record<string, string> = {}): Promise<Cluster> {
  const [db, vhost] = await Promise.all([createTestDb(), createTestVhost()]);
  const lifecycles: Lifecycle[] = [];
  const config = () =>
    loadConfig({
      NOTIFY_DATABASE_URL: db.url,
      NOTIFY_AMQP_URL: vhost.url,
      NOTIFY_ADMIN_KEY: ADMIN_KEY,
      NOTIFY_JWT_SECRET: JWT_SECRET,
      NOTIFY_JWT_ISSUER: ISSUER,
      NOTIFY_JWT_AUDIENCE: AUDIENCE,
      NOTIFY_LOG_LEVEL: process.env.NOTIFY_LOG_LEVEL ?? "silent",
      NOTIFY_HTTP_PORT: "0",
      NOTIFY_HTTP_HOST: "127.0.0.1",
      NOTIFY_WORKER_CONCURRENCY: "8",
      NOTIFY_SEND_TIMEOUT_MS: "5000",
      ...env,
    });
  async function node(): Promise<Node> {
    const cfg = config();
    const log = createLogger(cfg.logLevel, { test: true });
    const lifecycle = createLifecycle(log);
    lifecycles.push(lifecycle);
    const app = await buildApp(cfg, log, lifecycle);
    const ext = realtimeExtensions(app);
    const gateway = await startGateway(app, ext);
    lifecycle.add("gateway", gateway.stop);
    return { app, gateway, sockets: ext.websocket!, url: `http://127.0.0.1:${gateway.port}`, ws: `ws://127.0.0.1:${gateway.port}/ws` };
  }
  const a = await node();
  const b = await node();
  const wcfg = config();
  const wlog = createLogger(wcfg.logLevel, { test: true });
  const wl = createLifecycle(wlog);
  lifecycles.push(wl);
  const wapp = await buildApp(wcfg, wlog, wl);
  const worker = await startWorker(wapp);
  wl.add("worker", worker.stop);
  const headers = (auth: string) => ({ authorization: `Bearer ${auth}`, "content-type": "application/json" });
  return {
    a,
    b,
    db,
    vhost,
    token: signToken,
    post: (n, path, body, auth = ADMIN_KEY) => fetch(n.url + path, { method: "POST", headers: headers(auth), body: JSON.stringify(body) }),
    get: (n, path, auth) => fetch(n.url + path, { headers: headers(auth) }),
    async close() {
      for (const l of lifecycles.reverse()) await l.stop(5000);
      await Promise.allSettled([db.drop(), vhost.drop()]);
    },
  };
}
