/** Metrics of the realtime gateway (WebSocket, fan-out), in the process registry. */
import client from "prom-client";
import { registry } from "../runtime/metrics.ts";

export const realtimeMetrics = {
  sockets: new client.Gauge({ name: "notify_ws_connections", help: "Open WebSocket connections on this gateway.", labelNames: ["protocol"], registers: [registry] }),
  refused: new client.Counter({ name: "notify_ws_refused_total", help: "WebSocket upgrades refused, by error code.", labelNames: ["code"], registers: [registry] }),
  closed: new client.Counter({ name: "notify_ws_closed_total", help: "WebSocket connections closed, by close code.", labelNames: ["code"], registers: [registry] }),
  signals: new client.Counter({ name: "notify_realtime_signals_total", help: "Realtime signals taken from the broker.", labelNames: ["type"], registers: [registry] }),
  dropped: new client.Counter({ name: "notify_ws_dropped_frames_total", help: "Frames dropped because a socket was over its backpressure limit or closed.", registers: [registry] }),
};
