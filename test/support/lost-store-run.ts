/**
 * A child process for src/embedded/store.test.ts: runs every role in embedded mode as `notify`
 * does (with main.ts's process-level handler: a stray rejection is logged, not fatal), terminates
 * the embedded PostgreSQL's thread once the run is ready, and prints `exit <code> after <ms> ms`.
 *
 * In a child because the dying run can leave rejections nobody handles: postgres.js (3.4.9) runs
 * its array-type query on each new connection from a function whose promise it drops, so a
 * connection that fails during that query (the thread just died) rejects it unhandled; up to four
 * per run, logged by the handler below as in production, fatal to an in-process test runner.
 *
 *   bun test/support/lost-store-run.ts <data dir> <http port>
 */
import { loadConfig } from "../../src/config.ts";
import { startEmbeddedStore } from "../../src/embedded/store.ts";
import { runRoles } from "../../src/roles/run.ts";
import { createLogger } from "../../src/runtime/log.ts";
import { waitFor } from "./services.ts";

const [dataDir, port] = process.argv.slice(2);
const log = createLogger("error");
process.on("unhandledRejection", (err) => log.error("unhandled rejection", { err }));
const config = loadConfig({ NOTIFY_DATA_DIR: dataDir!, NOTIFY_HTTP_PORT: port!, NOTIFY_HTTP_HOST: "127.0.0.1", NOTIFY_GRPC_PORT: "0", NOTIFY_ADMIN_PORT: "0", NOTIFY_LOG_LEVEL: "error" }, {});
const store = startEmbeddedStore({ dataDir: config.dataDir, log });
const run = runRoles(config, log, store);
await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200, { what: "ready", timeoutMs: 20_000 });
const t = performance.now();
(await store).thread.terminate();
const code = await run;
process.stdout.write(`exit ${code} after ${Math.round(performance.now() - t)} ms\n`);
process.exit(code);
