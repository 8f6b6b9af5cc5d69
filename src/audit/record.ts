/**
 * The audit record: what every role publishes to `notify.audit` and what the audit role stores.
 *
 * Shape (JSON on the wire, one record per AMQP message, routing key = action):
 *
 *   {
 *     "id":      "<uuid v7>",                 // set by the publisher; idempotency key end to end
 *     "time":    "2026-11-25T03:14:56.123Z",  // ISO 8601, UTC, millisecond precision (normalised)
 *     "actor":   { "type": "api_key" | "user" | "admin" | "system", "id": "k_123", "name": "shop backend" },
 *     "action":  "template.updated",          // <noun>.<verb>: event.accepted, delivery.sent, auth.failed, ...
 *     "target":  { "type": "template", "id": "welcome" },
 *     "outcome": "success" | "failure" | "denied",
 *     "request_id": "req_...",                // optional: ties the record to a request log line
 *     "details": { "before": {...}, "after": {...}, "reason": "..." }   // always an object
 *   }
 *
 * The store adds:
 *   "seq":       1, 2, 3, ...  contiguous per store, assigned at append in commit order
 *   "prev_hash": hash of the record with seq - 1 (GENESIS_HASH for the first record ever)
 *   "hash":      sha256_hex(prev_hash + canonicalJson(record without "hash"))
 *
 * canonicalJson sorts object keys (UTF-16 code unit order), drops undefined, no whitespace. So the hash
 * does not depend on how a backend (jsonb, BSON) reorders keys. Optional fields that are absent or
 * null (actor.name, request_id) are omitted before hashing, so "missing" and "null" hash alike.
 *
 * Secrets never enter details; contact data and rendered message bodies only when the operator enables it
 * (NOTIFY_AUDIT_INCLUDE_PII=true): see redactDetails.
 */
import * as v from "valibot";

export const ACTOR_TYPES = ["api_key", "user", "admin", "system"] as const;
export type ActorType = (typeof ACTOR_TYPES)[number];
export const OUTCOMES = ["success", "failure", "denied"] as const;
export type AuditOutcome = (typeof OUTCOMES)[number];

/** prev_hash of the first record of a store. */
export const GENESIS_HASH = "0".repeat(64);

export interface AuditActor {
  type: ActorType;
  id: string;
  name?: string;
}

export interface AuditTarget {
  type: string;
  id: string;
}

/** A record as published (before the store chains it). */
export interface AuditRecord {
  id: string;
  time: string;
  actor: AuditActor;
  action: string;
  target: AuditTarget;
  outcome: AuditOutcome;
  request_id?: string;
  details: Record<string, unknown>;
}

/** A record as stored: chained into the store's hash chain. */
export interface StoredAuditRecord extends AuditRecord {
  seq: number;
  prev_hash: string;
  hash: string;
}

/** What callers hand to the publisher: id and time are filled in. */
export type AuditInput = Omit<AuditRecord, "id" | "time" | "details"> & {
  id?: string;
  time?: string;
  details?: Record<string, unknown>;
};

const text = (max: number) => v.pipe(v.string(), v.minLength(1), v.maxLength(max));

/** Validates a record at the edge (the consumer reads it from AMQP). */
export const AuditRecordSchema = v.object({
  id: v.pipe(v.string(), v.uuid()),
  time: v.pipe(v.string(), v.isoTimestamp()),
  actor: v.object({
    type: v.picklist(ACTOR_TYPES),
    id: text(256),
    name: v.nullish(v.pipe(v.string(), v.maxLength(256))),
  }),
  action: v.pipe(text(128), v.regex(/^[a-z0-9_]+(\.[a-z0-9_]+)+$/, "action must look like noun.verb")),
  target: v.object({ type: text(64), id: text(512) }),
  outcome: v.picklist(OUTCOMES),
  request_id: v.nullish(v.pipe(v.string(), v.maxLength(256))),
  details: v.optional(v.record(v.string(), v.unknown()), {}),
});

export function parseAuditRecord(input: unknown): { ok: true; record: AuditRecord } | { ok: false; error: string } {
  const r = v.safeParse(AuditRecordSchema, input);
  if (!r.success) {
    const issue = r.issues[0];
    const path = issue.path?.map((p) => String(p.key)).join(".") ?? "";
    return { ok: false, error: `${path ? path + ": " : ""}${issue.message}` };
  }
  return { ok: true, record: normalizeRecord(r.output as AuditRecord) };
}

/**
 * The form a record is hashed and stored in: time as toISOString(), lowercase id, optional fields
 * omitted when empty, details a plain JSON tree with strings every backend accepts (PostgreSQL jsonb
 * refuses U+0000 and lone surrogates; a record it cannot store would be a poison message).
 */
export function normalizeRecord(r: AuditRecord): AuditRecord {
  const out: AuditRecord = {
    id: r.id.toLowerCase(),
    time: new Date(r.time).toISOString(),
    actor: { type: r.actor.type, id: cleanString(r.actor.id) },
    action: r.action,
    target: { type: cleanString(r.target.type), id: cleanString(r.target.id) },
    outcome: r.outcome,
    details: (cleanJson(r.details ?? {}) ?? {}) as Record<string, unknown>,
  };
  if (r.actor.name != null) out.actor.name = cleanString(r.actor.name);
  if (r.request_id != null) out.request_id = cleanString(r.request_id);
  return out;
}

function cleanString(s: string): string {
  return s.replaceAll("\u0000", "\uFFFD").toWellFormed();
}

function cleanJson(value: unknown, depth = 0): unknown {
  if (value === null || value === undefined) return value ?? null;
  if (typeof value === "string") return cleanString(value);
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (typeof value === "boolean") return value;
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Date) return value.toISOString();
  // Deeper than this is not an audit detail but a dump; cut it rather than store it.
  if (depth > 32) return "[too deep]";
  if (Array.isArray(value)) return value.map((x) => cleanJson(x, depth + 1) ?? null);
  if (typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(value as Record<string, unknown>)) {
      if (x === undefined || typeof x === "function" || typeof x === "symbol") continue;
      out[cleanString(k)] = cleanJson(x, depth + 1);
    }
    return out;
  }
  return null;
}

/** Deterministic JSON: object keys sorted, undefined dropped, no whitespace. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return "[" + value.map((x) => (x === undefined ? "null" : canonicalJson(x))).join(",") + "]";
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonicalJson(obj[k])).join(",") + "}";
}

/** sha256(prev_hash + canonical JSON of the record without its hash), hex. */
export function chainHash(record: Omit<StoredAuditRecord, "hash">): string {
  return Bun.SHA256.hash(record.prev_hash + recordCanonicalJson(record), "hex");
}

/**
 * canonicalJson of exactly the documented record fields, written out in sorted key order (the
 * ingest hot path: about 3x faster than the generic walk). Null optional fields are omitted, so a
 * backend's SQL NULL hashes like an absent field. record.test.ts checks it equals canonicalJson.
 */
export function recordCanonicalJson(r: Omit<StoredAuditRecord, "hash">): string {
  const s = JSON.stringify;
  return (
    `{"action":${s(r.action)},"actor":{"id":${s(r.actor.id)}${r.actor.name != null ? `,"name":${s(r.actor.name)}` : ""},"type":${s(r.actor.type)}}` +
    `,"details":${canonicalJson(r.details ?? {})},"id":${s(r.id)},"outcome":${s(r.outcome)},"prev_hash":${s(r.prev_hash)}` +
    `${r.request_id != null ? `,"request_id":${s(r.request_id)}` : ""},"seq":${s(r.seq)}` +
    `,"target":{"id":${s(r.target.id)},"type":${s(r.target.type)}},"time":${s(r.time)}}`
  );
}

/** Chains normalised records after (prevSeq, prevHash). */
export function chainRecords(records: AuditRecord[], prevSeq: number, prevHash: string): StoredAuditRecord[] {
  const out: StoredAuditRecord[] = [];
  let seq = prevSeq;
  let prev = prevHash;
  for (const r of records) {
    seq += 1;
    const unhashed = { ...r, seq, prev_hash: prev };
    const hash = chainHash(unhashed);
    out.push({ ...unhashed, hash });
    prev = hash;
  }
  return out;
}

/** Normalises a batch and drops repeated ids (a redelivered message in the same batch). */
export function prepareBatch(records: AuditRecord[]): AuditRecord[] {
  const seen = new Set<string>();
  const out: AuditRecord[] = [];
  for (const raw of records) {
    const r = normalizeRecord(raw);
    if (seen.has(r.id)) continue;
    seen.add(r.id);
    out.push(r);
  }
  return out;
}

/** "type:id" or a bare id, as given to the actor/target filters. */
export interface RefFilter {
  /** Matches id == whole. */
  whole: string;
  /** When the string has a colon: also matches type == type && id == id. */
  typed?: { type: string; id: string };
}

export function parseRef(s: string): RefFilter {
  const i = s.indexOf(":");
  if (i <= 0 || i === s.length - 1) return { whole: s };
  return { whole: s, typed: { type: s.slice(0, i), id: s.slice(i + 1) } };
}

// ---- redaction ------------------------------------------------------------------------------

/** Keys whose values are never copied into an audit record, whatever the operator enables. */
const SECRET_KEY = /^pass$|password|passwd|passphrase|secret|token|authori[sz]ation|api[_-]?key|^key(_hash)?$|private[_-]?key|credential|cookie|signature/i;
/** Contact data: copied only with NOTIFY_AUDIT_INCLUDE_PII=true. Names, not contents, decide. */
const CONTACT_KEY = /^(email|e_mail|phone|phone_number|telegram_chat_id|address|recipient_address|ip|ip_address)$/i;
/**
 * Message bodies: rendered for a person, so personal data; copied only with the PII option, unless
 * the record is about authored content (a template's before/after is what an auditor asks for, and
 * it holds placeholders, not anyone's data).
 */
const BODY_KEY = /^(text|html|body|subject|title)$/i;

/** Targets whose details carry authored content (templates, rules, campaigns), not rendered messages. */
export const AUTHORED_CONTENT_TARGETS: ReadonlySet<string> = new Set(["template", "rule", "campaign"]);

export interface RedactOptions {
  /** NOTIFY_AUDIT_INCLUDE_PII=true: keep message bodies and contact data. Secrets are dropped regardless. */
  includePii?: boolean;
  /** Details describe authored content (see AUTHORED_CONTENT_TARGETS): keep text/html/body/subject. */
  authoredContent?: boolean;
}

export const REDACTED_PII = "[pii]";

/**
 * A copy of `details` safe to store: secret-named keys are removed (not even a placeholder), personal
 * data (contact fields; message bodies unless authoredContent) is replaced with "[pii]" unless the
 * operator enabled it. Deep: before/after snapshots of users and templates are covered.
 */
export function redactDetails(details: Record<string, unknown> | undefined, opts: RedactOptions = {}): Record<string, unknown> {
  if (!details) return {};
  return redactValue(details, opts, 0) as Record<string, unknown>;
}

function redactValue(value: unknown, opts: RedactOptions, depth: number): unknown {
  if (value === null || typeof value !== "object") return value;
  if (depth > 32) return "[too deep]";
  if (Array.isArray(value)) return value.map((x) => redactValue(x, opts, depth + 1));
  if (value instanceof Date) return value.toISOString();
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(value as Record<string, unknown>)) {
    if (SECRET_KEY.test(k)) continue;
    if (!opts.includePii && (CONTACT_KEY.test(k) || (!opts.authoredContent && BODY_KEY.test(k)))) {
      out[k] = REDACTED_PII;
      continue;
    }
    out[k] = redactValue(x, opts, depth + 1);
  }
  return out;
}
