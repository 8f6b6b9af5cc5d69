/**
 * The scheduler role: fires delayed notifications and campaign occurrences, expands campaign
 * runs. Any number of replicas: every decision is a row in PostgreSQL (SKIP LOCKED for sharing
 * work, unique keys for deciding, leases for long fan-outs), never a lock held in a process.
 *
 * Two loops per replica: a tick (delayed sends, due occurrences, held deliveries, finished
 * runs) and a fan-out loop that leases one run at a time and expands it.
 */
import { hostname } from "node:os";
import type { App } from "../app.ts";
import { createGrpcClients } from "../grpc/client.ts";
import { delay } from "../runtime/lifecycle.ts";
import type { Hooks } from "../services/dispatch.ts";
import { streamAudience } from "../store/audience.ts";
import { createDelayedPublisher } from "../scheduler/delayed.ts";
import { createFanOut, type AudienceSource } from "../scheduler/fan-out.ts";
import { createOccurrences } from "../scheduler/occurrences.ts";

export interface SchedulerOptions {
  /** The worker's screening hook (preferences, quiet hours), applied at fan-out. */
  screen?: Hooks["screen"];
  /** Fan-out lease; a crashed replica's run is resumed by another after this. */
  leaseMs?: number;
}

/** Long enough that a slow batch never loses its lease, short enough that a crash costs little. */
const LEASE_MS = 30_000;

export async function startScheduler(app: App, opts: SchedulerOptions = {}): Promise<() => Promise<void>> {
  const log = app.log.child({ role: "scheduler" });
  const cfg = app.config.scheduler;
  const abort = new AbortController();
  const grpc = app.config.grpcUrl ? createGrpcClients({ url: app.config.grpcUrl, token: app.config.grpcToken, log }) : undefined;
  const audience: AudienceSource = grpc
    ? (spec, batch, signal) => grpc.audience.resolve(spec, batch, { signal })
    : (spec, batch, signal) => streamAudience(app.sql, spec, batch, { signal });

  const delayed = createDelayedPublisher({ sql: app.sql, queue: app.queue, notifications: app.repos.notifications, log });
  const occurrences = createOccurrences({ sql: app.sql, log, catchupS: cfg.catchupS });
  const fanOut = createFanOut({
    sql: app.sql,
    queue: app.queue,
    log,
    notifications: app.repos.notifications,
    templates: app.repos.templates,
    channels: app.channels,
    audience,
    screen: opts.screen,
    batchSize: cfg.batchSize,
    maxAttempts: app.config.maxAttempts,
    owner: `${hostname()}:${process.pid}:${Bun.randomUUIDv7().slice(-8)}`,
    leaseMs: opts.leaseMs ?? LEASE_MS,
  });

  const step = async (name: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (err) {
      if (!abort.signal.aborted) log.warn("scheduler step failed; retrying next tick", { step: name, err: String(err) });
    }
  };

  // Whether the fan-out loop may find a run to claim: set by each tick's probe, and at once when an
  // occurrence fires here. Starts true so a restarted replica resumes leased runs without waiting.
  let runsMaybe = true;
  const tick = (async () => {
    while (!abort.signal.aborted) {
      // One read says which steps have anything to do; an idle tick is that read alone (the steps
      // are ≈ 8 statements, which on an idle edge host were most of its CPU). A failed probe runs
      // every step, which then report their own errors.
      let due: Due = { delayed: true, campaigns: true, runs: true };
      await step("probe", async () => (due = await probe(app.sql)));
      runsMaybe ||= due.runs;
      if (due.delayed) await step("delayed", delayed.releaseDue);
      if (due.campaigns) {
        await step("occurrences", async () => {
          // On record: which occurrence fired (exactly once, by whichever replica) and what was missed.
          for (const d of await occurrences.fireDue()) {
            const target = { type: "campaign", id: d.campaign_id };
            const actor = { type: "system" as const, id: "scheduler" };
            if (d.fired) {
              runsMaybe = true;
              app.audit.record({ actor, action: "campaign.run_fired", target, outcome: "success", details: { slot: d.fired.key } });
            }
            if (d.missed) app.audit.record({ actor, action: "campaign.slots_missed", target, outcome: "failure", details: { missed: d.missed } });
          }
        });
      }
      if (due.runs) {
        await step("held", () => fanOut.releaseHeld());
        await step("complete", fanOut.completeRuns);
      }
      await delay(cfg.tickMs, abort.signal);
    }
  })();

  const runs = (async () => {
    while (!abort.signal.aborted) {
      if (!runsMaybe) {
        await delay(cfg.tickMs, abort.signal);
        continue;
      }
      let worked = false;
      await step("fan-out", async () => {
        const run = await fanOut.claim();
        if (!run) {
          runsMaybe = false; // until a probe or a fired occurrence says otherwise
          return;
        }
        worked = true;
        await fanOut.expand(run, abort.signal);
      });
      if (!worked) await delay(cfg.tickMs, abort.signal);
    }
  })();

  app.readiness.set("scheduler", async () => ({ ok: !abort.signal.aborted }));
  log.info("scheduler running", { tick_ms: cfg.tickMs, catchup_s: cfg.catchupS, batch_size: cfg.batchSize, audience: grpc ? "grpc" : "local" });
  return async () => {
    // The batch in hand commits (or not) and its lease is handed back, so another replica resumes at once.
    abort.abort();
    await Promise.allSettled([tick, runs]);
    grpc?.close();
  };
}

interface Due {
  delayed: boolean;
  campaigns: boolean;
  runs: boolean;
}

/**
 * What the tick's steps would find, in one statement. Each flag covers its steps' own conditions
 * (a superset is harmless: the step then finds nothing): delayed notifications now due; active
 * campaigns whose next slot is due; campaign runs pending or running (claim, held deliveries and
 * completion all start from those).
 */
async function probe(sql: App["sql"]): Promise<Due> {
  const [row] = await sql<Due[]>`
    SELECT EXISTS (SELECT 1 FROM notifications WHERE status = 'scheduled' AND send_at <= notify_clock()) AS delayed,
           EXISTS (SELECT 1 FROM campaigns WHERE status = 'active' AND next_at <= notify_clock() AND deleted_at IS NULL) AS campaigns,
           EXISTS (SELECT 1 FROM campaign_runs WHERE status IN ('pending', 'running')) AS runs`;
  return row!;
}
