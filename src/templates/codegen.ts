/**
 * AST → eta source. The output holds no admin text at all: literal text and string arguments go to
 * a constants table (`h.k`), property names (already restricted to identifiers) are embedded with
 * JSON.stringify, numbers are re-serialised from parsed values, and every JS identifier is ours
 * (`h`, `l0`, `i0`, `v0`). So `<% %>` in the template text is just text, and no tag can reach eta
 * as code.
 *
 *   {{ user.name | upper }}  →  <%= h.out(h.upper(h.userPath(["name"]), 0), 0) %>
 */
import type { FilterCall, Node, PathRef } from "./grammar.ts";
import { flattenHeader, type EscapeMode } from "./escape.ts";
import type { TagInfo } from "./runtime.ts";

export interface Generated {
  eta: string;
  k: string[];
  tags: TagInfo[];
}

export function generate(nodes: Node[], mode: EscapeMode): Generated {
  const k: string[] = [];
  const kIndex = new Map<string, number>();
  const tags: TagInfo[] = [];
  const kIdx = (s: string) => {
    let i = kIndex.get(s);
    if (i === undefined) {
      i = k.push(s) - 1;
      kIndex.set(s, i);
    }
    return i;
  };
  const konst = (s: string) => `h.k[${kIdx(s)}]`;

  const walk = (list: Node[]): string => {
    let src = "";
    for (const n of list) {
      switch (n.type) {
        case "text": {
          const value = mode === "header" ? flattenHeader(n.value) : n.value;
          src += `<%= h.lit(${kIdx(value)}) %>`;
          break;
        }
        case "out": {
          const t = tags.push({ path: n.path.text, tag: n.tag.text }) - 1;
          let expr = path(n.path);
          for (const f of n.filters) expr = filter(expr, f, t);
          src += `<%= h.out(${expr}, ${t}) %>`;
          break;
        }
        case "if":
          src += `<% if (${n.negate ? "!" : ""}h.truthy(${path(n.path)})) { %>${walk(n.then)}`;
          src += n.else.length ? `<% } else { %>${walk(n.else)}<% } %>` : `<% } %>`;
          break;
        case "each": {
          const t = tags.push({ path: n.path.text, tag: n.tag.text }) - 1;
          const d = n.depth;
          src += `<% { const l${d} = h.list(${path(n.path)}, ${t}); ` +
            `for (let i${d} = 0; i${d} < l${d}.length; i${d}++) { const v${d} = l${d}[i${d}]; h.tick(); %>` +
            `${walk(n.body)}<% } } %>`;
          break;
        }
      }
    }
    return src;
  };

  const filter = (expr: string, f: FilterCall, t: number): string => {
    const args = f.args.map((a) => (typeof a === "number" ? String(a) : konst(a)));
    if (f.name === "default") return `h.dflt(${expr}, ${args[0]})`;
    return `h.${f.name}(${[expr, String(t), ...args].join(", ")})`;
  };

  return { eta: walk(nodes), k, tags };
}

function path(p: PathRef): string {
  const segs = JSON.stringify(p.segs);
  switch (p.root.kind) {
    case "index": return `i${p.root.depth}`;
    case "loop": return p.segs.length ? `h.get(v${p.root.depth}, ${segs})` : `v${p.root.depth}`;
    case "user": return `h.userPath(${segs})`;
    case "data": return p.segs.length ? `h.get(h.data, ${segs})` : "h.data";
    case "name": return `h.root(${JSON.stringify(p.root.name)}, ${segs})`;
  }
}
