/**
 * Edge mode end to end on the compiled binary with nothing configured but a fresh NOTIFY_DATA_DIR:
 * no PostgreSQL, RabbitMQ or SMTP server. Event → outbox .eml and → WebSocket; kill -9 mid-stream
 * and restart (nothing lost, nothing twice); a scheduled send survives a restart; ready time with
 * an existing data directory; a single role without servers is refused; export → import into a
 * real PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, ensureBinary, runBinary, startNotify, type NotifyProcess } from "./support/binary.ts";
import { AUDIENCE, ISSUER, JWT_SECRET, signToken } from "./support/realtime.ts";
import { createTestDb, haveServices, waitFor } from "./support/services.ts";
import { connectWs } from "./support/ws-client.ts";

setDefaultTimeout(120_000);

const ADMIN_KEY = "edge-admin-key-0123456789abcdef";
const services = await haveServices;
let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  await ensureBinary();
  dir = mkdtempSync(join(tmpdir(), "notify-edge-"));
  env = {
    NOTIFY_DATA_DIR: dir,
    NOTIFY_ADMIN_KEY: ADMIN_KEY,
    NOTIFY_JWT_SECRET: JWT_SECRET,
    NOTIFY_JWT_ISSUER: ISSUER,
    NOTIFY_JWT_AUDIENCE: AUDIENCE,
    NOTIFY_GRPC_PORT: "0",
    NOTIFY_ADMIN_PORT: "0",
    // The retry of a delivery a crash interrupted waits for its claim; keep that short here.
    NOTIFY_LOG_LEVEL: "info",
  };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const outbox = () => join(dir, "outbox");
const emls = () => readdirSync(outbox()).filter((f) => f.endsWith(".eml"));

async function post(n: NotifyProcess, body: unknown): Promise<Response> {
  return fetch(`http://127.0.0.1:${n.port}/api/v1/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

const event = (marker: string, extra: Record<string, unknown> = {}) => ({
  event: "edge.test",
  to: [{ user_id: `u-${marker}`, email: `${marker}@example.com`, name: "Edge" }],
  channels: ["email"],
  title: `subject ${marker}`,
  body: `body ${marker}`,
  ...extra,
});

describe("edge mode: the compiled binary with no services configured", () => {
  test("a single role without a database or broker is a clear usage error (exit 2)", async () => {
    const r = await runBinary(["--role=worker"], { NOTIFY_DATA_DIR: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--role=worker needs NOTIFY_DATABASE_URL and NOTIFY_AMQP_URL");
    expect(r.stderr).toContain("--role=all");
  });

  test("fresh data dir: banner, /readyz modes, event → outbox .eml and in-app → WebSocket, `notify outbox` lists it", async () => {
    const n = await startNotify("all", env, { readyTimeoutMs: 60_000 });
    try {
      expect(n.logs.join("\n")).toContain("notify: embedded mode");
      // The edge process keeps the engine's own heap sizing (no NOTIFY_HEAP_TARGET_MB default).
      expect(readFileSync(`/proc/${n.proc.pid}/environ`, "utf8")).not.toContain("BUN_JSC_forceRAMSize=");
      const ready = (await (await fetch(`http://127.0.0.1:${n.port}/readyz`)).json()) as any;
      expect(ready.checks.database.mode).toBe("embedded");
      expect(ready.checks.queue.mode).toBe("embedded");

      const token = await signToken("u-ws");
      const ws = connectWs(`ws://127.0.0.1:${n.port}/ws?token=${token}`);
      await ws.opened;
      const r = await post(n, { event: "edge.hello", to: [{ user_id: "u-ws", email: "ws@example.com" }], channels: ["email", "in_app"], title: "Hello edge", body: "first message" });
      expect(r.status).toBe(202);
      const frame = await ws.next((f) => f.type === "notification", "in-app frame", 15_000);
      expect(frame.title).toBe("Hello edge");
      ws.close();

      const files = await waitFor(() => (emls().length === 1 ? emls() : undefined), { what: "one .eml in the outbox" });
      const eml = readFileSync(join(outbox(), files[0]!), "utf8");
      expect(eml).toContain("To: ws@example.com");
      expect(eml).toContain("Subject: Hello edge");
      expect(eml).toMatch(/\r\n\r\n/); // RFC 5322 line endings
      const list = await runBinary(["outbox"], { NOTIFY_DATA_DIR: dir });
      expect(list.code).toBe(0);
      expect(list.stdout).toContain(files[0]!.replace(/\.eml$/, ""));
      expect(list.stdout).toContain("Hello edge");

      // A second process on the same data directory is refused: it would corrupt the store.
      const second = await runBinary([], { ...env, NOTIFY_HTTP_PORT: "0" });
      expect(second.code).toBe(2);
      expect(second.stderr).toContain("is in use by process");
    } finally {
      expect(await n.kill("SIGTERM")).toBe(0);
    }
  });

  test("kill -9 mid-stream, restart: every accepted event's e-mail is in the outbox exactly once", async () => {
    const before = new Set(emls());
    const n = await startNotify("all", env, { readyTimeoutMs: 60_000 });
    const accepted: string[] = [];
    let i = 0;
    const sender = (async () => {
      while (i < 400) {
        const marker = `k${i++}`;
        const r = await post(n, event(marker)).catch(() => undefined);
        if (r?.status === 202) accepted.push(marker);
        else if (!r) return;
      }
    })();
    await waitFor(() => emls().length - before.size >= 20, { what: "some e-mails sent before the kill" });
    await n.kill("SIGKILL");
    await sender;
    expect(accepted.length).toBeGreaterThan(20);

    const again = await startNotify("all", env, { readyTimeoutMs: 60_000 });
    try {
      const bodies = () => emls().filter((f) => !before.has(f)).map((f) => readFileSync(join(outbox(), f), "utf8"));
      await waitFor(() => accepted.every((m) => bodies().some((b) => b.includes(`body ${m}`))), { what: "every accepted event delivered", timeoutMs: 60_000 });
      const perMarker = new Map<string, number>();
      for (const b of bodies()) {
        const m = b.match(/body (k\d+)/)?.[1];
        if (m) perMarker.set(m, (perMarker.get(m) ?? 0) + 1);
      }
      const twice = [...perMarker].filter(([, c]) => c > 1);
      console.log(`  kill -9: ${accepted.length} accepted before the kill, ${perMarker.size} e-mails after restart, ${twice.length} duplicates`);
      expect(twice).toEqual([]);
    } finally {
      expect(await again.kill("SIGTERM")).toBe(0);
    }
  });

  test("a scheduled send survives a restart; ready time with an existing data dir", async () => {
    const n = await startNotify("all", env, { readyTimeoutMs: 60_000 });
    const sendAt = new Date(Date.now() + 4_000).toISOString();
    const r = await post(n, event("sched", { send_at: sendAt }));
    expect(r.status).toBe(202);
    expect(await n.kill("SIGTERM")).toBe(0);
    expect(emls().some((f) => readFileSync(join(outbox(), f), "utf8").includes("body sched"))).toBe(false);

    const started = performance.now();
    const again = await startNotify("all", env, { readyTimeoutMs: 60_000 });
    const readyMs = performance.now() - started;
    const logged = again.logs.map((l) => l.match(/"startup_ms":(\d+)/)?.[1]).find(Boolean);
    console.log(`  ready after ${Math.round(readyMs)} ms from spawn (startup_ms logged by the process: ${logged}), existing data dir`);
    try {
      await waitFor(() => emls().some((f) => readFileSync(join(outbox(), f), "utf8").includes("body sched")), { what: "scheduled e-mail after restart", timeoutMs: 30_000 });
      expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(sendAt));
    } finally {
      expect(await again.kill("SIGTERM")).toBe(0);
    }
  });

  test("`notify migrate` and `notify audit verify` work on the embedded store; both refuse a data dir in use", async () => {
    const env = { NOTIFY_DATA_DIR: dir, NOTIFY_LOG_LEVEL: "warn" };
    const m = await runBinary(["migrate"], env);
    expect(m.stdout).toContain("up to date");
    expect(m.stdout).toContain("embedded store");
    expect(m.code).toBe(0);
    const v = await runBinary(["audit", "verify"], env);
    expect(v.code).toBe(0);
    expect(v.stdout + v.stderr).toMatch(/intact|ok|verified/i);
    const fresh = join(dir, "other");
    const created = await runBinary(["migrate"], { ...env, NOTIFY_DATA_DIR: fresh });
    expect(created.stdout).toContain("applied 0001_init");
    expect(created.code).toBe(0);
    const running = await startNotify("all", { NOTIFY_DATA_DIR: fresh, NOTIFY_LOG_LEVEL: "warn" }, { readyTimeoutMs: 30_000 });
    try {
      for (const args of [["migrate"], ["audit", "verify"]]) {
        const r = await runBinary(args, { ...env, NOTIFY_DATA_DIR: fresh });
        expect(r.code).toBe(2);
        expect(r.stderr).toContain("in use by process");
      }
    } finally {
      expect(await running.kill("SIGTERM")).toBe(0);
    }
  });

  test.skipIf(!services)("export from the embedded store → import into a real PostgreSQL", async () => {
    const file = join(dir, "export.jsonl");
    const ex = await runBinary(["export", file], { NOTIFY_DATA_DIR: dir, NOTIFY_LOG_LEVEL: "warn" });
    expect(ex.stderr).toContain("exported");
    expect(ex.code).toBe(0);
    const lines = readFileSync(file, "utf8").trim().split("\n");
    const header = JSON.parse(lines[0]!);
    expect(header.format).toBe("notify-export/1");
    const exported = lines.slice(1).filter((l) => JSON.parse(l).table === "deliveries").length;
    expect(exported).toBeGreaterThan(20);

    const db = await createTestDb({ migrate: false });
    try {
      const im = await runBinary(["import", file], { NOTIFY_DATABASE_URL: db.url, NOTIFY_LOG_LEVEL: "warn" });
      expect(im.stderr).toContain("imported");
      expect(im.code).toBe(0);
      const [row] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM deliveries`;
      expect(row!.n).toBe(exported);
      const again = await runBinary(["import", file], { NOTIFY_DATABASE_URL: db.url, NOTIFY_LOG_LEVEL: "warn" });
      expect(again.code).toBe(2);
      expect(again.stderr).toContain("already holds data");
    } finally {
      await db.drop();
    }
  });
});

test("the binary exists for these tests", () => expect(BINARY).toContain("dist/notify"));
