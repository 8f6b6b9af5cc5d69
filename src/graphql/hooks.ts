/**
 * Resolver hooks other capabilities fill in (a static table, like src/roles/registry.ts). Until
 * the campaigns capability sets `listCampaigns`, `campaigns` is an empty list.
 */
import type { App } from "../app.ts";

export interface GraphqlHooks {
  listCampaigns?: (app: App, first: number) => Promise<unknown[]>;
  queryAudit?: (app: App, q: { actor?: string; action?: string; target?: string; since?: string; until?: string; limit: number; cursor?: string }) => Promise<{ items: unknown[]; next_cursor: string | null }>;
}

export const GRAPHQL_HOOKS: GraphqlHooks = {};
