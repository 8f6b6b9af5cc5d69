/**
 * End to end on the compiled binary: `notify migrate`, then gateway and worker as separate
 * processes; a worker killed with SIGKILL mid-stream and restarted loses nothing and e-mails
 * nobody twice.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ensureBinary, runBinary, startNotify, type NotifyProcess } from "./support/binary.ts";
import { createTestDb, createTestVhost, haveServices, waitFor, type TestDb, type TestVhost } from "./support/services.ts";
import { startTestSmtp, type TestSmtp } from "./support/smtp.ts";

const KEY = "e2e-admin-key-0123456789abcdef";

describe.skipIf(!(await haveServices))("compiled binary: separate gateway and worker", () => {
  let db: TestDb, vhost: TestVhost, smtp: TestSmtp;
  let env: Record<string, string>;
  const procs: NotifyProcess[] = [];
  beforeAll(async () => {
    await ensureBinary();
    [db, vhost, smtp] = await Promise.all([createTestDb({ migrate: false }), createTestVhost(), startTestSmtp()]);
    env = {
      NOTIFY_DATABASE_URL: db.url,
      NOTIFY_AMQP_URL: vhost.url,
      NOTIFY_SMTP_URL: smtp.url,
      NOTIFY_ADMIN_KEY: KEY,
      NOTIFY_MAIL_FROM: "notify@e2e.test",
      NOTIFY_SEND_TIMEOUT_MS: "3000",
    };
  });
  afterAll(async () => {
    await Promise.allSettled(procs.map((p) => p.kill("SIGKILL")));
    await Promise.allSettled([db?.drop(), vhost?.drop(), smtp?.close()]);
  });

  test("CLI: --version, --help, usage errors exit 2, config errors are all listed", async () => {
    expect((await runBinary(["--version"], {})).stdout).toMatch(/^notify \d+\.\d+\.\d+/);
    expect((await runBinary(["--help"], {})).stdout).toContain("notify migrate");
    const bad = await runBinary(["--nope"], {});
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("unknown flag --nope");
    const role = await runBinary(["--role=gateway,bogus"], {});
    expect(role.code).toBe(2);
    expect(role.stderr).toContain('unknown role "bogus"');
    const cfg = await runBinary([], { NOTIFY_HTTP_PORT: "x", NOTIFY_AMQP_URL: "http://guest:s3cret@h", NOTIFY_ADMIN_KEY: "short-s3cret" });
    expect(cfg.code).toBe(2);
    expect(cfg.stderr).toContain("NOTIFY_HTTP_PORT");
    expect(cfg.stderr).toContain("NOTIFY_AMQP_URL");
    expect(cfg.stderr).toContain("NOTIFY_ADMIN_KEY");
    expect(cfg.stderr).not.toContain("s3cret");
  });

  test("migrate twice at once is safe", async () => {
    const [a, b] = await Promise.all([runBinary(["migrate"], env), runBinary(["migrate"], env)]);
    expect([a.code, b.code]).toEqual([0, 0]);
    expect(a.stdout + b.stdout).toContain("applied 0001_init");
    expect(a.stdout + b.stdout).toContain("up to date");
  });

  test("a role process sizes its heap for NOTIFY_HEAP_TARGET_MB (128 by default), in the same process", async () => {
    const environ = (pid: number) => readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
    const byDefault = await startNotify("gateway", env);
    procs.push(byDefault);
    // The pid the test spawned is the one serving: the binary replaced itself (execve), no child.
    expect(environ(byDefault.proc.pid)).toContain(`BUN_JSC_forceRAMSize=${128 * 1024 * 1024}`);
    const off = await startNotify("gateway", { ...env, NOTIFY_HEAP_TARGET_MB: "0" });
    procs.push(off);
    expect(environ(off.proc.pid).some((e) => e.startsWith("BUN_JSC_forceRAMSize="))).toBe(false);
    const bad = await runBinary(["--role=gateway"], { ...env, NOTIFY_HEAP_TARGET_MB: "lots" });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("NOTIFY_HEAP_TARGET_MB");
    expect(await byDefault.kill("SIGTERM")).toBe(0);
    expect(await off.kill("SIGTERM")).toBe(0);
  });

  test("events through separate processes; worker SIGKILLed mid-stream and restarted", async () => {
    const gateway = await startNotify("gateway", env);
    procs.push(gateway);
    let worker = await startNotify("worker", { ...env, NOTIFY_WORKER_CONCURRENCY: "8" });
    procs.push(worker);
    const health = await runBinary(["healthcheck"], { ...env, NOTIFY_ROLE: "gateway", NOTIFY_HTTP_PORT: String(gateway.port) });
    expect(health.code).toBe(0);

    const base = `http://127.0.0.1:${gateway.port}/api/v1`;
    const headers = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };
    const t = await fetch(`${base}/templates/hello`, { method: "PUT", headers, body: JSON.stringify({ name: "Hello", variants: [{ channel: "email", subject: "Hello {{ name }}", text: "n={{ n }}" }] }) });
    expect(t.status).toBe(201);

    const N = 600;
    const ids: string[] = [];
    let next = 0;
    let killed = false;
    const posting = Promise.all(
      Array.from({ length: 12 }, async () => {
        while (next < N) {
          const i = next++;
          // As a real producer does: an idempotency key per event, and a retry when the connection
          // fails (a pooled keep-alive socket to an earlier test's process on a reused port).
          const post = () =>
            fetch(`${base}/events`, {
              method: "POST",
              headers: { ...headers, "Idempotency-Key": `e2e-${i}` },
              body: JSON.stringify({ event: "e2e", to: [{ user_id: `k${i}`, email: `k${i}@example.com`, name: `K${i}` }], template: "hello", channels: ["email"], data: { n: i } }),
            });
          const res = await post().catch(post);
          expect(res.status).toBe(202);
          ids.push(((await res.json()) as { id: string }).id);
        }
      }),
    );
    await waitFor(() => smtp.mails.length >= 100, { what: "first 100 mails", timeoutMs: 30_000 });
    await worker.kill("SIGKILL");
    killed = true;
    await posting;
    worker = await startNotify("worker", { ...env, NOTIFY_WORKER_CONCURRENCY: "8" });
    procs.push(worker);
    expect(killed).toBe(true);

    // Every accepted event reaches its recipient...
    await waitFor(() => new Set(smtp.mails.map((m) => m.to[0])).size >= N, { timeoutMs: 60_000, what: `${N} distinct recipients` });
    const byRecipient = new Map<string, Set<string>>();
    for (const m of smtp.mails) byRecipient.set(m.to[0]!, (byRecipient.get(m.to[0]!) ?? new Set()).add(m.messageId));
    // ...each under exactly one Message-ID (a message resent after the kill carries the same id).
    expect([...byRecipient.values()].every((ids) => ids.size === 1)).toBe(true);
    const raw = smtp.mails.length - N;
    // Raw duplicates can only come from sends that were in flight when the worker died:
    // at most its concurrency, and only after their claim expired.
    expect(raw).toBeLessThanOrEqual(8);
    await waitFor(async () => {
      const r = await db.sql`SELECT count(*)::int AS n FROM notifications WHERE status = 'delivered'`;
      return r[0]!.n === N;
    }, { timeoutMs: 60_000, what: "every notification delivered" });

    // Graceful stop drains and exits 0.
    expect(await worker.kill("SIGTERM")).toBe(0);
    expect(await gateway.kill("SIGTERM")).toBe(0);
  }, 180_000);
});
