/**
 * The JavaScript engine's memory budget for a role process.
 *
 * JavaScriptCore sizes its heap from the memory it believes the machine has: the host's RAM, or
 * the container's cgroup limit. On a host with many gigabytes a busy gateway or worker let its
 * heap double between collections and sat at 180–300 MB though it held ≈ 20 MB live; told it has
 * 128 MB, the collector runs earlier and the same process stays near 130 MB at the same
 * throughput (BENCHMARKS.md, "Memory").
 *
 * The engine reads that figure (JSC_forceRAMSize) once, before any JavaScript runs, so the compiled
 * binary sets it by replacing itself (execve: same pid, same descriptors) at the very start of a
 * run, ≈ 10 ms. Nothing happens when the variable is already set (by this re-exec or by the
 * operator), when the budget is 0, or when not running from the compiled binary.
 */
export const RAM_SIZE_ENV = "BUN_JSC_forceRAMSize";

export interface Exec {
  path: string;
  argv: string[];
  env: Record<string, string | undefined>;
}

/** The exec that applies `mb`, or undefined when this process should go on as it is. */
export function heapTargetExec(mb: number, proc: { env: Record<string, string | undefined>; argv: string[]; execPath: string; main: string }): Exec | undefined {
  if (mb <= 0 || proc.env[RAM_SIZE_ENV] !== undefined) return undefined;
  // Compiled: argv is ["bun", "/$bunfs/root/notify", ...args]; the binary itself takes only the args.
  if (!proc.main.startsWith("/$bunfs/")) return undefined;
  return { path: proc.execPath, argv: [proc.execPath, ...proc.argv.slice(2)], env: { ...proc.env, [RAM_SIZE_ENV]: String(mb * 1024 * 1024) } };
}

/**
 * Replaces this process with itself under the budget (does not return), or returns: undefined when
 * there is nothing to apply, the error when execve failed (the process goes on with the engine's
 * own sizing).
 */
export function applyHeapTarget(mb: number): unknown {
  const exec = heapTargetExec(mb, { env: process.env, argv: process.argv, execPath: process.execPath, main: Bun.main });
  if (!exec) return undefined;
  try {
    process.execve?.(exec.path, exec.argv, exec.env);
    return undefined;
  } catch (err) {
    return err;
  }
}
