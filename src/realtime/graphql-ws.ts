/**
 * The graphql-transport-ws protocol (github.com/enisdenjo/graphql-ws, PROTOCOL.md) on our one
 * Bun websocket handler: connection_init (may carry the token) → connection_ack; subscribe →
 * next* → complete | error; ping/pong. Close codes are that protocol's: 4400 bad message,
 * 4401 unauthorized, 4403 forbidden, 4408 init timeout, 4409 duplicate id, 4429 repeated init.
 */
import { getOperationAST, parse, subscribe, execute, validate, specifiedRules, GraphQLError, type DocumentNode, type ExecutionResult, type GraphQLSchema } from "graphql";
import type { App } from "../app.ts";
import { toGraphQLError, type GqlContext } from "../graphql/context.ts";
import { limitRule } from "../graphql/limits.ts";
import { bearerToken } from "../http/auth.ts";
import { AppError } from "../runtime/errors.ts";
import type { Hub } from "./hub.ts";
import { sendFrame, type Socket, type SocketProtocol } from "./sockets.ts";

/** A client has this long to send connection_init. */
export const INIT_TIMEOUT_MS = 10_000;
/** Operations one socket may run at once. */
export const MAX_OPERATIONS = 50;

interface GqlState {
  acked: boolean;
  initSeen: boolean;
  initTimer?: ReturnType<typeof setTimeout>;
  ops: Map<string, AsyncIterator<ExecutionResult> | null>;
  closed: boolean;
}

export function createGraphqlWsProtocol(deps: { app: App; hub: Hub; schema: GraphQLSchema; authenticateLate: (ws: Socket, token: string) => Promise<void> }): SocketProtocol {
  const { app, hub, schema } = deps;
  const log = app.log.child({ component: "graphql-ws" });
  const state = (ws: Socket) => ws.data.state as GqlState;
  const send = (ws: Socket, msg: unknown) => sendFrame(ws, JSON.stringify(msg));
  const errorsOf = (errs: readonly GraphQLError[]) => errs.map((e) => e.toJSON());

  async function init(ws: Socket, payload: Record<string, unknown> | undefined): Promise<void> {
    const s = state(ws);
    if (!ws.data.principal) {
      const raw = payload?.authorization ?? payload?.Authorization ?? payload?.token;
      const token = typeof raw === "string" ? (bearerToken(raw) ?? raw) : undefined;
      if (!token) return ws.close(4403, "Forbidden: connection_init needs {authorization: \"Bearer <token>\"}");
      try {
        await deps.authenticateLate(ws, token);
      } catch (err) {
        return ws.close(4403, `Forbidden: ${err instanceof AppError ? err.message : "invalid token"}`.slice(0, 120));
      }
    }
    if (s.closed) return;
    s.acked = true;
    send(ws, { type: "connection_ack" });
  }

  async function run(ws: Socket, id: string, payload: { query?: unknown; variables?: unknown; operationName?: unknown }): Promise<void> {
    const s = state(ws);
    let doc: DocumentNode;
    try {
      if (typeof payload?.query !== "string") throw new GraphQLError("payload.query must be a string", { extensions: { code: "BAD_REQUEST" } });
      doc = parse(payload.query);
    } catch (err) {
      s.ops.delete(id);
      send(ws, { id, type: "error", payload: errorsOf([err instanceof GraphQLError ? err : new GraphQLError(String(err))]) });
      return;
    }
    const invalid = validate(schema, doc, [...specifiedRules, limitRule]);
    if (invalid.length) {
      s.ops.delete(id);
      send(ws, { id, type: "error", payload: errorsOf(invalid) });
      return;
    }
    const args = {
      schema,
      document: doc,
      variableValues: (payload.variables ?? undefined) as Record<string, unknown> | undefined,
      operationName: typeof payload.operationName === "string" ? payload.operationName : undefined,
      contextValue: { app, hub, principal: ws.data.principal } satisfies GqlContext,
    };
    const op = getOperationAST(doc, args.operationName);
    if (op?.operation !== "subscription") {
      const result = await execute(args);
      if (s.ops.has(id) && !s.closed) {
        send(ws, { id, type: "next", payload: result });
        send(ws, { id, type: "complete" });
      }
      s.ops.delete(id);
      return;
    }
    const result = await subscribe(args);
    if (!(Symbol.asyncIterator in result)) {
      s.ops.delete(id);
      // Errors before the stream starts (auth, unknown id) are an `error` message, per the protocol.
      if (result.errors?.length) send(ws, { id, type: "error", payload: errorsOf(result.errors) });
      else send(ws, { id, type: "next", payload: result }), send(ws, { id, type: "complete" });
      return;
    }
    const it = result[Symbol.asyncIterator]();
    if (!s.ops.has(id) || s.closed) {
      await it.return?.();
      return;
    }
    s.ops.set(id, it);
    try {
      for (;;) {
        const r = await it.next();
        if (r.done || !s.ops.has(id)) break;
        if (!send(ws, { id, type: "next", payload: r.value })) break;
      }
      if (s.ops.has(id) && !s.closed) send(ws, { id, type: "complete" });
    } catch (err) {
      if (!s.closed) send(ws, { id, type: "error", payload: [toGraphQLError(err, log).toJSON()] });
    } finally {
      s.ops.delete(id);
      await it.return?.();
    }
  }

  return {
    open(ws) {
      const s: GqlState = { acked: false, initSeen: false, ops: new Map(), closed: false };
      s.initTimer = setTimeout(() => ws.close(4408, "Connection initialisation timeout"), INIT_TIMEOUT_MS);
      ws.data.state = s;
    },
    message(ws, text) {
      const s = state(ws);
      let msg: { type?: unknown; id?: unknown; payload?: unknown };
      try {
        msg = JSON.parse(text);
      } catch {
        return ws.close(4400, "Invalid message received");
      }
      switch (msg?.type) {
        case "connection_init":
          if (s.initSeen) return ws.close(4429, "Too many initialisation requests");
          s.initSeen = true;
          clearTimeout(s.initTimer);
          init(ws, msg.payload as Record<string, unknown> | undefined).catch((err) => log.warn("graphql-ws init failed", { err: String(err) }));
          return;
        case "ping":
          send(ws, { type: "pong" });
          return;
        case "pong":
          return;
        case "subscribe": {
          if (!s.acked) return ws.close(4401, "Unauthorized");
          const id = msg.id;
          if (typeof id !== "string" || !id || id.length > 128) return ws.close(4400, "Invalid message received");
          if (s.ops.has(id)) return ws.close(4409, `Subscriber for ${id} already exists`);
          if (s.ops.size >= MAX_OPERATIONS) {
            send(ws, { id, type: "error", payload: [{ message: `at most ${MAX_OPERATIONS} operations per socket`, extensions: { code: "TOO_MANY_OPERATIONS" } }] });
            return;
          }
          s.ops.set(id, null);
          run(ws, id, (msg.payload ?? {}) as never).catch((err) => {
            s.ops.delete(id);
            if (!s.closed) send(ws, { id, type: "error", payload: [toGraphQLError(err, log).toJSON()] });
          });
          return;
        }
        case "complete": {
          const it = s.ops.get(msg.id as string);
          s.ops.delete(msg.id as string);
          void it?.return?.();
          return;
        }
        default:
          return ws.close(4400, "Invalid message received");
      }
    },
    close(ws) {
      const s = state(ws);
      s.closed = true;
      clearTimeout(s.initTimer);
      for (const it of s.ops.values()) void it?.return?.();
      s.ops.clear();
    },
  };
}
