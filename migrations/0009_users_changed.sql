-- The gRPC backend keeps user rows in memory (src/grpc/user-cache.ts) and drops them when they
-- change. Every statement that writes users, whoever runs it (our API, the worker's inline
-- upserts, an operator's psql), announces the ids it touched on channel notify_users_changed as a
-- JSON array, or '*' (forget everything) when the list would not fit a notification.
-- Statement-level triggers: one notification per statement, not per row.
CREATE OR REPLACE FUNCTION notify_users_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  n integer;
  payload text;
BEGIN
  SELECT count(*), json_agg(id)::text INTO n, payload FROM (SELECT id FROM changed_rows LIMIT 101) s;
  IF n = 0 THEN
    RETURN NULL;
  END IF;
  -- pg_notify refuses payloads of 8,000 bytes or more; a write must never fail for its announcement.
  IF n > 100 OR octet_length(payload) > 7000 THEN
    payload := '*';
  END IF;
  PERFORM pg_notify('notify_users_changed', payload);
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION notify_users_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('notify_users_changed', '*');
  RETURN NULL;
END
$$;

-- A trigger with transition tables may name one event only, hence three.
DROP TRIGGER IF EXISTS users_changed_insert ON users;
DROP TRIGGER IF EXISTS users_changed_update ON users;
DROP TRIGGER IF EXISTS users_changed_delete ON users;
DROP TRIGGER IF EXISTS users_changed_truncate ON users;
CREATE TRIGGER users_changed_insert AFTER INSERT ON users REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION notify_users_changed();
CREATE TRIGGER users_changed_update AFTER UPDATE ON users REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION notify_users_changed();
CREATE TRIGGER users_changed_delete AFTER DELETE ON users REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION notify_users_changed();
CREATE TRIGGER users_changed_truncate AFTER TRUNCATE ON users FOR EACH STATEMENT EXECUTE FUNCTION notify_users_truncated();
