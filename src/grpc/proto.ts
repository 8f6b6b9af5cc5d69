/**
 * The notify.v1 and grpc.health.v1 protos, embedded in the binary as text and turned into a
 * grpc-js package definition in memory.
 *
 * Why not protoLoader.load(): it reads .proto files from disk at run time, and `bun build --compile`
 * cannot find them (SPEC 8). protobuf.parse + protoLoader.fromJSON touch no file.
 */
import * as protoLoader from "@grpc/proto-loader";
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import usersProto from "../../proto/notify/v1/users.proto" with { type: "text" };
import audienceProto from "../../proto/notify/v1/audience.proto" with { type: "text" };
import rendererProto from "../../proto/notify/v1/renderer.proto" with { type: "text" };
import contextProto from "../../proto/notify/v1/context.proto" with { type: "text" };
import healthProto from "../../proto/grpc/health/v1/health.proto" with { type: "text" };

/** Every embedded proto by its import path, in dependency order. */
export const PROTO_FILES: Record<string, string> = {
  "notify/v1/users.proto": usersProto,
  "notify/v1/audience.proto": audienceProto,
  "notify/v1/renderer.proto": rendererProto,
  "notify/v1/context.proto": contextProto,
  "grpc/health/v1/health.proto": healthProto,
};

/**
 * Loader options shared by server, client and the Node interop script: field names as written in
 * the proto (snake_case), 64-bit ints as strings, enums as names, defaults filled in, and the
 * name of the set oneof member exposed (e.g. `audience: "where"`).
 */
export const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

let cached: grpc.GrpcObject | undefined;

/** Parses the embedded protos once per process. */
export function loadProtos(): grpc.GrpcObject {
  if (cached) return cached;
  const root = new protobuf.Root();
  // One shared root: an `import` between our files resolves because the imported file was parsed
  // into the same root first, so no loader ever goes looking for it on disk.
  for (const text of Object.values(PROTO_FILES)) protobuf.parse(text, root, { keepCase: true });
  root.resolveAll();
  const definition = protoLoader.fromJSON(root.toJSON(), LOADER_OPTIONS);
  cached = grpc.loadPackageDefinition(definition);
  return cached;
}

type ServiceCtor = grpc.ServiceClientConstructor;

/** The service constructors (clients) and definitions (servers) by name. */
export function services() {
  const pkg = loadProtos() as unknown as {
    notify: { v1: Record<"UserDirectory" | "Audience" | "Renderer" | "Context", ServiceCtor> };
    grpc: { health: { v1: { Health: ServiceCtor } } };
  };
  return {
    UserDirectory: pkg.notify.v1.UserDirectory,
    Audience: pkg.notify.v1.Audience,
    Renderer: pkg.notify.v1.Renderer,
    Context: pkg.notify.v1.Context,
    Health: pkg.grpc.health.v1.Health,
  };
}

/** Fully qualified service names, as health checks and logs name them. */
export const SERVICE_NAMES = ["notify.v1.UserDirectory", "notify.v1.Audience", "notify.v1.Renderer", "notify.v1.Context"] as const;

// Wire shapes (LOADER_OPTIONS: keepCase, defaults). Hand-written: small, and they document the contract.

export interface UserMessage {
  id: string;
  email: string;
  phone: string;
  name: string;
  locale: string;
  timezone: string;
  telegram_chat_id: string;
  attributes_json: string;
}

export interface GetUsersRequest {
  ids: string[];
}
export interface GetUsersResponse {
  users: UserMessage[];
  missing_ids: string[];
  unresolved_ids: string[];
}

export interface ResolveRequest {
  all?: boolean;
  user_ids?: { ids: string[] } | null;
  where?: { equals: Record<string, string> } | null;
  /** Which oneof member is set (LOADER_OPTIONS.oneofs). */
  audience?: "all" | "user_ids" | "where";
  batch_size?: number;
}
export interface UserBatch {
  users: UserMessage[];
  done: boolean;
}

export interface RenderBatchRequest {
  template_key?: string;
  template_json?: string;
  template?: "template_key" | "template_json";
  channel: string;
  locale: string;
  recipients: UserMessage[];
  data_json: string;
}
export interface RenderedMessageWire {
  recipient_id: string;
  subject: string;
  text: string;
  html: string;
  error: string;
}
export interface RenderBatchResponse {
  messages: RenderedMessageWire[];
}

export interface DataSourceWire {
  name: string;
  url_template: string;
  timeout_ms: number;
  ttl_ms: number;
}
export interface EnrichRequest {
  event: string;
  data_json: string;
  sources: DataSourceWire[];
}
export interface EnrichResponse {
  data_json: string;
}

export type ServingStatus = "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";
export interface HealthCheckRequest {
  service: string;
}
export interface HealthCheckResponse {
  status: ServingStatus;
}
