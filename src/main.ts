/**
 * argv → run. Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.
 *
 * Deliberately small: it parses argv and the configuration, starts the embedded store when this run
 * will need it (PostgreSQL then boots on its own thread while the rest of notify loads), and only
 * then imports the commands.
 */
import pkg from "../package.json" with { type: "json" };
import { parseArgs, UsageError, USAGE } from "./cli.ts";
import { ConfigError, loadConfig, ROLES, type Config } from "./config.ts";
import { createLogger } from "./runtime/log.ts";
import { entryPoint } from "./runtime/entry-point.ts";
import { applyHeapTarget } from "./runtime/heap-target.ts";
import { startEmbeddedStore, type EmbeddedStore } from "./embedded/store.ts";

/** A specifier the bundler does not follow: src/commands.ts is its own entry point in the binary. */
const COMMANDS = entryPoint("commands.ts", new URL("./commands.ts", import.meta.url));

async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`notify: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  if (args.command === "help") {
    process.stdout.write(USAGE);
    return 0;
  }
  if (args.command === "version") {
    process.stdout.write(`notify ${pkg.version} (bun ${Bun.version})\n`);
    return 0;
  }

  let config: Config;
  try {
    config = loadConfig(process.env, args.flags);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`notify: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  // Before anything else starts: the engine reads its memory budget only when the process starts.
  const heapError = args.command === "run" ? applyHeapTarget(config.heapTargetMb) : undefined;
  const log = createLogger(config.logLevel, { service: "notify", pid: process.pid });
  if (heapError) log.warn("could not apply NOTIFY_HEAP_TARGET_MB; the engine sizes its heap itself", { err: String(heapError) });
  // Last line of defence: a library's stray rejection must not take down a process holding
  // accepted work. Logged loudly; every known source is handled where it arises.
  process.on("unhandledRejection", (err) => log.error("unhandled rejection", { err }));

  let earlyStore: Promise<EmbeddedStore> | undefined;
  if (args.command === "run" && !config.databaseUrl && config.roles.length === ROLES.length) {
    earlyStore = startEmbeddedStore({ dataDir: config.dataDir, log });
    earlyStore.catch(() => {}); // reported where the run takes it
  }
  const { runCommand } = (await import(COMMANDS)) as typeof import("./commands.ts");
  return runCommand(args, config, log, earlyStore);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`notify: fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
