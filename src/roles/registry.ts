/**
 * The roles other than gateway and worker, and the extensions capabilities add to those two.
 * A static table: adding a role adds a line, never a branch elsewhere.
 */
import type { App } from "../app.ts";
import type { Role } from "../config.ts";
import type { HttpExtensions } from "../http/app.ts";
import type { Hooks, UserDirectory } from "../services/dispatch.ts";
import { enrichmentHooks, startGrpcBackend, workerDirectory } from "./grpc-backend.ts";
import { auditHooks, auditHttpExtension, queryAudit, startAuditRole } from "./audit.ts";
import { GRAPHQL_HOOKS } from "../graphql/hooks.ts";
import { campaignView } from "../http/routes/campaigns.ts";
import { createCampaignRepo } from "../store/campaigns.ts";
import { channelHttpExtension, channelWorkerHooks } from "./channel-features.ts";
import { mergeHooks } from "./compose.ts";
import { mergeExtensions, realtimeExtensions } from "../realtime/extensions.ts";
import { startScheduler } from "./scheduler.ts";
import { campaignRoutes } from "../http/routes/campaigns.ts";

type Stop = () => Promise<void>;

export const ROLE_STARTERS: {
  roles: Partial<Record<Exclude<Role, "gateway" | "worker">, (app: App) => Promise<Stop>>>;
  gatewayExtensions?: (app: App) => HttpExtensions;
  workerOptions?: (app: App) => { directory?: UserDirectory; hooks?: Hooks };
} = {
  roles: {
    "grpc-backend": startGrpcBackend,
    audit: startAuditRole,
    // Campaign fan-out screens recipients with the worker's hook (preferences, quiet hours).
    scheduler: (app) => startScheduler(app, { screen: ROLE_STARTERS.workerOptions?.(app).hooks?.screen }),
  },
  // Each capability's gateway additions, one entry each.
  gatewayExtensions: (app) => mergeExtensions([{ api: [campaignRoutes] }, realtimeExtensions(app), channelHttpExtension(), auditHttpExtension(app)]),
  // Each capability's worker hooks, one entry each.
  workerOptions: (app) => ({ directory: workerDirectory(app), hooks: mergeHooks([channelWorkerHooks(app), auditHooks(app), enrichmentHooks(app)]) }),
};

// GraphQL reaches capabilities through its own hook table (src/graphql/hooks.ts).
GRAPHQL_HOOKS.queryAudit = (app, q) => queryAudit(app, { ...q, limit: String(q.limit) });
GRAPHQL_HOOKS.listCampaigns = async (app, first) => (await createCampaignRepo(app.sql).list(first)).map(campaignView);
