/**
 * The embedded store's thread dying after start: the store reports it lost, and a run stops and
 * exits 1 (a supervisor restarts it) instead of serving 503s with no database behind it.
 */
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../test/support/binary.ts";
import { waitFor } from "../../test/support/services.ts";
import { loadConfig } from "../config.ts";
import { runRoles } from "../roles/run.ts";
import { createLogger } from "../runtime/log.ts";
import { startEmbeddedStore } from "./store.ts";

const log = createLogger("silent");
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "notify-store-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

test("a PostgreSQL thread that exits after start settles `lost`; close() does not", async () => {
  const a = await startEmbeddedStore({ dataDir: tempDir(), log });
  let closedLost: string | undefined;
  void a.lost.then((r) => (closedLost = r));
  await a.close();

  const b = await startEmbeddedStore({ dataDir: tempDir(), log });
  b.thread.terminate(); // stands for a crash of the thread
  const reason = await Promise.race([b.lost, Bun.sleep(10_000).then(() => "not reported within 10 s")]);
  expect(reason).toBe("its thread exited");
  expect(closedLost).toBeUndefined();
}, 30_000);

test("a run whose embedded PostgreSQL is lost stops and exits 1", async () => {
  const port = await freePort();
  const config = loadConfig({ NOTIFY_DATA_DIR: tempDir(), NOTIFY_HTTP_PORT: String(port), NOTIFY_HTTP_HOST: "127.0.0.1", NOTIFY_GRPC_PORT: "0", NOTIFY_ADMIN_PORT: "0", NOTIFY_LOG_LEVEL: "silent" }, {});
  const store = startEmbeddedStore({ dataDir: config.dataDir, log });
  const run = runRoles(config, log, store);
  let code: number | undefined;
  void run.then((c) => (code = c));
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200, { what: "ready", timeoutMs: 20_000 });
  const t = performance.now();
  (await store).thread.terminate();
  await waitFor(() => code !== undefined, { what: "the run to stop", timeoutMs: 25_000 });
  expect(code).toBe(1);
  expect(performance.now() - t).toBeLessThan(5_000); // not the 10 s wait for a dead thread's goodbye
}, 60_000);
