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
