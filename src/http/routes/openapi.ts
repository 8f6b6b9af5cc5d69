/** GET /api/openapi.json and GET /api/docs (served from the binary, no CDN). */
import type { Hono } from "hono";
import type { App } from "../../app.ts";
import type { Env } from "../env.ts";
import { openApiDocument } from "../openapi.ts";
import docsHtml from "../docs.html" with { type: "text" };

export function openapiRoutes(root: Hono<Env>, _app: App) {
  root.get("/api/openapi.json", (c) => c.json(openApiDocument()));
  root.get("/api/docs", (c) =>
    c.html(docsHtml as unknown as string, 200, { "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline' 'self'; style-src 'unsafe-inline'" }),
  );
}
