/**
 * Zero configuration still needs a way in: when notify runs embedded without NOTIFY_ADMIN_KEY, it
 * creates an admin key once, keeps it in NOTIFY_DATA_DIR/admin.key (mode 0600) and says where it
 * is at start-up. The key itself is never logged.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

export function ensureLocalAdminKey(dataDir: string): { key: string; path: string; created: boolean } {
  const dir = resolve(dataDir);
  const path = join(dir, "admin.key");
  if (existsSync(path)) {
    const key = readFileSync(path, "utf8").trim();
    if (key.length >= 16) return { key, path, created: false };
  }
  mkdirSync(dir, { recursive: true });
  const key = `nk_local_${randomBytes(32).toString("base64url")}`;
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, key + "\n", { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
  return { key, path, created: true };
}
