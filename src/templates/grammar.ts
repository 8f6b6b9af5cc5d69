/**
 * The template grammar: the only things an admin-authored template may contain inside `{{ }}`.
 * Everything else is an issue naming the tag and its offset; nothing here ever becomes JavaScript
 * (codegen.ts emits calls to our own helpers, with names embedded as JSON data).
 *
 *   template   := (text | tag)*                  text is anything outside `{{ }}`, kept literally
 *   tag        := '{{' ws body ws '}}'
 *   body       := expr
 *               | '#if' path | '#unless' path | 'else' | '/if' | '/unless'
 *               | '#each' path 'as' ident | '/each'
 *   expr       := path ('|' filter)*
 *   path       := (ident | '@index') ('.' ident | '[' integer ']')*
 *   filter     := 'upper' | 'lower' | 'default(' literal ')' | 'truncate(' integer ')'
 *               | 'date' ['(' style [',' style] ')']          style: "short" | "medium" | "long" | "full"
 *               | 'number' ['(' integer [',' integer] ')']    min / max fraction digits, 0..20
 *   literal    := "string" | 'string' | -?digits[.digits]      (backslash takes the next char literally)
 *   ident      := [A-Za-z_][A-Za-z0-9_]*, never constructor / __proto__ / prototype,
 *                 and at the root never a JS global such as process, globalThis, this, eval, Function
 *
 * Roots: `user.x` is the recipient, `data.x` the event data, a loop alias its current item,
 * `@index` the innermost loop's 0-based index; any other root resolves from data, then the
 * recipient, then the recipient's attributes (see runtime.ts).
 */

export interface TemplateIssue {
  message: string;
  /** The offending tag as written (or the start of an unclosed one). */
  tag: string;
  /** 0-based character offset of the tag in the source. */
  offset: number;
  line: number;
  column: number;
}

export type Root =
  | { kind: "user" }
  | { kind: "data" }
  | { kind: "name"; name: string }
  | { kind: "loop"; depth: number }
  | { kind: "index"; depth: number };

export interface PathRef {
  /** The path as written, e.g. `movie.title`; used in "missing value" messages. */
  text: string;
  rootName: string;
  root: Root;
  segs: (string | number)[];
}

export type FilterName = "upper" | "lower" | "default" | "date" | "number" | "truncate";
export interface FilterCall {
  name: FilterName;
  args: (string | number)[];
}

export interface TagRef {
  text: string;
  offset: number;
}

export type Node =
  | { type: "text"; value: string }
  | { type: "out"; path: PathRef; filters: FilterCall[]; tag: TagRef }
  | { type: "if"; negate: boolean; path: PathRef; then: Node[]; else: Node[]; tag: TagRef }
  | { type: "each"; path: PathRef; alias: string; depth: number; body: Node[]; tag: TagRef };

export interface ParseResult {
  nodes: Node[];
  issues: TemplateIssue[];
  /** Root names as written, loop aliases and `@index` excluded, in order of first use. */
  variables: string[];
}

// Limits: templates are stored with up to 500 000 characters of HTML (schemas/template.ts), and
// nesting is kept shallow because every level multiplies render work.
export const MAX_SOURCE_CHARS = 512 * 1024;
export const MAX_NESTING = 8;
export const MAX_PATH_SEGMENTS = 16;
export const MAX_TAGS = 5000;

const FORBIDDEN_NAMES = new Set(["constructor", "__proto__", "prototype"]);
/** Not dangerous (no name ever becomes a JS identifier) but never a legitimate data key either. */
const RESERVED_ROOTS = new Set([
  "this", "globalThis", "global", "window", "self", "process", "require", "module", "exports",
  "eval", "Function", "Object", "Reflect", "Proxy", "Bun", "Deno", "import", "new", "arguments",
  "it", "h", "__eta", "options", "true", "false", "null", "undefined",
]);
const STYLES = new Set(["short", "medium", "long", "full"]);

type Tok =
  | { t: "ident"; v: string; at: number }
  | { t: "num"; v: number; raw: string; at: number }
  | { t: "str"; v: string; at: number }
  | { t: "punct"; v: string; at: number }
  | { t: "at"; v: string; at: number }
  | { t: "end"; at: number };

class TagError extends Error {}

function lex(body: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < body.length) {
    const c = body[i]!;
    if (/\s/.test(c)) { i++; continue; }
    const start = i;
    if (/[A-Za-z_]/.test(c)) {
      while (i < body.length && /[A-Za-z0-9_]/.test(body[i]!)) i++;
      toks.push({ t: "ident", v: body.slice(start, i), at: start });
    } else if (/[0-9]/.test(c) || (c === "-" && /[0-9]/.test(body[i + 1] ?? ""))) {
      const m = /^-?[0-9]+(\.[0-9]+)?/.exec(body.slice(i))!;
      i += m[0].length;
      if (/[A-Za-z0-9_.]/.test(body[i] ?? "")) throw new TagError(`malformed number near '${body.slice(start, i + 1)}'`);
      toks.push({ t: "num", v: Number(m[0]), raw: m[0], at: start });
    } else if (c === '"' || c === "'") {
      let v = "";
      i++;
      for (;;) {
        if (i >= body.length) throw new TagError("unterminated string");
        const d = body[i]!;
        if (d === c) { i++; break; }
        if (d === "\\") { i++; if (i >= body.length) throw new TagError("unterminated string"); v += body[i]; i++; continue; }
        v += d;
        i++;
      }
      toks.push({ t: "str", v, at: start });
    } else if (".[]|(),#/".includes(c)) {
      toks.push({ t: "punct", v: c, at: start });
      i++;
    } else if (c === "@") {
      i++;
      while (i < body.length && /[A-Za-z0-9_]/.test(body[i]!)) i++;
      toks.push({ t: "at", v: body.slice(start, i), at: start });
    } else {
      throw new TagError(describeChar(c));
    }
  }
  toks.push({ t: "end", at: body.length });
  return toks;
}

function describeChar(c: string): string {
  if (c === "`") return "template literals are not allowed";
  if (c === ";") return "statements are not allowed (';')";
  if (c === "=") return "assignment and comparison are not allowed ('=')";
  if (c === "<" || c === ">") return `operators are not allowed ('${c}')`;
  if ("+-*%&!?:~^".includes(c)) return `operators are not allowed ('${c}')`;
  if (c === "{" || c === "}") return "braces are not allowed inside a tag";
  return `unexpected character '${c}'`;
}

/** One open block while parsing: where its children go, and which loop aliases are visible. */
interface Frame {
  node: Extract<Node, { type: "if" | "each" }> | null;
  kind: "root" | "if" | "unless" | "each";
  into: Node[];
  sawElse: boolean;
}

export function parseTemplate(source: string): ParseResult {
  const issues: TemplateIssue[] = [];
  const variables: string[] = [];
  const seen = new Set<string>();
  const root: Node[] = [];
  const stack: Frame[] = [{ node: null, kind: "root", into: root, sawElse: false }];
  const aliases: string[] = []; // aliases[d] = alias of loop at depth d

  const issue = (message: string, tag: string, offset: number) => {
    const before = source.slice(0, offset);
    const line = before.split("\n").length;
    const column = offset - (before.lastIndexOf("\n") + 1) + 1;
    issues.push({ message, tag, offset, line, column });
  };

  if (source.length > MAX_SOURCE_CHARS) {
    issue(`template is too long (${source.length} characters, limit ${MAX_SOURCE_CHARS})`, "", 0);
    return { nodes: [], issues, variables };
  }

  const top = () => stack[stack.length - 1]!;
  let pos = 0;
  let tags = 0;
  while (pos < source.length) {
    const open = source.indexOf("{{", pos);
    if (open === -1) {
      top().into.push({ type: "text", value: source.slice(pos) });
      break;
    }
    if (open > pos) top().into.push({ type: "text", value: source.slice(pos, open) });
    const close = findClose(source, open + 2);
    if (close === -1) {
      issue("unclosed tag: '{{' without '}}'", source.slice(open, open + 40), open);
      break;
    }
    pos = close + 2;
    const text = source.slice(open, pos);
    const tag: TagRef = { text, offset: open };
    if (++tags > MAX_TAGS) {
      issue(`too many tags (limit ${MAX_TAGS})`, text, open);
      break;
    }
    try {
      handleTag(source.slice(open + 2, close), tag);
    } catch (e) {
      if (!(e instanceof TagError)) throw e;
      issue(e.message, text, open);
    }
  }
  for (let i = stack.length - 1; i > 0; i--) {
    const f = stack[i]!;
    issue(`'{{#${f.kind}}}' is never closed (expected '{{/${f.kind}}}')`, f.node!.tag.text, f.node!.tag.offset);
  }
  return { nodes: root, issues, variables };

  function handleTag(body: string, tag: TagRef): void {
    const toks = lex(body);
    let k = 0;
    const peek = () => toks[k]!;
    const next = () => toks[k++]!;
    const isPunct = (v: string) => { const t = peek(); return t.t === "punct" && t.v === v; };
    const expectEnd = () => {
      const t = peek();
      if (t.t !== "end") throw new TagError(unexpected(t, "end of tag"));
    };

    const first = peek();
    if (first.t === "punct" && (first.v === "#" || first.v === "/")) {
      next();
      const kw = next();
      if (kw.t !== "ident" || !["if", "unless", "each"].includes(kw.v)) {
        throw new TagError(`unknown block '${first.v}${kw.t === "ident" ? kw.v : ""}' (allowed: #if, #unless, #each)`);
      }
      const kind = kw.v as "if" | "unless" | "each";
      if (first.v === "/") {
        expectEnd();
        const f = top();
        if (f.kind !== kind) {
          throw new TagError(f.kind === "root" ? `'{{/${kind}}}' without an open '{{#${kind}}}'` : `'{{/${kind}}}' closes '{{#${f.kind}}}'`);
        }
        stack.pop();
        if (kind === "each") aliases.pop();
        return;
      }
      const isEach = kind === "each";
      const depth = aliases.length;
      let path: PathRef = { text: "", rootName: "", root: { kind: "data" }, segs: [] };
      let alias = "";
      try {
        if (stack.length > MAX_NESTING) throw new TagError(`blocks nest too deep (limit ${MAX_NESTING})`);
        path = parsePath();
        if (isEach) {
          const as = next();
          if (as.t !== "ident" || as.v !== "as") throw new TagError("expected '{{#each list as item}}'");
          const a = next();
          if (a.t !== "ident") throw new TagError("expected a loop variable name after 'as'");
          checkName(a.v, true);
          if (a.v === "user" || a.v === "data" || aliases.includes(a.v)) {
            throw new TagError(`loop variable '${a.v}' would hide another name`);
          }
          alias = a.v;
        }
        expectEnd();
      } finally {
        // Open the block even when its tag is bad, so its '{{/...}}' still matches and only one
        // issue is reported. A template with any issue never compiles, so this node never renders.
        const node: Node = isEach
          ? { type: "each", path, alias, depth, body: [], tag }
          : { type: "if", negate: kind === "unless", path, then: [], else: [], tag };
        top().into.push(node);
        stack.push({ node, kind, into: node.type === "each" ? node.body : node.then, sawElse: false });
        if (isEach) aliases.push(alias);
      }
      return;
    }

    if (first.t === "ident" && first.v === "else" && toks[1]!.t === "end") {
      const f = top();
      if (f.kind !== "if" && f.kind !== "unless") throw new TagError("'{{else}}' outside '{{#if}}' or '{{#unless}}'");
      if (f.sawElse) throw new TagError("second '{{else}}' in one block");
      f.sawElse = true;
      f.into = (f.node as Extract<Node, { type: "if" }>).else;
      return;
    }

    const path = parsePath();
    const filters: FilterCall[] = [];
    while (isPunct("|")) {
      next();
      filters.push(parseFilter());
    }
    expectEnd();
    top().into.push({ type: "out", path, filters, tag });

    function parsePath(): PathRef {
      const t = next();
      let root: Root;
      let rootName: string;
      if (t.t === "at") {
        if (t.v !== "@index") throw new TagError(`unknown special variable '${t.v}' (only @index)`);
        if (aliases.length === 0) throw new TagError("'@index' outside '{{#each}}'");
        root = { kind: "index", depth: aliases.length - 1 };
        rootName = t.v;
      } else if (t.t === "ident") {
        checkName(t.v, true);
        rootName = t.v;
        const d = aliases.lastIndexOf(t.v);
        root = d >= 0 ? { kind: "loop", depth: d } : t.v === "user" ? { kind: "user" } : t.v === "data" ? { kind: "data" } : { kind: "name", name: t.v };
      } else {
        throw new TagError(unexpected(t, "a variable name"));
      }
      const segs: (string | number)[] = [];
      let text = rootName;
      for (;;) {
        if (isPunct(".")) {
          next();
          const s = next();
          if (s.t !== "ident") throw new TagError(unexpected(s, "a property name after '.'"));
          checkName(s.v, false);
          segs.push(s.v);
          text += "." + s.v;
        } else if (isPunct("[")) {
          next();
          const s = next();
          if (s.t !== "num" || !Number.isInteger(s.v) || s.v < 0) {
            throw new TagError("only a non-negative integer index is allowed inside '[ ]'");
          }
          const c = next();
          if (c.t !== "punct" || c.v !== "]") throw new TagError(unexpected(c, "']'"));
          segs.push(s.v);
          text += `[${s.v}]`;
        } else break;
        if (segs.length > MAX_PATH_SEGMENTS) throw new TagError(`path is too long (limit ${MAX_PATH_SEGMENTS} parts)`);
      }
      if (isPunct("(")) throw new TagError(`function calls are not allowed ('${text}(')`);
      if (root.kind === "index" && segs.length > 0) throw new TagError("'@index' has no properties");
      if (root.kind !== "loop" && root.kind !== "index" && !seen.has(rootName)) {
        seen.add(rootName);
        variables.push(rootName);
      }
      return { text, rootName, root, segs };
    }

    function parseFilter(): FilterCall {
      const n = next();
      if (n.t !== "ident") throw new TagError(unexpected(n, "a helper name after '|'"));
      const args: (string | number)[] = [];
      if (isPunct("(")) {
        next();
        if (!isPunct(")")) {
          for (;;) {
            const a = next();
            if (a.t === "str" || a.t === "num") args.push(a.v);
            else throw new TagError(`helper arguments must be string or number literals (in '${n.v}')`);
            if (isPunct(",")) { next(); continue; }
            break;
          }
        }
        const c = next();
        if (c.t !== "punct" || c.v !== ")") throw new TagError(unexpected(c, `')' closing '${n.v}('`));
      }
      checkFilter(n.v, args);
      return { name: n.v as FilterName, args };
    }
  }

  function findClose(src: string, from: number): number {
    // A quoted helper argument may contain '}}'; skip quoted runs the way the lexer reads them.
    let i = from;
    let quote = "";
    while (i < src.length) {
      const c = src[i]!;
      if (quote) {
        if (c === "\\") i++;
        else if (c === quote) quote = "";
      } else if (c === '"' || c === "'") quote = c;
      else if (c === "}" && src[i + 1] === "}") return i;
      else if (c === "{" && src[i + 1] === "{") return -1; // a new tag before this one closed
      i++;
    }
    return -1;
  }
}

function checkName(name: string, isRoot: boolean): void {
  if (FORBIDDEN_NAMES.has(name)) throw new TagError(`'${name}' is not allowed in a path`);
  if (isRoot && RESERVED_ROOTS.has(name)) throw new TagError(`'${name}' is a reserved name, not a template variable`);
}

function unexpected(t: Tok, wanted: string): string {
  switch (t.t) {
    case "end": return `expected ${wanted}, found end of tag`;
    case "str": return `expected ${wanted}, found a string literal`;
    case "num": return `expected ${wanted}, found number ${t.raw}`;
    case "punct":
      if (t.v === "(") return "function calls are not allowed";
      return `expected ${wanted}, found '${t.v}'`;
    default: return `expected ${wanted}, found '${t.v}'`;
  }
}

function checkFilter(name: string, args: (string | number)[]): void {
  const int = (v: string | number | undefined, lo: number, hi: number) =>
    typeof v === "number" && Number.isInteger(v) && v >= lo && v <= hi;
  switch (name) {
    case "upper":
    case "lower":
      if (args.length) throw new TagError(`'${name}' takes no arguments`);
      return;
    case "default":
      if (args.length !== 1) throw new TagError(`'default' takes one argument, e.g. default("friend")`);
      return;
    case "truncate":
      if (args.length !== 1 || !int(args[0], 1, 100_000)) throw new TagError("'truncate' takes one integer 1..100000, e.g. truncate(40)");
      return;
    case "date":
      if (args.length > 2 || !args.every((a) => typeof a === "string" && STYLES.has(a))) {
        throw new TagError(`'date' takes up to two styles ("short", "medium", "long", "full"): date style, then time style`);
      }
      return;
    case "number":
      if (args.length > 2 || !args.every((a) => int(a, 0, 20)) || (args.length === 2 && (args[0] as number) > (args[1] as number))) {
        throw new TagError("'number' takes up to two integers 0..20: minimum and maximum fraction digits");
      }
      return;
    default:
      throw new TagError(`unknown helper '${name}' (allowed: upper, lower, default, date, number, truncate)`);
  }
}
