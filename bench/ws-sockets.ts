/**
 * Idle authenticated sockets on one gateway process (SPEC 7: ≥ 50,000, ≤ 20 KB each).
 *
 *   bun bench/ws-sockets.ts [--sockets 50000] [--sources 4]
 *
 * Runs the compiled binary (dist/notify --role=gateway) on a fresh database and vhost, then opens
 * sockets from client processes, each bound to its own loopback source address 127.0.0.<n+1>
 * (one address has ~28k ephemeral ports). Clients speak the real handshake over node:net, send a
 * user JWT as `Sec-WebSocket-Protocol: bearer, <jwt>`, then stay idle. The gateway's RSS is read
 * from /proc before and after; the difference per socket is the figure.
 */
import net from "node:net";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ensureBinary, startNotify } from "../test/support/binary.ts";
import { AUDIENCE, ISSUER, JWT_SECRET, signToken } from "../test/support/realtime.ts";
import { createTestDb, createTestVhost, waitFor } from "../test/support/services.ts";

const { values: args } = parseArgs({
  args: Bun.argv.slice(2),
  options: { sockets: { type: "string", default: "50000" }, sources: { type: "string", default: "4" }, client: { type: "string" }, port: { type: "string" }, from: { type: "string" }, count: { type: "string" } },
});

/** Client mode: open `count` sockets from `client` (a source address), print progress lines. */
async function client(source: string, port: number, from: number, count: number): Promise<void> {
  const keep: net.Socket[] = [];
  let open = 0;
  let failed = 0;
  const CONCURRENCY = 200;
  let next = from;
  const one = async (i: number) => {
    const token = await signToken(`bench-${i}`, { expiresIn: "2h" });
    await new Promise<void>((resolve) => {
      const s = net.connect({ host: "127.0.0.1", port, localAddress: source });
      let head = "";
      s.on("connect", () =>
        s.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: bearer, ${token}\r\n\r\n`),
      );
      s.on("data", (d) => {
        if (head.length >= 12) return;
        head += d.toString("latin1");
        if (head.length >= 12) {
          if (head.startsWith("HTTP/1.1 101")) open++;
          else failed++;
          resolve();
        }
      });
      s.on("error", () => {
        failed++;
        resolve();
      });
      keep.push(s);
    });
  };
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < from + count) await one(next++);
    }),
  );
  console.log(JSON.stringify({ open, failed }));
  // Idle until killed.
  await new Promise(() => {});
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0);
}

async function main(): Promise<void> {
  const total = Number(args.sockets);
  const sources = Number(args.sources);
  await ensureBinary();
  const [db, vhost] = await Promise.all([createTestDb(), createTestVhost()]);
  const gw = await startNotify("gateway", {
    NOTIFY_DATABASE_URL: db.url,
    NOTIFY_AMQP_URL: vhost.url,
    NOTIFY_JWT_SECRET: JWT_SECRET,
    NOTIFY_JWT_ISSUER: ISSUER,
    NOTIFY_JWT_AUDIENCE: AUDIENCE,
    NOTIFY_LOG_LEVEL: "warn",
    // No pings during the run: the raw clients stay silent (the figure is memory, not liveness).
    NOTIFY_WS_IDLE_TIMEOUT_S: "960",
  });
  const clients: ReturnType<typeof Bun.spawn>[] = [];
  try {
    await Bun.sleep(500); // let start-up allocations settle before the baseline (measurement, not synchronisation)
    Bun.gc?.(true);
    const before = rssKb(gw.proc.pid);
    const started = performance.now();
    const per = Math.ceil(total / sources);
    const results: Array<{ open: number; failed: number }> = [];
    for (let k = 0; k < sources; k++) {
      const count = Math.min(per, total - k * per);
      if (count <= 0) break;
      const p = Bun.spawn([process.execPath, import.meta.path, "--client", `127.0.0.${k + 1}`, "--port", String(gw.port), "--from", String(k * per), "--count", String(count)], { stdout: "pipe", stderr: "inherit" });
      clients.push(p);
      const reader = p.stdout.getReader();
      void (async () => {
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          buf += new TextDecoder().decode(value);
          const line = buf.split("\n").find((l) => l.startsWith("{"));
          if (line) return void results.push(JSON.parse(line));
        }
      })();
    }
    await waitFor(() => results.length === clients.length, { timeoutMs: 30 * 60_000, intervalMs: 500, what: "clients connected" });
    const open = results.reduce((s, r) => s + r.open, 0);
    const failed = results.reduce((s, r) => s + r.failed, 0);
    const seconds = (performance.now() - started) / 1000;
    await Bun.sleep(2000); // unread-count pushes and allocator settle (measurement)
    const after = rssKb(gw.proc.pid);
    const perSocket = ((after - before) * 1024) / Math.max(open, 1);
    console.log(
      JSON.stringify({
        bench: "ws-sockets",
        sockets_open: open,
        failed,
        connect_seconds: Math.round(seconds * 10) / 10,
        connects_per_second: Math.round(open / seconds),
        gateway_rss_before_mb: Math.round(before / 1024),
        gateway_rss_after_mb: Math.round(after / 1024),
        bytes_per_socket: Math.round(perSocket),
        target_bytes_per_socket: 20 * 1024,
        ratio_to_target: Math.round((perSocket / (20 * 1024)) * 100) / 100,
        target_sockets: 50_000,
      }),
    );
  } finally {
    for (const p of clients) p.kill();
    await gw.kill("SIGKILL");
    await Promise.allSettled([db.drop(), vhost.drop()]);
  }
}

if (args.client) await client(args.client, Number(args.port), Number(args.from), Number(args.count));
else await main();
