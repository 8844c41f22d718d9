-- The in-server scheduler (src/scheduler.rs): per-task markers of the due-soon and overdue
-- notices already sent. Each holds the due date that was notified, so a notice goes out once per
-- task and due date, and moving the due date re-arms it. The scheduler sets a marker in the same
-- transaction as the notification rows it writes.

ALTER TABLE tasks
    ADD COLUMN due_soon_notified_for timestamptz,
    ADD COLUMN overdue_notified_for  timestamptz;

-- The scheduler's questions, one per tick and tenant: which open tasks, with someone to tell,
-- have not been told about their current due date yet. Only those rows are indexed, so a tick
-- stays cheap however many notified tasks stay open.
CREATE INDEX tasks_due_soon_pending ON tasks (due_date)
    WHERE status IN ('PENDING', 'IN_PROGRESS')
      AND (assigned_to_id IS NOT NULL OR branch_id IS NOT NULL)
      AND due_soon_notified_for IS DISTINCT FROM due_date;
CREATE INDEX tasks_overdue_pending ON tasks (due_date)
    WHERE status IN ('PENDING', 'IN_PROGRESS')
      AND (assigned_to_id IS NOT NULL OR branch_id IS NOT NULL)
      AND overdue_notified_for IS DISTINCT FROM due_date;
