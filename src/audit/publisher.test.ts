import { describe, expect, test } from "bun:test";
import { createLogger } from "../runtime/log.ts";
import { waitFor } from "../../test/support/services.ts";
import type { AuditRecord } from "./record.ts";
import { createAuditPublisher } from "./publisher.ts";
import { createMemoryQueue } from "./testing.ts";

const log = createLogger("silent");
const input = (i: number) => ({
  actor: { type: "api_key" as const, id: "k1" },
  action: "delivery.sent",
  target: { type: "delivery", id: `d${i}` },
  outcome: "success" as const,
  details: { i, email: "ann@example.com", token: "secret-token" },
});

describe("audit publisher", () => {
  test("fills id and time, redacts, and publishes in batches keyed by action", async () => {
    const queue = createMemoryQueue();
    const pub = createAuditPublisher({ pack: 1, queue, log, role: "worker", batchSize: 100, flushMs: 5 });
    const ids = Array.from({ length: 250 }, (_, i) => pub.record(input(i)));
    expect(ids.every((id) => typeof id === "string" && /^[0-9a-f-]{36}$/.test(id))).toBe(true);
    await waitFor(() => queue.ready.length === 250, { what: "250 published" });
    const first = queue.ready[0]!;
    const body = first.body as AuditRecord;
    expect(first.routingKey).toBe("delivery.sent");
    expect(first.messageId).toBe(body.id);
    expect(body.id).toBe(ids[0]!);
    expect(Date.parse(body.time)).toBeGreaterThan(Date.now() - 60_000);
    expect(body.details).toEqual({ i: 0, email: "[pii]", role: "worker" });
    expect(queue.ready.map((m) => (m.body as AuditRecord).details.i)).toEqual(Array.from({ length: 250 }, (_, i) => i));
    expect(pub.stats()).toMatchObject({ published: 250, dropped: 0, buffered: 0 });
    await pub.stop();
  });

  test("includePii keeps contact data; secrets still go", async () => {
    const queue = createMemoryQueue();
    const pub = createAuditPublisher({ pack: 1, queue, log, role: "gateway", includePii: true, flushMs: 1 });
    pub.record(input(1));
    await pub.flush();
    expect((queue.ready[0]!.body as AuditRecord).details).toEqual({ i: 1, email: "ann@example.com", role: "gateway" });
  });

  test("never throws and never blocks; a broker outage is retried, overflow is dropped and counted", async () => {
    const queue = createMemoryQueue();
    queue.failPublish = new Error("broker down");
    const pub = createAuditPublisher({ pack: 1, queue, log, role: "worker", maxBuffer: 100, batchSize: 10, flushMs: 1 });
    const started = performance.now();
    for (let i = 0; i < 150; i++) pub.record(input(i));
    expect(performance.now() - started).toBeLessThan(200);
    // Garbage in: no throw, counted as dropped.
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => pub.record({ ...input(0), time: "not a time" })).not.toThrow();
    expect(() => pub.record({ ...input(0), details: cyclic })).not.toThrow();
    await waitFor(() => pub.stats().publishFailures >= 2, { what: "retries" });
    expect(pub.stats()).toMatchObject({ buffered: 100, dropped: 52, published: 0 });
    queue.failPublish = undefined;
    await waitFor(() => queue.ready.length === 100, { what: "buffer published after the outage" });
    expect(queue.ready.map((m) => (m.body as AuditRecord).details.i)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    await pub.stop();
  });

  test("stop flushes what is buffered, within its deadline", async () => {
    const queue = createMemoryQueue();
    const pub = createAuditPublisher({ pack: 1, queue, log, role: "worker", flushMs: 60_000 });
    for (let i = 0; i < 10; i++) pub.record(input(i));
    expect(queue.ready.length).toBe(0);
    await pub.stop(1_000);
    expect(queue.ready.length).toBe(10);
    expect(pub.record(input(11))).toBeUndefined();

    const down = createMemoryQueue();
    down.failPublish = new Error("broker down");
    const stuck = createAuditPublisher({ pack: 1, queue: down, log, role: "worker", flushMs: 60_000 });
    stuck.record(input(1));
    const t = performance.now();
    await stuck.stop(300);
    expect(performance.now() - t).toBeLessThan(1_500);
    expect(stuck.stats().buffered).toBe(1);
  });
});
