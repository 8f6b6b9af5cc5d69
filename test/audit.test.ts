/**
 * The audit log end to end: API calls and deliveries become stored, queryable, chained records;
 * only audit:read may read them; a hand-edited record is named by `notify audit verify` (the
 * compiled binary); delivery does not wait for the audit role.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { auditHooks, auditHttpExtension, startAuditRole } from "../src/roles/audit.ts";
import { mergeExtensions, realtimeExtensions } from "../src/realtime/extensions.ts";
import "../src/roles/registry.ts"; // fills the GraphQL hooks (audit, campaigns)
import { ensureBinary, runBinary } from "./support/binary.ts";
import { createHarness, type Harness } from "./support/harness.ts";
import { haveServices, waitFor } from "./support/services.ts";

describe.skipIf(!(await haveServices))("audit", () => {
  let h: Harness;
  let stopAudit: (() => Promise<void>) | undefined;
  const audit = async (query: string, key?: string) => h.request(`/api/v1/audit?${query}`, { key });
  const items = async (query: string) => ((await (await audit(query)).json()) as { items: any[] }).items;

  beforeAll(async () => {
    h = await createHarness({ ext: (app) => mergeExtensions([auditHttpExtension(app), realtimeExtensions(app)]), workerOptions: (app) => ({ hooks: auditHooks(app) }) });
  });
  afterAll(async () => {
    await stopAudit?.();
    await h?.close();
  });

  test("delivery does not wait for the audit role: it flows while audit is down, records wait in RabbitMQ", async () => {
    const t = { name: "Welcome", variants: [{ channel: "email", subject: "Hi {{ name }}", text: "v1 {{ name }}" }] };
    expect((await h.request("/api/v1/templates/welcome", { method: "PUT", json: t })).status).toBe(201);
    const res = await h.request("/api/v1/events", { method: "POST", json: { event: "user.registered", to: [{ user_id: "u123", email: "u123@example.com", name: "U" }], template: "welcome", channels: ["email"] } });
    expect(res.status).toBe(202);
    await waitFor(() => h.smtp.mails.some((m) => m.to.includes("u123@example.com")), { what: "mail with no audit role running" });
    await h.app.audit.flush();
    const held = await h.db.sql`SELECT count(*)::int AS n FROM audit_records`;
    expect(held[0]!.n).toBe(0);
    stopAudit = await startAuditRole(h.app);
    await waitFor(async () => (await items("action=delivery.sent")).length >= 1, { what: "records stored once the audit role runs" });
  });

  test("who changed the template and what did it say before", async () => {
    const t2 = { name: "Welcome", variants: [{ channel: "email", subject: "Hello {{ name }}", text: "v2 {{ name }}" }] };
    expect((await h.request("/api/v1/templates/welcome", { method: "PUT", json: t2 })).status).toBe(200);
    const [rec] = await waitFor(async () => {
      const r = await items("target=template:welcome&action=template.updated");
      return r.length ? r : undefined;
    });
    expect(rec.actor).toMatchObject({ type: "admin" });
    expect(rec.details.before.variants[0].text).toBe("v1 {{ name }}");
    expect(rec.details.after.variants[0].text).toBe("v2 {{ name }}");
    expect(rec.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(rec.request_id).toBeTruthy();
  });

  test("which key sent events, and what happened to u123's e-mail", async () => {
    const key = (await (await h.request("/api/v1/api-keys", { method: "POST", json: { name: "night-batch", scopes: ["events:write"] } })).json()) as { id: string; key: string };
    for (let i = 0; i < 3; i++) {
      const r = await h.request("/api/v1/events", { key: key.key, method: "POST", json: { event: "x", to: [{ user_id: `n${i}`, email: `n${i}@example.com` }], title: "t", body: "b", channels: ["email"] } });
      expect(r.status).toBe(202);
    }
    const accepted = await waitFor(async () => {
      const r = await items(`actor=api_key:${key.id}&action=event.accepted`);
      return r.length === 3 ? r : undefined;
    });
    expect(accepted[0].target.type).toBe("notification");
    const created = await items(`target=api_key:${key.id}`);
    expect(created[0].action).toBe("api_key.created");
    expect(JSON.stringify(created[0])).not.toContain(key.key);
    const sent = await items("action=delivery.sent");
    expect(sent.some((r) => r.details.user_id === "u123" && r.details.channel === "email")).toBe(true);
    // Personal data is not copied by default.
    expect(JSON.stringify(sent)).not.toContain("u123@example.com");
  });

  test("the GraphQL equivalent: audit(actor, action, target, first, after) with the same filters and scope", async () => {
    const gql = async (query: string, key?: string) => (await h.request("/graphql", { method: "POST", key, json: { query } })).json() as Promise<any>;
    const r = await gql(`{ audit(target: "template:welcome", first: 1) { items next_cursor } }`);
    expect(r.errors).toBeUndefined();
    expect(r.data.audit.items).toHaveLength(1);
    expect(r.data.audit.items[0].action).toBe("template.updated");
    expect(r.data.audit.next_cursor).toBeTruthy();
    const next = await gql(`{ audit(target: "template:welcome", first: 1, after: "${r.data.audit.next_cursor}") { items } }`);
    expect(next.data.audit.items[0].action).toBe("template.created");
    const writer = (await (await h.request("/api/v1/api-keys", { method: "POST", json: { name: "gw", scopes: ["events:write"] } })).json()) as { key: string };
    const denied = await gql(`{ audit { items } }`, writer.key);
    expect(denied.errors[0].extensions.code).toBe("FORBIDDEN");
  });

  test("authentication failures are recorded; only audit:read may read", async () => {
    expect((await h.request("/api/v1/events", { method: "POST", key: "nk_wrong", json: {} })).status).toBe(401);
    await waitFor(async () => (await items("action=auth.failed")).length >= 1, { what: "auth.failed record" });
    const writer = (await (await h.request("/api/v1/api-keys", { method: "POST", json: { name: "w", scopes: ["events:write"] } })).json()) as { key: string };
    expect((await audit("", writer.key)).status).toBe(403);
    expect((await audit("", "nk_nope")).status).toBe(401);
    const reader = (await (await h.request("/api/v1/api-keys", { method: "POST", json: { name: "officer", scopes: ["audit:read"] } })).json()) as { key: string };
    expect((await audit("", reader.key)).status).toBe(200);
    expect((await h.request("/api/v1/templates", { key: reader.key })).status).toBe(403);
    const bad = await audit("since=yesterday");
    expect(bad.status).toBe(422);
  });

  test("pagination, NDJSON export, and verify on the compiled binary names a hand-edited record", async () => {
    const first = (await (await audit("limit=2")).json()) as { items: any[]; next_cursor: string };
    expect(first.items).toHaveLength(2);
    const second = (await (await audit(`limit=2&cursor=${encodeURIComponent(first.next_cursor)}`)).json()) as { items: any[] };
    expect(second.items[0].seq).toBeLessThan(first.items[1].seq);
    const ndjson = await (await h.request("/api/v1/audit/export")).text();
    const lines = ndjson.trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.length).toBeGreaterThan(5);
    expect(lines[1].seq).toBeGreaterThan(lines[0].seq);

    await ensureBinary();
    const env = { NOTIFY_DATABASE_URL: h.db.url };
    const ok = await runBinary(["audit", "verify"], env);
    expect(ok.code).toBe(0);
    const [victim] = await h.db.sql`SELECT seq, id FROM audit_records ORDER BY seq OFFSET 3 LIMIT 1`;
    await h.db.sql`UPDATE audit_records SET details = '{"forged": true}'::jsonb WHERE seq = ${victim!.seq}`;
    const broken = await runBinary(["audit", "verify"], env);
    expect(broken.code).toBe(1);
    expect(broken.stdout + broken.stderr).toContain(String(victim!.id));
  });
});
