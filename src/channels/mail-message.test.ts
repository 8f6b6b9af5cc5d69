/**
 * notify's own MIME composition against nodemailer's: each message is built both ways and read back
 * with mailparser, and a receiver must see the same thing (subject, addresses, text, HTML, ids,
 * notify's headers). Messages outside the plain case must be left to nodemailer.
 */
import { describe, expect, test } from "bun:test";
import { simpleParser, type ParsedMail } from "mailparser";
import nodemailer from "nodemailer";
import { composeMail, mailOptions, mailSender } from "./mail-message.ts";
import { outboundMessage } from "./testing.ts";
import type { DeliveryContent } from "../store/deliveries.ts";
import type { OutboundMessage } from "./types.ts";

const composer = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: "windows" });

async function byNodemailer(msg: OutboundMessage, from: string): Promise<ParsedMail> {
  const info = await composer.sendMail(mailOptions(msg, mailSender(from)));
  return simpleParser(info.message as Buffer);
}

/** What a receiver sees of a message. */
function seen(m: ParsedMail) {
  const h = (k: string) => m.headers.get(k);
  return {
    subject: m.subject,
    from: m.from?.value,
    to: Array.isArray(m.to) ? m.to.flatMap((t) => t.value) : m.to?.value,
    // nodemailer ends a quoted-printable body with a line break and a base64 one without: the
    // receiver's text differs by that last line break, which no reader sees.
    text: (m.text ?? "").replace(/\n$/, ""),
    html: m.html ? m.html.replace(/\n$/, "") : undefined,
    messageId: m.messageId,
    notification: h("x-notify-notification"),
    delivery: h("x-notify-delivery"),
    unsubscribe: m.headers.has("list-unsubscribe") ? JSON.stringify(h("list-unsubscribe")) : undefined,
    unsubscribePost: h("list-unsubscribe-post"),
  };
}

const long = "Ünïcödé 🎉 — подписка на новости, très long sujet qui dépasse soixante-seize caractères sans problème";
const cases: Array<[string, DeliveryContent, string?]> = [
  ["plain ASCII, text only", { subject: "Your code", text: "Hello Ada, your code is 123456.\n" + "x".repeat(700) }],
  ["non-ASCII subject and text, long lines, trailing spaces, = and tabs", { subject: long, text: `${long}\n${"é".repeat(300)}\nend with spaces   \n\ttab=3D and = sign\n.leading dot\n..two dots\nFrom the start` }],
  ["text and HTML", { subject: "Réception", text: "Merci !", html: `<p style="color:red">Merci — <b>${"€".repeat(120)}</b></p>` }],
  ["HTML only", { subject: "Only HTML", html: "<h1>Hi</h1>" }],
  ["a subject that looks like an encoded word", { subject: "=?utf-8?Q?not_encoded?= literally", text: "x" }],
  ["LF and CRLF line breaks", { subject: "Line breaks", text: "one\ntwo\r\nthree\r\n\r\nfive" }],
  ["empty content", {}],
  ["an unsubscribe link", { subject: "Digest", text: "News", meta: { unsubscribe_url: "https://notify.example.test/u/abc?t=1&x=2" } }],
  ["a display name in From", { subject: "Hi", text: "x" }, "Notify Team <notify@example.test>"],
  ["a non-ASCII display name in From", { subject: "Hi", text: "x" }, "Équipe « Notify » <notify@example.test>"],
];

describe("composeMail", () => {
  for (const [name, content, from = "notify@example.test"] of cases) {
    test(`reads back as nodemailer's own message: ${name}`, async () => {
      const msg = outboundMessage("ada@example.test", { content });
      const composed = composeMail(msg, mailSender(from));
      expect(composed).toBeDefined();
      expect(composed!.raw).not.toMatch(/[^\r]\n|\r(?!\n)/); // CRLF only
      expect(composed!.raw.split("\r\n").every((l) => l.length <= 998)).toBe(true);
      expect(composed!.envelope).toEqual({ from: "notify@example.test", to: ["ada@example.test"] });
      const mine = seen(await simpleParser(composed!.raw));
      const theirs = seen(await byNodemailer(msg, from));
      expect(mine).toEqual(theirs);
      expect(mine.messageId).toBe(composed!.messageId);
      if (content.text) expect(mine.text.trimEnd()).toBe(content.text.replace(/\r\n/g, "\n").trimEnd());
    });
  }

  test("what is not plain is left to nodemailer: a non-ASCII address, a header value with a line break", () => {
    const sender = mailSender("notify@example.test");
    expect(composeMail(outboundMessage("ådå@exämple.test", { content: { subject: "x" } }), sender)).toBeUndefined();
    expect(composeMail(outboundMessage("ada@example.test", { content: { subject: "x", meta: { unsubscribe_url: "https://x.test/\r\nBcc: eve@example.test" } } }), sender)).toBeUndefined();
    expect(composeMail(outboundMessage("ada@example.test", { content: { subject: "x", meta: { unsubscribe_url: "https://x.test/é" } } }), sender)).toBeUndefined();
  });

  test("a lone CR is sent as a line break, never as a bare CR (nodemailer passes it through)", async () => {
    const composed = composeMail(outboundMessage("ada@example.test", { content: { subject: "x", text: "one\rtwo" } }), mailSender("notify@example.test"));
    expect(composed!.raw).not.toMatch(/\r(?!\n)/);
    expect((await simpleParser(composed!.raw)).text).toBe("one\ntwo\n");
  });

  test("a subject cannot add a header", async () => {
    const composed = composeMail(outboundMessage("ada@example.test", { content: { subject: "Hi\r\nBcc: eve@example.test", text: "x" } }), mailSender("notify@example.test"));
    const parsed = await simpleParser(composed!.raw);
    expect(parsed.headers.has("bcc")).toBe(false);
    expect(parsed.subject).toBe("Hi Bcc: eve@example.test");
  });
});
