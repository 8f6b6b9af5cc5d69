#!/usr/bin/env node
// The same UserDirectory.GetUsers as src/grpc (same proto, same SQL, same token check), under
// Node.js: the baseline bench/grpc.ts measures our Bun server against in the same run.
//   NOTIFY_DATABASE_URL=... NOTIFY_GRPC_TOKEN=... node bench/grpc-node-server.mjs   → prints {"port":n}
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const postgres = require("postgres");

const protoDir = join(dirname(fileURLToPath(import.meta.url)), "../proto");
const def = protoLoader.loadSync(["notify/v1/users.proto"], { includeDirs: [protoDir], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const pkg = grpc.loadPackageDefinition(def);
const sql = postgres(process.env.NOTIFY_DATABASE_URL, { max: 4, onnotice: () => {} });
const want = `Bearer ${process.env.NOTIFY_GRPC_TOKEN ?? ""}`;

const s = (v) => v ?? "";
const server = new grpc.Server({ "grpc.max_receive_message_length": 32 * 1024 * 1024, "grpc.max_send_message_length": 32 * 1024 * 1024 });
server.addService(pkg.notify.v1.UserDirectory.service, {
  GetUsers(call, cb) {
    if (call.metadata.get("authorization")[0] !== want) return cb({ code: grpc.status.UNAUTHENTICATED, details: "invalid token" });
    const ids = [...new Set(call.request.ids)];
    sql`SELECT * FROM users WHERE id = ANY(${ids}::text[])`.then(
      (rows) => {
        const found = new Set(rows.map((r) => r.id));
        cb(null, {
          users: rows.map((r) => ({ id: r.id, email: s(r.email), phone: s(r.phone), name: s(r.name), locale: s(r.locale), timezone: s(r.timezone), telegram_chat_id: s(r.telegram_chat_id), attributes_json: JSON.stringify(r.attributes ?? {}) })),
          missing_ids: ids.filter((id) => !found.has(id)),
          unresolved_ids: [],
        });
      },
      (err) => cb({ code: grpc.status.UNAVAILABLE, details: err.message }),
    );
  },
});
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  console.log(JSON.stringify({ port }));
});
process.on("SIGTERM", () => server.tryShutdown(() => sql.end({ timeout: 1 }).then(() => process.exit(0))));
