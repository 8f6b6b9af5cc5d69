-- The embedded queue (src/mq/embedded.ts): RabbitMQ's work queues as one table, used when
-- NOTIFY_AMQP_URL is unset. Harmless (and empty) when RabbitMQ carries the messages.
CREATE TABLE IF NOT EXISTS queue_messages (
  id            bigserial PRIMARY KEY,
  -- work queue name: events | deliveries | audit | dead-letters
  queue         text        NOT NULL,
  routing_key   text        NOT NULL DEFAULT '',
  message_id    text,
  headers       jsonb       NOT NULL DEFAULT '{}'::jsonb,
  body          jsonb       NOT NULL,
  -- when a consumer may take it: now, after a retry delay, or after a claim's lease runs out
  available_at  timestamptz NOT NULL DEFAULT now(),
  -- times handed to a consumer since published or retried (RabbitMQ's x-delivery-count + 1)
  deliveries    integer     NOT NULL DEFAULT 0,
  -- set while a consumer holds the message; cleared when it is released
  leased_by     text,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS queue_messages_due ON queue_messages (queue, available_at, id);
