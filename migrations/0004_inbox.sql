-- 0004: the in-app inbox. One item per in_app delivery (the delivery id is the item id, so a resend
-- of the same delivery cannot create a second item).

CREATE TABLE inbox_items (
  id               uuid PRIMARY KEY,
  user_id          text NOT NULL,
  -- Per-user order, assigned under a per-user advisory lock in the inserting transaction, so that
  -- seq order is commit order: a reader at seq N can never later find a committed item below N.
  -- That is what makes `since` catch-up gapless.
  seq              bigint NOT NULL,
  notification_id  uuid,
  event            text NOT NULL,
  title            text,
  body             text,
  data             jsonb NOT NULL DEFAULT '{}'::jsonb,
  read_at          timestamptz,
  archived_at      timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (user_id, seq)
);
-- The unread count is counted from this partial index, never kept as a separate counter.
CREATE INDEX inbox_items_unread ON inbox_items (user_id) WHERE read_at IS NULL AND archived_at IS NULL;
