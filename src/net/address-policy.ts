/**
 * Which destination addresses an outbound request may connect to (SPEC 5: no loopback, private or
 * link-local targets). Pure functions over bytes; no I/O.
 */
import { formatIp, inCidr, parseCidr, parseIp, unmapIpv4, type Cidr, type IpAddress } from "./ip-address.ts";

/**
 * - `public`: fine to connect.
 * - `private`: refused unless the operator allowed it (allowPrivate, or an allow-list entry).
 * - `never`: refused even when allowed; no sane unicast service lives there (0.0.0.0 even means
 *   "this host" to Linux, so it is a loopback bypass).
 */
export type AddressClass = { kind: "public" } | { kind: "private" | "never"; reason: string };

interface Range {
  cidr: Cidr;
  kind: "private" | "never";
  reason: string;
}

const range = (text: string, kind: Range["kind"], reason: string): Range => ({ cidr: parseCidr(text), kind, reason });

// Order matters only where ranges nest: the first match wins.
const IPV4_RANGES: Range[] = [
  range("255.255.255.255/32", "never", "broadcast"),
  range("0.0.0.0/8", "never", "unspecified ('this network')"),
  range("10.0.0.0/8", "private", "private (RFC 1918)"),
  range("100.64.0.0/10", "private", "shared address space (carrier-grade NAT)"),
  range("127.0.0.0/8", "private", "loopback"),
  range("169.254.0.0/16", "private", "link-local (cloud metadata lives here)"),
  range("172.16.0.0/12", "private", "private (RFC 1918)"),
  range("192.0.0.0/24", "private", "IETF protocol assignments"),
  // Documentation ranges are never routed on the internet; refusing them costs nothing.
  range("192.0.2.0/24", "private", "documentation (TEST-NET-1)"),
  range("198.51.100.0/24", "private", "documentation (TEST-NET-2)"),
  range("203.0.113.0/24", "private", "documentation (TEST-NET-3)"),
  range("192.168.0.0/16", "private", "private (RFC 1918)"),
  range("198.18.0.0/15", "private", "benchmarking"),
  range("224.0.0.0/4", "never", "multicast"),
  range("240.0.0.0/4", "never", "reserved"),
];

const IPV6_RANGES: Range[] = [
  range("::/128", "never", "unspecified"),
  range("::1/128", "private", "loopback"),
  range("::/96", "private", "IPv4-compatible (deprecated)"),
  range("64:ff9b:1::/48", "private", "local-use NAT64"),
  range("100::/64", "private", "discard-only"),
  range("2001::/32", "private", "Teredo (embeds an obfuscated IPv4 address)"),
  range("2001:db8::/32", "private", "documentation"),
  range("fc00::/7", "private", "unique local (private)"),
  range("fe80::/10", "private", "link-local"),
  range("fec0::/10", "private", "site-local (deprecated)"),
  range("ff00::/8", "never", "multicast"),
];

const NAT64 = parseCidr("64:ff9b::/96");
const SIX_TO_FOUR = parseCidr("2002::/16");
const GLOBAL_UNICAST = parseCidr("2000::/3");

function classifyV4(ip: IpAddress): AddressClass {
  for (const r of IPV4_RANGES) if (inCidr(ip, r.cidr)) return { kind: r.kind, reason: r.reason };
  return { kind: "public" };
}

/** An IPv6 address that carries an IPv4 one is as dangerous as the IPv4 one it carries. */
function classifyEmbedded(label: string, v4bytes: Uint8Array): AddressClass {
  const v4 = { family: 4 as const, bytes: v4bytes };
  const inner = classifyV4(v4);
  if (inner.kind === "public") return inner;
  return { kind: inner.kind, reason: `${label} embedding ${formatIp(v4)}: ${inner.reason}` };
}

/** Classifies one address. IPv4-mapped IPv6 is judged as the IPv4 address it maps. */
export function classifyAddress(address: IpAddress): AddressClass {
  const ip = unmapIpv4(address);
  if (ip.family === 4) return classifyV4(ip);
  if (inCidr(ip, NAT64)) return classifyEmbedded("NAT64 address", ip.bytes.slice(12, 16));
  if (inCidr(ip, SIX_TO_FOUR)) return classifyEmbedded("6to4 address", ip.bytes.slice(2, 6));
  for (const r of IPV6_RANGES) if (inCidr(ip, r.cidr)) return { kind: r.kind, reason: r.reason };
  if (!inCidr(ip, GLOBAL_UNICAST)) return { kind: "private", reason: "reserved (outside 2000::/3)" };
  return { kind: "public" };
}

export interface AddressPolicyOptions {
  allowPrivate?: boolean;
  /** Host names (exact, case-insensitive) or IPs/CIDRs that may be private. */
  allowList?: readonly string[];
}

export type AddressVerdict = { allowed: true; address: IpAddress } | { allowed: false; reason: string };

export interface AddressPolicy {
  /** Refusal decided by the name alone (`localhost` and `*.localhost`, RFC 6761), before resolving. */
  checkName(host: string): { allowed: true } | { allowed: false; reason: string };
  /** `host` is the normalised URL host name, `address` one textual address it resolved to. */
  check(host: string, address: string): AddressVerdict;
}

/** Lowercase, no trailing dot, no IPv6 brackets: the form allow-list names are compared in. */
export function normaliseHostName(host: string): string {
  let h = host.toLowerCase();
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  while (h.endsWith(".")) h = h.slice(0, -1);
  return h;
}

/** Splits the allow-list into names and CIDRs once; throws on an entry that is neither. */
export function createAddressPolicy(opts: AddressPolicyOptions): AddressPolicy {
  const names = new Set<string>();
  const cidrs: Cidr[] = [];
  for (const raw of opts.allowList ?? []) {
    const entry = raw.trim();
    if (/^[0-9.]+(\/\d+)?$/.test(entry) || entry.includes(":")) cidrs.push(parseCidr(entry));
    else if (/^[a-z0-9.-]+$/i.test(entry)) names.add(normaliseHostName(entry));
    else throw new Error(`allow-list entry is neither a host name nor an IP/CIDR: ${raw}`);
  }
  const privateAllowed = (host: string, ip?: IpAddress) =>
    opts.allowPrivate === true || names.has(normaliseHostName(host)) || (ip !== undefined && cidrs.some((c) => inCidr(ip, c)));
  return {
    checkName: function checkName(host) {
      const h = normaliseHostName(host);
      const loopbackName = h === "localhost" || h.endsWith(".localhost");
      return loopbackName && !privateAllowed(h) ? { allowed: false, reason: "loopback (reserved name)" } : { allowed: true };
    },
    check: function checkAddress(host, address) {
      const parsed = parseIp(address);
      if (!parsed) return { allowed: false, reason: "not a canonical IP address" };
      const ip = unmapIpv4(parsed);
      const cls = classifyAddress(ip);
      if (cls.kind === "public") return { allowed: true, address: ip };
      if (cls.kind === "never") return { allowed: false, reason: cls.reason };
      return privateAllowed(host, ip) ? { allowed: true, address: ip } : { allowed: false, reason: cls.reason };
    },
  };
}
