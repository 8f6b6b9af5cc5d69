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
  // In a child process, as in production: the run's teardown is the process's own, not the test runner's.
  const child = Bun.spawn([process.execPath, join(import.meta.dir, "../../test/support/lost-store-run.ts"), tempDir(), String(await freePort())], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  const m = /^exit (\d+) after (\d+) ms$/m.exec(out);
  expect(m, `child printed: ${out}\n${err.slice(-2000)}`).not.toBeNull();
  expect(Number(m![1])).toBe(1);
  expect(code).toBe(1);
  expect(Number(m![2])).toBeLessThan(5_000); // not the 10 s wait for a dead thread's goodbye
  expect(out).toContain("embedded PostgreSQL lost; stopping");
}, 60_000);
