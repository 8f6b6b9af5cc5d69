import { AppError } from "../runtime/errors.ts";
import type { TemplateIssue } from "./grammar.ts";

/** A template that breaks the grammar (grammar.ts). Raised at compile time; 422 at the API. */
export class TemplateSyntaxError extends AppError {
  readonly issues: TemplateIssue[];

  constructor(issues: TemplateIssue[]) {
    const first = issues[0];
    super(
      "TEMPLATE_INVALID",
      first ? `template is invalid: ${first.message} in ${first.tag || "template"} at line ${first.line}` : "template is invalid",
      { status: 422, details: issues.map((i) => ({ path: `${i.line}:${i.column}`, message: `${i.message}: ${i.tag}` })) },
    );
    this.name = "TemplateSyntaxError";
    this.issues = issues;
  }
}

/**
 * Rendering could not produce a complete message: values missing (listed all at once, so the
 * sender can fix them in one go), values of the wrong kind, or a limit hit.
 */
export class TemplateRenderError extends AppError {
  readonly missing: string[];
  readonly problems: string[];

  constructor(missing: string[], problems: string[]) {
    const parts: string[] = [];
    if (missing.length) parts.push(`missing value${missing.length > 1 ? "s" : ""} for ${missing.join(", ")}`);
    parts.push(...problems);
    super("TEMPLATE_RENDER_FAILED", `template could not be rendered: ${parts.join("; ")}`, {
      status: 422,
      details: [
        ...missing.map((m) => ({ path: m, message: "missing value" })),
        ...problems.map((p) => ({ path: "", message: p })),
      ],
    });
    this.name = "TemplateRenderError";
    this.missing = missing;
    this.problems = problems;
  }
}
