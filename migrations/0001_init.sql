-- 0001: the spine. API keys, the recipient directory, templates, notifications with their
-- transactional outbox and idempotency records, deliveries and dead letters.

CREATE TABLE api_keys (
  id            uuid PRIMARY KEY,
  name          text NOT NULL,
  -- sha256 of the whole key: keys are 256-bit random, so a slow KDF buys nothing and costs every request.
  key_hash      bytea NOT NULL UNIQUE,
  prefix        text NOT NULL,
  scopes        text[] NOT NULL,
  created_by    text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  revoked_at    timestamptz,
  last_used_at  timestamptz
);

CREATE TABLE users (
  id                text PRIMARY KEY,
  email             text,
  phone             text,
  name              text,
  locale            text,
  timezone          text,
  telegram_chat_id  text,
  attributes        jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX users_attributes_gin ON users USING gin (attributes jsonb_path_ops);

CREATE TABLE templates (
  key         text PRIMARY KEY,
  name        text NOT NULL,
  category    text,
  version     integer NOT NULL,
  body        jsonb NOT NULL,            -- {name, category, default_locale, variables, variants:[...]}
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  deleted_at  timestamptz
);

-- Every save keeps the previous body: templates are versioned, never overwritten.
CREATE TABLE template_versions (
  key         text NOT NULL,
  version     integer NOT NULL,
  body        jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  created_by  text,
  PRIMARY KEY (key, version)
);

CREATE TABLE notifications (
  id          uuid PRIMARY KEY,
  event       text NOT NULL,
  status      text NOT NULL CHECK (status IN ('scheduled','accepted','processing','delivered','partially_delivered','failed','cancelled')),
  payload     jsonb NOT NULL,            -- the validated event, as accepted
  source      text,                      -- API key id, 'amqp', 'scheduler', ...
  send_at     timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 85);
-- Status changes (accepted → processing → delivered) must stay HOT updates: no index may mention
-- status, or every change would also write every index. Room on the page (fillfactor) lets the
-- new version stay beside the old one.
CREATE INDEX notifications_created_at ON notifications (created_at);
CREATE INDEX notifications_due ON notifications (send_at) WHERE send_at IS NOT NULL;

-- Transactional outbox: a row is written in the same transaction as its notification and removed
-- once RabbitMQ has confirmed the publish. A relay re-publishes rows left behind by a crash or an outage.
CREATE TABLE outbox (
  notification_id  uuid PRIMARY KEY REFERENCES notifications (id) ON DELETE CASCADE,
  created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE idempotency_keys (
  scope            text NOT NULL,        -- the API key id (keys of different callers never collide)
  key              text NOT NULL,
  request_hash     text NOT NULL,
  notification_id  uuid NOT NULL,
  response         jsonb NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

CREATE TABLE deliveries (
  id               uuid PRIMARY KEY,
  notification_id  uuid NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
  user_id          text NOT NULL,
  channel          text NOT NULL,
  recipient        text,                 -- address on that channel (e-mail, phone, chat id, URL)
  status           text NOT NULL CHECK (status IN ('queued','sending','retrying','sent','failed','skipped')),
  attempts         integer NOT NULL DEFAULT 0,
  max_attempts     integer NOT NULL,
  error            text,
  content          jsonb,                -- rendered message: {subject, text, html, title, body}
  provider         text,
  provider_id      text,
  claimed_until    timestamptz,
  next_attempt_at  timestamptz,
  sent_at          timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (notification_id, user_id, channel)
);
CREATE INDEX deliveries_user ON deliveries (user_id, created_at);

CREATE TABLE dead_letters (
  id          uuid PRIMARY KEY,
  queue       text NOT NULL,
  ref_id      text,                      -- delivery or notification id when known
  payload     jsonb NOT NULL,
  reason      text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  replayed_at timestamptz
);
CREATE INDEX dead_letters_open ON dead_letters (created_at) WHERE replayed_at IS NULL;
