/** `notify audit verify`: checks the configured store's hash chain (exit 0 intact, 1 broken, 2 unreadable). */
import type { Config } from "../config.ts";
import type { Logger } from "../runtime/log.ts";
import { openAuditStore } from "./open-store.ts";
import { verifyCommand } from "./verify.ts";

export async function runAuditVerify(config: Config, _log: Logger): Promise<number> {
  if (!config.mongoUrl && !config.databaseUrl) {
    process.stderr.write("notify: audit verify needs NOTIFY_MONGO_URL or NOTIFY_DATABASE_URL\n");
    return 2;
  }
  const store = await openAuditStore({ databaseUrl: config.databaseUrl, mongoUrl: config.mongoUrl });
  try {
    return await verifyCommand(store);
  } finally {
    await store.close();
  }
}
