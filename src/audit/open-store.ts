/**
 * Picks the audit store the way SPEC 2 says: MongoDB when NOTIFY_MONGO_URL is set, else PostgreSQL.
 * Used by the audit role and by `notify audit verify`.
 */
import { createSql } from "../store/db.ts";
import { createMongoAuditStore } from "./store-mongo.ts";
import { createPgAuditStore } from "./store-pg.ts";
import type { AuditStore } from "./store.ts";

export interface OpenAuditStoreOptions {
  databaseUrl?: string;
  mongoUrl?: string;
  /** MongoDB only: TTL retention in days (applyRetention works on both stores either way). */
  mongoTtlDays?: number;
}

export async function openAuditStore(opts: OpenAuditStoreOptions): Promise<AuditStore> {
  if (opts.mongoUrl) {
    // Loaded only here: the driver (and its URL/IDNA tables) costs ≈ 40 ms of start-up otherwise.
    const { connectMongo } = await import("./mongo-driver.ts");
    return createMongoAuditStore({ db: await connectMongo(opts.mongoUrl), ttlDays: opts.mongoTtlDays, ownsDb: true });
  }
  if (!opts.databaseUrl) throw new Error("audit store: neither NOTIFY_MONGO_URL nor NOTIFY_DATABASE_URL is set");
  // Appends are serialised by the chain lock; a few connections cover two in flight plus queries.
  return createPgAuditStore({ sql: createSql(opts.databaseUrl, { max: 4 }), ownsSql: true });
}
