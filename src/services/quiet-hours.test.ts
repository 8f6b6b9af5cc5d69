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
  test("on the nights the clocks change, the wait ends at the local end time", () => {
    // Berlin, 29 March 2026: 02:00 CET → 03:00 CEST. 23:00 CET (22:00Z) until 08:00 CEST (06:00Z): 7 h, not 9.
    expect(quietUntil(night, "Europe/Berlin", new Date("2026-03-28T22:00:00Z"))?.toISOString()).toBe("2026-03-29T06:00:00.000Z");
    // 25 October 2026: 03:00 CEST → 02:00 CET. 23:00 CEST (21:00Z) until 08:00 CET (07:00Z): 10 h.
    expect(quietUntil(night, "Europe/Berlin", new Date("2026-10-24T21:00:00Z"))?.toISOString()).toBe("2026-10-25T07:00:00.000Z");
    // An end inside the skipped hour (02:30 does not exist on 29 March): the hour after it, 03:30 CEST.
    expect(quietUntil({ start: "01:00", end: "02:30" }, "Europe/Berlin", new Date("2026-03-29T00:30:00Z"))?.toISOString()).toBe("2026-03-29T01:30:00.000Z");
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
