/** The scheduler's metrics, on the process-wide registry. */
import client from "prom-client";
import { registry } from "../runtime/metrics.ts";

export const schedulerMetrics = {
  delayedReleased: new client.Counter({ name: "notify_scheduler_delayed_released_total", help: "Delayed notifications published when due.", registers: [registry] }),
  slots: new client.Counter({ name: "notify_scheduler_slots_total", help: "Campaign occurrence slots decided, by outcome (fired, missed).", labelNames: ["outcome"], registers: [registry] }),
  fanout: new client.Counter({ name: "notify_scheduler_fanout_recipients_total", help: "Recipients written to campaign ledgers.", registers: [registry] }),
  published: new client.Counter({ name: "notify_scheduler_fanout_published_total", help: "Delivery jobs published by campaign fan-out.", registers: [registry] }),
  runs: new client.Counter({ name: "notify_scheduler_runs_total", help: "Campaign runs finished, by status.", labelNames: ["status"], registers: [registry] }),
};
