import { describe, expect, test } from "bun:test";
import { validateTemplate, variablesOf } from "./index.ts";

describe("validateTemplate", () => {
  test("accepts the whole grammar", () => {
    const src = [
      "Hi {{ name }}, {{ user.email }} {{ data.link }} {{ movie.cast[0].name }}",
      '{{ a | upper }} {{ a | lower }} {{ a | default("x") }} {{ a | default(\'y\') }} {{ a | default(0) }}',
      '{{ d | date }} {{ d | date("short") }} {{ d | date("full", "long") }} {{ n | number }} {{ n | number(2) }} {{ n | number(0, 2) }}',
      "{{ s | truncate(10) }} {{#if a}}x{{else}}y{{/if}} {{#unless a}}z{{/unless}}",
      "{{#each items as item}}{{ item.title }} {{ @index }}{{#each item.tags as tag}}{{ tag }}{{ @index }}{{/each}}{{/each}}",
      "{{name}} {{  name  }} {{\n name \n}} {{#if\ta}}{{/if}}",
    ].join("\n");
    expect(validateTemplate(src)).toEqual([]);
  });

  test("reports every issue with tag, offset, line and column", () => {
    const src = "ok {{ a + 1 }}\n  {{ b | shout }} {{ c | truncate }}";
    const issues = validateTemplate(src);
    expect(issues.map((i) => [i.tag, i.offset, i.line, i.column])).toEqual([
      ["{{ a + 1 }}", 3, 1, 4],
      ["{{ b | shout }}", 17, 2, 3],
      ["{{ c | truncate }}", 33, 2, 19],
    ]);
    expect(issues[0]!.message).toContain("operators are not allowed");
    expect(issues[1]!.message).toContain("unknown helper 'shout'");
    expect(issues[2]!.message).toContain("'truncate' takes one integer");
  });

  test("helper argument checks", () => {
    const bad = [
      "{{ a | upper(1) }}",
      "{{ a | default }}",
      '{{ a | default("x", "y") }}',
      '{{ a | date("tiny") }}',
      '{{ a | date("short", "short", "short") }}',
      "{{ a | number(21) }}",
      "{{ a | number(3, 1) }}",
      "{{ a | number(1.5) }}",
      "{{ a | truncate(0) }}",
      '{{ a | truncate("3") }}',
      "{{ a | default(1x) }}",
      '{{ a | default("open) }}',
    ];
    for (const src of bad) expect(validateTemplate(src).map((i) => i.tag)).toEqual([src]);
  });

  test("block structure", () => {
    const cases: [string, string, string][] = [
      ["{{#if a}}x", "{{#if a}}", "never closed"],
      ["{{/if}}", "{{/if}}", "without an open"],
      ["{{#if a}}{{/each}}", "{{/each}}", "closes '{{#if}}'"],
      ["{{else}}", "{{else}}", "outside"],
      ["{{#if a}}{{else}}{{else}}{{/if}}", "{{else}}", "second"],
      ["{{#each l as x}}{{else}}{{/each}}", "{{else}}", "outside"],
      ["{{#each l}}{{/each}}", "{{#each l}}", "as item"],
      ["{{#each l as x}}{{#each m as x}}{{/each}}{{/each}}", "{{#each m as x}}", "hide"],
      ["{{#each l as user}}{{/each}}", "{{#each l as user}}", "hide"],
      ["{{#if a b}}{{/if}}", "{{#if a b}}", "expected end of tag"],
      ["{{ @index }}", "{{ @index }}", "outside"],
      ["{{#each l as x}}{{ @index.x }}{{/each}}", "{{ @index.x }}", "no properties"],
    ];
    for (const [src, tag, msg] of cases) {
      const issues = validateTemplate(src);
      // a mismatched close also leaves its block unclosed: that is a second, true issue
      expect(issues.length).toBe(src === "{{#if a}}{{/each}}" ? 2 : 1);
      expect(issues[0]!.tag).toBe(tag);
      expect(issues[0]!.message).toContain(msg);
    }
  });

  test("text outside tags is free: braces, <% and }} alone are fine", () => {
    expect(validateTemplate("a } b { c }} d <% e %> f { {")).toEqual([]);
  });

  describe("declaredVariables", () => {
    const src = "{{ link }} {{ name }} {{ user.x }} {{ data.y }} {{ movie.title }} {{ movie.year }} {{#each items as i}}{{ i.a }}{{ @index }}{{/each}}";

    test("undeclared roots are reported once each, naming the tag", () => {
      const issues = validateTemplate(src, { declaredVariables: ["link"] });
      expect(issues.map((i) => [i.message, i.tag])).toEqual([
        ["unknown placeholder movie", "{{ movie.title }}"],
        ["unknown placeholder items", "{{#each items as i}}"],
      ]);
    });

    test("user, data, recipient fields, loop variables and @index never need declaring", () => {
      expect(validateTemplate(src, { declaredVariables: ["link", "movie", "items"] })).toEqual([]);
    });

    test("issues come back in source order with grammar issues", () => {
      const issues = validateTemplate("{{ x }} {{ a = b }}", { declaredVariables: [] });
      expect(issues.map((i) => i.offset)).toEqual([0, 8]);
    });
  });
});

describe("variablesOf", () => {
  test("root names in order of first use, loop variables and @index excluded", () => {
    expect(
      variablesOf("{{ name }} {{ movie.title }} {{ user.email }} {{ data.link }} {{#each items as it2}}{{ it2.x }}{{ @index }}{{ name }}{{/each}}{{#if vip}}{{/if}}"),
    ).toEqual(["name", "movie", "user", "data", "items", "vip"]);
  });

  test("best effort on an invalid template", () => {
    expect(variablesOf("{{ a }} {{ b = 1 }} {{ c }}")).toEqual(["a", "c"]);
  });

  test("none", () => {
    expect(variablesOf("plain")).toEqual([]);
  });
});
