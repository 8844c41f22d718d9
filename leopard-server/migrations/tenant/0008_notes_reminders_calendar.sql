-- CRM core, notes, reminders and calendar events.
--
-- Notes belong to a client (hard delete, cascade with the client). Reminders link to a record
-- through (content_type_id, object_id) like the original's generic foreign key; the API accepts
-- client links only for now, so their scope follows the client's branch. Calendar events keep
-- their location, and their duration is a generated column, so it is right whenever the times
-- change.

CREATE TABLE notes (
    id         bigserial PRIMARY KEY,
    client_id  bigint NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    author_id  bigint REFERENCES users (id) ON DELETE SET NULL,
    content    text NOT NULL CHECK (char_length(content) BETWEEN 1 AND 10000),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notes_client_created ON notes (client_id, created_at DESC, id DESC);
CREATE INDEX notes_author_created ON notes (author_id, created_at DESC, id DESC);
CREATE INDEX notes_created ON notes (created_at DESC, id DESC);

CREATE TABLE reminders (
    id                   bigserial PRIMARY KEY,
    content_type_id      integer NOT NULL REFERENCES content_types (id) ON DELETE CASCADE,
    object_id            bigint NOT NULL CHECK (object_id >= 0),
    title                varchar(255) NOT NULL,
    reminder_date        date,
    reminder_time        time,
    meta_info            jsonb NOT NULL DEFAULT '{}',
    created_by_id        bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    read                 boolean NOT NULL DEFAULT false,
    is_completed         boolean NOT NULL DEFAULT false,
    notification_created boolean NOT NULL DEFAULT false
);
CREATE INDEX reminders_target ON reminders (content_type_id, object_id);
-- The scheduler's question: which open reminders without a notice are due by now.
CREATE INDEX reminders_due ON reminders (reminder_date, reminder_time)
    WHERE NOT notification_created AND NOT is_completed AND reminder_date IS NOT NULL;

CREATE TABLE calendar_events (
    id             bigserial PRIMARY KEY,
    title          varchar(200) NOT NULL,
    description    text NOT NULL DEFAULT '',
    start_at       timestamptz NOT NULL,
    end_at         timestamptz NOT NULL,
    duration       interval GENERATED ALWAYS AS (end_at - start_at) STORED,
    assigned_to_id bigint REFERENCES users (id) ON DELETE SET NULL,
    hex_color      varchar(7) NOT NULL DEFAULT '#3788d8' CHECK (hex_color ~ '^#[0-9A-Fa-f]{6}$'),
    location       varchar(255) NOT NULL DEFAULT '',
    all_day        boolean NOT NULL DEFAULT false,
    branch_id      bigint REFERENCES branches (id) ON DELETE SET NULL,
    created_by_id  bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_by_id  bigint REFERENCES users (id) ON DELETE SET NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT calendar_events_end_after_start CHECK (end_at > start_at)
);
CREATE INDEX calendar_events_assigned_start ON calendar_events (assigned_to_id, start_at);
CREATE INDEX calendar_events_assigned_end ON calendar_events (assigned_to_id, end_at);
CREATE INDEX calendar_events_branch_start ON calendar_events (branch_id, start_at);
CREATE INDEX calendar_events_window ON calendar_events (start_at, end_at);
CREATE INDEX calendar_events_created_by ON calendar_events (created_by_id);
