/**
 * The one error type services throw. Each edge (HTTP, GraphQL, gRPC, AMQP) maps it once.
 * Codes are stable across releases; clients switch on `code`, never on `message`.
 */
export interface ErrorDetail {
  path: string;
  message: string;
}

export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  VALIDATION_FAILED: 422,
  MALFORMED_JSON: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNPROCESSABLE: 422,
  IDEMPOTENCY_MISMATCH: 422,
  UNKNOWN_TEMPLATE: 422,
  NO_RECIPIENTS: 422,
  NO_CHANNELS: 422,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS | (string & {});

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: ErrorDetail[];
  /** Seconds, for 429/503 answers. */
  readonly retryAfter?: number;

  constructor(code: ErrorCode, message: string, opts: { details?: ErrorDetail[]; status?: number; retryAfter?: number } = {}) {
    super(message);
    this.name = "AppError";
    this.code = code;
    this.status = opts.status ?? (ERROR_STATUS as Record<string, number>)[code] ?? 500;
    this.details = opts.details ?? [];
    this.retryAfter = opts.retryAfter;
  }

  toJSON() {
    return { error: { code: this.code, message: this.message, details: this.details } };
  }
}

export const notFound = (what: string, id: string) => new AppError("NOT_FOUND", `${what} ${id} not found`);
export const unprocessable = (path: string, message: string, code: ErrorCode = "UNPROCESSABLE") =>
  new AppError(code, message, { details: [{ path, message }] });
