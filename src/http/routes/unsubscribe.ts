/**
 * One-click unsubscribe (RFC 8058), at the root so the link is short and works without login:
 * GET /u/{token} shows a confirmation page (mail scanners follow GET links, so GET changes
 * nothing); POST /u/{token} records the opt-out — mail clients send it with the body
 * `List-Unsubscribe=One-Click`, and the page's button does the same.
 */
import type { Hono } from "hono";
import type { App } from "../../app.ts";
import { createUnsubscribeSigner, type UnsubscribeClaim } from "../../services/unsubscribe.ts";
import { ESCAPERS } from "../../templates/escape.ts";
import type { Env } from "../env.ts";
import { addOperations } from "../openapi.ts";

addOperations([
  { method: "get", path: "/u/{token}", summary: "Unsubscribe confirmation page (no login)", auth: "none", tag: "preferences" },
  { method: "post", path: "/u/{token}", summary: "One-click unsubscribe (RFC 8058): opts the user out of the link's category on e-mail", auth: "none", tag: "preferences" },
]);

const esc = ESCAPERS.html;

function pageHtml(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>${esc(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}button{font-size:1rem;padding:.5rem 1rem}</style>
</head><body><h1>${esc(title)}</h1>${body}</body></html>`;
}

export function unsubscribeRoutes(root: Hono<Env>, app: App) {
  const signer = createUnsubscribeSigner({ unsubscribeSecret: app.config.unsubscribeSecret, adminKey: app.config.adminKey, jwtSecret: app.config.jwtSecret });
  const invalid = () =>
    new Response(pageHtml("Link not valid", "<p>This unsubscribe link is not valid. Use the link from your most recent e-mail.</p>"), {
      status: 400,
      headers: { "content-type": "text/html; charset=utf-8" },
    });
  const claim = (token: string): UnsubscribeClaim | undefined => signer?.verify(token);

  root.get("/u/:token", (c) => {
    const cl = claim(c.req.param("token"));
    if (!cl) return invalid();
    return c.html(
      pageHtml(
        "Unsubscribe",
        `<p>Stop receiving <b>${esc(cl.category)}</b> e-mails?</p><form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>`,
      ),
    );
  });

  root.post("/u/:token", async (c) => {
    const cl = claim(c.req.param("token"));
    if (!cl) return invalid();
    await app.repos.preferences.addOptOut(cl.userId, { category: cl.category, channel: cl.channel as "email" });
    c.get("log").info("unsubscribed", { user_id: cl.userId, category: cl.category, channel: cl.channel });
    return c.html(pageHtml("Unsubscribed", `<p>You will no longer receive <b>${esc(cl.category)}</b> e-mails.</p>`));
  });
}
