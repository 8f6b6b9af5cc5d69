-- 0006: the scheduler (issue 7). Campaigns, one run per occurrence slot, and the clock the
-- scheduler asks "is it due" with.

-- The scheduler's clock: the database's, so replicas on hosts with skewed clocks agree. A
-- function rather than a bare now() so that tests can move or speed up time for every process
-- at once (CREATE OR REPLACE in a test database); production never redefines it.
CREATE FUNCTION notify_clock() RETURNS timestamptz LANGUAGE sql STABLE AS 'SELECT now()';

CREATE TABLE campaigns (
  id            uuid PRIMARY KEY,
  name          text NOT NULL,
  template      text NOT NULL,
  channels      text[] NOT NULL,
  audience      jsonb NOT NULL,          -- {"all":true} | {"user_ids":[...]} | {"where":{...}}
  schedule      jsonb NOT NULL,          -- {"at"} | {"cron","timezone","until"} | {"now":true}
  timezone      text NOT NULL,           -- schedule.timezone, or UTC
  local_time    text,                    -- "09:00": each recipient at that time in their own zone
  data          jsonb NOT NULL DEFAULT '{}'::jsonb,
  category      text,
  status        text NOT NULL CHECK (status IN ('active','paused','completed','cancelled')),
  -- The last slot (local wall time in `timezone`) the scheduler has decided, fired or missed;
  -- the next one is computed from here, so a restart neither repeats nor skips a slot.
  cursor_wall   timestamp,
  next_at       timestamptz,             -- when the next slot is due (NULL: none left)
  next_slot     text,
  missed_count  integer NOT NULL DEFAULT 0,
  created_by    text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  deleted_at    timestamptz
);
CREATE INDEX campaigns_due ON campaigns (next_at) WHERE status = 'active';
CREATE INDEX campaigns_created ON campaigns (created_at, id) WHERE deleted_at IS NULL;

-- One row per occurrence. UNIQUE (campaign_id, slot) is what makes an occurrence fire exactly
-- once however many schedulers race for it: the INSERT that wins fires, the others do nothing.
CREATE TABLE campaign_runs (
  id               uuid PRIMARY KEY,
  campaign_id      uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
  slot             text NOT NULL,        -- "2026-03-08T02:30 America/New_York"
  scheduled_at     timestamptz NOT NULL, -- when the slot was due
  status           text NOT NULL CHECK (status IN ('pending','running','completed','missed','cancelled')),
  notification_id  uuid REFERENCES notifications (id),
  -- Fan-out progress: the audience is expanded in id order; `cursor` is the last user id whose
  -- deliveries are committed, `published_cursor` the last whose jobs the broker confirmed.
  cursor           text,
  published_cursor text,
  expanded         boolean NOT NULL DEFAULT false,
  recipients       integer NOT NULL DEFAULT 0,
  lease_owner      text,
  lease_until      timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  started_at       timestamptz,
  finished_at      timestamptz,
  UNIQUE (campaign_id, slot)
);
CREATE INDEX campaign_runs_open ON campaign_runs (scheduled_at) WHERE status IN ('pending','running');
CREATE INDEX campaign_runs_by_campaign ON campaign_runs (campaign_id, scheduled_at DESC);

-- Open deliveries per notification: lets settle() ask "anything still open?" without scanning a
-- campaign notification's million finished rows after every send.
CREATE INDEX deliveries_open ON deliveries (notification_id) WHERE status IN ('queued','sending','retrying');
-- Deliveries held until a time (per-recipient local time, quiet hours) and never attempted yet.
CREATE INDEX deliveries_held ON deliveries (next_attempt_at) WHERE status = 'retrying' AND attempts = 0;
