/**
 * SPEC 4 durability on the real services: a 202 survives the broker dropping connections, the
 * broker being unreachable, and a worker killed with SIGKILL mid-stream.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHarness, type Harness } from "./support/harness.ts";
import { closeVhostConnections, haveServices, waitFor, AMQP_BASE } from "./support/services.ts";
import { startTcpProxy, type TcpProxy } from "./support/tcp-proxy.ts";

const TEMPLATE = { name: "T", variants: [{ channel: "email", subject: "n{{ n }}", text: "n={{ n }}" }] };

async function postMany(h: Harness, count: number, prefix: string, concurrency = 16): Promise<string[]> {
  const ids: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const res = await h.request("/api/v1/events", {
          method: "POST",
          json: { event: "bulk", to: [{ user_id: `${prefix}-${i}`, email: `${prefix}-${i}@example.com` }], template: "t", channels: ["email"], data: { n: i } },
        });
        if (res.status === 202) ids.push(((await res.json()) as { id: string }).id);
        else throw new Error(`POST answered ${res.status}: ${await res.text()}`);
      }
    }),
  );
  return ids;
}

describe.skipIf(!(await haveServices))("durability", () => {
  let h: Harness;
  let proxy: TcpProxy;
  beforeAll(async () => {
    // The app reaches RabbitMQ through a proxy the test can cut.
    proxy = startTcpProxy(Number(new URL(AMQP_BASE).port || 5672));
    const { createTestVhost } = await import("./support/services.ts");
    const vh = await createTestVhost();
    const u = new URL(vh.url);
    u.port = String(proxy.port);
    h = await createHarness({ env: { NOTIFY_AMQP_URL: u.toString() } });
    const origClose = h.close;
    h.close = async () => {
      await origClose();
      await vh.drop();
    };
    (h as { vhostName?: string }).vhostName = vh.name;
    expect((await h.request("/api/v1/templates/t", { method: "PUT", json: TEMPLATE })).status).toBe(201);
  });
  afterAll(async () => {
    await h?.close();
    proxy?.close();
  });

  test("broker closes every connection mid-stream: publishers and consumers recover, nothing lost", async () => {
    const posting = postMany(h, 400, "close");
    await waitFor(() => h.smtp.mails.length > 20, { what: "some mail before the cut" });
    await closeVhostConnections((h as { vhostName?: string }).vhostName!);
    const ids = await posting;
    expect(ids).toHaveLength(400);
    await waitFor(() => new Set(h.smtp.mails.filter((m) => m.to[0]!.startsWith("close-")).map((m) => m.to[0])).size === 400, {
      timeoutMs: 45_000,
      what: "all 400 mails after the broker closed connections",
    });
    const rows = await h.db.sql`SELECT count(*)::int AS n FROM notifications WHERE id = ANY(${ids}::uuid[]) AND status = 'delivered'`;
    await waitFor(async () => (await h.db.sql`SELECT count(*)::int AS n FROM notifications WHERE id = ANY(${ids}::uuid[]) AND status = 'delivered'`)[0]!.n === 400, { what: "all delivered" });
    expect(rows.length).toBe(1);
    // Each message reached its recipient once: duplicates would carry the same Message-ID.
    const perRecipient = new Map<string, number>();
    for (const m of h.smtp.mails.filter((m) => m.to[0]!.startsWith("close-"))) perRecipient.set(m.to[0]!, (perRecipient.get(m.to[0]!) ?? 0) + 1);
    expect([...perRecipient.values()].filter((n) => n > 1)).toHaveLength(0);
  }, 90_000);

  test("broker unreachable: events are still accepted (outbox) and delivered once it is back", async () => {
    proxy.cut();
    await waitFor(async () => (await h.request("/readyz", { key: null })).status === 503, { what: "readyz reports the queue down" });
    const ids = await postMany(h, 50, "outage", 8);
    expect(ids).toHaveLength(50);
    const waiting = await h.db.sql`SELECT count(*)::int AS n FROM outbox WHERE notification_id = ANY(${ids}::uuid[])`;
    expect(waiting[0]!.n).toBe(50);
    proxy.restore();
    await waitFor(() => new Set(h.smtp.mails.filter((m) => m.to[0]!.startsWith("outage-")).map((m) => m.to[0])).size === 50, {
      timeoutMs: 45_000,
      what: "all 50 mails after the broker came back",
    });
    const left = await h.db.sql`SELECT count(*)::int AS n FROM outbox`;
    expect(left[0]!.n).toBe(0);
  }, 90_000);

  test("PostgreSQL unreachable: 503 + Retry-After, never a 202", async () => {
    // An app whose database URL points at a closed port, with the real broker behind the proxy.
    const { loadConfig } = await import("../src/config.ts");
    const { createLogger } = await import("../src/runtime/log.ts");
    const { createLifecycle } = await import("../src/runtime/lifecycle.ts");
    const { buildApp } = await import("../src/roles/context.ts");
    const { createHttpApp } = await import("../src/http/app.ts");
    const config = loadConfig({ NOTIFY_DATABASE_URL: "postgres://postgres@127.0.0.1:1/none", NOTIFY_AMQP_URL: h.app.config.amqpUrl!, NOTIFY_SMTP_URL: h.smtp.url, NOTIFY_ADMIN_KEY: "test-admin-key-0123456789abcdef", NOTIFY_LOG_LEVEL: "silent" });
    const log = createLogger("silent");
    const lc = createLifecycle(log);
    const app = await buildApp(config, log, lc);
    const http = createHttpApp(app);
    const post = (body: unknown, headers: Record<string, string> = {}) =>
      Promise.resolve(http.request("/api/v1/events", { method: "POST", headers: { authorization: "Bearer test-admin-key-0123456789abcdef", "content-type": "application/json", ...headers }, body: JSON.stringify(body) }));
    const freeForm = { event: "x", to: [{ user_id: "a", email: "a@example.com" }], title: "t", body: "b", channels: ["email"] };
    // Event rules, templates and idempotency records live in the database: without it nothing is
    // accepted, and the caller is told to come back (503 + Retry-After), never handed a 202.
    for (const res of [await post({ ...freeForm, template: "t" }), await post(freeForm, { "Idempotency-Key": "k1" }), await post(freeForm)]) {
      expect(res.status).toBe(503);
      expect(res.headers.get("Retry-After")).toBeTruthy();
      expect(((await res.json()) as any).error.code).toBe("UNAVAILABLE");
    }
    // Neither store nor broker: still 503.
    proxy.cut();
    const none = await post(freeForm);
    proxy.restore();
    expect(none.status).toBe(503);
    expect(none.headers.get("Retry-After")).toBeTruthy();
    await lc.stop(2000);
  });
});
