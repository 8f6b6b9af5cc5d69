/** The HTTP load generator the acceptance benches share: closed loop, `concurrency` requests in flight. */
export async function saturate(opts: {
  url: string;
  headers: Record<string, string>;
  body: (n: number) => string;
  seconds: number;
  concurrency: number;
}): Promise<{ rate: number; count: number; errors: number }> {
  let count = 0;
  let errors = 0;
  let seq = 0;
  const end = performance.now() + opts.seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: opts.concurrency }, async () => {
      while (performance.now() < end) {
        const res = await fetch(opts.url, { method: "POST", headers: opts.headers, body: opts.body(seq++) });
        await res.arrayBuffer();
        if (res.status === 202) count++;
        else errors++;
      }
    }),
  );
  return { rate: count / ((performance.now() - started) / 1000), count, errors };
}

/** Open loop at `rate`/s for `seconds`; returns per-request latencies (ms) and send times by tag (`tag-<i>`, passed to `body`). */
export async function openLoop(opts: { url: string; headers: Record<string, string>; body: (tag: string) => string; rate: number; seconds: number; tag: string }) {
  const { url, headers, rate, seconds, tag } = opts;
  const latencies: number[] = [];
  const sentAt = new Map<string, number>();
  const total = Math.floor(rate * seconds);
  const t0 = performance.now();
  const inflight: Promise<void>[] = [];
  let errors = 0;
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await Bun.sleep(wait);
    const n = `${tag}-${i}`;
    const start = performance.now();
    sentAt.set(n, Date.now());
    inflight.push(
      fetch(url, { method: "POST", headers, body: opts.body(n) }).then(async (res) => {
        await res.arrayBuffer();
        if (res.status === 202) latencies.push(performance.now() - start);
        else errors++;
      }),
    );
    if (inflight.length > 5000) await Promise.all(inflight.splice(0, 1000));
  }
  await Promise.all(inflight);
  return { latencies, sentAt, errors, total };
}

/** ~1 KB event, like the raw publish's 1 KB message. */
export function eventBody(n: string): string {
  return JSON.stringify({
    event: "bench.event",
    to: [{ user_id: `u${n}`, email: `u${n}@bench.test`, name: "Bench User" }],
    template: "bench",
    channels: ["email"],
    data: { n, code: "123456", pad: "x".repeat(700) },
  });
}
