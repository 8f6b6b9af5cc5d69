import { describe, expect, test } from "bun:test";
import { canonicalJson, chainRecords, recordCanonicalJson, GENESIS_HASH, parseAuditRecord, parseRef, redactDetails, REDACTED_PII } from "./record.ts";
import { makeRecord } from "./store.contract.ts";

describe("redactDetails", () => {
  const details = {
    before: { subject: "Hi", text: "Dear Ann, your code is 1234", html: "<p>..</p>", password: "hunter2" },
    after: { subject: "Hello", variants: [{ channel: "email", body: "Hello Ann", api_key: "k_live_1" }] },
    recipient: { user_id: "u1", email: "ann@example.com", phone: "+100", telegram_chat_id: "42" },
    headers: { Authorization: "Bearer x", "x-request-id": "r1" },
    token: "t", client_secret: "s", key: "k", idempotency_key: "reg-u1", template_key: "welcome",
    reason: "quiet hours",
  };

  test("secrets are never copied, whatever the option", () => {
    for (const includePii of [false, true]) {
      const out = JSON.stringify(redactDetails(details, { includePii }));
      for (const secret of ["hunter2", "k_live_1", "Bearer x", '"t"', '"s"', '"k"']) expect(out).not.toContain(secret);
      expect(out).toContain("reg-u1");
      expect(out).toContain("welcome");
      expect(out).toContain("quiet hours");
      expect(out).toContain("x-request-id");
    }
  });

  test("message bodies and contact data only when the operator enables them", () => {
    const off = redactDetails(details) as typeof details;
    expect(off.before.text).toBe(REDACTED_PII);
    expect(off.before.html).toBe(REDACTED_PII);
    expect(off.before.subject).toBe(REDACTED_PII);
    expect(off.after.variants[0]!.body).toBe(REDACTED_PII);
    expect(off.recipient).toEqual({ user_id: "u1", email: REDACTED_PII, phone: REDACTED_PII, telegram_chat_id: REDACTED_PII });
    const on = redactDetails(details, { includePii: true }) as typeof details;
    expect(on.before.text).toBe("Dear Ann, your code is 1234");
    expect(on.recipient.email).toBe("ann@example.com");
    expect(on.before).not.toHaveProperty("password");
  });

  test("authored content (a template's before/after) keeps its bodies, not contact data or secrets", () => {
    const out = redactDetails(details, { authoredContent: true }) as typeof details;
    expect(out.before.text).toBe("Dear Ann, your code is 1234");
    expect(out.after.variants[0]!.body).toBe("Hello Ann");
    expect(out.recipient.email).toBe(REDACTED_PII);
    expect(out.before).not.toHaveProperty("password");
  });
});

describe("record", () => {
  test("canonical JSON ignores key order", () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null }, u: undefined })).toBe('{"a":{"c":null,"d":[1,{"x":1,"y":2}]},"b":1}');
  });

  test("the fast record serialiser equals the generic canonical JSON", () => {
    for (const over of [{}, { request_id: undefined }, { actor: { type: "system" as const, id: "s" } }, { details: {} }]) {
      const [r] = chainRecords([makeRecord(over)], 41, GENESIS_HASH);
      const { hash: _h, ...unhashed } = r!;
      expect(recordCanonicalJson(unhashed)).toBe(canonicalJson(unhashed));
    }
  });

  test("the chain links each record to the previous hash and covers every field", () => {
    const [a, b] = chainRecords([makeRecord(), makeRecord()], 0, GENESIS_HASH);
    expect(a!.seq).toBe(1);
    expect(a!.prev_hash).toBe(GENESIS_HASH);
    expect(b!.prev_hash).toBe(a!.hash);
    const [again] = chainRecords([{ ...makeRecord(), ...stripStore(a!) }], 0, GENESIS_HASH);
    expect(again!.hash).toBe(a!.hash);
    const [edited] = chainRecords([{ ...stripStore(a!), outcome: "failure" }], 0, GENESIS_HASH);
    expect(edited!.hash).not.toBe(a!.hash);
  });

  test("the schema accepts a record and refuses a malformed one with its path", () => {
    const r = makeRecord();
    expect(parseAuditRecord(JSON.parse(JSON.stringify(r)))).toMatchObject({ ok: true });
    const bad = parseAuditRecord({ ...r, actor: { type: "robot", id: "x" } });
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.error).toStartWith("actor.type");
    expect(parseAuditRecord({ ...r, action: "Bad Action" }).ok).toBe(false);
    expect(parseAuditRecord({ ...r, id: "not-a-uuid" }).ok).toBe(false);
  });

  test("refs: type:id or a bare id", () => {
    expect(parseRef("template:welcome")).toEqual({ whole: "template:welcome", typed: { type: "template", id: "welcome" } });
    expect(parseRef("u1")).toEqual({ whole: "u1" });
    expect(parseRef("urn:x:y").typed).toEqual({ type: "urn", id: "x:y" });
  });
});

function stripStore<T extends { seq: number; prev_hash: string; hash: string }>(r: T): Omit<T, "seq" | "prev_hash" | "hash"> {
  const { seq: _s, prev_hash: _p, hash: _h, ...rest } = r;
  return rest;
}
