/**
 * SSRF guard against real loopback peers. This machine may only send traffic to loopback, so every
 * client here uses `spyTransport`: it records each pinned target and refuses (without connecting)
 * anything that is not loopback. Private and public addresses must be refused before it is called.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { lookup } from "node:dns/promises";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { createServer, type Server as NetServer } from "node:net";
import { HeaderInjectionError } from "./headers.ts";
import { parseIp } from "./ip-address.ts";
import { pinnedHttpTransport, type HttpTransport, type PinnedRequest } from "./pinned-transport.ts";
import { createSafeHttpClient, HttpRequestError, SsrfBlockedError, type SafeHttpClientOptions } from "./ssrf.ts";

const CERT = readFileSync(new URL("./testdata/notify-test.cert.pem", import.meta.url), "utf8");
const KEY = readFileSync(new URL("./testdata/notify-test.key.pem", import.meta.url), "utf8");
const PUBLIC_IP = "93.184.215.14"; // only ever handed to the spy, which refuses it

type Served = ReturnType<typeof Bun.serve>;
let canary: Served;
let canaryHits = 0;
let peer: Served;
let peerHits = 0;
let tlsPeer: Served;
let v6Peer: Served | undefined;

function isLoopback(address: string): boolean {
  const ip = parseIp(address);
  if (!ip) return false;
  return ip.family === 4 ? ip.bytes[0] === 127 : address === "::1";
}

/** Records pinned targets; loopback goes to the real transport, anything else fails as unreachable. */
function spyTransport() {
  const calls: PinnedRequest[] = [];
  const transport: HttpTransport = async (req) => {
    calls.push(req);
    if (!isLoopback(req.address)) {
      throw new HttpRequestError("NETWORK", `spy: ${req.address} is not loopback, not connecting`, { address: req.address, phase: "connect" });
    }
    return pinnedHttpTransport(req);
  };
  return { calls, transport };
}

function client(opts: SafeHttpClientOptions = {}) {
  const spy = spyTransport();
  return { spy, http: createSafeHttpClient({ timeoutMs: 2_000, ...opts, transport: spy.transport }) };
}

const fixedResolver = (map: Record<string, string[]>) => {
  const calls: string[] = [];
  const resolver = async (host: string) => {
    calls.push(host);
    const answer = map[host];
    if (!answer) throw Object.assign(new Error(`ENOTFOUND ${host}`), { code: "ENOTFOUND" });
    return answer;
  };
  return { calls, resolver };
};

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected a rejection");
}

beforeAll(() => {
  canary = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch() {
      canaryHits++;
      return new Response("canary reached");
    },
  });
  peer = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      peerHits++;
      const url = new URL(req.url);
      const to = url.searchParams.get("to");
      switch (url.pathname) {
        case "/redirect":
          return new Response(null, { status: 302, headers: { location: to ?? "/echo" } });
        case "/loop":
          return new Response(null, { status: 302, headers: { location: "/loop" } });
        case "/slow":
          await Bun.sleep(1_500);
          return new Response("late");
        case "/big":
          return new Response("x".repeat(2_000_000));
        case "/stream":
          // No content-length: the cap has to be enforced while reading.
          return new Response(
            new ReadableStream({
              async pull(c) {
                c.enqueue(new TextEncoder().encode("y".repeat(64 * 1024)));
                await Bun.sleep(1);
              },
            }),
          );
        case "/teapot":
          return new Response("short and stout", { status: 418 });
        default:
          return Response.json(
            { method: req.method, host: req.headers.get("host"), auth: req.headers.get("authorization"), xTest: req.headers.get("x-test"), body: await req.text() },
            { headers: { "x-peer": "yes" } },
          );
      }
    },
  });
  tlsPeer = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: CERT, key: KEY },
    fetch: (req) => new Response(`tls ok, host=${req.headers.get("host")}`),
  });
  try {
    v6Peer = Bun.serve({ hostname: "::1", port: 0, fetch: (req) => new Response(`v6 ok, host=${req.headers.get("host")}`) });
  } catch {
    v6Peer = undefined; // no IPv6 loopback here; that test is skipped
  }
});

afterAll(() => {
  expect(canaryHits).toBe(0);
  canary.stop(true);
  peer.stop(true);
  tlsPeer.stop(true);
  v6Peer?.stop(true);
});

describe("refused before any connection", () => {
  const literals = () => {
    const P = canary.port;
    return [
      `http://127.0.0.1:${P}/`,
      `http://[::1]:${P}/`,
      `http://[::ffff:127.0.0.1]:${P}/`,
      `http://2130706433:${P}/`,
      `http://0x7f000001:${P}/`,
      `http://0177.0.0.1:${P}/`,
      `http://127.1:${P}/`,
      `http://0x7f.1:${P}/`,
      `http://127.0.0.1.:${P}/`,
      `http://%31%32%37.0.0.1:${P}/`,
      `http://[0:0:0:0:0:0:0:1]:${P}/`,
      `http://[::127.0.0.1]:${P}/`,
      `http://0.0.0.0:${P}/`,
      `http://0:${P}/`,
      `http://[::]:${P}/`,
      `HTTP://127.0.0.1:${P}/`,
      "http://169.254.169.254/latest/meta-data/",
      "http://10.0.0.1/",
      "http://172.16.0.1/",
      "http://192.168.1.1/",
      "http://100.64.0.1/",
      "http://198.18.0.1/",
      "http://192.0.0.1/",
      "http://192.0.2.1/",
      "http://224.0.0.1/",
      "http://255.255.255.255/",
      "http://[fd00::1]/",
      "http://[fe80::1]/",
      "http://[ff02::1]/",
      "http://[64:ff9b::7f00:1]/",
      "http://[64:ff9b::a9fe:a9fe]/",
      "http://[2002:7f00:1::]/",
      "http://[2002:a00:1::]/",
    ];
  };

  test("loopback, private, link-local and reserved IP literals in every spelling", async () => {
    const { http, spy } = client();
    for (const url of literals()) {
      const err = await caught(http.request(url));
      expect(err, url).toBeInstanceOf(SsrfBlockedError);
      expect((err as SsrfBlockedError).code, url).toBe("ADDRESS_BLOCKED");
      expect((err as SsrfBlockedError).retryable).toBe(false);
    }
    expect(spy.calls).toHaveLength(0);
    expect(canaryHits).toBe(0);
  });

  test("the error names the address and the reason", async () => {
    const { http } = client();
    const err = (await caught(http.request(`http://2130706433:${canary.port}/`))) as SsrfBlockedError;
    expect(err.address).toBe("127.0.0.1");
    expect(err.reason).toBe("loopback");
    const meta = (await caught(http.request("http://169.254.169.254/"))) as SsrfBlockedError;
    expect(meta.reason).toContain("link-local");
    const nat64 = (await caught(http.request("http://[64:ff9b::7f00:1]/"))) as SsrfBlockedError;
    expect(nat64.reason).toContain("127.0.0.1");
  });

  test("localhost is refused by name, before any resolver is asked", async () => {
    const dns = fixedResolver({ localhost: [PUBLIC_IP], "app.localhost": [PUBLIC_IP] });
    const { http, spy } = client({ resolver: dns.resolver });
    for (const url of [`http://localhost:${canary.port}/`, `http://LOCALHOST.:${canary.port}/`, `http://app.localhost:${canary.port}/`]) {
      const err = await caught(http.request(url));
      expect(err, url).toBeInstanceOf(SsrfBlockedError);
    }
    expect(dns.calls).toHaveLength(0);
    expect(spy.calls).toHaveLength(0);
  });

  test("the real system resolver: this machine's own name resolves to a local address", async () => {
    const own = hostname();
    const answers = await lookup(own, { all: true }).catch(() => []);
    if (answers.length === 0 || answers.some((a) => !isLoopback(a.address) && !a.address.startsWith("10.") && !a.address.startsWith("172.") && !a.address.startsWith("192.168."))) {
      return; // not a loopback/private name on this host; nothing to prove here
    }
    const { http, spy } = client(); // default resolver: getaddrinfo, so /etc/hosts counts
    const err = (await caught(http.request(`http://${own}:${canary.port}/`))) as SsrfBlockedError;
    expect(err).toBeInstanceOf(SsrfBlockedError);
    expect(err.address).toBeDefined();
    expect(spy.calls).toHaveLength(0);
    expect(canaryHits).toBe(0);
  });

  test("a public-looking name that resolves to loopback", async () => {
    const dns = fixedResolver({ "hooks.example.com": ["127.0.0.1"] });
    const { http, spy } = client({ resolver: dns.resolver });
    const err = (await caught(http.request(`http://hooks.example.com:${canary.port}/`))) as SsrfBlockedError;
    expect(err).toBeInstanceOf(SsrfBlockedError);
    expect(err.host).toBe("hooks.example.com");
    expect(err.address).toBe("127.0.0.1");
    expect(spy.calls).toHaveLength(0);
    expect(canaryHits).toBe(0);
  });

  test("one blocked answer among public ones refuses the whole name", async () => {
    const dns = fixedResolver({
      "mixed.example.com": [PUBLIC_IP, "127.0.0.1"],
      "odd.example.com": ["0177.0.0.1"], // a resolver answer that is not canonical fails closed
      "mapped.example.com": ["::ffff:127.0.0.1"],
      "meta.example.com": ["2001:db8::1", "169.254.169.254"],
    });
    const { http, spy } = client({ resolver: dns.resolver });
    for (const host of Object.keys({ "mixed.example.com": 1, "odd.example.com": 1, "mapped.example.com": 1, "meta.example.com": 1 })) {
      expect(await caught(http.request(`http://${host}:${canary.port}/`)), host).toBeInstanceOf(SsrfBlockedError);
    }
    expect(spy.calls).toHaveLength(0);
  });

  test("schemes other than http(s) and credentials in the URL", async () => {
    const { http, spy } = client();
    for (const [url, code] of [
      ["file:///etc/passwd", "SCHEME_NOT_ALLOWED"],
      ["ftp://example.com/", "SCHEME_NOT_ALLOWED"],
      ["gopher://127.0.0.1:70/", "SCHEME_NOT_ALLOWED"],
      ["data:text/plain,hi", "SCHEME_NOT_ALLOWED"],
      ["http://user:pass@example.com/", "USERINFO_NOT_ALLOWED"],
      [`http://example.com@127.0.0.1:${canary.port}/`, "USERINFO_NOT_ALLOWED"],
      ["not a url", "INVALID_URL"],
    ] as const) {
      const err = await caught(http.request(url));
      expect(err, url).toBeInstanceOf(SsrfBlockedError);
      expect((err as SsrfBlockedError).code, url).toBe(code);
    }
    expect(spy.calls).toHaveLength(0);
  });

  test("header injection is refused before connecting", async () => {
    const { http, spy } = client({ allowList: ["127.0.0.1"] });
    const err = await caught(http.request(`http://127.0.0.1:${peer.port}/`, { headers: { "x-test": "a\r\nx-evil: 1" } }));
    expect(err).toBeInstanceOf(HeaderInjectionError);
    expect((err as HeaderInjectionError).field).toBe("x-test");
    expect(spy.calls).toHaveLength(0);
  });
});

describe("DNS rebinding", () => {
  test("the name is resolved once and the connection goes to that verified address", async () => {
    let n = 0;
    const resolver = async () => (n++ === 0 ? [PUBLIC_IP] : ["127.0.0.1"]);
    const { http, spy } = client({ resolver });
    const err = await caught(http.request(`http://rebind.example.com:${canary.port}/`));
    expect(err).toBeInstanceOf(HttpRequestError); // the spy's "unreachable"
    expect(n).toBe(1);
    expect(spy.calls.map((c) => c.address)).toEqual([PUBLIC_IP]);
    expect(canaryHits).toBe(0);
  });

  test("over real sockets: the pinned 127.0.0.2 peer answers, the 127.0.0.1 canary on the same port does not", async () => {
    const pinnedPeer = Bun.serve({ hostname: "127.0.0.2", port: 0, fetch: (r) => new Response(`pinned peer, host=${r.headers.get("host")}`) });
    const sameHits = { n: 0 };
    const samePortCanary = Bun.serve({
      hostname: "127.0.0.1",
      port: pinnedPeer.port,
      fetch() {
        sameHits.n++;
        return new Response("canary");
      },
    });
    try {
      let n = 0;
      const resolver = async () => (n++ === 0 ? ["127.0.0.2"] : ["127.0.0.1"]);
      // rebind.test does not exist in real DNS: if the transport resolved by itself, this would fail.
      const { http } = client({ resolver, allowList: ["127.0.0.2"] });
      const res = await http.request(`http://rebind.test:${pinnedPeer.port}/`);
      expect(res.body).toBe(`pinned peer, host=rebind.test:${pinnedPeer.port}`);
      expect(n).toBe(1);
      // Next request: the name now points at loopback proper, which is not allowed.
      expect(await caught(http.request(`http://rebind.test:${pinnedPeer.port}/`))).toBeInstanceOf(SsrfBlockedError);
      expect(sameHits.n).toBe(0);
    } finally {
      pinnedPeer.stop(true);
      samePortCanary.stop(true);
    }
  });
});

describe("redirects", () => {
  const peerClient = (opts: SafeHttpClientOptions = {}) =>
    client({ resolver: fixedResolver({ "peer.test": ["127.0.0.1"], "other.test": ["127.0.0.1"], localhost: ["127.0.0.1"] }).resolver, allowList: ["peer.test", "other.test"], ...opts });

  test("a redirect from an allowed peer to loopback is refused in every spelling", async () => {
    const { http } = peerClient();
    const before = peerHits;
    for (const target of [`http://127.0.0.1:${canary.port}/`, `http://localhost:${canary.port}/`, `http://2130706433:${canary.port}/`, `http://[::1]:${canary.port}/`, "http://169.254.169.254/"]) {
      const err = await caught(http.request(`http://peer.test:${peer.port}/redirect?to=${encodeURIComponent(target)}`));
      expect(err, target).toBeInstanceOf(SsrfBlockedError);
    }
    expect(peerHits - before).toBe(5);
    expect(canaryHits).toBe(0);
  });

  test("a redirect to another scheme or with credentials is refused", async () => {
    const { http } = peerClient();
    for (const target of ["file:///etc/passwd", `http://u:p@peer.test:${peer.port}/echo`]) {
      expect(await caught(http.request(`http://peer.test:${peer.port}/redirect?to=${encodeURIComponent(target)}`))).toBeInstanceOf(SsrfBlockedError);
    }
  });

  test("an allowed redirect is followed, credentials are dropped across origins", async () => {
    const { http } = peerClient();
    const same = await http.request(`http://peer.test:${peer.port}/redirect?to=/echo`, { headers: { authorization: "Bearer s" } });
    expect(JSON.parse(same.body)).toMatchObject({ host: `peer.test:${peer.port}`, auth: "Bearer s" });
    expect(same.url).toBe(`http://peer.test:${peer.port}/echo`);
    const cross = await http.request(`http://peer.test:${peer.port}/redirect?to=${encodeURIComponent(`http://other.test:${peer.port}/echo`)}`, {
      headers: { authorization: "Bearer s", "x-test": "kept" },
    });
    expect(JSON.parse(cross.body)).toMatchObject({ host: `other.test:${peer.port}`, auth: null, xTest: "kept" });
  });

  test("only GET follows; the limit holds", async () => {
    const { http } = peerClient({ maxRedirects: 2 });
    const post = await http.request(`http://peer.test:${peer.port}/redirect?to=/echo`, { method: "POST", body: "x" });
    expect(post.status).toBe(302);
    const err = (await caught(http.request(`http://peer.test:${peer.port}/loop`))) as HttpRequestError;
    expect(err).toBeInstanceOf(HttpRequestError);
    expect(err.code).toBe("TOO_MANY_REDIRECTS");
    expect(err.retryable).toBe(false);
  });
});

describe("allowed requests", () => {
  test("allow-listed IP: method, headers, body and status arrive intact; Host cannot be overridden", async () => {
    const { http, spy } = client({ allowList: ["127.0.0.1"] });
    const res = await http.request(`http://127.0.0.1:${peer.port}/echo?q=1`, {
      method: "POST",
      headers: { "X-Test": "héllo", host: "evil.example", "content-length": "1" },
      body: '{"a":1}',
    });
    expect(res.status).toBe(200);
    expect(res.headers["x-peer"]).toBe("yes");
    expect(JSON.parse(res.body)).toEqual({ method: "POST", host: `127.0.0.1:${peer.port}`, auth: null, xTest: "héllo", body: '{"a":1}' });
    expect(spy.calls[0]?.address).toBe("127.0.0.1");
    const teapot = await http.request(`http://127.0.0.1:${peer.port}/teapot`);
    expect([teapot.status, teapot.body]).toEqual([418, "short and stout"]);
  });

  test("allowPrivate reaches loopback; a host-name entry does not open other names", async () => {
    const open = client({ allowPrivate: true });
    expect((await open.http.request(`http://127.0.0.1:${peer.port}/echo`)).status).toBe(200);
    const dns = fixedResolver({ "peer.test": ["127.0.0.1"], "other.test": ["127.0.0.1"] });
    const named = client({ resolver: dns.resolver, allowList: ["peer.test"] });
    expect((await named.http.request(`http://PEER.test.:${peer.port}/echo`)).status).toBe(200);
    expect(await caught(named.http.request(`http://other.test:${peer.port}/echo`))).toBeInstanceOf(SsrfBlockedError);
    expect(await caught(named.http.request(`http://127.0.0.1:${peer.port}/echo`))).toBeInstanceOf(SsrfBlockedError);
  });

  test("IPv6 loopback when allow-listed", async () => {
    if (!v6Peer) return;
    const { http } = client({ allowList: ["::1"] });
    const res = await http.request(`http://[::1]:${v6Peer.port}/`);
    expect(res.body).toBe(`v6 ok, host=[::1]:${v6Peer.port}`);
  });

  test("https: SNI and certificate checked against the URL host, not the pinned IP", async () => {
    const dns = fixedResolver({ "notify.test": ["127.0.0.1"], "other.test": ["127.0.0.1"] });
    const { http } = client({ resolver: dns.resolver, allowList: ["notify.test", "other.test"], ca: CERT });
    const res = await http.request(`https://notify.test:${tlsPeer.port}/`);
    expect(res.body).toBe(`tls ok, host=notify.test:${tlsPeer.port}`);
    const wrongName = (await caught(http.request(`https://other.test:${tlsPeer.port}/`))) as HttpRequestError;
    expect(wrongName).toBeInstanceOf(HttpRequestError);
    expect(wrongName.code).toBe("TLS");
    expect(wrongName.retryable).toBe(false);
    const untrusted = client({ resolver: dns.resolver, allowList: ["notify.test"] });
    expect(((await caught(untrusted.http.request(`https://notify.test:${tlsPeer.port}/`))) as HttpRequestError).code).toBe("TLS");
  });

  test("HTTP_PROXY is not used (a proxy would resolve the name itself)", async () => {
    const saved = { HTTP_PROXY: process.env.HTTP_PROXY, http_proxy: process.env.http_proxy };
    process.env.HTTP_PROXY = process.env.http_proxy = `http://127.0.0.1:${canary.port}`;
    try {
      const { http } = client({ allowList: ["127.0.0.1"] });
      expect((await http.request(`http://127.0.0.1:${peer.port}/echo`)).status).toBe(200);
      expect(canaryHits).toBe(0);
    } finally {
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  test("falls back to the next verified address only when the first refused the connection", async () => {
    const closed = await closedPort();
    const other = Bun.serve({ hostname: "127.0.0.2", port: closed, fetch: () => new Response("second address") });
    try {
      const dns = fixedResolver({ "two.test": ["127.0.0.1", "127.0.0.2"] });
      const { http, spy } = client({ resolver: dns.resolver, allowList: ["127.0.0.0/8"] });
      const res = await http.request(`http://two.test:${closed}/`);
      expect(res.body).toBe("second address");
      expect(spy.calls.map((c) => c.address)).toEqual(["127.0.0.1", "127.0.0.2"]);
    } finally {
      other.stop(true);
    }
  });
});

describe("limits and transient failures", () => {
  test("total timeout", async () => {
    const { http } = client({ allowList: ["127.0.0.1"] });
    const t0 = performance.now();
    const err = (await caught(http.request(`http://127.0.0.1:${peer.port}/slow`, { timeoutMs: 200 }))) as HttpRequestError;
    expect(err).toBeInstanceOf(HttpRequestError);
    expect(err.code).toBe("TIMEOUT");
    expect(err.retryable).toBe(true);
    expect(performance.now() - t0).toBeLessThan(1_000);
  });

  test("a peer that accepts but never answers times out", async () => {
    const silent: NetServer = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    try {
      const port = (silent.address() as { port: number }).port;
      const { http } = client({ allowList: ["127.0.0.1"], timeoutMs: 200 });
      expect(((await caught(http.request(`http://127.0.0.1:${port}/`))) as HttpRequestError).code).toBe("TIMEOUT");
    } finally {
      silent.close();
    }
  });

  test("response size cap, declared and streamed", async () => {
    const { http } = client({ allowList: ["127.0.0.1"], maxResponseBytes: 100_000 });
    for (const path of ["/big", "/stream"]) {
      const err = (await caught(http.request(`http://127.0.0.1:${peer.port}${path}`))) as HttpRequestError;
      expect(err, path).toBeInstanceOf(HttpRequestError);
      expect(err.code, path).toBe("RESPONSE_TOO_LARGE");
      expect(err.retryable).toBe(false);
    }
  });

  test("connection refused is a retryable network error", async () => {
    const { http } = client({ allowList: ["127.0.0.1"] });
    const err = (await caught(http.request(`http://127.0.0.1:${await closedPort()}/`))) as HttpRequestError;
    expect(err).toBeInstanceOf(HttpRequestError);
    expect([err.code, err.retryable, err.phase]).toEqual(["NETWORK", true, "connect"]);
  });

  test("a name that does not resolve is a retryable DNS error", async () => {
    const { http } = client({ resolver: fixedResolver({}).resolver });
    const err = (await caught(http.request("http://nowhere.test/"))) as HttpRequestError;
    expect([err.code, err.retryable]).toEqual(["DNS", true]);
  });

  test("options are checked when the client is built", () => {
    expect(() => createSafeHttpClient({ allowList: ["10.0.0.0/33"] })).toThrow();
    expect(() => createSafeHttpClient({ allowList: ["http://x/"] })).toThrow();
  });
});

test("after every attempt above, the canary was never reached", () => {
  expect(canaryHits).toBe(0);
});

/** A port on 127.0.0.1 (and, by the same number, 127.0.0.2) with nothing listening. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
