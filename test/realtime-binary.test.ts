/**
 * The compiled binary: two gateway processes and a worker process. A socket on gateway B gets an
 * in-app event posted to gateway A; GraphQL answers from the binary; the bundle holds one graphql.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { ensureBinary, runBinary, startNotify, type NotifyProcess } from "./support/binary.ts";
import { signToken, JWT_SECRET, ISSUER, AUDIENCE } from "./support/realtime.ts";
import { createTestDb, createTestVhost, haveServices, type TestDb, type TestVhost } from "./support/services.ts";
import { connectWs, rawUpgrade } from "./support/ws-client.ts";

const KEY = "rt-e2e-admin-key-0123456789abcdef";

describe.skipIf(!(await haveServices))("compiled binary: realtime across gateway processes", () => {
  let db: TestDb, vhost: TestVhost;
  let env: Record<string, string>;
  const procs: NotifyProcess[] = [];
  beforeAll(async () => {
    await ensureBinary();
    [db, vhost] = await Promise.all([createTestDb({ migrate: false }), createTestVhost()]);
    env = { NOTIFY_DATABASE_URL: db.url, NOTIFY_AMQP_URL: vhost.url, NOTIFY_ADMIN_KEY: KEY, NOTIFY_JWT_SECRET: JWT_SECRET, NOTIFY_JWT_ISSUER: ISSUER, NOTIFY_JWT_AUDIENCE: AUDIENCE, NOTIFY_LOG_LEVEL: "warn" };
    expect((await runBinary(["migrate"], env)).code).toBe(0);
  });
  afterAll(async () => {
    await Promise.allSettled(procs.map((p) => p.kill("SIGKILL")));
    await Promise.allSettled([db?.drop(), vhost?.drop()]);
  });

  test("a client on gateway B receives an event posted to gateway A; GraphQL reads the inbox", async () => {
    const [a, b, worker] = await Promise.all([startNotify("gateway", env), startNotify("gateway", env), startNotify("worker", env)]);
    procs.push(a, b, worker);
    const token = await signToken("zoe");
    const ws = connectWs(`ws://127.0.0.1:${b.port}/ws`, { protocols: ["bearer", token] });
    await ws.opened;
    await ws.next((f) => f.type === "unread_count" && f.count === 0);
    const r = await fetch(`http://127.0.0.1:${a.port}/api/v1/events`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ event: "e2e.ping", to: [{ user_id: "zoe" }], channels: ["in_app"], title: "across processes" }),
    });
    expect(r.status).toBe(202);
    const n = await ws.next((f) => f.type === "notification", "notification from the other process", 15_000);
    expect(n.title).toBe("across processes");
    await ws.next((f) => f.type === "unread_count" && f.count === 1);
    const g = await fetch(`http://127.0.0.1:${a.port}/graphql`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ query: "{ me { unreadCount inbox { items { id title } } } }" }),
    });
    expect(await g.json()).toEqual({ data: { me: { unreadCount: 1, inbox: { items: [{ id: n.id, title: "across processes" }] } } } });
    const refused = await rawUpgrade(b.port, `/ws?token=${await signToken("zoe", { audience: "other" })}`);
    expect(refused.status).toBe(401);
    ws.close();
  });

  test("the bundle holds exactly one copy of graphql (two copies break at run time)", async () => {
    // commands.ts is the entry point that holds notify's libraries (main.ts only argv and config).
    const out = await Bun.build({ entrypoints: [resolve(import.meta.dir, "../src/commands.ts")], target: "bun", sourcemap: "external", minify: false });
    expect(out.success).toBe(true);
    const map = out.outputs.find((o) => o.path.endsWith(".map"));
    const sources: string[] = JSON.parse(await map!.text()).sources;
    const roots = new Set(sources.filter((s) => s.includes("node_modules/graphql/")).map((s) => s.replace(/(node_modules\/graphql)\/.*/, "$1")));
    expect(roots.size).toBe(1);
  });
});
