/**
 * The one place an outgoing e-mail is assembled, for the SMTP relay and the outbox alike: a stable
 * Message-ID per delivery (a resend after a crash carries the same id, so the recipient's mail system
 * can recognise the duplicate), one-click unsubscribe headers, and no CR/LF in the subject.
 *
 * Messages are composed here as MIME text and handed to nodemailer as `raw`. nodemailer's own
 * composer builds every message through a pipeline of streams, and that cost more CPU than the rest
 * of its SMTP client: ≈ 220 µs of its ≈ 400 µs per message to a loopback sink (BENCHMARKS.md,
 * eleventh session). Only the plain case is composed here: ASCII addresses and header values, a
 * text part and an optional HTML part. Anything else (a non-ASCII address, say) goes to nodemailer
 * as options, and it composes it as before. The encoders are nodemailer's own (mime-funcs, qp).
 */
import type { SendMailOptions } from "nodemailer";
import { encodeWords, foldLines, isPlainText } from "nodemailer/lib/mime-funcs";
import MimeNode from "nodemailer/lib/mime-node";
import { encode as qpEncode, wrap as qpWrap } from "nodemailer/lib/qp";
import type { OutboundMessage } from "./types.ts";

/** The domain part of the From address, for Message-IDs. */
function mailDomain(from: string): string {
  return (from.match(/@([^>\s]+)/)?.[1] ?? "notify.local").replace(/[^A-Za-z0-9.-]/g, "");
}

/** The message as options for nodemailer's composer: what composeMail leaves to it. */
export function mailOptions(msg: OutboundMessage, sender: MailSender): SendMailOptions & { messageId: string } {
  return {
    from: sender.from,
    to: msg.to,
    subject: subjectOf(msg),
    text: msg.content.text ?? "",
    html: msg.content.html,
    messageId: messageIdOf(msg, sender.domain),
    headers: extraHeaders(msg),
    // Templates and data never name files or URLs for nodemailer to fetch.
    disableFileAccess: true,
    disableUrlAccess: true,
  };
}

/** The sender, prepared once per transport: its From header line as nodemailer writes it, and its envelope address. */
export interface MailSender {
  from: string;
  domain: string;
  /** Undefined when nodemailer could not make an envelope address of it: every message then goes to nodemailer. */
  fromLine?: string;
  envelopeFrom?: string;
}

export function mailSender(from: string): MailSender {
  const domain = mailDomain(from);
  try {
    const node = new MimeNode("text/plain").setHeader("From", from);
    const envelopeFrom = node.getEnvelope().from;
    const fromLine = /^From: .*(?:\r\n[ \t].*)*/m.exec(node.buildHeaders())?.[0];
    if (!envelopeFrom || !fromLine || !PRINTABLE_FOLDED.test(fromLine)) return { from, domain };
    return { from, domain, fromLine, envelopeFrom };
  } catch {
    return { from, domain };
  }
}

export interface ComposedMail {
  envelope: { from: string; to: string[] };
  /** The whole message, CRLF line endings. */
  raw: string;
  messageId: string;
}

/** The message as MIME text, or undefined when it needs nodemailer's general composer (see the top of this file). */
export function composeMail(msg: OutboundMessage, sender: MailSender): ComposedMail | undefined {
  if (!sender.fromLine || !sender.envelopeFrom || !PLAIN_ADDRESS.test(msg.to)) return undefined;
  const messageId = messageIdOf(msg, sender.domain);
  const extra = extraHeaders(msg);
  let head = `${sender.fromLine}\r\nTo: ${msg.to}\r\n${headerLine("Subject", subjectValue(subjectOf(msg)))}\r\nMessage-ID: ${messageId}\r\nDate: ${new Date().toUTCString().replace(/GMT/, "+0000")}\r\n`;
  for (const key in extra) {
    const value = extra[key]!;
    if (!PRINTABLE.test(value)) return undefined;
    head += `${headerLine(key, value)}\r\n`;
  }
  // As nodemailer builds it: an empty text or HTML is left out, both make multipart/alternative.
  const parts = [msg.content.text && part(msg.content.text, "text/plain"), msg.content.html && part(msg.content.html, "text/html")].filter((p): p is string => !!p);
  let raw: string;
  if (parts.length < 2) {
    raw = `${head}MIME-Version: 1.0\r\n${parts[0] ?? part("", "text/plain")}\r\n`;
  } else {
    // "=_" never occurs in quoted-printable text ("=" is always followed by hex digits or a line
    // break), so no content can contain the boundary.
    const boundary = `=_notify_${msg.deliveryId.replace(/[^A-Za-z0-9-]/g, "")}`;
    raw = `${head}MIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n boundary="${boundary}"\r\n\r\n--${boundary}\r\n${parts[0]}\r\n--${boundary}\r\n${parts[1]}\r\n--${boundary}--\r\n`;
  }
  return { envelope: { from: sender.envelopeFrom, to: [msg.to] }, raw, messageId };
}

/** Printable ASCII, no spaces: an address that needs no encoding, quoting or punycode. */
const PLAIN_ADDRESS = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+$/;
const PRINTABLE = /^[\x20-\x7e]*$/;
const PRINTABLE_FOLDED = /^[\x20-\x7e]*(?:\r\n[ \t][\x20-\x7e]*)*$/;

function subjectOf(msg: OutboundMessage): string {
  return (msg.content.subject ?? msg.content.title ?? "").replace(/[\r\n]+/g, " ");
}

/** As nodemailer encodes a Subject: as is when plain, else as encoded words. */
function subjectValue(subject: string): string {
  return isPlainText(subject) && !subject.includes("=?") ? subject : encodeWords(subject, "Q", 52, true);
}

function headerLine(key: string, value: string): string {
  return foldLines(`${key}: ${value}`, 76);
}

/** `<delivery id@domain>`: the same on every attempt of a delivery. */
export function messageIdOf(msg: OutboundMessage, domain: string): string {
  return `<${msg.deliveryId}@${domain}>`;
}

function extraHeaders(msg: OutboundMessage): Record<string, string> {
  const headers: Record<string, string> = { "X-Notify-Notification": msg.notificationId, "X-Notify-Delivery": msg.deliveryId };
  const unsub = msg.content.meta?.unsubscribe_url;
  if (typeof unsub === "string") {
    headers["List-Unsubscribe"] = `<${unsub}>`;
    headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click";
  }
  return headers;
}

/** One body part: its headers, a blank line, the content quoted-printable with CRLF line breaks. */
function part(content: string, type: "text/plain" | "text/html"): string {
  const body = qpWrap(qpEncode(content.replace(/\r\n|\r|\n/g, "\r\n")), 76);
  return `Content-Type: ${type}; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${body}`;
}
