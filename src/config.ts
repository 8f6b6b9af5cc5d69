/**
 * The only reader of the environment. Flags override environment variables; every problem is
 * collected and reported at once, with secrets redacted, before anything starts.
 */
import { redactUrl, type LogLevel } from "./runtime/log.ts";

export const ROLES = ["gateway", "worker", "scheduler", "audit", "grpc-backend"] as const;
export type Role = (typeof ROLES)[number];

export interface Config {
  roles: Role[];
  databaseUrl?: string;
  amqpUrl?: string;
  mongoUrl?: string;
  smtpUrl?: string;
  mailFrom: string;
  httpPort: number;
  httpHost: string;
  grpcPort: number;
  grpcUrl?: string;
  grpcToken?: string;
  adminPort: number;
  adminKey?: string;
  jwtSecret?: string;
  jwksUrl?: string;
  jwtIssuer?: string;
  jwtAudience?: string;
  dataDir: string;
  logLevel: LogLevel;
  /** Public base URL of the gateway, used in links we put into messages (unsubscribe, deep links). */
  publicUrl: string;
  /** Key for one-click unsubscribe links (docs/channels.md); derived from the admin key / JWT secret when unset. */
  unsubscribeSecret?: string;
  /** Worker: deliveries sent at once per process; also the AMQP prefetch. */
  workerConcurrency: number;
  /** Memory (MB) the JS engine sizes its heap for; 0 = the engine's own sizing (src/runtime/heap-target.ts). */
  heapTargetMb: number;
  /** Attempts per delivery before it is dead-lettered. */
  maxAttempts: number;
  /** Per-send timeout. Far below RabbitMQ's consumer_timeout (30 min default) so a stuck peer never closes our channel. */
  sendTimeoutMs: number;
  shutdownTimeoutMs: number;
  /** Request body limit in bytes. */
  maxBodyBytes: number;
  /** Recipients per event. */
  maxRecipients: number;
  /** Requests per second per API key (token bucket); 0 disables. */
  rateLimitPerKey: number;
  /** Keep message bodies and contact data in audit details (off: they are redacted). */
  auditIncludePii: boolean;
  /** Audit records older than this are deleted by the audit role (0 keeps them forever). */
  auditRetentionDays: number;
  /** Apply pending migrations at start-up. Default: on when one process runs every role, off otherwise (use `notify migrate`). */
  autoMigrate: boolean;
  /** Channel provider settings, NOTIFY_<CHANNEL>_* variables, parsed by each provider's own schema. */
  env: Record<string, string | undefined>;
  /** The scheduler role (docs/campaigns.md). */
  scheduler: SchedulerConfig;
  /** WebSocket /ws limits (docs/realtime.md). */
  ws: WsConfig;
}

export interface WsConfig {
  /** Origins allowed to open /ws from a browser; empty = any (non-browser clients send none). */
  allowedOrigins: string[];
  maxPayloadBytes: number;
  maxConnectionsPerUser: number;
  messagesPerSecond: number;
  idleTimeoutS: number;
  backpressureBytes: number;
}

export interface SchedulerConfig {
  /** A missed occurrence younger than this still fires once when a scheduler comes back; older ones are recorded as missed. */
  catchupS: number;
  /** How often each replica looks for due work. */
  tickMs: number;
  /** Recipients per fan-out batch (ledger insert + publish). */
  batchSize: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

export type Flags = Record<string, string | true>;

const LOG_LEVELS: LogLevel[] = ["debug", "info", "warn", "error", "silent"];

/** Flag names map to env names: --http-port → NOTIFY_HTTP_PORT. */
export function flagToEnv(flag: string): string {
  return "NOTIFY_" + flag.replace(/-/g, "_").toUpperCase();
}

export function loadConfig(env: Record<string, string | undefined> = process.env, flags: Flags = {}): Config {
  const merged: Record<string, string | undefined> = { ...env };
  for (const [k, v] of Object.entries(flags)) if (k !== "role") merged[flagToEnv(k)] = v === true ? "true" : v;
  const problems: string[] = [];
  const get = (name: string) => {
    const v = merged[name];
    return v === undefined || v === "" ? undefined : v;
  };
  const int = (name: string, def: number, min: number, max: number) => {
    const raw = get(name);
    if (raw === undefined) return def;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name}: expected an integer from ${min} to ${max}, got "${raw}"`);
      return def;
    }
    return n;
  };
  const bool = (name: string, def: boolean) => {
    const raw = get(name);
    if (raw === undefined) return def;
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    problems.push(`${name}: expected true or false, got "${raw}"`);
    return def;
  };
  const url = (name: string, protocols: string[], secret = true) => {
    const raw = get(name);
    if (raw === undefined) return undefined;
    try {
      const u = new URL(raw);
      if (!protocols.includes(u.protocol.replace(/:$/, ""))) {
        problems.push(`${name}: expected a ${protocols.join(" or ")} URL, got "${secret ? redactUrl(raw) : raw}"`);
      }
      return raw;
    } catch {
      problems.push(`${name}: not a valid URL`);
      return undefined;
    }
  };

  const roleRaw = (typeof flags.role === "string" ? flags.role : undefined) ?? get("NOTIFY_ROLE") ?? "all";
  const roles = parseRoles(roleRaw, problems);

  const logLevel = (get("NOTIFY_LOG_LEVEL") ?? "info") as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`NOTIFY_LOG_LEVEL: expected one of ${LOG_LEVELS.join(", ")}, got "${logLevel}"`);

  const adminKey = get("NOTIFY_ADMIN_KEY");
  if (adminKey !== undefined && adminKey.length < 16) problems.push("NOTIFY_ADMIN_KEY: must be at least 16 characters ([redacted])");
  const jwtSecret = get("NOTIFY_JWT_SECRET");
  if (jwtSecret !== undefined && jwtSecret.length < 32) problems.push("NOTIFY_JWT_SECRET: must be at least 32 characters for HS256 ([redacted])");

  const httpPort = int("NOTIFY_HTTP_PORT", 8080, 0, 65535);
  const config: Config = {
    roles,
    databaseUrl: url("NOTIFY_DATABASE_URL", ["postgres", "postgresql"]),
    amqpUrl: url("NOTIFY_AMQP_URL", ["amqp", "amqps"]),
    mongoUrl: url("NOTIFY_MONGO_URL", ["mongodb", "mongodb+srv"]),
    smtpUrl: url("NOTIFY_SMTP_URL", ["smtp", "smtps"]),
    mailFrom: get("NOTIFY_MAIL_FROM") ?? "notify@localhost",
    httpPort,
    httpHost: get("NOTIFY_HTTP_HOST") ?? "0.0.0.0",
    grpcPort: int("NOTIFY_GRPC_PORT", 50051, 0, 65535),
    grpcUrl: get("NOTIFY_GRPC_URL"),
    grpcToken: get("NOTIFY_GRPC_TOKEN"),
    adminPort: int("NOTIFY_ADMIN_PORT", 9090, 0, 65535),
    adminKey,
    jwtSecret,
    jwksUrl: url("NOTIFY_JWKS_URL", ["http", "https"], false),
    jwtIssuer: get("NOTIFY_JWT_ISSUER"),
    jwtAudience: get("NOTIFY_JWT_AUDIENCE"),
    dataDir: get("NOTIFY_DATA_DIR") ?? "./data",
    logLevel,
    publicUrl: get("NOTIFY_PUBLIC_URL") ?? `http://localhost:${httpPort}`,
    unsubscribeSecret: get("NOTIFY_UNSUBSCRIBE_SECRET"),
    workerConcurrency: int("NOTIFY_WORKER_CONCURRENCY", 32, 1, 1000),
    // The JS engine plans its heap for this much memory (src/runtime/heap-target.ts). Gateways and
    // workers of a cluster (the replicated roles) default to 128; the scheduler, audit and gRPC
    // roles work in bulk and keep the engine's own sizing (128 cost a 1M campaign 17 % of its
    // fan-out rate), as does the edge process.
    heapTargetMb: int("NOTIFY_HEAP_TARGET_MB", get("NOTIFY_DATABASE_URL") && roles.every((r) => r === "gateway" || r === "worker") ? 128 : 0, 0, 1_048_576),
    maxAttempts: int("NOTIFY_MAX_ATTEMPTS", 6, 1, 50),
    sendTimeoutMs: int("NOTIFY_SEND_TIMEOUT_MS", 30_000, 100, 600_000),
    shutdownTimeoutMs: int("NOTIFY_SHUTDOWN_TIMEOUT_MS", 20_000, 100, 600_000),
    maxBodyBytes: int("NOTIFY_MAX_BODY_BYTES", 1_048_576, 1024, 64 * 1_048_576),
    maxRecipients: int("NOTIFY_MAX_RECIPIENTS", 1000, 1, 100_000),
    rateLimitPerKey: int("NOTIFY_RATE_LIMIT_PER_KEY", 0, 0, 10_000_000),
    auditIncludePii: bool("NOTIFY_AUDIT_INCLUDE_PII", false),
    auditRetentionDays: int("NOTIFY_AUDIT_RETENTION_DAYS", 0, 0, 36_500),
    autoMigrate: bool("NOTIFY_AUTO_MIGRATE", roles.length === ROLES.length),
    env: merged,
    scheduler: {
      catchupS: int("NOTIFY_SCHEDULER_CATCHUP_S", 900, 0, 7 * 86_400),
      // Sub-second so a minute slot fires within a second of being due, cheap since the due query is indexed.
      tickMs: int("NOTIFY_SCHEDULER_TICK_MS", 500, 20, 60_000),
      // Large enough to amortise a round trip per batch; the audience stream caps pages at 5000.
      batchSize: int("NOTIFY_CAMPAIGN_BATCH_SIZE", 5000, 1, 5000),
    },
    ws: {
      allowedOrigins: (get("NOTIFY_WS_ALLOWED_ORIGINS") ?? "").split(",").map((o) => o.trim().replace(/\/$/, "")).filter(Boolean),
      // Client frames are small commands (subscribe, ping, read); 64 KiB leaves room for a GraphQL document.
      maxPayloadBytes: int("NOTIFY_WS_MAX_FRAME_BYTES", 65_536, 256, 16 * 1_048_576),
      maxConnectionsPerUser: int("NOTIFY_WS_MAX_CONNECTIONS_PER_USER", 10, 1, 10_000),
      messagesPerSecond: int("NOTIFY_WS_MESSAGES_PER_SECOND", 20, 1, 100_000),
      // Bun pings an idle socket and closes it when nothing comes back within this time.
      idleTimeoutS: int("NOTIFY_WS_IDLE_TIMEOUT_S", 60, 5, 960),
      // A client that stops reading is closed once this much is queued for it.
      backpressureBytes: int("NOTIFY_WS_BACKPRESSURE_BYTES", 1_048_576, 4096, 64 * 1_048_576),
    },
  };
  if (config.unsubscribeSecret !== undefined && config.unsubscribeSecret.length < 16) problems.push("NOTIFY_UNSUBSCRIBE_SECRET: must be at least 16 characters ([redacted])");
  if (/[\r\n]/.test(config.mailFrom)) problems.push("NOTIFY_MAIL_FROM: must not contain line breaks");
  if (problems.length) throw new ConfigError([...new Set(problems)]);
  return config;
}

export function parseRoles(raw: string, problems: string[]): Role[] {
  const parts = raw.split(",").map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0 || parts.includes("all")) return [...ROLES];
  const out: Role[] = [];
  for (const p of parts) {
    if ((ROLES as readonly string[]).includes(p)) out.push(p as Role);
    else problems.push(`role: unknown role "${p}" (expected all or ${ROLES.join(", ")})`);
  }
  return [...new Set(out)];
}

/** True when no external database/broker is configured: SPEC 6 embedded mode. */
export function isEmbedded(config: Config): boolean {
  return !config.databaseUrl || !config.amqpUrl;
}
