/**
 * The one place an outgoing e-mail is assembled, for the SMTP relay and the outbox alike: a stable
 * Message-ID per delivery (a resend after a crash carries the same id, so the recipient's mail system
 * can recognise the duplicate), one-click unsubscribe headers, and no CR/LF in the subject.
 */
import type { SendMailOptions } from "nodemailer";
import type { OutboundMessage } from "./types.ts";

/** The domain part of the From address, for Message-IDs. */
export function mailDomain(from: string): string {
  return (from.match(/@([^>\s]+)/)?.[1] ?? "notify.local").replace(/[^A-Za-z0-9.-]/g, "");
}

export function mailOptions(msg: OutboundMessage, from: string, domain: string): SendMailOptions & { messageId: string } {
  const headers: Record<string, string> = { "X-Notify-Notification": msg.notificationId, "X-Notify-Delivery": msg.deliveryId };
  const unsub = msg.content.meta?.unsubscribe_url;
  if (typeof unsub === "string") {
    headers["List-Unsubscribe"] = `<${unsub}>`;
    headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click";
  }
  return {
    from,
    to: msg.to,
    subject: (msg.content.subject ?? msg.content.title ?? "").replace(/[\r\n]+/g, " "),
    text: msg.content.text ?? "",
    html: msg.content.html,
    messageId: `<${msg.deliveryId}@${domain}>`,
    headers,
    // Templates and data never name files or URLs for nodemailer to fetch.
    disableFileAccess: true,
    disableUrlAccess: true,
  };
}
