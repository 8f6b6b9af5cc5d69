/**
 * Safe templates for admin-authored messages (SPEC 3.3, 5). Pure: no I/O, no file reads.
 *
 * A template is parsed with our own grammar (grammar.ts), which rejects anything but paths,
 * a fixed set of helpers, and if/unless/each blocks. The AST becomes eta source that only calls
 * RenderState methods (codegen.ts); eta compiles that from a string. Admin text never reaches eta
 * as code, so `{{ it.constructor.constructor("return process")() }}` is a syntax error and
 * `<% ... %>` in the text is printed as written.
 */
import { Eta, type TemplateFunction } from "eta/core";
import { generate } from "./codegen.ts";
import { ESCAPE_MODES, type EscapeMode } from "./escape.ts";
import { TemplateRenderError, TemplateSyntaxError } from "./errors.ts";
import { parseTemplate, type TemplateIssue } from "./grammar.ts";
import { RenderState, safeLocale, safeTimeZone, type TagInfo } from "./runtime.ts";
import { selectVariant, type TemplateVariant } from "./variants.ts";

export { ESCAPE_MODES, type EscapeMode } from "./escape.ts";
export { TemplateRenderError, TemplateSyntaxError } from "./errors.ts";
export type { TemplateIssue } from "./grammar.ts";
export { MAX_ITERATIONS, MAX_LOOP_ITEMS, MAX_OUTPUT_CHARS } from "./runtime.ts";
export { selectVariant, type TemplateVariant } from "./variants.ts";

/**
 * Recipient fields a bare placeholder may always use (`{{ name }}`) without being declared,
 * because they come from the user directory, not from the event.
 */
export const RECIPIENT_FIELDS: readonly string[] = ["id", "name", "email", "phone", "locale", "timezone", "telegram_chat_id"];

export interface RenderContext {
  data: Record<string, unknown>;
  user: Record<string, unknown>;
  /** Overrides the recipient's `locale` for helpers (date, number, upper, lower). */
  locale?: string;
  /** Overrides the recipient's `timezone` for `date`. */
  timezone?: string;
}

export interface CompiledTemplate {
  readonly source: string;
  readonly mode: EscapeMode;
  /** Root names used, as variablesOf(). */
  readonly variables: readonly string[];
  /** Throws TemplateRenderError listing every missing value, never prints "undefined". */
  render(ctx: RenderContext): string;
}

/**
 * Checks a template against the grammar; an empty list means it is valid. With
 * `declaredVariables`, a root that is not declared, not `user`/`data`, not a recipient field
 * (RECIPIENT_FIELDS) and not a loop variable is reported as "unknown placeholder".
 */
export function validateTemplate(source: string, opts: { declaredVariables?: readonly string[] } = {}): TemplateIssue[] {
  const parsed = parseTemplate(source);
  const issues = [...parsed.issues];
  if (opts.declaredVariables) {
    const known = new Set([...opts.declaredVariables, ...RECIPIENT_FIELDS, "user", "data"]);
    for (const p of collectPaths(parsed.nodes)) {
      if (p.root.kind === "name" && !known.has(p.rootName)) {
        issues.push({ message: `unknown placeholder ${p.rootName}`, tag: p.tag.text, offset: p.tag.offset, ...lineCol(source, p.tag.offset) });
        known.add(p.rootName); // once per name
      }
    }
    issues.sort((a, b) => a.offset - b.offset);
  }
  return issues;
}

/** Root names a template reads (`movie.title` → `movie`, `user.name` → `user`), loop variables excluded; best effort on invalid templates. */
export function variablesOf(source: string): string[] {
  return parseTemplate(source).variables;
}

// Compiled functions by mode + source. Templates are few and change rarely; the bound keeps a
// stream of distinct previews from growing memory without limit.
const CACHE_SIZE = 1000;
const cache = new Map<string, CompiledTemplate>();

const eta = new Eta({
  autoEscape: false, // RenderState.out escapes per mode
  autoFilter: false,
  autoTrim: false, // the generated source has no text of its own to trim
  useWith: false,
  varName: "h",
  cache: false,
  debug: false,
  rmWhitespace: false,
});

/** Validates (again: a stored template may have bypassed the API) and compiles; cached. Throws TemplateSyntaxError. */
export function compileTemplate(source: string, mode: EscapeMode): CompiledTemplate {
  if (!ESCAPE_MODES.includes(mode)) throw new TypeError(`unknown escape mode ${String(mode)}`);
  const key = mode + "\u0000" + source;
  const hit = cache.get(key);
  if (hit) return hit;

  const parsed = parseTemplate(source);
  if (parsed.issues.length) throw new TemplateSyntaxError(parsed.issues);
  const gen = generate(parsed.nodes, mode);
  const fn = eta.compile(gen.eta);
  const compiled = new Compiled(source, mode, parsed.variables, fn, gen.k, gen.tags);
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
  cache.set(key, compiled);
  return compiled;
}

class Compiled implements CompiledTemplate {
  constructor(
    readonly source: string,
    readonly mode: EscapeMode,
    readonly variables: readonly string[],
    private readonly fn: TemplateFunction,
    private readonly k: readonly string[],
    private readonly tags: readonly TagInfo[],
  ) {}

  render(ctx: RenderContext): string {
    const user = ctx.user ?? {};
    const state = new RenderState(
      ctx.data ?? {},
      user,
      safeLocale(ctx.locale ?? user.locale),
      safeTimeZone(ctx.timezone ?? user.timezone),
      this.mode,
      this.k,
      this.tags,
    );
    const out = this.fn.call(eta, state);
    state.finish();
    return out;
  }
}

export interface RenderedMessage {
  subject?: string;
  title?: string;
  text: string;
  html?: string;
  /** The chosen variant's locale (undefined when that variant has none). */
  locale?: string;
}

type Part = "subject" | "title" | "text" | "html";

/**
 * How each part is escaped per channel. Telegram: `text` is sent plain, `html` with parse_mode
 * HTML; a caller sending MarkdownV2 passes `{ text: "telegram-markdownv2" }`.
 */
const CHANNEL_MODES: Record<string, Record<Part, EscapeMode>> = {
  email: { subject: "header", title: "header", text: "text", html: "html" },
  telegram: { subject: "header", title: "header", text: "text", html: "telegram-html" },
};
const DEFAULT_MODES: Record<Part, EscapeMode> = { subject: "header", title: "header", text: "text", html: "html" };

/**
 * Picks the variant for channel and recipient locale (selectVariant) and renders its parts.
 * Undefined when the template has no variant for the channel. Throws TemplateSyntaxError /
 * TemplateRenderError (a render error lists the missing values of all parts together).
 */
export function renderMessage(
  template: { variants: readonly TemplateVariant[]; default_locale?: string },
  channel: string,
  recipientLocale: string | undefined,
  ctx: RenderContext,
  modes: Partial<Record<Part, EscapeMode>> = {},
): RenderedMessage | undefined {
  const variant = selectVariant(template.variants, channel, recipientLocale, template.default_locale);
  if (!variant) return undefined;
  const m = { ...(CHANNEL_MODES[channel.toLowerCase()] ?? DEFAULT_MODES), ...modes };
  const renderCtx: RenderContext = { ...ctx, locale: ctx.locale ?? recipientLocale ?? variant.locale };
  const out: RenderedMessage = { text: "", locale: variant.locale };
  const errors: unknown[] = [];
  for (const part of ["subject", "title", "text", "html"] as const) {
    const src = variant[part];
    if (src === undefined) continue;
    try {
      out[part] = compileTemplate(src, m[part]).render(renderCtx);
    } catch (e) {
      errors.push(e);
    }
  }
  if (errors.length) throw mergeErrors(errors);
  return out;
}

function mergeErrors(errors: unknown[]): unknown {
  if (!errors.every((e) => e instanceof TemplateRenderError)) return errors.find((e) => !(e instanceof TemplateRenderError));
  const rs = errors as TemplateRenderError[];
  return new TemplateRenderError([...new Set(rs.flatMap((e) => e.missing))], [...new Set(rs.flatMap((e) => e.problems))]);
}

function collectPaths(nodes: ReturnType<typeof parseTemplate>["nodes"]) {
  const out: { root: { kind: string }; rootName: string; tag: { text: string; offset: number } }[] = [];
  const walk = (list: typeof nodes) => {
    for (const n of list) {
      if (n.type === "text") continue;
      out.push({ root: n.path.root, rootName: n.path.rootName, tag: n.tag });
      if (n.type === "if") { walk(n.then); walk(n.else); }
      if (n.type === "each") walk(n.body);
    }
  };
  walk(nodes);
  return out;
}

function lineCol(source: string, offset: number) {
  const before = source.slice(0, offset);
  return { line: before.split("\n").length, column: offset - (before.lastIndexOf("\n") + 1) + 1 };
}
