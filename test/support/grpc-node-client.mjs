#!/usr/bin/env node
// Node.js (not Bun) client for the notify gRPC backend: guards the pinned Bun's HTTP/2 server
// against interop regressions with Node's @grpc/grpc-js (SPEC 8). Used by src/grpc/node-interop.test.ts
// against a server under Bun, and meant for the end-to-end test against the compiled binary.
//
//   node test/support/grpc-node-client.mjs <host:port> <token> [--ids=a,b,c] [--batch=1000] [--where=k=v]
//
// Prints one JSON line: {"health":..,"getUsers":{..},"resolve":{..},"unauthenticated":..}; exits 0 when
// every call behaved, 1 otherwise (the JSON says which).
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const [address, token, ...rest] = process.argv.slice(2);
if (!address) {
  console.error("usage: grpc-node-client.mjs <host:port> <token> [--ids=a,b] [--batch=n] [--where=key=value]");
  process.exit(2);
}
const flag = (name, def) => rest.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def;
const ids = flag("ids", "").split(",").filter(Boolean);
const batch = Number(flag("batch", "1000"));
const where = flag("where", "");

const protoDir = join(dirname(fileURLToPath(import.meta.url)), "../../proto");
const def = protoLoader.loadSync(["notify/v1/users.proto", "notify/v1/audience.proto", "grpc/health/v1/health.proto"], {
  includeDirs: [protoDir],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const pkg = grpc.loadPackageDefinition(def);
const creds = grpc.credentials.createInsecure();
const opts = { "grpc.max_receive_message_length": 32 * 1024 * 1024 };
const users = new pkg.notify.v1.UserDirectory(address, creds, opts);
const audience = new pkg.notify.v1.Audience(address, creds, opts);
const health = new pkg.grpc.health.v1.Health(address, creds, opts);

const md = (t = token) => {
  const m = new grpc.Metadata();
  if (t) m.set("authorization", `Bearer ${t}`);
  return m;
};
const deadline = (ms) => ({ deadline: Date.now() + ms });
const unary = (client, method, req, metadata, ms = 5000) =>
  new Promise((resolve, reject) => client[method](req, metadata, deadline(ms), (err, res) => (err ? reject(err) : resolve(res))));

const out = { node: process.version, ok: true };
const fail = (what, err) => {
  out.ok = false;
  out[what] = { error: `${grpc.status[err.code] ?? err.code}: ${err.details ?? err.message}` };
};

try {
  out.health = (await unary(health, "Check", { service: "" }, md())).status;
} catch (err) {
  fail("health", err);
}

try {
  const res = await unary(users, "GetUsers", { ids: ids.length ? ids : ["nobody"] }, md());
  out.getUsers = { found: res.users.map((u) => u.id).sort(), missing: res.missing_ids, sample: res.users[0] ?? null };
} catch (err) {
  fail("getUsers", err);
}

try {
  await unary(users, "GetUsers", { ids: ["x"] }, md("wrong-token"));
  out.unauthenticated = "accepted a wrong token";
  if (token) out.ok = false;
} catch (err) {
  out.unauthenticated = grpc.status[err.code];
  if (token && err.code !== grpc.status.UNAUTHENTICATED) out.ok = false;
}

try {
  const req = where ? { where: { equals: Object.fromEntries([where.split("=")]) }, batch_size: batch } : { all: true, batch_size: batch };
  const stream = audience.Resolve(req, md(), deadline(120_000));
  const r = { batches: 0, users: 0, done: false, first: null, last: null, ordered: true };
  let prev = "";
  await new Promise((resolve, reject) => {
    stream.on("data", (b) => {
      if (b.done) r.done = true;
      if (!b.users.length) return;
      r.batches++;
      r.users += b.users.length;
      r.first ??= b.users[0].id;
      for (const u of b.users) {
        if (!(u.id > prev)) r.ordered = false;
        prev = u.id;
      }
      r.last = prev;
    });
    stream.on("error", reject);
    stream.on("end", resolve);
  });
  out.resolve = r;
  if (!r.done || !r.ordered) out.ok = false;
} catch (err) {
  fail("resolve", err);
}

for (const c of [users, audience, health]) c.close();
console.log(JSON.stringify(out));
process.exit(out.ok ? 0 : 1);
