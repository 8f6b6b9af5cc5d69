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

/** A button running `action`, then `after`; a refusal is shown in `status`. */
function actionButton(label, status, action, after) {
  return h("button", {
    type: "button",
    onclick: async () => {
      try {
        await action();
        await after();
      } catch (err) {
        showError(status, err);
      }
    },
  }, label);
}

/** One checkbox per channel in a fieldset; `value()` is the checked channels. */
function channelPicker(checked) {
  const boxes = CHANNELS.map((c) => h("input", { type: "checkbox", value: c, "data-channel": c, checked: checked(c) }));
  return {
    el: h("fieldset", {}, h("legend", {}, "Channels"), boxes.map((b) => h("label", {}, b, " ", b.value))),
    value: () => boxes.filter((b) => b.checked).map((b) => b.value),
  };
}

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
  const list = h("tbody");
  const editor = h("div");
  main.replaceChildren(
    h("h2", {}, "Templates"),
    dataTable("templates-table", ["Key", "Name", "Channels", "Version", ""], list),
    h("button", { type: "button", id: "new-template", onclick: () => editTemplate(editor, refresh) }, "New template"),
    status,
    editor,
  );
  // After a save only the list is refreshed, so the editor stays as it is.
  async function refresh() {
    const { items } = await api("GET", "/templates?limit=200");
    fillRows(
      list,
      items.map((t) =>
        h("tr", { "data-key": t.key },
          h("td", {}, t.key),
          h("td", {}, t.name),
          h("td", {}, [...new Set(t.variants.map((v) => v.channel))].join(", ")),
          h("td", {}, t.version ?? ""),
          h("td", {}, h("button", { type: "button", onclick: () => editTemplate(editor, refresh, t) }, "Edit")),
        ),
      ),
      5,
      "No templates yet.",
    );
  }
  try {
    await refresh();
  } catch (err) {
    showError(status, err);
  }
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
    h("form", {
      class: "card",
      id: "template-form",
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const body = { name: name.value, variants: readVariants(variants) };
          if (category.value) body.category = category.value;
          const saved = await api("PUT", `/templates/${encodeURIComponent(key.value)}`, body);
          showOk(result, `Saved ${saved.key} (version ${saved.version}).`);
          key.readOnly = true;
          await refresh();
        } catch (err) {
          showError(result, err);
        }
      },
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
  const list = h("tbody");
  const form = h("div");
  main.replaceChildren(
    h("h2", {}, "Campaigns"),
    dataTable("campaigns-table", ["Name", "Status", "Template", "Schedule", "Next run", ""], list),
    status,
    form,
  );
  const refresh = async () => {
    const { items } = await api("GET", "/campaigns?limit=100");
    fillRows(
      list,
      items.map((c) => {
        const act = (label, verb) => actionButton(label, status, () => api("POST", `/campaigns/${c.id}/${verb}`), refresh);
        const actions = [];
        if (c.status === "active") actions.push(act("Pause", "pause"));
        if (c.status === "paused") actions.push(act("Resume", "resume"));
        if (c.status === "active" || c.status === "paused") actions.push(act("Cancel", "cancel"));
        return h("tr", { "data-id": c.id },
          h("td", {}, c.name),
          h("td", { class: "status" }, c.status),
          h("td", {}, c.template),
          h("td", {}, describeSchedule(c.schedule)),
          h("td", {}, c.next_run?.at ?? "—"),
          h("td", {}, actions),
        );
      }),
      6,
      "No campaigns yet.",
    );
  };
  try {
    await refresh();
    form.replaceChildren(await campaignForm(refresh));
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

  const lines = () => audienceValue.value.split("\n").map((l) => l.trim()).filter(Boolean);
  const audience = () => {
    if (audienceKind.value === "all") return { all: true };
    if (audienceKind.value === "user_ids") return { user_ids: lines() };
    return { where: Object.fromEntries(lines().map((l) => [l.slice(0, l.indexOf("=")).trim(), l.slice(l.indexOf("=") + 1).trim()])) };
  };
  const schedule = () => {
    if (when.value === "now") return { now: true };
    if (when.value === "at") return { at: at.value ? new Date(at.value).toISOString() : "" };
    return { cron: cron.value, timezone: timezone.value };
  };

  return h("form", {
    class: "card",
    id: "campaign-form",
    onsubmit: async (e) => {
      e.preventDefault();
      try {
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
      } catch (err) {
        showError(result, err);
      }
    },
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
  const list = h("tbody");
  const editor = h("div");
  const { items: templates } = await api("GET", "/templates?limit=200");
  const refresh = async () => {
    const { items } = await api("GET", "/rules?limit=200");
    fillRows(
      list,
      items.map((r) =>
        h("tr", { "data-event": r.event },
          h("td", {}, r.event),
          h("td", {}, r.template ?? "—"),
          h("td", {}, r.channels.join(", ")),
          h("td", {}, r.priority ?? "normal"),
          h("td", {},
            h("button", { type: "button", onclick: () => editRule(r) }, "Edit"),
            " ",
            actionButton("Delete", status, () => api("DELETE", `/rules/${encodeURIComponent(r.event)}`), refresh),
          ),
        ),
      ),
      5,
      "No event rules yet.",
    );
  };
  const editRule = (r) => {
    const event = h("input", { type: "text", id: "rule-event", value: r?.event ?? "", required: true, readonly: r ? true : undefined, placeholder: "user.registered" });
    const template = h("select", { id: "rule-template" }, h("option", { value: "" }, "(none: producers give title/body)"), templates.map((t) => h("option", { value: t.key, selected: t.key === r?.template }, t.key)));
    const channels = channelPicker((c) => (r ? r.channels.includes(c) : c === "email"));
    const priority = h("select", { id: "rule-priority" }, PRIORITIES.map((p) => h("option", { value: p, selected: p === (r?.priority ?? "normal") }, p)));
    const category = h("input", { type: "text", id: "rule-category", value: r?.category ?? "" });
    const webhook = h("input", { type: "text", id: "rule-webhook", value: r?.webhook_url ?? "", placeholder: "https://… (webhook channel)" });
    const result = h("p", { id: "rule-result", role: "status" });
    editor.replaceChildren(
      h("form", {
        class: "card",
        id: "rule-form",
        onsubmit: async (e) => {
          e.preventDefault();
          try {
            const body = { channels: channels.value(), priority: priority.value };
            if (template.value) body.template = template.value;
            if (category.value) body.category = category.value;
            if (webhook.value) body.webhook_url = webhook.value;
            // Data sources are kept as they were: the panel does not edit them yet.
            if (r?.data_sources?.length) body.data_sources = r.data_sources;
            const saved = await api("PUT", `/rules/${encodeURIComponent(event.value)}`, body);
            showOk(result, `Saved the rule for ${saved.event}.`);
            event.readOnly = true;
            await refresh();
          } catch (err) {
            showError(result, err);
          }
        },
      },
        h("h3", {}, r ? `Rule for ${r.event}` : "New event rule"),
        h("div", { class: "row" }, h("label", {}, "Event ", event), h("label", {}, "Template ", template), h("label", {}, "Priority ", priority)),
        channels.el,
        h("div", { class: "row" }, h("label", {}, "Category (optional) ", category), h("label", {}, "Webhook URL (optional) ", webhook)),
        h("button", { type: "submit", id: "save-rule" }, "Save rule"),
        result,
      ),
    );
  };
  main.replaceChildren(
    h("h2", {}, "Event rules"),
    h("p", { class: "muted" }, "What an event means when its producer only names it: which template, on which channels."),
    dataTable("rules-table", ["Event", "Template", "Channels", "Priority", ""], list),
    h("button", { type: "button", id: "new-rule", onclick: () => editRule() }, "New rule"),
    status,
    editor,
  );
  try {
    await refresh();
  } catch (err) {
    showError(status, err);
  }
}

// ---------------------------------------------------------------- audit log

async function renderAudit() {
  const main = $("main");
  const status = h("p", { role: "status" });
  const list = h("tbody");
  const filters = { action: h("input", { type: "text", id: "audit-action", placeholder: "template.put" }), actor: h("input", { type: "text", id: "audit-actor", placeholder: "api_key:…" }), target: h("input", { type: "text", id: "audit-target", placeholder: "template:welcome" }) };
  const more = h("button", { type: "button", id: "audit-more", hidden: true }, "Older");
  let cursor = null;
  const load = async (append) => {
    const q = new URLSearchParams({ limit: "50" });
    for (const [k, el] of Object.entries(filters)) if (el.value.trim()) q.set(k, el.value.trim());
    if (append && cursor) q.set("cursor", cursor);
    try {
      const page = await api("GET", `/audit?${q}`);
      cursor = page.next_cursor;
      more.hidden = !cursor;
      const rows = page.items.map((r) =>
        h("tr", { "data-action": r.action },
          h("td", {}, r.time),
          h("td", {}, `${r.actor.type}:${r.actor.id}${r.actor.name ? ` (${r.actor.name})` : ""}`),
          h("td", { class: "action" }, r.action),
          h("td", {}, `${r.target.type}:${r.target.id}`),
          h("td", {}, r.outcome),
        ),
      );
      if (append) list.append(...rows);
      else fillRows(list, rows, 5, "No records.");
      status.textContent = "";
    } catch (err) {
      showError(status, err.status === 403 ? new Error("This key lacks the audit:read scope.") : err);
    }
  };
  more.addEventListener("click", () => load(true));
  main.replaceChildren(
    h("h2", {}, "Audit log"),
    h("form", { class: "card", id: "audit-filter", onsubmit: (e) => (e.preventDefault(), load(false)) },
      h("div", { class: "row" }, h("label", {}, "Action ", filters.action), h("label", {}, "Actor ", filters.actor), h("label", {}, "Target ", filters.target)),
      h("button", { type: "submit", id: "audit-search" }, "Search"),
    ),
    status,
    dataTable("audit-table", ["Time", "Actor", "Action", "Target", "Outcome"], list),
    more,
  );
  await load(false);
}

// ---------------------------------------------------------------- routing

const VIEWS = { templates: renderTemplates, rules: renderRules, campaigns: renderCampaigns, audit: renderAudit };

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
