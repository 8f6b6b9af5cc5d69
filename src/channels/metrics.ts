/** Channel metrics: circuit state per provider, so an open circuit is visible before anyone asks. */
import client from "prom-client";
import type { Logger } from "../runtime/log.ts";
import { registry } from "../runtime/metrics.ts";
import type { CircuitState } from "./circuit-breaker.ts";

const STATE_VALUE: Record<CircuitState, number> = { closed: 0, "half-open": 1, open: 2 };

const circuitState = new client.Gauge({
  name: "notify_channel_circuit_state",
  help: "Circuit breaker state per provider: 0 closed, 1 half-open, 2 open.",
  labelNames: ["channel", "provider"],
  registers: [registry],
});

export function observeCircuit(channel: string, provider: string, state: CircuitState, log?: Logger): void {
  circuitState.set({ channel, provider }, STATE_VALUE[state]);
  if (!log) return;
  if (state === "open") log.warn("provider circuit opened", { channel, provider });
  else log.info("provider circuit " + state, { channel, provider });
}
