/**
 * GraphQL over HTTP (POST /graphql) and graphql-ws subscriptions on /ws, driven by the graphql-ws
 * client library, against two gateways and a worker on the real services.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createClient, type Client } from "graphql-ws";
import { ADMIN_KEY, createCluster, type Cluster, type Node } from "./support/realtime.ts";
import { haveServices, waitFor } from "./support/services.ts";

describe.skipIf(!(await haveServices))("GraphQL: HTTP and graphql-ws", () => {
  let c: Cluster;
  const clients: Client[] = [];
  const gql = async (node: Node, auth: string | null, query: string, variables?: Record<string, unknown>) => {
    const headers: Record<string, string> = { "content-type": "application/json; charset=utf-8" };
    if (auth) headers.authorization = `Bearer ${auth}`;
    const r = await fetch(`${node.url}/graphql`, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
    return { status: r.status, body: (await r.json()) as { data?: any; errors?: any[] } };
  };
  const wsClient = (node: Node, authorization: string) => {
    const client = createClient({ url: node.ws, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${authorization}` }, retryAttempts: 0, lazy: true });
    clients.push(client);
    return client;
  };
  /** Starts a subscription; returns the values as they arrive and a way to end it. */
  const subscribeTo = (client: Client, query: string, variables?: Record<string, unknown>) => {
    const values: any[] = [];
    const errors: unknown[] = [];
    let completed = false;
    const dispose = client.subscribe({ query, variables }, { next: (v) => values.push(v), error: (e) => errors.push(e), complete: () => (completed = true) });
    return { values, errors, dispose, done: () => completed };
  };

  beforeAll(async () => {
    c = await createCluster();
  });
  afterAll(async () => {
    for (const cl of clients) await cl.dispose();
    await c?.close();
  });

  test("services: sendEvent, notification, templates, users — with the same validation and scopes as REST", async () => {
    const t = await gql(c.a, ADMIN_KEY, `mutation($input: JSON!) { upsertTemplate(key: "greet", input: $input) { key version name } }`, {
      input: { name: "Greet", variants: [{ channel: "in_app", title: "Hi {{ name }}", text: "Welcome, {{ name }}" }] },
    });
    expect(t.body.data.upsertTemplate).toEqual({ key: "greet", version: 1, name: "Greet" });
    const u = await gql(c.a, ADMIN_KEY, `mutation { upsertUser(id: "lena", input: {name: "Lena", locale: "en"}) { id name locale } }`);
    expect(u.body.data.upsertUser).toEqual({ id: "lena", name: "Lena", locale: "en" });
    const sent = await gql(c.b, ADMIN_KEY, `mutation($i: JSON!) { sendEvent(input: $i, idempotencyKey: "gql-1") { id status replayed } }`, {
      i: { event: "user.greeted", to: ["lena"], template: "greet", channels: ["in_app"] },
    });
    expect(sent.body.data.sendEvent).toMatchObject({ status: "accepted", replayed: false });
    const id = sent.body.data.sendEvent.id;
    const n = await waitFor(async () => {
      const r = await gql(c.a, ADMIN_KEY, `query($id: ID!) { notification(id: $id) { id status deliveries { channel status user_id } } }`, { id });
      return r.body.data.notification?.status === "delivered" ? r.body.data.notification : undefined;
    });
    expect(n.deliveries).toEqual([{ channel: "in_app", status: "sent", user_id: "lena" }]);
    const list = await gql(c.a, ADMIN_KEY, `{ notifications(first: 5, filter: {event: "user.greeted"}) { items { id } next_cursor } templates { key } template(key: "greet") { variants } }`);
    expect(list.body.data.notifications.items.map((x: any) => x.id)).toEqual([id]);
    expect(list.body.data.templates.map((x: any) => x.key)).toContain("greet");
    expect(list.body.data.template.variants[0].channel).toBe("in_app");
    const campaigns = await gql(c.a, ADMIN_KEY, `{ campaigns }`);
    expect(Array.isArray(campaigns.body.data.campaigns)).toBe(true);

    // Same validation as POST /events: the field at fault in extensions.details.
    const bad = await gql(c.a, ADMIN_KEY, `mutation { sendEvent(input: {event: "x", to: [], channels: ["pigeon"]}) { id } }`);
    expect(bad.body.errors![0].extensions.code).toBe("VALIDATION_FAILED");
    expect(bad.body.errors![0].extensions.details.map((d: any) => d.path)).toContain("to");
    const badTemplate = await gql(c.a, ADMIN_KEY, `mutation { upsertTemplate(key: "evil", input: {name: "E", variants: [{channel: "email", text: "{{ it.constructor.constructor(\\"return process\\")() }}"}]}) { key } }`);
    expect(badTemplate.body.errors![0].extensions.code).toBe("TEMPLATE_INVALID");
  });

  test("users: me { inbox unreadCount preferences }, markRead, markAllRead, setPreferences — only their own data", async () => {
    const [mia, ned] = await Promise.all([c.token("mia"), c.token("ned")]);
    for (const title of ["m1", "m2"]) {
      await c.post(c.a, "/api/v1/events", { event: "chat.message", to: [{ user_id: "mia" }], channels: ["in_app"], title });
    }
    const me = await waitFor(async () => {
      const r = await gql(c.b, mia, `{ me { id unreadCount inbox(first: 10) { items { id title read } next_cursor } preferences } }`);
      return r.body.data.me.unreadCount === 2 ? r.body.data.me : undefined;
    });
    expect(me.id).toBe("mia");
    expect(me.inbox.items.map((i: any) => i.title).sort()).toEqual(["m1", "m2"]);
    const itemId = me.inbox.items[0].id;

    // Ned sees none of it: his inbox, Mia's item id, Mia's directory entry.
    const nedMe = await gql(c.a, ned, `{ me { unreadCount inbox { items { id } } } }`);
    expect(nedMe.body.data.me).toEqual({ unreadCount: 0, inbox: { items: [] } });
    const steal = await gql(c.a, ned, `mutation($id: ID!) { markRead(id: $id) { id } }`, { id: itemId });
    expect(steal.body.errors![0].extensions.code).toBe("NOT_FOUND");
    expect((await gql(c.a, ned, `{ user(id: "mia") { id } }`)).body.data.user).toBeNull();
    expect((await gql(c.a, ned, `{ user(id: "ned") { id } }`)).body.data.user.id).toBe("ned");
    // Users cannot use service operations.
    const forbidden = await gql(c.a, ned, `mutation { sendEvent(input: {event: "x", to: ["mia"], channels: ["in_app"], title: "spoof"}) { id } }`);
    expect(forbidden.body.errors![0].extensions.code).toBe("FORBIDDEN");
    expect((await gql(c.a, ned, `{ notifications { items { id } } }`)).body.errors![0].extensions.code).toBe("FORBIDDEN");
    expect((await gql(c.a, null, `{ me { id } }`)).body.errors![0].extensions.code).toBe("UNAUTHENTICATED");
    expect((await gql(c.a, ADMIN_KEY, `{ me { id } }`)).body.errors![0].extensions.code).toBe("FORBIDDEN");

    const read = await gql(c.a, mia, `mutation($id: ID!) { markRead(id: $id) { id read } }`, { id: itemId });
    expect(read.body.data.markRead).toEqual({ id: itemId, read: true });
    expect((await gql(c.a, mia, `mutation { markAllRead { updated unread_count } }`)).body.data.markAllRead).toEqual({ updated: 1, unread_count: 0 });
    const prefs = await gql(c.a, mia, `mutation { setPreferences(input: {opt_outs: [{category: "marketing", channel: "email"}]}) }`);
    expect(prefs.body.errors).toBeUndefined();
    const after = await gql(c.a, mia, `{ me { preferences } }`);
    expect(JSON.stringify(after.body.data.me.preferences)).toContain("marketing");
    const badPrefs = await gql(c.a, mia, `mutation { setPreferences(input: {opt_outs: "all"}) }`);
    expect(badPrefs.body.errors![0].extensions.code).toBe("VALIDATION_FAILED");
  });

  test("depth and cost limits reject a query before it runs", async () => {
    const deep = await gql(c.a, ADMIN_KEY, `{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } }`);
    expect(deep.status).toBe(400);
    expect(deep.body.errors![0].extensions.code).toBe("QUERY_TOO_DEEP");
    const aliases = Array.from({ length: 5 }, (_, i) => `a${i}: notifications(first: 100) { items { id event status deliveries { id channel status attempts error } } }`).join(" ");
    const costly = await gql(c.a, ADMIN_KEY, `{ ${aliases} }`);
    expect(costly.status).toBe(400);
    expect(costly.body.errors![0].extensions.code).toBe("QUERY_TOO_COSTLY");
    const tooMany = await gql(c.a, ADMIN_KEY, `{ notifications(first: 101) { items { id } } }`);
    expect(tooMany.body.errors![0].extensions.code).toBe("VALIDATION_FAILED");
  });

  test("bad requests get 400 with a reason, never 500: a subscription over HTTP, malformed JSON, variables or query", async () => {
    const sub = await gql(c.a, ADMIN_KEY, `subscription { notificationStatus(id: "01a2124c-6bf4-7457-af7b-325b126f8296") { id } }`);
    expect(sub.status).toBe(400);
    expect(sub.body.errors![0].extensions.code).toBe("SUBSCRIPTION_OVER_HTTP");
    const post = (body: string) => fetch(`${c.a.url}/graphql`, { method: "POST", headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" }, body });
    const broken = await post(`{"query": "{ templates { key } }"`);
    expect(broken.status).toBe(400);
    expect(((await broken.json()) as any).errors[0].extensions.code).toBe("BAD_REQUEST");
    const vars = await post(JSON.stringify({ query: "{ templates { key } }", variables: "{not json" }));
    expect(vars.status).toBe(400);
    expect(((await vars.json()) as any).errors[0].message).toContain("variables");
    const arrayVars = await post(JSON.stringify({ query: "{ templates { key } }", variables: [1] }));
    expect(arrayVars.status).toBe(400);
    const syntax = await post(JSON.stringify({ query: "{ templates { " }));
    expect(syntax.status).toBe(400);
    expect(((await syntax.json()) as any).errors[0].extensions.code).toBe("GRAPHQL_PARSE_FAILED");
    const nul = await gql(c.a, ADMIN_KEY, `mutation($e: String!) { sendEvent(input: { event: $e, to: ["u1"], channels: ["in_app"], title: "t", body: "b" }) { id } }`, { e: "a\u0000" });
    expect(nul.status).toBe(400);
    expect(nul.body.errors![0].extensions.code).toBe("VALIDATION_FAILED");
    const ok = await post(JSON.stringify({ query: "query Q($n: Int) { notifications(first: $n) { items { id } } }", variables: JSON.stringify({ n: 1 }) }));
    expect(ok.status).toBe(200);
  });

  test("graphql-ws: inbox subscription on gateway B gets the caller's new messages posted to A, never another user's", async () => {
    const [olga, pete] = await Promise.all([c.token("olga"), c.token("pete")]);
    const olgaSub = subscribeTo(wsClient(c.b, olga), `subscription { inbox { id title body read } }`);
    const peteSub = subscribeTo(wsClient(c.a, pete), `subscription { inbox { id title } }`);
    // Subscriptions are live once the hub has a listener for the user; probe by sending until one arrives.
    await waitFor(async () => {
      await c.post(c.a, "/api/v1/events", { event: "probe", to: [{ user_id: "olga" }, { user_id: "pete" }], channels: ["in_app"], title: "probe" });
      return olgaSub.values.length > 0 && peteSub.values.length > 0;
    }, { intervalMs: 300, what: "both subscriptions live" });
    const olgaBefore = olgaSub.values.length;
    const peteBefore = peteSub.values.length;
    await c.post(c.a, "/api/v1/events", { event: "chat.message", to: [{ user_id: "olga" }], channels: ["in_app"], title: "for olga", body: "secret" });
    await c.post(c.a, "/api/v1/events", { event: "chat.message", to: [{ user_id: "pete" }], channels: ["in_app"], title: "for pete" });
    await waitFor(() => olgaSub.values.some((v) => v.data?.inbox?.title === "for olga"), { what: "olga's message" });
    await waitFor(() => peteSub.values.some((v) => v.data?.inbox?.title === "for pete"), { what: "pete's message" });
    expect(olgaSub.values.slice(olgaBefore).map((v) => v.data.inbox.title).filter((t) => t !== "probe")).toEqual(["for olga"]);
    expect(olgaSub.values.find((v) => v.data.inbox.title === "for olga").data.inbox).toMatchObject({ body: "secret", read: false });
    expect(peteSub.values.slice(peteBefore).map((v) => v.data.inbox.title).filter((t) => t !== "probe")).toEqual(["for pete"]);
    olgaSub.dispose();
    peteSub.dispose();
  });

  test("graphql-ws: notificationStatus follows a notification to its final state (API key); refused to users and bad tokens", async () => {
    const client = wsClient(c.a, ADMIN_KEY);
    const r = await c.post(c.b, "/api/v1/events", { event: "status.test", to: [{ user_id: "quinn" }], channels: ["in_app"], title: "s" });
    const { id } = (await r.json()) as { id: string };
    const sub = subscribeTo(client, `subscription($id: ID!) { notificationStatus(id: $id) { id status deliveries { status } } }`, { id });
    await waitFor(() => sub.done(), { what: "subscription complete" });
    expect(sub.errors).toEqual([]);
    const last = sub.values[sub.values.length - 1].data.notificationStatus;
    expect(last).toMatchObject({ id, status: "delivered", deliveries: [{ status: "sent" }] });

    const user = subscribeTo(wsClient(c.a, await c.token("quinn")), `subscription($id: ID!) { notificationStatus(id: $id) { status } }`, { id });
    await waitFor(() => user.errors.length > 0 || user.done(), { what: "refusal" });
    expect(JSON.stringify(user.errors)).toContain("FORBIDDEN");

    const bad = subscribeTo(wsClient(c.a, "not-a-valid-token"), `subscription { inbox { id } }`);
    await waitFor(() => bad.errors.length > 0, { what: "closed for a bad token" });
    expect((bad.errors[0] as CloseEvent).code).toBe(4403);
  });

  test("graphql-ws: queries and mutations work over the socket too, with the same codes", async () => {
    const rosa = await c.token("rosa");
    const client = wsClient(c.b, rosa);
    const q = subscribeTo(client, `{ me { id unreadCount } }`);
    await waitFor(() => q.done());
    expect(q.values[0].data.me).toEqual({ id: "rosa", unreadCount: 0 });
    const m = subscribeTo(client, `mutation { markRead(id: "00000000-0000-7000-8000-000000000000") { id } }`);
    await waitFor(() => m.done() || m.errors.length > 0);
    expect(m.values[0].errors[0].extensions.code).toBe("NOT_FOUND");
  });
});
