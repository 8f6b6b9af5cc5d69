/** `notify audit verify`: checks the configured store's hash chain (exit 0 intact, 1 broken, 2 unreadable). */
import type { Config } from "../config.ts";
import type { Logger } from "../runtime/log.ts";
import { openAuditStore } from "./open-store.ts";
import { verifyCommand } from "./verify.ts";
import { withDatabaseUrl } from "../embedded/commands.ts";
import { isDataDirInUse } from "../embedded/store.ts";

/** The store notify itself writes to: MongoDB when configured, else PostgreSQL, else the embedded store. */
export async function runAuditVerify(config: Config, log: Logger): Promise<number> {
  const verify = async (databaseUrl: string | undefined) => {
    const store = await openAuditStore({ databaseUrl, mongoUrl: config.mongoUrl });
    try {
      return await verifyCommand(store);
    } finally {
      await store.close();
    }
  };
  if (config.mongoUrl || config.databaseUrl) return verify(config.databaseUrl);
  try {
    return await withDatabaseUrl(config, log, verify);
  } catch (err) {
    if (!isDataDirInUse(err)) throw err;
    process.stderr.write(`notify: ${(err as Error).message}\n`);
    return 2;
  }
}
