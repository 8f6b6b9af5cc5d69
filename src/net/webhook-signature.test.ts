import { describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { generateWebhookSecret, signWebhook, verifyWebhook, WebhookVerificationError } from "./webhook-signature.ts";

// Independent computation: the key is the base64-decoded part of the secret, the content is
// "id.timestamp.body", the header is "v1," + base64(HMAC-SHA256).
const KEY = Buffer.from("notify test key, 32 bytes long!!");
const SECRET = `whsec_${KEY.toString("base64")}`;
const ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
const TS = 1_700_000_000;
const BODY = '{"event":"user.registered","to":["u1"],"data":{"name":"Zoë"}}';
const EXPECTED = `v1,${createHmac("sha256", KEY).update(`${ID}.${TS}.${BODY}`).digest("base64")}`;

const reason = (fn: () => void) => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(WebhookVerificationError);
    return (e as WebhookVerificationError).reason;
  }
  return "verified";
};

describe("signWebhook", () => {
  test("matches an independently computed HMAC", () => {
    expect(signWebhook({ id: ID, timestamp: TS, body: BODY, secret: SECRET })).toEqual({
      "webhook-id": ID,
      "webhook-timestamp": String(TS),
      "webhook-signature": EXPECTED,
    });
  });

  test("bytes and string bodies sign the same; the whsec_ prefix is optional", () => {
    const fromBytes = signWebhook({ id: ID, timestamp: TS, body: new TextEncoder().encode(BODY), secret: KEY.toString("base64") });
    expect(fromBytes["webhook-signature"]).toBe(EXPECTED);
  });

  test("the Standard Webhooks reference vector", () => {
    // From the standard-webhooks libraries' test suite.
    const h = signWebhook({
      id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
      timestamp: 1614265330,
      body: '{"test": 2432232314}',
      secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    });
    expect(h["webhook-signature"]).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  });

  test("rejects a bad secret, a fractional timestamp and an id that would break the header", () => {
    expect(() => signWebhook({ id: ID, timestamp: TS, body: BODY, secret: "whsec_not base64!" })).toThrow(TypeError);
    expect(() => signWebhook({ id: ID, timestamp: 1.5, body: BODY, secret: SECRET })).toThrow(TypeError);
    expect(() => signWebhook({ id: "a\r\nb", timestamp: TS, body: BODY, secret: SECRET })).toThrow();
  });

  test("generated secrets have the whsec_ format and work", () => {
    const secret = generateWebhookSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const now = Math.floor(Date.now() / 1000);
    expect(reason(() => verifyWebhook(signWebhook({ id: "x", timestamp: now, body: "{}", secret }), "{}", secret))).toBe("verified");
  });
});

describe("verifyWebhook", () => {
  const headers = signWebhook({ id: ID, timestamp: TS, body: BODY, secret: SECRET });
  const at = { nowSec: TS + 10 };

  test("round trip, from a plain record or a Headers object", () => {
    expect(reason(() => verifyWebhook(headers, BODY, SECRET, at))).toBe("verified");
    expect(reason(() => verifyWebhook(new Headers(headers), BODY, SECRET, at))).toBe("verified");
  });

  test("tampered body, wrong secret or tampered id fail", () => {
    expect(reason(() => verifyWebhook(headers, BODY.replace("u1", "u2"), SECRET, at))).toBe("NO_MATCHING_SIGNATURE");
    expect(reason(() => verifyWebhook(headers, BODY, generateWebhookSecret(), at))).toBe("NO_MATCHING_SIGNATURE");
    expect(reason(() => verifyWebhook({ ...headers, "webhook-id": "msg_other" }, BODY, SECRET, at))).toBe("NO_MATCHING_SIGNATURE");
  });

  test("timestamps outside the tolerance fail either way; the timestamp is signed", () => {
    expect(reason(() => verifyWebhook(headers, BODY, SECRET, { nowSec: TS + 301 }))).toBe("TIMESTAMP_TOO_OLD");
    expect(reason(() => verifyWebhook(headers, BODY, SECRET, { nowSec: TS - 301 }))).toBe("TIMESTAMP_TOO_NEW");
    expect(reason(() => verifyWebhook(headers, BODY, SECRET, { nowSec: TS + 3600, toleranceSec: 3600 }))).toBe("verified");
    // Replaying an old message with a fresh timestamp does not verify.
    expect(reason(() => verifyWebhook({ ...headers, "webhook-timestamp": String(TS + 1000) }, BODY, SECRET, { nowSec: TS + 1000 }))).toBe("NO_MATCHING_SIGNATURE");
    expect(reason(() => verifyWebhook(headers, BODY, SECRET))).toBe("TIMESTAMP_TOO_OLD"); // real clock, TS is 2023
  });

  test("several signatures (secret rotation): any v1 match passes; other versions are ignored", () => {
    const rotated = `v1a,${EXPECTED.slice(3)} v1,${Buffer.alloc(32).toString("base64")} ${headers["webhook-signature"]}`;
    expect(reason(() => verifyWebhook({ ...headers, "webhook-signature": rotated }, BODY, SECRET, at))).toBe("verified");
    const onlyOther = `v1a,${EXPECTED.slice(3)} v2,${EXPECTED.slice(3)}`;
    expect(reason(() => verifyWebhook({ ...headers, "webhook-signature": onlyOther }, BODY, SECRET, at))).toBe("NO_MATCHING_SIGNATURE");
  });

  test("missing or malformed headers fail", () => {
    expect(reason(() => verifyWebhook({ "webhook-id": ID }, BODY, SECRET, at))).toBe("MISSING_HEADERS");
    expect(reason(() => verifyWebhook({ ...headers, "webhook-timestamp": "soon" }, BODY, SECRET, at))).toBe("INVALID_TIMESTAMP");
    expect(reason(() => verifyWebhook({ ...headers, "webhook-signature": "v1,short" }, BODY, SECRET, at))).toBe("NO_MATCHING_SIGNATURE");
  });
});
