/**
 * Two builds side by side, under the same paced load at the same time: this machine's speed drifts
 * by up to 60 % within an hour, so runs of A and then B compare the machine as much as the builds.
 * Here drift hits both alike, and each round prints the CPU each side's gateway spent per accepted
 * event (from /proc) and their ratio. Give the same build twice to see the method's own spread.
 * PAIR_WORKER=1: each side also runs a worker sending to an SMTP sink of its own; the round then
 * lasts until every e-mail is received and prints the worker's CPU per e-mail too.
 *
 *   bun run build && BIN_A=/path/old/notify BIN_B=dist/notify bun bench/gateway-pair.ts [rate=1500] [seconds=8] [rounds=4]
 *   EXTRA_A / EXTRA_B: environment for one side only ("K=V,K=V").
 * Each side has its own fresh database and vhost (PostgreSQL and RabbitMQ on loopback).
 */
import { eventBody, openLoop, saturate } from "./support/load.ts";
import { startSink, waitDelivered, type Sink } from "./support/sink.ts";
import { notifyStack } from "./support/stack.ts";
import { cpuMs, fmt, pids } from "./support/stats.ts";

const RATE = Number(process.argv[2] ?? 1500);
const SECONDS = Number(process.argv[3] ?? 8);
const ROUNDS = Number(process.argv[4] ?? 4);
const bins = { A: process.env.BIN_A ?? "dist/notify", B: process.env.BIN_B ?? process.env.BIN_A ?? "dist/notify" };
const envOf = (v?: string) => Object.fromEntries((v ?? "").split(",").filter(Boolean).map((x) => x.split("=", 2) as [string, string]));
const extra = { A: envOf(process.env.EXTRA_A), B: envOf(process.env.EXTRA_B) };
type Side = "A" | "B";
const WORKER = process.env.PAIR_WORKER === "1";

console.log(`# A ${bins.A} ${JSON.stringify(extra.A)} | B ${bins.B} ${JSON.stringify(extra.B)}; ${fmt(RATE)} events/s each, ${SECONDS}s, ${ROUNDS} rounds`);
const per: Record<Side, number[]> = { A: [], B: [] };
const perWorker: Record<Side, number[]> = { A: [], B: [] };
const sinks = {} as Record<Side, Sink>;
if (WORKER) for (const side of ["A", "B"] as Side[]) sinks[side] = await startSink();
for (let r = 0; r < ROUNDS; r++) {
  const stacks = {} as Record<Side, Awaited<ReturnType<typeof notifyStack>>>;
  // Started in alternating order: the second one starts on a busier machine.
  for (const side of (r % 2 ? ["B", "A"] : ["A", "B"]) as Side[]) {
    process.env.NOTIFY_BENCH_EXEC = bins[side];
    const smtp: Record<string, string> = WORKER ? { NOTIFY_SMTP_URL: `smtp://127.0.0.1:${sinks[side].port}?starttls=off`, NOTIFY_WORKER_CONCURRENCY: "64" } : {};
    stacks[side] = await notifyStack({ ...smtp, ...extra[side] }, WORKER);
  }
  const sides = ["A", "B"] as Side[];
  const tags = sides.map((s) => `r${r}${s}`);
  // Warm-up: saturated for the gateway alone; with workers paced, and drained before the measured window.
  await Promise.all(
    sides.map(async (s, i) => {
      if (!WORKER) return saturate({ url: stacks[s].url, headers: stacks[s].headers, body: (n) => eventBody(`warm-${n}`), seconds: 2, concurrency: 32 });
      const warm = await openLoop({ url: stacks[s].url, headers: stacks[s].headers, body: eventBody, rate: RATE, seconds: 3, tag: `warm${tags[i]}` });
      await waitDelivered(sinks[s], warm.sentAt.keys(), 120_000);
    }),
  );
  const gw = sides.map((s) => pids(stacks[s].gateway.proc.pid));
  const wk = sides.map((s) => pids(stacks[s].worker?.proc.pid ?? -1));
  const before = sides.map((_, i) => [cpuMs(gw[i]!), cpuMs(wk[i]!)] as const);
  const runs = await Promise.all(
    sides.map(async (s, i) => {
      const run = await openLoop({ url: stacks[s].url, headers: stacks[s].headers, body: eventBody, rate: RATE, seconds: SECONDS, tag: tags[i]! });
      if (WORKER) await waitDelivered(sinks[s], run.sentAt.keys(), 120_000);
      return run;
    }),
  );
  const us = sides.map((_, i) => ((cpuMs(gw[i]!) - before[i]![0]) * 1000) / runs[i]!.latencies.length);
  const wus = sides.map((_, i) => ((cpuMs(wk[i]!) - before[i]![1]) * 1000) / runs[i]!.latencies.length);
  per.A.push(us[0]!);
  per.B.push(us[1]!);
  perWorker.A.push(wus[0]!);
  perWorker.B.push(wus[1]!);
  const worker = WORKER ? `; worker A ${fmt(wus[0]!, 1)}, B ${fmt(wus[1]!, 1)} µs/e-mail, B/A ${fmt(wus[1]! / wus[0]!, 3)}` : "";
  console.log(`round ${r + 1}: gateway A ${fmt(us[0]!, 1)}, B ${fmt(us[1]!, 1)} µs/event, B/A ${fmt(us[1]! / us[0]!, 3)}${worker} (errors ${runs[0]!.errors} / ${runs[1]!.errors})`);
  await Promise.all(sides.map((s) => stacks[s].stop()));
}
const mean = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
console.log(`mean: gateway A ${fmt(mean(per.A), 1)}, B ${fmt(mean(per.B), 1)} µs/event; B/A ${fmt(mean(per.B) / mean(per.A), 3)}`);
if (WORKER) {
  console.log(`mean: worker A ${fmt(mean(perWorker.A), 1)}, B ${fmt(mean(perWorker.B), 1)} µs/e-mail; B/A ${fmt(mean(perWorker.B) / mean(perWorker.A), 3)}`);
  await Promise.all(Object.values(sinks).map((k) => k.stop()));
}
process.exit(0);
