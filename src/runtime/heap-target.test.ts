import { describe, expect, test } from "bun:test";
import { GROWTH_ENV, heapTargetExec, RAM_SIZE_ENV } from "./heap-target.ts";

const compiled = { env: { PATH: "/bin" }, argv: ["bun", "/$bunfs/root/notify", "--role=worker"], execPath: "/usr/local/bin/notify", main: "/$bunfs/root/notify" };

describe("heapTargetExec", () => {
  test("the compiled binary re-runs itself with the budget in bytes, the heap's growth past half of it, and its own arguments", () => {
    expect(heapTargetExec(128, compiled)).toEqual({
      path: "/usr/local/bin/notify",
      argv: ["/usr/local/bin/notify", "--role=worker"],
      env: { PATH: "/bin", [RAM_SIZE_ENV]: String(134_217_728), [GROWTH_ENV]: "1.7" },
    });
  });

  test("an operator's own growth factor is kept", () => {
    expect(heapTargetExec(128, { ...compiled, env: { [GROWTH_ENV]: "1.3" } })?.env[GROWTH_ENV]).toBe("1.3");
  });

  test("once only, and never over the operator's own setting", () => {
    expect(heapTargetExec(128, { ...compiled, env: { [RAM_SIZE_ENV]: "999" } })).toBeUndefined();
  });

  test("0 leaves the engine's sizing; from source (bun src/main.ts) nothing is re-run", () => {
    expect(heapTargetExec(0, compiled)).toBeUndefined();
    expect(heapTargetExec(128, { ...compiled, argv: ["/usr/bin/bun", "/repo/src/main.ts"], main: "/repo/src/main.ts" })).toBeUndefined();
  });
});

describe("NOTIFY_HEAP_TARGET_MB default", () => {
  const db = { NOTIFY_DATABASE_URL: "postgres://db/notify", NOTIFY_AMQP_URL: "amqp://mq" };
  const target = async (env: Record<string, string>, role: string) => (await import("../config.ts")).loadConfig(env, { role }).heapTargetMb;

  test("128 for the replicated roles of a cluster (gateway, worker); the engine's own sizing for the bulk roles and the edge process", async () => {
    expect(await target(db, "gateway")).toBe(128);
    expect(await target(db, "worker")).toBe(128);
    expect(await target(db, "gateway,worker")).toBe(128);
    expect(await target(db, "scheduler")).toBe(0);
    expect(await target(db, "worker,scheduler")).toBe(0);
    expect(await target(db, "all")).toBe(0);
    expect(await target({}, "all")).toBe(0);
    expect(await target({ ...db, NOTIFY_HEAP_TARGET_MB: "512" }, "scheduler")).toBe(512);
  });
});
