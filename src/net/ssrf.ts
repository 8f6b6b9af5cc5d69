/**
 * The only way notify talks HTTP to a URL it did not write itself (webhooks, enrichment sources,
 * provider base URLs). SPEC 5: loopback, private and link-local destinations are refused at
 * connect time, DNS rebinding included.
 *
 * Each hop: parse the URL (WHATWG, which already turns `2130706433`, `0x7f.1`, `0177.0.0.1`,
 * `127.1` into `127.0.0.1`) → refuse non-http(s) and userinfo → resolve the host once → refuse if
 * ANY answer is blocked → connect to a verified answer, never to the name (see pinned-transport.ts).
 */
import { lookup } from "node:dns/promises";
import { createAddressPolicy, normaliseHostName } from "./address-policy.ts";
import { HttpRequestError, SsrfBlockedError } from "./errors.ts";
import { assertHeaderSafe } from "./headers.ts";
import { formatIp, parseIp, type IpAddress } from "./ip-address.ts";
import { pinnedHttpTransport, type HttpTransport } from "./pinned-transport.ts";

export { HttpRequestError, SsrfBlockedError } from "./errors.ts";
export type { HttpTransport, PinnedRequest, RawResponse } from "./pinned-transport.ts";

// A webhook receiver that needs more than 10 s is down for our purposes; the delivery is retried.
const DEFAULT_TIMEOUT_MS = 10_000;
// Connecting is a round trip or two; a peer silent for 3 s will not answer, so fail fast and retry.
const DEFAULT_CONNECT_TIMEOUT_MS = 3_000;
// Webhook answers and enrichment JSON are small; 1 MiB bounds memory per in-flight request.
const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;
const DEFAULT_MAX_REDIRECTS = 3;

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
// We frame the message ourselves; a caller-supplied copy could smuggle a second request.
const OWNED_HEADERS = new Set(["host", "content-length", "transfer-encoding", "connection", "upgrade", "te"]);
// Credentials meant for one origin must not follow a redirect to another.
const CREDENTIAL_HEADERS = ["authorization", "cookie", "proxy-authorization"];

export type Resolver = (host: string) => Promise<string[]>;

export interface SafeHttpClientOptions {
  /** Allow every private/loopback/link-local address (tests, fully internal deployments). */
  allowPrivate?: boolean;
  /**
   * Host names (exact match, case-insensitive) or IPs/CIDRs that may be private, for
   * operator-configured internal services, e.g. `["users.internal", "10.20.0.0/16"]`.
   * Unspecified, multicast and reserved addresses stay refused regardless.
   */
  allowList?: string[];
  /** Whole request, redirects included. */
  timeoutMs?: number;
  connectTimeoutMs?: number;
  maxResponseBytes?: number;
  /** GET only; every hop is checked like the first. */
  maxRedirects?: number;
  /** Defaults to the system resolver (getaddrinfo, so /etc/hosts counts). Called once per hop. */
  resolver?: Resolver;
  /** Extra trusted CA certificates (PEM) for internal services. */
  ca?: string | string[];
  /** Sends one request to a verified address. Defaults to node:http(s); tests pass a spy. */
  transport?: HttpTransport;
}

export interface SafeRequestInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** Overrides the client's `timeoutMs` for this call. */
  timeoutMs?: number;
}

export interface SafeResponse {
  status: number;
  /** Lowercased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: string;
  /** The URL that answered, after redirects. */
  url: string;
}

export interface SafeHttpClient {
  /**
   * Throws `SsrfBlockedError` (permanent: the destination is refused) or `HttpRequestError`
   * (see `.retryable`). Any HTTP status, 4xx/5xx included, is a response, not an error.
   */
  request(url: string | URL, init?: SafeRequestInit): Promise<SafeResponse>;
}

const systemResolver: Resolver = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** Rejects anything but a plain http(s) URL. Returns a copy safe to mutate. */
function checkUrl(input: string | URL): URL {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new SsrfBlockedError("INVALID_URL", `not a valid URL: ${String(input).slice(0, 200)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new SsrfBlockedError("SCHEME_NOT_ALLOWED", `scheme ${url.protocol} is not allowed, only http: and https:`);
  }
  if (url.username !== "" || url.password !== "") {
    throw new SsrfBlockedError("USERINFO_NOT_ALLOWED", "credentials in the URL are not allowed", normaliseHostName(url.hostname));
  }
  if (normaliseHostName(url.hostname) === "") throw new SsrfBlockedError("INVALID_URL", "URL has no host");
  url.hash = "";
  return url;
}

function beforeDeadline<T>(work: Promise<T>, deadline: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HttpRequestError("TIMEOUT", `${what} did not finish in time`)), Math.max(0, deadline - Date.now()));
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

function prepareHeaders(headers: Record<string, string> | undefined, body: Uint8Array | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    assertHeaderSafe(name, value);
    const lower = name.toLowerCase();
    if (!OWNED_HEADERS.has(lower)) out[lower] = value;
  }
  if (body) out["content-length"] = String(body.length);
  return out;
}

/** Builds a client; options are checked here, once (a bad allow-list entry throws now). */
export function createSafeHttpClient(opts: SafeHttpClientOptions = {}): SafeHttpClient {
  const policy = createAddressPolicy(opts);
  const resolver = opts.resolver ?? systemResolver;
  const transport = opts.transport ?? pinnedHttpTransport;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const maxResponseBytes = opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const maxRedirects = opts.maxRedirects ?? DEFAULT_MAX_REDIRECTS;

  /** Resolves the host once and returns the answers, all of them verified, in resolver order. */
  async function verifiedAddresses(url: URL, deadline: number): Promise<IpAddress[]> {
    const host = normaliseHostName(url.hostname);
    let answers: string[];
    if (parseIp(host)) {
      answers = [host];
    } else {
      const byName = policy.checkName(host);
      if (!byName.allowed) throw new SsrfBlockedError("ADDRESS_BLOCKED", `refusing to connect to ${host}: ${byName.reason}`, host, undefined, byName.reason);
      try {
        answers = await beforeDeadline(resolver(host), deadline, `resolving ${host}`);
      } catch (e) {
        if (e instanceof HttpRequestError) throw e;
        throw new HttpRequestError("DNS", `cannot resolve ${host}: ${(e as Error).message}`, { cause: e, phase: "connect" });
      }
      if (answers.length === 0) throw new HttpRequestError("DNS", `${host} has no addresses`, { phase: "connect" });
    }
    const verified: IpAddress[] = [];
    for (const answer of answers) {
      const verdict = policy.check(host, answer);
      if (!verdict.allowed) {
        const shown = answer === host ? host : `${host} (${answer})`;
        throw new SsrfBlockedError("ADDRESS_BLOCKED", `refusing to connect to ${shown}: ${verdict.reason}`, host, answer, verdict.reason);
      }
      verified.push(verdict.address);
    }
    return verified;
  }

  /** Tries the verified addresses in order; moves on only if nothing reached the previous one. */
  async function sendPinned(url: URL, addresses: IpAddress[], base: Omit<Parameters<HttpTransport>[0], "url" | "address" | "family">) {
    let lastError: unknown;
    for (const ip of addresses) {
      try {
        return await transport({ ...base, url, address: formatIp(ip), family: ip.family });
      } catch (e) {
        lastError = e;
        if (!(e instanceof HttpRequestError) || e.phase !== "connect" || Date.now() >= base.deadline) throw e;
      }
    }
    throw lastError;
  }

  return {
    request: async function safeRequest(input, init = {}) {
      const method = (init.method ?? "GET").toUpperCase();
      if (!METHODS.has(method)) throw new TypeError(`HTTP method not supported: ${init.method}`);
      const deadline = Date.now() + (init.timeoutMs ?? timeoutMs);
      const body = typeof init.body === "string" ? new TextEncoder().encode(init.body) : init.body;
      let headers = prepareHeaders(init.headers, body);
      let url = checkUrl(input);

      for (let hop = 0; ; hop++) {
        const addresses = await verifiedAddresses(url, deadline);
        const res = await sendPinned(url, addresses, { method, headers, body, connectTimeoutMs, deadline, maxResponseBytes, ca: opts.ca });
        const location = res.headers.location;
        if (method !== "GET" || !REDIRECTS.has(res.status) || location === undefined) return { ...res, url: url.href };
        if (hop >= maxRedirects) throw new HttpRequestError("TOO_MANY_REDIRECTS", `more than ${maxRedirects} redirects from ${input}`);
        let next: URL;
        try {
          next = new URL(location, url);
        } catch (e) {
          throw new HttpRequestError("BAD_REDIRECT", `unparseable Location: ${location.slice(0, 200)}`, { cause: e });
        }
        next = checkUrl(next);
        if (next.origin !== url.origin) {
          headers = { ...headers };
          for (const h of CREDENTIAL_HEADERS) delete headers[h];
        }
        url = next;
      }
    },
  };
}
