/**
 * Runs the compiled dist/notify as separate processes, the way operators do.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { resolve } from "node:path";
import type { Subprocess } from "bun";
import { waitFor } from "./services.ts";

export const BINARY = resolve(import.meta.dir, "../../dist/notify");

/** Builds dist/notify unless it exists and is newer than the sources (npm test builds it first). */
export async function ensureBinary(): Promise<string> {
  if (!existsSync(BINARY) || newestSource() > statSync(BINARY).mtimeMs) {
    const p = Bun.spawn(["bun", "run", "build"], { cwd: resolve(import.meta.dir, "../.."), stdout: "ignore", stderr: "pipe", env: { ...process.env, PATH: `${resolve(import.meta.dir, "../../node_modules/.bin")}:${process.env.PATH}` } });
    if ((await p.exited) !== 0) throw new Error(`build failed: ${await new Response(p.stderr).text()}`);
  }
  return BINARY;
}

function newestSource(dir = resolve(import.meta.dir, "../../src")): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = resolve(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

export async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

export interface NotifyProcess {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  port: number;
  logs: string[];
  kill(signal?: NodeJS.Signals | number): Promise<number>;
}

export async function runBinary(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = Bun.spawn([BINARY, ...args], { env: { PATH: process.env.PATH ?? "", ...env }, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

/**
 * Starts `notify --role=<role>` and waits for /readyz on its HTTP or admin port, polling every
 * `readyPollMs` (50; the ready-time bench polls every 2 ms so the figure is not the poll's).
 */
export async function startNotify(role: string, env: Record<string, string>, opts: { readyTimeoutMs?: number; readyPollMs?: number } = {}): Promise<NotifyProcess> {
  // freePort's port is free only until someone binds it: the child's own embedded PostgreSQL
  // listens on an ephemeral loopback port at start, and can be handed the very port just released
  // here. Deployments configure fixed ports outside that range; a test tries another port instead.
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnNotify(role, env, opts);
    } catch (err) {
      if (!(err instanceof PortTakenError) || attempt === 3) throw err;
    }
  }
}

class PortTakenError extends Error {}

async function spawnNotify(role: string, env: Record<string, string>, opts: { readyTimeoutMs?: number; readyPollMs?: number }): Promise<NotifyProcess> {
  const port = await freePort();
  const portVar = role.includes("gateway") || role === "all" ? "NOTIFY_HTTP_PORT" : "NOTIFY_ADMIN_PORT";
  // NOTIFY_BENCH_EXEC="bun --cpu-prof-md --cpu-prof-dir=/tmp/prof src/main.ts" profiles a bench's notify from source.
  const exec = process.env.NOTIFY_BENCH_EXEC?.split(" ").filter(Boolean) ?? [BINARY];
  const proc = Bun.spawn([...exec, `--role=${role}`], {
    // Every listener on a port of its own: a fixed default (gRPC 50051, admin 9090) would collide
    // with another notify on this machine (a parallel test run, a developer's instance).
    env: { PATH: process.env.PATH ?? "", NOTIFY_LOG_LEVEL: "info", NOTIFY_HTTP_HOST: "127.0.0.1", NOTIFY_GRPC_PORT: "0", NOTIFY_ADMIN_PORT: "0", ...env, [portVar]: String(port) },
    stdout: "pipe",
    stderr: "pipe",
  });
  const logs: string[] = [];
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of s) logs.push(...dec.decode(chunk).split("\n").filter(Boolean));
  };
  const pumped = Promise.all([pump(proc.stdout), pump(proc.stderr)]);
  // An early exit ends the wait at once (a throw inside waitFor would only be retried until the deadline).
  await waitFor(
    async () => proc.exitCode !== null || (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok,
    { timeoutMs: opts.readyTimeoutMs ?? 20_000, what: `notify --role=${role} ready`, intervalMs: opts.readyPollMs ?? 50 },
  );
  if (proc.exitCode !== null) {
    await pumped;
    if (logs.some((l) => l.includes(`port ${port} in use`))) throw new PortTakenError(`port ${port} was taken`);
    throw new Error(`notify --role=${role} exited ${proc.exitCode}: ${logs.slice(-20).join("\n")}`);
  }
  return {
    proc,
    port,
    logs,
    async kill(signal = "SIGTERM") {
      proc.kill(signal);
      return proc.exited;
    },
  };
}
