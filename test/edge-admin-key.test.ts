/**
 * Zero configuration on the compiled binary: with nothing set, notify runs embedded and creates an
 * admin key in the data directory (0600), says where it is, and keeps it across restarts.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureBinary, startNotify, type NotifyProcess } from "./support/binary.ts";

describe("zero configuration", () => {
  const dir = mkdtempSync(join(tmpdir(), "notify-zero-"));
  const procs: NotifyProcess[] = [];
  afterAll(async () => {
    await Promise.allSettled(procs.map((p) => p.kill("SIGKILL")));
    rmSync(dir, { recursive: true, force: true });
  });

  test("a generated admin key opens the API, is private, and survives a restart", async () => {
    await ensureBinary();
    const n = await startNotify("all", { NOTIFY_DATA_DIR: dir }, { readyTimeoutMs: 60_000 });
    procs.push(n);
    const keyFile = join(dir, "admin.key");
    const key = readFileSync(keyFile, "utf8").trim();
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(n.logs.join("\n")).toContain(keyFile);
    expect(n.logs.join("\n")).not.toContain(key);
    const base = `http://127.0.0.1:${n.port}/api/v1`;
    const created = await fetch(`${base}/api-keys`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify({ name: "svc", scopes: ["events:write"] }) });
    expect(created.status).toBe(201);
    expect((await fetch(`${base}/api-keys`, { headers: { authorization: "Bearer wrong-key-0123456789abcdef" } })).status).toBe(401);
    expect(await n.kill("SIGTERM")).toBe(0);
    const again = await startNotify("all", { NOTIFY_DATA_DIR: dir }, { readyTimeoutMs: 60_000 });
    procs.push(again);
    expect(readFileSync(keyFile, "utf8").trim()).toBe(key);
    expect((await fetch(`http://127.0.0.1:${again.port}/api/v1/api-keys`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
  }, 120_000);
});
