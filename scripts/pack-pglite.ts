/**
 * Writes zstd-compressed copies of PGlite's wasm and data files to src/embedded/assets/, which the binary
 * embeds (src/embedded/pglite-assets.ts). Compressed because the raw files (15 MB) would push the
 * compiled binary past its 120 MB budget; inflating them at start-up costs ~25 ms (zstd: 1.2 MB smaller than gzip -9, and faster to inflate).
 *
 * Run after changing the pinned @electric-sql/pglite version: `bun scripts/pack-pglite.ts`.
 * test/shipping.test.ts fails when the copies do not match the installed package.
 */
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const SOURCE = join(import.meta.dir, "../node_modules/@electric-sql/pglite");
const TARGET = join(import.meta.dir, "../src/embedded/assets");
export const PGLITE_FILES = ["pglite.wasm", "pglite.data", "initdb.wasm"] as const;

const version = (JSON.parse(readFileSync(join(SOURCE, "package.json"), "utf8")) as { version: string }).version;
const sha256: Record<string, string> = {};
for (const name of PGLITE_FILES) {
  const raw = readFileSync(join(SOURCE, "dist", name));
  sha256[name] = createHash("sha256").update(raw).digest("hex");
  writeFileSync(join(TARGET, `${name}.zst`), Bun.zstdCompressSync(raw, { level: 19 }));
}
writeFileSync(join(TARGET, "manifest.json"), JSON.stringify({ package: "@electric-sql/pglite", version, sha256 }, null, 2) + "\n");
console.log(`packed PGlite ${version} into ${TARGET}`);
