/**
 * Authentication of services and admins: `Authorization: Bearer <api key>`.
 * Keys are looked up by sha256 and cached for a few seconds; revocation takes effect on every
 * gateway within KEY_CACHE_MS.
 */
import { timingSafeEqual } from "node:crypto";
import { createMiddleware } from "hono/factory";
import { AppError } from "../runtime/errors.ts";
import type { Scope } from "../schemas/api-key.ts";
import { hashKey, type ApiKeyRepo } from "../store/api-keys.ts";
import type { Env } from "./env.ts";

export interface Principal {
  type: "api_key" | "admin" | "user";
  id: string;
  name: string;
  scopes: Scope[];
}

/** Revocation reaches every gateway within this time; a lookup per request would cost a query each. */
export const KEY_CACHE_MS = 5_000;

export function createKeyAuthenticator(deps: { apiKeys: ApiKeyRepo; adminKey?: string }) {
  const cache = new Map<string, { principal: Principal | null; until: number }>();
  const adminHash = deps.adminKey ? hashKey(deps.adminKey) : undefined;
  return async function authenticate(token: string): Promise<Principal | null> {
    const hash = hashKey(token);
    if (adminHash && timingSafeEqual(hash, adminHash)) return { type: "admin", id: "bootstrap-admin", name: "NOTIFY_ADMIN_KEY", scopes: ["admin"] };
    const k = hash.toString("base64");
    const hit = cache.get(k);
    if (hit && hit.until > Date.now()) return hit.principal;
    const rec = await deps.apiKeys.findActiveByHash(hash);
    const principal: Principal | null = rec ? { type: "api_key", id: rec.id, name: rec.name, scopes: rec.scopes } : null;
    if (cache.size > 10_000) cache.clear();
    cache.set(k, { principal, until: Date.now() + KEY_CACHE_MS });
    return principal;
  };
}

export type KeyAuthenticator = ReturnType<typeof createKeyAuthenticator>;

export function bearerToken(header: string | undefined): string | undefined {
  const m = header?.match(/^Bearer\s+(\S+)\s*$/i);
  return m?.[1];
}

export function hasScope(p: Principal, scope: Scope): boolean {
  return p.scopes.includes("admin") || p.scopes.includes(scope);
}

/** Requires an API key carrying `scope` (admin carries every scope). */
export function requireScope(scope: Scope) {
  return createMiddleware<Env>(async function requireScopeMiddleware(c, next) {
    const principal = await c.var.authenticate();
    if (!principal || principal.type === "user") throw new AppError("UNAUTHENTICATED", "a valid API key is required (Authorization: Bearer <key>)");
    if (!hasScope(principal, scope)) throw new AppError("FORBIDDEN", `this key lacks the ${scope} scope`);
    await next();
  });
}
