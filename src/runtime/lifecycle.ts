/**
 * Everything long-lived registers a stop function here; stop runs them in reverse order of start,
 * each bounded by the shared deadline, so SIGTERM drains in a fixed, predictable order.
 */
import type { Logger } from "./log.ts";

export type Stop = () => Promise<void> | void;

export interface Lifecycle {
  /** Registers a component's stop; returns it for convenience. */
  add(name: string, stop: Stop): void;
  stop(deadlineMs: number): Promise<boolean>;
  readonly stopping: boolean;
}

export function createLifecycle(log: Logger): Lifecycle {
  const stack: Array<{ name: string; stop: Stop }> = [];
  let stopping = false;
  return {
    add(name, stop) {
      stack.push({ name, stop });
    },
    get stopping() {
      return stopping;
    },
    async stop(deadlineMs) {
      stopping = true;
      const deadline = Date.now() + deadlineMs;
      let clean = true;
      while (stack.length) {
        const { name, stop } = stack.pop()!;
        const left = Math.max(0, deadline - Date.now());
        const started = Date.now();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const timeout = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), left)));
        try {
          const result = await Promise.race([Promise.resolve(stop()).then(() => "ok" as const), timeout]);
          if (result === "timeout") {
            clean = false;
            log.warn("stop deadline passed", { component: name });
          } else log.debug("stopped", { component: name, duration_ms: Date.now() - started });
        } catch (err) {
          clean = false;
          log.error("stop failed", { component: name, err });
        } finally {
          clearTimeout(timer);
        }
      }
      return clean;
    },
  };
}

/** Resolves after `ms`, or at once when the signal aborts. For loops that must stop promptly. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
