/**
 * SPEC 8: Bun's HTTP/2 server (under grpc-js servers) has had interop regressions with Node
 * clients. A real Node.js process (/usr/bin/node, not Bun) with @grpc/grpc-js calls our server
 * running under the pinned Bun: unary, auth, health and a long server stream. Upgrading Bun must
 * fail here if that breaks.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createTestDb, haveServices, type TestDb } from "../../test/support/services.ts";
import { startGrpcServer, type GrpcServer } from "./server.ts";
import { quietLog, seedUsers, testConfig, userId } from "./testing.ts";

const NODE = process.env.NOTIFY_TEST_NODE ?? "/usr/bin/node";
const SCRIPT = join(import.meta.dir, "../../test/support/grpc-node-client.mjs");
const TOKEN = "interop-token-0123456789";
const N = 50_000;

async function runNodeClient(args: string[]): Promise<{ code: number; out: Record<string, any>; stderr: string }> {
  const p = Bun.spawn([NODE, SCRIPT, ...args], { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "" } });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  let out: Record<string, any> = {};
  try {
    out = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}");
  } catch {
    out = { raw: stdout };
  }
  return { code, out, stderr };
}

describe.skipIf(!(await haveServices) || !existsSync(NODE))("Node.js client ↔ server under Bun", () => {
  let db: TestDb;
  let server: GrpcServer;

  beforeAll(async () => {
    db = await createTestDb();
    await seedUsers(db.sql, N);
    server = await startGrpcServer({ config: testConfig(), log: quietLog, sql: db.sql, port: 0, host: "127.0.0.1", token: TOKEN });
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  test("the client really is Node, not Bun", async () => {
    const p = Bun.spawn([NODE, "-e", "console.log(typeof Bun === 'undefined' ? process.version : 'bun')"], { stdout: "pipe" });
    expect(await new Response(p.stdout).text()).toMatch(/^v\d+\./);
  });

  test("GetUsers, auth, health and a 50k-user Resolve stream from a Node client", async () => {
    const { code, out, stderr } = await runNodeClient([`127.0.0.1:${server.port}`, TOKEN, `--ids=${userId(1)},${userId(2)},nobody`, "--batch=1000"]);
    if (code !== 0) console.error(out, stderr);
    expect(code).toBe(0);
    expect(out.health).toBe("SERVING");
    expect(out.getUsers.found).toEqual([userId(1), userId(2)]);
    expect(out.getUsers.missing).toEqual(["nobody"]);
    expect(out.getUsers.sample).toMatchObject({ email: expect.stringContaining("@example.com"), attributes_json: expect.stringContaining("plan") });
    expect(out.unauthenticated).toBe("UNAUTHENTICATED");
    expect(out.resolve).toEqual({ batches: N / 1000, users: N, done: true, first: userId(1), last: userId(N), ordered: true });
  });

  test("a filtered stream in small batches (many HTTP/2 DATA frames, flow control) from a Node client", async () => {
    const { code, out } = await runNodeClient([`127.0.0.1:${server.port}`, TOKEN, "--batch=10", "--where=attributes.plan=premium"]);
    expect(code).toBe(0);
    expect(out.resolve).toMatchObject({ users: N / 10, batches: N / 100, done: true, first: userId(10), last: userId(N), ordered: true });
  });
});
