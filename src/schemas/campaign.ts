/**
 * A campaign as managers send it (POST /api/v1/campaigns, PATCH with any subset).
 * Shape checks live here; checks that need the clock, the template store or croner live in
 * src/services/campaigns.ts and report the same {path, message} details.
 */
import * as v from "valibot";
import { CHANNELS } from "./event.ts";
import { Id, Key, Name, TimeZone, Timestamp } from "./common.ts";

// One object with optional members rather than a union: a union reports "matches none" at its
// root, while this names the member at fault (schedule.timezone, audience.where...). Which
// combinations are allowed is checked in src/services/campaigns.ts.
export const Audience = v.strictObject({
  all: v.optional(v.literal(true, "must be true")),
  user_ids: v.optional(v.pipe(v.array(Id), v.minLength(1, "needs at least one user id"), v.maxLength(100_000))),
  where: v.optional(v.record(v.pipe(v.string(), v.maxLength(128)), v.pipe(v.string(), v.maxLength(1000)))),
});

export const ScheduleInput = v.strictObject({
  at: v.optional(Timestamp),
  now: v.optional(v.literal(true, "must be true")),
  cron: v.optional(v.pipe(v.string(), v.maxLength(200))),
  timezone: v.optional(TimeZone),
  until: v.optional(Timestamp),
});
export type ScheduleInput = v.InferOutput<typeof ScheduleInput>;

const Channels = v.pipe(v.array(v.picklist(CHANNELS, `must be one of ${CHANNELS.join(", ")}`)), v.minLength(1, "needs at least one channel"), v.maxLength(CHANNELS.length));
const LocalTime = v.pipe(v.string(), v.regex(/^([01][0-9]|2[0-3]):[0-5][0-9]$/, 'must be a 24-hour time such as "09:00"'));

export const CampaignInput = v.strictObject({
  name: v.pipe(Name, v.minLength(1, "must not be empty")),
  template: Key,
  channels: Channels,
  audience: Audience,
  schedule: ScheduleInput,
  local_time: v.optional(v.nullable(LocalTime)),
  data: v.optional(v.record(v.string(), v.unknown()), {}),
  category: v.optional(Key),
});
export type CampaignInput = v.InferOutput<typeof CampaignInput>;

export const CampaignPatch = v.strictObject({
  name: v.optional(v.pipe(Name, v.minLength(1, "must not be empty"))),
  template: v.optional(Key),
  channels: v.optional(Channels),
  audience: v.optional(Audience),
  schedule: v.optional(ScheduleInput),
  local_time: v.optional(v.nullable(LocalTime)),
  data: v.optional(v.record(v.string(), v.unknown())),
  category: v.optional(Key),
});
export type CampaignPatch = v.InferOutput<typeof CampaignPatch>;

export const SchedulePreview = v.strictObject({
  schedule: ScheduleInput,
  local_time: v.optional(v.nullable(LocalTime)),
  count: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100)), 5),
});

export const CampaignId = Id;
