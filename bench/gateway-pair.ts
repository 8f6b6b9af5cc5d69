/**
 * Two gateway builds side by side, under the same paced load at the same time: this machine's speed
 * drifts by up to 60 % within an hour, so runs of A and then B compare the machine as much as the
 * builds. Here drift hits both alike, and each round prints the CPU each gateway spent per accepted
 * event (from /proc) and their ratio. Give the same build twice to see the method's own spread.
 *
 *   bun run build && BIN_A=/path/old/notify BIN_B=dist/notify bun bench/gateway-pair.ts [rate=1500] [seconds=8] [rounds=4]
 *   EXTRA_A / EXTRA_B: environment for one side only ("K=V,K=V").
 * Each gateway has its own fresh database and vhost (PostgreSQL and RabbitMQ on loopback), no worker.
 */
import { eventBody, openLoop, saturate } from "./support/load.ts";
import { notifyStack } from "./support/stack.ts";
import { cpuMs, fmt, pids } from "./support/stats.ts";

const RATE = Number(process.argv[2] ?? 1500);
const SECONDS = Number(process.argv[3] ?? 8);
const ROUNDS = Number(process.argv[4] ?? 4);
const bins = { A: process.env.BIN_A ?? "dist/notify", B: process.env.BIN_B ?? process.env.BIN_A ?? "dist/notify" };
const envOf = (v?: string) => Object.fromEntries((v ?? "").split(",").filter(Boolean).map((x) => x.split("=", 2) as [string, string]));
const extra = { A: envOf(process.env.EXTRA_A), B: envOf(process.env.EXTRA_B) };
type Side = "A" | "B";

console.log(`# A ${bins.A} ${JSON.stringify(extra.A)} | B ${bins.B} ${JSON.stringify(extra.B)}; ${fmt(RATE)} events/s each, ${SECONDS}s, ${ROUNDS} rounds`);
const per: Record<Side, number[]> = { A: [], B: [] };
for (let r = 0; r < ROUNDS; r++) {
  const stacks = {} as Record<Side, Awaited<ReturnType<typeof notifyStack>>>;
  // Started in alternating order: the second one starts on a busier machine.
  for (const side of (r % 2 ? ["B", "A"] : ["A", "B"]) as Side[]) {
    process.env.NOTIFY_BENCH_EXEC = bins[side];
    stacks[side] = await notifyStack(extra[side], false);
  }
  const sides = ["A", "B"] as Side[];
  await Promise.all(sides.map((s) => saturate({ url: stacks[s].url, headers: stacks[s].headers, body: (n) => eventBody(`warm-${n}`), seconds: 2, concurrency: 32 })));
  const before = sides.map((s) => cpuMs(pids(stacks[s].gateway.proc.pid)));
  const runs = await Promise.all(sides.map((s) => openLoop({ url: stacks[s].url, headers: stacks[s].headers, body: eventBody, rate: RATE, seconds: SECONDS, tag: `run-${s}` })));
  const us = sides.map((s, i) => ((cpuMs(pids(stacks[s].gateway.proc.pid)) - before[i]!) * 1000) / runs[i]!.latencies.length);
  per.A.push(us[0]!);
  per.B.push(us[1]!);
  console.log(`round ${r + 1}: A ${fmt(us[0]!, 1)} µs/event, B ${fmt(us[1]!, 1)} µs/event, B/A ${fmt(us[1]! / us[0]!, 3)} (errors ${runs[0]!.errors} / ${runs[1]!.errors})`);
  await Promise.all(sides.map((s) => stacks[s].stop()));
}
const mean = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
console.log(`mean: A ${fmt(mean(per.A), 1)}, B ${fmt(mean(per.B), 1)} µs/event; B/A ${fmt(mean(per.B) / mean(per.A), 3)}`);
process.exit(0);
