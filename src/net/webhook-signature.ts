/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com, SPEC 5).
 *
 * Secret format: `whsec_` followed by the base64 of the raw key bytes (we generate 32 random
 * bytes). The HMAC key is the decoded bytes, not the text. The prefix is optional on input, as in
 * the reference libraries, so a receiver can paste either form.
 *
 * Signed content: `${webhook-id}.${webhook-timestamp}.${raw body}`; signature header:
 * `v1,<base64 HMAC-SHA256>`, several space-separated during a secret rotation.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { assertHeaderSafe } from "./headers.ts";

const SECRET_PREFIX = "whsec_";
// The spec's recommendation: five minutes either way absorbs clock skew and queueing delay.
const DEFAULT_TOLERANCE_SEC = 300;
// 256 bits, the strength of HMAC-SHA256 itself; the spec allows 24–64 bytes.
const SECRET_BYTES = 32;

// A type alias, not an interface, so it is assignable to Record<string, string> (fetch/headers inits).
export type WebhookHeaders = {
  "webhook-id": string;
  "webhook-timestamp": string;
  "webhook-signature": string;
};

export type WebhookVerificationReason =
  | "MISSING_HEADERS"
  | "INVALID_TIMESTAMP"
  | "TIMESTAMP_TOO_OLD"
  | "TIMESTAMP_TOO_NEW"
  | "NO_MATCHING_SIGNATURE";

export class WebhookVerificationError extends Error {
  override readonly name = "WebhookVerificationError";
  constructor(readonly reason: WebhookVerificationReason, message: string) {
    super(message);
  }
}

/** A fresh `whsec_…` secret to hand to a webhook receiver. */
export function generateWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(SECRET_BYTES).toString("base64");
}

function secretKey(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) throw new TypeError("webhook secret must be whsec_<base64>");
  const key = Buffer.from(encoded, "base64");
  if (key.length === 0) throw new TypeError("webhook secret is empty");
  return key;
}

function hmac(key: Buffer, id: string, timestamp: string, body: string | Uint8Array): Buffer {
  return createHmac("sha256", key).update(`${id}.${timestamp}.`).update(body).digest();
}

/** The three headers for one delivery. `timestamp` is Unix seconds; `body` is the exact bytes sent. */
export function signWebhook(input: { id: string; timestamp: number; body: string | Uint8Array; secret: string }): WebhookHeaders {
  if (!Number.isSafeInteger(input.timestamp) || input.timestamp < 0) throw new TypeError("timestamp must be whole Unix seconds");
  assertHeaderSafe("webhook-id", input.id);
  const timestamp = String(input.timestamp);
  const signature = hmac(secretKey(input.secret), input.id, timestamp, input.body).toString("base64");
  return { "webhook-id": input.id, "webhook-timestamp": timestamp, "webhook-signature": `v1,${signature}` };
}

function header(headers: Headers | Record<string, string | undefined>, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

/**
 * Throws `WebhookVerificationError` unless one `v1` signature matches and the timestamp is within
 * `toleranceSec` of now. Comparison is constant-time.
 */
export function verifyWebhook(
  headers: Headers | Record<string, string | undefined>,
  body: string | Uint8Array,
  secret: string,
  opts: { toleranceSec?: number; nowSec?: number } = {},
): void {
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!id || !timestamp || !signatures) throw new WebhookVerificationError("MISSING_HEADERS", "webhook-id, webhook-timestamp and webhook-signature are required");
  if (!/^[0-9]{1,12}$/.test(timestamp)) throw new WebhookVerificationError("INVALID_TIMESTAMP", "webhook-timestamp is not Unix seconds");

  const tolerance = opts.toleranceSec ?? DEFAULT_TOLERANCE_SEC;
  const now = opts.nowSec ?? Math.floor(Date.now() / 1000);
  const ts = Number(timestamp);
  if (ts < now - tolerance) throw new WebhookVerificationError("TIMESTAMP_TOO_OLD", "webhook-timestamp is too old");
  if (ts > now + tolerance) throw new WebhookVerificationError("TIMESTAMP_TOO_NEW", "webhook-timestamp is in the future");

  const expected = hmac(secretKey(secret), id, timestamp, body);
  let matched = false;
  for (const entry of signatures.split(" ")) {
    const comma = entry.indexOf(",");
    if (comma < 0 || entry.slice(0, comma) !== "v1") continue; // other schemes (v1a, …) are not ours
    const candidate = Buffer.from(entry.slice(comma + 1), "base64");
    // Check every entry, no early exit: the time taken does not depend on which one matched.
    if (candidate.length === expected.length && timingSafeEqual(candidate, expected)) matched = true;
  }
  if (!matched) throw new WebhookVerificationError("NO_MATCHING_SIGNATURE", "no webhook-signature matches");
}
