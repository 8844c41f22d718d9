-- The event bus: one outbox table in the public schema for every tenant, written in the same
-- transaction as the change that caused the event (the tenant transaction's search_path ends
-- with public). Workers poll this one table, so idle cost does not grow with the tenant count.
CREATE TABLE public.leopard_events (
    id             uuid PRIMARY KEY,                 -- UUIDv7: time-ordered
    tenant_id      bigint NOT NULL,
    tenant_slug    text NOT NULL,
    event_type     text NOT NULL,                    -- Client.CREATE, Task.status.UPDATE, …
    entity_type    text NOT NULL,
    entity_id      text NOT NULL,
    action         text NOT NULL CHECK (action IN ('CREATE', 'UPDATE', 'DELETE')),
    previous       jsonb,
    current        jsonb,
    changed_fields text[] NOT NULL DEFAULT '{}',
    actor_id       bigint,
    occurred_at    timestamptz NOT NULL DEFAULT now(),
    state          text NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'running', 'completed', 'failed')),
    attempts       integer NOT NULL DEFAULT 0,
    attempted_at   timestamptz[] NOT NULL DEFAULT '{}', -- start of every attempt, for backoff audits
    run_at         timestamptz NOT NULL DEFAULT now(),
    locked_by      text,
    locked_until   timestamptz,
    last_error     text,
    completed_at   timestamptz
);
-- Claims read only ready rows; the partial index stays small as rows complete.
CREATE INDEX leopard_events_ready ON public.leopard_events (run_at, id) WHERE state = 'pending';
CREATE INDEX leopard_events_running ON public.leopard_events (locked_until) WHERE state = 'running';
CREATE INDEX leopard_events_tenant_state ON public.leopard_events (tenant_id, state);
CREATE INDEX leopard_events_done ON public.leopard_events (completed_at) WHERE state IN ('completed', 'failed');

-- One row per (event, handler) that succeeded while its event still had work left, so a retry
-- runs only the handlers that failed. Transactional handlers write theirs in their own
-- transaction.
CREATE TABLE public.leopard_event_handler_results (
    event_id     uuid NOT NULL REFERENCES public.leopard_events (id) ON DELETE CASCADE,
    handler      text NOT NULL,
    succeeded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, handler)
);

-- Pauses: tenant_id 0 is the global pause.
CREATE TABLE public.leopard_event_pauses (
    tenant_id bigint PRIMARY KEY,
    reason    text,
    paused_at timestamptz NOT NULL DEFAULT now()
);
