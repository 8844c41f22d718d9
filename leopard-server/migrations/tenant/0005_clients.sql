-- CRM core, first part: clients (soft-deleted, scoped by branch), their timeline (written only by
-- event handlers) and notification rows. visa_category_id and agent_id get their foreign keys
-- when those tables arrive.

CREATE TABLE clients (
    id               bigserial PRIMARY KEY,
    first_name       varchar(100) NOT NULL,
    middle_name      varchar(100) NOT NULL DEFAULT '',
    last_name        varchar(100) NOT NULL DEFAULT '',
    gender           varchar(10) NOT NULL DEFAULT '' CHECK (gender IN ('', 'MALE', 'FEMALE', 'OTHER')),
    dob              date,
    phone_number     varchar(15) NOT NULL DEFAULT '',
    email            varchar(254) NOT NULL DEFAULT '',
    street           varchar(100) NOT NULL DEFAULT '',
    suburb           varchar(100) NOT NULL DEFAULT '',
    state            varchar(100) NOT NULL DEFAULT '',
    postcode         varchar(20) NOT NULL DEFAULT '',
    country          varchar(2) NOT NULL,
    branch_id        bigint REFERENCES branches (id) ON DELETE RESTRICT,
    visa_category_id bigint,
    agent_id         bigint,
    assigned_to_id   bigint REFERENCES users (id) ON DELETE SET NULL,
    stage            varchar(20) NOT NULL DEFAULT 'LEAD'
                     CHECK (stage IN ('', 'LEAD', 'FOLLOW_UP', 'CLIENT', 'CLOSE')),
    active           boolean NOT NULL DEFAULT false,
    description      text NOT NULL DEFAULT '',
    referred_by      varchar(100) NOT NULL DEFAULT '',
    created_by_id    bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_by_id    bigint REFERENCES users (id) ON DELETE SET NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at       timestamptz
);
CREATE INDEX clients_branch_stage ON clients (branch_id, stage) WHERE deleted_at IS NULL;
CREATE INDEX clients_branch_active ON clients (branch_id, active);
CREATE INDEX clients_assigned_to ON clients (assigned_to_id);
CREATE INDEX clients_created_at ON clients (created_at DESC, id DESC);
CREATE INDEX clients_email ON clients (lower(email));

-- The timeline: immutable rows written by event handlers only.
CREATE TABLE client_activities (
    id              bigserial PRIMARY KEY,
    client_id       bigint NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    activity_type   varchar(30) NOT NULL,
    performed_by_id bigint REFERENCES users (id) ON DELETE SET NULL,
    description     text NOT NULL DEFAULT '',
    metadata        jsonb NOT NULL DEFAULT '{}',
    event_id        uuid UNIQUE,            -- the event that produced it (one entry per event)
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX client_activities_client ON client_activities (client_id, created_at DESC, id DESC);

-- Notifications: the row is the source of truth (the live stream comes later).
CREATE TABLE notifications (
    id                bigserial PRIMARY KEY,
    notification_type varchar(30) NOT NULL DEFAULT 'SYSTEM_ALERT',
    assigned_to_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title             varchar(200) NOT NULL DEFAULT 'Notification',
    message           text NOT NULL DEFAULT '',
    due_date          timestamptz,
    meta_info         jsonb NOT NULL DEFAULT '{}',
    read              boolean NOT NULL DEFAULT false,
    read_at           timestamptz,
    is_completed      boolean NOT NULL DEFAULT false,
    event_id          uuid,                 -- the event that produced it, if any
    created_by_id     bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_by_id     bigint REFERENCES users (id) ON DELETE SET NULL,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, assigned_to_id, notification_type)
);
CREATE INDEX notifications_recipient_read ON notifications (assigned_to_id, read);
CREATE INDEX notifications_recipient_created ON notifications (assigned_to_id, created_at DESC, id DESC);
