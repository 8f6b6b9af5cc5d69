import { describe, expect, test } from "bun:test";
import { heapTargetExec, RAM_SIZE_ENV } from "./heap-target.ts";

const compiled = { env: { PATH: "/bin" }, argv: ["bun", "/$bunfs/root/notify", "--role=worker"], execPath: "/usr/local/bin/notify", main: "/$bunfs/root/notify" };

describe("heapTargetExec", () => {
  test("the compiled binary re-runs itself with the budget in bytes and its own arguments", () => {
    expect(heapTargetExec(128, compiled)).toEqual({
      path: "/usr/local/bin/notify",
      argv: ["/usr/local/bin/notify", "--role=worker"],
      env: { PATH: "/bin", [RAM_SIZE_ENV]: String(134_217_728) },
    });
  });

  test("once only, and never over the operator's own setting", () => {
    expect(heapTargetExec(128, { ...compiled, env: { [RAM_SIZE_ENV]: "999" } })).toBeUndefined();
  });

  test("0 leaves the engine's sizing; from source (bun src/main.ts) nothing is re-run", () => {
    expect(heapTargetExec(0, compiled)).toBeUndefined();
    expect(heapTargetExec(128, { ...compiled, argv: ["/usr/bin/bun", "/repo/src/main.ts"], main: "/repo/src/main.ts" })).toBeUndefined();
  });
});
