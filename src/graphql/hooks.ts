/**
 * Resolver hooks other capabilities fill in (a static table, like src/roles/registry.ts): the
 * preferences service (issue 3) and campaigns. Until then `me.preferences` is null,
 * `setPreferences` answers NOT_AVAILABLE and `campaigns` is an empty list.
 */
import type { App } from "../app.ts";

export interface GraphqlHooks {
  getPreferences?: (app: App, userId: string) => Promise<unknown>;
  /** Validates like PUT /api/v1/users/{id}/preferences and returns the stored preferences. */
  setPreferences?: (app: App, userId: string, input: unknown) => Promise<unknown>;
  listCampaigns?: (app: App, first: number) => Promise<unknown[]>;
}

export const GRAPHQL_HOOKS: GraphqlHooks = {};
