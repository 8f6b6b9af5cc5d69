/**
 * The Bun side's client for the gRPC backend: what the worker and the scheduler use when
 * NOTIFY_GRPC_URL is set. One HTTP/2 channel shared by every service client; deadlines on every
 * call; idempotent calls (GetUsers, Enrich, Health.Check) retried on UNAVAILABLE and
 * DEADLINE_EXCEEDED; every failure surfaces as a GrpcCallError that says whether it is retryable.
 */
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "../runtime/log.ts";
import type { AudienceSpec } from "../store/audience.ts";
import type { User } from "../store/users.ts";
import { userFromWire, userToWire } from "./convert.ts";
import type { DataSource } from "./enrich.ts";
import { fromGrpcError, GrpcCallError } from "./errors.ts";
import { services, type GetUsersResponse, type HealthCheckResponse, type RenderBatchResponse, type ServingStatus, type UserBatch } from "./proto.ts";
import { MAX_RECEIVE_BYTES, MAX_SEND_BYTES } from "./server.ts";

export interface GrpcClientsOptions {
  /** NOTIFY_GRPC_URL: "host:port", "grpc://host:port" (plaintext) or "grpcs://host:port" (TLS). */
  url: string;
  /** NOTIFY_GRPC_TOKEN, sent as `authorization: Bearer <token>`. */
  token?: string;
  log: Logger;
  /** PEM of the CA that signed the backend's certificate (grpcs:// only); system roots otherwise. */
  tlsCa?: Buffer;
  /** Deadline of unary calls when the caller gives none. */
  defaultDeadlineMs?: number;
  /** Attempts of idempotent calls, the first included. */
  attempts?: number;
}

export interface CallOptions {
  /** Per attempt; retried calls may take attempts × deadlineMs plus backoff in all. */
  deadlineMs?: number;
}

export interface GetUsersResult {
  users: User[];
  missingIds: string[];
  unresolvedIds: string[];
}

export interface RenderBatchInput {
  templateKey?: string;
  /** An unsaved template body (previews). */
  template?: unknown;
  channel: string;
  locale?: string;
  recipients: User[];
  data?: Record<string, unknown>;
}

export interface RenderedMessage {
  recipientId: string;
  subject: string;
  text: string;
  html: string;
  /** Set when this recipient's message could not be rendered. */
  error?: string;
}

export const DEFAULT_DEADLINE_MS = 5000;
/** A million-user audience at ~100k users/s is ten seconds; a slow consumer may take minutes. */
export const DEFAULT_STREAM_DEADLINE_MS = 30 * 60_000;
export const DEFAULT_ATTEMPTS = 3;
/** Backoff between attempts: 100 ms, 200 ms, ... (± 50% jitter so a fleet of workers does not retry in step). */
const BACKOFF_BASE_MS = 100;
const BACKOFF_MAX_MS = 2000;

const RETRY_ON = new Set<grpc.status>([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]);

/**
 * Client keep-alive: ping after 30 s without traffic and give up on the connection if no answer
 * in 10 s, so a backend that vanished (host down, NAT dropped) is noticed before the next call's
 * deadline. Reconnect backoff starts low so a restarted backend is picked up within a second.
 */
export const CLIENT_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.max_receive_message_length": MAX_RECEIVE_BYTES,
  "grpc.max_send_message_length": MAX_SEND_BYTES,
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.initial_reconnect_backoff_ms": 200,
  "grpc.max_reconnect_backoff_ms": 5000,
  // HTTP/2 receive window (stream and connection). With the 64 KB default, the pinned Bun's HTTP/2
  // server stalls ~3 s when many concurrent responses exhaust the window (seen with Node and Bun
  // clients alike; bench/grpc.ts). 1 MB keeps 64 concurrent GetUsers of 100 users (~12 KB each)
  // clear of it, and still bounds what a Resolve stream can push ahead of a slow reader (~10
  // batches of 1000 users, on top of grpc-js' 16-message stream buffers on each side).
  "grpc-node.flow_control_window": 1024 * 1024,
};

/** NOTIFY_GRPC_URL → grpc-js target and whether to use TLS. */
export function parseGrpcUrl(url: string): { target: string; tls: boolean } {
  const m = /^([a-z][a-z0-9+.-]*):\/\/(.+?)\/?$/i.exec(url);
  if (!m) return { target: url, tls: false };
  const scheme = m[1]!.toLowerCase();
  if (scheme === "grpcs" || scheme === "https") return { target: m[2]!, tls: true };
  if (scheme === "grpc" || scheme === "http") return { target: m[2]!, tls: false };
  return { target: url, tls: false }; // dns:///, unix://, ... are grpc-js targets as they are
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function createGrpcClients(opts: GrpcClientsOptions) {
  const { target, tls } = parseGrpcUrl(opts.url);
  const creds = tls ? grpc.credentials.createSsl(opts.tlsCa ?? null) : grpc.credentials.createInsecure();
  const channel = new grpc.Channel(target, creds, CLIENT_CHANNEL_OPTIONS);
  const defs = services();
  // One channel (one HTTP/2 connection) under every service client.
  const make = (Ctor: grpc.ServiceClientConstructor) => new Ctor(target, creds, { channelOverride: channel }) as unknown as Record<string, Function>;
  const raw = {
    users: make(defs.UserDirectory),
    audience: make(defs.Audience),
    renderer: make(defs.Renderer),
    context: make(defs.Context),
    health: make(defs.Health),
  };
  const log = opts.log.child({ component: "grpc-client" });
  const attempts = opts.attempts ?? DEFAULT_ATTEMPTS;
  const defaultDeadline = opts.defaultDeadlineMs ?? DEFAULT_DEADLINE_MS;

  function metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (opts.token) md.set("authorization", `Bearer ${opts.token}`);
    return md;
  }

  function callOnce<Res>(client: Record<string, Function>, method: string, req: unknown, deadlineMs: number): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      client[method]!.call(client, req, metadata(), { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, res: Res) =>
        err ? reject(err) : resolve(res),
      );
    });
  }

  /** A unary call; `idempotent` ones are retried with backoff on UNAVAILABLE and DEADLINE_EXCEEDED. */
  async function call<Res>(service: keyof typeof raw, method: string, req: unknown, o: CallOptions | undefined, idempotent: boolean): Promise<Res> {
    const name = `${service}.${method}`;
    const deadlineMs = o?.deadlineMs ?? defaultDeadline;
    const tries = idempotent ? attempts : 1;
    for (let attempt = 1; ; attempt++) {
      try {
        return await callOnce<Res>(raw[service], method, req, deadlineMs);
      } catch (err) {
        const e = fromGrpcError(name, err);
        if (attempt >= tries || !RETRY_ON.has(e.grpcCode)) throw e;
        const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1)) * (0.5 + Math.random());
        log.debug("grpc call retry", { method: name, attempt, code: e.grpcStatusName, backoff_ms: Math.round(backoff) });
        await sleep(backoff);
      }
    }
  }

  return {
    users: {
      /** Batch lookup (at most 10,000 ids per call). */
      async getUsers(ids: string[], o?: CallOptions): Promise<GetUsersResult> {
        const res = await call<GetUsersResponse>("users", "GetUsers", { ids }, o, true);
        return { users: res.users.map(userFromWire), missingIds: res.missing_ids, unresolvedIds: res.unresolved_ids ?? [] };
      },
    },
    audience: {
      /**
       * The audience's users in batches. Pull-driven: the next batch is read from the connection
       * only when the loop asks for it, and HTTP/2 flow control carries that back to the server's
       * query. Rejects with a retryable GrpcCallError when the stream breaks or ends without its
       * final message; breaking out of the loop cancels the call.
       */
      resolve(audience: AudienceSpec, batchSize = 1000, o: CallOptions & { signal?: AbortSignal } = {}): AsyncIterable<User[]> {
        const req =
          "all" in audience ? { all: true } : "user_ids" in audience ? { user_ids: { ids: audience.user_ids } } : { where: { equals: audience.where } };
        const deadline = Date.now() + (o.deadlineMs ?? DEFAULT_STREAM_DEADLINE_MS);
        return {
          async *[Symbol.asyncIterator]() {
            const stream = raw.audience.Resolve!.call(raw.audience, { ...req, batch_size: batchSize }, metadata(), { deadline }) as grpc.ClientReadableStream<UserBatch>;
            const onAbort = () => stream.cancel();
            o.signal?.addEventListener("abort", onAbort, { once: true });
            let complete = false;
            try {
              for await (const batch of stream as AsyncIterable<UserBatch>) {
                if (batch.done) {
                  complete = true;
                  continue;
                }
                yield batch.users.map(userFromWire);
              }
            } catch (err) {
              throw fromGrpcError("Audience.Resolve", err);
            } finally {
              o.signal?.removeEventListener("abort", onAbort);
              if (!complete) stream.cancel();
            }
            if (!complete) throw new GrpcCallError("Audience.Resolve", grpc.status.UNAVAILABLE, "stream ended before its final batch");
          },
        };
      },
    },
    renderer: {
      async renderBatch(input: RenderBatchInput, o?: CallOptions): Promise<RenderedMessage[]> {
        const req = {
          ...(input.templateKey !== undefined ? { template_key: input.templateKey } : { template_json: JSON.stringify(input.template ?? null) }),
          channel: input.channel,
          locale: input.locale ?? "",
          recipients: input.recipients.map(userToWire),
          data_json: JSON.stringify(input.data ?? {}),
        };
        // Rendering has no side effects: safe to retry.
        const res = await call<RenderBatchResponse>("renderer", "RenderBatch", req, o, true);
        return res.messages.map((m) => ({ recipientId: m.recipient_id, subject: m.subject, text: m.text, html: m.html, ...(m.error ? { error: m.error } : {}) }));
      },
    },
    context: {
      /** The event data with one key per source; rejects (retryable UNAVAILABLE) if any source failed. */
      async enrich(event: string, data: Record<string, unknown>, sources: DataSource[], o?: CallOptions): Promise<Record<string, unknown>> {
        const req = {
          event,
          data_json: JSON.stringify(data),
          sources: sources.map((s) => ({ name: s.name, url_template: s.url_template, timeout_ms: s.timeout_ms ?? 0, ttl_ms: s.ttl_ms ?? 0 })),
        };
        const res = await call<{ data_json: string }>("context", "Enrich", req, o, true);
        return JSON.parse(res.data_json) as Record<string, unknown>;
      },
    },
    health: {
      /** "" asks about the backend as a whole. */
      async check(service = "", o?: CallOptions): Promise<ServingStatus> {
        const res = await call<HealthCheckResponse>("health", "Check", { service }, o, true);
        return res.status;
      },
    },
    close(): void {
      for (const c of Object.values(raw)) (c as unknown as grpc.Client).close();
      channel.close();
    },
  };
}

export type GrpcClients = ReturnType<typeof createGrpcClients>;

/** Ids per GetUsers call from createRemoteUserDirectory: far below the server's 10,000 cap. */
const REMOTE_CHUNK = 1000;

/**
 * The user directory as the worker sees it when NOTIFY_GRPC_URL is set: same shape as
 * createUserRepo(sql).getMany. Fails safe: an unreachable backend (or an upstream that could not
 * say whether some ids exist) throws a retryable GrpcCallError, so the message is retried later,
 * never sent without its recipient data and never treated as "user missing".
 */
export function createRemoteUserDirectory(clients: Pick<GrpcClients, "users">, o: CallOptions = {}) {
  return {
    async getMany(ids: string[]): Promise<Map<string, User>> {
      const out = new Map<string, User>();
      const unique = [...new Set(ids)];
      for (let i = 0; i < unique.length; i += REMOTE_CHUNK) {
        const res = await clients.users.getUsers(unique.slice(i, i + REMOTE_CHUNK), o);
        if (res.unresolvedIds.length) {
          throw new GrpcCallError(
            "UserDirectory.GetUsers",
            grpc.status.UNAVAILABLE,
            `the users upstream could not resolve ${res.unresolvedIds.length} id(s) (e.g. ${res.unresolvedIds[0]}); retry later`,
          );
        }
        for (const u of res.users) out.set(u.id, u);
      }
      return out;
    },
  };
}
