-- 0002: event rules, user preferences (opt-outs, quiet hours) and Telegram chat binding tokens.

CREATE TABLE event_rules (
  event         text PRIMARY KEY,
  template      text,
  channels      text[] NOT NULL,
  category      text,
  priority      text CHECK (priority IN ('low','normal','high','critical')),
  webhook_url   text,
  data_sources  jsonb NOT NULL DEFAULT '[]'::jsonb,   -- [{name, url}] for enrichment (issue 5)
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

-- No foreign key to users: a one-click unsubscribe must be recorded even for a user the
-- directory learned about only from inline recipients, and survives a directory re-import.
CREATE TABLE user_preferences (
  user_id      text PRIMARY KEY,
  opt_outs     jsonb NOT NULL DEFAULT '[]'::jsonb,    -- [{category, channel}], "*" for any
  quiet_hours  jsonb,                                 -- {start:"22:00", end:"08:00", timezone?}
  updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE telegram_link_tokens (
  token_hash  bytea PRIMARY KEY,                      -- sha256 of the token: a database leak binds no chats
  user_id     text NOT NULL,
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX telegram_link_tokens_expires ON telegram_link_tokens (expires_at);
