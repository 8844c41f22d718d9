-- Tasks: assigned to a user, to a branch pool, or to nobody (never both: the DB refuses it),
-- optionally linked to any record through (content_type_id, object_id). Comments are an
-- append-only JSON list on the row. Hard delete.

CREATE TABLE tasks (
    id              bigserial PRIMARY KEY,
    title           varchar(200) NOT NULL,
    detail          text NOT NULL,
    priority        varchar(10) NOT NULL DEFAULT 'MEDIUM'
                    CHECK (priority IN ('LOW', 'MEDIUM', 'HIGH', 'URGENT')),
    status          varchar(15) NOT NULL DEFAULT 'PENDING'
                    CHECK (status IN ('PENDING', 'IN_PROGRESS', 'COMPLETED', 'CANCELLED', 'OVERDUE')),
    due_date        timestamptz NOT NULL,
    assigned_to_id  bigint REFERENCES users (id) ON DELETE SET NULL,
    branch_id       bigint REFERENCES branches (id) ON DELETE SET NULL,
    assigned_by_id  bigint REFERENCES users (id) ON DELETE SET NULL,
    tags            jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(tags) = 'array'),
    comments        jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(comments) = 'array'),
    content_type_id integer REFERENCES content_types (id) ON DELETE CASCADE,
    object_id       bigint CHECK (object_id >= 0),
    completed_at    timestamptz,
    created_by_id   bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_by_id   bigint REFERENCES users (id) ON DELETE SET NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT task_assignment_constraint
        CHECK (NOT (assigned_to_id IS NOT NULL AND branch_id IS NOT NULL)),
    CONSTRAINT task_link_pair CHECK ((content_type_id IS NULL) = (object_id IS NULL))
);

-- The original's indexes.
CREATE INDEX tasks_assignee_status ON tasks (assigned_to_id, status);
CREATE INDEX tasks_assignee_due ON tasks (assigned_to_id, due_date);
CREATE INDEX tasks_branch_status ON tasks (branch_id, status);
CREATE INDEX tasks_status_due ON tasks (status, due_date);
CREATE INDEX tasks_priority ON tasks (priority);
CREATE INDEX tasks_link ON tasks (content_type_id, object_id);
CREATE INDEX tasks_assigned_by ON tasks (assigned_by_id);
-- The list order and the creator half of the owner scope.
CREATE INDEX tasks_list_order ON tasks (due_date DESC, created_at DESC, id DESC);
CREATE INDEX tasks_created_by ON tasks (created_by_id);
