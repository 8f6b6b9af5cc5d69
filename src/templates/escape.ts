/**
 * Output modes. Escaping applies to interpolated values only: the literal text around them is the
 * admin's own markup (HTML, Telegram HTML or MarkdownV2) and is emitted as written.
 */
export type EscapeMode = "text" | "html" | "telegram-html" | "telegram-markdownv2" | "header";

export const ESCAPE_MODES: readonly EscapeMode[] = ["text", "html", "telegram-html", "telegram-markdownv2", "header"];

const HTML: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

function escapeHtml(s: string): string {
  return /[&<>"']/.test(s) ? s.replace(/[&<>"']/g, (c) => HTML[c]!) : s;
}

/** Telegram parse_mode HTML: only these three must be entities (core.telegram.org/bots/api#html-style). */
function escapeTelegramHtml(s: string): string {
  return /[&<>]/.test(s) ? s.replace(/[&<>]/g, (c) => HTML[c]!) : s;
}

/** MarkdownV2 reserved characters, plus the backslash itself so a value cannot escape our escapes. */
const MD2 = /[_*[\]()~`>#+\-=|{}.!\\]/g;
function escapeMarkdownV2(s: string): string {
  return s.replace(MD2, "\\$&");
}

/** Mail headers: a CR or LF would start a new header, so every line break becomes one space. */
export function flattenHeader(s: string): string {
  return /[\r\n]/.test(s) ? s.replace(/\r\n|[\r\n]/g, " ") : s;
}

const identity = (s: string) => s;

export const ESCAPERS: Record<EscapeMode, (s: string) => string> = {
  text: identity,
  html: escapeHtml,
  "telegram-html": escapeTelegramHtml,
  "telegram-markdownv2": escapeMarkdownV2,
  header: flattenHeader,
};
