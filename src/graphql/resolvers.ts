/**
 * Query and mutation resolvers. They call the same services and valibot schemas as the REST
 * routes, with the same scopes; users reach only their own inbox and directory entry.
 */
import * as v from "valibot";
import { AppError } from "../runtime/errors.ts";
import { Id, Key, parse } from "../schemas/common.ts";
import { TemplateInput } from "../schemas/template.ts";
import { UserInput } from "../schemas/user.ts";
import { checkTemplate } from "../services/render.ts";
import { createPreferenceService } from "../services/preferences.ts";
import { listNotifications } from "../store/notification-list.ts";
import { notificationView } from "../http/routes/events.ts";
import { needScope, needUser, type GqlContext } from "./context.ts";
import { GRAPHQL_HOOKS } from "./hooks.ts";

/** Page sizes; the cost limit assumes this bound for a `first` given by a variable. */
export const MAX_FIRST = 100;

type Args = Record<string, unknown>;
type Resolver = (parent: unknown, args: Args, ctx: GqlContext) => unknown;

function first(args: Args, def: number): number {
  const n = args.first ?? def;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > MAX_FIRST) {
    throw new AppError("VALIDATION_FAILED", `first must be an integer from 1 to ${MAX_FIRST}`, { details: [{ path: "first", message: `must be 1..${MAX_FIRST}` }] });
  }
  return n;
}

function id(value: unknown, path: string, schema: v.GenericSchema<unknown, string> = Id): string {
  const r = v.safeParse(schema, value);
  if (!r.success) throw new AppError("VALIDATION_FAILED", `invalid ${path}`, { details: [{ path, message: r.issues[0]!.message }] });
  return r.output;
}

const decode = (cursor: unknown): string | undefined => (typeof cursor === "string" && cursor ? Buffer.from(cursor, "base64url").toString("utf8") : undefined);
const encode = (key: string) => Buffer.from(key, "utf8").toString("base64url");

async function notificationById(ctx: GqlContext, nid: string) {
  const n = await ctx.app.repos.notifications.get(nid);
  if (!n) return null;
  return notificationView(n, await ctx.app.repos.deliveries.listByNotification(nid));
}

export const Query: Record<string, Resolver> = {
  async notification(_p, args, ctx) {
    needScope(ctx, "notifications:read");
    return notificationById(ctx, String(args.id));
  },
  async notifications(_p, args, ctx) {
    needScope(ctx, "notifications:read");
    const limit = first(args, 20);
    const filter = (args.filter ?? {}) as { status?: string; event?: string };
    const beforeId = decode(args.after);
    if (beforeId !== undefined && !/^[0-9a-f-]{36}$/i.test(beforeId)) throw new AppError("VALIDATION_FAILED", "invalid cursor", { details: [{ path: "after", message: "not a cursor returned by this API" }] });
    const rows = await listNotifications(ctx.app.sql, { limit: limit + 1, beforeId, status: filter.status ?? undefined, event: filter.event ?? undefined });
    const page = rows.slice(0, limit);
    const items = await Promise.all(page.map(async (n) => notificationView(n, await ctx.app.repos.deliveries.listByNotification(n.id))));
    return { items, next_cursor: rows.length > limit ? encode(page[page.length - 1]!.id) : null };
  },
  async templates(_p, args, ctx) {
    needScope(ctx, "templates:write");
    return ctx.app.repos.templates.list(first(args, 50), decode(args.after));
  },
  async template(_p, args, ctx) {
    needScope(ctx, "templates:write");
    return (await ctx.app.repos.templates.get(id(args.key, "key", Key))) ?? null;
  },
  async campaigns(_p, args, ctx) {
    needScope(ctx, "campaigns:write");
    return GRAPHQL_HOOKS.listCampaigns ? GRAPHQL_HOOKS.listCampaigns(ctx.app, first(args, 20)) : [];
  },
  async user(_p, args, ctx) {
    const uid = id(args.id, "id");
    // A user may look up only themselves; anyone else's id reads as absent, not forbidden.
    if (ctx.principal?.type === "user") return ctx.principal.id === uid ? ((await ctx.app.repos.users.get(uid)) ?? { id: uid, attributes: {} }) : null;
    needScope(ctx, "users:write");
    return (await ctx.app.repos.users.get(uid)) ?? null;
  },
  me(_p, _args, ctx) {
    return { id: needUser(ctx).id };
  },
  async audit(_p, args, ctx) {
    needScope(ctx, "audit:read");
    if (!GRAPHQL_HOOKS.queryAudit) return { items: [], next_cursor: null };
    const text = (k: string) => (typeof args[k] === "string" ? (args[k] as string) : undefined);
    return GRAPHQL_HOOKS.queryAudit(ctx.app, { actor: text("actor"), action: text("action"), target: text("target"), since: text("since"), until: text("until"), limit: first(args, 50), cursor: text("after") });
  },
};

export const Me: Record<string, Resolver> = {
  inbox(_p, args, ctx) {
    const u = needUser(ctx);
    return ctx.app.inbox.list(u.id, { limit: first(args, 20), cursor: typeof args.after === "string" && args.after ? args.after : undefined, archived: args.archived === true });
  },
  unreadCount(_p, _args, ctx) {
    return ctx.app.inbox.unreadCount(needUser(ctx).id);
  },
  preferences(_p, _args, ctx) {
    return createPreferenceService({ preferences: ctx.app.repos.preferences }).get(needUser(ctx).id);
  },
};

export const Mutation: Record<string, Resolver> = {
  async sendEvent(_p, args, ctx) {
    const p = needScope(ctx, "events:write");
    const key = args.idempotencyKey;
    if (key !== undefined && key !== null && (typeof key !== "string" || key.length === 0 || key.length > 255)) {
      throw new AppError("VALIDATION_FAILED", "idempotencyKey must be 1..255 characters", { details: [{ path: "idempotencyKey", message: "1..255 characters" }] });
    }
    const r = await ctx.app.events.accept(args.input, { source: p.id, idempotencyKey: (key as string | null) ?? undefined });
    return { id: r.id, status: r.status, replayed: r.replayed };
  },
  async markRead(_p, args, ctx) {
    return (await ctx.app.inbox.markRead(needUser(ctx).id, String(args.id))).item;
  },
  markAllRead(_p, _args, ctx) {
    return ctx.app.inbox.markAllRead(needUser(ctx).id);
  },
  async upsertTemplate(_p, args, ctx) {
    const p = needScope(ctx, "templates:write");
    const key = id(args.key, "key", Key);
    const input = parse(TemplateInput, args.input, "input");
    checkTemplate(input);
    return (await ctx.app.repos.templates.put(key, input, `${p.type}:${p.id}`)).template;
  },
  async upsertUser(_p, args, ctx) {
    needScope(ctx, "users:write");
    const uid = id(args.id, "id");
    return (await ctx.app.repos.users.put(uid, parse(UserInput, args.input, "input"))).user;
  },
  /** The same service and validation as PUT /api/v1/users/{id}/preferences, for the caller only. */
  setPreferences(_p, args, ctx) {
    return createPreferenceService({ preferences: ctx.app.repos.preferences }).set(needUser(ctx).id, args.input);
  },
};
