/**
 * Templates as the rest of the app sees them: checked at save (422 naming the offending tag) and
 * rendered per recipient and channel at send time (the engine validates again there).
 */
import { AppError, type ErrorDetail } from "../runtime/errors.ts";
import type { ChannelName } from "../schemas/event.ts";
import type { TemplateInput } from "../schemas/template.ts";
import type { DeliveryContent } from "../store/deliveries.ts";
import type { StoredTemplate } from "../store/templates.ts";
import type { User } from "../store/users.ts";
import { renderMessage, validateTemplate, TemplateRenderError, TemplateSyntaxError } from "../templates/index.ts";

const PARTS = ["subject", "title", "text", "html"] as const;

/** Throws 422 TEMPLATE_INVALID listing every bad tag with its variant and part. */
export function checkTemplate(t: TemplateInput): void {
  const details: ErrorDetail[] = [];
  t.variants.forEach((variant, i) => {
    for (const part of PARTS) {
      const src = variant[part];
      if (src === undefined) continue;
      for (const issue of validateTemplate(src, { declaredVariables: t.variables })) {
        details.push({ path: `variants.${i}.${part}`, message: `${issue.message} in ${JSON.stringify(issue.tag)} at offset ${issue.offset}` });
      }
    }
  });
  if (details.length) throw new AppError("TEMPLATE_INVALID", `template rejected: ${details[0]!.message}`, { status: 422, details });
}

export function userContext(user: User): Record<string, unknown> {
  return { ...user.attributes, id: user.id, name: user.name, email: user.email, phone: user.phone, locale: user.locale, timezone: user.timezone, telegram_chat_id: user.telegram_chat_id, attributes: user.attributes };
}

/** The dispatcher's render function. Throws (permanent failure) when the template cannot render. */
export function renderFor(t: StoredTemplate, channel: ChannelName, user: User, data: Record<string, unknown>): DeliveryContent {
  const r = renderMessage(t, channel, user.locale ?? undefined, { data, user: userContext(user), timezone: user.timezone ?? undefined });
  if (!r) throw new Error(`template ${t.key} has no variant for channel ${channel}`);
  return { subject: r.subject, title: r.title, text: r.text, html: r.html, meta: { locale: r.locale, template: t.key, template_version: t.version } };
}

export function renderPreview(t: StoredTemplate, input: { channel?: ChannelName; locale?: string; data?: Record<string, unknown>; user?: Record<string, unknown> }) {
  const channel = input.channel ?? t.variants[0]!.channel;
  try {
    const r = renderMessage(t, channel, input.locale, { data: input.data ?? {}, user: input.user ?? {} });
    if (!r) throw new AppError("UNPROCESSABLE", `template has no variant for channel ${channel}`, { details: [{ path: "channel", message: "no variant for this channel" }] });
    return { channel, ...r };
  } catch (err) {
    if (err instanceof TemplateRenderError || err instanceof TemplateSyntaxError) {
      throw new AppError("TEMPLATE_RENDER_FAILED", err.message, { status: 422, details: [{ path: "data", message: err.message }] });
    }
    throw err;
  }
}
