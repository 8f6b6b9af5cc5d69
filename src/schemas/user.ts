import * as v from "valibot";
import { Attributes, Email, Locale, Name, Phone, TimeZone } from "./common.ts";

/** PUT /api/v1/users/{id}: the recipient directory entry. */
export const UserInput = v.strictObject({
  email: v.optional(v.nullable(Email)),
  phone: v.optional(v.nullable(Phone)),
  name: v.optional(v.nullable(Name)),
  locale: v.optional(v.nullable(Locale)),
  timezone: v.optional(v.nullable(TimeZone)),
  telegram_chat_id: v.optional(v.nullable(v.pipe(v.string(), v.regex(/^-?[0-9]{1,20}$/, "must be a Telegram chat id")))),
  attributes: v.optional(Attributes),
});
export type UserInput = v.InferOutput<typeof UserInput>;
