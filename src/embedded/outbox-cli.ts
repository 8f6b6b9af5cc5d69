/**
 * `notify outbox`: lists the e-mails the outbox provider wrote (NOTIFY_DATA_DIR/outbox), newest
 * last, one line each: delivery id, date, recipient, subject.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { outboxDir } from "../channels/email-outbox.ts";

export interface OutboxEntry {
  deliveryId: string;
  file: string;
  mtimeMs: number;
  date?: string;
  to?: string;
  subject?: string;
}

export function listOutbox(dataDir: string): OutboxEntry[] {
  const dir = outboxDir(dataDir);
  if (!existsSync(dir)) return [];
  const out: OutboxEntry[] = [];
  for (const name of readdirSync(dir)) {
    if (!name.endsWith(".eml") || name.startsWith(".")) continue;
    const file = join(dir, name);
    const head = headerBlock(readFileSync(file, "utf8"));
    out.push({ deliveryId: name.slice(0, -4), file, mtimeMs: statSync(file).mtimeMs, date: head.date, to: head.to, subject: head.subject });
  }
  return out.sort((a, b) => a.mtimeMs - b.mtimeMs);
}

/** The top-level header fields we print; folded lines are unfolded, encoded words left as they are. */
function headerBlock(eml: string): Record<string, string> {
  const end = eml.search(/\r?\n\r?\n/);
  const fields: Record<string, string> = {};
  const unfolded = (end === -1 ? eml : eml.slice(0, end)).replace(/\r?\n[ \t]+/g, " ");
  for (const line of unfolded.split(/\r?\n/)) {
    const i = line.indexOf(":");
    if (i > 0) fields[line.slice(0, i).toLowerCase()] ??= line.slice(i + 1).trim();
  }
  return fields;
}

export function runOutbox(dataDir: string, write: (s: string) => void = (s) => process.stdout.write(s)): number {
  const entries = listOutbox(dataDir);
  if (entries.length === 0) {
    write(`outbox ${outboxDir(dataDir)} is empty\n`);
    return 0;
  }
  for (const e of entries) write(`${e.deliveryId}\t${e.date ?? ""}\t${e.to ?? ""}\t${e.subject ?? ""}\n`);
  write(`${entries.length} message(s) in ${outboxDir(dataDir)}\n`);
  return 0;
}
