/**
 * Quiet hours: a daily window in the recipient's time zone ("22:00"–"08:00" wraps midnight)
 * during which non-critical messages wait until the end time, as the recipient's clock shows it:
 * on a night the clocks change, the wait is an hour shorter or longer, and the end is still 08:00.
 * An end time that does not exist that night (it falls in the skipped hour) is the hour after it.
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
  let until = new Date(now.getTime() + left * 60_000 - seconds * 1000 - now.getMilliseconds());
  // Wall-clock arithmetic is off by the offset change if one happens before the end: correct by
  // what the clock says at the candidate (twice: the correction itself can cross the change).
  for (let i = 0; i < 2; i++) {
    const off = ((end - localClock(until, timeZone).minutes + 720 + 1440) % 1440) - 720;
    if (off === 0) break;
    const shifted = new Date(until.getTime() + off * 60_000);
    if (shifted.getTime() <= now.getTime()) break;
    until = shifted;
  }
  return until;
}
