/**
 * The executable schema: SDL embedded as text (compile-safe), resolvers attached, every resolver
 * wrapped once so that errors carry stable codes and the context is the same over HTTP and WS.
 */
import { buildASTSchema, parse, GraphQLObjectType, GraphQLScalarType, valueFromASTUntyped, type DocumentNode, type GraphQLFieldResolver, type GraphQLSchema } from "graphql";
import type { Context } from "hono";
import type { App } from "../app.ts";
import type { Env } from "../http/env.ts";
import sdl from "./schema.graphql" with { type: "text" };
import { toGraphQLError, type GqlContext } from "./context.ts";
import { Me, Mutation, Query } from "./resolvers.ts";
import { Subscription } from "./subscriptions.ts";

export { sdl };

/** Over HTTP the context is Hono's; resolvers see one GqlContext per request, built on first use. */
const fromHono = new WeakMap<object, Promise<GqlContext>>();

function contextOf(raw: unknown, app: App): Promise<GqlContext> | GqlContext {
  const c = raw as Partial<Context<Env>> & Partial<GqlContext>;
  if ("app" in c && c.app) return c as GqlContext;
  let ctx = fromHono.get(c);
  if (!ctx) {
    ctx = (c as Context<Env>).var.authenticate().then((principal) => ({ app, principal }));
    fromHono.set(c, ctx);
  }
  return ctx;
}

function wrap(app: App, fn: (p: unknown, a: Record<string, unknown>, ctx: GqlContext) => unknown): GraphQLFieldResolver<unknown, unknown> {
  return async function resolveField(parent, args, raw) {
    try {
      return await fn(parent, args, await contextOf(raw, app));
    } catch (err) {
      throw toGraphQLError(err, app.log);
    }
  };
}

let document: DocumentNode | undefined;
const schemas = new WeakMap<App, GraphQLSchema>();

/** Parses and validates the SDL once per process (start-up warms it while the database starts). */
export function schemaDocument(): DocumentNode {
  if (document) return document;
  const doc = parse(sdl);
  buildASTSchema(doc); // validates the SDL once; later builds skip it
  return (document = doc);
}

/** One schema per app, shared by GraphQL over HTTP and over WebSocket. */
export function createSchema(app: App): GraphQLSchema {
  let schema = schemas.get(app);
  if (!schema) schemas.set(app, (schema = buildExecutableSchema(app)));
  return schema;
}

function buildExecutableSchema(app: App): GraphQLSchema {
  const schema = buildASTSchema(schemaDocument(), { assumeValidSDL: true });
  const json = schema.getType("JSON") as GraphQLScalarType;
  json.serialize = (v) => v;
  json.parseValue = (v) => v;
  json.parseLiteral = (ast, vars) => valueFromASTUntyped(ast, vars);
  const attach = (typeName: string, resolvers: Record<string, (p: unknown, a: Record<string, unknown>, ctx: GqlContext) => unknown>) => {
    const fields = (schema.getType(typeName) as GraphQLObjectType).getFields();
    for (const [name, fn] of Object.entries(resolvers)) {
      const field = fields[name];
      if (!field) throw new Error(`resolver ${typeName}.${name} has no field in schema.graphql`);
      field.resolve = wrap(app, fn);
    }
  };
  attach("Query", Query);
  attach("Mutation", Mutation);
  attach("Me", Me);
  const subs = (schema.getSubscriptionType() as GraphQLObjectType).getFields();
  for (const [name, def] of Object.entries(Subscription)) {
    subs[name]!.subscribe = wrap(app, def.subscribe as never);
    subs[name]!.resolve = (payload) => (def.resolve as (p: unknown) => unknown)(payload);
  }
  return schema;
}
