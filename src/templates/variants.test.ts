import { describe, expect, test } from "bun:test";
import { renderMessage, selectVariant, TemplateRenderError, type TemplateVariant } from "./index.ts";

const v = (channel: string, locale: string | undefined, text = `${channel}:${locale}`): TemplateVariant => ({ channel, locale, text });

describe("selectVariant", () => {
  const variants = [v("email", "en"), v("email", "ru"), v("email", "ru-RU"), v("email", "de"), v("sms", "en"), v("sms", "pt_BR")];
  const pick = (channel: string, locale: string | undefined, def?: string) => selectVariant(variants, channel, locale, def)?.text;

  test("exact locale, then language, then template default, then first of the channel", () => {
    expect(pick("email", "ru-RU")).toBe("email:ru-RU");
    expect(pick("email", "ru-UA")).toBe("email:ru");
    expect(pick("email", "ru")).toBe("email:ru");
    expect(pick("email", "fr-FR", "de")).toBe("email:de");
    expect(pick("email", "fr-FR", "de-AT")).toBe("email:de");
    expect(pick("email", "fr", "es")).toBe("email:en");
    expect(pick("email", undefined, undefined)).toBe("email:en");
  });

  test("case-insensitive, '_' reads as '-'", () => {
    expect(pick("email", "RU_ru")).toBe("email:ru-RU");
    expect(pick("sms", "pt-br")).toBe("sms:pt_BR");
    expect(pick("sms", "PT")).toBe("sms:en");
    expect(pick("EMAIL", "de")).toBe("email:de");
  });

  test("longer tags fall back step by step", () => {
    const zh = [v("push", "en"), v("push", "zh-Hant")];
    expect(selectVariant(zh, "push", "zh-Hant-TW", undefined)?.locale).toBe("zh-Hant");
  });

  test("a variant without locale beats the first one when nothing matches", () => {
    const vs = [v("email", "de"), v("email", undefined)];
    expect(selectVariant(vs, "email", "fr", "es")?.locale).toBeUndefined();
    expect(selectVariant(vs, "email", "de", undefined)?.locale).toBe("de");
  });

  test("only variants of the channel", () => {
    expect(pick("telegram", "en")).toBeUndefined();
    expect(selectVariant([], "email", "en", "en")).toBeUndefined();
  });
});

describe("renderMessage", () => {
  const template = {
    default_locale: "en",
    variants: [
      { channel: "email", locale: "en", subject: "Welcome, {{ name }}", text: "Hi {{ name }}, confirm: {{ link }}", html: "<p>Hi {{ name }}</p>" },
      { channel: "email", locale: "ru", subject: "Привет, {{ name }}", text: "Привет, {{ name }}: {{ link }}", html: "<p>{{ when | date(\"long\") }}</p>" },
      { channel: "telegram", locale: "en", text: "Hi {{ name }}", html: "<b>{{ name }}</b>" },
      { channel: "in_app", title: "New {{ kind }}", text: "{{ body }}" },
    ],
  };
  const user = { name: "Tom & <Jerry>\r\nBcc: x@example.com", email: "t@example.com", timezone: "Europe/Moscow" };

  test("e-mail: subject as a header, text plain, html escaped", () => {
    const out = renderMessage(template, "email", "en-GB", { data: { link: "https://x/1?a=1&b=2" }, user });
    expect(out).toEqual({
      subject: "Welcome, Tom & <Jerry> Bcc: x@example.com",
      text: "Hi Tom & <Jerry>\r\nBcc: x@example.com, confirm: https://x/1?a=1&b=2",
      html: "<p>Hi Tom &amp; &lt;Jerry&gt;\r\nBcc: x@example.com</p>",
      locale: "en",
    });
  });

  test("locale fallback ru-RU → ru, helpers use the recipient's locale and zone", () => {
    const out = renderMessage(template, "email", "ru-RU", { data: { link: "L", when: "2026-03-01T22:00:00Z" }, user: { name: "Иван", timezone: "Europe/Moscow" } });
    expect(out).toMatchObject({ subject: "Привет, Иван", text: "Привет, Иван: L", html: "<p>2 марта 2026 г.</p>", locale: "ru" });
  });

  test("telegram: html part escaped for parse_mode HTML", () => {
    const out = renderMessage(template, "telegram", "en", { data: {}, user: { name: `<a href="x">` } });
    expect(out).toEqual({ text: `Hi <a href="x">`, html: `<b>&lt;a href="x"&gt;</b>`, locale: "en" });
    const md = renderMessage({ variants: [{ channel: "telegram", text: "*{{ name }}*" }] }, "telegram", "en", { data: {}, user: { name: "a.b" } }, { text: "telegram-markdownv2" });
    expect(md?.text).toBe("*a\\.b*");
  });

  test("in-app title is single-line", () => {
    expect(renderMessage(template, "in_app", "fr", { data: { kind: "a\nb", body: "x\ny" }, user })).toEqual({ title: "New a b", text: "x\ny", locale: undefined });
  });

  test("missing values of all parts are reported together", () => {
    let err: unknown;
    try {
      renderMessage(template, "email", "en", { data: {}, user: {} });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TemplateRenderError);
    expect((err as TemplateRenderError).missing).toEqual(["name", "link"]);
  });

  test("no variant for the channel", () => {
    expect(renderMessage(template, "sms", "en", { data: {}, user })).toBeUndefined();
  });
});
