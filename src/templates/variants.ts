/** The shape of one template variant (SPEC 3.3); schemas/template.ts validates it at the edge. */
export interface TemplateVariant {
  channel: string;
  locale?: string;
  subject?: string;
  title?: string;
  text: string;
  html?: string;
}

const norm = (tag: string) => tag.trim().replace(/_/g, "-").toLowerCase();

/** `zh-Hant-TW` → [`zh-hant-tw`, `zh-hant`, `zh`]. */
function fallbacks(tag: string | undefined): string[] {
  if (!tag || !tag.trim()) return [];
  const parts = norm(tag).split("-").filter(Boolean);
  const out: string[] = [];
  for (let i = parts.length; i > 0; i--) out.push(parts.slice(0, i).join("-"));
  return out;
}

/**
 * Picks the variant for a channel and a recipient locale: `ru-RU` → `ru` → the template's default
 * locale (and its language) → a variant without a locale → the channel's first variant.
 * Locale tags compare case-insensitively, with `_` read as `-`. Undefined when the channel has none.
 */
export function selectVariant<T extends { channel: string; locale?: string }>(
  variants: readonly T[],
  channel: string,
  locale: string | undefined,
  defaultLocale: string | undefined,
): T | undefined {
  const ch = channel.toLowerCase();
  const mine = variants.filter((v) => v.channel.toLowerCase() === ch);
  if (mine.length <= 1) return mine[0];
  for (const want of [...fallbacks(locale), ...fallbacks(defaultLocale)]) {
    const hit = mine.find((v) => v.locale !== undefined && norm(v.locale) === want);
    if (hit) return hit;
  }
  return mine.find((v) => !v.locale?.trim()) ?? mine[0];
}
