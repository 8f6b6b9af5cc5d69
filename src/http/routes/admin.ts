/**
 * GET /admin: the admin panel (SPEC 2), three static files served from the binary (no CDN). The
 * page holds no data and no secret: it is a client of /api/v1 with the key the manager pastes,
 * so every action goes through the API's scopes, validation and audit trail.
 *
 * The Content-Security-Policy allows only these files and calls to this origin: no inline script,
 * no eval, no other origin, not framed; a message's HTML preview runs in a sandboxed iframe.
 */
import type { Hono } from "hono";
import type { App } from "../../app.ts";
import type { Env } from "../env.ts";
import indexHtml from "../admin/index.html" with { type: "text" };
import appJs from "../admin/app.js" with { type: "text" };
import appCss from "../admin/app.css" with { type: "text" };

export const ADMIN_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const FILES: Record<string, { body: string; type: string }> = {
  "/admin": { body: indexHtml as unknown as string, type: "text/html; charset=utf-8" },
  "/admin/": { body: indexHtml as unknown as string, type: "text/html; charset=utf-8" },
  "/admin/app.js": { body: appJs as unknown as string, type: "text/javascript; charset=utf-8" },
  "/admin/app.css": { body: appCss as unknown as string, type: "text/css; charset=utf-8" },
};

export function adminRoutes(root: Hono<Env>, _app: App) {
  for (const [path, file] of Object.entries(FILES)) {
    root.get(path, (c) =>
      c.body(file.body, 200, {
        "content-type": file.type,
        "content-security-policy": ADMIN_CSP,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "cache-control": "no-cache",
      }),
    );
  }
}
