/**
 * Quiet hours: a daily window in the recipient's time zone ("22:00"–"08:00" wraps midnight)
 * during which non-critical messages wait. Computed on wall-clock minutes; on a day the clocks
 * change, the wait may be an hour longer or shorter than the window says.
 */
import type { QuietHours } from "../schemas/preferences.ts";

const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** Wall-clock minutes and seconds of `at` in `timeZone` (invalid zones read as UTC). */
function localClock(at: Date, timeZone: string): { minutes: number; seconds: number } {
  let parts: Intl.DateTimeFormatPart[];
  try {
    parts = new Intl.DateTimeFormat("en-GB", { timeZone, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }).formatToParts(at);
  } catch {
    parts = new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }).formatToParts(at);
  }
  const n = (t: string) => Number(parts.find((p) => p.type === t)?.value ?? 0);
  return { minutes: n("hour") * 60 + n("minute"), seconds: n("second") };
}

/** When the window ends, if `now` is inside it; undefined when outside. */
export function quietUntil(q: QuietHours, timeZone: string, now: Date): Date | undefined {
  const start = minutesOf(q.start);
  const end = minutesOf(q.end);
  const { minutes, seconds } = localClock(now, timeZone);
  const inside = start < end ? minutes >= start && minutes < end : minutes >= start || minutes < end;
  if (!inside) return undefined;
  const left = (end - minutes + 1440) % 1440;
  return new Date(now.getTime() + left * 60_000 - seconds * 1000 - now.getMilliseconds());
}
