import { describe } from "bun:test";
import { MongoClient } from "mongodb";
import { createSql } from "../store/db.ts";
import { createTestDb, haveServices } from "../../test/support/services.ts";
import { driverDatabase } from "./mongo-driver.ts";
import { createPgDocDatabase } from "./mongo-twin-pg.ts";
import { runAuditStoreContract, type ContractBackend } from "./store.contract.ts";
import { createMongoAuditStore } from "./store-mongo.ts";
import { createPgAuditStore } from "./store-pg.ts";

const services = await haveServices;
const MONGO_URL = process.env.NOTIFY_TEST_MONGO_URL;

describe.skipIf(!services)("postgres", () => {
  runAuditStoreContract("postgres", async (): Promise<ContractBackend> => {
    const db = await createTestDb();
    return {
      // Each instance its own pool, as two audit processes would have.
      open: async () => createPgAuditStore({ sql: createSql(db.url, { max: 3 }), ownsSql: true }),
      tamper: async (seq, details) => {
        await db.sql`UPDATE audit_records SET details = ${db.sql.json(details as never)} WHERE seq = ${seq}`;
      },
      cleanup: () => db.drop(),
    };
  });
});

describe.skipIf(!services)("mongodb over the postgres twin", () => {
  runAuditStoreContract("mongodb (postgres twin)", async (): Promise<ContractBackend> => {
    const db = await createTestDb({ migrate: false });
    return {
      open: async () => createMongoAuditStore({ db: createPgDocDatabase(createSql(db.url, { max: 3 }), { ownsSql: true }), ownsDb: true }),
      tamper: async (seq, details) => {
        await db.sql.unsafe(`UPDATE mongo_twin_audit_records SET doc = jsonb_set(doc, '{details}', $1::text::jsonb) WHERE (doc->>'seq')::bigint = $2`, [
          JSON.stringify(details),
          seq,
        ]);
      },
      cleanup: () => db.drop(),
    };
  });
});

// No MongoDB server can run on our build machines: this runs only where one is given, CI included.
describe.skipIf(!MONGO_URL)("mongodb (real server)", () => {
  runAuditStoreContract("mongodb (driver)", async (): Promise<ContractBackend> => {
    const dbName = `notify_t_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
    const clients: MongoClient[] = [];
    const connect = async () => {
      const c = new MongoClient(MONGO_URL!, { serverSelectionTimeoutMS: 5_000 });
      await c.connect();
      clients.push(c);
      return c;
    };
    const admin = await connect();
    return {
      open: async () => {
        const c = await connect();
        return createMongoAuditStore({ db: driverDatabase(c.db(dbName)) });
      },
      tamper: async (seq, details) => {
        await admin.db(dbName).collection("audit_records").updateOne({ seq }, { $set: { details } });
      },
      cleanup: async () => {
        await admin.db(dbName).dropDatabase();
        for (const c of clients) await c.close();
      },
    };
  });
});
