/**
 * The gRPC backend in a process of its own, for tests that kill it (SIGKILL mid-stream) and for
 * the Node interop client. Env: NOTIFY_DATABASE_URL, NOTIFY_GRPC_TOKEN, NOTIFY_GRPC_USER_CACHE_TTL_MS, NOTIFY_GRPC_USER_CACHE_MAX. Prints {"port":n} once listening.
 */
import { createSql } from "../../src/store/db.ts";
import { startGrpcServer } from "../../src/grpc/server.ts";
import { quietLog, testConfig } from "../../src/grpc/testing.ts";

const url = process.env.NOTIFY_DATABASE_URL;
if (!url) throw new Error("NOTIFY_DATABASE_URL is required");
const sql = createSql(url, { max: 4 });
const cacheEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("NOTIFY_GRPC_USER_CACHE_"))) as Record<string, string>;
const server = await startGrpcServer({ config: testConfig(cacheEnv), log: quietLog, sql, port: 0, host: "127.0.0.1", token: process.env.NOTIFY_GRPC_TOKEN });
console.log(JSON.stringify({ port: server.port }));
process.on("SIGTERM", async () => {
  await server.stop(1000);
  await sql.end({ timeout: 1 });
  process.exit(0);
});
