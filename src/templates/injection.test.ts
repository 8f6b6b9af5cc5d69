/**
 * Template injection: every payload is either rejected by validateTemplate (naming its tag) or
 * rendered as inert text. A canary proves no payload ran, and traps on Function / eval prove the
 * engine never reaches them while validating or rendering.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { compileTemplate, ESCAPE_MODES, TemplateRenderError, TemplateSyntaxError, validateTemplate } from "./index.ts";

declare global {
  var __pwned: unknown;
}

const CANARY = "globalThis.__pwned = 1";

/** Must be rejected; `tag` is the tag the issue must name. */
const REJECTED: { src: string; tag?: string }[] = [
  { src: '{{ it.constructor.constructor("return process")() }}' },
  { src: `{{ it.constructor.constructor("${CANARY}")() }}` },
  { src: "{{ constructor.constructor('return this')() }}" },
  { src: `{{ constructor.constructor('${CANARY}')() }}` },
  { src: "{{ __proto__ }}" },
  { src: "{{ user.__proto__.polluted }}" },
  { src: "{{ data.prototype }}" },
  { src: "{{ name.constructor }}" },
  { src: "{{ process.exit(1) }}" },
  { src: "{{ process }}" },
  { src: "{{ this }}" },
  { src: "{{ globalThis }}" },
  { src: "{{ globalThis.__pwned }}" },
  { src: "{{ a; process.exit() }}" },
  { src: `{{ a; ${CANARY} }}` },
  { src: "{{ a = 1 }}" },
  { src: "{{ a == 1 }}" },
  { src: "{{ `x` }}" },
  { src: "{{ `${globalThis.__pwned = 1}` }}" },
  { src: '{{ data["constructor"] }}' },
  { src: "{{ data['__proto__'] }}" },
  { src: "{{ [].map }}" },
  { src: "{{ a || process }}" },
  { src: "{{ a && b }}" },
  { src: "{{ a ? b : c }}" },
  { src: "{{ a + b }}" },
  { src: "{{ !a }}" },
  { src: "{{ -a }}" },
  { src: "{{ a[b] }}" },
  { src: "{{ a[-1] }}" },
  { src: "{{ a.b() }}" },
  { src: "{{ eval('1') }}" },
  { src: "{{ Function('return 1')() }}" },
  { src: "{{ require('fs') }}" },
  { src: "{{ import('fs') }}" },
  { src: "{{ new Date() }}" },
  { src: "{{ (a) }}" },
  { src: "{{ a | constructor }}" },
  { src: "{{ a | upper(process) }}" },
  { src: "{{ a | default(b) }}" },
  { src: "{{ a | map }}" },
  { src: "{{ a | date(`short`) }}" },
  { src: "{{ a | truncate(1e9) }}" },
  { src: "{{ {a:1} }}" },
  { src: "{{{ raw }}}", tag: "{{{ raw }}" },
  { src: "{{ <% process.exit() %> }}" },
  { src: "{{ %> }}" },
  { src: "{{ a /* x */ }}" },
  { src: "{{ a // x }}" },
  { src: "{{ @root }}" },
  { src: "{{ @index }}" },
  { src: "{{ }}" },
  { src: "{{#each constructor as x}}{{/each}}", tag: "{{#each constructor as x}}" },
  { src: "{{#each constructor}}{{/each}}", tag: "{{#each constructor}}" },
  { src: "{{#each l as x}}{{ x.constructor }}{{/each}}", tag: "{{ x.constructor }}" },
  { src: "{{#each l as __proto__}}{{/each}}", tag: "{{#each l as __proto__}}" },
  { src: "{{#if process.env}}yes{{/if}}", tag: "{{#if process.env}}" },
  { src: "{{#if a}}{{#eval x}}{{/if}}", tag: "{{#eval x}}" },
  { src: "{{#with constructor}}{{/with}}", tag: "{{#with constructor}}" },
  { src: "{{> partial }}" },
  { src: "{{! comment }}" },
  { src: "unclosed {{ a", tag: "{{ a" },
];

/** Must render exactly as written: admin text is never code. */
const INERT = [
  "<% process.exit() %>",
  `<% ${CANARY} %>`,
  "<%= 7*7 %>",
  `<%= ${CANARY} %>`,
  `<%~ ${CANARY} %>`,
  `<%- ${CANARY} %>`,
  "<% } %><% { %>",
  `'); ${CANARY}; ('`,
  `"); ${CANARY}; ("`,
  `\\'; ${CANARY}; //`,
  "`${" + CANARY + "}`",
  `</script><script>${CANARY}</script>`,
  `line1\nline2\r\n\u2028\u2029%>`,
];

function trapGlobals() {
  const calls: string[] = [];
  const origFunction = globalThis.Function;
  const origEval = globalThis.eval;
  const ctorDescriptor = Object.getOwnPropertyDescriptor(Function.prototype, "constructor")!;
  const trap = (what: string) =>
    function trapped() {
      calls.push(what);
      throw new Error(`${what} reached`);
    };
  globalThis.Function = trap("Function") as unknown as FunctionConstructor;
  globalThis.eval = trap("eval");
  // `x.constructor.constructor` ends at Function.prototype.constructor
  Object.defineProperty(Function.prototype, "constructor", { ...ctorDescriptor, value: trap("Function.prototype.constructor") });
  return {
    calls,
    restore() {
      globalThis.Function = origFunction;
      globalThis.eval = origEval;
      Object.defineProperty(Function.prototype, "constructor", ctorDescriptor);
    },
  };
}

beforeEach(() => {
  globalThis.__pwned = undefined;
});
afterEach(() => {
  expect(globalThis.__pwned).toBeUndefined();
});

describe("rejected payloads", () => {
  for (const { src, tag } of REJECTED) {
    test(src, () => {
      const issues = validateTemplate(`Hello ${src} bye`);
      expect(issues.length).toBeGreaterThan(0);
      const named = tag ?? src;
      expect(issues.some((i) => i.tag === named || i.tag.startsWith(named.slice(0, 30)))).toBe(true);
      expect(issues[0]!.offset).toBeGreaterThanOrEqual(6);
      expect(issues[0]!.message.length).toBeGreaterThan(5);
      for (const mode of ESCAPE_MODES) {
        expect(() => compileTemplate(`Hello ${src} bye`, mode)).toThrow(TemplateSyntaxError);
      }
    });
  }

  test("the issue points at the offending tag among good ones", () => {
    const src = "Hi {{ name }},\n{{#if a}}ok{{/if}} {{ it.constructor.constructor(\"return process\")() }}";
    const [issue, ...rest] = validateTemplate(src);
    expect(rest).toHaveLength(0);
    expect(issue).toMatchObject({ tag: '{{ it.constructor.constructor("return process")() }}', line: 2, column: 20 });
    expect(src.slice(issue!.offset).startsWith(issue!.tag)).toBe(true);
  });

  test("one bad block tag gives one issue, not a cascade", () => {
    expect(validateTemplate("{{#each constructor as x}}{{ x }}{{/each}}")).toHaveLength(1);
  });
});

describe("inert payloads", () => {
  for (const src of INERT) {
    test(JSON.stringify(src), () => {
      expect(validateTemplate(src)).toEqual([]);
      expect(compileTemplate(src, "text").render({ data: {}, user: {} })).toBe(src);
      expect(compileTemplate(src, "html").render({ data: {}, user: {} })).toBe(src);
    });
  }

  test("payloads inside string arguments and values are data, never code", () => {
    const payload = `%> <% ${CANARY} %> '); ${CANARY}; (' \` \${${CANARY}}`;
    const t = compileTemplate(`{{ a | default(${JSON.stringify(payload)}) }}|{{ v }}`, "text");
    expect(t.render({ data: { v: payload }, user: {} })).toBe(`${payload}|${payload}`);
  });

  test("values that look like templates are not re-rendered", () => {
    const v = "{{ constructor }} <%= 7*7 %>";
    expect(compileTemplate("{{ v }}", "text").render({ data: { v }, user: {} })).toBe(v);
  });
});

describe("prototype keys find nothing", () => {
  test("inherited properties are not visible", () => {
    const t = compileTemplate("{{ toString }} {{ a.hasOwnProperty }} {{ valueOf }} {{ l.map }} {{ s.charAt }}", "text");
    const e = (() => {
      try {
        t.render({ data: { a: {}, l: [], s: "x" }, user: {} });
      } catch (err) {
        return err as TemplateRenderError;
      }
    })();
    expect(e).toBeInstanceOf(TemplateRenderError);
    expect(e!.missing).toEqual(["toString", "a.hasOwnProperty", "valueOf", "l.map", "s.charAt"]);
  });

  test("a polluted Object.prototype does not leak into output", () => {
    const proto = Object.prototype as Record<string, unknown>;
    proto.polluted = "leaked";
    try {
      expect(() => compileTemplate("{{ polluted }}", "text").render({ data: {}, user: {} })).toThrow(TemplateRenderError);
      expect(compileTemplate("{{#if polluted}}leaked{{else}}clean{{/if}}", "text").render({ data: {}, user: { attributes: {} } })).toBe("clean");
    } finally {
      delete proto.polluted;
    }
  });

  test("a JSON __proto__ key is an own property but the grammar never names it", () => {
    const data = JSON.parse('{"__proto__": {"x": "leaked"}, "ok": "fine"}') as Record<string, unknown>;
    expect(compileTemplate("{{ ok }}", "text").render({ data, user: {} })).toBe("fine");
    expect(() => compileTemplate("{{ x }}", "text").render({ data, user: {} })).toThrow(TemplateRenderError);
  });
});

describe("bombs", () => {
  test("nesting deeper than the limit is rejected", () => {
    const depth = 50;
    const src = "{{#if a}}".repeat(depth) + "x" + "{{/if}}".repeat(depth);
    const issues = validateTemplate(src);
    expect(issues.length).toBeGreaterThan(0);
    expect(issues[0]!.message).toContain("nest too deep");
  });

  test("very long paths, very many tags and oversized sources are rejected", () => {
    expect(validateTemplate(`{{ a${".b".repeat(100)} }}`)[0]!.message).toContain("path is too long");
    expect(validateTemplate("{{ a }}".repeat(6000))[0]!.message).toContain("too many tags");
    expect(validateTemplate("x".repeat(600 * 1024))[0]!.message).toContain("too long");
  });

  test("a flood of braces stays linear and is rejected", () => {
    const started = performance.now();
    expect(validateTemplate("{{".repeat(100_000)).length).toBeGreaterThan(0);
    expect(validateTemplate("{{ a".repeat(20_000) + " }}").length).toBeGreaterThan(0);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe("Function and eval are never reached", () => {
  test("validating and rendering every payload with Function, eval and Function.prototype.constructor trapped", () => {
    const compiled = INERT.map((s) => compileTemplate(s, "html")); // compiling goes through eta (new Function) once
    const good = compileTemplate(
      '{{ name | upper }} {{#each l as x}}{{ x.v | default("-") }}{{ @index }}{{/each}}{{#if a}}{{ a | number(2) }}{{/if}} {{ d | date("long", "short") }}',
      "html",
    );
    const traps = trapGlobals();
    try {
      for (const { src } of REJECTED) validateTemplate(src);
      for (const t of compiled) t.render({ data: {}, user: {} });
      const out = good.render({ data: { l: [{ v: 1 }, {}], a: 3, d: "2026-01-01T00:00:00Z" }, user: { name: "ann" } });
      expect(out).toBe("ANN 10-13.00 January 1, 2026 at 12:00 AM");
      // the payloads that would reach Function if they were evaluated as JS
      for (const src of ['{{ it.constructor.constructor("return process")() }}', "{{ constructor.constructor('return this')() }}"]) {
        expect(() => compileTemplate(src, "text")).toThrow(TemplateSyntaxError);
      }
    } finally {
      traps.restore();
    }
    expect(traps.calls).toEqual([]);
  });
});
