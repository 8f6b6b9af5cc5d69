/**
 * Occurrence slots: which local wall times a schedule names, and the instant each one is due.
 *
 * croner enumerates the pattern on the *wall clock* of the campaign's zone (run in UTC, its
 * fields are wall-clock fields), and this file maps each wall time to an instant in the zone:
 * - a wall time that does not exist (spring forward) is due at the first instant after the gap;
 * - a wall time that occurs twice (fall back) is due at its first occurrence, once: the slot key
 *   is the wall time, so the second pass names the same key and the unique run row refuses it.
 * Several slots of one gap fall due at the same instant; the scheduler fires the latest, once.
 */
import { Cron } from "croner";

export interface Slot {
  /** "2026-03-08T02:30 America/New_York": local wall time plus zone; unique per campaign. */
  key: string;
  /** The wall time, as milliseconds of a UTC clock showing it. */
  wall: number;
  /** When it is due. */
  at: number;
}

export type Schedule = { at: string } | { now: true } | { cron: string; timezone?: string; until?: string };

const MINUTE = 60_000;
/** Zone offsets span UTC-12..UTC+14: the earliest and latest a local wall time happens anywhere. */
export const EARLIEST_OFFSET_MS = 14 * 3_600_000;

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", { timeZone: tz, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric" });
    formatters.set(tz, f);
  }
  return f;
}

/** The wall clock of `tz` at `instant`, as ms of a UTC clock (seconds precision). */
export function wallOf(tz: string, instant: number): number {
  const p: Record<string, number> = {};
  for (const part of formatter(tz).formatToParts(new Date(instant))) if (part.type !== "literal") p[part.type] = Number(part.value);
  return Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!);
}

const offsetAt = (tz: string, instant: number) => wallOf(tz, Math.floor(instant / 1000) * 1000) - Math.floor(instant / 1000) * 1000;

/** The instant a wall time of `tz` is due: its first occurrence, or the end of the gap it falls in. */
export function instantOf(tz: string, wall: number): number {
  const offsets = [...new Set([offsetAt(tz, wall - 36 * 3_600_000), offsetAt(tz, wall), offsetAt(tz, wall + 36 * 3_600_000)])];
  const valid = offsets.map((o) => wall - o).filter((t) => offsetAt(tz, t) === wall - t);
  if (valid.length) return Math.min(...valid);
  // In a gap: the transition lies between the candidates; find its first second.
  let lo = Math.min(...offsets.map((o) => wall - o));
  let hi = Math.max(...offsets.map((o) => wall - o));
  const before = offsetAt(tz, lo);
  while (hi - lo > 1000) {
    const mid = Math.floor((lo + hi) / 2000) * 1000;
    if (offsetAt(tz, mid) === before) lo = mid;
    else hi = mid;
  }
  return hi;
}

export function wallKey(wall: number, tz: string, seconds = false): string {
  const iso = new Date(wall).toISOString();
  return `${iso.slice(0, seconds ? 19 : 16)} ${tz}`;
}

/** Throws (with a message for the API) when the pattern is not a 5-field cron expression croner accepts. */
export function parseCron(pattern: string): Cron {
  if (pattern.trim().split(/\s+/).length !== 5) throw new Error("expected 5 fields: minute hour day-of-month month day-of-week");
  return new Cron(pattern, { timezone: "Etc/UTC", mode: "5-part", paused: true });
}

/** "HH:MM" → minutes after midnight. */
export function parseLocalTime(s: string): number {
  const m = /^([01][0-9]|2[0-3]):([0-5][0-9])$/.exec(s);
  if (!m) throw new Error('expected "HH:MM" (24-hour)');
  return Number(m[1]) * 60 + Number(m[2]);
}

export interface SlotSpec {
  schedule: Schedule;
  timezone: string;
  /** Minutes after midnight when each recipient gets it in their own zone. */
  localTime?: number;
}

/**
 * The slot that a schedule's wall time `wall` stands for. With a per-recipient local time the
 * slot is the date at that time "local" (each recipient's own zone), due when that time first
 * happens anywhere (UTC+14), so the earliest slice can be sent on time.
 */
export function toSlot(spec: SlotSpec, wall: number, seconds = false): Slot {
  if (spec.localTime !== undefined) {
    const day = Math.floor(wall / 86_400_000) * 86_400_000;
    const local = day + spec.localTime * MINUTE;
    return { key: wallKey(local, "local"), wall: local, at: local - EARLIEST_OFFSET_MS };
  }
  return { key: wallKey(wall, spec.timezone, seconds), wall, at: instantOf(spec.timezone, wall) };
}

/**
 * Slots strictly after the wall time `afterWall` (null: from the beginning), in order, at most
 * `count`, stopping at `until` (an instant, exclusive).
 */
export function slotsAfter(spec: SlotSpec, afterWall: number | null, count: number): Slot[] {
  const s = spec.schedule;
  if ("at" in s) {
    const at = Date.parse(s.at);
    const wall = wallOf(spec.timezone, at);
    const slot = spec.localTime === undefined ? { key: wallKey(wall, spec.timezone, true), wall, at } : toSlot(spec, wall);
    return afterWall === null || slot.wall > afterWall ? [slot] : [];
  }
  if ("now" in s) return []; // a {now} campaign is turned into {at} when it is created
  const cron = parseCron(s.cron);
  const until = s.until ? Date.parse(s.until) : Infinity;
  const out: Slot[] = [];
  // Start far enough back that "after" is honoured even before the first call (null).
  let cursor = new Date(afterWall ?? Date.UTC(1970, 0, 1));
  while (out.length < count) {
    const next = cron.nextRun(cursor);
    if (!next) break;
    cursor = next;
    const slot = toSlot(spec, next.getTime());
    if (slot.at >= until) break;
    if (spec.localTime !== undefined && out.length && out.at(-1)!.key === slot.key) continue; // several cron times on one day: one local-time slot
    out.push(slot);
  }
  return out;
}

/** The next `count` slots due after the instant `now` (preview). */
export function upcoming(spec: SlotSpec, now: number, count: number): Slot[] {
  const s = spec.schedule;
  if ("now" in s) return [toSlot({ ...spec, schedule: { at: new Date(now).toISOString() } }, wallOf(spec.timezone, now))];
  // Wall times a day before now cover every slot whose instant may still be ahead (gaps, local time).
  let cursor = wallOf(spec.timezone, now) - 2 * 86_400_000;
  const out: Slot[] = [];
  for (let pages = 0; pages < 100 && out.length < count; pages++) {
    const page = slotsAfter(spec, cursor, 500);
    out.push(...page.filter((x) => x.at > now));
    if (page.length < 500) break;
    cursor = page.at(-1)!.wall;
  }
  return out.slice(0, count);
}
