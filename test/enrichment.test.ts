/**
 * Enrichment (issue 5): an event rule names data sources (the movies service); the worker fetches
 * them before rendering so "new episode" mails can say {{ movie.title }}. A failing source makes the
 * event retry instead of sending a half-empty message; the SSRF guard's allow-list applies.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { channelHttpExtension } from "../src/roles/channel-features.ts";
import { enrichmentHooks } from "../src/roles/grpc-backend.ts";
import { createHarness, type Harness } from "./support/harness.ts";
import { haveServices, waitFor } from "./support/services.ts";

describe.skipIf(!(await haveServices))("enrichment from the product's other services", () => {
  let h: Harness;
  let movies: ReturnType<typeof Bun.serve>;
  let failing = false;
  let hits = 0;
  beforeAll(async () => {
    movies = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch(req) {
        hits++;
        const id = new URL(req.url).pathname.split("/").pop();
        if (failing) return new Response("down", { status: 503 });
        return Response.json({ id, title: `Movie ${id}`, season: 2 });
      },
    });
    h = await createHarness({
      env: { NOTIFY_ENRICH_ALLOW: "127.0.0.1", NOTIFY_ENRICH_BASE_URL: `http://127.0.0.1:${movies.port}` },
      ext: () => channelHttpExtension(),
      workerOptions: (app) => ({ hooks: enrichmentHooks(app) }),
    });
    const t = { name: "Episode", variants: [{ channel: "email", subject: "New: {{ movie.title }} S{{ movie.season }}", text: "{{ name }}, {{ movie.title }} is out" }] };
    expect((await h.request("/api/v1/templates/new-episode", { method: "PUT", json: t })).status).toBe(201);
    const rule = { template: "new-episode", channels: ["email"], category: "content", data_sources: [{ name: "movie", url: "{base}/movies/{data.movie_id}" }] };
    expect((await h.request("/api/v1/rules/episode.released", { method: "PUT", json: rule })).status).toBe(201);
  });
  afterAll(async () => {
    await h?.close();
    movies?.stop(true);
  });

  test("the template reads {{ movie.title }} fetched from the movies service", async () => {
    const res = await h.request("/api/v1/events", { method: "POST", json: { event: "episode.released", to: [{ user_id: "f1", email: "f1@example.com", name: "Fan" }], data: { movie_id: "42" } } });
    expect(res.status).toBe(202);
    const mail = await waitFor(() => h.smtp.mails.find((m) => m.to.includes("f1@example.com")));
    expect(mail.subject).toBe("New: Movie 42 S2");
    expect(mail.text).toContain("Fan, Movie 42 is out");
  });

  test("a failing source retries the event (nothing half-empty is sent), then it goes out once", async () => {
    failing = true;
    const before = hits;
    const res = await h.request("/api/v1/events", { method: "POST", json: { event: "episode.released", to: [{ user_id: "f2", email: "f2@example.com", name: "Fan2" }], data: { movie_id: "77" } } });
    const { id } = (await res.json()) as { id: string };
    await waitFor(() => hits >= before + 2, { what: "the source asked again (retry)", timeoutMs: 20_000 });
    expect(h.smtp.mails.some((m) => m.to.includes("f2@example.com"))).toBe(false);
    failing = false;
    const mail = await waitFor(() => h.smtp.mails.find((m) => m.to.includes("f2@example.com")), { timeoutMs: 30_000 });
    expect(mail.subject).toBe("New: Movie 77 S2");
    await waitFor(async () => ((await (await h.request(`/api/v1/notifications/${id}`)).json()) as { status: string }).status === "delivered");
    expect(h.smtp.mails.filter((m) => m.to.includes("f2@example.com"))).toHaveLength(1);
  }, 60_000);
});
