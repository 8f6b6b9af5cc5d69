/** User ↔ wire message. proto3 has no null scalars: "" on the wire means "not known". */
import { AppError } from "../runtime/errors.ts";
import type { User } from "../store/users.ts";
import type { UserMessage } from "./proto.ts";

export function userToWire(u: User): UserMessage {
  return {
    id: u.id,
    email: u.email ?? "",
    phone: u.phone ?? "",
    name: u.name ?? "",
    locale: u.locale ?? "",
    timezone: u.timezone ?? "",
    telegram_chat_id: u.telegram_chat_id ?? "",
    attributes_json: JSON.stringify(u.attributes ?? {}),
  };
}

export function userFromWire(m: UserMessage): User {
  return {
    id: m.id,
    email: m.email || null,
    phone: m.phone || null,
    name: m.name || null,
    locale: m.locale || null,
    timezone: m.timezone || null,
    telegram_chat_id: m.telegram_chat_id || null,
    attributes: parseJsonObject(m.attributes_json, "attributes_json"),
  };
}

/** Parses a `*_json` field: "" is {}, anything but a JSON object is VALIDATION_FAILED. */
export function parseJsonObject(text: string | undefined, path: string): Record<string, unknown> {
  if (!text) return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new AppError("VALIDATION_FAILED", `${path} is not valid JSON`, { details: [{ path, message: "not valid JSON" }] });
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new AppError("VALIDATION_FAILED", `${path} must be a JSON object`, { details: [{ path, message: "must be a JSON object" }] });
  }
  return v as Record<string, unknown>;
}
