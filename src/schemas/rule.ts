import * as v from "valibot";
import { Key } from "./common.ts";
import { CHANNELS, PRIORITIES } from "./event.ts";

const HttpUrl = v.pipe(v.string(), v.maxLength(2048), v.url("must be a URL"), v.regex(/^https?:\/\//i, "must be an http(s) URL"));

/** A related object fetched before rendering (issue 5), e.g. {name: "movie", url: "https://movies/api/movies/{data.movie_id}"}. */
export const DataSource = v.strictObject({
  name: v.pipe(v.string(), v.regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, "must be an identifier (the template reads {{ name.field }})")),
  // Placeholders such as {data.movie_id} are filled by the enrichment step, so this is a URL template, checked loosely.
  // {base} stands for NOTIFY_ENRICH_BASE_URL, so rules need not repeat the service's address.
  url: v.pipe(v.string(), v.maxLength(2048), v.regex(/^(https?:\/\/|\{base\}\/)[^\s]+$/i, "must be an http(s) URL or start with {base}/ (placeholders allowed)")),
});

/** PUT /api/v1/rules/{event}: what an event means when its producer only names it. */
export const RuleInput = v.strictObject({
  template: v.optional(Key),
  channels: v.pipe(v.array(v.picklist(CHANNELS, `must be one of ${CHANNELS.join(", ")}`)), v.minLength(1, "needs at least one channel"), v.maxLength(CHANNELS.length)),
  category: v.optional(Key),
  priority: v.optional(v.picklist(PRIORITIES, `must be one of ${PRIORITIES.join(", ")}`)),
  webhook_url: v.optional(HttpUrl),
  data_sources: v.optional(
    v.pipe(
      v.array(DataSource),
      v.maxLength(20),
      v.check((list) => new Set(list.map((s) => s.name)).size === list.length, "names must be unique"),
    ),
    [],
  ),
});
export type RuleInput = v.InferOutput<typeof RuleInput>;

export const EventName = v.pipe(v.string(), v.regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/, "must be an event name such as user.registered"));
