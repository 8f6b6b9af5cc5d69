/**
 * The spine through the public surface: REST in, RabbitMQ, worker, e-mail out at a real SMTP server.
 */
import { AMQPClient } from "@cloudamqp/amqp-client";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { EXCHANGES } from "../src/mq/topology.ts";
import { NOTIFICATION_HEADER } from "../src/services/relay.ts";
import { createHarness, type Harness } from "./support/harness.ts";
import { haveServices, waitFor } from "./support/services.ts";

describe.skipIf(!(await haveServices))("spine: event → e-mail", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
    const t = await h.request("/api/v1/templates/welcome", {
      method: "PUT",
      json: {
        name: "Welcome",
        category: "account",
        variants: [
          { channel: "email", locale: "en", subject: "Welcome, {{ name }}", text: "Hi {{ name }}, confirm: {{ link }}", html: "<p>Hi {{ name }}</p>" },
          { channel: "email", locale: "ru", subject: "Добро пожаловать, {{ name }}", text: "Привет, {{ name }}: {{ link }}" },
        ],
      },
    });
    expect(t.status).toBe(201);
  });
  afterAll(() => h?.close());

  const notification = async (id: string) => (await (await h.request(`/api/v1/notifications/${id}`)).json()) as any;

  test("an event to an inline recipient is rendered and e-mailed once", async () => {
    const res = await h.request("/api/v1/events", {
      method: "POST",
      json: { event: "user.registered", to: [{ user_id: "u1", email: "alice@example.com", name: "Alice" }], template: "welcome", channels: ["email"], data: { link: "https://example.com/c/1" } },
    });
    expect(res.status).toBe(202);
    const body = (await res.json()) as { id: string; status: string };
    expect(body.status).toBe("accepted");
    const mail = await waitFor(() => h.smtp.mails.find((m) => m.to.includes("alice@example.com")), { what: "mail to alice" });
    expect(mail.subject).toBe("Welcome, Alice");
    expect(mail.text).toContain("Hi Alice, confirm: https://example.com/c/1");
    expect(mail.html).toContain("<p>Hi Alice</p>");
    const n = await waitFor(async () => {
      const n = await notification(body.id);
      return n.status === "delivered" ? n : undefined;
    }, { what: "delivered status" });
    expect(n.deliveries).toHaveLength(1);
    expect(n.deliveries[0]).toMatchObject({ channel: "email", recipient: "alice@example.com", status: "sent", attempts: 1, error: null });
    expect(mail.messageId).toBe(`<${n.deliveries[0].id}@example.test>`);
    expect(h.smtp.mails.filter((m) => m.to.includes("alice@example.com"))).toHaveLength(1);
  });

  test("a directory user gets the variant of their locale", async () => {
    const put = await h.request("/api/v1/users/u2", { method: "PUT", json: { email: "boris@example.com", name: "Борис", locale: "ru-RU", timezone: "Europe/Moscow" } });
    expect(put.status).toBe(201);
    const res = await h.request("/api/v1/events", { method: "POST", json: { event: "user.registered", to: ["u2"], template: "welcome", channels: ["email"], data: { link: "L" } } });
    expect(res.status).toBe(202);
    const mail = await waitFor(() => h.smtp.mails.find((m) => m.to.includes("boris@example.com")));
    expect(mail.text).toContain("Привет, Борис: L");
  });

  test("the same inline recipient twice in one event is merged: one delivery, one e-mail", async () => {
    const res = await h.request("/api/v1/events", {
      method: "POST",
      json: { event: "dup", to: [{ user_id: "dup1", email: "dup1@example.com" }, { user_id: "dup1", name: "Dee" }, "dup1"], template: "welcome", channels: ["email"], data: { link: "D" } },
    });
    const { id } = (await res.json()) as { id: string };
    const n = await waitFor(async () => {
      const n = await notification(id);
      return n.status === "delivered" ? n : undefined;
    });
    expect(n.deliveries).toHaveLength(1);
    const mail = await waitFor(() => h.smtp.mails.find((m) => m.to.includes("dup1@example.com")));
    expect(mail.subject).toBe("Welcome, Dee");
    expect(h.smtp.mails.filter((m) => m.to.includes("dup1@example.com"))).toHaveLength(1);
    const u = (await (await h.request("/api/v1/users/dup1")).json()) as { email: string; name: string };
    expect(u).toMatchObject({ email: "dup1@example.com", name: "Dee" });
  });

  test("unknown user ids are recorded as skipped, not dropped", async () => {
    const res = await h.request("/api/v1/events", { method: "POST", json: { event: "x", to: ["nobody"], template: "welcome", channels: ["email"], data: { link: "L" } } });
    const { id } = (await res.json()) as { id: string };
    const n = await waitFor(async () => {
      const n = await notification(id);
      return n.deliveries?.length ? n : undefined;
    });
    expect(n.deliveries[0]).toMatchObject({ status: "skipped" });
    expect(n.deliveries[0].error).toContain("unknown user");
  });

  test("validation errors name the field and store nothing", async () => {
    const before = await h.db.sql`SELECT count(*)::int AS n FROM notifications`;
    const bad = await h.request("/api/v1/events", { method: "POST", json: { event: "x", to: [{ user_id: "u", email: "not-an-email" }], template: "welcome", channels: ["email", "pigeon"] } });
    expect(bad.status).toBe(422);
    const err = (await bad.json()) as any;
    expect(err.error.code).toBe("VALIDATION_FAILED");
    const paths = err.error.details.map((d: any) => d.path);
    expect(paths).toContain("to.0.email");
    expect(paths).toContain("channels.1");
    const malformed = await h.request("/api/v1/events", { method: "POST", body: "{not json", headers: { "content-type": "application/json" } });
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as any).error.code).toBe("MALFORMED_JSON");
    const unknownTemplate = await h.request("/api/v1/events", { method: "POST", json: { event: "x", to: ["u1"], template: "nope", channels: ["email"] } });
    expect(unknownTemplate.status).toBe(422);
    expect(((await unknownTemplate.json()) as any).error.details[0].path).toBe("template");
    const noChannels = await h.request("/api/v1/events", { method: "POST", json: { event: "x", to: ["u1"], template: "welcome" } });
    expect(noChannels.status).toBe(422);
    // U+0000 cannot be stored by PostgreSQL: 422 naming the field (was a 503 "retry later" here).
    const nul = await h.request("/api/v1/events", { method: "POST", json: { event: "x", to: ["u1"], template: "welcome", channels: ["email"], data: { name: "a\u0000b" } } });
    expect(nul.status).toBe(422);
    expect(((await nul.json()) as any).error.details[0].path).toBe("data.name");
    const nulUser = await h.request("/api/v1/users/nul", { method: "PUT", json: { email: "n@example.com", attributes: { "k\u0000": 1 } } });
    expect(nulUser.status).toBe(422);
    expect(((await nulUser.json()) as any).error.details[0].path).toBe("attributes.k\u0000");
    // The six characters \u0000 as text are fine.
    expect((await h.request("/api/v1/users/nul", { method: "PUT", json: { email: "n@example.com", name: "\\u0000" } })).status).toBe(201);
    const after = await h.db.sql`SELECT count(*)::int AS n FROM notifications`;
    expect(after[0]!.n).toBe(before[0]!.n);
  });

  test("a body over NOTIFY_MAX_BODY_BYTES is 413 PAYLOAD_TOO_LARGE, declared or streamed, and stores nothing", async () => {
    const before = await h.db.sql`SELECT count(*)::int AS n FROM notifications`;
    const big = JSON.stringify({ event: "x", to: ["u1"], template: "welcome", channels: ["email"], data: { pad: "x".repeat(h.app.config.maxBodyBytes) } });
    const declared = await h.request("/api/v1/events", { method: "POST", body: big, headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(big)) } });
    const chunks = new TextEncoder().encode(big);
    const streamed = await h.request("/api/v1/events", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: new ReadableStream({
        start(c) {
          for (let i = 0; i < chunks.length; i += 65_536) c.enqueue(chunks.subarray(i, i + 65_536));
          c.close();
        },
      }),
    });
    for (const res of [declared, streamed]) {
      expect(res.status).toBe(413);
      expect(((await res.json()) as any).error.code).toBe("PAYLOAD_TOO_LARGE");
    }
    // Just under the limit is read and judged on its content.
    const small = await h.request("/api/v1/events", { method: "POST", body: "{}", headers: { "content-type": "application/json", "content-length": "2" } });
    expect(small.status).toBe(422);
    const after = await h.db.sql`SELECT count(*)::int AS n FROM notifications`;
    expect(after[0]!.n).toBe(before[0]!.n);
  });

  test("a cursor this API did not hand out is 422 naming `cursor`, not a failed query", async () => {
    const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64url");
    for (const path of [`/api/v1/api-keys?cursor=${b64("not-a-uuid")}`, `/api/v1/dead-letters?cursor=${b64("x")}`, `/api/v1/users?cursor=${b64("a\u0000b")}`]) {
      const r = await h.request(path);
      expect([path, r.status]).toEqual([path, 422]);
      expect(((await r.json()) as any).error.details[0].path).toBe("cursor");
    }
    expect((await h.request(`/api/v1/users?cursor=${b64("u")}`)).status).toBe(200);
  });

  test("producers publishing straight to notify.events (SPEC 3.7): sent once per message_id; invalid or U+0000 events dead-lettered at once", async () => {
    const raw = new AMQPClient(h.app.config.amqpUrl!);
    await raw.connect();
    const publish = async (body: string, messageId?: string) => {
      const ch = await raw.channel();
      await ch.confirmSelect();
      await ch.basicPublish(EXCHANGES.events.name, "order.paid", body, { messageId, deliveryMode: 2, contentType: "application/json" });
      await ch.close();
    };
    try {
      const event = { event: "order.paid", to: [{ user_id: "amqp1", email: "amqp1@example.com", name: "Ann" }], template: "welcome", channels: ["email"], data: { link: "https://example.com/r/1" } };
      await publish(JSON.stringify(event), "amqp-msg-1");
      await publish(JSON.stringify(event), "amqp-msg-1"); // the producer's retry of the same message
      await publish(JSON.stringify({ ...event, to: [{ user_id: "amqp2", email: "amqp2@example.com", name: "Bo" }] })); // no message_id
      await waitFor(() => h.smtp.mails.some((m) => m.to.includes("amqp1@example.com")) && h.smtp.mails.some((m) => m.to.includes("amqp2@example.com")), { what: "both mails" });
      await publish(JSON.stringify({ ...event, to: [{ user_id: "amqp3", email: "amqp3@example.com" }], data: { link: "a\u0000b" } }), "amqp-nul");
      await publish(JSON.stringify({ title: "no recipients", body: "x" }), "amqp-invalid");
      const dead = await waitFor(async () => {
        const list = (await (await h.request("/api/v1/dead-letters")).json()) as { items: Array<{ reason: string; payload: any }> };
        return list.items.length >= 2 ? list.items : undefined;
      }, { what: "two dead letters" });
      expect(dead.every((d) => d.reason.startsWith("invalid event"))).toBe(true);
      // Kept for inspection and replay, with the NUL spelled out (jsonb cannot hold U+0000).
      expect(dead.some((d) => d.payload?.body?.data?.link === "a\\u0000b")).toBe(true);
      expect(h.smtp.mails.filter((m) => m.to.includes("amqp1@example.com"))).toHaveLength(1);
      expect(h.smtp.mails.some((m) => m.to.includes("amqp3@example.com"))).toBe(false);
    } finally {
      await raw.close();
    }
  });

  test("copies of one event message taken at once (a republished outbox row, a broker redelivery): one e-mail", async () => {
    await h.stopWorker();
    const raw = new AMQPClient(h.app.config.amqpUrl!);
    await raw.connect();
    try {
      const res = await h.request("/api/v1/events", {
        method: "POST",
        json: { event: "order.shipped", to: [{ user_id: "copy1", email: "copy1@example.com", name: "Dee" }], template: "welcome", channels: ["email"], data: { link: "L1" } },
      });
      expect(res.status).toBe(202);
      const { id } = (await res.json()) as { id: string };
      const [row] = await h.db.sql`SELECT payload FROM notifications WHERE id = ${id}`;
      // The same event again under an id not stored yet (the broker confirmed it before the
      // gateway's INSERT): every copy tries to store it first.
      const unstored = Bun.randomUUIDv7();
      const payload2 = { ...row!.payload, notification_id: unstored, to: [{ user_id: "copy2", email: "copy2@example.com", name: "Dan" }] };
      const ch = await raw.channel();
      await ch.confirmSelect();
      for (let i = 0; i < 4; i++) {
        await ch.basicPublish(EXCHANGES.events.name, "order.shipped", JSON.stringify(row!.payload), { messageId: id, deliveryMode: 2, contentType: "application/json", headers: { [NOTIFICATION_HEADER]: id } });
        await ch.basicPublish(EXCHANGES.events.name, "order.shipped", JSON.stringify(payload2), { messageId: unstored, deliveryMode: 2, contentType: "application/json", headers: { [NOTIFICATION_HEADER]: unstored } });
      }
      await ch.close();
      await h.startWorker();
      for (const nid of [id, unstored]) {
        await waitFor(async () => (await notification(nid)).status === "delivered", { what: `${nid} delivered` });
        expect((await notification(nid)).deliveries).toHaveLength(1);
      }
      expect(h.smtp.mails.filter((m) => m.to.includes("copy1@example.com"))).toHaveLength(1);
      expect(h.smtp.mails.filter((m) => m.to.includes("copy2@example.com"))).toHaveLength(1);
    } finally {
      await raw.close();
      await h.startWorker();
    }
  });

  test("GET /notifications: newest first, filtered by status and event, paged; bad filters are 422 naming them", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await h.request("/api/v1/events", { method: "POST", json: { event: "list.probe", to: [{ user_id: `lp${i}`, email: `lp${i}@example.com` }], channels: ["email"], title: "t", body: "b" } });
      expect(res.status).toBe(202);
      ids.push(((await res.json()) as { id: string }).id);
    }
    const list = async (q: string) => (await (await h.request(`/api/v1/notifications?${q}`)).json()) as { items: Array<{ id: string; event: string; status: string }>; next_cursor: string | null };
    const all = await list("event=list.probe");
    expect(all.items.map((n) => n.id)).toEqual([...ids].reverse());
    expect(all.items[0]).toMatchObject({ event: "list.probe" });
    expect(Object.keys(all.items[0]!).sort()).toEqual(["created_at", "event", "id", "send_at", "status"]);
    const first = await list("event=list.probe&limit=2");
    expect(first.items.map((n) => n.id)).toEqual([ids[2]!, ids[1]!]);
    const second = await list(`event=list.probe&limit=2&cursor=${first.next_cursor}`);
    expect(second).toEqual({ items: [expect.objectContaining({ id: ids[0] })], next_cursor: null });
    await waitFor(async () => (await list("event=list.probe&status=delivered")).items.length === 3, { what: "three delivered" });
    expect((await list("event=list.probe&status=failed")).items).toEqual([]);

    for (const [q, path] of [["status=done", "status"], ["limit=0", "limit"], ["cursor=bm90LWEtdXVpZA", "cursor"], ["event=", "event"]] as const) {
      const r = await h.request(`/api/v1/notifications?${q}`);
      expect(r.status).toBe(422);
      expect(((await r.json()) as any).error.details[0].path).toBe(path);
    }
    const keyRes = await h.request("/api/v1/api-keys", { method: "POST", json: { name: "writer", scopes: ["events:write"] } });
    const { key } = (await keyRes.json()) as { key: string };
    expect((await h.request("/api/v1/notifications", { key })).status).toBe(403);
    expect((await h.request("/api/v1/notifications", { key: null })).status).toBe(401);
  });

  test("authentication and scopes", async () => {
    const noKey = await h.request("/api/v1/events", { method: "POST", key: null, json: {} });
    expect(noKey.status).toBe(401);
    expect(((await noKey.json()) as any).error.code).toBe("UNAUTHENTICATED");
    const wrong = await h.request("/api/v1/events", { method: "POST", key: "nk_bogus_key", json: {} });
    expect(wrong.status).toBe(401);
    const created = await h.request("/api/v1/api-keys", { method: "POST", json: { name: "reader", scopes: ["notifications:read"] } });
    expect(created.status).toBe(201);
    const { key, id } = (await created.json()) as { key: string; id: string };
    const forbidden = await h.request("/api/v1/events", { method: "POST", key, json: { event: "x", to: ["u1"], template: "welcome", channels: ["email"] } });
    expect(forbidden.status).toBe(403);
    const adminOnly = await h.request("/api/v1/api-keys", { key });
    expect(adminOnly.status).toBe(403);
    const list = (await (await h.request("/api/v1/api-keys")).json()) as any;
    expect(list.items.some((k: any) => k.id === id && !("key" in k) && !("key_hash" in k))).toBe(true);
    expect((await h.request(`/api/v1/api-keys/${id}`, { method: "DELETE" })).status).toBe(204);
    // Revocation reaches this gateway's cache within KEY_CACHE_MS (5 s).
    await waitFor(async () => (await h.request("/api/v1/notifications/00000000-0000-0000-0000-000000000000", { key })).status === 401, { timeoutMs: 8000 });
    expect((await h.request("/livez", { key: null })).status).toBe(200);
  });

  test("idempotent replay returns the first response; a different body is 422", async () => {
    const body = { event: "receipt", to: [{ user_id: "u9", email: "carol@example.com", name: "Carol" }], template: "welcome", channels: ["email"], data: { link: "R" } };
    const first = await h.request("/api/v1/events", { method: "POST", json: body, headers: { "Idempotency-Key": "order-1" } });
    expect(first.status).toBe(202);
    const a = (await first.json()) as { id: string };
    const again = await h.request("/api/v1/events", { method: "POST", json: body, headers: { "Idempotency-Key": "order-1" } });
    expect(again.status).toBe(202);
    expect(again.headers.get("Idempotent-Replayed")).toBe("true");
    expect(((await again.json()) as { id: string }).id).toBe(a.id);
    const different = await h.request("/api/v1/events", { method: "POST", json: { ...body, data: { link: "other" } }, headers: { "Idempotency-Key": "order-1" } });
    expect(different.status).toBe(422);
    expect(((await different.json()) as any).error.code).toBe("IDEMPOTENCY_MISMATCH");
    const inBody = await h.request("/api/v1/events", { method: "POST", json: { ...body, idempotency_key: "order-2" } });
    const b = (await inBody.json()) as { id: string };
    const inBodyAgain = await h.request("/api/v1/events", { method: "POST", json: { ...body, idempotency_key: "order-2" } });
    expect(((await inBodyAgain.json()) as { id: string }).id).toBe(b.id);
    await waitFor(() => h.smtp.mails.filter((m) => m.to.includes("carol@example.com")).length >= 2);
    await waitFor(async () => (await notification(b.id)).status === "delivered");
    expect(h.smtp.mails.filter((m) => m.to.includes("carol@example.com"))).toHaveLength(2);
  });

  test("an idempotency key older than 24 h is free again", async () => {
    const body = { event: "x", to: [{ user_id: "i1", email: "i1@example.com" }], title: "t", body: "b", channels: ["email"] };
    const first = (await (await h.request("/api/v1/events", { method: "POST", json: body, headers: { "Idempotency-Key": "old-1" } })).json()) as { id: string };
    await h.db.sql`UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old-1'`;
    const again = await h.request("/api/v1/events", { method: "POST", json: { ...body, body: "other" }, headers: { "Idempotency-Key": "old-1" } });
    expect(again.status).toBe(202);
    expect(again.headers.get("Idempotent-Replayed")).toBeNull();
    expect(((await again.json()) as { id: string }).id).not.toBe(first.id);
  });

  test("SMTP 421 then 250: retried through the delay queue and delivered once", async () => {
    let refused = 0;
    h.smtp.respond = ({ to }) => (to.includes("dave@example.com") && refused++ === 0 ? { code: 421, message: "try again later" } : undefined);
    const res = await h.request("/api/v1/events", { method: "POST", json: { event: "x", to: [{ user_id: "u10", email: "dave@example.com", name: "Dave" }], template: "welcome", channels: ["email"], data: { link: "D" } } });
    const { id } = (await res.json()) as { id: string };
    const n = await waitFor(async () => {
      const n = await notification(id);
      return n.status === "delivered" ? n : undefined;
    }, { timeoutMs: 20_000, what: "delivered after retry" });
    h.smtp.respond = undefined;
    expect(refused).toBeGreaterThanOrEqual(2);
    expect(n.deliveries[0]).toMatchObject({ status: "sent", attempts: 2 });
    expect(h.smtp.mails.filter((m) => m.to.includes("dave@example.com"))).toHaveLength(1);
  });

  test("SMTP 550: failed at once, no retry", async () => {
    let calls = 0;
    h.smtp.respond = ({ to }) => (to.includes("erin@example.com") ? (calls++, { code: 550, message: "no such user" }) : undefined);
    const res = await h.request("/api/v1/events", { method: "POST", json: { event: "x", to: [{ user_id: "u11", email: "erin@example.com" }], template: "welcome", channels: ["email"], data: { link: "E", name: "Erin" } } });
    const { id } = (await res.json()) as { id: string };
    const n = await waitFor(async () => {
      const n = await notification(id);
      return n.status === "failed" ? n : undefined;
    });
    h.smtp.respond = undefined;
    expect(n.deliveries[0].status).toBe("failed");
    expect(n.deliveries[0].attempts).toBe(1);
    expect(n.deliveries[0].error).toContain("550");
    expect(calls).toBe(1);
  });

  test("a missing template variable fails the delivery with a clear error, never 'undefined'", async () => {
    const res = await h.request("/api/v1/events", { method: "POST", json: { event: "x", to: [{ user_id: "u12", email: "frank@example.com" }], template: "welcome", channels: ["email"], data: {} } });
    const { id } = (await res.json()) as { id: string };
    const n = await waitFor(async () => {
      const n = await notification(id);
      return n.status === "failed" ? n : undefined;
    });
    expect(n.deliveries[0].error).toMatch(/link/);
    expect(h.smtp.mails.some((m) => m.to.includes("frank@example.com"))).toBe(false);
  });

  test("seed endpoints: notices/send, notices/{id}, notifications/{channel}", async () => {
    await h.request("/api/v1/users/s1", { method: "PUT", json: { email: "s1@example.com", name: "S1" } });
    await h.request("/api/v1/users/s2", { method: "PUT", json: { email: "s2@example.com", name: "S2" } });
    const sent = await h.request("/api/v1/notices/send", { method: "POST", json: { app: "auth", event: "registration", notice_method: ["email"], template: "welcome", payload: { user_id: "s1", link: "N" } } });
    expect(sent.status).toBe(202);
    const { notice_id } = (await sent.json()) as { notice_id: string };
    const status = await waitFor(async () => {
      const s = (await (await h.request(`/api/v1/notices/${notice_id}`)).json()) as any;
      return s.notice_status === "done" ? s : undefined;
    });
    expect(status.notice_id).toBe(notice_id);
    const ch = await h.request("/api/v1/notifications/email", { method: "POST", json: { template_id: "welcome", user_ids: "s1, s2", link: "M" } });
    expect(ch.status).toBe(202);
    await waitFor(() => h.smtp.mails.filter((m) => m.text.includes(": M")).length === 2);
  });

  test("cancel a scheduled notification", async () => {
    const at = new Date(Date.now() + 3600_000).toISOString();
    const res = await h.request("/api/v1/events", { method: "POST", json: { event: "later", to: ["u1"], template: "welcome", channels: ["email"], send_at: at, data: { link: "L" } } });
    const body = (await res.json()) as { id: string; status: string };
    expect(body.status).toBe("scheduled");
    expect((await h.request(`/api/v1/notifications/${body.id}`, { method: "DELETE" })).status).toBe(200);
    expect((await notification(body.id)).status).toBe("cancelled");
    expect((await h.request(`/api/v1/notifications/${body.id}`, { method: "DELETE" })).status).toBe(409);
  });

  test("health, metrics and OpenAPI", async () => {
    const ready = await h.request("/readyz", { key: null });
    expect(ready.status).toBe(200);
    const r = (await ready.json()) as any;
    expect(r.checks.database.ok).toBe(true);
    expect(r.checks.queue.ok).toBe(true);
    const m = await (await h.request("/metrics", { key: null })).text();
    expect(m).toContain("notify_events_accepted_total");
    expect(m).toMatch(/notify_deliveries_total\{channel="email",outcome="sent"\} \d+/);
    const doc = (await (await h.request("/api/openapi.json", { key: null })).json()) as any;
    expect(doc.paths["/api/v1/events"].post.requestBody.content["application/json"].schema.properties.event).toBeDefined();
    const docs = await h.request("/api/docs", { key: null });
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain("openapi.json");
  });
});
