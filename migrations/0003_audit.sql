-- 0003: the audit log (issue 6). One hash chain per store: see src/audit/store.ts.
--
-- seq is bigint assigned by the appender under an advisory lock (tip.seq + 1, ...), not a
-- bigserial: seq is part of the hashed content, so it must be known before the INSERT, and a
-- sequence leaves gaps on rollback, which would make "a record is missing" ambiguous in verify.

CREATE TABLE audit_records (
  seq          bigint PRIMARY KEY,
  id           uuid NOT NULL UNIQUE,          -- the publisher's id: redeliveries are skipped
  time         timestamptz NOT NULL,
  actor_type   text NOT NULL,
  actor_id     text NOT NULL,
  actor_name   text,
  action       text NOT NULL,
  target_type  text NOT NULL,
  target_id    text NOT NULL,
  outcome      text NOT NULL,
  request_id   text,
  details      jsonb NOT NULL,
  prev_hash    text NOT NULL,
  hash         text NOT NULL,
  stored_at    timestamptz NOT NULL DEFAULT now()
);

-- Queries filter by one of actor/action/target (+ time) and page newest first by seq.
CREATE INDEX audit_records_actor ON audit_records (actor_id, seq);
CREATE INDEX audit_records_target ON audit_records (target_id, seq);
CREATE INDEX audit_records_action ON audit_records (action, seq);
-- Time ranges and retention. BRIN would be smaller, but producer clocks are not strictly ordered.
CREATE INDEX audit_records_time ON audit_records (time);

-- Retention checkpoint: {seq, hash} of the last record deleted by retention. verify starts here.
CREATE TABLE audit_chain_anchor (
  id          boolean PRIMARY KEY DEFAULT true CHECK (id),
  seq         bigint NOT NULL,
  hash        text NOT NULL,
  deleted     bigint NOT NULL DEFAULT 0,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
