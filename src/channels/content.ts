/**
 * Plain-text forms of a message for channels without subject lines (SMS, Telegram, webhook).
 * A free-form event (title/body without a template) has its title in front of the body; a
 * rendered template decides its own text.
 */
import type { DeliveryContent } from "../store/deliveries.ts";

export const isFreeForm = (c: DeliveryContent) => c.meta?.template === undefined;

export function plainText(c: DeliveryContent): string {
  const text = c.text ?? "";
  if (!isFreeForm(c) || !c.title) return text || c.title || "";
  return text ? `${c.title}\n${text}` : c.title;
}
