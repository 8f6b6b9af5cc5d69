/**
 * An SMTP sink in its own process (so it does not share an event loop with the load generator).
 * Prints "ready <port>" once listening, then one line per message: "<receipt ms> <subject>".
 */
import { SMTPServer } from "smtp-server";

const out: string[] = [];
const flush = () => {
  if (out.length) process.stdout.write(out.splice(0).join(""));
};
setInterval(flush, 50);

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ["STARTTLS"],
  logger: false,
  onData(stream, _session, callback) {
    let head = "";
    stream.on("data", (c: Buffer) => {
      if (head.length < 4096) head += c.toString("latin1");
    });
    stream.on("end", () => {
      const subject = /^Subject: (.*)$/im.exec(head)?.[1]?.trim() ?? "";
      out.push(`${Date.now()} ${subject}\n`);
      callback();
    });
  },
});
server.on("error", () => {}); // clients killed mid-session reset their connections
server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  process.stdout.write(`ready ${(server.server.address() as { port: number }).port}\n`);
});
process.on("SIGTERM", () => {
  flush();
  process.exit(0);
});
