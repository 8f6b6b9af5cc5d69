import * as v from "valibot";
import { Key, Locale, Name, noLineBreaks } from "./common.ts";
import { CHANNELS } from "./event.ts";

export const Variant = v.strictObject({
  channel: v.picklist(CHANNELS, `must be one of ${CHANNELS.join(", ")}`),
  locale: v.optional(Locale),
  subject: v.optional(v.pipe(v.string(), v.maxLength(998), noLineBreaks)),
  title: v.optional(v.pipe(v.string(), v.maxLength(1000))),
  text: v.pipe(v.string(), v.maxLength(100_000)),
  html: v.optional(v.pipe(v.string(), v.maxLength(500_000))),
});
export type Variant = v.InferOutput<typeof Variant>;

/** PUT /api/v1/templates/{key}. */
export const TemplateInput = v.strictObject({
  name: Name,
  category: v.optional(Key),
  default_locale: v.optional(Locale),
  /** Declared variables; when given, placeholders outside this list are rejected at save. */
  variables: v.optional(v.array(v.pipe(v.string(), v.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an identifier")))),
  variants: v.pipe(v.array(Variant), v.minLength(1, "needs at least one variant"), v.maxLength(100)),
});
export type TemplateInput = v.InferOutput<typeof TemplateInput>;
