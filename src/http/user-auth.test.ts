/**
 * End-user tokens verified against a JWKS served on loopback (NOTIFY_JWKS_URL): RS256 and ES256 keys
 * of the set are accepted; everything else is refused with a reason that names neither token nor key.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { exportJWK, generateKeyPair, SignJWT, type JWK } from "jose";
import { createUserTokenVerifier } from "./user-auth.ts";

const rsa = await generateKeyPair("RS256");
const ec = await generateKeyPair("ES256");
const stranger = await generateKeyPair("RS256");
const keys: JWK[] = [
  { ...(await exportJWK(rsa.publicKey)), kid: "rsa-1", alg: "RS256", use: "sig" },
  { ...(await exportJWK(ec.publicKey)), kid: "ec-1", alg: "ES256", use: "sig" },
];
let fetches = 0;
const jwks = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch: () => (fetches++, Response.json({ keys })),
});
afterAll(() => jwks.stop(true));

const config = { jwksUrl: `http://127.0.0.1:${jwks.port}/.well-known/jwks.json`, jwtIssuer: "https://id.example", jwtAudience: "notify" };

async function token(key: CryptoKey, alg: string, kid: string, claims: { sub?: string; iss?: string; aud?: string; exp?: number | string } = {}) {
  const jwt = new SignJWT({}).setProtectedHeader({ alg, kid }).setIssuedAt();
  if (claims.sub !== undefined || !("sub" in claims)) jwt.setSubject(claims.sub ?? "u1");
  jwt.setIssuer(claims.iss ?? "https://id.example").setAudience(claims.aud ?? "notify").setExpirationTime(claims.exp ?? "5m");
  return jwt.sign(key);
}

describe("user tokens from a JWKS", () => {
  const verify = createUserTokenVerifier(config)!;

  test("RS256 and ES256 tokens signed by keys of the set are accepted; the key set is fetched once", async () => {
    expect((await verify(await token(rsa.privateKey, "RS256", "rsa-1"))).principal).toMatchObject({ type: "user", id: "u1" });
    expect((await verify(await token(ec.privateKey, "ES256", "ec-1", { sub: "u2" }))).principal.id).toBe("u2");
    await verify(await token(rsa.privateKey, "RS256", "rsa-1"));
    expect(fetches).toBe(1);
  });

  test("refused: a key outside the set, wrong issuer or audience, expired, alg none, HS256 with the public key", async () => {
    const cases: Array<[string, Promise<string>]> = [
      ["no matching key", token(stranger.privateKey, "RS256", "rsa-2")],
      ["bad signature", token(stranger.privateKey, "RS256", "rsa-1")],
      ["claim iss rejected", token(rsa.privateKey, "RS256", "rsa-1", { iss: "https://evil.example" })],
      ["claim aud rejected", token(rsa.privateKey, "RS256", "rsa-1", { aud: "other" })],
      ["expired", token(rsa.privateKey, "RS256", "rsa-1", { exp: Math.floor(Date.now() / 1000) - 60 })],
    ];
    for (const [why, t] of cases) await expect(verify(await t)).rejects.toThrow(`invalid user token: ${why}`);
    const none = `${btoa(JSON.stringify({ alg: "none", kid: "rsa-1" })).replace(/=+$/, "")}.${btoa(JSON.stringify({ sub: "u1", exp: 9e9, iss: config.jwtIssuer, aud: "notify" })).replace(/=+$/, "")}.`;
    await expect(verify(none)).rejects.toThrow("invalid user token");
    // The classic confusion: HS256 "signed" with the RSA public key as the secret.
    const pem = new TextEncoder().encode(JSON.stringify(keys[0]));
    const confused = await new SignJWT({}).setProtectedHeader({ alg: "HS256", kid: "rsa-1" }).setSubject("u1").setIssuer(config.jwtIssuer).setAudience("notify").setExpirationTime("5m").sign(pem);
    await expect(verify(confused)).rejects.toThrow("invalid user token: algorithm not allowed");
  });

  test("a key set that cannot be reached refuses tokens instead of accepting them", async () => {
    const down = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("no", { status: 503 }) });
    try {
      const v = createUserTokenVerifier({ ...config, jwksUrl: `http://127.0.0.1:${down.port}/jwks.json` })!;
      await expect(v(await token(rsa.privateKey, "RS256", "rsa-1"))).rejects.toThrow("invalid user token");
    } finally {
      down.stop(true);
    }
  });
});
