/** UserDirectory.GetUsers: the local directory, filled in from the optional upstream. */
import { AppError } from "../runtime/errors.ts";
import type { Sql } from "../store/db.ts";
import { createUserRepo, type User } from "../store/users.ts";
import { userToWire } from "./convert.ts";
import type { GetUsersRequest, GetUsersResponse, UserMessage } from "./proto.ts";
import type { Logger } from "../runtime/log.ts";
import { listenForUserChanges, UserRowCache } from "./user-cache.ts";
import type { UpstreamUser, UsersUpstream } from "./users-upstream.ts";

/** A worker asks for one message's recipients; 10k keeps a call well under the message size limit. */
export const MAX_IDS_PER_CALL = 10_000;

const FILLED_FIELDS = ["email", "name", "phone", "locale", "timezone"] as const;

/** Local values win (the directory is edited through our API); the upstream fills what is unknown. */
function merge(local: User | undefined, up: UpstreamUser): User {
  const u: User = local ? { ...local } : { id: up.id, email: null, phone: null, name: null, locale: null, timezone: null, telegram_chat_id: null, attributes: {} };
  for (const f of FILLED_FIELDS) {
    const v = up[f];
    if (u[f] == null && typeof v === "string" && v !== "") u[f] = v;
  }
  return u;
}

/**
 * GetUsers' answer as bytes ready for the wire: each user is one encoded `users` element (kept
 * so in the cache), followed by the encoded id lists. Protobuf allows fields in any order and
 * repeated elements one by one, so the concatenation is the message. server.ts sends it as is.
 */
export class EncodedGetUsers {
  constructor(readonly chunks: Uint8Array[]) {}
  toBuffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** The proto's own encoder of a whole GetUsersResponse (proto-loader's responseSerialize). */
export type SerializeGetUsers = (r: GetUsersResponse) => Buffer;

/** A user as the local directory has it: encoded when cached, else as read. */
interface Entry {
  expiresAt: number;
  /** This user as one encoded `users` element (cached entries). */
  wire?: Uint8Array;
  /** The row: always when not cached; in the cache only when the upstream may have to fill it in. */
  user?: User;
}

const lacksContact = (u: User) => u.email == null || u.name == null;

export interface UsersServiceOptions {
  sql: Sql;
  upstream?: UsersUpstream;
  serialize: SerializeGetUsers;
  /**
   * Serve directory rows from memory (NOTIFY_GRPC_USER_CACHE_TTL_MS, default 60 s; 0 disables).
   * Entries are dropped as soon as PostgreSQL announces a change to them (user-cache.ts), and
   * memory is not used while those announcements are not proven to arrive.
   */
  cacheTtlMs?: number;
  cacheMaxEntries?: number;
  log: Logger;
}

export function createUsersService(deps: UsersServiceOptions) {
  const repo = createUserRepo(deps.sql);
  const ttl = deps.cacheTtlMs ?? 0;
  const cache = ttl > 0 ? new UserRowCache<Entry>(deps.cacheMaxEntries ?? 250_000, ttl) : undefined;
  const listener = cache ? listenForUserChanges(deps.sql, cache, deps.log) : undefined;
  const encode = (u: User): Uint8Array => deps.serialize({ users: [userToWire(u)], missing_ids: [], unresolved_ids: [] });
  const cachedEntry = (u: User): Entry => ({ expiresAt: 0, wire: encode(u), user: lacksContact(u) ? u : undefined });

  /** The local directory's answer for these ids, from memory where it may be used. */
  async function getLocal(ids: string[]): Promise<Map<string, Entry>> {
    const out = new Map<string, Entry>();
    const live = cache && listener!.live;
    const todo: string[] = live ? [] : ids;
    if (live) {
      for (const id of ids) {
        const hit = cache.get(id);
        if (hit) out.set(id, hit);
        else todo.push(id);
      }
    }
    if (todo.length === 0) return out;
    const token = live ? cache.beginRead() : -1;
    let rows: Map<string, User>;
    try {
      rows = await repo.getMany(todo);
    } catch (err) {
      if (live) cache.endRead(token);
      throw err;
    }
    const fresh: Array<[string, Entry]> = [];
    for (const [id, u] of rows) {
      // Encoded one by one only when it will be kept; otherwise with the rest of the answer.
      const e: Entry = live ? cachedEntry(u) : { expiresAt: 0, user: u };
      out.set(id, e);
      fresh.push([id, e]);
    }
    if (live) cache.store(token, fresh); // ends the read
    return out;
  }

  return {
    cacheStats: () => ({ entries: cache?.size ?? 0, live: listener?.live ?? false }),
    stop: () => listener?.stop(),
    async getUsers(req: GetUsersRequest, signal: AbortSignal): Promise<EncodedGetUsers> {
      const ids = [...new Set(req.ids ?? [])];
      if (ids.length === 0) throw new AppError("VALIDATION_FAILED", "ids must not be empty", { details: [{ path: "ids", message: "must not be empty" }] });
      if (ids.length > MAX_IDS_PER_CALL) throw new AppError("VALIDATION_FAILED", `at most ${MAX_IDS_PER_CALL} ids per call`, { details: [{ path: "ids", message: "too many ids" }] });
      if (ids.some((id) => id === "")) throw new AppError("VALIDATION_FAILED", "ids must not be empty strings", { details: [{ path: "ids", message: "empty id" }] });
      if (ids.some((id) => id.includes("\0"))) throw new AppError("VALIDATION_FAILED", "ids may not contain U+0000", { details: [{ path: "ids", message: "contains U+0000" }] });

      const local = await getLocal(ids);
      const chunks: Uint8Array[] = [];
      const plain: UserMessage[] = [];
      const missing: string[] = [];
      const unresolved: string[] = [];
      // Ask the upstream about ids we lack and about users we know without an address or name
      // (the seed design: the auth service holds e-mail and full name).
      const ask = deps.upstream ? ids.filter((id) => { const e = local.get(id); return !e || (e.user !== undefined && lacksContact(e.user)); }) : [];
      const up = ask.length ? await deps.upstream!.lookup(ask, signal) : undefined;
      for (const id of ids) {
        const e = local.get(id);
        const found = up?.found.get(id);
        if (found) plain.push(userToWire(merge(e?.user, found)));
        else if (e?.wire) chunks.push(e.wire);
        else if (e?.user) plain.push(userToWire(e.user));
        else (up?.failed.has(id) ? unresolved : missing).push(id);
      }
      if (plain.length || missing.length || unresolved.length) chunks.push(deps.serialize({ users: plain, missing_ids: missing, unresolved_ids: unresolved }));
      return new EncodedGetUsers(chunks);
    },
  };
}
