/**
 * A compiled gateway (and worker) on a fresh database and vhost, with the `bench` e-mail template
 * the load generator's events use (bench/support/load.ts eventBody).
 */
import { startNotify } from "../../test/support/binary.ts";
import { createTestDb, createTestVhost } from "../../test/support/services.ts";

export const BENCH_KEY = "bench-admin-key-0123456789abcdef";

export async function notifyStack(extraEnv: Record<string, string> = {}, withWorker = true) {
  const [db, vhost] = await Promise.all([createTestDb({ migrate: true }), createTestVhost()]);
  const env = { NOTIFY_DATABASE_URL: db.url, NOTIFY_AMQP_URL: vhost.url, NOTIFY_ADMIN_KEY: BENCH_KEY, NOTIFY_LOG_LEVEL: "warn", NOTIFY_MAIL_FROM: "bench@notify.test", ...extraEnv };
  const gateway = await startNotify("gateway", env);
  const worker = withWorker ? await startNotify("worker", env) : undefined;
  const base = `http://127.0.0.1:${gateway.port}/api/v1`;
  const headers = { authorization: `Bearer ${BENCH_KEY}`, "content-type": "application/json" };
  await fetch(`${base}/templates/bench`, {
    method: "PUT",
    headers,
    body: JSON.stringify({ name: "Bench", variants: [{ channel: "email", subject: "{{ n }}", text: "Hello {{ name }}, your code is {{ code }}.\n{{ pad }}" }] }),
  });
  return {
    base,
    /** POST /events */
    url: `${base}/events`,
    headers,
    gateway,
    worker,
    async stop() {
      await Promise.allSettled([gateway.kill("SIGTERM"), worker?.kill("SIGTERM")]);
      await Promise.allSettled([db.drop(), vhost.drop()]);
    },
  };
}
