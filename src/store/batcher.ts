/**
 * Group commit: callers submit one item each and get its own result, while the flush function
 * receives them in batches. A batch leaves as soon as a flush slot is free, so at low load an item
 * waits for nothing, and under load the items that arrive during a flush share the next one.
 */
export interface Batcher<T, R> {
  submit(item: T): Promise<R>;
  /** Waits until every submitted item has been flushed. */
  drain(): Promise<void>;
}

export function createBatcher<T, R>(
  flush: (items: T[]) => Promise<R[]>,
  opts: { maxBatch: number; maxInFlight: number },
): Batcher<T, R> {
  type Entry = { item: T; resolve: (r: R) => void; reject: (e: unknown) => void };
  let pending: Entry[] = [];
  let inFlight = 0;
  let scheduled = false;
  const idle: Array<() => void> = [];

  const pump = () => {
    scheduled = false;
    while (pending.length && inFlight < opts.maxInFlight) {
      const batch = pending.slice(0, opts.maxBatch);
      pending = pending.slice(batch.length);
      inFlight++;
      flush(batch.map((e) => e.item))
        .then(
          (results) => batch.forEach((e, i) => e.resolve(results[i]!)),
          (err) => batch.forEach((e) => e.reject(err)),
        )
        .finally(() => {
          inFlight--;
          if (pending.length) pump();
          else if (inFlight === 0) idle.splice(0).forEach((f) => f());
        });
    }
  };

  return {
    submit(item) {
      return new Promise<R>((resolve, reject) => {
        pending.push({ item, resolve, reject });
        // Let the requests of the same tick join one batch before flushing.
        if (!scheduled) {
          scheduled = true;
          queueMicrotask(pump);
        }
      });
    },
    drain() {
      if (pending.length === 0 && inFlight === 0) return Promise.resolve();
      return new Promise((r) => idle.push(r));
    },
  };
}
