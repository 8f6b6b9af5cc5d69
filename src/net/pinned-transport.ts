/**
 * One HTTP/1.1 exchange with an address that has already been verified (the "pin").
 *
 * How the pin holds under Bun 1.4.5 (each point is exercised in ssrf.test.ts):
 * - node:http(s) `request` is given the verified IP literal as `host`, so no name resolution
 *   happens at all; a `lookup` that can only answer the pinned IP is passed as a second lock.
 * - The `Host` header carries the URL's host, and for https `servername` carries the host name,
 *   which Bun uses both for SNI and for certificate verification (mismatch → ERR_TLS_CERT_ALTNAME_INVALID).
 * - Bun's node:http ignores HTTP(S)_PROXY (its fetch honours them), so nothing re-resolves elsewhere.
 * - Kept-alive sockets are pooled by the IP we connect to, never by the Host header.
 * - On connect the socket's remote address is compared with the pin; a mismatch aborts.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type RequestOptions } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { Socket } from "node:net";
import type { LookupFunction } from "node:net";
import { normaliseHostName } from "./address-policy.ts";
import { HttpRequestError } from "./errors.ts";
import { formatIp, parseIp, unmapIpv4 } from "./ip-address.ts";

export interface PinnedRequest {
  url: URL;
  /** Verified, canonical IP to connect to. */
  address: string;
  family: 4 | 6;
  method: string;
  headers: Record<string, string>;
  body?: Uint8Array;
  connectTimeoutMs: number;
  /** Epoch ms by which the whole exchange must be over. */
  deadline: number;
  maxResponseBytes: number;
  /** Extra trust anchors (PEM) for operator-run internal services with a private CA. */
  ca?: string | string[];
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends one request to a pinned address. Replaceable (tests use a spy) but never bypassable. */
export type HttpTransport = (req: PinnedRequest) => Promise<RawResponse>;

/**
 * Kept-alive connections, pooled by the pinned IP and port (and servername for TLS): a webhook
 * receiver that gets thousands of deliveries should not pay a TCP (and TLS) handshake for each.
 */
const AGENT_OPTIONS = { keepAlive: true, keepAliveMsecs: 15_000, maxSockets: 64, maxFreeSockets: 64, timeout: 60_000 };
const httpAgent = new HttpAgent(AGENT_OPTIONS);
const httpsAgent = new HttpsAgent(AGENT_OPTIONS);

const CONNECT_ERRORS = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL", "ENETDOWN"]);
const TLS_ERROR = /CERT|TLS|SSL|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/;

function sameAddress(a: string | undefined, b: string): boolean {
  const pa = a ? parseIp(a) : null;
  const pb = parseIp(b);
  return pa !== null && pb !== null && formatIp(unmapIpv4(pa)) === formatIp(unmapIpv4(pb));
}

function flattenHeaders(headers: IncomingMessage["headers"]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(", ") : v;
  return out;
}

/** The default transport: node:http(s) against the pinned IP. */
export const pinnedHttpTransport: HttpTransport = function pinnedHttpTransport(req) {
  const { url, address } = req;
  const isHttps = url.protocol === "https:";
  const hostName = normaliseHostName(url.hostname);
  const hostIsIp = parseIp(hostName) !== null;
  const port = url.port ? Number(url.port) : isHttps ? 443 : 80;

  const pinnedLookup: LookupFunction = (_host, opts, cb) => {
    if (opts.all) (cb as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address, family: req.family }]);
    else cb(null, address, req.family);
  };

  return new Promise<RawResponse>((resolve, reject) => {
    let connected = false;
    let settled = false;
    let size = 0;
    const chunks: Buffer[] = [];
    const remaining = Math.max(0, req.deadline - Date.now());
    let connectTimer: ReturnType<typeof setTimeout> | undefined;
    let totalTimer: ReturnType<typeof setTimeout> | undefined;

    const settle = (err: HttpRequestError | null, res?: RawResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      clearTimeout(totalTimer);
      if (err) {
        outgoing.destroy();
        reject(err);
      } else resolve(res!);
    };
    const failure = (code: HttpRequestError["code"], message: string, cause?: unknown) =>
      new HttpRequestError(code, message, { cause, address, phase: connected ? "response" : "connect" });

    const options: RequestOptions & { servername?: string; ca?: string | string[]; rejectUnauthorized?: boolean } = {
      host: address,
      family: req.family,
      port,
      method: req.method,
      path: `${url.pathname}${url.search}`,
      headers: { ...req.headers, host: url.host },
      lookup: pinnedLookup,
      agent: isHttps ? httpsAgent : httpAgent,
    };
    if (isHttps) {
      options.rejectUnauthorized = true;
      if (!hostIsIp) options.servername = hostName; // SNI must not be an IP literal
      if (req.ca) options.ca = req.ca;
    }

    const outgoing = (isHttps ? httpsRequest : httpRequest)(options, (res) => {
      connected = true;
      const declared = Number(res.headers["content-length"]);
      if (declared > req.maxResponseBytes) {
        settle(failure("RESPONSE_TOO_LARGE", `response declares ${declared} bytes, limit is ${req.maxResponseBytes}`));
        return;
      }
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > req.maxResponseBytes) settle(failure("RESPONSE_TOO_LARGE", `response exceeds ${req.maxResponseBytes} bytes`));
        else chunks.push(chunk);
      });
      res.on("end", () =>
        settle(null, { status: res.statusCode ?? 0, headers: flattenHeaders(res.headers), body: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", (e) => settle(failure("NETWORK", `response failed: ${e.message}`, e)));
    });

    const onConnected = (socket: Socket) => {
      if (!sameAddress(socket.remoteAddress, address)) {
        settle(failure("NETWORK", `connected to ${socket.remoteAddress}, expected the pinned ${address}`));
        return;
      }
      connected = true;
      clearTimeout(connectTimer);
    };
    outgoing.on("socket", (socket: Socket) => {
      // A kept-alive socket is already connected (to the same pinned IP: the pool key is the IP).
      if (socket.connecting === false) onConnected(socket);
      else socket.once("connect", () => onConnected(socket));
    });
    outgoing.on("error", (e: Error & { code?: string }) => {
      const code = e.code ?? "";
      if (TLS_ERROR.test(code)) settle(failure("TLS", `TLS failure with ${hostName}: ${e.message}`, e));
      else if (!connected && CONNECT_ERRORS.has(code)) settle(failure("NETWORK", `cannot connect to ${address}:${port}: ${code}`, e));
      else settle(failure("NETWORK", `request to ${hostName} failed: ${e.message}`, e));
    });

    if (!connected && req.connectTimeoutMs < remaining) {
      connectTimer = setTimeout(
        () => settle(failure("CONNECT_TIMEOUT", `no connection to ${address}:${port} within ${req.connectTimeoutMs} ms`)),
        req.connectTimeoutMs,
      );
    }
    totalTimer = setTimeout(() => settle(failure("TIMEOUT", `no complete response from ${hostName} in time`)), remaining);

    if (req.body) outgoing.write(req.body);
    outgoing.end();
  });
};
