/**
 * gRPC backend metrics, on prom-client's default registry (the process's one metrics registry).
 * Get-or-create, so a second server in one process (tests, `--role=all`) does not register twice.
 */
import { Counter, Histogram, register } from "prom-client";

function counter(name: string, help: string, labelNames: string[] = []): Counter<string> {
  return (register.getSingleMetric(name) as Counter<string> | undefined) ?? new Counter({ name, help, labelNames });
}

export const grpcMetrics = {
  calls: counter("notify_grpc_calls_total", "gRPC calls served, by method and status code", ["method", "code"]),
  duration:
    (register.getSingleMetric("notify_grpc_call_duration_seconds") as Histogram<string> | undefined) ??
    new Histogram({
      name: "notify_grpc_call_duration_seconds",
      help: "gRPC unary call duration",
      labelNames: ["method"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 5],
    }),
  audiencePages: counter("notify_grpc_audience_pages_total", "Database pages queried by Audience.Resolve"),
  usersUpstreamFailures: counter("notify_grpc_users_upstream_failures_total", "Users upstream lookups that failed or timed out (served cached/local data)"),
  enrichFetches: counter("notify_grpc_enrich_fetches_total", "Context.Enrich source fetches, by outcome", ["outcome"]),
};
