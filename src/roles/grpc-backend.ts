/**
 * The grpc-backend role: UserDirectory, Audience, Renderer, Context and Health on NOTIFY_GRPC_PORT.
 * Also the worker's side of it: when NOTIFY_GRPC_URL is set, recipient lookups go to the backend.
 */
import type { App } from "../app.ts";
import { createGrpcClients, createRemoteUserDirectory } from "../grpc/client.ts";
import { createSafeFetchJson } from "../grpc/safe-fetch-json.ts";
import { startGrpcServer } from "../grpc/server.ts";
import type { RenderFn } from "../grpc/render.ts";
import { userContext } from "../services/render.ts";
import type { UserDirectory } from "../services/dispatch.ts";
import { renderMessage } from "../templates/index.ts";

const render: RenderFn = (template, channel, locale, ctx) => {
  const t = template as Parameters<typeof renderMessage>[0];
  const r = renderMessage(t, channel, locale || ctx.user.locale || undefined, { data: ctx.data, user: userContext(ctx.user), timezone: ctx.user.timezone ?? undefined });
  if (!r) throw new Error(`template has no variant for channel ${channel}`);
  return { subject: r.subject ?? null, text: r.text, html: r.html ?? null };
};

export async function startGrpcBackend(app: App): Promise<() => Promise<void>> {
  const server = await startGrpcServer({
    config: app.config,
    log: app.log,
    sql: app.sql,
    render,
    loadTemplate: (key) => app.repos.templates.get(key),
    fetchJson: createSafeFetchJson(app.config.env),
  });
  app.readiness.set("grpc", async () => ({ ok: true, detail: `listening on ${server.port}` }));
  return () => server.stop(5_000);
}

/** The worker's directory: the backend when NOTIFY_GRPC_URL is set (retried when unreachable), else PostgreSQL. */
export function workerDirectory(app: App): UserDirectory | undefined {
  if (!app.config.grpcUrl) return undefined;
  const clients = createGrpcClients({ url: app.config.grpcUrl, token: app.config.grpcToken, log: app.log });
  app.lifecycle.add("grpc-client", () => clients.close());
  return createRemoteUserDirectory(clients);
}
