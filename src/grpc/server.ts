/**
 * The gRPC backend (SPEC 3.6): UserDirectory, Audience, Renderer, Context and grpc.health.v1 on
 * @grpc/grpc-js, under Bun. The lead's `--role=grpc-backend` calls startGrpcServer and registers
 * its stop() with the lifecycle.
 */
import * as grpc from "@grpc/grpc-js";
import { readFileSync } from "node:fs";
import type { Config } from "../config.ts";
import { AppError } from "../runtime/errors.ts";
import type { Logger } from "../runtime/log.ts";
import type { Sql } from "../store/db.ts";
import { createAudienceService } from "./audience-service.ts";
import { parseJsonObject } from "./convert.ts";
import { createEnricher } from "./enrich.ts";
import { plainFetchJson, type FetchJson } from "./fetch-json.ts";
import { serverStream, unary, type HandlerDeps } from "./handler.ts";
import { createHealth } from "./health.ts";
import { grpcMetrics } from "./metrics.ts";
import { SERVICE_NAMES, services, type EnrichRequest, type EnrichResponse, type GetUsersResponse } from "./proto.ts";
import { createRendererService, sqlTemplateLoader, type RenderFn, type TemplateLoader } from "./render.ts";
import { createUsersUpstream } from "./users-upstream.ts";
import { createUsersService, EncodedGetUsers, type SerializeGetUsers } from "./users-service.ts";

/** Entries live at most this long even if PostgreSQL never announced a change to them. */
export const DEFAULT_USER_CACHE_TTL_MS = 60_000;
/** ≈ 0.4 KB each: about 100 MB when full. */
export const DEFAULT_USER_CACHE_MAX = 250_000;

/**
 * Message size limits. Receive: a Resolve with an explicit list of a million ids is ~15 MB.
 * Send: the largest answer is a GetUsers of 10k users or a RenderBatch of 10k messages.
 */
export const MAX_RECEIVE_BYTES = 32 * 1024 * 1024;
export const MAX_SEND_BYTES = 32 * 1024 * 1024;

/**
 * Server keep-alive: ping idle connections every 30 s and drop them if no answer in 10 s, so a
 * worker that vanished behind a NAT does not hold a connection (and its streams) forever.
 */
export const SERVER_CHANNEL_OPTIONS: grpc.ServerOptions = {
  "grpc.max_receive_message_length": MAX_RECEIVE_BYTES,
  "grpc.max_send_message_length": MAX_SEND_BYTES,
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.keepalive_permit_without_calls": 1,
};

export interface GrpcServerOptions {
  config: Config;
  log: Logger;
  sql: Sql;
  /** Defaults to config.grpcPort; 0 picks a free port. */
  port?: number;
  /** Defaults to 0.0.0.0. */
  host?: string;
  /** Defaults to config.grpcToken (NOTIFY_GRPC_TOKEN). */
  token?: string;
  /** Template rendering (src/templates renderMessage). Without it RenderBatch answers UNIMPLEMENTED. */
  render?: RenderFn;
  /** Where RenderBatch finds a template_key; defaults to the templates table. */
  loadTemplate?: TemplateLoader;
  /**
   * Outbound GET for Context.Enrich and the users upstream. Defaults to plain fetch with a timeout;
   * pass the SSRF-safe client from src/net/ once it exists.
   */
  fetchJson?: FetchJson;
  /**
   * The in-memory user directory cache (NOTIFY_GRPC_USER_CACHE_TTL_MS). Off in embedded mode, whose
   * single-process database is read in-process anyway.
   */
  userCache?: boolean;
  /** Called for every call refused for its token (the role records it in the audit log). */
  onAuthFailure?: (method: string, reason: string) => void;
}

export interface GrpcServer {
  port: number;
  /** Health NOT_SERVING, then a graceful shutdown; calls still running after graceMs are cut. */
  stop(graceMs?: number): Promise<void>;
  /** Counters for tests and logs (the same figures go to /metrics). */
  stats: { audienceQueries: number; audienceActive: number; upstream?: { requests: number; failures: number; staleServed: number }; enrich: { fetches: number; cacheHits: number; failures: number } };
  health: ReturnType<typeof createHealth>;
  /** The user cache: entries held, and whether it is in use (PostgreSQL's change announcements proven to arrive). */
  userCache(): { entries: number; live: boolean };
}

function credentials(config: Config, log: Logger): grpc.ServerCredentials {
  const certPath = config.env.NOTIFY_GRPC_TLS_CERT;
  const keyPath = config.env.NOTIFY_GRPC_TLS_KEY;
  if (!certPath && !keyPath) return grpc.ServerCredentials.createInsecure();
  if (!certPath || !keyPath) throw new AppError("BAD_REQUEST", "NOTIFY_GRPC_TLS_CERT and NOTIFY_GRPC_TLS_KEY must be set together");
  // Operator-provided files, not project files: reading them at run time is compile-safe.
  const cert = readFileSync(certPath);
  const key = readFileSync(keyPath);
  log.info("grpc TLS enabled", { cert: certPath });
  return grpc.ServerCredentials.createSsl(null, [{ cert_chain: cert, private_key: key }], false);
}

export async function startGrpcServer(opts: GrpcServerOptions): Promise<GrpcServer> {
  const { config, sql } = opts;
  const log = opts.log.child({ component: "grpc" });
  const token = opts.token ?? config.grpcToken;
  if (!token) log.warn("NOTIFY_GRPC_TOKEN is not set: the gRPC backend accepts unauthenticated calls");
  const deps: HandlerDeps = { log, token, onAuthFailure: opts.onAuthFailure };
  const fetchJson = opts.fetchJson ?? plainFetchJson;

  const stats: GrpcServer["stats"] = { audienceQueries: 0, audienceActive: 0, enrich: { fetches: 0, cacheHits: 0, failures: 0 } };
  const upstreamUrl = config.env.NOTIFY_USERS_UPSTREAM_URL;
  const upstream = upstreamUrl
    ? createUsersUpstream({ url: upstreamUrl, fetchJson, log, onFailure: () => grpcMetrics.usersUpstreamFailures.inc() })
    : undefined;
  if (upstream) stats.upstream = upstream.stats;
  const enricher = createEnricher({ fetchJson, baseUrl: config.env.NOTIFY_ENRICH_BASE_URL, log });
  stats.enrich = enricher.stats;

  const cacheTtl = opts.userCache === false ? 0 : Number(config.env.NOTIFY_GRPC_USER_CACHE_TTL_MS ?? DEFAULT_USER_CACHE_TTL_MS);
  if (!Number.isInteger(cacheTtl) || cacheTtl < 0) throw new AppError("BAD_REQUEST", "NOTIFY_GRPC_USER_CACHE_TTL_MS must be a whole number of milliseconds");
  const cacheMax = Number(config.env.NOTIFY_GRPC_USER_CACHE_MAX ?? DEFAULT_USER_CACHE_MAX);
  if (!Number.isInteger(cacheMax) || cacheMax < 1) throw new AppError("BAD_REQUEST", "NOTIFY_GRPC_USER_CACHE_MAX must be a whole number of at least 1");
  const defs = services();
  // GetUsers answers with pre-encoded bytes (users-service.ts); every other answer, and any plain
  // object, goes through the proto's own encoder.
  const userDirectory = defs.UserDirectory.service;
  const serializeGetUsers = userDirectory.GetUsers!.responseSerialize as SerializeGetUsers;
  const userDirectoryWire: grpc.ServiceDefinition = {
    ...userDirectory,
    GetUsers: { ...userDirectory.GetUsers!, responseSerialize: (r: unknown) => (r instanceof EncodedGetUsers ? r.toBuffer() : serializeGetUsers(r as GetUsersResponse)) },
  };
  const users = createUsersService({ sql, upstream, serialize: serializeGetUsers, cacheTtlMs: cacheTtl, cacheMaxEntries: cacheMax, log });
  const audience = createAudienceService({
    sql,
    stats,
    onQuery: () => {
      stats.audienceQueries++;
      grpcMetrics.audiencePages.inc();
    },
  });
  const renderer = createRendererService({ render: opts.render, loadTemplate: opts.loadTemplate ?? sqlTemplateLoader(sql) });
  const health = createHealth({
    services: SERVICE_NAMES,
    log,
    probe: async () => {
      await sql`SELECT 1`;
      return true;
    },
  });

  const server = new grpc.Server(SERVER_CHANNEL_OPTIONS);
  server.addService(userDirectoryWire, {
    GetUsers: unary("UserDirectory.GetUsers", deps, users.getUsers),
  });
  server.addService(defs.Audience.service, {
    Resolve: serverStream("Audience.Resolve", deps, audience.resolve),
  });
  server.addService(defs.Renderer.service, {
    RenderBatch: unary("Renderer.RenderBatch", deps, renderer.renderBatch),
  });
  server.addService(defs.Context.service, {
    Enrich: unary("Context.Enrich", deps, async (req: EnrichRequest, signal): Promise<EnrichResponse> => {
      const data = parseJsonObject(req.data_json, "data_json");
      const out = await enricher.enrich(req.event, data, req.sources, signal);
      return { data_json: JSON.stringify(out) };
    }),
  });
  server.addService(defs.Health.service, health.implementation);

  const host = opts.host ?? "0.0.0.0";
  const wanted = opts.port ?? config.grpcPort;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host.includes(":") ? `[${host}]` : host}:${wanted}`, credentials(config, log), (err, p) => (err ? reject(err) : resolve(p))),
  );
  log.info("grpc backend listening", { host, port, tls: !!config.env.NOTIFY_GRPC_TLS_CERT, upstream: !!upstream, user_cache_ttl_ms: cacheTtl });

  let stopped: Promise<void> | undefined;
  return {
    port,
    stats,
    health,
    userCache: users.cacheStats,
    stop(graceMs = 5000) {
      stopped ??= new Promise<void>((resolve) => {
        health.shutdown();
        void users.stop();
        const timer = setTimeout(() => {
          log.warn("grpc graceful shutdown timed out; cancelling calls in flight");
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return stopped;
    },
  };
}
