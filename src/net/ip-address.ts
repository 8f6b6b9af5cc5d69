/**
 * Strict IP address parsing to bytes, canonical formatting and CIDR matching.
 *
 * Deliberately strict: only dotted-quad decimal IPv4 (no octal, hex, short or integer forms) and
 * RFC 4291 IPv6 text (optionally with a dotted IPv4 tail, no zone id). Anything looser is not an
 * address here; callers treat "not an address" as refusal, so odd forms fail closed.
 */

export interface IpAddress {
  family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
}

export interface Cidr {
  family: 4 | 6;
  bytes: Uint8Array;
  prefix: number;
}

const IPV4_PART = /^(0|[1-9][0-9]{0,2})$/;
const IPV6_GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseIpv4Bytes(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!IPV4_PART.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

function parseIpv6Bytes(text: string): Uint8Array | null {
  if (text.includes("%")) return null; // zone ids have no meaning for an outbound URL
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const toGroups = (s: string): number[] | null => {
    if (s === "") return [];
    const raw = s.split(":");
    const groups: number[] = [];
    for (let i = 0; i < raw.length; i++) {
      const g = raw[i]!;
      if (i === raw.length - 1 && g.includes(".")) {
        const v4 = parseIpv4Bytes(g);
        if (!v4) return null;
        groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (IPV6_GROUP.test(g)) {
        groups.push(parseInt(g, 16));
      } else {
        return null;
      }
    }
    return groups;
  };
  const head = toGroups(halves[0]!);
  const tail = halves.length === 2 ? toGroups(halves[1]!) : [];
  if (!head || !tail) return null;
  // An IPv4 tail is only legal at the very end.
  if (halves.length === 2 && halves[0]!.includes(".")) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

/** Parses a canonical-ish IP literal (brackets allowed around IPv6). Returns null if it is not one. */
export function parseIp(text: string): IpAddress | null {
  const t = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (t.includes(":")) {
    const bytes = parseIpv6Bytes(t);
    return bytes ? { family: 6, bytes } : null;
  }
  const bytes = parseIpv4Bytes(t);
  return bytes ? { family: 4, bytes } : null;
}

/** Dotted quad, or RFC 5952 IPv6 (lowercase, longest zero run compressed). */
export function formatIp(ip: IpAddress): string {
  const b = ip.bytes;
  if (ip.family === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/** `::ffff:a.b.c.d` is the IPv4 host a.b.c.d on a dual-stack socket; anything else is returned as is. */
export function unmapIpv4(ip: IpAddress): IpAddress {
  if (ip.family !== 6) return ip;
  const b = ip.bytes;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return ip;
  if (b[10] !== 0xff || b[11] !== 0xff) return ip;
  return { family: 4, bytes: b.slice(12, 16) };
}

/** "10.0.0.0/8", "fc00::/7", or a bare address (a /32 or /128). Throws on nonsense. */
export function parseCidr(text: string): Cidr {
  const [addr, prefixText, ...rest] = text.trim().split("/");
  const ip = parseIp(addr ?? "");
  const max = ip?.family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : /^[0-9]{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!ip || rest.length > 0 || !(prefix >= 0 && prefix <= max)) throw new Error(`not an IP address or CIDR: ${text}`);
  return { family: ip.family, bytes: ip.bytes, prefix };
}

export function inCidr(ip: IpAddress, cidr: Cidr): boolean {
  if (ip.family !== cidr.family) return false;
  let bits = cidr.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((ip.bytes[i]! & mask) !== (cidr.bytes[i]! & mask)) return false;
  }
  return true;
}
