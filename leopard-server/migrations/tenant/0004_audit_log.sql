-- The audit trail written by the built-in `audit.record` event handler: one row per event of
-- the tenant, in the handler's transaction (so exactly once; `event_id` is unique).
CREATE TABLE audit_log (
    id             bigserial PRIMARY KEY,
    event_id       uuid NOT NULL UNIQUE,
    event_type     text NOT NULL,
    entity_type    text NOT NULL,
    entity_id      text NOT NULL,
    action         text NOT NULL,
    actor_id       bigint,
    changed_fields text[] NOT NULL DEFAULT '{}',
    occurred_at    timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_entity ON audit_log (entity_type, entity_id, occurred_at);
CREATE INDEX audit_log_occurred ON audit_log (occurred_at, id);
