import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as grpc from "@grpc/grpc-js";
import { createTestDb, haveServices, waitFor, type TestDb } from "../../test/support/services.ts";
import { createGrpcClients, createRemoteUserDirectory, type GrpcClients } from "./client.ts";
import { startGrpcServer, type GrpcServer } from "./server.ts";
import { quietLog, seedUsers, testConfig, userId } from "./testing.ts";

/** A product's other services, speaking HTTP: movies, comments, a slow one, a broken one, an auth service. */
function startPeer() {
  const hits = new Map<string, number>();
  let aborted = 0;
  let upstreamDown = false;
  const peer = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      hits.set(path, (hits.get(path) ?? 0) + 1);
      let m: RegExpExecArray | null;
      if ((m = /^\/movies\/(.+)$/.exec(path))) {
        await Bun.sleep(150); // parallel fetches: two of these take ~150 ms, not ~300 ms
        return Response.json({ id: decodeURIComponent(m[1]!), title: `Movie ${decodeURIComponent(m[1]!)}` });
      }
      if ((m = /^\/comments\/(.+)$/.exec(path))) {
        await Bun.sleep(150);
        return Response.json({ id: m[1], text: "nice" });
      }
      if (path.startsWith("/slow/")) {
        req.signal.addEventListener("abort", () => aborted++);
        await Bun.sleep(5000);
        return Response.json({});
      }
      if (path.startsWith("/broken/")) return new Response("oops", { status: 500 });
      if ((m = /^\/auth\/users\/(.+)$/.exec(path))) {
        if (upstreamDown) return new Response("down", { status: 503 });
        const id = decodeURIComponent(m[1]!);
        if (id.startsWith("ghost")) return new Response("{}", { status: 404 });
        return Response.json({ id, email: `${id}@auth.example`, name: `Auth ${id}`, phone: "+10000000000", locale: "de" });
      }
      return new Response("no", { status: 404 });
    },
  });
  return {
    peer,
    hits,
    get aborted() {
      return aborted;
    },
    setUpstreamDown(v: boolean) {
      upstreamDown = v;
    },
  };
}

describe.skipIf(!(await haveServices))("Context.Enrich and the users upstream", () => {
  let db: TestDb;
  let server: GrpcServer;
  let clients: GrpcClients;
  let peer: ReturnType<typeof startPeer>;

  beforeAll(async () => {
    db = await createTestDb();
    await seedUsers(db.sql, 10);
    await db.sql`UPDATE users SET email = NULL, name = NULL WHERE id = ${userId(2)}`;
    peer = startPeer();
    const base = `http://127.0.0.1:${peer.peer.port}`;
    server = await startGrpcServer({
      config: testConfig({ NOTIFY_ENRICH_BASE_URL: base, NOTIFY_USERS_UPSTREAM_URL: `${base}/auth` }),
      log: quietLog,
      sql: db.sql,
      port: 0,
      host: "127.0.0.1",
      token: "tok-0123456789abcdef",
    });
    clients = createGrpcClients({ url: `127.0.0.1:${server.port}`, token: "tok-0123456789abcdef", log: quietLog });
  });
  afterAll(async () => {
    clients?.close();
    await server?.stop();
    peer?.peer.stop(true);
    await db?.drop();
  });

  const sources = [
    { name: "movie", url_template: "{base}/movies/{data.movie_id}", ttl_ms: 60_000 },
    { name: "comment", url_template: "/comments/{data.comment.id}" },
  ];

  test("fetches every source in parallel and adds it to the data", async () => {
    const started = performance.now();
    const data = await clients.context.enrich("episode.released", { movie_id: "42 /x", comment: { id: 7 } }, sources, { deadlineMs: 3000 });
    const took = performance.now() - started;
    // The source named "comment" replaces data.comment (a source wins over an event field of its name).
    expect(data).toEqual({ movie_id: "42 /x", movie: { id: "42 /x", title: "Movie 42 /x" }, comment: { id: "7", text: "nice" } });
    // Placeholders are URL-encoded: "42 /x" is one path segment.
    expect(peer.hits.get("/movies/42%20%2Fx")).toBe(1);
    expect(took).toBeLessThan(290); // two 150 ms sources, fetched at once
  });

  test("a second call within the TTL is served from the cache", async () => {
    const before = peer.hits.get("/movies/42%20%2Fx");
    const data = await clients.context.enrich("episode.released", { movie_id: "42 /x", comment: { id: 7 } }, sources);
    expect((data.movie as { title: string }).title).toBe("Movie 42 /x");
    expect(peer.hits.get("/movies/42%20%2Fx")).toBe(before!);
    expect(peer.hits.get("/comments/7")).toBe(1);
    expect(server.stats.enrich.cacheHits).toBeGreaterThanOrEqual(2);
  });

  test("concurrent calls for the same object share one fetch", async () => {
    const calls = Array.from({ length: 20 }, () => clients.context.enrich("e", { movie_id: "shared" }, [sources[0]!]));
    await Promise.all(calls);
    expect(peer.hits.get("/movies/shared")).toBe(1);
  });

  test("one failing source fails the whole call, retryable, no half-filled data", async () => {
    const err = await clients.context
      .enrich("e", { movie_id: "1", x: "y" }, [sources[0]!, { name: "broken", url_template: "{base}/broken/{data.x}" }])
      .catch((e) => e);
    expect(err.grpcCode).toBe(grpc.status.UNAVAILABLE);
    expect(err.retryable).toBe(true);
    expect(err.message).toContain("broken");
  });

  test("a source past its timeout fails the call with UNAVAILABLE", async () => {
    const started = performance.now();
    const err = await clients.context
      .enrich("e", { x: "1" }, [{ name: "slow", url_template: "{base}/slow/{data.x}", timeout_ms: 100 }], { deadlineMs: 3000 })
      .catch((e) => e);
    expect(err.grpcCode).toBe(grpc.status.UNAVAILABLE);
    expect(err.message).toContain("timed out");
    // Three attempts of ~100 ms each plus backoff, far below the peer's 5 s.
    expect(performance.now() - started).toBeLessThan(2000);
  });

  test("a cancelled call (client deadline) aborts the outbound fetch", async () => {
    const abortedBefore = peer.aborted;
    const c = createGrpcClients({ url: `127.0.0.1:${server.port}`, token: "tok-0123456789abcdef", log: quietLog, attempts: 1 });
    try {
      const err = await c.context.enrich("e", { x: "2" }, [{ name: "slow", url_template: "{base}/slow/{data.x}", timeout_ms: 10_000 }], { deadlineMs: 200 }).catch((e) => e);
      expect(err.grpcCode).toBe(grpc.status.DEADLINE_EXCEEDED);
      await waitFor(() => peer.aborted > abortedBefore, { timeoutMs: 3000, what: "the peer to see its request aborted" });
    } finally {
      c.close();
    }
  });

  test("bad templates and missing placeholders are INVALID_ARGUMENT", async () => {
    for (const s of [
      { name: "m", url_template: "{base}/movies/{data.nope}" },
      { name: "m", url_template: "{base}/movies/{env.SECRET}" },
      { name: "m", url_template: "file:///etc/passwd" },
      { name: "", url_template: "{base}/movies/1" },
    ]) {
      const err = await clients.context.enrich("e", { movie_id: 1 }, [s]).catch((e) => e);
      expect(err.grpcCode).toBe(grpc.status.INVALID_ARGUMENT);
    }
  });

  test("GetUsers fills unknown users and missing fields from the upstream, and caches", async () => {
    const res = await clients.users.getUsers([userId(1), userId(2), "remote-1", "ghost-1"]);
    const byId = new Map(res.users.map((u) => [u.id, u]));
    // Complete local user: local data, upstream not asked.
    expect(byId.get(userId(1))?.email).toBe("u1@example.com");
    expect(peer.hits.get(`/auth/users/${userId(1)}`)).toBeUndefined();
    // Local user without email/name: filled in, local fields kept.
    expect(byId.get(userId(2))).toMatchObject({ email: `${userId(2)}@auth.example`, name: `Auth ${userId(2)}`, locale: "en" });
    // Unknown locally, known upstream.
    expect(byId.get("remote-1")).toMatchObject({ email: "remote-1@auth.example", locale: "de" });
    expect(res.missingIds).toEqual(["ghost-1"]);
    expect(res.unresolvedIds).toEqual([]);
    await clients.users.getUsers(["remote-1", "ghost-1"]);
    expect(peer.hits.get("/auth/users/remote-1")).toBe(1);
    expect(peer.hits.get("/auth/users/ghost-1")).toBe(1);
  });

  test("upstream down: cached and local data are served, unknown ids are unresolved (retryable), a counter moves", async () => {
    peer.setUpstreamDown(true);
    try {
      const failuresBefore = server.stats.upstream!.failures;
      const started = performance.now();
      const res = await clients.users.getUsers([userId(3), "remote-1", "remote-2"]);
      expect(performance.now() - started).toBeLessThan(1500);
      expect(res.users.map((u) => u.id).sort()).toEqual(["remote-1", userId(3)]); // remote-1 from the cache
      expect(res.unresolvedIds).toEqual(["remote-2"]);
      expect(res.missingIds).toEqual([]);
      expect(server.stats.upstream!.failures).toBeGreaterThan(failuresBefore);
      // The worker's view: not "missing", a retryable error.
      const err = await createRemoteUserDirectory(clients).getMany(["remote-2"]).catch((e) => e);
      expect(err.retryable).toBe(true);
    } finally {
      peer.setUpstreamDown(false);
    }
  });
});
