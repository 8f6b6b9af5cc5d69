/**
 * What every RPC shares: the token check, an AbortSignal that fires when the call is cancelled or
 * its deadline passes (so handlers stop work nobody waits for), the error mapping and one log line
 * per call.
 */
import * as grpc from "@grpc/grpc-js";
import { createHash, timingSafeEqual } from "node:crypto";
import { AppError } from "../runtime/errors.ts";
import type { Logger } from "../runtime/log.ts";
import { toServiceError } from "./errors.ts";
import { grpcMetrics } from "./metrics.ts";

export interface HandlerDeps {
  log: Logger;
  /** Expected bearer token; undefined lets every call in (the server warned once at start). */
  token?: string;
  /** Told about every refused call (the audit log records authentication failures). */
  onAuthFailure?: (method: string, reason: string) => void;
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Throws UNAUTHENTICATED unless metadata carries `authorization: Bearer <token>`. Constant-time. */
export function makeAuthCheck(token: string | undefined, onFailure?: (reason: string) => void): (md: grpc.Metadata) => void {
  if (!token) return () => {};
  const want = digest(`Bearer ${token}`);
  const refuse = (reason: string): never => {
    onFailure?.(reason);
    throw new AppError("UNAUTHENTICATED", reason);
  };
  return function checkToken(md) {
    const got = md.get("authorization")[0];
    if (typeof got !== "string" || got === "") refuse("missing authorization metadata (Bearer token)");
    else if (!timingSafeEqual(digest(got), want)) refuse("invalid token");
  };
}

/** An AbortSignal tied to the call: aborted on cancel, deadline or client disconnect. */
interface CancellableCall {
  cancelled: boolean;
  on(event: "cancelled", fn: () => void): unknown;
  off(event: "cancelled", fn: () => void): unknown;
}

function callSignal(call: CancellableCall): { signal: AbortSignal; done(): void } {
  const controller = new AbortController();
  const onCancel = () => controller.abort(new AppError("CANCELLED", "call cancelled"));
  if (call.cancelled) onCancel();
  call.on("cancelled", onCancel);
  return { signal: controller.signal, done: () => call.off("cancelled", onCancel) };
}

/**
 * The life of one call, unary or streaming alike: token check, the work, one log line and the
 * metrics, then `ok` or `fail` — unless the client went away, when nobody is listening.
 */
function runCall<R>(
  method: string,
  log: Logger,
  checkToken: (md: grpc.Metadata) => void,
  call: CancellableCall & { metadata: grpc.Metadata },
  work: (signal: AbortSignal) => Promise<R>,
  ok: (res: R) => void,
  fail: (se: ReturnType<typeof toServiceError>) => void,
): void {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  const { signal, done } = callSignal(call);
  Promise.resolve()
    .then(() => {
      checkToken(call.metadata);
      return work(signal);
    })
    .then(
      (res) => {
        done();
        if (signal.aborted) return; // grpc-js already ended the call
        log.debug("grpc call", { method, outcome: "OK", duration_ms: ms() });
        grpcMetrics.calls.inc({ method, code: "OK" });
        grpcMetrics.duration.observe({ method }, (performance.now() - started) / 1000);
        ok(res);
      },
      (err: unknown) => {
        done();
        if (signal.aborted) {
          log.debug("grpc call", { method, outcome: "CANCELLED", duration_ms: ms() });
          return;
        }
        const se = toServiceError(err, log, method);
        log.info("grpc call", { method, outcome: grpc.status[se.code], error: se.details, duration_ms: ms() });
        grpcMetrics.calls.inc({ method, code: grpc.status[se.code] });
        fail(se);
      },
    );
}

export function unary<Req, Res>(method: string, deps: HandlerDeps, fn: (req: Req, signal: AbortSignal, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  const checkToken = makeAuthCheck(deps.token, (reason) => deps.onAuthFailure?.(method, reason));
  return function handleUnary(call, callback) {
    runCall(method, deps.log, checkToken, call, (signal) => fn(call.request, signal, call), (res) => callback(null, res), (se) => callback(se));
  };
}

export function serverStream<Req, Res>(
  method: string,
  deps: HandlerDeps,
  fn: (req: Req, signal: AbortSignal, call: grpc.ServerWritableStream<Req, Res>) => Promise<void>,
): grpc.handleServerStreamingCall<Req, Res> {
  const checkToken = makeAuthCheck(deps.token, (reason) => deps.onAuthFailure?.(method, reason));
  return function handleServerStream(call) {
    runCall(
      method,
      deps.log,
      checkToken,
      call,
      (signal) => fn(call.request, signal, call),
      () => call.end(),
      // grpc-js turns an 'error' on a server stream into the call's status (then ends it).
      (se) => void call.emit("error", Object.assign(new Error(se.details), se)),
    );
  };
}

/**
 * Writes one message and, when the transport's buffer is full (write() returned false), waits for
 * 'drain' before returning: the caller's next database page waits for the reader. Resolves early
 * if the call is cancelled.
 */
export function writeWithBackpressure<T>(call: grpc.ServerWritableStream<unknown, T>, msg: T, signal: AbortSignal): Promise<void> {
  if (call.write(msg)) return Promise.resolve();
  return new Promise((resolve) => {
    const finish = () => {
      call.off("drain", finish);
      signal.removeEventListener("abort", finish);
      resolve();
    };
    call.on("drain", finish);
    signal.addEventListener("abort", finish, { once: true });
  });
}
