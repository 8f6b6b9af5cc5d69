/**
 * PGlite's wasm and data files, embedded into the binary. `bun build --compile` cannot follow the
 * `new URL("./pglite.wasm", import.meta.url)` reads PGlite does at run time (SPEC 8 pitfall), so
 * they are handed to it explicitly. Stored zstd-compressed (scripts/pack-pglite.ts): 15 MB raw would push
 * the binary past its 120 MB budget.
 */
import pgliteWasmZst from "./assets/pglite.wasm.zst" with { type: "file" };
import pgliteDataZst from "./assets/pglite.data.zst" with { type: "file" };
import initdbWasmZst from "./assets/initdb.wasm.zst" with { type: "file" };

export interface PgliteAssets {
  pgliteWasmModule: WebAssembly.Module;
  initdbWasmModule?: WebAssembly.Module;
  fsBundle: Blob;
}

async function inflate(path: string): Promise<Uint8Array<ArrayBuffer>> {
  return (await Bun.zstdDecompress(new Uint8Array(await Bun.file(path).arrayBuffer()))) as Uint8Array<ArrayBuffer>;
}

/** initdb is only needed for a fresh data directory: skipping it saves start-up time otherwise. */
export async function loadPgliteAssets(opts: { initdb: boolean }): Promise<PgliteAssets> {
  const [wasm, data, initdb] = await Promise.all([
    inflate(pgliteWasmZst),
    inflate(pgliteDataZst),
    opts.initdb ? inflate(initdbWasmZst) : undefined,
  ]);
  const [pgliteWasmModule, initdbWasmModule] = await Promise.all([
    WebAssembly.compile(wasm),
    initdb ? WebAssembly.compile(initdb) : undefined,
  ]);
  return { pgliteWasmModule, initdbWasmModule, fsBundle: new Blob([data]) };
}
