/**
 * A real SMTP server on loopback (the smtp-server package) that records what it receives and can
 * be told to answer with errors: the peer our e-mail channel talks to in tests.
 */
import { simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";

export interface ReceivedMail {
  from: string;
  to: string[];
  raw: string;
  subject: string;
  messageId: string;
  headers: Record<string, string>;
  text: string;
  html: string;
  receivedAt: number;
}

export interface TestSmtp {
  port: number;
  url: string;
  mails: ReceivedMail[];
  /** Decides the reply for each message; return undefined to accept (250). */
  respond: ((mail: { to: string[]; n: number }) => { code: number; message: string } | undefined) | undefined;
  /** Messages for which this returns true get no reply to DATA at all: a relay that stalls mid-conversation. */
  stall: ((mail: { to: string[] }) => boolean) | undefined;
  byMessageId(): Map<string, ReceivedMail[]>;
  close(): Promise<void>;
}

export async function startTestSmtp(): Promise<TestSmtp> {
  let n = 0;
  const state: TestSmtp = {
    port: 0,
    url: "",
    mails: [],
    respond: undefined,
    stall: undefined,
    byMessageId() {
      const m = new Map<string, ReceivedMail[]>();
      for (const mail of state.mails) m.set(mail.messageId, [...(m.get(mail.messageId) ?? []), mail]);
      return m;
    },
    close: async () => {},
  };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    size: 10 * 1024 * 1024,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", async () => {
        const raw = Buffer.concat(chunks).toString("utf8");
        const to = session.envelope.rcptTo.map((r) => r.address);
        if (state.stall?.({ to })) return;
        const reply = state.respond?.({ to, n: n++ });
        if (reply) {
          const err = new Error(reply.message) as Error & { responseCode: number };
          err.responseCode = reply.code;
          return callback(err);
        }
        const parsed = await simpleParser(raw);
        const headers: Record<string, string> = {};
        for (const line of parsed.headerLines) headers[line.key] = line.line.slice(line.line.indexOf(":") + 1).trim();
        state.mails.push({
          from: session.envelope.mailFrom ? (session.envelope.mailFrom as { address: string }).address : "",
          to,
          raw,
          subject: parsed.subject ?? "",
          messageId: parsed.messageId ?? "",
          headers,
          text: parsed.text ?? "",
          html: typeof parsed.html === "string" ? parsed.html : "",
          receivedAt: Date.now(),
        });
        callback();
      });
    },
  });
  // A client that dies mid-session (a worker killed with SIGKILL) resets its connection; a real
  // server logs that and carries on, so must this one (an unlistened 'error' would throw).
  server.on("error", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.server.address() as { port: number };
  state.port = addr.port;
  state.url = `smtp://127.0.0.1:${addr.port}?starttls=off`;
  state.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return state;
}
