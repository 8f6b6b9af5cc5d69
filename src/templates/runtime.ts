/**
 * What compiled templates may call: `h` in the generated eta source is one RenderState, made fresh
 * for every render. Lookups read own properties only, so `__proto__`-style tricks find nothing,
 * and no value is ever called.
 */
import { ESCAPERS, type EscapeMode } from "./escape.ts";
import { TemplateRenderError } from "./errors.ts";

// Limits per render. A loop of more than 1000 items is a data mistake in a notification; the
// iteration and output budgets stop nested loops from multiplying into minutes of work.
export const MAX_LOOP_ITEMS = 1000;
export const MAX_ITERATIONS = 100_000;
export const MAX_OUTPUT_CHARS = 4_000_000;

/** Used when neither the render context nor the recipient says, so output never depends on the host. */
export const FALLBACK_LOCALE = "en";
export const FALLBACK_TIME_ZONE = "UTC";

/** Per interpolation or block: what to name in error messages. */
export interface TagInfo {
  path: string;
  tag: string;
}

type Rec = Record<string, unknown>;
type Scalarish = unknown;

export class RenderState {
  readonly missing: string[] = [];
  readonly problems: string[] = [];
  private size = 0;
  private iterations = 0;
  private readonly escape: (s: string) => string;

  constructor(
    readonly data: Rec,
    readonly user: Rec,
    readonly locale: string,
    readonly timeZone: string,
    mode: EscapeMode,
    /** Literal strings (template text and string helper arguments), indexed by codegen. */
    readonly k: readonly string[],
    private readonly tags: readonly TagInfo[],
  ) {
    this.escape = ESCAPERS[mode];
  }

  /** Literal template text. */
  lit(i: number): string {
    const s = this.k[i]!;
    this.grow(s.length);
    return s;
  }

  /** Walks own properties only; anything else (inherited, prototype keys, past a primitive) is undefined. */
  get(v: unknown, segs: readonly (string | number)[]): unknown {
    for (let i = 0; i < segs.length; i++) {
      if (v === null || v === undefined) return undefined;
      const s = segs[i]!;
      if (!Object.hasOwn(v as object, s)) return undefined;
      v = (v as Rec)[s];
    }
    return v;
  }

  /** A bare root: event data first, then the recipient, then the recipient's attributes. */
  root(name: string, segs: readonly (string | number)[]): unknown {
    let v: unknown;
    if (Object.hasOwn(this.data, name)) v = this.data[name];
    if (v == null) v = this.fromUser(name);
    return segs.length ? this.get(v, segs) : v;
  }

  /** `user.x`: a recipient field, else a recipient attribute. */
  userPath(segs: readonly (string | number)[]): unknown {
    if (segs.length === 0) return this.user;
    const v = this.fromUser(segs[0]!);
    return segs.length > 1 ? this.get(v, segs.slice(1)) : v;
  }

  private fromUser(name: string | number): unknown {
    let v: unknown;
    if (Object.hasOwn(this.user, name)) v = this.user[name];
    if (v == null) {
      const attrs = Object.hasOwn(this.user, "attributes") ? this.user.attributes : undefined;
      if (attrs && typeof attrs === "object" && Object.hasOwn(attrs, name)) v = (attrs as Rec)[name];
    }
    return v;
  }

  /** An interpolated value: must be present and scalar; escaped for the template's mode. */
  out(v: unknown, t: number): string {
    const s = this.scalar(v, t);
    if (s === undefined) return "";
    const e = this.escape(s);
    this.grow(e.length);
    return e;
  }

  truthy(v: unknown): boolean {
    return Array.isArray(v) ? v.length > 0 : !!v;
  }

  list(v: unknown, t: number): readonly unknown[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      this.problems.push(`${this.tags[t]!.path} is not a list (in ${this.tags[t]!.tag})`);
      return [];
    }
    if (v.length > MAX_LOOP_ITEMS) this.fail(`${this.tags[t]!.path} has ${v.length} items, more than the loop limit of ${MAX_LOOP_ITEMS}`);
    return v;
  }

  tick(): void {
    if (++this.iterations > MAX_ITERATIONS) this.fail(`loops ran more than ${MAX_ITERATIONS} times in one render`);
  }

  // ---- helpers (filters). Missing values pass through so `out` reports them; `default` fills them.

  upper(v: unknown, t: number): Scalarish {
    const s = this.scalar(v, t, true);
    return s === undefined ? v : s.toLocaleUpperCase(this.locale);
  }

  lower(v: unknown, t: number): Scalarish {
    const s = this.scalar(v, t, true);
    return s === undefined ? v : s.toLocaleLowerCase(this.locale);
  }

  dflt(v: unknown, fallback: string | number): Scalarish {
    return v === undefined || v === null || v === "" ? fallback : v;
  }

  truncate(v: unknown, t: number, n: number): Scalarish {
    const s = this.scalar(v, t, true);
    if (s === undefined) return v;
    const chars = Array.from(s); // by code point, so an emoji is never cut in half
    return chars.length <= n ? s : chars.slice(0, Math.max(0, n - 1)).join("") + "…";
  }

  date(v: unknown, t: number, dateStyle?: string, timeStyle?: string): Scalarish {
    if (v === undefined || v === null) return v;
    const d = v instanceof Date ? v : typeof v === "string" || typeof v === "number" ? new Date(v) : undefined;
    if (!d || Number.isNaN(d.getTime())) {
      this.problems.push(`${this.tags[t]!.path} is not a date (in ${this.tags[t]!.tag})`);
      return "";
    }
    return dateFormat(this.locale, this.timeZone, dateStyle ?? "medium", timeStyle).format(d);
  }

  number(v: unknown, t: number, minFraction?: number, maxFraction?: number): Scalarish {
    if (v === undefined || v === null) return v;
    const n = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN;
    if (!Number.isFinite(n)) {
      this.problems.push(`${this.tags[t]!.path} is not a number (in ${this.tags[t]!.tag})`);
      return "";
    }
    return numberFormat(this.locale, minFraction, maxFraction).format(n);
  }

  /** Throws when anything was missing or wrong; called once after the template ran. */
  finish(): void {
    if (this.missing.length || this.problems.length) {
      throw new TemplateRenderError([...new Set(this.missing)], [...new Set(this.problems)]);
    }
  }

  private scalar(v: unknown, t: number, passMissing = false): string | undefined {
    switch (typeof v) {
      case "string": return v;
      case "number":
        if (Number.isFinite(v)) return String(v);
        break;
      case "bigint":
      case "boolean":
        return String(v);
      case "undefined":
        if (!passMissing) this.missing.push(this.tags[t]!.path);
        return undefined;
      case "object":
        if (v === null) {
          if (!passMissing) this.missing.push(this.tags[t]!.path);
          return undefined;
        }
        if (v instanceof Date && !Number.isNaN(v.getTime())) return v.toISOString();
        break;
    }
    this.problems.push(`${this.tags[t]!.path} is not a scalar value (in ${this.tags[t]!.tag})`);
    return undefined;
  }

  private grow(n: number): void {
    this.size += n;
    if (this.size > MAX_OUTPUT_CHARS) this.fail(`output is longer than ${MAX_OUTPUT_CHARS} characters`);
  }

  private fail(problem: string): never {
    throw new TemplateRenderError([...new Set(this.missing)], [...new Set(this.problems), problem]);
  }
}

// Intl formatters cost tens of microseconds to build; a handful of locale × zone × style
// combinations cover almost every render, so keep them (bounded, oldest dropped first).
const FORMATTER_CACHE_SIZE = 256;
const dateFormats = new Map<string, Intl.DateTimeFormat>();
const numberFormats = new Map<string, Intl.NumberFormat>();

function remember<T>(map: Map<string, T>, key: string, make: () => T): T {
  let f = map.get(key);
  if (f === undefined) {
    f = make();
    if (map.size >= FORMATTER_CACHE_SIZE) map.delete(map.keys().next().value!);
    map.set(key, f);
  }
  return f;
}

function dateFormat(locale: string, timeZone: string, dateStyle: string, timeStyle: string | undefined) {
  type Style = Intl.DateTimeFormatOptions["dateStyle"];
  return remember(dateFormats, `${locale}|${timeZone}|${dateStyle}|${timeStyle ?? ""}`, () =>
    new Intl.DateTimeFormat(locale, { dateStyle: dateStyle as Style, timeStyle: timeStyle as Style, timeZone }));
}

function numberFormat(locale: string, min: number | undefined, max: number | undefined) {
  return remember(numberFormats, `${locale}|${min ?? ""}|${max ?? ""}`, () =>
    new Intl.NumberFormat(locale, {
      minimumFractionDigits: min,
      maximumFractionDigits: max ?? (min !== undefined ? Math.max(min, 3) : undefined),
    }));
}

const localeOk = new Map<string, string>();
const zoneOk = new Map<string, string>();

/** A recipient's locale tag, or the fallback when it is not a valid BCP 47 tag. */
export function safeLocale(tag: unknown): string {
  if (typeof tag !== "string" || tag === "") return FALLBACK_LOCALE;
  return remember(localeOk, tag, () => {
    try {
      return Intl.getCanonicalLocales(tag.replace(/_/g, "-"))[0] ?? FALLBACK_LOCALE;
    } catch {
      return FALLBACK_LOCALE;
    }
  });
}

/** A recipient's IANA time zone, or UTC when the name is unknown. */
export function safeTimeZone(zone: unknown): string {
  if (typeof zone !== "string" || zone === "") return FALLBACK_TIME_ZONE;
  return remember(zoneOk, zone, () => {
    try {
      return new Intl.DateTimeFormat("en", { timeZone: zone }).resolvedOptions().timeZone;
    } catch {
      return FALLBACK_TIME_ZONE;
    }
  });
}
