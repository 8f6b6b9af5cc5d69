/**
 * A finished plain-text message, as notify composes one (quoted-printable UTF-8, CRLF), to hand
 * nodemailer as `raw`: the raw limit with prebuilt messages (sink.ts) and the least e-mail
 * pipeline's worker (email-floor-worker.ts). nodemailer's own encoders, no notify code.
 */
import { encode as qpEncode, wrap as qpWrap } from "nodemailer/lib/qp";

export function finishedMessage(from: string, to: string, subject: string, text: string): { envelope: { from: string; to: string[] }; raw: string } {
  const body = qpWrap(qpEncode(text.replace(/\r?\n/g, "\r\n")), 76);
  return {
    envelope: { from, to: [to] },
    raw:
      `From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <${subject}@notify.test>\r\nDate: ${new Date().toUTCString()}\r\n` +
      `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${body}\r\n`,
  };
}
