/**
 * "No input crashes a process": the compiled binary (embedded mode) takes a seeded stream of random
 * requests on every route — valid bodies with one field changed or removed, bodies built from the API's own field names with
 * values of every type and shape (wrong types, template and header injection, huge and odd strings, broken
 * JSON), odd path segments, bad cursors and limits, random GraphQL — and must answer each one
 * below 500, log no error, print nothing but JSON log lines, and stay ready. Seed via
 * NOTIFY_TEST_FUZZ_SEED to replay a run.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureBinary, startNotify, type NotifyProcess } from "./support/binary.ts";
import { AUDIENCE, ISSUER, JWT_SECRET, signToken } from "./support/realtime.ts";
import { waitFor } from "./support/services.ts";
import { connectWs } from "./support/ws-client.ts";

setDefaultTimeout(180_000);

const KEY = "fuzz-admin-key-0123456789abcdef";
const REQUESTS = 5_000;
const SEED = Number(process.env.NOTIFY_TEST_FUZZ_SEED ?? 20261125);

const ROUTES = `get /api/v1/api-keys|post /api/v1/api-keys|delete /api/v1/api-keys/:id
get /api/v1/campaigns|post /api/v1/campaigns|get /api/v1/campaigns/:id|patch /api/v1/campaigns/:id|delete /api/v1/campaigns/:id
post /api/v1/campaigns/:id/pause|post /api/v1/campaigns/:id/resume|post /api/v1/campaigns/:id/cancel|get /api/v1/campaigns/:id/next
get /api/v1/campaigns/:id/runs|post /api/v1/campaigns/preview-schedule|get /api/v1/dead-letters|post /api/v1/dead-letters/:id/replay
post /api/v1/events|get /api/v1/notifications/:id|delete /api/v1/notifications/:id|post /api/v1/notices/send|get /api/v1/notices/:id
get /api/v1/templates|get /api/v1/templates/:key|put /api/v1/templates/:key|delete /api/v1/templates/:key|get /api/v1/templates/:key/versions
post /api/v1/templates/:key/preview|get /api/v1/rules|get /api/v1/rules/:key|put /api/v1/rules/:key|delete /api/v1/rules/:key
get /api/v1/users|get /api/v1/users/:id|put /api/v1/users/:id|delete /api/v1/users/:id|get /api/v1/users/:id/preferences
put /api/v1/users/:id/preferences|post /api/v1/users/:id/telegram-link|get /api/v1/inbox|get /u/:id|post /u/:id|post /graphql`
  .split(/\||\n/)
  .map((r) => r.split(" ") as [string, string]);
const FIELDS = ["event", "to", "channels", "data", "template", "send_at", "idempotency_key", "user_id", "email", "phone", "name", "locale", "timezone", "attributes", "variants", "channel", "subject", "text", "html", "body", "title", "cron", "schedule", "audience", "all", "ids", "where", "scopes", "priority", "category", "critical", "expires_at", "opt_outs", "quiet_hours", "start", "end", "status", "key", "variables", "url", "telegram_chat_id", "local_time", "at", "limit", "cursor", "sources", "id"];
const STRINGS = ["", "a", "email", "in_app", "webhook", "sms", "telegram", "en", "ru-RU", "Europe/London", "Not/AZone", "* * * * *", "0 0 31 2 *", "61 25 * * *", "2026-13-45T99:99:99Z", "2020-01-01T00:00:00Z", "2099-01-01T00:00:00Z", "{{ name }}", "{{ it.constructor.constructor('return process')() }}", "{{", "}}", "{{#each x}}", "<script>alert(1)</script>", "\u0000", "\r\nBcc: x@y", "x".repeat(100_000), "😀".repeat(1000), "../../etc/passwd", "http://127.0.0.1:22/", "u1", "a@b.c", "__proto__", "constructor", "-1", "1e309", "NaN"];
const SEGMENTS = ["%00", "u1", "x", "welcome", "0", "01a2124c-6bf4-7457-af7b-325b126f8296", "a".repeat(3000), "%", "😀", "..", "__proto__"];
const GRAPHQL = ["{ notifications { items { id } } }", "{ __schema { types { name } } }", "{ " + "templates { ".repeat(50) + "}".repeat(51), "mutation { sendEvent(input: {event: \"x\"}) { id } }", "subscription { inbox { id } }", "{", "query($x: Int) { notification(id: $x) { id } }"];

/**
 * Valid requests, so that mutations of them get past the first validation and reach deeper code
 * (rendering, the worker, the scheduler): one field replaced, added or removed at a time.
 */
const VALID: Array<[string, string, () => Record<string, unknown>]> = [
  ["put", "/api/v1/templates/t1", () => ({ name: "T", variants: [{ channel: "email", locale: "en", subject: "Hi {{ name }}", text: "Hello {{ name }} {{ code }}" }, { channel: "in_app", locale: "en", title: "Hi", body: "{{ name }}" }] })],
  ["post", "/api/v1/events", () => ({ event: "e", to: [{ user_id: "u1", email: "u1@example.com" }], template: "t1", channels: ["email", "in_app"], data: { name: "N", code: "C" } })],
  ["post", "/api/v1/events", () => ({ event: "e", to: ["u1"], channels: ["in_app", "email"], title: "t", body: "b", send_at: "2099-01-01T00:00:00Z" })],
  ["put", "/api/v1/users/u1", () => ({ email: "u1@example.com", name: "U", locale: "en", timezone: "Europe/London", attributes: { plan: "premium" } })],
  ["put", "/api/v1/users/u1/preferences", () => ({ opt_outs: [{ category: "news", channel: "email" }], quiet_hours: { start: "22:00", end: "08:00" } })],
  ["put", "/api/v1/rules/e", () => ({ template: "t1", channels: ["email", "in_app"], category: "account", priority: "normal" })],
  ["post", "/api/v1/campaigns", () => ({ name: "C", template: "t1", channels: ["in_app"], audience: { where: { "attributes.plan": "premium" } }, schedule: { cron: "*/5 * * * *", timezone: "Europe/Moscow" }, data: { code: "X" } })],
  ["post", "/api/v1/campaigns/preview-schedule", () => ({ schedule: { cron: "0 18 * * 5", timezone: "Europe/Moscow" }, count: 5 })],
];
function mutate(o: Record<string, unknown>): Record<string, unknown> {
  // Walk to a random object inside (arrays' first elements too) and change one key there.
  let target: any = o;
  for (let d = int(3); d > 0; d--) {
    const inner = Object.values(target).filter((v) => v && typeof v === "object");
    if (!inner.length) break;
    const next: any = pick(inner);
    target = Array.isArray(next) ? (next[0] && typeof next[0] === "object" ? next[0] : target) : next;
  }
  const keys = Object.keys(target);
  const k = int(4) && keys.length ? pick(keys) : pick(FIELDS);
  if (int(5)) target[k] = value(1);
  else delete target[k];
  return o;
}

/** mulberry32: small, seedable, good enough to pick test inputs. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = rng(SEED);
const int = (n: number) => Math.floor(random() * n);
const pick = <T>(a: readonly T[]): T => a[int(a.length)]!;
function value(depth: number): unknown {
  switch (int(depth > 3 ? 5 : 8)) {
    case 0:
    case 1:
      return pick(STRINGS);
    case 2:
      return pick([0, -1, 1.5, 1e308, 2 ** 53 + 1, 100_000_000]);
    case 3:
      return pick([true, false, null]);
    case 4:
      return int(2) ? [] : {};
    case 5:
      return Array.from({ length: int(4) }, () => value(depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = int(6); i > 0; i--) o[int(10) ? pick(FIELDS) : pick(STRINGS).slice(0, 30)] = value(depth + 1);
      return o;
    }
  }
}

let n: NotifyProcess;
let dir: string;
beforeAll(async () => {
  await ensureBinary();
  dir = mkdtempSync(join(tmpdir(), "notify-fuzz-"));
  n = await startNotify("all", { NOTIFY_DATA_DIR: dir, NOTIFY_ADMIN_KEY: KEY, NOTIFY_JWT_SECRET: JWT_SECRET, NOTIFY_JWT_ISSUER: ISSUER, NOTIFY_JWT_AUDIENCE: AUDIENCE, NOTIFY_GRPC_PORT: "0", NOTIFY_ADMIN_PORT: "0", NOTIFY_LOG_LEVEL: "warn" });
});
afterAll(async () => {
  await n?.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
});

test(`${REQUESTS} random requests (seed ${SEED}): every answer below 500, no error logged, nothing but JSON logs, still ready`, async () => {
  const failures: string[] = [];
  let sent = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (sent < REQUESTS) {
        sent++;
        const valid = int(2) ? pick(VALID) : undefined;
        const [method, route] = valid ?? pick(ROUTES);
        const path = route.replace(/:[a-z]+/g, () => { const seg = pick(SEGMENTS); return seg === "%00" ? seg : encodeURIComponent(seg); }) + (int(5) ? "" : `?limit=${pick(["-1", "x", "1e9", "0", "10"])}&cursor=${encodeURIComponent(pick(SEGMENTS))}`);
        let body: string | undefined;
        if (method !== "get" && method !== "delete") {
          if (route === "/graphql") body = JSON.stringify({ query: pick(GRAPHQL), variables: int(2) ? value(1) : int(2) ? "{broken" : undefined });
          else if (valid) body = JSON.stringify(int(8) ? mutate(valid[2]()) : valid[2]());
          else body = int(10) ? JSON.stringify(value(0)) : pick(["{", "[1,", "nul", "", "\u0000"]);
        }
        const headers: Record<string, string> = { "content-type": int(10) ? "application/json" : "text/plain" };
        if (int(10)) headers.authorization = `Bearer ${KEY}`;
        if (!int(8)) headers["idempotency-key"] = pick(STRINGS).slice(0, 300).replace(/[^\x20-\x7e]/g, "_");
        const res = await fetch(`http://127.0.0.1:${n.port}${path}`, { method: method.toUpperCase(), headers, body });
        const text = await res.text();
        if (res.status >= 500) failures.push(`${res.status} ${method} ${path.slice(0, 100)} ${body?.slice(0, 200)} → ${text.slice(0, 200)}`);
      }
    }),
  );
  expect(failures).toEqual([]);
  expect((await fetch(`http://127.0.0.1:${n.port}/readyz`)).status).toBe(200);
  expect(n.proc.exitCode).toBeNull();
  const notJson = n.logs.filter((l) => !l.startsWith("{") && !l.startsWith("notify: ") && !l.startsWith("  "));
  expect(notJson).toEqual([]);
  expect(n.logs.filter((l) => l.includes('"level":"error"'))).toEqual([]);
});

test("random WebSocket frames on both protocols: every socket answered or closed cleanly, no error logged, still ready", async () => {
  const FRAME_TYPES = ["ping", "read", "read_all", "archive", "connection_init", "subscribe", "complete", "pong", "next", "error"];
  const frame = () => {
    if (!int(6)) return pick(["", "{", "[]", "null", "1", "\u0000", "x".repeat(70_000)]);
    const m = (int(3) ? value(1) : {}) as Record<string, unknown>;
    const o: Record<string, unknown> = m && typeof m === "object" && !Array.isArray(m) ? m : {};
    if (int(5)) o.type = pick(FRAME_TYPES);
    if (int(2)) o.id = int(2) ? pick(STRINGS).slice(0, 100) : value(2);
    if (o.type === "subscribe" && int(2)) o.payload = { query: pick(GRAPHQL), variables: int(2) ? value(1) : undefined };
    return JSON.stringify(o);
  };
  for (let round = 0; round < 6; round++) {
    const token = await signToken(`ws-user-${round}`);
    const graphqlWs = round % 2 === 1;
    const ws = connectWs(`ws://127.0.0.1:${n.port}/ws`, { protocols: graphqlWs ? ["graphql-transport-ws", "bearer", token] : ["bearer", token] });
    await ws.opened;
    if (graphqlWs && int(2)) ws.send({ type: "connection_init", payload: { authorization: `Bearer ${token}` } });
    for (let i = 0; i < 300 && !ws.closed; i++) ws.send(frame());
    // The server either answers frames or closes with a reason; what it must not do is go down.
    await waitFor(async () => ws.closed !== null || ws.frames.length > 0, { what: "an answer or a close" });
    ws.close();
  }
  expect((await fetch(`http://127.0.0.1:${n.port}/readyz`)).status).toBe(200);
  expect(n.proc.exitCode).toBeNull();
  expect(n.logs.filter((l) => !l.startsWith("{") && !l.startsWith("notify: ") && !l.startsWith("  "))).toEqual([]);
  expect(n.logs.filter((l) => l.includes('"level":"error"') || l.includes("ws command failed"))).toEqual([]);
});
