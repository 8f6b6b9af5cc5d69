/**
 * Third-party peers for the channel tests, on loopback, speaking the real protocols: the Telegram
 * Bot API, a generic SMS API and Twilio's Messages API, a Standard Webhooks receiver, and a canary
 * that must never be reached.
 */
import { verifyWebhook } from "../../src/net/webhook-signature.ts";

type Served = ReturnType<typeof Bun.serve>;

export interface TelegramPeer {
  url: string;
  token: string;
  sent: Array<Record<string, any>>;
  /** Replies queued per chat id: each send to that chat takes the next one (then 200 ok). */
  script: Map<string, Array<{ status: number; body: Record<string, unknown> }>>;
  stop(): void;
}

export function startTelegramPeer(token = "123456:TEST-token_abcdefghijklmnopqrstuv"): TelegramPeer {
  const peer: TelegramPeer = { url: "", token, sent: [], script: new Map(), stop: () => {} };
  let id = 1000;
  const server: Served = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      if (path !== `/bot${token}/sendMessage`) return Response.json({ ok: false, error_code: 404, description: "Not Found" }, { status: 404 });
      const body = (await req.json()) as Record<string, any>;
      const next = peer.script.get(String(body.chat_id))?.shift();
      if (next) return Response.json(next.body, { status: next.status });
      peer.sent.push(body);
      return Response.json({ ok: true, result: { message_id: ++id, chat: { id: body.chat_id }, text: body.text } });
    },
  });
  peer.url = `http://127.0.0.1:${server.port}`;
  peer.stop = () => server.stop(true);
  return peer;
}

export interface HttpCapture {
  url: string;
  requests: Array<{ path: string; headers: Headers; body: string }>;
  respond?: (req: { path: string; body: string; headers: Headers }) => Response | undefined;
  stop(): void;
}

/** Records every request; answers `respond`'s Response or 200 {"id": "..."}. */
export function startHttpCapture(hostname = "127.0.0.1"): HttpCapture {
  const cap: HttpCapture = { url: "", requests: [], stop: () => {} };
  let n = 0;
  const server: Served = Bun.serve({
    hostname,
    port: 0,
    async fetch(req) {
      const entry = { path: new URL(req.url).pathname, headers: req.headers, body: await req.text() };
      cap.requests.push(entry);
      return cap.respond?.(entry) ?? Response.json({ id: `msg-${++n}`, sid: `SM${String(++n).padStart(32, "0")}` }, { status: 201 });
    },
  });
  cap.url = `http://${hostname}:${server.port}`;
  cap.stop = () => server.stop(true);
  return cap;
}

export interface WebhookReceiver extends HttpCapture {
  verified: Array<{ id: string; body: any }>;
  rejected: string[];
}

/** A receiver that verifies each Standard Webhooks signature with `secret` and answers 401 when it fails. */
export function startWebhookReceiver(secret: string, hostname = "127.0.0.1"): WebhookReceiver {
  const cap = startHttpCapture(hostname) as WebhookReceiver;
  cap.verified = [];
  cap.rejected = [];
  cap.respond = (req) => {
    try {
      verifyWebhook(req.headers, req.body, secret);
    } catch (err) {
      cap.rejected.push(String(err));
      return new Response("bad signature", { status: 401 });
    }
    cap.verified.push({ id: req.headers.get("webhook-id")!, body: JSON.parse(req.body) });
    return new Response(null, { status: 204 });
  };
  return cap;
}
