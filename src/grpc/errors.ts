/**
 * The gRPC edge's one error mapping (STYLE 4): AppError codes → gRPC status on the server, gRPC
 * status → GrpcCallError on the client, which says whether trying again later can help.
 */
import * as grpc from "@grpc/grpc-js";
import { AppError } from "../runtime/errors.ts";
import type { Logger } from "../runtime/log.ts";

const { status: S } = grpc;

const APP_TO_GRPC: Record<string, grpc.status> = {
  BAD_REQUEST: S.INVALID_ARGUMENT,
  VALIDATION_FAILED: S.INVALID_ARGUMENT,
  MALFORMED_JSON: S.INVALID_ARGUMENT,
  UNPROCESSABLE: S.INVALID_ARGUMENT,
  UNAUTHENTICATED: S.UNAUTHENTICATED,
  FORBIDDEN: S.PERMISSION_DENIED,
  NOT_FOUND: S.NOT_FOUND,
  UNKNOWN_TEMPLATE: S.NOT_FOUND,
  PAYLOAD_TOO_LARGE: S.RESOURCE_EXHAUSTED,
  RATE_LIMITED: S.RESOURCE_EXHAUSTED,
  UNAVAILABLE: S.UNAVAILABLE,
  DEADLINE_EXCEEDED: S.DEADLINE_EXCEEDED,
  CANCELLED: S.CANCELLED,
  UNIMPLEMENTED: S.UNIMPLEMENTED,
};

/** PostgreSQL/driver errors that mean "the database is not there right now", not "your request is bad". */
function isStoreOutage(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  if (typeof code !== "string") return false;
  return (
    ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "CONNECTION_CLOSED", "CONNECTION_ENDED", "CONNECTION_DESTROYED", "CONNECT_TIMEOUT"].includes(code) ||
    code.startsWith("08") || // connection exception
    code === "57P01" || code === "57P02" || code === "57P03" || // admin shutdown, crash shutdown, cannot connect now
    code === "53300" // too many connections
  );
}

/** Maps anything a handler throws to a grpc-js service error. Unknown errors are logged with their stack. */
export function toServiceError(err: unknown, log: Logger, method: string): Partial<grpc.StatusObject> & { code: grpc.status; details: string } {
  if (err instanceof AppError) {
    const code = APP_TO_GRPC[err.code] ?? S.INTERNAL;
    if (code === S.INTERNAL) log.error("grpc handler failed", { method, err });
    // "CODE: message [path]": the stable code first, so a client log line can be grepped by it.
    const paths = err.details.map((d) => d.path).join(", ");
    return { code, details: `${err.code}: ${err.message}${paths ? ` [${paths}]` : ""}` };
  }
  if (isStoreOutage(err)) {
    log.warn("grpc handler: store unavailable", { method, err: (err as Error).message });
    return { code: S.UNAVAILABLE, details: "UNAVAILABLE: the user store is unavailable, retry later" };
  }
  log.error("grpc handler failed", { method, err });
  return { code: S.INTERNAL, details: "INTERNAL: internal error" };
}

/** Status codes after which the same call may succeed later (the worker retries the message). */
export const RETRYABLE = new Set<grpc.status>([S.UNAVAILABLE, S.DEADLINE_EXCEEDED, S.RESOURCE_EXHAUSTED, S.ABORTED, S.CANCELLED, S.INTERNAL, S.UNKNOWN]);

/**
 * A failed gRPC call, as the client surfaces it. `code` is "UNAVAILABLE" for every retryable
 * outcome, so callers that switch on AppError codes treat them alike; `grpcCode` keeps the detail.
 */
export class GrpcCallError extends AppError {
  readonly grpcCode: grpc.status;
  readonly grpcStatusName: string;
  readonly retryable: boolean;
  readonly method: string;

  constructor(method: string, grpcCode: grpc.status, details: string) {
    const name = S[grpcCode] ?? String(grpcCode);
    const retryable = RETRYABLE.has(grpcCode);
    const appCode = retryable ? "UNAVAILABLE" : grpcCode === S.INVALID_ARGUMENT ? "VALIDATION_FAILED" : grpcCode === S.NOT_FOUND ? "NOT_FOUND" : grpcCode === S.UNAUTHENTICATED ? "UNAUTHENTICATED" : "INTERNAL";
    super(appCode, `gRPC ${method} failed: ${name}: ${details}${retryable ? " (retryable)" : ""}`);
    this.name = "GrpcCallError";
    this.grpcCode = grpcCode;
    this.grpcStatusName = name;
    this.retryable = retryable;
    this.method = method;
  }
}

/** Wraps whatever grpc-js rejected with. */
export function fromGrpcError(method: string, err: unknown): GrpcCallError {
  if (err instanceof GrpcCallError) return err;
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e?.code === "number") return new GrpcCallError(method, e.code, e.details ?? e.message ?? "");
  return new GrpcCallError(method, S.UNAVAILABLE, err instanceof Error ? err.message : String(err));
}
