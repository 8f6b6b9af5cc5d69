/**
 * Rendering cost of a typical e-mail (subject + ~20-line text + html, 8 placeholders, one #if,
 * one #each of 5 items) with compiled templates cached, beside a hand-written string
 * concatenation producing the same output. Target (issue 3): median ≤ 50 µs per message.
 *
 *   bun bench/render.ts
 */
import { compileTemplate, renderMessage, type RenderContext } from "../src/templates/index.ts";

const TARGET_MEDIAN_US = 50;
const WARMUP = 5_000;
const SAMPLES = 50_000;

const text = `Hello {{ name }},

Thank you for your order {{ order.id }} placed on {{ order.placed_at | date("long", "short") }}.

{{#if order.express}}Your order ships today by express courier.{{else}}Your order ships within 3 working days.{{/if}}

Items:
{{#each order.items as item}}  {{ @index }}. {{ item.title | truncate(40) }} — {{ item.price | number(2) }}
{{/each}}
Total: {{ order.total | number(2) }} {{ order.currency | upper }}

Track your parcel: {{ track_url }}

Questions? Just reply to this e-mail or write to support@example.com.
We are here Monday to Friday, 9:00–18:00.

You receive this e-mail because you have an account at Example Shop.
Manage notifications: {{ prefs_url }}

Best regards,
The Example Shop team
`;

const html = `<!doctype html>
<html><body style="font-family: sans-serif">
<h1>Hello {{ name }},</h1>
<p>Thank you for your order <b>{{ order.id }}</b> placed on {{ order.placed_at | date("long", "short") }}.</p>
{{#if order.express}}<p>Your order ships today by express courier.</p>{{else}}<p>Your order ships within 3 working days.</p>{{/if}}
<table>
{{#each order.items as item}}<tr><td>{{ @index }}</td><td>{{ item.title | truncate(40) }}</td><td>{{ item.price | number(2) }}</td></tr>
{{/each}}</table>
<p>Total: <b>{{ order.total | number(2) }} {{ order.currency | upper }}</b></p>
<p><a href="{{ track_url }}">Track your parcel</a></p>
<p>Questions? Just reply to this e-mail. <a href="{{ prefs_url }}">Manage notifications</a></p>
</body></html>
`;

const subject = "Order {{ order.id }} confirmed, {{ name }}";

const template = { default_locale: "en", variants: [{ channel: "email", locale: "en", subject, text, html }] };

const ctx: RenderContext = {
  user: { id: "u1", name: "Ann O'Neil", email: "ann@example.com", locale: "en-GB", timezone: "Europe/London" },
  data: {
    order: {
      id: "A-1024",
      placed_at: "2026-03-01T09:30:00Z",
      express: true,
      total: 249.5,
      currency: "eur",
      items: [
        { title: "Noise-cancelling headphones <Pro>", price: 199 },
        { title: "USB-C cable, 2 m", price: 12.5 },
        { title: "Travel case", price: 19 },
        { title: "Ear cushions (spare pair) & cleaning kit for all models", price: 14 },
        { title: "Gift wrap", price: 5 },
      ],
    },
    track_url: "https://track.example.com/p?id=A-1024&lang=en",
    prefs_url: "https://example.com/prefs?u=u1&t=abc",
  },
};

// ---- baseline: the same output by hand, with the same formatters built once -----------------
const locale = "en-GB";
const dateFmt = new Intl.DateTimeFormat(locale, { dateStyle: "long", timeStyle: "short", timeZone: "Europe/London" });
const numFmt = new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 3 });
const ESC: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ESC[c]!);
const trunc = (s: string, n: number) => { const c = Array.from(s); return c.length <= n ? s : c.slice(0, n - 1).join("") + "…"; };
type Order = { id: string; placed_at: string; express: boolean; total: number; currency: string; items: { title: string; price: number }[] };

function baseline(c: RenderContext) {
  const name = c.user.name as string;
  const o = c.data.order as Order;
  const placed = dateFmt.format(new Date(o.placed_at));
  const total = numFmt.format(o.total);
  const cur = o.currency.toLocaleUpperCase(locale);
  const track = c.data.track_url as string;
  const prefs = c.data.prefs_url as string;
  let items = "";
  let rows = "";
  for (let i = 0; i < o.items.length; i++) {
    const it = o.items[i]!;
    const title = trunc(it.title, 40);
    const price = numFmt.format(it.price);
    items += "  " + i + ". " + title + " — " + price + "\n";
    rows += "<tr><td>" + i + "</td><td>" + esc(title) + "</td><td>" + esc(price) + "</td></tr>\n";
  }
  const ship = o.express ? "Your order ships today by express courier." : "Your order ships within 3 working days.";
  const t =
    "Hello " + name + ",\n\nThank you for your order " + o.id + " placed on " + placed + ".\n\n" + ship + "\n\nItems:\n" + items +
    "\nTotal: " + total + " " + cur + "\n\nTrack your parcel: " + track +
    "\n\nQuestions? Just reply to this e-mail or write to support@example.com.\nWe are here Monday to Friday, 9:00–18:00.\n\n" +
    "You receive this e-mail because you have an account at Example Shop.\nManage notifications: " + prefs +
    "\n\nBest regards,\nThe Example Shop team\n";
  const h =
    '<!doctype html>\n<html><body style="font-family: sans-serif">\n<h1>Hello ' + esc(name) + ",</h1>\n<p>Thank you for your order <b>" +
    esc(o.id) + "</b> placed on " + esc(placed) + ".</p>\n" + "<p>" + ship + "</p>" + "\n<table>\n" + rows + "</table>\n<p>Total: <b>" +
    esc(total) + " " + esc(cur) + '</b></p>\n<p><a href="' + esc(track) + '">Track your parcel</a></p>\n' +
    '<p>Questions? Just reply to this e-mail. <a href="' + esc(prefs) + '">Manage notifications</a></p>\n</body></html>\n';
  const s = "Order " + o.id.replace(/[\r\n]/g, " ") + " confirmed, " + name.replace(/[\r\n]/g, " ");
  return { subject: s, text: t, html: h };
}

// ---- measurement ------------------------------------------------------------------------------
function measure(label: string, fn: () => unknown) {
  for (let i = 0; i < WARMUP; i++) fn();
  const us = new Float64Array(SAMPLES);
  for (let i = 0; i < SAMPLES; i++) {
    const t0 = Bun.nanoseconds();
    fn();
    us[i] = (Bun.nanoseconds() - t0) / 1000;
  }
  us.sort();
  const q = (p: number) => us[Math.min(SAMPLES - 1, Math.floor(p * SAMPLES))]!;
  return { label, median: q(0.5), p99: q(0.99) };
}

const engine = renderMessage(template, "email", "en-GB", ctx)!;
const base = baseline(ctx);
for (const part of ["subject", "text", "html"] as const) {
  if (engine[part] !== base[part]) {
    console.error(`output differs in ${part}:\n--- engine\n${engine[part]}\n--- baseline\n${base[part]}`);
    process.exit(1);
  }
}

const compiled = { s: compileTemplate(subject, "header"), t: compileTemplate(text, "text"), h: compileTemplate(html, "html") };
const withLocale: RenderContext = { ...ctx, locale: "en-GB" };

const rows = [
  measure("baseline: string concatenation", () => baseline(ctx)),
  measure("engine: compiled parts, render x3", () => {
    compiled.s.render(withLocale);
    compiled.t.render(withLocale);
    compiled.h.render(withLocale);
  }),
  measure("engine: renderMessage (variant pick + cache lookup)", () => renderMessage(template, "email", "en-GB", ctx)),
];

console.log(`rendering one e-mail (subject + ${text.split("\n").length}-line text + html), ${SAMPLES} samples, Bun ${Bun.version}`);
for (const r of rows) {
  console.log(`${r.label.padEnd(54)} median ${r.median.toFixed(1).padStart(6)} µs   p99 ${r.p99.toFixed(1).padStart(6)} µs`);
}
const full = rows[2]!;
console.log(
  `renderMessage median ${full.median.toFixed(1)} µs = ${(full.median / rows[0]!.median).toFixed(1)}× baseline; ` +
    `target ≤ ${TARGET_MEDIAN_US} µs: ${full.median <= TARGET_MEDIAN_US ? "met" : "NOT met"}`,
);
