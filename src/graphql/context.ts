/**
 * What every resolver gets, over HTTP (POST /graphql) and over graphql-ws, and the one mapping
 * from AppError to a GraphQL error: the same stable code in `extensions.code`, the fields at
 * fault in `extensions.details`.
 */
import { GraphQLError } from "graphql";
import type { App } from "../app.ts";
import { hasScope, type Principal } from "../http/auth.ts";
import { AppError } from "../runtime/errors.ts";
import type { Scope } from "../schemas/api-key.ts";
import type { Hub } from "../realtime/hub.ts";

export interface GqlContext {
  app: App;
  principal: Principal | null;
  /** Present on graphql-ws sockets: subscriptions listen to this gateway's hub. */
  hub?: Hub;
}

/** A service or admin key carrying `scope`, as the REST route would require. */
export function needScope(ctx: GqlContext, scope: Scope): Principal {
  const p = ctx.principal;
  if (!p) throw new AppError("UNAUTHENTICATED", "authentication required (API key or user token)");
  if (p.type === "user" || !hasScope(p, scope)) throw new AppError("FORBIDDEN", `this operation needs an API key with the ${scope} scope`);
  return p;
}

/** The end user behind a user token. */
export function needUser(ctx: GqlContext): Principal {
  const p = ctx.principal;
  if (!p) throw new AppError("UNAUTHENTICATED", "a user token is required");
  if (p.type !== "user") throw new AppError("FORBIDDEN", "this operation is for end users: use a user token, not an API key");
  return p;
}

export function toGraphQLError(err: unknown, log?: App["log"]): GraphQLError {
  if (err instanceof GraphQLError) return err;
  if (err instanceof AppError) {
    return new GraphQLError(err.message, { extensions: { code: err.code, status: err.status, details: err.details } });
  }
  log?.error("graphql resolver failed", { err });
  return new GraphQLError("internal error", { extensions: { code: "INTERNAL", status: 500, details: [] } });
}
