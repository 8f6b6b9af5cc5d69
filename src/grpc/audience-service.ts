/** Audience.Resolve: streamAudience behind a flow-controlled server stream. */
import type * as grpc from "@grpc/grpc-js";
import { AppError } from "../runtime/errors.ts";
import { DEFAULT_BATCH_SIZE, streamAudience, type AudienceSpec } from "../store/audience.ts";
import type { Sql } from "../store/db.ts";
import { userToWire } from "./convert.ts";
import { writeWithBackpressure } from "./handler.ts";
import type { ResolveRequest, UserBatch } from "./proto.ts";

/** The oneof on the wire → the store's audience shape. */
export function audienceFromWire(req: ResolveRequest): AudienceSpec {
  switch (req.audience) {
    case "all":
      if (req.all !== true) break;
      return { all: true };
    case "user_ids":
      return { user_ids: req.user_ids?.ids ?? [] };
    case "where":
      return { where: req.where?.equals ?? {} };
  }
  throw new AppError("VALIDATION_FAILED", "audience needs all, user_ids or where", { details: [{ path: "audience", message: "not set" }] });
}

export function createAudienceService(deps: { sql: Sql; onQuery?: () => void; stats?: { audienceActive: number } }) {
  const stats = deps.stats ?? { audienceActive: 0 };
  return {
    async resolve(req: ResolveRequest, signal: AbortSignal, call: grpc.ServerWritableStream<ResolveRequest, UserBatch>): Promise<void> {
      const audience = audienceFromWire(req);
      const batchSize = req.batch_size || DEFAULT_BATCH_SIZE;
      stats.audienceActive++;
      try {
        // The generator queries page n+1 only when asked, and we ask only after page n was accepted
        // by the transport (or drained): a slow reader slows the query, nothing piles up here.
        for await (const users of streamAudience(deps.sql, audience, batchSize, { signal, onQuery: deps.onQuery })) {
          if (signal.aborted) return;
          await writeWithBackpressure(call, { users: users.map(userToWire), done: false }, signal);
        }
        if (!signal.aborted) call.write({ users: [], done: true });
      } finally {
        stats.audienceActive--;
      }
    },
  };
}
