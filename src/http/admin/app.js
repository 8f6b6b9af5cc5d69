// The admin panel: a client of the REST API (/api/v1) and nothing more. Every read and write goes
// through the same routes, scopes, validation and audit trail as any other API caller; the key is
// kept in sessionStorage (this tab only). The DOM is built with textContent, never from HTML
// strings, so nothing a template or campaign holds can run here; an HTML preview is shown in a
// sandboxed iframe without scripts.

const CHANNELS = ["email", "sms", "telegram", "webhook", "in_app"];
const KEY = "notify.admin.key";
const $ = (id) => document.getElementById(id);

/** h("tag", {attr: value, onclick: fn}, ...children): an element; strings become text nodes. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "value") el.value = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

class ApiError extends Error {
  constructor(status, body) {
    const e = body?.error ?? {};
    super(e.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = e.code;
    this.details = e.details ?? [];
  }
  /** The message and each field at fault, one per line. */
  explain() {
    return [`${this.code ?? "ERROR"}: ${this.message}`, ...this.details.map((d) => `  ${d.path}: ${d.message}`)].join("\n");
  }
}

async function api(method, path, body) {
  const res = await fetch(`/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${sessionStorage.getItem(KEY) ?? ""}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : undefined;
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

/** A textarea's non-empty lines, trimmed. */
const lines = (text) => text.split("\n").map((l) => l.trim()).filter(Boolean);

/** Parses a JSON textarea; an empty one is {}. */
function jsonField(text, name) {
  if (!text.trim()) return {};
  try {
    const v = JSON.parse(text);
    if (v && typeof v === "object" && !Array.isArray(v)) return v;
  } catch {}
  throw new ApiError(400, { error: { code: "VALIDATION_FAILED", message: `${name} must be a JSON object`, details: [{ path: name, message: "not a JSON object" }] } });
}

function showError(target, err) {
  target.className = "error";
  target.textContent = err instanceof ApiError ? err.explain() : String(err?.message ?? err);
}

function showOk(target, text) {
  target.className = "ok";
  target.textContent = text;
}

/** Replaces what `container` shows with the error, in a `tag` element. */
function showErrorIn(container, err, tag = "p") {
  const el = h(tag);
  showError(el, err);
  container.replaceChildren(el);
}

/** A table with these column headings around `body`. */
function dataTable(id, headings, body) {
  return h("table", { id }, h("thead", {}, h("tr", {}, headings.map((t) => h("th", {}, t)))), body);
}

/** A list's rows, or one muted row saying it is empty. */
function fillRows(tbody, rows, columns, emptyText) {
  tbody.replaceChildren(...rows);
  if (rows.length === 0) tbody.append(h("tr", {}, h("td", { colspan: columns, class: "muted" }, emptyText)));
}

/** A form (a card) whose submit runs `action` instead of loading a page; a refusal is shown in `result`. */
function actionForm(id, result, action, ...children) {
  return h("form", {
    class: "card",
    id,
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        await action();
      } catch (err) {
        showError(result, err);
      }
    },
  }, ...children);
}

/** A button running `action`, then `after`; a refusal is shown in `status`. With `question`, only once the operator confirms it. */
function actionButton(label, status, action, after, question) {
  return h("button", {
    type: "button",
    onclick: async () => {
      if (question && !window.confirm(question)) return;
      try {
        await action();
        await after();
      } catch (err) {
        showError(status, err);
      }
    },
  }, label);
}

/**
 * A table filled a page at a time: `fetchPage(cursor)` answers `{items, next_cursor}` (cursor null
 * for the first page); the "More" button (`#<id>-more`) appends the next page. A refusal is shown
 * in `status`, a 403 as `forbidden` when given.
 */
function pagedTable({ id, headings, fetchPage, toRow, empty, status, forbidden }) {
  const body = h("tbody");
  const more = h("button", { type: "button", id: `${id}-more`, hidden: true }, "More");
  let cursor = null;
  const load = async (append) => {
    try {
      const p = await fetchPage(append ? cursor : null);
      cursor = p.next_cursor;
      more.hidden = !cursor;
      const rows = p.items.map(toRow);
      if (append) body.append(...rows);
      else fillRows(body, rows, headings.length, empty);
      status.className = "";
      status.textContent = "";
    } catch (err) {
      showError(status, err.status === 403 && forbidden ? new Error(forbidden) : err);
    }
  };
  more.addEventListener("click", () => load(true));
  return { el: h("div", {}, dataTable(id, headings, body), more), reload: () => load(false) };
}

/** `?limit=…&cursor=…` plus these filters (empty ones left out). */
function query(limit, cursor, filters = {}) {
  const q = new URLSearchParams({ limit: String(limit) });
  for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
  if (cursor) q.set("cursor", cursor);
  return q;
}

/** One checkbox per value in a fieldset (each marked data-<attr>); `value()` is the checked values. */
function checkboxes(legend, values, attr, checked = () => false) {
  const boxes = values.map((x) => h("input", { type: "checkbox", value: x, [`data-${attr}`]: x, checked: checked(x) }));
  return {
    el: h("fieldset", {}, h("legend", {}, legend), boxes.map((b) => h("label", {}, b, " ", b.value))),
    value: () => boxes.filter((b) => b.checked).map((b) => b.value),
  };
}

const channelPicker = (checked) => checkboxes("Channels", CHANNELS, "channel", checked);

// ---------------------------------------------------------------- sign in

async function signIn(key) {
  sessionStorage.setItem(KEY, key);
  try {
    await api("GET", "/templates?limit=1");
  } catch (err) {
    sessionStorage.removeItem(KEY);
    throw err.status === 401 ? new Error("This key is not valid.") : err.status === 403 ? new Error("This key lacks the templates:write scope.") : err;
  }
}

function renderLogin() {
  $("nav").hidden = true;
  const main = $("main");
  const error = h("p", { class: "error", id: "login-error", role: "alert" });
  const input = h("input", { id: "key", type: "password", autocomplete: "off", required: true });
  main.replaceChildren(
    h("section", { id: "login" },
      h("h2", {}, "Sign in"),
      h("p", {}, "Paste an API key with the templates:write and campaigns:write scopes (or the admin key). It is kept in this tab only."),
      h("form", {
        id: "login-form",
        onsubmit: async (e) => {
          e.preventDefault();
          try {
            await signIn(input.value.trim());
            location.hash = "#templates";
            route();
          } catch (err) {
            showError(error, err);
          }
        },
      }, h("label", {}, "API key ", input), h("button", { type: "submit" }, "Sign in")),
      error,
    ),
  );
}

// ---------------------------------------------------------------- templates

function variantEditor(v = { channel: "email", text: "" }) {
  const field = (name, label, value, multiline) =>
    h("label", {}, label, multiline ? h("textarea", { "data-field": name, value: value ?? "" }) : h("input", { type: "text", "data-field": name, value: value ?? "" }));
  const box = h("fieldset", { class: "variant" },
    h("legend", {}, "Variant"),
    h("div", { class: "row" },
      h("label", {}, "Channel ", h("select", { "data-field": "channel" }, CHANNELS.map((c) => h("option", { value: c, selected: c === v.channel }, c)))),
      field("locale", "Locale (optional) ", v.locale),
    ),
    field("subject", "Subject (e-mail) ", v.subject),
    field("title", "Title (in-app, push) ", v.title),
    field("text", "Text ", v.text, true),
    field("html", "HTML (e-mail, optional) ", v.html, true),
    h("button", { type: "button", onclick: () => box.remove() }, "Remove variant"),
  );
  return box;
}

function readVariants(container) {
  return [...container.querySelectorAll("fieldset.variant")].map((box) => {
    const out = {};
    for (const el of box.querySelectorAll("[data-field]")) {
      const value = el.value;
      if (value !== "" || el.dataset.field === "text") out[el.dataset.field] = value;
    }
    return out;
  });
}

async function renderTemplates() {
  const main = $("main");
  const status = h("p", { role: "status" });
  const editor = h("div");
  // After a save only the list is reloaded, so the editor stays as it is.
  const table = pagedTable({
    id: "templates-table",
    headings: ["Key", "Name", "Channels", "Version", ""],
    fetchPage: (cursor) => api("GET", `/templates?${query(200, cursor)}`),
    toRow: (t) =>
      h("tr", { "data-key": t.key },
        h("td", {}, t.key),
        h("td", {}, t.name),
        h("td", {}, [...new Set(t.variants.map((v) => v.channel))].join(", ")),
        h("td", {}, t.version ?? ""),
        h("td", {}, h("button", { type: "button", onclick: () => editTemplate(editor, table.reload, t) }, "Edit")),
      ),
    empty: "No templates yet.",
    status,
  });
  main.replaceChildren(
    h("h2", {}, "Templates"),
    table.el,
    h("button", { type: "button", id: "new-template", onclick: () => editTemplate(editor, table.reload) }, "New template"),
    status,
    editor,
  );
  await table.reload();
}

function editTemplate(editor, refresh, t) {
  const variants = h("div", { id: "variants" }, (t?.variants ?? [{ channel: "email", text: "" }]).map(variantEditor));
  const key = h("input", { type: "text", id: "template-key", value: t?.key ?? "", required: true, readonly: t ? true : undefined });
  const name = h("input", { type: "text", id: "template-name", value: t?.name ?? "", required: true });
  const category = h("input", { type: "text", id: "template-category", value: t?.category ?? "" });
  const result = h("p", { id: "template-result", role: "status" });
  const previewChannel = h("select", { id: "preview-channel" }, CHANNELS.map((c) => h("option", { value: c }, c)));
  const previewData = h("textarea", { id: "preview-data", value: '{"name": "Ada"}' });
  const preview = h("div", { id: "preview" });
  editor.replaceChildren(
    actionForm("template-form", result, async () => {
      const body = { name: name.value, variants: readVariants(variants) };
      if (category.value) body.category = category.value;
      const saved = await api("PUT", `/templates/${encodeURIComponent(key.value)}`, body);
      showOk(result, `Saved ${saved.key} (version ${saved.version}).`);
      key.readOnly = true;
      await refresh();
    },
      h("h3", {}, t ? `Edit ${t.key}` : "New template"),
      h("div", { class: "row" }, h("label", {}, "Key ", key), h("label", {}, "Name ", name), h("label", {}, "Category (optional) ", category)),
      variants,
      h("button", { type: "button", onclick: () => variants.append(variantEditor()) }, "Add variant"),
      " ",
      h("button", { type: "submit", id: "save-template" }, "Save"),
      result,
    ),
    h("div", { class: "card" },
      h("h3", {}, "Preview (saved version)"),
      h("div", { class: "row" }, h("label", {}, "Channel ", previewChannel), h("label", {}, "Data (JSON) ", previewData)),
      h("button", {
        type: "button",
        id: "preview-button",
        onclick: async () => {
          try {
            const r = await api("POST", `/templates/${encodeURIComponent(key.value)}/preview`, { channel: previewChannel.value, data: jsonField(previewData.value, "data") });
            preview.replaceChildren(
              r.subject !== undefined ? h("p", {}, h("strong", {}, "Subject: "), r.subject) : "",
              r.title !== undefined ? h("p", {}, h("strong", {}, "Title: "), r.title) : "",
              h("pre", { id: "preview-text" }, r.text ?? ""),
              // No allow-scripts: the message's HTML is shown, never run.
              r.html ? h("iframe", { sandbox: "", title: "HTML preview", srcdoc: r.html }) : "",
            );
          } catch (err) {
            showErrorIn(preview, err);
          }
        },
      }, "Preview"),
      preview,
    ),
  );
}

// ---------------------------------------------------------------- campaigns

function describeSchedule(s) {
  if (s.cron) return `cron ${s.cron} (${s.timezone ?? "UTC"})${s.until ? ` until ${s.until}` : ""}`;
  if (s.at) return `once at ${s.at}`;
  return "now";
}

async function renderCampaigns() {
  const main = $("main");
  const status = h("p", { role: "status" });
  const form = h("div");
  const table = pagedTable({
    id: "campaigns-table",
    headings: ["Name", "Status", "Template", "Schedule", "Next run", ""],
    fetchPage: (cursor) => api("GET", `/campaigns?${query(100, cursor)}`),
    toRow: (c) => {
      const act = (label, verb, question) => actionButton(label, status, () => api("POST", `/campaigns/${c.id}/${verb}`), table.reload, question);
      const actions = [];
      if (c.status === "active") actions.push(act("Pause", "pause"));
      if (c.status === "paused") actions.push(act("Resume", "resume"));
      if (c.status === "active" || c.status === "paused") {
        actions.push(act("Cancel", "cancel", `Cancel the campaign "${c.name}"? Deliveries not yet sent are skipped; this cannot be undone.`));
      }
      return h("tr", { "data-id": c.id },
        h("td", {}, c.name),
        h("td", { class: "status" }, c.status),
        h("td", {}, c.template),
        h("td", {}, describeSchedule(c.schedule)),
        h("td", {}, c.next_run?.at ?? "—"),
        h("td", {}, actions),
      );
    },
    empty: "No campaigns yet.",
    status,
  });
  main.replaceChildren(h("h2", {}, "Campaigns"), table.el, status, form);
  await table.reload();
  try {
    form.replaceChildren(await campaignForm(table.reload));
  } catch (err) {
    showError(status, err);
  }
}

async function campaignForm(refresh) {
  const { items: templates } = await api("GET", "/templates?limit=200");
  const name = h("input", { type: "text", id: "campaign-name", required: true });
  const template = h("select", { id: "campaign-template" }, templates.map((t) => h("option", { value: t.key }, `${t.key} — ${t.name}`)));
  const channels = channelPicker((c) => c === "email");
  const audienceKind = h("select", { id: "audience-kind" }, h("option", { value: "all" }, "All users"), h("option", { value: "user_ids" }, "These user ids"), h("option", { value: "where" }, "Users whose attributes match"));
  const audienceValue = h("textarea", { id: "audience-value", placeholder: "user ids, one per line — or attribute=value lines" });
  const when = h("select", { id: "schedule-kind" }, h("option", { value: "now" }, "Now"), h("option", { value: "at" }, "Once, at"), h("option", { value: "cron" }, "Recurring (cron)"));
  const at = h("input", { type: "datetime-local", id: "schedule-at" });
  const cron = h("input", { type: "text", id: "schedule-cron", placeholder: "0 9 * * MON" });
  const timezone = h("input", { type: "text", id: "schedule-timezone", value: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC" });
  const data = h("textarea", { id: "campaign-data", value: "{}" });
  const result = h("p", { id: "campaign-result", role: "status" });
  const next = h("ul", { id: "schedule-next" });

  const audience = () => {
    if (audienceKind.value === "all") return { all: true };
    if (audienceKind.value === "user_ids") return { user_ids: lines(audienceValue.value) };
    return { where: Object.fromEntries(lines(audienceValue.value).map((l) => [l.slice(0, l.indexOf("=")).trim(), l.slice(l.indexOf("=") + 1).trim()])) };
  };
  const schedule = () => {
    if (when.value === "now") return { now: true };
    if (when.value === "at") return { at: at.value ? new Date(at.value).toISOString() : "" };
    return { cron: cron.value, timezone: timezone.value };
  };

  return actionForm("campaign-form", result, async () => {
    const created = await api("POST", "/campaigns", {
      name: name.value,
      template: template.value,
      channels: channels.value(),
      audience: audience(),
      schedule: schedule(),
      data: jsonField(data.value, "data"),
    });
    showOk(result, `Created ${created.name} (${created.status}).`);
    await refresh();
  },
    h("h3", {}, "New campaign"),
    h("div", { class: "row" }, h("label", {}, "Name ", name), h("label", {}, "Template ", template)),
    channels.el,
    h("div", { class: "row" }, h("label", {}, "Audience ", audienceKind), h("label", {}, "Ids or attribute=value ", audienceValue)),
    h("div", { class: "row" }, h("label", {}, "When ", when), h("label", {}, "At (local time) ", at), h("label", {}, "Cron ", cron), h("label", {}, "Time zone ", timezone)),
    h("button", {
      type: "button",
      id: "preview-schedule",
      onclick: async () => {
        try {
          const r = await api("POST", "/campaigns/preview-schedule", { schedule: schedule(), count: 5 });
          next.replaceChildren(...r.items.map((o) => h("li", {}, `${o.at} (${o.slot})`)));
        } catch (err) {
          showErrorIn(next, err, "li");
        }
      },
    }, "Show next occurrences"),
    next,
    h("label", {}, "Data for the template (JSON) ", data),
    h("button", { type: "submit", id: "create-campaign" }, "Create campaign"),
    result,
  );
}

// ---------------------------------------------------------------- event rules

const PRIORITIES = ["low", "normal", "high", "critical"];

async function renderRules() {
  const main = $("main");
  const status = h("p", { role: "status" });
  const editor = h("div");
  const { items: templates } = await api("GET", "/templates?limit=200");
  const table = pagedTable({
    id: "rules-table",
    headings: ["Event", "Template", "Channels", "Priority", ""],
    fetchPage: (cursor) => api("GET", `/rules?${query(200, cursor)}`),
    toRow: (r) =>
      h("tr", { "data-event": r.event },
        h("td", {}, r.event),
        h("td", {}, r.template ?? "—"),
        h("td", {}, r.channels.join(", ")),
        h("td", {}, r.priority ?? "normal"),
        h("td", {},
          h("button", { type: "button", onclick: () => editRule(r) }, "Edit"),
          " ",
          actionButton("Delete", status, () => api("DELETE", `/rules/${encodeURIComponent(r.event)}`), table.reload, `Delete the rule for ${r.event}?`),
        ),
      ),
    empty: "No event rules yet.",
    status,
  });
  const editRule = (r) => {
    const event = h("input", { type: "text", id: "rule-event", value: r?.event ?? "", required: true, readonly: r ? true : undefined, placeholder: "user.registered" });
    const template = h("select", { id: "rule-template" }, h("option", { value: "" }, "(none: producers give title/body)"), templates.map((t) => h("option", { value: t.key, selected: t.key === r?.template }, t.key)));
    const channels = channelPicker((c) => (r ? r.channels.includes(c) : c === "email"));
    const priority = h("select", { id: "rule-priority" }, PRIORITIES.map((p) => h("option", { value: p, selected: p === (r?.priority ?? "normal") }, p)));
    const category = h("input", { type: "text", id: "rule-category", value: r?.category ?? "" });
    const webhook = h("input", { type: "text", id: "rule-webhook", value: r?.webhook_url ?? "", placeholder: "https://… (webhook channel)" });
    const sources = h("textarea", {
      id: "rule-sources",
      value: (r?.data_sources ?? []).map((d) => `${d.name} ${d.url}`).join("\n"),
      placeholder: "movie {base}/movies/{data.movie_id}",
    });
    const result = h("p", { id: "rule-result", role: "status" });
    editor.replaceChildren(
      actionForm("rule-form", result, async () => {
        const body = { channels: channels.value(), priority: priority.value };
        if (template.value) body.template = template.value;
        if (category.value) body.category = category.value;
        if (webhook.value) body.webhook_url = webhook.value;
        body.data_sources = lines(sources.value).map((l) => {
          const at = l.search(/\s/);
          return at < 0 ? { name: l, url: "" } : { name: l.slice(0, at), url: l.slice(at).trim() };
        });
        const saved = await api("PUT", `/rules/${encodeURIComponent(event.value)}`, body);
        showOk(result, `Saved the rule for ${saved.event}.`);
        event.readOnly = true;
        await table.reload();
      },
        h("h3", {}, r ? `Rule for ${r.event}` : "New event rule"),
        h("div", { class: "row" }, h("label", {}, "Event ", event), h("label", {}, "Template ", template), h("label", {}, "Priority ", priority)),
        channels.el,
        h("div", { class: "row" }, h("label", {}, "Category (optional) ", category), h("label", {}, "Webhook URL (optional) ", webhook)),
        h("label", {}, "Data sources, one per line: a name, then the URL it is fetched from before rendering (the template reads {{ name.field }}; {base} is NOTIFY_ENRICH_BASE_URL, {data.x} a field of the event) ", sources),
        h("button", { type: "submit", id: "save-rule" }, "Save rule"),
        result,
      ),
    );
  };
  main.replaceChildren(
    h("h2", {}, "Event rules"),
    h("p", { class: "muted" }, "What an event means when its producer only names it: which template, on which channels."),
    table.el,
    h("button", { type: "button", id: "new-rule", onclick: () => editRule() }, "New rule"),
    status,
    editor,
  );
  await table.reload();
}

// ---------------------------------------------------------------- audit log

async function renderAudit() {
  const main = $("main");
  const status = h("p", { role: "status" });
  const filters = { action: h("input", { type: "text", id: "audit-action", placeholder: "template.put" }), actor: h("input", { type: "text", id: "audit-actor", placeholder: "api_key:…" }), target: h("input", { type: "text", id: "audit-target", placeholder: "template:welcome" }) };
  const table = pagedTable({
    id: "audit-table",
    headings: ["Time", "Actor", "Action", "Target", "Outcome"],
    fetchPage: (cursor) => api("GET", `/audit?${query(50, cursor, Object.fromEntries(Object.entries(filters).map(([k, el]) => [k, el.value.trim()])))}`),
    toRow: (r) =>
      h("tr", { "data-action": r.action },
        h("td", {}, r.time),
        h("td", {}, `${r.actor.type}:${r.actor.id}${r.actor.name ? ` (${r.actor.name})` : ""}`),
        h("td", { class: "action" }, r.action),
        h("td", {}, `${r.target.type}:${r.target.id}`),
        h("td", {}, r.outcome),
      ),
    empty: "No records.",
    status,
    forbidden: "This key lacks the audit:read scope.",
  });
  main.replaceChildren(
    h("h2", {}, "Audit log"),
    actionForm("audit-filter", status, table.reload,
      h("div", { class: "row" }, h("label", {}, "Action ", filters.action), h("label", {}, "Actor ", filters.actor), h("label", {}, "Target ", filters.target)),
      h("button", { type: "submit", id: "audit-search" }, "Search"),
    ),
    status,
    table.el,
  );
  await table.reload();
}

// ---------------------------------------------------------------- messages (notifications)

const NOTIFICATION_STATUSES = ["scheduled", "accepted", "processing", "delivered", "partially_delivered", "failed", "cancelled"];

async function renderMessages() {
  const main = $("main");
  const status = h("p", { role: "status" });
  const detail = h("div", { id: "message-detail" });
  const statusFilter = h("select", { id: "messages-status" }, h("option", { value: "" }, "any"), NOTIFICATION_STATUSES.map((st) => h("option", { value: st }, st)));
  const eventFilter = h("input", { type: "text", id: "messages-event", placeholder: "user.registered" });
  const byId = h("input", { type: "text", id: "message-id", placeholder: "notification id" });
  const table = pagedTable({
    id: "messages-table",
    headings: ["Created", "Event", "Status", "Id", ""],
    fetchPage: (cursor) => api("GET", `/notifications?${query(25, cursor, { status: statusFilter.value, event: eventFilter.value.trim() })}`),
    toRow: (n) =>
      h("tr", { "data-id": n.id },
        h("td", {}, n.created_at),
        h("td", {}, n.event),
        h("td", { class: "status" }, n.status),
        h("td", { class: "mono" }, n.id),
        h("td", {}, h("button", { type: "button", onclick: () => showMessage(detail, n.id, table.reload) }, "Open")),
      ),
    empty: "No notifications.",
    status,
    forbidden: "This key lacks the notifications:read scope.",
  });
  main.replaceChildren(
    h("h2", {}, "Messages"),
    h("p", { class: "muted" }, "Notifications, newest first, and what became of each delivery."),
    actionForm("messages-filter", status, table.reload,
      h("div", { class: "row" }, h("label", {}, "Status ", statusFilter), h("label", {}, "Event ", eventFilter)),
      h("button", { type: "submit", id: "messages-search" }, "Search"),
    ),
    actionForm("message-open", status, () => showMessage(detail, byId.value.trim(), table.reload),
      h("label", {}, "Open by id ", byId),
      h("button", { type: "submit" }, "Open"),
    ),
    status,
    table.el,
    detail,
  );
  await table.reload();
}

/** One notification with its deliveries; one not sent yet can be cancelled. */
async function showMessage(detail, id, refreshList) {
  try {
    const n = await api("GET", `/notifications/${encodeURIComponent(id)}`);
    const result = h("p", { id: "message-result", role: "status" });
    const cancellable = n.status === "scheduled" || n.status === "accepted";
    const deliveries = h("tbody");
    fillRows(
      deliveries,
      n.deliveries.map((d) =>
        h("tr", { "data-channel": d.channel },
          h("td", {}, d.channel),
          h("td", {}, d.recipient ?? "—"),
          h("td", { class: "status" }, d.status),
          h("td", {}, String(d.attempts)),
          h("td", {}, d.error ?? ""),
          h("td", {}, d.sent_at ?? ""),
        ),
      ),
      6,
      "No deliveries yet.",
    );
    detail.replaceChildren(
      h("div", { class: "card", "data-id": n.id },
        h("h3", {}, `${n.event} · `, h("span", { class: "status" }, n.status)),
        h("p", { class: "muted" }, `${n.id}, created ${n.created_at}${n.send_at ? `, to send at ${n.send_at}` : ""}`),
        dataTable("deliveries-table", ["Channel", "Recipient", "Status", "Attempts", "Error", "Sent"], deliveries),
        cancellable
          ? actionButton("Cancel", result, () => api("DELETE", `/notifications/${encodeURIComponent(n.id)}`), async () => {
              await showMessage(detail, n.id, refreshList);
              await refreshList();
            }, "Cancel this notification? Nothing more is sent for it.")
          : "",
        result,
      ),
    );
  } catch (err) {
    showErrorIn(detail, err);
  }
}

// ---------------------------------------------------------------- users

const USER_FIELDS = [
  ["email", "E-mail"],
  ["phone", "Phone (E.164)"],
  ["name", "Name"],
  ["locale", "Locale"],
  ["timezone", "Time zone"],
  ["telegram_chat_id", "Telegram chat id"],
];

async function renderUsers() {
  const main = $("main");
  const status = h("p", { role: "status" });
  const editor = h("div");
  const table = pagedTable({
    id: "users-table",
    headings: ["Id", "Name", "E-mail", "Phone", "Locale", "Time zone", ""],
    fetchPage: (cursor) => api("GET", `/users?${query(50, cursor)}`),
    toRow: (u) =>
      h("tr", { "data-id": u.id },
        h("td", {}, u.id),
        h("td", {}, u.name ?? ""),
        h("td", {}, u.email ?? ""),
        h("td", {}, u.phone ?? ""),
        h("td", {}, u.locale ?? ""),
        h("td", {}, u.timezone ?? ""),
        h("td", {},
          h("button", { type: "button", onclick: () => editUser(editor, table.reload, u) }, "Edit"),
          " ",
          actionButton("Delete", status, () => api("DELETE", `/users/${encodeURIComponent(u.id)}`), table.reload, `Delete the user ${u.id}?`),
        ),
      ),
    empty: "No users yet.",
    status,
    forbidden: "This key lacks the users:write scope.",
  });
  main.replaceChildren(
    h("h2", {}, "Users"),
    h("p", { class: "muted" }, "The recipient directory events name users from."),
    table.el,
    h("button", { type: "button", id: "new-user", onclick: () => editUser(editor, table.reload) }, "New user"),
    status,
    editor,
  );
  await table.reload();
}

/** A user's preferences: opt-outs as "category:channel" lines ("*" for any), quiet hours. */
async function preferencesCard(userId) {
  const p = await api("GET", `/users/${encodeURIComponent(userId)}/preferences`);
  const optOuts = h("textarea", { id: "prefs-opt-outs", value: p.opt_outs.map((o) => `${o.category}:${o.channel}`).join("\n"), placeholder: "marketing:email\n*:sms" });
  const start = h("input", { type: "text", id: "prefs-quiet-start", value: p.quiet_hours?.start ?? "", placeholder: "22:00" });
  const end = h("input", { type: "text", id: "prefs-quiet-end", value: p.quiet_hours?.end ?? "", placeholder: "07:00" });
  const timezone = h("input", { type: "text", id: "prefs-quiet-timezone", value: p.quiet_hours?.timezone ?? "", placeholder: "the user's time zone" });
  const result = h("p", { id: "prefs-result", role: "status" });
  return actionForm("prefs-form", result, async () => {
    const body = {
      opt_outs: lines(optOuts.value).map((l) => {
        const at = l.lastIndexOf(":");
        return at < 0 ? { category: l, channel: "*" } : { category: l.slice(0, at).trim(), channel: l.slice(at + 1).trim() };
      }),
      quiet_hours: start.value.trim() || end.value.trim() ? { start: start.value.trim(), end: end.value.trim(), ...(timezone.value.trim() ? { timezone: timezone.value.trim() } : {}) } : null,
    };
    await api("PUT", `/users/${encodeURIComponent(userId)}/preferences`, body);
    showOk(result, `Saved the preferences of ${userId}.`);
  },
    h("h3", {}, `Preferences of ${userId}`),
    h("label", {}, "Opted out of, one per line: category:channel (* for any; a category alone means every channel) ", optOuts),
    h("div", { class: "row" }, h("label", {}, "Quiet hours from ", start), h("label", {}, "until ", end), h("label", {}, "Time zone ", timezone)),
    h("button", { type: "submit", id: "save-prefs" }, "Save preferences"),
    result,
  );
}

function editUser(editor, refresh, u) {
  const id = h("input", { type: "text", id: "user-id", value: u?.id ?? "", required: true, readonly: u ? true : undefined });
  const fields = Object.fromEntries(USER_FIELDS.map(([k]) => [k, h("input", { type: "text", id: `user-${k}`, value: u?.[k] ?? "" })]));
  const attributes = h("textarea", { id: "user-attributes", value: JSON.stringify(u?.attributes ?? {}, null, 2) });
  const result = h("p", { id: "user-result", role: "status" });
  editor.replaceChildren(
    actionForm("user-form", result, async () => {
      // PUT replaces the entry: an emptied field is cleared.
      const body = { attributes: jsonField(attributes.value, "attributes") };
      for (const [k, el] of Object.entries(fields)) body[k] = el.value.trim() || null;
      const saved = await api("PUT", `/users/${encodeURIComponent(id.value.trim())}`, body);
      showOk(result, `Saved ${saved.id}.`);
      id.readOnly = true;
      await refresh();
    },
      h("h3", {}, u ? `Edit ${u.id}` : "New user"),
      h("label", {}, "Id ", id),
      h("div", { class: "row" }, USER_FIELDS.slice(0, 3).map(([k, label]) => h("label", {}, `${label} `, fields[k]))),
      h("div", { class: "row" }, USER_FIELDS.slice(3).map(([k, label]) => h("label", {}, `${label} `, fields[k]))),
      h("label", {}, "Attributes (JSON, for campaign audiences and templates) ", attributes),
      h("button", { type: "submit", id: "save-user" }, "Save"),
      result,
    ),
  );
  if (u) {
    // Shown under the form unless another user's editor replaced it meanwhile.
    const form = editor.firstElementChild;
    preferencesCard(u.id).then(
      (card) => form.isConnected && editor.append(card),
      (err) => form.isConnected && showErrorIn(editor.appendChild(h("div")), err),
    );
  }
}

// ---------------------------------------------------------------- dead letters

async function renderDeadLetters() {
  const main = $("main");
  const status = h("p", { role: "status" });
  const includeReplayed = h("input", { type: "checkbox", id: "dead-letters-replayed" });
  const table = pagedTable({
    id: "dead-letters-table",
    headings: ["Time", "Queue", "Reference", "Reason", "Replayed", ""],
    fetchPage: (cursor) => api("GET", `/dead-letters?${query(50, cursor, { include_replayed: includeReplayed.checked ? "true" : "" })}`),
    toRow: (d) =>
      h("tr", { "data-id": d.id },
        h("td", {}, d.created_at),
        h("td", {}, d.queue),
        h("td", { class: "mono" }, d.ref_id ?? "—"),
        h("td", {}, d.reason, h("details", {}, h("summary", {}, "payload"), h("pre", {}, JSON.stringify(d.payload, null, 2)))),
        h("td", {}, d.replayed_at ?? ""),
        h("td", {},
          d.replayed_at
            ? ""
            : actionButton("Replay", status, () => api("POST", `/dead-letters/${d.id}/replay`), async () => {
                await table.reload();
                showOk(status, `Replayed ${d.id}.`);
              }),
        ),
      ),
    empty: "No dead letters.",
    status,
    forbidden: "Dead letters need the admin scope.",
  });
  includeReplayed.addEventListener("change", () => table.reload());
  main.replaceChildren(
    h("h2", {}, "Dead letters"),
    h("p", { class: "muted" }, "Deliveries that ran out of attempts and messages the broker gave up on. Replaying one queues it again; a delivery already sent is never sent twice."),
    h("label", {}, includeReplayed, " show replayed ones too"),
    status,
    table.el,
  );
  await table.reload();
}

// ---------------------------------------------------------------- API keys

const SCOPES = ["events:write", "notifications:read", "templates:write", "campaigns:write", "users:write", "audit:read", "admin"];

async function renderApiKeys() {
  const main = $("main");
  const status = h("p", { role: "status" });
  const table = pagedTable({
    id: "api-keys-table",
    headings: ["Name", "Prefix", "Scopes", "Created", "Last used", "Revoked", ""],
    fetchPage: (cursor) => api("GET", `/api-keys?${query(100, cursor)}`),
    toRow: (k) =>
      h("tr", { "data-id": k.id },
        h("td", {}, k.name),
        h("td", { class: "mono" }, k.prefix),
        h("td", {}, k.scopes.join(", ")),
        h("td", {}, k.created_at),
        h("td", {}, k.last_used_at ?? "never"),
        h("td", { class: "revoked" }, k.revoked_at ?? ""),
        h("td", {}, k.revoked_at ? "" : actionButton("Revoke", status, () => api("DELETE", `/api-keys/${k.id}`), table.reload, `Revoke the key "${k.name}"? Services using it are refused from now on.`)),
      ),
    empty: "No API keys yet.",
    status,
    forbidden: "API keys need the admin scope.",
  });
  const name = h("input", { type: "text", id: "api-key-name", required: true });
  const scopes = checkboxes("Scopes", SCOPES, "scope");
  const result = h("div", { id: "api-key-result", role: "status" });
  main.replaceChildren(
    h("h2", {}, "API keys"),
    status,
    table.el,
    actionForm("api-key-form", result, async () => {
      const created = await api("POST", "/api-keys", { name: name.value, scopes: scopes.value() });
      result.className = "ok";
      result.replaceChildren(h("p", {}, `Created ${created.name}. Copy the key now: it is not shown again.`), h("code", { id: "new-api-key" }, created.key));
      await table.reload();
    },
      h("h3", {}, "New API key"),
      h("label", {}, "Name ", name),
      scopes.el,
      h("button", { type: "submit", id: "create-api-key" }, "Create key"),
      result,
    ),
  );
  await table.reload();
}

// ---------------------------------------------------------------- routing

const VIEWS = {
  templates: renderTemplates,
  rules: renderRules,
  campaigns: renderCampaigns,
  messages: renderMessages,
  users: renderUsers,
  "dead-letters": renderDeadLetters,
  "api-keys": renderApiKeys,
  audit: renderAudit,
};

function route() {
  if (!sessionStorage.getItem(KEY)) return renderLogin();
  const view = location.hash.slice(1) in VIEWS ? location.hash.slice(1) : "templates";
  $("nav").hidden = false;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === view);
  VIEWS[view]().catch((err) => {
    if (err instanceof ApiError && err.status === 401) {
      sessionStorage.removeItem(KEY);
      renderLogin();
    }
  });
}

$("logout").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  location.hash = "";
  renderLogin();
});
addEventListener("hashchange", route);
route();
