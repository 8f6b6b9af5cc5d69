import { readdirSync, readFileSync } from "node:fs";

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function summary(values: number[]): { n: number; p50: number; p99: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), max: s[s.length - 1] ?? NaN };
}

/** Peak RSS (MB) of processes, sampled until stop() is called. */
export function sampleRss(pids: Record<string, number>, everyMs = 250) {
  const peak: Record<string, number> = {};
  const read = async () => {
    for (const [name, pid] of Object.entries(pids)) {
      try {
        const status = await Bun.file(`/proc/${pid}/status`).text();
        const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
        peak[name] = Math.max(peak[name] ?? 0, kb / 1024);
      } catch {}
    }
  };
  const t = setInterval(read, everyMs);
  return {
    async stop() {
      clearInterval(t);
      await read();
      return Object.fromEntries(Object.entries(peak).map(([k, v]) => [k, Math.round(v)]));
    },
  };
}

export const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: d }) : "n/a");

const TICK_MS = 1000 / 100; // USER_HZ

/** CPU time (ms) used so far by the processes whose command name matches (`kind`: user, system or both). */
export function cpuMs(match: (comm: string, pid: number) => boolean, kind: "both" | "user" | "system" = "both"): number {
  let ticks = 0;
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      if (!match(comm, pid)) continue;
      const fields = stat.slice(close + 2).split(" ");
      const [utime, stime] = [Number(fields[11]), Number(fields[12])];
      ticks += kind === "user" ? utime : kind === "system" ? stime : utime + stime;
    } catch {} // gone meanwhile
  }
  return ticks * TICK_MS;
}

/** Which processes a CPU figure sums: by command name (services) or pid (what a bench started). */
export type Match = (comm: string, pid: number) => boolean;
export const SERVICES: Record<string, Match> = { postgres: (c) => c === "postgres", rabbitmq: (c) => c === "beam.smp" };
export const pids = (...ps: number[]): Match => (_, pid) => ps.includes(pid);

/** CPU µs per unit of work, by process group, over `work()`; the load generator is this process. */
export async function costs<T>(groups: Record<string, Match>, work: () => Promise<T>, units: (r: T) => number): Promise<{ result: T; text: string }> {
  const before = Object.fromEntries(Object.entries(groups).map(([k, m]) => [k, cpuMs(m)] as const));
  const me = process.cpuUsage();
  const result = await work();
  const mine = process.cpuUsage(me);
  const n = units(result);
  const parts = Object.entries(groups).map(([k, m]) => `${k} ${fmt(((cpuMs(m) - before[k]!) / n) * 1e3)}`);
  return { result, text: [...parts, `load generator ${fmt((mine.user + mine.system) / n)}`].join(", ") };
}

/**
 * The gateway's own accept histogram (`notify_events_accept_duration_seconds`: request to durable
 * acceptance) as cumulative counts by bucket bound, summed over label sets; the difference of two
 * reads is what the server saw in between, beside what the load generator measured.
 */
export async function acceptHistogram(metricsUrl: string, headers: Record<string, string>): Promise<Record<string, number>> {
  const text = await (await fetch(metricsUrl, { headers })).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^notify_events_accept_duration_seconds_bucket\{[^}]*le="([^"]+)"[^}]*\} (\d+)/gm)) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
  return out;
}

/** Share of the accepts between two histogram reads that took at most `le` seconds. */
export function shareWithin(before: Record<string, number>, after: Record<string, number>, le: string): number {
  const total = (after["+Inf"] ?? 0) - (before["+Inf"] ?? 0);
  return total > 0 ? ((after[le] ?? 0) - (before[le] ?? 0)) / total : NaN;
}
