/**
 * Live in-app fan-out (SPEC 7: 10k users, one event each posted at 2,000/s, p99 POST → socket
 * receipt ≤ 100 ms), beside the raw Bun server.publish rate measured in the same run.
 *
 *   bun bench/ws-fanout.ts [--users 10000] [--rate 2000]
 *
 * 1. Raw: a bare Bun.serve with one socket per user subscribed to its own topic; server.publish to
 *    every topic as fast as possible, timed until every client has its message.
 * 2. notify: the compiled binary as a gateway and a worker on a fresh database and vhost; one
 *    socket per user (user JWT); one in-app event per user posted at `rate`/s; latency from the
 *    start of each POST to the frame arriving on that user's socket.
 */
import { parseArgs } from "node:util";
import { ensureBinary, startNotify } from "../test/support/binary.ts";
import { AUDIENCE, ISSUER, JWT_SECRET, signToken } from "../test/support/realtime.ts";
import { createTestDb, createTestVhost, waitFor } from "../test/support/services.ts";

const { values: args } = parseArgs({ args: Bun.argv.slice(2), options: { users: { type: "string", default: "10000" }, rate: { type: "string", default: "2000" } } });
const USERS = Number(args.users);
const RATE = Number(args.rate);
const KEY = "bench-admin-key-0123456789abcdef";

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const round = (x: number) => Math.round(x * 10) / 10;

/** Opens `n` sockets with bounded concurrency; onMessage(i, data) per frame. */
async function openSockets(n: number, url: (i: number) => Promise<{ url: string; protocols?: string[] }>, onMessage: (i: number, data: string) => void): Promise<WebSocket[]> {
  const out: WebSocket[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: 100 }, async () => {
      while (next < n) {
        const i = next++;
        const u = await url(i);
        const ws = new WebSocket(u.url, u.protocols);
        ws.onmessage = (e) => onMessage(i, String(e.data));
        await new Promise<void>((resolve, reject) => {
          ws.onopen = () => resolve();
          ws.onerror = () => reject(new Error(`socket ${i} failed`));
        });
        out[i] = ws;
      }
    }),
  );
  return out;
}

/**
 * The raw phase holds both ends of every socket in this process (two descriptors each): at most
 * RAW_SOCKETS of them, so that it fits under this sandbox's 20,000 open files per process. It
 * measures a rate, which does not depend on the count.
 */
const RAW_SOCKETS = Math.min(USERS, 8000);

async function raw(): Promise<number> {
  const server = Bun.serve<{ i: number }>({
    port: 0,
    hostname: "127.0.0.1",
    fetch: (req, srv) => (srv.upgrade(req, { data: { i: Number(new URL(req.url).searchParams.get("i")) } }) ? undefined : new Response("no", { status: 400 })),
    websocket: { open: (ws) => void ws.subscribe(`user:${ws.data.i}`), message() {} },
  });
  let got = 0;
  const sockets = await openSockets(RAW_SOCKETS, async (i) => ({ url: `ws://127.0.0.1:${server.port}/?i=${i}` }), () => got++);
  const frame = JSON.stringify({ type: "notification", id: crypto.randomUUID(), event: "bench", title: "raw", body: "x".repeat(100), data: {}, created_at: new Date().toISOString() });
  const started = performance.now();
  for (let i = 0; i < RAW_SOCKETS; i++) server.publish(`user:${i}`, frame);
  await waitFor(() => got >= RAW_SOCKETS, { timeoutMs: 60_000, intervalMs: 1 });
  const rate = RAW_SOCKETS / ((performance.now() - started) / 1000);
  for (const s of sockets) s.close();
  server.stop(true);
  return rate;
}

async function notify(): Promise<{ p50: number; p99: number; max: number; received: number; posted: number; postRate: number }> {
  await ensureBinary();
  const [db, vhost] = await Promise.all([createTestDb(), createTestVhost()]);
  const env = { NOTIFY_DATABASE_URL: db.url, NOTIFY_AMQP_URL: vhost.url, NOTIFY_ADMIN_KEY: KEY, NOTIFY_JWT_SECRET: JWT_SECRET, NOTIFY_JWT_ISSUER: ISSUER, NOTIFY_JWT_AUDIENCE: AUDIENCE, NOTIFY_LOG_LEVEL: "warn" };
  const [gw, worker] = await Promise.all([startNotify("gateway", env), startNotify("worker", { ...env, NOTIFY_WORKER_CONCURRENCY: "64" })]);
  const postedAt = new Float64Array(USERS);
  const latency: number[] = [];
  let sockets: WebSocket[] = [];
  try {
    sockets = await openSockets(
      USERS,
      async (i) => ({ url: `ws://127.0.0.1:${gw.port}/ws`, protocols: ["bearer", await signToken(`fan-${i}`, { expiresIn: "1h" })] }),
      (i, data) => {
        if (data.includes('"type":"notification"') && postedAt[i]) latency.push(performance.now() - postedAt[i]!);
      },
    );
    const started = performance.now();
    let posted = 0;
    const inflight = new Set<Promise<unknown>>();
    for (let i = 0; i < USERS; i++) {
      // Pace: event i goes at started + i/RATE seconds.
      const due = started + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 1) await Bun.sleep(wait);
      postedAt[i] = performance.now();
      const p = fetch(`http://127.0.0.1:${gw.port}/api/v1/events`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ event: "bench.fanout", to: [{ user_id: `fan-${i}` }], channels: ["in_app"], title: `m${i}`, body: "x".repeat(100) }),
      }).then((r) => (r.status === 202 ? posted++ : undefined));
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    }
    await Promise.all(inflight);
    const postRate = posted / ((performance.now() - started) / 1000);
    await waitFor(() => latency.length >= posted, { timeoutMs: 120_000, intervalMs: 50 }).catch(() => undefined);
    return { p50: pct(latency, 50), p99: pct(latency, 99), max: Math.max(...latency), received: latency.length, posted, postRate };
  } finally {
    for (const s of sockets) s?.close();
    await Promise.allSettled([gw.kill("SIGKILL"), worker.kill("SIGKILL")]);
    await Promise.allSettled([db.drop(), vhost.drop()]);
  }
}

const rawRate = await raw();
const r = await notify();
console.log(
  JSON.stringify({
    bench: "ws-fanout",
    users: USERS,
    target_rate: RATE,
    posted: r.posted,
    achieved_post_rate: Math.round(r.postRate),
    received: r.received,
    p50_ms: round(r.p50),
    p99_ms: round(r.p99),
    max_ms: round(r.max),
    target_p99_ms: 100,
    raw_bun_publish_per_s: Math.round(rawRate),
    notify_deliveries_per_s_vs_raw: Math.round((Math.min(r.postRate, RATE) / rawRate) * 1000) / 1000,
  }),
);
