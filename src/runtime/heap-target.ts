/**
 * The JavaScript engine's memory budget for a role process.
 *
 * JavaScriptCore sizes its heap from the memory it believes the machine has: the host's RAM, or
 * the container's cgroup limit. On a host with many gigabytes a busy gateway or worker let its
 * heap double between collections and sat at 180–300 MB though it held ≈ 20 MB live; told it has
 * 128 MB, the collector runs earlier and the same process stays near 130 MB at the same
 * throughput (BENCHMARKS.md, "Memory").
 *
 * How far the heap may grow past what survived a collection matters as much. Past half the budget
 * (the process's whole footprint counts, and the binary's code pages alone are ≈ 47 MB) the engine
 * grows it by only 1.24×: a worker holding ≈ 40 MB was allowed ≈ 4.7 MB of allocation per cycle,
 * and since its young generation was then under a third of the heap, every other collection was a
 * full one (475 full collections in a 30,000 e-mail burst). Growing by 1.7× there cut those to 90
 * and the worker's CPU per e-mail by a third (≈ 700 → ≈ 470 µs), the gateway's per accepted event
 * from ≈ 120 to ≈ 78 µs, with both still peaking at 122–135 MB RSS; 2× put them over 150 MB
 * (BENCHMARKS.md, tenth session).
 *
 * The engine reads these (JSC_forceRAMSize, JSC_largeHeapGrowthFactor) once, before any JavaScript
 * runs, so the compiled binary sets them by replacing itself (execve: same pid, same descriptors)
 * at the very start of a run, ≈ 10 ms. Nothing happens when the RAM size is already set (by this
 * re-exec or by the operator), when the budget is 0, or when not running from the compiled binary;
 * an operator's own growth factor is kept.
 */
export const RAM_SIZE_ENV = "BUN_JSC_forceRAMSize";
export const GROWTH_ENV = "BUN_JSC_largeHeapGrowthFactor";
const GROWTH = "1.7";

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
  return { path: proc.execPath, argv: [proc.execPath, ...proc.argv.slice(2)], env: { [GROWTH_ENV]: GROWTH, ...proc.env, [RAM_SIZE_ENV]: String(mb * 1024 * 1024) } };
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
