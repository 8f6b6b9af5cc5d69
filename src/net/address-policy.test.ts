import { describe, expect, test } from "bun:test";
import { classifyAddress, createAddressPolicy } from "./address-policy.ts";
import { formatIp, inCidr, parseCidr, parseIp } from "./ip-address.ts";

const kind = (text: string) => {
  const ip = parseIp(text);
  if (!ip) throw new Error(`unparseable in test: ${text}`);
  return classifyAddress(ip).kind;
};

describe("parseIp / formatIp", () => {
  test("canonical forms round-trip", () => {
    for (const [input, out] of [
      ["127.0.0.1", "127.0.0.1"],
      ["[::1]", "::1"],
      ["0:0:0:0:0:0:0:1", "::1"],
      ["::ffff:127.0.0.1", "::ffff:7f00:1"],
      ["2001:DB8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
      ["fe80::", "fe80::"],
      ["::", "::"],
      ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ]) {
      expect(formatIp(parseIp(input!)!), input).toBe(out!);
    }
  });

  test("loose IPv4 spellings are not addresses here (they fail closed)", () => {
    for (const s of ["0177.0.0.1", "0x7f.0.0.1", "127.1", "2130706433", "127.0.0.1.", "256.0.0.1", "1.2.3", " 1.2.3.4", "fe80::1%eth0", "1::2::3", "1:2:3:4:5:6:7:8:9", "::1.2.3.4:1", "1.2.3.4::"]) {
      expect(parseIp(s), s).toBeNull();
    }
  });

  test("CIDR matching", () => {
    expect(inCidr(parseIp("172.31.255.255")!, parseCidr("172.16.0.0/12"))).toBe(true);
    expect(inCidr(parseIp("172.32.0.0")!, parseCidr("172.16.0.0/12"))).toBe(false);
    expect(inCidr(parseIp("fdff::1")!, parseCidr("fc00::/7"))).toBe(true);
    expect(inCidr(parseIp("10.0.0.1")!, parseCidr("::/0"))).toBe(false); // families never mix
    expect(() => parseCidr("10.0.0.0/33")).toThrow();
    expect(() => parseCidr("example.com")).toThrow();
  });
});

describe("classifyAddress", () => {
  test.each([
    "10.1.2.3", "100.64.0.1", "100.127.255.255", "127.0.0.1", "127.255.255.254", "169.254.169.254", "172.16.0.1",
    "172.31.255.255", "192.0.0.8", "192.0.2.1", "192.168.0.1", "198.18.0.1", "198.19.255.255",
    "::1", "fc00::1", "fd12:3456::1", "fe80::1", "febf::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
    "64:ff9b::127.0.0.1", "64:ff9b::a00:1", "2002:7f00:1::", "2002:c0a8:101::1", "::127.0.0.1", "2001:db8::1", "fec0::1",
  ])("%s is private", (a) => expect(kind(a)).toBe("private"));

  test.each(["0.0.0.0", "0.1.2.3", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255", "::", "ff02::1", "::ffff:0.0.0.0", "64:ff9b::e000:1"])(
    "%s is never allowed",
    (a) => expect(kind(a)).toBe("never"),
  );

  test.each(["1.1.1.1", "8.8.8.8", "93.184.215.14", "100.63.255.255", "100.128.0.0", "172.15.255.255", "172.32.0.0", "198.17.255.255", "198.20.0.0", "2606:4700:4700::1111", "2a00:1450::1", "64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8"])(
    "%s is public",
    (a) => expect(kind(a)).toBe("public"),
  );
});

describe("createAddressPolicy", () => {
  test("allow-list: names admit only themselves, CIDRs admit their range, never-ranges stay closed", () => {
    const policy = createAddressPolicy({ allowList: ["Users.Internal.", "10.20.0.0/16", "127.0.0.1", "fd00::/8"] });
    expect(policy.check("users.internal", "192.168.1.5").allowed).toBe(true);
    expect(policy.check("USERS.internal.", "127.0.0.1").allowed).toBe(true);
    expect(policy.check("billing.internal", "192.168.1.5").allowed).toBe(false);
    expect(policy.check("any.example", "10.20.3.4").allowed).toBe(true);
    expect(policy.check("any.example", "10.21.3.4").allowed).toBe(false);
    expect(policy.check("any.example", "::ffff:127.0.0.1").allowed).toBe(true); // judged as 127.0.0.1
    expect(policy.check("any.example", "fd00::5").allowed).toBe(true);
    const everything = createAddressPolicy({ allowList: ["0.0.0.0/0", "::/0"], allowPrivate: true });
    expect(everything.check("any.example", "0.0.0.0")).toEqual({ allowed: false, reason: "unspecified ('this network')" });
    expect(everything.check("any.example", "224.0.0.1").allowed).toBe(false);
    expect(everything.check("any.example", "::").allowed).toBe(false);
  });

  test("a verdict carries the address to connect to, IPv4-mapped unmapped", () => {
    const v = createAddressPolicy({ allowPrivate: true }).check("h", "::ffff:127.0.0.1");
    expect(v.allowed && formatIp(v.address)).toBe("127.0.0.1");
  });

  test("localhost names are refused by name unless allowed", () => {
    expect(createAddressPolicy({}).checkName("localhost").allowed).toBe(false);
    expect(createAddressPolicy({}).checkName("api.localhost.").allowed).toBe(false);
    expect(createAddressPolicy({}).checkName("localhost.example.com").allowed).toBe(true);
    expect(createAddressPolicy({ allowPrivate: true }).checkName("localhost").allowed).toBe(true);
  });

  test("bad allow-list entries throw at construction", () => {
    for (const e of ["10.0.0.0/40", "https://x", "1.2.3", "a b"]) expect(() => createAddressPolicy({ allowList: [e] }), e).toThrow();
  });
});
