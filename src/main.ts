/**
 * argv → run. Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.
 */
import pkg from "../package.json" with { type: "json" };
import { parseArgs, UsageError, USAGE } from "./cli.ts";
import { ConfigError, loadConfig, type Config } from "./config.ts";
import { createLogger } from "./runtime/log.ts";
import { runRoles } from "./roles/run.ts";
import { ChannelConfigError } from "./channels/registry.ts";
import { StartupError } from "./roles/context.ts";
import { runAuditVerify } from "./audit/cli.ts";
import { runExport, runImport, runMigrate, runOutbox } from "./embedded/commands.ts";

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
  const log = createLogger(config.logLevel, { service: "notify", pid: process.pid });
  // Last line of defence: a library's stray rejection must not take down a process holding
  // accepted work. Logged loudly; every known source is handled where it arises.
  process.on("unhandledRejection", (err) => log.error("unhandled rejection", { err }));

  switch (args.command) {
    case "migrate":
      return runMigrate(config, log);
    case "healthcheck":
      return healthcheck(config);
    case "audit":
      return auditVerify(config, log);
    case "outbox":
      return runOutbox(config.dataDir);
    case "export":
      return runExport(config, log, args.sub[0]);
    case "import":
      return runImport(config, log, args.sub[0]);
    case "run":
      try {
        return await runRoles(config, log);
      } catch (err) {
        if (err instanceof StartupError || err instanceof ChannelConfigError) {
          process.stderr.write(`notify: ${err.message}\n`);
          return 2;
        }
        throw err;
      }
  }
  return 2;
}

/** For Docker HEALTHCHECK: asks this host's process for /readyz. */
async function healthcheck(config: Config): Promise<number> {
  const port = config.roles.includes("gateway") ? config.httpPort : config.adminPort;
  try {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(3000) });
    process.stdout.write(`${res.status} ${await res.text()}\n`);
    return res.ok ? 0 : 1;
  } catch (err) {
    process.stderr.write(`notify: healthcheck: ${(err as Error).message}\n`);
    return 1;
  }
}

async function auditVerify(config: Config, log: ReturnType<typeof createLogger>): Promise<number> {
  return runAuditVerify(config, log);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`notify: fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
