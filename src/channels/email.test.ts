/**
 * The e-mail sender against a real SMTP server on loopback: a relay that stalls mid-conversation
 * costs one send its deadline and is reported as a transient failure (retried, not lost), and the
 * pooled transport goes on delivering.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { getEventListeners } from "node:events";
import * as v from "valibot";
import { startTestSmtp, type TestSmtp } from "../../test/support/smtp.ts";
import { quietLog } from "../grpc/testing.ts";
import { withDeadline } from "../runtime/deadline.ts";
import { email } from "./email.ts";
import { outboundMessage } from "./testing.ts";
import { SendError, type ChannelSender } from "./types.ts";

const message = (to: string) =>
  outboundMessage(to, { event: "test.mail", user: { id: "u1", email: to, phone: null, name: null, locale: null, timezone: null, telegram_chat_id: null, attributes: {} }, content: { subject: "Hello", text: "Body" } });

describe("e-mail sender", () => {
  let smtp: TestSmtp, sender: ChannelSender;
  beforeAll(async () => {
    smtp = await startTestSmtp();
    const config = v.parse(email.configSchema, { url: smtp.url, from: "notify@example.test", timeoutMs: 2_000 });
    sender = email.create(config, { log: quietLog, publicUrl: "http://localhost", mailFrom: "notify@example.test", dataDir: "/tmp" });
  });
  afterAll(async () => {
    await sender?.close?.();
    await smtp?.close();
  });

  test("a relay that never answers DATA: the send's deadline ends it as a transient failure", async () => {
    smtp.stall = ({ to }) => to.includes("stuck@example.test");
    const started = performance.now();
    // The socket timeout (2 s) is longer than the send's deadline, so only the deadline can end it.
    const err = await withDeadline(300, (signal) => sender.send(message("stuck@example.test"), signal)).catch((e) => e);
    expect(err).toBeInstanceOf(SendError);
    expect(err).toMatchObject({ permanent: false, message: "send timed out" });
    expect(performance.now() - started).toBeLessThan(5_000);
    // The pool still delivers: the stalled connection is not the only one.
    smtp.stall = undefined;
    const ok = await withDeadline(10_000, (signal) => sender.send(message("fine@example.test"), signal));
    expect(ok.providerId).toMatch(/^<.+@example\.test>$/);
    expect(smtp.mails.some((m) => m.to.includes("fine@example.test"))).toBe(true);
  });

  test("a stalled send's deadline frees its pooled connection: with a pool of one, the next message goes out", async () => {
    const config = v.parse(email.configSchema, { url: smtp.url, from: "notify@example.test", timeoutMs: 20_000, maxConnections: 1 });
    const one = email.create(config, { log: quietLog, publicUrl: "http://localhost", mailFrom: "notify@example.test", dataDir: "/tmp" });
    try {
      for (const [to, compose] of [["stuck-1@example.test", true], ["stück-2@example.test", false]] as const) {
        smtp.stall = (m) => m.to.includes(to) || m.to.includes(to.replace("ü", "u"));
        const err = await withDeadline(300, (signal) => one.send(message(to), signal)).catch((e) => e);
        expect(err).toMatchObject({ permanent: false, message: "send timed out" });
        smtp.stall = undefined;
        // The socket timeout (20 s) is far beyond this deadline: only a freed connection delivers in time.
        const next = `after-${compose ? "composed" : "nodemailer"}@example.test`;
        await withDeadline(5_000, (signal) => one.send(message(next), signal));
        expect(smtp.mails.some((m) => m.to.includes(next))).toBe(true);
      }
    } finally {
      await one.close?.();
    }
  });

  test("a composed message crosses SMTP intact: lines of dots, non-ASCII, text and HTML", async () => {
    const text = ".leading dot\n..two dots\n.\nafter a lone dot — ünïcödé";
    const msg = outboundMessage("dots@example.test", { content: { subject: "Dots — ünïcödé", text, html: "<p>.</p>\n.\n<p>é</p>" } });
    const r = await sender.send(msg, new AbortController().signal);
    const got = smtp.mails.find((m) => m.to.includes("dots@example.test"))!;
    expect(got.subject).toBe("Dots — ünïcödé");
    expect(got.text.trimEnd()).toBe(text);
    expect(got.html.trimEnd()).toBe("<p>.</p>\n.\n<p>é</p>");
    expect(got.messageId).toBe(r.providerId!);
    expect(got.messageId).toBe(`<${msg.deliveryId}@example.test>`);
    expect(got.headers["x-notify-delivery"]).toBe(msg.deliveryId);
  });

  test("a message notify does not compose (an internationalised domain) goes through nodemailer's composer over the same pool", async () => {
    const msg = outboundMessage("ada@bücher.example", { content: { subject: "IDN", text: "Hallo" } });
    const r = await sender.send(msg, new AbortController().signal);
    const got = smtp.mails.find((m) => m.subject === "IDN")!;
    expect(got.to).toEqual(["ada@bücher.example"]); // the test server takes SMTPUTF8
    expect(got.text.trimEnd()).toBe("Hallo");
    expect(got.messageId).toBe(r.providerId!);
    expect(got.messageId).toBe(`<${msg.deliveryId}@example.test>`);
  });

  test("a successful send leaves no listener on its signal (a listener would hold the send until the deadline)", async () => {
    const controller = new AbortController();
    const r = await sender.send(message("ok@example.test"), controller.signal);
    expect(r.providerId).toBeTruthy();
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });
});
