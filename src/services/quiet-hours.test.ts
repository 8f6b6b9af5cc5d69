import { describe, expect, test } from "bun:test";
import { quietUntil } from "./quiet-hours.ts";
import { createUnsubscribeSigner } from "./unsubscribe.ts";
import { isOptedOut } from "./preferences.ts";

describe("quiet hours", () => {
  const night = { start: "22:00", end: "08:00" };
  test("a window across midnight, in the recipient's time zone", () => {
    // 23:30 in Moscow (UTC+3) is 20:30 UTC.
    const at = new Date("2026-03-10T20:30:15Z");
    expect(quietUntil(night, "Europe/Moscow", at)?.toISOString()).toBe("2026-03-11T05:00:00.000Z");
    expect(quietUntil(night, "UTC", at)).toBeUndefined();
    expect(quietUntil(night, "UTC", new Date("2026-03-10T07:59:30Z"))?.toISOString()).toBe("2026-03-10T08:00:00.000Z");
    expect(quietUntil(night, "UTC", new Date("2026-03-10T08:00:00Z"))).toBeUndefined();
  });
  test("a daytime window", () => {
    const q = { start: "12:00", end: "14:00" };
    expect(quietUntil(q, "UTC", new Date("2026-03-10T13:00:00Z"))?.toISOString()).toBe("2026-03-10T14:00:00.000Z");
    expect(quietUntil(q, "UTC", new Date("2026-03-10T11:59:59Z"))).toBeUndefined();
  });
});

describe("unsubscribe tokens", () => {
  const signer = createUnsubscribeSigner({ unsubscribeSecret: "unsubscribe-secret-0123456789" })!;
  test("round trip; forged, altered or foreign tokens are refused", () => {
    const token = signer.sign({ userId: "u1", category: "news", channel: "email" });
    expect(signer.verify(token)).toEqual({ userId: "u1", category: "news", channel: "email" });
    const [payload, sig] = token.split(".");
    const other = Buffer.from(JSON.stringify({ u: "u2", c: "news", ch: "email" })).toString("base64url");
    expect(signer.verify(`${other}.${sig}`)).toBeUndefined();
    expect(signer.verify(`${payload}.${"A".repeat(43)}`)).toBeUndefined();
    expect(signer.verify("garbage")).toBeUndefined();
    const foreign = createUnsubscribeSigner({ adminKey: "another-admin-key-123456" })!;
    expect(foreign.verify(token)).toBeUndefined();
  });
  test("no secret at all: no signer (links are left out)", () => {
    expect(createUnsubscribeSigner({})).toBeUndefined();
  });
});

test("opt-out matching with wildcards", () => {
  const outs = [{ category: "news", channel: "email" as const }, { category: "*" as const, channel: "sms" as const }];
  expect(isOptedOut(outs, "news", "email")).toBe(true);
  expect(isOptedOut(outs, "news", "telegram")).toBe(false);
  expect(isOptedOut(outs, "billing", "sms")).toBe(true);
  expect(isOptedOut(outs, "billing", "email")).toBe(false);
});
