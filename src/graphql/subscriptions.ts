/**
 * Subscription sources (graphql-ws over /ws). `inbox` listens to this gateway's hub, which takes
 * the realtime topic like every replica does. `notificationStatus` polls the notification while
 * subscribed: status changes are rare and short-lived, a poll per subscription is cheaper than a
 * broadcast of every delivery outcome to every gateway.
 */
import { AppError } from "../runtime/errors.ts";
import { TERMINAL_NOTIFICATION } from "../store/notifications.ts";
import { notificationView } from "../http/routes/events.ts";
import type { InboxItem } from "../store/inbox.ts";
import { needScope, needUser, type GqlContext } from "./context.ts";

/** Items a subscriber may have waiting; a client this far behind is ended with an error. */
const MAX_PENDING = 256;
export const STATUS_POLL_MS = 500;

function needSocket(ctx: GqlContext) {
  if (!ctx.hub) throw new AppError("BAD_REQUEST", "subscriptions run over WebSocket: /ws with subprotocol graphql-transport-ws");
  return ctx.hub;
}

function inboxStream(ctx: GqlContext): AsyncIterableIterator<InboxItem> {
  const user = needUser(ctx);
  const hub = needSocket(ctx);
  const queue: InboxItem[] = [];
  let wake: (() => void) | undefined;
  let overflow = false;
  let done = false;
  const stop = hub.listen(user.id, (s) => {
    if (queue.length >= MAX_PENDING) overflow = true;
    else queue.push(s.item);
    wake?.();
  });
  const finish = () => {
    done = true;
    stop();
    wake?.();
  };
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next(): Promise<IteratorResult<InboxItem>> {
      while (!done && queue.length === 0 && !overflow) await new Promise<void>((r) => (wake = r));
      wake = undefined;
      if (overflow) {
        finish();
        throw new AppError("SLOW_CONSUMER", "subscriber fell too far behind; resubscribe and reload the inbox", { status: 429 });
      }
      if (done) return { done: true, value: undefined };
      return { done: false, value: queue.shift()! };
    },
    async return(): Promise<IteratorResult<InboxItem>> {
      finish();
      return { done: true, value: undefined };
    },
  };
}

async function* statusStream(ctx: GqlContext, id: string, signal: { stopped: boolean }) {
  let last = "";
  while (!signal.stopped) {
    const n = await ctx.app.repos.notifications.get(id);
    if (!n) throw new AppError("NOT_FOUND", `notification ${id} not found`);
    const view = notificationView(n, await ctx.app.repos.deliveries.listByNotification(id));
    const key = JSON.stringify([view.status, view.deliveries.map((d) => [d.id, d.status, d.attempts])]);
    if (key !== last) {
      last = key;
      yield view;
    }
    if ((TERMINAL_NOTIFICATION as string[]).includes(view.status)) return;
    await Bun.sleep(STATUS_POLL_MS);
  }
}

export const Subscription = {
  inbox: {
    subscribe: (_p: unknown, _args: Record<string, unknown>, ctx: GqlContext) => inboxStream(ctx),
    resolve: (item: InboxItem) => item,
  },
  notificationStatus: {
    subscribe(_p: unknown, args: Record<string, unknown>, ctx: GqlContext) {
      needScope(ctx, "notifications:read");
      needSocket(ctx);
      const signal = { stopped: false };
      const gen = statusStream(ctx, String(args.id), signal);
      const ret = gen.return.bind(gen);
      // Stop polling as soon as the client completes, not at the next poll.
      gen.return = (v) => {
        signal.stopped = true;
        return ret(v);
      };
      return gen;
    },
    resolve: (view: unknown) => view,
  },
};
