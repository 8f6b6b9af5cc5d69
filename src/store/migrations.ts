/**
 * Migrations are embedded in the binary (import attributes), listed here in order. Adding one is
 * adding a file to migrations/ and a line below; the runner applies all pending ones in one
 * transaction under an advisory lock, so two processes migrating at once are safe.
 */
import m0001 from "../../migrations/0001_init.sql" with { type: "text" };
import m0002 from "../../migrations/0002_channels.sql" with { type: "text" };
import m0003 from "../../migrations/0003_audit.sql" with { type: "text" };
import m0004 from "../../migrations/0004_inbox.sql" with { type: "text" };
import m0006 from "../../migrations/0006_campaigns.sql" with { type: "text" };
import m0008 from "../../migrations/0008_embedded_queue.sql" with { type: "text" };
import m0009 from "../../migrations/0009_users_changed.sql" with { type: "text" };

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: Migration[] = [
  { version: 1, name: "0001_init", sql: m0001 },
  { version: 2, name: "0002_channels", sql: m0002 },
  { version: 3, name: "0003_audit", sql: m0003 },
  { version: 4, name: "0004_inbox", sql: m0004 },
  { version: 6, name: "0006_campaigns", sql: m0006 },
  { version: 8, name: "0008_embedded_queue", sql: m0008 },
  { version: 9, name: "0009_users_changed", sql: m0009 },
];
