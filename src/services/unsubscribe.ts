/**
 * Signed one-click unsubscribe tokens: `<payload>.<signature>`, payload = base64url JSON
 * {u: user id, c: category, ch: channel}, signature = HMAC-SHA256 under a key derived from
 * NOTIFY_UNSUBSCRIBE_SECRET (or, without it, from NOTIFY_ADMIN_KEY / NOTIFY_JWT_SECRET, under a
 * label of its own so the derived key cannot be used as either of those). Tokens do not expire:
 * an unsubscribe link in an old e-mail must keep working (RFC 8058 expects that).
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export interface UnsubscribeClaim {
  userId: string;
  category: string;
  channel: string;
}

export interface UnsubscribeSigner {
  sign(claim: UnsubscribeClaim): string;
  /** The claim, or undefined when the token is malformed or its signature does not match. */
  verify(token: string): UnsubscribeClaim | undefined;
}

const LABEL = "notify/unsubscribe/v1";
const MAX_TOKEN = 2048;

/** Undefined when no secret is available: unsubscribe links are then left out of e-mails. */
export function createUnsubscribeSigner(secrets: { unsubscribeSecret?: string; adminKey?: string; jwtSecret?: string }): UnsubscribeSigner | undefined {
  const root = secrets.unsubscribeSecret ?? secrets.adminKey ?? secrets.jwtSecret;
  if (!root) return undefined;
  const key = createHmac("sha256", root).update(LABEL).digest();
  const mac = (payload: string) => createHmac("sha256", key).update(payload).digest();
  return {
    sign(claim) {
      const payload = Buffer.from(JSON.stringify({ u: claim.userId, c: claim.category, ch: claim.channel })).toString("base64url");
      return `${payload}.${mac(payload).toString("base64url")}`;
    },
    verify(token) {
      if (token.length > MAX_TOKEN) return undefined;
      const m = token.match(/^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{43})$/);
      if (!m) return undefined;
      const given = Buffer.from(m[2]!, "base64url");
      const expected = mac(m[1]!);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
      try {
        const body = JSON.parse(Buffer.from(m[1]!, "base64url").toString("utf8")) as { u?: unknown; c?: unknown; ch?: unknown };
        if (typeof body.u !== "string" || typeof body.c !== "string" || typeof body.ch !== "string") return undefined;
        return { userId: body.u, category: body.c, channel: body.ch };
      } catch {
        return undefined;
      }
    },
  };
}
