/**
 * The commands behind main.ts, loaded once argv and the configuration are known to be good. This
 * module pulls in all of notify; main.ts stays small so it can start the embedded store first, and
 * in the compiled binary it is an entry point of its own, so none of it is parsed before that.
 */
import type { ParsedArgs } from "./cli.ts";
import type { Config } from "./config.ts";
import type { Logger } from "./runtime/log.ts";
import type { EmbeddedStore } from "./embedded/store.ts";
import { runRoles } from "./roles/run.ts";
import { ChannelConfigError } from "./channels/registry.ts";
import { StartupError } from "./roles/context.ts";
import { runAuditVerify } from "./audit/cli.ts";
import { runExport, runImport, runMigrate, runOutbox } from "./embedded/commands.ts";

/** `earlyStore`: the embedded store main.ts started for a run, if it did. */
export async function runCommand(args: ParsedArgs, config: Config, log: Logger, earlyStore?: Promise<EmbeddedStore>): Promise<number> {
  switch (args.command) {
    case "migrate":
      return runMigrate(config, log);
    case "healthcheck":
      return healthcheck(config);
    case "audit":
      return runAuditVerify(config, log);
    case "outbox":
      return runOutbox(config.dataDir);
    case "export":
      return runExport(config, log, args.sub[0]);
    case "import":
      return runImport(config, log, args.sub[0]);
    case "run":
      try {
        return await runRoles(config, log, earlyStore);
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
