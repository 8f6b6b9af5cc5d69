/**
 * DocDatabase over the official `mongodb` driver: the production adapter of the MongoDB audit store.
 */
import { MongoClient, type Collection, type Db, type Document, type Filter } from "mongodb";
import { DUPLICATE_KEY, DuplicateKeyError, type Doc, type DocCollection, type DocDatabase, type DocFilter } from "./doc-collection.ts";

/** Connects to NOTIFY_MONGO_URL; the database is the URL's path (default "notify"). */
export async function connectMongo(url: string, opts: { dbName?: string } = {}): Promise<DocDatabase> {
  const client = new MongoClient(url, {
    // Fail fast at start-up and on an outage, so the consumer sees an error and keeps records in RabbitMQ.
    serverSelectionTimeoutMS: 5_000,
    appName: "notify",
  });
  await client.connect();
  return driverDatabase(client.db(opts.dbName ?? dbNameOf(url)), client);
}

function dbNameOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).pathname.replace(/^\//, "")) || "notify";
  } catch {
    return "notify";
  }
}

export function driverDatabase(db: Db, client?: MongoClient): DocDatabase {
  return {
    collection<T extends Doc>(name: string): DocCollection<T> {
      return driverCollection<T>(db.collection(name));
    },
    async close() {
      await client?.close();
    },
  };
}

function isDup(err: unknown): boolean {
  const e = err as { code?: unknown; writeErrors?: Array<{ code?: unknown }> };
  return e?.code === DUPLICATE_KEY || (Array.isArray(e?.writeErrors) && e.writeErrors.some((w) => w.code === DUPLICATE_KEY));
}

function driverCollection<T extends Doc>(c: Collection<Document>): DocCollection<T> {
  const f = (filter: DocFilter) => filter as Filter<Document>;
  return {
    async insertMany(docs) {
      try {
        await c.insertMany(docs as Document[], { ordered: true });
      } catch (err) {
        if (isDup(err)) throw new DuplicateKeyError(err instanceof Error ? err.message : "duplicate key", { cause: err });
        throw err;
      }
    },
    find(filter, opts = {}) {
      const cursor = c.find(f(filter), { sort: opts.sort, limit: opts.limit, projection: opts.projection });
      return cursor as unknown as AsyncIterable<T>;
    },
    async findOne(filter, opts = {}) {
      return (await c.findOne(f(filter), { sort: opts.sort, projection: opts.projection })) as T | null;
    },
    async deleteMany(filter) {
      return (await c.deleteMany(f(filter))).deletedCount;
    },
    async countDocuments(filter) {
      return c.countDocuments(f(filter));
    },
    async createIndex(keys, opts) {
      await c.createIndex(keys, {
        name: opts.name,
        ...(opts.unique ? { unique: true } : {}),
        ...(opts.expireAfterSeconds !== undefined ? { expireAfterSeconds: opts.expireAfterSeconds } : {}),
      });
    },
    async findOneAndUpdate(filter, update) {
      return (await c.findOneAndUpdate(f(filter), update, { returnDocument: "after" })) as T | null;
    },
  };
}
