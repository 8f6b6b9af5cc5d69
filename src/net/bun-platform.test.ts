/**
 * What pinned-transport.ts relies on from the pinned Bun's node:http. If an upgrade changes any of
 * these, this file fails before the SSRF guard silently weakens.
 */
import { afterAll, expect, test } from "bun:test";
import { request, type RequestOptions } from "node:http";
import type { LookupFunction } from "node:net";

const seen: string[] = [];
const peer = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (r) => (seen.push(`peer ${r.headers.get("host")}`), new Response("peer")) });
const proxy = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => (seen.push("proxy"), new Response("proxy")) });
afterAll(() => {
  peer.stop(true);
  proxy.stop(true);
});

function get(opts: RequestOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(opts, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve(body));
    });
    req.on("error", reject);
    req.end();
  });
}

test("a custom lookup decides where the socket connects; an IP host needs no lookup", async () => {
  const asked: string[] = [];
  const lookup: LookupFunction = (host, opts, cb) => {
    asked.push(host);
    if (opts.all) (cb as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: "127.0.0.1", family: 4 }]);
    else cb(null, "127.0.0.1", 4);
  };
  expect(await get({ host: "unresolvable.invalid", port: peer.port, lookup })).toBe("peer");
  expect(asked).toEqual(["unresolvable.invalid"]);
  expect(await get({ host: "127.0.0.1", port: peer.port, lookup, headers: { host: "named.test" } })).toBe("peer");
  expect(asked).toHaveLength(1);
  expect(seen).toContain("peer named.test");
});

test("HTTP_PROXY is ignored by node:http (Bun's fetch would honour it)", async () => {
  const saved = process.env.HTTP_PROXY;
  process.env.HTTP_PROXY = `http://127.0.0.1:${proxy.port}`;
  try {
    expect(await get({ host: "127.0.0.1", port: peer.port })).toBe("peer");
    expect(seen).not.toContain("proxy");
  } finally {
    if (saved === undefined) delete process.env.HTTP_PROXY;
    else process.env.HTTP_PROXY = saved;
  }
});
