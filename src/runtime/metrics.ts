/**
 * Prometheus metrics (prom-client). One registry per process: the one allowed singleton besides the
 * root logger. Names follow notify_<subsystem>_<name>_<unit>.
 */
import client from "prom-client";

export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry, prefix: "notify_" });

export const metrics = {
  eventsAccepted: new client.Counter({ name: "notify_events_accepted_total", help: "Events accepted durably (202).", labelNames: ["source"], registers: [registry] }),
  eventsRejected: new client.Counter({ name: "notify_events_rejected_total", help: "Events refused, by error code.", labelNames: ["code"], registers: [registry] }),
  acceptLatency: new client.Histogram({
    name: "notify_events_accept_duration_seconds",
    help: "Time from request to durable acceptance.",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  }),
  outboxPublished: new client.Counter({ name: "notify_outbox_published_total", help: "Outbox rows published to the broker.", labelNames: ["path"], registers: [registry] }),
  publishFailures: new client.Counter({ name: "notify_queue_publish_failures_total", help: "Publishes the broker did not confirm.", labelNames: ["topic"], registers: [registry] }),
  deliveries: new client.Counter({ name: "notify_deliveries_total", help: "Delivery outcomes by channel.", labelNames: ["channel", "outcome"], registers: [registry] }),
  sendLatency: new client.Histogram({
    name: "notify_delivery_send_duration_seconds",
    help: "Time a provider took to accept a message.",
    labelNames: ["channel"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  }),
  endToEnd: new client.Histogram({
    name: "notify_delivery_end_to_end_seconds",
    help: "Time from event acceptance to the provider accepting the message.",
    labelNames: ["channel"],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  }),
  httpRequests: new client.Counter({ name: "notify_http_requests_total", help: "HTTP requests by route and status.", labelNames: ["method", "route", "status"], registers: [registry] }),
  deadLettered: new client.Counter({ name: "notify_dead_letters_total", help: "Messages dead-lettered.", labelNames: ["queue"], registers: [registry] }),
};

export async function renderMetrics(): Promise<{ body: string; contentType: string }> {
  return { body: await registry.metrics(), contentType: registry.contentType };
}
