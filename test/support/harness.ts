/**
 * An in-process notify (gateway + worker) on a fresh database and vhost, for integration tests.
 * End-to-end tests of the compiled binary use test/support/binary.ts instead.
 */
import type { App } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { createHttpApp, type HttpExtensions } from "../../src/http/app.ts";
import { buildApp } from "../../src/roles/context.ts";
import { startWorker } from "../../src/roles/worker.ts";
import type { Hooks, UserDirectory } from "../../src/services/dispatch.ts";
import { createLifecycle } from "../../src/runtime/lifecycle.ts";
import { createLogger } from "../../src/runtime/log.ts";
import { createTestDb, createTestVhost, type TestDb, type TestVhost } from "./services.ts";
import { startTestSmtp, type TestSmtp } from "./smtp.ts";

export const ADMIN_KEY = "test-admin-key-0123456789abcdef";

export interface Harness {
  app: App;
  db: TestDb;
  vhost: TestVhost;
  smtp: TestSmtp;
  request(path: string, init?: RequestInit & { key?: string | null; json?: unknown }): Promise<Response>;
  startWorker(): Promise<void>;
  stopWorker(): Promise<void>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  worker?: boolean;
  env?: Record<string, string>;
  /** Gateway extensions (routes of a capability under test). */
  ext?: (app: App) => HttpExtensions;
  /** Worker hooks/directory (e.g. a screen with a controllable clock). */
  workerOptions?: (app: App) => { directory?: UserDirectory; hooks?: Hooks };
}

export async function createHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const [db, vhost, smtp] = await Promise.all([createTestDb(), createTestVhost(), startTestSmtp()]);
  const config = loadConfig({
    NOTIFY_DATABASE_URL: db.url,
    NOTIFY_AMQP_URL: vhost.url,
    NOTIFY_SMTP_URL: smtp.url,
    NOTIFY_ADMIN_KEY: ADMIN_KEY,
    NOTIFY_MAIL_FROM: "notify@example.test",
    NOTIFY_LOG_LEVEL: process.env.NOTIFY_LOG_LEVEL ?? "silent",
    NOTIFY_WORKER_CONCURRENCY: "8",
    NOTIFY_SEND_TIMEOUT_MS: "5000",
    ...opts.env,
  });
  const log = createLogger(config.logLevel, { test: true });
  const lifecycle = createLifecycle(log);
  const app = await buildApp(config, log, lifecycle);
  app.relay.start();
  lifecycle.add("relay", () => app.relay.stop());
  const http = createHttpApp(app, opts.ext?.(app));
  let worker: { stop(): Promise<void> } | undefined;
  const h: Harness = {
    app,
    db,
    vhost,
    smtp,
    request(path, init = {}) {
      const headers = new Headers(init.headers);
      if (init.key !== null) headers.set("authorization", `Bearer ${init.key ?? ADMIN_KEY}`);
      let body = init.body;
      if (init.json !== undefined) {
        headers.set("content-type", "application/json");
        body = JSON.stringify(init.json);
      }
      return Promise.resolve(http.request(path, { ...init, headers, body }));
    },
    async startWorker() {
      worker ??= await startWorker(app, opts.workerOptions?.(app));
    },
    async stopWorker() {
      await worker?.stop();
      worker = undefined;
    },
    async close() {
      await h.stopWorker();
      await lifecycle.stop(5000);
      await Promise.allSettled([db.drop(), vhost.drop(), smtp.close()]);
    },
  };
  if (opts.worker !== false) await h.startWorker();
  return h;
}
