/**
 * Several capabilities plug into the worker (preferences, audit, realtime, enrichment); this
 * merges their hooks so roles/registry.ts can list them side by side.
 */
import type { Hooks, Screening } from "../services/dispatch.ts";

/** screen: the first skip wins, the latest deferral wins, meta merges; the others run in order. */
export function mergeHooks(list: Hooks[]): Hooks {
  const screens = list.flatMap((h) => (h.screen ? [h.screen] : []));
  const finals = list.flatMap((h) => (h.onDeliveryFinal ? [h.onDeliveryFinal] : []));
  const enrichers = list.flatMap((h) => (h.enrich ? [h.enrich] : []));
  const out: Hooks = {};
  if (screens.length) {
    out.screen = async (user, channel, event) => {
      let merged: Screening | undefined;
      for (const screen of screens) {
        const r = await screen(user, channel, event);
        if (!r) continue;
        if (r.skip) return r;
        merged = {
          deferUntil: r.deferUntil && (!merged?.deferUntil || r.deferUntil > merged.deferUntil) ? r.deferUntil : merged?.deferUntil,
          meta: r.meta || merged?.meta ? { ...merged?.meta, ...r.meta } : undefined,
        };
      }
      return merged;
    };
  }
  if (finals.length) out.onDeliveryFinal = (d) => finals.forEach((f) => f(d));
  if (enrichers.length) out.enrich = async (event) => Object.assign({}, ...(await Promise.all(enrichers.map((e) => e(event)))));
  return out;
}
