import { describe, expect, test } from "bun:test";
import { assertHeaderSafe, assertHeadersSafe, HeaderInjectionError, sanitizeHeaderValue } from "./headers.ts";

describe("assertHeaderSafe", () => {
  test("accepts ordinary names and values, unicode included", () => {
    expect(() => assertHeaderSafe("Subject", "Привет, мир: 100% done")).not.toThrow();
    expect(() => assertHeaderSafe("X-Notify-Id", "")).not.toThrow();
  });

  test.each([
    ["CR", "a\rBcc: victim@example.com"],
    ["LF", "a\nBcc: victim@example.com"],
    ["CRLF", "hello\r\n\r\n<html>body</html>"],
    ["NUL", "a\0b"],
  ])("rejects %s in a value, naming the field", (_label, value) => {
    let err: unknown;
    try {
      assertHeaderSafe("Subject", value);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HeaderInjectionError);
    expect((err as HeaderInjectionError).field).toBe("Subject");
    expect((err as HeaderInjectionError).part).toBe("value");
    expect((err as HeaderInjectionError).code).toBe("HEADER_INJECTION");
  });

  test("rejects names that are not RFC 9110 tokens", () => {
    for (const name of ["X-A\r\nBcc", "X A", "X:A", "", "X\0"]) {
      expect(() => assertHeaderSafe(name, "v"), JSON.stringify(name)).toThrow(HeaderInjectionError);
    }
  });

  test("assertHeadersSafe checks every entry", () => {
    expect(() => assertHeadersSafe({ a: "1", b: "2\n" })).toThrow(/"b"/);
    expect(assertHeadersSafe({ a: "1" })).toEqual({ a: "1" });
  });
});

test("sanitizeHeaderValue folds line breaks into one space", () => {
  expect(sanitizeHeaderValue("Jane \r\n Doe")).toBe("Jane Doe");
  expect(sanitizeHeaderValue("a\nb\0c")).toBe("a b c");
  expect(() => assertHeaderSafe("From", sanitizeHeaderValue("x\r\nBcc: y"))).not.toThrow();
});
