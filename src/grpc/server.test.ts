import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as grpc from "@grpc/grpc-js";
import { createTestDb, haveServices, type TestDb } from "../../test/support/services.ts";
import { createGrpcClients, createRemoteUserDirectory, type GrpcClients } from "./client.ts";
import { GrpcCallError } from "./errors.ts";
import { startGrpcServer, type GrpcServer } from "./server.ts";
import { quietLog, seedUsers, testConfig, userId } from "./testing.ts";
import type { RenderFn } from "./render.ts";

const TOKEN = "test-token-0123456789";

describe.skipIf(!(await haveServices))("gRPC backend: unary calls", () => {
  let db: TestDb;
  let server: GrpcServer;
  let clients: GrpcClients;
  const render: RenderFn = (template, channel, locale, ctx) => {
    const t = template as { subject: string; fail?: string };
    if (ctx.user.id === t.fail) throw new Error("no variant for this recipient");
    return { subject: `${t.subject} ${ctx.user.name} (${channel}/${locale}) ${String(ctx.data.x)}`, text: "t", html: null };
  };

  const refused: Array<{ method: string; reason: string }> = [];
  beforeAll(async () => {
    db = await createTestDb();
    await seedUsers(db.sql, 500);
    await db.sql`UPDATE users SET attributes = '{"plan":"premium","tags":["a"]}', telegram_chat_id = '42' WHERE id = ${userId(1)}`;
    await db.sql`INSERT INTO templates (key, name, version, body) VALUES ('welcome', 'Welcome', 1, '{"subject":"Hello"}')`;
    server = await startGrpcServer({ config: testConfig(), log: quietLog, sql: db.sql, port: 0, host: "127.0.0.1", token: TOKEN, render, onAuthFailure: (method, reason) => refused.push({ method, reason }) });
    clients = createGrpcClients({ url: `127.0.0.1:${server.port}`, token: TOKEN, log: quietLog });
  });
  afterAll(async () => {
    clients?.close();
    await server?.stop();
    await db?.drop();
  });

  test("GetUsers returns found users and names the missing ids", async () => {
    const res = await clients.users.getUsers([userId(1), userId(2), "nobody", userId(1)], { deadlineMs: 2000 });
    expect(res.users.map((u) => u.id).sort()).toEqual([userId(1), userId(2)]);
    expect(res.missingIds).toEqual(["nobody"]);
    expect(res.unresolvedIds).toEqual([]);
    const u1 = res.users.find((u) => u.id === userId(1))!;
    expect(u1).toMatchObject({ email: "u1@example.com", name: "User 1", locale: "en", timezone: "Europe/Moscow", telegram_chat_id: "42", phone: null });
    expect(u1.attributes).toEqual({ plan: "premium", tags: ["a"] });
  });

  test("remote user directory has the shape of the local repo", async () => {
    const dir = createRemoteUserDirectory(clients);
    const m = await dir.getMany([userId(3), "nobody"]);
    expect([...m.keys()]).toEqual([userId(3)]);
    expect(m.get(userId(3))?.email).toBe("u3@example.com");
  });

  test("GetUsers validates its request", async () => {
    for (const ids of [[], ["a\u0000b"]]) {
      const err = await clients.users.getUsers(ids).catch((e) => e);
      expect(err).toBeInstanceOf(GrpcCallError);
      expect(err.grpcCode).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.retryable).toBe(false);
    }
  });

  test("a missing or wrong token is UNAUTHENTICATED", async () => {
    for (const token of [undefined, "wrong-token"]) {
      const c = createGrpcClients({ url: `127.0.0.1:${server.port}`, token, log: quietLog });
      try {
        const err = await c.users.getUsers([userId(1)]).catch((e) => e);
        expect(err).toBeInstanceOf(GrpcCallError);
        expect(err.grpcCode).toBe(grpc.status.UNAUTHENTICATED);
        expect(err.retryable).toBe(false);
        // Streams are guarded too.
        const it = c.audience.resolve({ all: true })[Symbol.asyncIterator]();
        const serr = await it.next().catch((e) => e);
        expect(serr.grpcCode).toBe(grpc.status.UNAUTHENTICATED);
      } finally {
        c.close();
      }
    }
    // Each refusal is reported (the grpc-backend role puts it on the audit record), with its method.
    expect(refused.map((r) => r.reason)).toEqual(expect.arrayContaining(["missing authorization metadata (Bearer token)", "invalid token"]));
    expect(refused.some((r) => /GetUsers/.test(r.method))).toBe(true);
    expect(refused.some((r) => /Resolve/.test(r.method))).toBe(true);
  });

  test("a 1 ms deadline on a large request ends in DEADLINE_EXCEEDED, retryable", async () => {
    const ids = Array.from({ length: 10_000 }, (_, i) => userId(i + 1));
    const c = createGrpcClients({ url: `127.0.0.1:${server.port}`, token: TOKEN, log: quietLog, attempts: 2 });
    try {
      const err = await c.users.getUsers(ids, { deadlineMs: 1 }).catch((e) => e);
      expect(err).toBeInstanceOf(GrpcCallError);
      expect(err.grpcCode).toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(err.retryable).toBe(true);
      expect(err.code).toBe("UNAVAILABLE");
      // The server is fine afterwards.
      expect((await c.users.getUsers(ids.slice(0, 100))).users).toHaveLength(100);
    } finally {
      c.close();
    }
  });

  test("health: Check answers SERVING for the server and each service, NOT_FOUND for others", async () => {
    expect(await clients.health.check()).toBe("SERVING");
    expect(await clients.health.check("notify.v1.Audience")).toBe("SERVING");
    const err = await clients.health.check("nope.Service").catch((e) => e);
    expect(err.grpcCode).toBe(grpc.status.NOT_FOUND);
  });

  test("RenderBatch renders each recipient, per-recipient errors, NOT_FOUND for an unknown key", async () => {
    const { users } = await clients.users.getUsers([userId(1), userId(3)]);
    users.sort((a, b) => a.id.localeCompare(b.id));
    const out = await clients.renderer.renderBatch({ templateKey: "welcome", channel: "email", locale: "de", recipients: users, data: { x: 7 } });
    expect(out.map((m) => m.recipientId)).toEqual([userId(1), userId(3)]);
    expect(out[0]).toEqual({ recipientId: userId(1), subject: "Hello User 1 (email/en) 7", text: "t", html: "" });
    expect(out[1]!.subject).toBe("Hello User 3 (email/ru) 7");

    const inline = await clients.renderer.renderBatch({ template: { subject: "Hi", fail: userId(3) }, channel: "sms", recipients: users });
    expect(inline[0]!.error).toBeUndefined();
    expect(inline[1]!.error).toBe("no variant for this recipient");

    const err = await clients.renderer.renderBatch({ templateKey: "nope", channel: "email", recipients: users }).catch((e) => e);
    expect(err.grpcCode).toBe(grpc.status.NOT_FOUND);
  });

  test("a backend that is not there is a retryable error, never 'user missing'", async () => {
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = probe.port;
    probe.stop(true);
    const c = createGrpcClients({ url: `127.0.0.1:${port}`, token: TOKEN, log: quietLog, attempts: 2 });
    try {
      const err = await createRemoteUserDirectory(c, { deadlineMs: 1000 }).getMany([userId(1)]).catch((e) => e);
      expect(err).toBeInstanceOf(GrpcCallError);
      expect(err.retryable).toBe(true);
      expect(err.grpcCode).toBe(grpc.status.UNAVAILABLE);
    } finally {
      c.close();
    }
  });
});
