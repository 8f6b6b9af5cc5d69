import { describe, expect, test } from "bun:test";
import {
  compileTemplate,
  MAX_LOOP_ITEMS,
  TemplateRenderError,
  TemplateSyntaxError,
  type EscapeMode,
  type RenderContext,
} from "./index.ts";

const user = { id: "u1", name: "Ann", email: "ann@example.com", locale: "en", timezone: "UTC", attributes: { plan: "premium" } };
const render = (src: string, data: Record<string, unknown> = {}, mode: EscapeMode = "text", extra: Partial<RenderContext> = {}) =>
  compileTemplate(src, mode).render({ data, user, ...extra });

function renderError(fn: () => unknown): TemplateRenderError {
  try {
    fn();
  } catch (e) {
    if (e instanceof TemplateRenderError) return e;
    throw e;
  }
  throw new Error("expected a TemplateRenderError");
}

describe("interpolation", () => {
  test("plain text passes through, placeholders are replaced", () => {
    expect(render("Hi {{ name }}, confirm: {{link}}", { link: "https://x/1" })).toBe("Hi Ann, confirm: https://x/1");
    expect(render("no tags at all")).toBe("no tags at all");
    expect(render("")).toBe("");
  });

  test("bare names resolve from data first, then the recipient, then its attributes", () => {
    expect(render("{{ name }}", { name: "From data" })).toBe("From data");
    expect(render("{{ name }}")).toBe("Ann");
    expect(render("{{ plan }}")).toBe("premium");
    expect(render("{{ name }}", { name: null })).toBe("Ann");
  });

  test("explicit roots user and data", () => {
    expect(render("{{ user.name }}/{{ data.name }}", { name: "Event" })).toBe("Ann/Event");
    expect(render("{{ user.plan }}")).toBe("premium");
    expect(render("{{ user.attributes.plan }}")).toBe("premium");
  });

  test("other roots are data keys (enrichment), with nested paths and indexes", () => {
    const data = { movie: { title: "Heat", cast: [{ name: "Pacino" }, { name: "De Niro" }] } };
    expect(render("{{ movie.title }}: {{ movie.cast[1].name }}", data)).toBe("Heat: De Niro");
  });

  test("numbers, booleans and dates render as text", () => {
    expect(render("{{ n }} {{ b }} {{ d }}", { n: 42.5, b: false, d: new Date("2026-01-02T03:04:05Z") })).toBe(
      "42.5 false 2026-01-02T03:04:05.000Z",
    );
  });

  test("<% %> in the template text is printed, not run", () => {
    expect(render("<%= 7*7 %> <% it %> %>")).toBe("<%= 7*7 %> <% it %> %>");
  });

  test("a quoted helper argument may contain }}", () => {
    expect(render('{{ x | default("}}") }}')).toBe("}}");
  });
});

describe("missing and non-scalar values", () => {
  test("every missing value is listed, and nothing renders", () => {
    const e = renderError(() => render("{{ a }} {{ b.c }} {{ user.nope }} {{ a }} {{ d[0] }}", { b: {} }));
    expect(e.missing).toEqual(["a", "b.c", "user.nope", "d[0]"]);
    expect(e.message).toContain("a, b.c, user.nope, d[0]");
    expect(e.code).toBe("TEMPLATE_RENDER_FAILED");
    expect(e.status).toBe(422);
  });

  test("null counts as missing; default fills undefined, null and empty string", () => {
    expect(renderError(() => render("{{ a }}", { a: null })).missing).toEqual(["a"]);
    expect(render('{{ a | default("friend") }}|{{ b | default("x") }}|{{ c | default(0) }}', { b: null, c: "" })).toBe("friend|x|0");
  });

  test("missing values from helpers are still reported", () => {
    expect(renderError(() => render("{{ a | upper }} {{ b | date }} {{ c | number }} {{ d | truncate(3) }}")).missing).toEqual([
      "a", "b", "c", "d",
    ]);
  });

  test("objects and arrays are not scalars", () => {
    const e = renderError(() => render("{{ o }} {{ l }} {{ user }}", { o: { a: 1 }, l: [1] }));
    expect(e.problems).toHaveLength(3);
    expect(e.problems[0]).toContain("o is not a scalar value");
    expect(e.message).not.toContain("[object Object]");
  });

  test("never prints 'undefined'", () => {
    expect(() => render("Hi {{ nobody }}")).toThrow(TemplateRenderError);
  });
});

describe("helpers", () => {
  test("upper and lower follow the recipient locale", () => {
    expect(render("{{ w | upper }} {{ w | lower }}", { w: "Straße" })).toBe("STRASSE straße");
    expect(render("{{ w | upper }}", { w: "istanbul" }, "text", { locale: "tr" })).toBe("İSTANBUL");
  });

  test("truncate counts characters, not UTF-16 units", () => {
    expect(render("{{ s | truncate(5) }}", { s: "hello world" })).toBe("hell…");
    expect(render("{{ s | truncate(5) }}", { s: "hello" })).toBe("hello");
    expect(render("{{ s | truncate(3) }}", { s: "😀😀😀😀" })).toBe("😀😀…");
  });

  test("date in the recipient's locale and time zone", () => {
    const data = { at: "2026-03-01T21:30:00Z" };
    const ru = { user: { ...user, locale: "ru-RU", timezone: "Europe/Moscow" } };
    // 21:30 UTC is already 2 March in Moscow (UTC+3)
    expect(compileTemplate("{{ at | date }}", "text").render({ data, ...ru })).toBe("2 мар. 2026 г.");
    expect(compileTemplate('{{ at | date("long", "short") }}', "text").render({ data, ...ru })).toBe("2 марта 2026 г. в 00:30");
    expect(render('{{ at | date("short") }}', data)).toBe("3/1/26");
    expect(render('{{ at | date("full", "short") }}', data, "text", { timezone: "America/New_York" })).toBe(
      "Sunday, March 1, 2026 at 4:30 PM",
    );
    expect(render('{{ at | date("short") }}', { at: Date.UTC(2026, 0, 5) })).toBe("1/5/26");
  });

  test("bad locale or time zone falls back to en / UTC instead of failing", () => {
    const u = { ...user, locale: "not a locale!!", timezone: "Mars/Olympus" };
    expect(compileTemplate('{{ at | date("short", "short") }}', "text").render({ data: { at: "2026-03-01T21:30:00Z" }, user: u })).toBe(
      "3/1/26, 9:30 PM",
    );
  });

  test("number formatting with fraction digits", () => {
    expect(render("{{ n | number }}", { n: 1234567.891 })).toBe("1,234,567.891");
    expect(render("{{ n | number(2) }}", { n: 1234.5 }, "text", { locale: "de-DE" })).toBe("1.234,50");
    expect(render("{{ n | number(0, 0) }}", { n: "99.6" })).toBe("100");
    expect(render("{{ n | number(2) }}", { n: 1234.5 }, "text", { locale: "ru" })).toBe("1\u00a0234,50");
  });

  test("helpers chain left to right", () => {
    expect(render('{{ a | default("anonymous") | upper | truncate(4) }}')).toBe("ANO…");
  });

  test("wrong kinds are render errors, not garbage", () => {
    const e = renderError(() => render("{{ a | date }} {{ b | number }} {{ c | upper }}", { a: "soon", b: "lots", c: { x: 1 } }));
    expect(e.problems.map((p) => p.split(" ")[0])).toEqual(["a", "b", "c"]);
  });
});

describe("blocks", () => {
  test("if / else / unless", () => {
    const src = "{{#if vip}}VIP{{else}}regular{{/if}} {{#unless vip}}upgrade!{{/unless}}";
    expect(render(src, { vip: true })).toBe("VIP ");
    expect(render(src, { vip: false })).toBe("regular upgrade!");
    expect(render(src, {})).toBe("regular upgrade!");
    expect(render("{{#if l}}some{{else}}none{{/if}}", { l: [] })).toBe("none");
    expect(render("{{#if l}}some{{/if}}", { l: [0] })).toBe("some");
  });

  test("a missing value inside a branch not taken is not an error", () => {
    expect(render("{{#if promo}}{{ promo.code }}{{/if}}done")).toBe("done");
  });

  test("each with @index, loop variable scoped to its block", () => {
    const src = "{{#each items as item}}{{ @index }}={{ item.title }};{{/each}}";
    expect(render(src, { items: [{ title: "a" }, { title: "b" }] })).toBe("0=a;1=b;");
    expect(render(src, { items: [] })).toBe("");
    expect(render(src, {})).toBe("");
    // after the loop, `item` is an ordinary data name again
    expect(render("{{#each l as item}}{{/each}}{{ item }}", { l: [1], item: "outer" })).toBe("outer");
  });

  test("nested loops and conditionals", () => {
    const src =
      "{{#each groups as g}}[{{ g.name }}:{{#each g.items as it2}}{{ @index }}{{#if it2.hot}}*{{/if}}{{ it2.v }}{{/each}}]{{/each}}";
    const data = { groups: [{ name: "A", items: [{ v: 1, hot: true }, { v: 2 }] }, { name: "B", items: [] }] };
    expect(render(src, data)).toBe("[A:0*112][B:]");
  });

  test("loop items may be scalars", () => {
    expect(render("{{#each tags as t}}#{{ t }} {{/each}}", { tags: ["a", "b"] })).toBe("#a #b ");
  });

  test("looping over a non-list is an error", () => {
    expect(renderError(() => render("{{#each x as i}}{{/each}}", { x: "abc" })).problems[0]).toContain("x is not a list");
  });

  test("loop limit", () => {
    const items = Array.from({ length: MAX_LOOP_ITEMS + 1 }, (_, i) => i);
    expect(renderError(() => render("{{#each items as i}}{{ i }}{{/each}}", { items })).problems[0]).toContain("loop limit");
    expect(render("{{#each items as i}}.{{/each}}", { items: items.slice(1) })).toHaveLength(MAX_LOOP_ITEMS);
  });

  test("nested loop bombs stop at the iteration budget", () => {
    const items = Array.from({ length: 1000 }, (_, i) => i);
    const src = "{{#each a as x}}{{#each a as y}}{{#each a as z}}{{/each}}{{/each}}{{/each}}";
    const started = performance.now();
    expect(renderError(() => render(src, { a: items })).problems.join()).toContain("loops ran more than");
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe("escaping modes", () => {
  const nasty = `<b onclick="x">Tom & 'Jerry'</b>`;

  test("text: values as they are", () => {
    expect(render("{{ v }}", { v: nasty }, "text")).toBe(nasty);
  });

  test("html: & < > \" ' escaped in values, template markup kept", () => {
    expect(render("<p>{{ v }}</p>", { v: nasty }, "html")).toBe(
      "<p>&lt;b onclick=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/b&gt;</p>",
    );
  });

  test("telegram-html: & < > only", () => {
    expect(render("<b>{{ v }}</b>", { v: nasty }, "telegram-html")).toBe(`<b>&lt;b onclick="x"&gt;Tom &amp; 'Jerry'&lt;/b&gt;</b>`);
  });

  test("telegram-markdownv2: every reserved character and the backslash", () => {
    const v = "_*[]()~`>#+-=|{}.!\\ ok";
    expect(render("*{{ v }}*", { v }, "telegram-markdownv2")).toBe(
      "*\\_\\*\\[\\]\\(\\)\\~\\`\\>\\#\\+\\-\\=\\|\\{\\}\\.\\!\\\\ ok*",
    );
  });

  test("header: CR/LF in values (and in the template text) become spaces", () => {
    const out = render("Hello {{ v }}\r\nBcc: x", { v: "Ann\r\nBcc: evil@example.com\nX: y\rZ" }, "header");
    expect(out).toBe("Hello Ann Bcc: evil@example.com X: y Z Bcc: x");
    expect(out).not.toMatch(/[\r\n]/);
  });

  test("escaping happens after helpers (truncate never cuts an entity)", () => {
    expect(render("{{ v | truncate(3) }}", { v: "<<<<" }, "html")).toBe("&lt;&lt;…");
  });

  test("same source in two modes compiles twice, each cached", () => {
    const a = compileTemplate("{{ v }}", "html");
    expect(compileTemplate("{{ v }}", "html")).toBe(a);
    expect(compileTemplate("{{ v }}", "text")).not.toBe(a);
  });
});

describe("compile-time validation", () => {
  test("compileTemplate rejects what validateTemplate rejects", () => {
    let err: unknown;
    try {
      compileTemplate("ok {{ a = 1 }}", "text");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TemplateSyntaxError);
    const e = err as TemplateSyntaxError;
    expect(e.code).toBe("TEMPLATE_INVALID");
    expect(e.status).toBe(422);
    expect(e.issues[0]).toMatchObject({ tag: "{{ a = 1 }}", offset: 3 });
    expect(e.message).toContain("{{ a = 1 }}");
  });

  test("unknown escape mode", () => {
    expect(() => compileTemplate("x", "sql" as EscapeMode)).toThrow(TypeError);
  });
});
