/**
 * The backend going away in the middle of work: the client's stream must reject with a retryable
 * error (the worker retries the message later), never end as if the audience were complete.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as grpc from "@grpc/grpc-js";
import { join } from "node:path";
import { createTestDb, haveServices, type TestDb } from "../../test/support/services.ts";
import { createGrpcClients } from "./client.ts";
import { GrpcCallError } from "./errors.ts";
import { startGrpcServer } from "./server.ts";
import { quietLog, seedUsers, testConfig } from "./testing.ts";

const TOKEN = "outage-token-0123456789";
const SERVER_SCRIPT = join(import.meta.dir, "../../test/support/grpc-server.ts");

/** Reads the stream slowly; returns how many users arrived and what the iterator threw. */
async function consume(it: AsyncIterable<unknown[]>, onBatch: (n: number) => void | Promise<void>) {
  let users = 0;
  let batches = 0;
  try {
    for await (const batch of it) {
      users += batch.length;
      await onBatch(++batches);
    }
    return { users, error: undefined };
  } catch (error) {
    return { users, error: error as GrpcCallError };
  }
}

describe.skipIf(!(await haveServices))("backend outage mid-stream", () => {
  let db: TestDb;

  beforeAll(async () => {
    db = await createTestDb();
    await seedUsers(db.sql, 50_000);
  });
  afterAll(async () => {
    await db?.drop();
  });

  test("backend process killed (SIGKILL) mid-stream: the iterator rejects, retryable", async () => {
    const child = Bun.spawn([process.execPath, SERVER_SCRIPT], {
      env: { ...process.env, NOTIFY_DATABASE_URL: db.url, NOTIFY_GRPC_TOKEN: TOKEN },
      stdout: "pipe",
      stderr: "inherit",
    });
    try {
      const reader = child.stdout.getReader();
      let text = "";
      while (!text.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`server exited early: ${text}`);
        text += new TextDecoder().decode(value);
      }
      const { port } = JSON.parse(text.split("\n")[0]!) as { port: number };
      const clients = createGrpcClients({ url: `127.0.0.1:${port}`, token: TOKEN, log: quietLog });
      try {
        const { users, error } = await consume(clients.audience.resolve({ all: true }, 100), async (b) => {
          if (b === 5) {
            child.kill("SIGKILL");
            await child.exited;
          }
        });
        expect(users).toBeLessThan(50_000);
        if (process.env.NOTIFY_TEST_LOG) console.log("outage:", error?.message);
        expect(error).toBeInstanceOf(GrpcCallError);
        expect(error!.retryable).toBe(true);
        expect(error!.code).toBe("UNAVAILABLE");
        // And the next call says "unavailable", not "no such user".
        const next = await clients.users.getUsers(["u0000001"], { deadlineMs: 500 }).catch((e) => e);
        expect(next.retryable).toBe(true);
      } finally {
        clients.close();
      }
    } finally {
      child.kill("SIGKILL");
    }
  });

  test("backend stopped (shutdown grace over) mid-stream: the iterator rejects, retryable", async () => {
    const server = await startGrpcServer({ config: testConfig(), log: quietLog, sql: db.sql, port: 0, host: "127.0.0.1", token: TOKEN });
    const clients = createGrpcClients({ url: `127.0.0.1:${server.port}`, token: TOKEN, log: quietLog });
    let stopping: Promise<void> | undefined;
    try {
      const { users, error } = await consume(clients.audience.resolve({ all: true }, 100), async (b) => {
        // Stop with a short grace while we are still reading slowly: the stream is cut.
        if (b === 3) stopping = server.stop(50);
        if (b > 3) await Bun.sleep(5);
      });
      expect(users).toBeLessThan(50_000);
      if (process.env.NOTIFY_TEST_LOG) console.log("outage:", error?.message);
      expect(error).toBeInstanceOf(GrpcCallError);
      expect(error!.retryable).toBe(true);
      expect([grpc.status.UNAVAILABLE, grpc.status.CANCELLED, grpc.status.INTERNAL]).toContain(error!.grpcCode);
    } finally {
      clients.close();
      await (stopping ?? server.stop());
    }
  });
});
