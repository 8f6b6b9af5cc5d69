import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestDb, haveServices, waitFor, type TestDb } from "../../test/support/services.ts";
import { createGrpcClients, type GrpcClients } from "./client.ts";
import { startGrpcServer, type GrpcServer } from "./server.ts";
import { quietLog, seedUsers, testConfig, userId } from "./testing.ts";
import { applyUsersChanged, USERS_CHANGED_CHANNEL, UserRowCache } from "./user-cache.ts";

const row = (name: string) => ({ name, expiresAt: 0 });

describe("UserRowCache", () => {
  test("holds at most maxEntries, dropping the oldest stored first", () => {
    const c = new UserRowCache<ReturnType<typeof row>>(2, 1000);
    c.store(c.beginRead(), [["a", row("A")], ["b", row("B")]]);
    expect(c.get("a")?.name).toBe("A"); // a hit does not reorder (first in, first out)
    c.store(c.beginRead(), [["c", row("C")]]);
    expect([c.get("a"), c.get("b")?.name, c.get("c")?.name]).toEqual([undefined, "B", "C"]);
    expect(c.size).toBe(2);
  });

  test("entries expire after the TTL", () => {
    let now = 1000;
    const c = new UserRowCache<ReturnType<typeof row>>(10, 500, () => now);
    c.store(c.beginRead(), [["a", row("A")]]);
    now += 499;
    expect(c.get("a")?.name).toBe("A");
    now += 1;
    expect(c.get("a")).toBeUndefined();
    expect(c.size).toBe(0);
  });

  test("a read that overlapped a change to an id does not store that id; '*' stores nothing", () => {
    const c = new UserRowCache<ReturnType<typeof row>>(10, 1000);
    const t1 = c.beginRead();
    const t2 = c.beginRead();
    c.invalidate("a"); // committed while both reads were in flight
    c.store(t1, [["a", row("old A")], ["b", row("B")]]);
    expect(c.get("a")).toBeUndefined();
    expect(c.get("b")?.name).toBe("B");
    c.clear();
    c.store(t2, [["c", row("C")]]);
    expect(c.size).toBe(0);
    // A read that starts after the change stores everything.
    c.store(c.beginRead(), [["a", row("new A")]]);
    expect(c.get("a")?.name).toBe("new A");
  });

  test("notification payloads: id lists drop those ids, '*' and anything unreadable drop everything", () => {
    const c = new UserRowCache<ReturnType<typeof row>>(10, 1000);
    const fill = () => c.store(c.beginRead(), [["a", row("A")], ["b", row("B")], ["c", row("C")]]);
    fill();
    applyUsersChanged(c, JSON.stringify(["a", "c"]));
    expect([c.get("a"), c.get("b")?.name, c.get("c")]).toEqual([undefined, "B", undefined]);
    for (const payload of ["*", "not json", '{"a":1}', "[1]"]) {
      fill();
      applyUsersChanged(c, payload);
      expect(c.size).toBe(0);
    }
  });
});

describe.skipIf(!(await haveServices))("GetUsers' user cache on PostgreSQL", () => {
  let db: TestDb;
  let server: GrpcServer;
  let clients: GrpcClients;
  const email = async (id: string) => (await clients.users.getUsers([id], { deadlineMs: 2000 })).users[0]?.email ?? null;

  beforeAll(async () => {
    db = await createTestDb();
    await seedUsers(db.sql, 300);
    server = await startGrpcServer({ config: testConfig(), log: quietLog, sql: db.sql, port: 0, host: "127.0.0.1" });
    clients = createGrpcClients({ url: `127.0.0.1:${server.port}`, log: quietLog });
    await waitFor(() => server.userCache().live, { timeoutMs: 10_000, what: "the user cache to go live" });
  });
  afterAll(async () => {
    clients?.close();
    await server?.stop();
    await db?.drop();
  });

  test("the cache is on by default and serves repeated lookups from memory", async () => {
    const ids = Array.from({ length: 50 }, (_, i) => userId(i + 1));
    const first = await clients.users.getUsers(ids);
    expect(server.userCache().entries).toBeGreaterThanOrEqual(50);
    // Changed behind the backend's back with the trigger disabled: only memory can still answer the old value.
    await db.sql.begin(async (tx) => {
      await tx`ALTER TABLE users DISABLE TRIGGER users_changed_update`;
      await tx`UPDATE users SET name = 'silently changed' WHERE id = ${userId(1)}`;
      await tx`ALTER TABLE users ENABLE TRIGGER users_changed_update`;
    });
    const again = await clients.users.getUsers(ids);
    expect(again.users).toEqual(first.users);
    expect(again.users.find((u) => u.id === userId(1))!.name).toBe("User 1");
  });

  test("an update, a delete and a write through any connection reach GetUsers without waiting for the TTL", async () => {
    expect(await email(userId(2))).toBe("u2@example.com");
    await db.sql`UPDATE users SET email = 'new2@example.com' WHERE id = ${userId(2)}`;
    await waitFor(async () => (await email(userId(2))) === "new2@example.com", { timeoutMs: 2000, what: "the update to be seen" });

    expect(await email(userId(3))).toBe("u3@example.com");
    await db.sql`DELETE FROM users WHERE id = ${userId(3)}`;
    await waitFor(async () => (await clients.users.getUsers([userId(3)])).missingIds.includes(userId(3)), { timeoutMs: 2000, what: "the delete to be seen" });

    // An upsert, as the worker writes inline recipients.
    expect(await email(userId(4))).toBe("u4@example.com");
    await db.sql`INSERT INTO users (id, email) VALUES (${userId(4)}, 'new4@example.com') ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email`;
    await waitFor(async () => (await email(userId(4))) === "new4@example.com", { timeoutMs: 2000, what: "the upsert to be seen" });
  });

  test("a statement touching more than 100 users, or ids too long for one notification, clears the whole cache", async () => {
    const ids = Array.from({ length: 200 }, (_, i) => userId(i + 100));
    await clients.users.getUsers(ids);
    expect(server.userCache().entries).toBeGreaterThanOrEqual(200);
    const seen: string[] = [];
    const { unlisten } = await db.sql.listen(USERS_CHANGED_CHANNEL, (p) => void (p.startsWith("ping:") || seen.push(p)));
    await db.sql`UPDATE users SET locale = 'de' WHERE id = ANY(${ids})`;
    await waitFor(() => seen.includes("*"), { timeoutMs: 2000, what: "the '*' notification" });
    await waitFor(async () => (await clients.users.getUsers([ids[0]!])).users[0]!.locale === "de", { timeoutMs: 2000, what: "the bulk update to be seen" });

    // 60 ids of 200 characters: a JSON list over pg_notify's 8,000-byte limit. The write succeeds.
    const long = Array.from({ length: 60 }, (_, i) => `${String(i).padStart(3, "0")}${"x".repeat(197)}`);
    await db.sql`INSERT INTO users (id, email) SELECT unnest(${long}::text[]), 'long@example.com'`;
    await waitFor(() => seen.filter((p) => p === "*").length >= 2, { timeoutMs: 2000, what: "a second '*'" });
    expect(Number((await db.sql`SELECT count(*) AS n FROM users WHERE email = 'long@example.com'`)[0]!.n)).toBe(60);
    await unlisten();
  });

  test("when the listening connection is cut the cache is emptied, and changes made meanwhile are seen", async () => {
    expect(await email(userId(5))).toBe("u5@example.com");
    const before = server.userCache().entries;
    expect(before).toBeGreaterThan(0);
    const cut = await db.sql`
      SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'listen %'`;
    expect(cut.length).toBeGreaterThanOrEqual(1);
    await db.sql`UPDATE users SET email = 'new5@example.com' WHERE id = ${userId(5)}`;
    await waitFor(async () => (await email(userId(5))) === "new5@example.com", { timeoutMs: 10_000, what: "the change made while cut off" });
    await waitFor(() => server.userCache().live, { timeoutMs: 10_000, what: "the cache to be live again" });
  });

  test("NOTIFY_GRPC_USER_CACHE_TTL_MS=0 turns it off; a bad value is refused at start", async () => {
    const off = await startGrpcServer({ config: testConfig({ NOTIFY_GRPC_USER_CACHE_TTL_MS: "0" }), log: quietLog, sql: db.sql, port: 0, host: "127.0.0.1" });
    const c = createGrpcClients({ url: `127.0.0.1:${off.port}`, log: quietLog });
    try {
      expect((await c.users.getUsers([userId(6)])).users[0]!.email).toBe("u6@example.com");
      expect(off.userCache()).toEqual({ entries: 0, live: false });
    } finally {
      c.close();
      await off.stop();
    }
    for (const [k, v] of [["NOTIFY_GRPC_USER_CACHE_TTL_MS", "-1"], ["NOTIFY_GRPC_USER_CACHE_MAX", "lots"]] as const) {
      await expect(startGrpcServer({ config: testConfig({ [k]: v }), log: quietLog, sql: db.sql, port: 0, host: "127.0.0.1" })).rejects.toThrow(k);
    }
  });
});
