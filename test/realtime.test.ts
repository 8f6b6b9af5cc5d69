/**
 * Live delivery across two gateway instances (each with its own realtime queue) and a worker, on
 * real PostgreSQL and RabbitMQ: WebSocket fan-out, catch-up with `since`, the REST inbox, token
 * refusals at upgrade, frame/backpressure limits, and user isolation everywhere.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ADMIN_KEY, createCluster, signToken, type Cluster } from "./support/realtime.ts";
import { haveServices, waitFor } from "./support/services.ts";
import { connectWs, rawUpgrade, type WsClient } from "./support/ws-client.ts";
import { SignJWT } from "jose";
import net from "node:net";

describe.skipIf(!(await haveServices))("realtime: WebSocket, inbox, two gateways", () => {
  let c: Cluster;
  const clients: WsClient[] = [];
  const open = async (url: string, token: string) => {
    const cl = connectWs(url, { protocols: ["bearer", token] });
    clients.push(cl);
    await cl.opened;
    return cl;
  };
  const send = async (user: string, title: string, data: Record<string, unknown> = {}) => {
    const r = await c.post(c.a, "/api/v1/events", { event: "chat.message", to: [{ user_id: user }], channels: ["in_app"], title, body: `body of ${title}`, data });
    expect(r.status).toBe(202);
    return ((await r.json()) as { id: string }).id;
  };

  beforeAll(async () => {
    c = await createCluster({ NOTIFY_WS_MAX_FRAME_BYTES: "1024", NOTIFY_WS_BACKPRESSURE_BYTES: "65536", NOTIFY_WS_MESSAGES_PER_SECOND: "50" });
  });
  afterAll(async () => {
    for (const cl of clients) cl.ws.close();
    await c?.close();
  });

  test("an in-app event posted to gateway A reaches the user's socket on gateway B, with the unread count", async () => {
    const alice = await c.token("alice");
    const ws = await open(c.b.ws, alice);
    await ws.next((f) => f.type === "unread_count", "initial unread count");
    const started = performance.now();
    await send("alice", "hello from A", { room: 7 });
    const n = await ws.next((f) => f.type === "notification" && f.title === "hello from A", "notification on B");
    expect(performance.now() - started).toBeLessThan(5000);
    expect(n).toMatchObject({ type: "notification", event: "chat.message", body: "body of hello from A", data: { room: 7 } });
    expect(typeof n.id).toBe("string");
    expect(typeof n.created_at).toBe("string");
    await ws.next((f) => f.type === "unread_count" && f.count === 1, "unread_count 1");
  });

  test("REST inbox: list, unread count, read, read-all, archive; the count is pushed to every socket of the user", async () => {
    const tok = await c.token("carol");
    const onA = await open(c.a.ws, tok);
    const onB = await open(c.b.ws, tok);
    await Promise.all([onA.next((f) => f.type === "unread_count"), onB.next((f) => f.type === "unread_count")]);
    // One at a time: the worker sends concurrently, and this test asserts an order.
    for (const [i, t] of ["c1", "c2", "c3"].entries()) {
      await send("carol", t);
      await waitFor(async () => ((await (await c.get(c.a, "/api/v1/inbox/unread-count", tok)).json()) as any).count === i + 1, { what: `${i + 1} unread` });
    }
    const list = (await (await c.get(c.b, "/api/v1/inbox?limit=2", tok)).json()) as any;
    expect(list.items.map((i: any) => i.title)).toEqual(["c3", "c2"]);
    expect(list.items[0]).toMatchObject({ read: false, archived: false, event: "chat.message" });
    const page2 = (await (await c.get(c.b, `/api/v1/inbox?limit=2&cursor=${list.next_cursor}`, tok)).json()) as any;
    expect(page2.items.map((i: any) => i.title)).toEqual(["c1"]);
    expect(page2.next_cursor).toBeNull();
    const since = (await (await c.get(c.b, `/api/v1/inbox?since=${page2.items[0].id}`, tok)).json()) as any;
    expect(since.items.map((i: any) => i.title)).toEqual(["c2", "c3"]);

    const read = await c.post(c.a, `/api/v1/inbox/${list.items[0].id}/read`, {}, tok);
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ id: list.items[0].id, read: true, unread_count: 2 });
    // Both sockets, on both gateways, get the recounted value.
    await Promise.all([onA.next((f) => f.type === "unread_count" && f.count === 2, "A: 2"), onB.next((f) => f.type === "unread_count" && f.count === 2, "B: 2")]);
    const arch = await c.post(c.a, `/api/v1/inbox/${list.items[1].id}/archive`, {}, tok);
    expect(await arch.json()).toMatchObject({ archived: true, unread_count: 1 });
    const remaining = (await (await c.get(c.a, "/api/v1/inbox", tok)).json()) as any;
    expect(remaining.items.map((i: any) => i.title)).toEqual(["c3", "c1"]);
    const archived = (await (await c.get(c.a, "/api/v1/inbox?archived=true", tok)).json()) as any;
    expect(archived.items.map((i: any) => i.title)).toEqual(["c2"]);
    expect(await (await c.post(c.a, "/api/v1/inbox/read-all", {}, tok)).json()).toMatchObject({ updated: 1, unread_count: 0 });
    await onB.next((f) => f.type === "unread_count" && f.count === 0, "B: 0");
  });

  test("REST inbox refuses API keys, missing and bad tokens, and bad parameters", async () => {
    expect((await fetch(`${c.a.url}/api/v1/inbox`)).status).toBe(401);
    const key = await c.get(c.a, "/api/v1/inbox", ADMIN_KEY);
    expect(key.status).toBe(403);
    expect(((await key.json()) as any).error.code).toBe("FORBIDDEN");
    const expired = await c.get(c.a, "/api/v1/inbox", await signToken("x", { expiresIn: Math.floor(Date.now() / 1000) - 60 }));
    expect(expired.status).toBe(401);
    expect(((await expired.json()) as any).error.message).toContain("expired");
    const tok = await c.token("dave");
    const bad = await c.get(c.a, "/api/v1/inbox?limit=0", tok);
    expect(bad.status).toBe(422);
    expect(((await bad.json()) as any).error.details[0].path).toBe("limit");
    expect((await c.get(c.a, "/api/v1/inbox?cursor=bm9wZQ", tok)).status).toBe(422);
  });

  test("a user never sees another user's messages: WS, REST, guessed ids", async () => {
    const [erin, frank] = await Promise.all([c.token("erin"), c.token("frank")]);
    const wsFrank = await open(c.a.ws, frank);
    await wsFrank.next((f) => f.type === "unread_count");
    await send("erin", "for erin only");
    await send("frank", "for frank");
    await wsFrank.next((f) => f.type === "notification" && f.title === "for frank");
    const erinItems = await waitFor(async () => {
      const l = (await (await c.get(c.b, "/api/v1/inbox", erin)).json()) as any;
      return l.items.length ? l.items : undefined;
    });
    expect(wsFrank.frames.some((f) => f.title === "for erin only")).toBe(false);
    const frankList = (await (await c.get(c.b, "/api/v1/inbox", frank)).json()) as any;
    expect(frankList.items.map((i: any) => i.title)).toEqual(["for frank"]);
    const erinId = erinItems[0].id;
    for (const path of [`/api/v1/inbox/${erinId}/read`, `/api/v1/inbox/${erinId}/archive`, `/api/v1/inbox/${crypto.randomUUID()}/read`, "/api/v1/inbox/not-a-uuid/read"]) {
      const r = await c.post(c.a, path, {}, frank);
      expect(r.status).toBe(404);
    }
    expect((await c.get(c.a, `/api/v1/inbox?since=${erinId}`, frank)).status).toBe(404);
    // Erin's item is untouched.
    const after = (await (await c.get(c.a, "/api/v1/inbox", erin)).json()) as any;
    expect(after.items[0]).toMatchObject({ id: erinId, read: false, archived: false });
    // Someone else's item as `since` is refused at upgrade, like an unknown one.
    expect((await rawUpgrade(c.b.gateway.port, `/ws?since=${erinId}&token=${frank}`)).status).toBe(404);
  });

  test("reconnect with ?since= gets exactly what was missed, in order, then live, with no gap or duplicate under concurrent sends", async () => {
    const tok = await c.token("gina");
    const first = await open(c.a.ws, tok);
    await send("gina", "g0");
    const g0 = await first.next((f) => f.type === "notification" && f.title === "g0");
    first.close();
    await first.waitClosed();
    for (const t of ["g1", "g2", "g3"]) await send("gina", t);
    await waitFor(async () => ((await (await c.get(c.a, "/api/v1/inbox/unread-count", tok)).json()) as any).count === 4);
    // Reconnect on the other gateway while more messages are being sent.
    const sending = (async () => {
      for (let i = 4; i < 24; i++) await send("gina", `g${i}`);
    })();
    const again = connectWs(`${c.b.ws}?since=${g0.id}`, { protocols: ["bearer", tok] });
    clients.push(again);
    await sending;
    const notes = () => again.frames.filter((f) => f.type === "notification");
    await waitFor(() => notes().length >= 23, { what: "23 messages", timeoutMs: 20_000 });
    // The worker sends concurrently, so the inbox order is the order items were stored; the socket
    // must show exactly that order (REST `since` reads it back), each item once.
    const stored = (await (await c.get(c.a, `/api/v1/inbox?since=${g0.id}&limit=100`, tok)).json()) as any;
    expect(stored.items).toHaveLength(23);
    expect(notes().map((f) => f.id)).toEqual(stored.items.map((i: any) => i.id));
    expect(new Set(notes().map((f) => f.title))).toEqual(new Set(Array.from({ length: 23 }, (_, i) => `g${i + 1}`)));
    await again.next((f) => f.type === "unread_count" && f.count === 24, "unread count after catch-up");
  });

  test("tokens refused at upgrade: missing, expired, wrong audience, wrong issuer, alg none, wrong key, API key; bad origin", async () => {
    const port = c.b.gateway.port;
    const now = Math.floor(Date.now() / 1000);
    const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${Buffer.from(JSON.stringify({ sub: "alice", exp: now + 600, iss: "https://auth.example.test", aud: "notify" })).toString("base64url")}.`;
    const rs = await (async () => {
      const { privateKey } = await crypto.subtle.generateKey({ name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" }, true, ["sign", "verify"]);
      return new SignJWT({}).setProtectedHeader({ alg: "RS256" }).setSubject("alice").setIssuer("https://auth.example.test").setAudience("notify").setExpirationTime("10m").sign(privateKey);
    })();
    const cases: Array<[string, string | undefined, RegExp]> = [
      ["missing", undefined, /token is required/],
      ["expired", await signToken("alice", { expiresIn: now - 30 }), /expired/],
      ["wrong audience", await signToken("alice", { audience: "someone-else" }), /aud/],
      ["wrong issuer", await signToken("alice", { issuer: "https://evil.example" }), /iss/],
      ["alg none", none, /algorithm|malformed/],
      ["RS256 where HS256 is pinned", rs, /algorithm/],
      ["wrong key", await signToken("alice", { secret: "another-secret-0123456789abcdef-0123456789" }), /signature/],
      ["API key", ADMIN_KEY, /user token/],
    ];
    for (const [what, token, reason] of cases) {
      for (const how of ["protocol", "query"] as const) {
        const r = token === undefined ? await rawUpgrade(port, "/ws") : how === "protocol" ? await rawUpgrade(port, "/ws", { "Sec-WebSocket-Protocol": `bearer, ${token}` }) : await rawUpgrade(port, `/ws?token=${encodeURIComponent(token)}`);
        expect({ what, how, status: r.status }).toEqual({ what, how, status: 401 });
        const body = JSON.parse(r.body);
        expect(body.error.code).toBe("UNAUTHENTICATED");
        expect(body.error.message).toMatch(reason);
      }
    }
    const ok = await rawUpgrade(port, "/ws", { "Sec-WebSocket-Protocol": `bearer, ${await c.token("alice")}` });
    expect(ok.status).toBe(101);
    expect(ok.head).toMatch(/sec-websocket-protocol: bearer/i);
  });

  test("origin allow-list and per-user connection limit are enforced at upgrade", async () => {
    const cl = await createCluster({ NOTIFY_WS_ALLOWED_ORIGINS: "https://app.example.test", NOTIFY_WS_MAX_CONNECTIONS_PER_USER: "2" });
    try {
      const tok = await cl.token("hank");
      const port = cl.a.gateway.port;
      const evil = await rawUpgrade(port, `/ws?token=${tok}`, { Origin: "https://evil.example" });
      expect(evil.status).toBe(403);
      expect(JSON.parse(evil.body).error.code).toBe("FORBIDDEN_ORIGIN");
      const s1 = connectWs(cl.a.ws, { protocols: ["bearer", tok], headers: { Origin: "https://app.example.test" } });
      const s2 = connectWs(cl.a.ws, { protocols: ["bearer", tok] });
      await Promise.all([s1.opened, s2.opened]);
      const third = await rawUpgrade(port, `/ws?token=${tok}`);
      expect(third.status).toBe(429);
      expect(third.head).toMatch(/retry-after: 5/i);
      s1.close();
      await s1.waitClosed();
      await waitFor(() => cl.a.sockets.connections() === 1);
      const s3 = connectWs(cl.a.ws, { protocols: ["bearer", tok] });
      await s3.opened;
      s2.close();
      s3.close();
    } finally {
      await cl.close();
    }
  });

  test("the socket closes with 4001 when its token expires", async () => {
    const tok = await signToken("ivan", { expiresIn: Math.floor(Date.now() / 1000) + 2 });
    const ws = await open(c.a.ws, tok);
    const closed = await ws.waitClosed(8000);
    expect(closed.code).toBe(4001);
  });

  test("an oversized frame closes the socket (1009); a flood closes it (1008); bad frames get errors", async () => {
    const tok = await c.token("judy");
    const big = await open(c.a.ws, tok);
    big.send("x".repeat(4096));
    expect((await big.waitClosed()).code).toBe(1009);
    const chat = await open(c.a.ws, tok);
    chat.send("not json");
    chat.send({ type: "nope" });
    chat.send({ type: "ping" });
    await chat.next((f) => f.type === "error" && f.code === "MALFORMED_JSON");
    await chat.next((f) => f.type === "error" && f.code === "UNKNOWN_TYPE");
    await chat.next((f) => f.type === "pong");
    for (let i = 0; i < 200; i++) chat.send({ type: "ping" });
    expect((await chat.waitClosed()).code).toBe(1008);
  });

  test("a client that never reads is closed by backpressure; server-side buffering stays bounded", async () => {
    const tok = await c.token("kim");
    const before = c.a.sockets.connections();
    // A raw client: completes the handshake, then never reads a byte.
    let got = 0;
    const sock = net.connect({ host: "127.0.0.1", port: c.a.gateway.port });
    sock.on("data", (d) => (got += d.length));
    sock.write(`GET /ws?token=${tok} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
    await waitFor(() => c.a.sockets.connections() === before + 1 && got > 0, { what: "raw socket open" });
    // Stop reading: the kernel buffers fill, then Bun's buffer, then the backpressure limit closes it.
    sock.pause();
    const seen = got;
    // Push far more than kernel buffers + the 64 KiB backpressure limit through the real topic.
    const body = "x".repeat(60_000);
    const item = (i: number) => ({ id: crypto.randomUUID(), event: "bulk", title: `b${i}`, body, data: {}, read: false, archived: false, created_at: new Date().toISOString() });
    for (let i = 0; i < 400; i += 50) {
      await c.a.app.queue.publish("realtime", Array.from({ length: 50 }, (_, k) => ({ routingKey: "kim", body: { type: "notification", user_id: "kim", seq: i + k + 1, item: item(i + k) } })));
    }
    await waitFor(() => c.a.sockets.connections() === before, { what: "non-reading socket closed", timeoutMs: 20_000 });
    // Nothing was read after the pause: the close came from the server's limit, not from a client that caught up.
    expect(got).toBe(seen);
    sock.destroy();
  });
});
