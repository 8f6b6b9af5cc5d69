/**
 * Renderer.RenderBatch. Rendering itself is injected (`render`), so this file does not depend on
 * the template engine (src/templates/): the caller passes renderMessage from there.
 */
import { AppError } from "../runtime/errors.ts";
import type { Sql } from "../store/db.ts";
import type { User } from "../store/users.ts";
import { parseJsonObject, userFromWire } from "./convert.ts";
import type { RenderBatchRequest, RenderBatchResponse } from "./proto.ts";

export interface RenderContext {
  user: User;
  data: Record<string, unknown>;
}

export interface RenderedContent {
  subject?: string | null;
  text?: string | null;
  html?: string | null;
}

/** Same shape as src/templates' renderMessage(template, channel, locale, ctx). */
export type RenderFn = (template: unknown, channel: string, locale: string, ctx: RenderContext) => RenderedContent | Promise<RenderedContent>;

/** A stored template body by key, or undefined. */
export type TemplateLoader = (key: string) => Promise<unknown | undefined>;

export const MAX_RECIPIENTS_PER_RENDER = 10_000;

/** Reads the live body from `templates` (deleted ones are absent). */
export function sqlTemplateLoader(sql: Sql): TemplateLoader {
  return async function loadTemplate(key) {
    const [row] = await sql`SELECT body FROM templates WHERE key = ${key} AND deleted_at IS NULL`;
    return row?.body;
  };
}

export function createRendererService(deps: { render?: RenderFn; loadTemplate: TemplateLoader }) {
  return {
    async renderBatch(req: RenderBatchRequest, signal: AbortSignal): Promise<RenderBatchResponse> {
      const render = deps.render;
      if (!render) throw new AppError("UNIMPLEMENTED", "this backend was started without a renderer");
      if (!req.channel) throw new AppError("VALIDATION_FAILED", "channel is required", { details: [{ path: "channel", message: "required" }] });
      if (req.recipients.length > MAX_RECIPIENTS_PER_RENDER) {
        throw new AppError("VALIDATION_FAILED", `at most ${MAX_RECIPIENTS_PER_RENDER} recipients per call`, { details: [{ path: "recipients", message: "too many" }] });
      }
      let template: unknown;
      if (req.template === "template_key" && req.template_key) {
        template = await deps.loadTemplate(req.template_key);
        if (template === undefined) throw new AppError("NOT_FOUND", `template ${req.template_key} not found`, { details: [{ path: "template_key", message: "not found" }] });
      } else if (req.template === "template_json" && req.template_json) {
        template = parseJsonObject(req.template_json, "template_json");
      } else {
        throw new AppError("VALIDATION_FAILED", "template_key or template_json is required", { details: [{ path: "template", message: "required" }] });
      }
      const data = parseJsonObject(req.data_json, "data_json");
      const messages = [];
      for (const [i, r] of req.recipients.entries()) {
        // Thousands of renders are CPU work: let a cancelled call stop, and let other calls in.
        if (i % 500 === 499) {
          await new Promise((resolve) => setImmediate(resolve));
          if (signal.aborted) throw new AppError("CANCELLED", "cancelled");
        }
        const user = userFromWire(r);
        try {
          const out = await render(template, req.channel, user.locale ?? req.locale, { user, data });
          messages.push({ recipient_id: r.id, subject: out.subject ?? "", text: out.text ?? "", html: out.html ?? "", error: "" });
        } catch (err) {
          messages.push({ recipient_id: r.id, subject: "", text: "", html: "", error: err instanceof Error ? err.message : String(err) });
        }
      }
      return { messages };
    },
  };
}
