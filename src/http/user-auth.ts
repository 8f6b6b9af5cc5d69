/**
 * End-user authentication: a JWT whose `sub` is the user id (SPEC 3.2). HS256 with
 * NOTIFY_JWT_SECRET, or keys from NOTIFY_JWKS_URL (RS256/ES256). Algorithms are pinned per key
 * source, so a token cannot pick its own (`alg: none`, or HS256 signed with a public key).
 * `exp` is required; `iss`/`aud` are checked when configured.
 */
import { createMiddleware } from "hono/factory";
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from "jose";
import type { Config } from "../config.ts";
import { AppError } from "../runtime/errors.ts";
import type { Principal } from "./auth.ts";
import type { Env } from "./env.ts";

export interface VerifiedUser {
  principal: Principal;
  /** Token expiry, epoch seconds: sockets close when it passes. */
  exp: number;
}

export type UserTokenVerifier = (token: string) => Promise<VerifiedUser>;

/** User ids are the directory's ids; the same bounds as schemas/common.ts Id. */
const SUB = /^[^\s\0\r\n]{1,256}$/;

/**
 * Returns a verifier that throws AppError UNAUTHENTICATED naming why, or undefined when no key
 * source is configured (user tokens are then refused everywhere).
 */
export function createUserTokenVerifier(config: Pick<Config, "jwtSecret" | "jwksUrl" | "jwtIssuer" | "jwtAudience">): UserTokenVerifier | undefined {
  const options = {
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    requiredClaims: ["exp", "sub"],
    // Clocks of the issuer and of gateways drift a little; more would stretch expired tokens.
    clockTolerance: 5,
  };
  let verify: (token: string) => Promise<JWTPayload>;
  if (config.jwtSecret) {
    const key = new TextEncoder().encode(config.jwtSecret);
    verify = async (t) => (await jwtVerify(t, key, { ...options, algorithms: ["HS256"] })).payload;
  } else if (config.jwksUrl) {
    const jwks = createRemoteJWKSet(new URL(config.jwksUrl), { cooldownDuration: 30_000, timeoutDuration: 5_000 });
    verify = async (t) => (await jwtVerify(t, jwks, { ...options, algorithms: ["RS256", "ES256"] })).payload;
  } else {
    return undefined;
  }
  return async function verifyUserToken(token: string): Promise<VerifiedUser> {
    let payload: JWTPayload;
    try {
      payload = await verify(token);
    } catch (err) {
      throw new AppError("UNAUTHENTICATED", `invalid user token: ${reason(err)}`);
    }
    const sub = payload.sub;
    if (typeof sub !== "string" || !SUB.test(sub)) throw new AppError("UNAUTHENTICATED", "invalid user token: sub is not a user id");
    return { principal: { type: "user", id: sub, name: sub, scopes: [] }, exp: payload.exp! };
  };
}

/** A reason a client may see; never the token or the key. */
function reason(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return "expired";
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `claim ${err.claim} ${err.reason === "missing" ? "missing" : "rejected"}`;
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return "algorithm not allowed";
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return "bad signature";
  if (err instanceof joseErrors.JWKSNoMatchingKey) return "no matching key";
  if (err instanceof joseErrors.JWKSTimeout) return "key set unavailable";
  if (err instanceof joseErrors.JOSEError) return "malformed";
  return "malformed";
}

/** True for strings shaped like a JWS compact token (three base64url parts). */
export const looksLikeJwt = (token: string) => /^[\w-]+\.[\w-]+\.[\w-]*$/.test(token);

/**
 * The HttpExtensions.authenticateUser plug: JWT-shaped bearer tokens are verified, anything else is
 * not a user token (null). A bad JWT answers 401 with the reason rather than a generic refusal.
 */
export function createUserAuthenticator(verify: UserTokenVerifier | undefined) {
  return async function authenticateUser(token: string): Promise<Principal | null> {
    if (!verify || !looksLikeJwt(token)) return null;
    return (await verify(token)).principal;
  };
}

/** Requires an end-user JWT; API keys are refused here (they act for services, not for a user). */
export function requireUser() {
  return createMiddleware<Env>(async function requireUserMiddleware(c, next) {
    const principal = await c.var.authenticate();
    if (!principal) throw new AppError("UNAUTHENTICATED", "a user token is required (Authorization: Bearer <jwt>)");
    if (principal.type !== "user") throw new AppError("FORBIDDEN", "this route is for end users: use a user token, not an API key");
    await next();
  });
}
