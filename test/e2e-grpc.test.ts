/**
 * The grpc-backend role on the compiled binary: a Node.js @grpc/grpc-js client calls it (Bun's
 * HTTP/2 server has had interop regressions: this guards the Bun pin), and a worker configured with
 * NOTIFY_GRPC_URL resolves recipients through it, retrying (not losing, not sending blind) while
 * the backend is down.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureBinary, freePort, startNotify, type NotifyProcess } from "./support/binary.ts";
import { createTestDb, createTestVhost, haveServices, waitFor, type TestDb, type TestVhost } from "./support/services.ts";
import { startTestSmtp, type TestSmtp } from "./support/smtp.ts";

const NODE = process.env.NOTIFY_TEST_NODE ?? "/usr/bin/node";
const KEY = "e2e-admin-key-0123456789abcdef";
const TOKEN = "grpc-token-0123456789abcdef";

describe.skipIf(!(await haveServices) || !existsSync(NODE))("compiled binary: grpc-backend", () => {
  let db: TestDb, vhost: TestVhost, smtp: TestSmtp;
  let env: Record<string, string>;
  let grpcPort: number;
  let gateway: NotifyProcess;
  const procs: NotifyProcess[] = [];
  beforeAll(async () => {
    await ensureBinary();
    [db, vhost, smtp] = await Promise.all([createTestDb(), createTestVhost(), startTestSmtp()]);
    grpcPort = await freePort();
    env = {
      NOTIFY_DATABASE_URL: db.url,
      NOTIFY_AMQP_URL: vhost.url,
      NOTIFY_SMTP_URL: smtp.url,
      NOTIFY_ADMIN_KEY: KEY,
      NOTIFY_GRPC_PORT: String(grpcPort),
      NOTIFY_GRPC_TOKEN: TOKEN,
    };
    await db.sql`INSERT INTO users (id, email, name, attributes) SELECT 'g' || i, 'g' || i || '@example.com', 'G' || i, '{"plan":"premium"}' FROM generate_series(1, 2000) i`;
  });
  afterAll(async () => {
    await Promise.allSettled(procs.map((p) => p.kill("SIGKILL")));
    await Promise.allSettled([db?.drop(), vhost?.drop(), smtp?.close()]);
  });

  test("a Node.js client calls the compiled backend: GetUsers, auth, health, Resolve stream", async () => {
    procs.push(await startNotify("grpc-backend", env));
    const p = Bun.spawn([NODE, join(import.meta.dir, "support/grpc-node-client.mjs"), `127.0.0.1:${grpcPort}`, TOKEN, "--ids=g1,g2,nobody", "--batch=100"], { stdout: "pipe", stderr: "pipe" });
    const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    if (code !== 0) console.error(stdout, stderr);
    expect(code).toBe(0);
    const out = JSON.parse(stdout.trim().split("\n").at(-1)!);
    expect(out.health).toBe("SERVING");
    expect(out.getUsers.found).toEqual(["g1", "g2"]);
    expect(out.getUsers.missing).toEqual(["nobody"]);
    expect(out.unauthenticated).toBe("UNAUTHENTICATED");
    expect(out.resolve).toMatchObject({ users: 2000, done: true, ordered: true });
  }, 60_000);

  test("roles that send nothing leave no outbox folder in the data directory (no SMTP relay configured)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "notify-no-outbox-"));
    try {
      const { NOTIFY_SMTP_URL: _, ...noSmtp } = env;
      const quiet = { ...noSmtp, NOTIFY_DATA_DIR: dir, NOTIFY_GRPC_PORT: "0" };
      const started = [await startNotify("grpc-backend", quiet), await startNotify("gateway", quiet)];
      await Promise.all(started.map((p) => p.kill("SIGTERM")));
      expect(readdirSync(dir)).toEqual([]);
      // A worker sends, so it makes the folder.
      await (await startNotify("worker", quiet)).kill("SIGTERM");
      expect(readdirSync(dir)).toEqual(["outbox"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  test("the worker looks recipients up through the backend and retries while it is down", async () => {
    const workerEnv = { ...env, NOTIFY_GRPC_URL: `127.0.0.1:${grpcPort}` };
    gateway = await startNotify("gateway", env);
    const worker = await startNotify("worker", workerEnv);
    procs.push(gateway, worker);
    const base = `http://127.0.0.1:${gateway.port}/api/v1`;
    const headers = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };
    const post = (to: string[]) =>
      fetch(`${base}/events`, { method: "POST", headers, body: JSON.stringify({ event: "grpc", to, title: "Hi", body: "from the backend", channels: ["email"] }) }).then((r) => r.json() as Promise<{ id: string }>);
    // The directory rows exist only in PostgreSQL; the worker gets them through gRPC.
    await post(["g10"]);
    await waitFor(() => smtp.mails.some((m) => m.to.includes("g10@example.com")), { what: "mail via backend lookup" });

    // Backend down: the event waits (retried), nothing is sent without its recipient data.
    const backend = procs[0]!;
    expect(await backend.kill("SIGKILL")).not.toBe(0);
    const { id } = await post(["g11"]);
    await waitFor(async () => {
      const n = (await (await fetch(`${base}/notifications/${id}`, { headers })).json()) as { status: string };
      return n.status === "processing" || n.status === "accepted";
    });
    expect(smtp.mails.some((m) => m.to.includes("g11@example.com"))).toBe(false);
    procs.push(await startNotify("grpc-backend", env));
    await waitFor(() => smtp.mails.some((m) => m.to.includes("g11@example.com")), { timeoutMs: 45_000, what: "mail after the backend came back" });
    const n = (await (await fetch(`${base}/notifications/${id}`, { headers })).json()) as any;
    expect(n.deliveries).toHaveLength(1);
    expect(n.deliveries[0].status).toBe("sent");
  }, 90_000);

  test("a user changed through the API is mailed at the new address: the backend's user cache drops the old row", async () => {
    const base = `http://127.0.0.1:${gateway.port}/api/v1`;
    const headers = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };
    const send = async () => {
      const r = await fetch(`${base}/events`, { method: "POST", headers, body: JSON.stringify({ event: "grpc", to: ["g12"], title: "Hi", body: "again", channels: ["email"] }) });
      expect(r.status).toBe(202);
      const { id } = (await r.json()) as { id: string };
      await waitFor(async () => ((await (await fetch(`${base}/notifications/${id}`, { headers })).json()) as { status: string }).status === "delivered", { what: "the notification to be delivered" });
    };
    await send(); // the backend now holds g12 in memory
    expect(smtp.mails.filter((m) => m.to.includes("g12@example.com"))).toHaveLength(1);
    const put = await fetch(`${base}/users/g12`, { method: "PUT", headers, body: JSON.stringify({ email: "moved12@example.com", name: "G12" }) });
    expect(put.status).toBe(200);
    await send();
    expect(smtp.mails.filter((m) => m.to.includes("moved12@example.com"))).toHaveLength(1);
    expect(smtp.mails.filter((m) => m.to.includes("g12@example.com"))).toHaveLength(1);
  }, 60_000);
});
