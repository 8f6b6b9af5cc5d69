/**
 * The grpc-backend role: UserDirectory, Audience, Renderer, Context and Health on NOTIFY_GRPC_PORT.
 * Also the worker's side of it: when NOTIFY_GRPC_URL is set, recipient lookups go to the backend.
 */
import type { App } from "../app.ts";
import { createGrpcClients, createRemoteUserDirectory, type GrpcClients } from "../grpc/client.ts";
import { createEnricher, type Enricher } from "../grpc/enrich.ts";
import { createSafeFetchJson } from "../grpc/safe-fetch-json.ts";
import { startGrpcServer } from "../grpc/server.ts";
import type { RenderFn } from "../grpc/render.ts";
import { userContext } from "../services/render.ts";
import type { Hooks, UserDirectory } from "../services/dispatch.ts";
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
    userCache: app.mode.database !== "embedded",
    render,
    loadTemplate: (key) => app.repos.templates.get(key),
    fetchJson: createSafeFetchJson(app.config.env),
    onAuthFailure: (method, reason) =>
      app.audit.record({ actor: { type: "system", id: "grpc-client" }, action: "auth.failed", target: { type: "grpc_method", id: method }, outcome: "denied", details: { reason } }),
  });
  app.readiness.set("grpc", async () => ({ ok: true, detail: `listening on ${server.port}` }));
  return () => server.stop(5_000);
}

const clientsByApp = new WeakMap<App, GrpcClients>();

/** One set of backend clients per process (directory, enrichment and the scheduler share a channel). */
export function grpcClientsFor(app: App): GrpcClients | undefined {
  if (!app.config.grpcUrl) return undefined;
  let clients = clientsByApp.get(app);
  if (!clients) {
    clients = createGrpcClients({ url: app.config.grpcUrl, token: app.config.grpcToken, log: app.log });
    clientsByApp.set(app, clients);
    const c = clients;
    app.lifecycle.add("grpc-client", () => c.close());
  }
  return clients;
}

/** The worker's directory: the backend when NOTIFY_GRPC_URL is set (retried when unreachable), else PostgreSQL. */
export function workerDirectory(app: App): UserDirectory | undefined {
  const clients = grpcClientsFor(app);
  return clients ? createRemoteUserDirectory(clients) : undefined;
}

/**
 * Enrichment before rendering: the event rule's data sources (e.g. movie ← {base}/movies/{data.movie_id})
 * fetched by the backend (Context.Enrich) when NOTIFY_GRPC_URL is set, else in this process with
 * the same code, cache and SSRF guard. A source that fails throws, so the event is retried rather
 * than rendered half-empty.
 */
export function enrichmentHooks(app: App): Hooks {
  let local: Enricher | undefined;
  return {
    async enrich(event) {
      const rule = await app.repos.rules.find(event.event);
      const sources = rule?.data_sources ?? [];
      if (sources.length === 0) return {};
      const wire = sources.map((s) => ({ name: s.name, url_template: s.url }));
      const data = event.data ?? {};
      const clients = grpcClientsFor(app);
      if (clients) return clients.context.enrich(event.event, data, wire);
      local ??= createEnricher({ fetchJson: createSafeFetchJson(app.config.env), baseUrl: app.config.env.NOTIFY_ENRICH_BASE_URL, log: app.log });
      return local.enrich(event.event, data, wire, AbortSignal.timeout(30_000));
    },
  };
}
