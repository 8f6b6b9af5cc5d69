import * as v from "valibot";
import { Key, TimeZone } from "./common.ts";
import { CHANNELS } from "./event.ts";

const ClockTime = v.pipe(v.string(), v.regex(/^([01][0-9]|2[0-3]):[0-5][0-9]$/, "must be a time such as 22:00"));

export const OptOut = v.strictObject({
  /** A category, or "*" for every category. */
  category: v.union([v.literal("*"), Key], "must be a category key or *"),
  /** A channel, or "*" for every channel. */
  channel: v.picklist([...CHANNELS, "*"] as const, `must be one of ${CHANNELS.join(", ")} or *`),
});
export type OptOut = v.InferOutput<typeof OptOut>;

export const QuietHours = v.pipe(
  v.strictObject({
    start: ClockTime,
    end: ClockTime,
    /** Defaults to the user's time zone, then UTC. */
    timezone: v.optional(TimeZone),
  }),
  v.check((q) => q.start !== q.end, "start and end must differ"),
);
export type QuietHours = v.InferOutput<typeof QuietHours>;

/** PUT /api/v1/users/{id}/preferences (full replace). */
export const PreferencesInput = v.strictObject({
  opt_outs: v.optional(v.pipe(v.array(OptOut), v.maxLength(500)), []),
  quiet_hours: v.optional(v.nullable(QuietHours), null),
});
export type PreferencesInput = v.InferOutput<typeof PreferencesInput>;
