/**
 * One-time tokens that bind a Telegram chat to a user (/start <token> deep links). Only the
 * sha256 of a token is stored.
 */
import { createHash } from "node:crypto";
import type { Sql } from "./db.ts";

const hash = (token: string) => createHash("sha256").update(token).digest();

export function createTelegramLinkRepo(sql: Sql) {
  return {
    async create(userId: string, token: string, expiresAt: Date): Promise<void> {
      await sql`INSERT INTO telegram_link_tokens (token_hash, user_id, expires_at) VALUES (${hash(token)}, ${userId}, ${expiresAt})`;
      // Housekeeping on the write path: expired tokens are worthless, and this table stays small.
      await sql`DELETE FROM telegram_link_tokens WHERE expires_at < now() - interval '1 day'`;
    },

    /** Uses a token once and stores the chat on its user; undefined when unknown, used or expired. */
    async consume(token: string, chatId: string): Promise<string | undefined> {
      return sql.begin(async (tx) => {
        const [row] = await tx`
          UPDATE telegram_link_tokens SET used_at = now()
          WHERE token_hash = ${hash(token)} AND used_at IS NULL AND expires_at > now()
          RETURNING user_id`;
        if (!row) return undefined;
        const userId = String(row.user_id);
        await tx`UPDATE users SET telegram_chat_id = ${chatId}, updated_at = now() WHERE id = ${userId}`;
        return userId;
      });
    },
  };
}

export type TelegramLinkRepo = ReturnType<typeof createTelegramLinkRepo>;
