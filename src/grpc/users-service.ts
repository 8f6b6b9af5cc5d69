/** UserDirectory.GetUsers: the local directory, filled in from the optional upstream. */
import { AppError } from "../runtime/errors.ts";
import { TtlLru } from "./cache.ts";
import type { Sql } from "../store/db.ts";
import { createUserRepo, type User } from "../store/users.ts";
import { userToWire } from "./convert.ts";
import type { GetUsersRequest, GetUsersResponse } from "./proto.ts";
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

export interface UsersServiceOptions {
  sql: Sql;
  upstream?: UsersUpstream;
  /**
   * Serve directory rows from memory for this long (NOTIFY_GRPC_USER_CACHE_TTL_MS; 0, the default,
   * disables). Trade-off: a user changed or deleted through the API may be seen as before by the
   * workers for up to this long. Only found users are cached: a new user is visible at once.
   */
  cacheTtlMs?: number;
  cacheMaxEntries?: number;
}

export function createUsersService(deps: UsersServiceOptions) {
  const repo = createUserRepo(deps.sql);
  const ttl = deps.cacheTtlMs ?? 0;
  const cache = ttl > 0 ? new TtlLru<User>(deps.cacheMaxEntries ?? 200_000) : undefined;

  async function getLocal(ids: string[]): Promise<Map<string, User>> {
    if (!cache) return repo.getMany(ids);
    const out = new Map<string, User>();
    const todo: string[] = [];
    for (const id of ids) {
      const hit = cache.get(id);
      if (hit) out.set(id, hit);
      else todo.push(id);
    }
    if (todo.length) {
      for (const [id, u] of await repo.getMany(todo)) {
        cache.set(id, u, ttl);
        out.set(id, u);
      }
    }
    return out;
  }

  return {
    async getUsers(req: GetUsersRequest, signal: AbortSignal): Promise<GetUsersResponse> {
      const ids = [...new Set(req.ids ?? [])];
      if (ids.length === 0) throw new AppError("VALIDATION_FAILED", "ids must not be empty", { details: [{ path: "ids", message: "must not be empty" }] });
      if (ids.length > MAX_IDS_PER_CALL) throw new AppError("VALIDATION_FAILED", `at most ${MAX_IDS_PER_CALL} ids per call`, { details: [{ path: "ids", message: "too many ids" }] });
      if (ids.some((id) => id === "")) throw new AppError("VALIDATION_FAILED", "ids must not be empty strings", { details: [{ path: "ids", message: "empty id" }] });
      if (ids.some((id) => id.includes("\0"))) throw new AppError("VALIDATION_FAILED", "ids may not contain U+0000", { details: [{ path: "ids", message: "contains U+0000" }] });

      const local = await getLocal(ids);
      const users = new Map(local);
      const missing: string[] = [];
      const unresolved: string[] = [];
      if (deps.upstream) {
        // Ask the upstream about ids we lack and about users we know without an address or name
        // (the seed design: the auth service holds e-mail and full name).
        const ask = ids.filter((id) => {
          const u = local.get(id);
          return !u || u.email == null || u.name == null;
        });
        if (ask.length) {
          const up = await deps.upstream.lookup(ask, signal);
          for (const id of ask) {
            const found = up.found.get(id);
            if (found) users.set(id, merge(local.get(id), found));
            else if (!local.has(id)) (up.failed.has(id) ? unresolved : missing).push(id);
          }
        }
      }
      for (const id of ids) if (!users.has(id) && !unresolved.includes(id) && !missing.includes(id)) missing.push(id);
      return { users: [...users.values()].map(userToWire), missing_ids: missing, unresolved_ids: unresolved };
    },
  };
}
