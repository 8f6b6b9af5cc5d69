/**
 * grpc.health.v1.Health. "" (the server as a whole) is SERVING only while the database answers:
 * a backend that cannot reach PostgreSQL can do nothing useful, and load balancers that speak
 * gRPC health should send calls elsewhere. The probe runs at most once per `probeEveryMs`.
 */
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "../runtime/log.ts";
import { makeAuthCheck } from "./handler.ts";
import { toServiceError } from "./errors.ts";
import type { HealthCheckRequest, HealthCheckResponse, ServingStatus } from "./proto.ts";

export interface HealthOptions {
  services: readonly string[];
  /** True when dependencies answer; its result is cached for probeEveryMs. */
  probe?: () => Promise<boolean>;
  probeEveryMs?: number;
  log: Logger;
  /** Health is unauthenticated by default: orchestrators and LBs probe it without our token. */
  token?: string;
}

export function createHealth(opts: HealthOptions) {
  const statuses = new Map<string, ServingStatus>([["", "SERVING"], ...opts.services.map((s) => [s, "SERVING"] as [string, ServingStatus])]);
  const watchers = new Set<{ service: string; send(s: ServingStatus): void }>();
  const checkToken = makeAuthCheck(opts.token);
  const every = opts.probeEveryMs ?? 1000;
  let probed: { at: number; ok: boolean } | undefined;
  let probing: Promise<boolean> | undefined;

  async function probeOk(): Promise<boolean> {
    if (!opts.probe) return true;
    if (probed && Date.now() - probed.at < every) return probed.ok;
    probing ??= opts.probe().catch(() => false).then((ok) => {
      probed = { at: Date.now(), ok };
      probing = undefined;
      return ok;
    });
    return probing;
  }

  async function statusOf(service: string): Promise<ServingStatus | undefined> {
    const s = statuses.get(service);
    if (s !== "SERVING") return s;
    return (await probeOk()) ? "SERVING" : "NOT_SERVING";
  }

  function setStatus(service: string, status: ServingStatus): void {
    statuses.set(service, status);
    for (const w of watchers) if (w.service === service || service === "") w.send(statuses.get(w.service) ?? "SERVICE_UNKNOWN");
  }

  const implementation: grpc.UntypedServiceImplementation = {
    Check(call: grpc.ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>, callback: grpc.sendUnaryData<HealthCheckResponse>) {
      Promise.resolve()
        .then(async () => {
          checkToken(call.metadata);
          const s = await statusOf(call.request.service);
          if (!s) callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${call.request.service}` });
          else callback(null, { status: s });
        })
        .catch((err) => callback(toServiceError(err, opts.log, "Health.Check")));
    },
    Watch(call: grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>) {
      try {
        checkToken(call.metadata);
      } catch (err) {
        call.emit("error", Object.assign(new Error("unauthenticated"), toServiceError(err, opts.log, "Health.Watch")));
        return;
      }
      const service = call.request.service;
      let last: ServingStatus | undefined;
      const w = {
        service,
        send(s: ServingStatus) {
          if (s === last || call.cancelled) return;
          last = s;
          call.write({ status: s });
        },
      };
      watchers.add(w);
      call.on("cancelled", () => watchers.delete(w));
      // Probe changes are noticed on the next Check or status change; Watch reports set statuses.
      void statusOf(service).then((s) => w.send(s ?? "SERVICE_UNKNOWN"));
    },
  };

  return {
    implementation,
    setStatus,
    /** NOT_SERVING everywhere, then ends every Watch: called when the server stops. */
    shutdown() {
      for (const s of [...statuses.keys()]) setStatus(s, "NOT_SERVING");
      watchers.clear();
    },
  };
}
