//! The notification service: writes one `notifications` row (`0005_clients.sql`) per recipient.
//!
//! The row is the source of truth. A notification produced by an event carries the event's id,
//! and `(event_id, assigned_to_id, notification_type)` is unique, so a re-delivered event never
//! notifies the same person twice.
//!
//! Live delivery: the same statement that inserts the row also publishes a notice on the
//! PostgreSQL channel [`CHANNEL`] (`pg_notify`), so the notice goes out exactly when the row
//! commits, and never for a rolled-back one. Every server process listens on that channel
//! ([`crate::realtime`]) and pushes the notification to the recipient's open streams. Marking
//! notifications read publishes a notice too ([`announce_read`]).
//!
//! Notice payloads are small JSON objects (PostgreSQL caps them below 8000 bytes):
//! `{"t": <tenant schema>, "u": <recipient id>, "k": "m", "id": <notification id>, "n": {…}}` for
//! a new notification (`n` is the stream's notification object, left out when the payload
//! would exceed [`INLINE_LIMIT`]: listeners then read the row), and `{"t", "u", "k": "r",
//! "ids": [...], "c": <unread count>}` for notifications marked read (`"k": "c"` with only the
//! count when a notification was marked unread). The tenant is the transaction's schema
//! (`current_schema()`), so a notice can never name another tenant.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::api::input::rfc3339;

/// The PostgreSQL channel of notification notices.
pub const CHANNEL: &str = "leopard_notifications";

/// Largest payload (bytes) sent with the notification inline; larger ones carry the id only.
pub const INLINE_LIMIT: usize = 7500;

/// Ids per read notice: a bulk read of more ids is announced in several notices.
pub const READ_IDS_PER_NOTICE: usize = 300;

/// The stream's notification object (`id, notification_type, title, message, due_date,
/// meta_info, read, created_at`) as a SQL `json` expression over a `notifications` row.
pub(crate) const MESSAGE_JSON: &str = concat!(
    "json_build_object('id', id, 'notification_type', notification_type, 'title', title, ",
    "'message', message, 'due_date', ",
    rfc3339!("due_date"),
    ", 'meta_info', meta_info, 'read', read, 'created_at', ",
    rfc3339!("created_at"),
    ")"
);

/// The kinds of notification of the original API (`notification_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationType {
    /// A client was assigned to the recipient.
    ClientAssigned,
    /// A college application was assigned to the recipient.
    ApplicationAssigned,
    /// A visa application was assigned to the recipient.
    VisaApplicationAssigned,
    /// A reminder fell due.
    ReminderDue,
    /// A task was assigned to the recipient.
    TaskAssigned,
    /// A task is due soon.
    TaskDueSoon,
    /// A task is overdue.
    TaskOverdue,
    /// The recipient was mentioned in a task.
    TaskMentioned,
    /// A system message.
    SystemAlert,
    /// A client's stage changed.
    ClientStageChanged,
}

impl NotificationType {
    /// Every type, in the original's order.
    pub const ALL: [NotificationType; 10] = [
        NotificationType::ClientAssigned,
        NotificationType::ApplicationAssigned,
        NotificationType::VisaApplicationAssigned,
        NotificationType::ReminderDue,
        NotificationType::TaskAssigned,
        NotificationType::TaskDueSoon,
        NotificationType::TaskOverdue,
        NotificationType::TaskMentioned,
        NotificationType::SystemAlert,
        NotificationType::ClientStageChanged,
    ];

    /// The stored and wire value (`CLIENT_ASSIGNED`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            NotificationType::ClientAssigned => "CLIENT_ASSIGNED",
            NotificationType::ApplicationAssigned => "APPLICATION_ASSIGNED",
            NotificationType::VisaApplicationAssigned => "VISA_APPLICATION_ASSIGNED",
            NotificationType::ReminderDue => "REMINDER_DUE",
            NotificationType::TaskAssigned => "TASK_ASSIGNED",
            NotificationType::TaskDueSoon => "TASK_DUE_SOON",
            NotificationType::TaskOverdue => "TASK_OVERDUE",
            NotificationType::TaskMentioned => "TASK_MENTIONED",
            NotificationType::SystemAlert => "SYSTEM_ALERT",
            NotificationType::ClientStageChanged => "CLIENT_STAGE_CHANGED",
        }
    }

    /// Parses a stored value.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A notification to write.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// What it is about.
    pub notification_type: NotificationType,
    /// The recipient (a user id).
    pub recipient_id: i64,
    /// Short title (at most 200 characters are kept).
    pub title: String,
    /// The message.
    pub message: String,
    /// When the thing it is about falls due, if anything does.
    pub due_date: Option<DateTime<Utc>>,
    /// Free-form context (`client_id`, `entity_type`, `entity_id`, `event_id`, …).
    pub meta_info: Value,
    /// The event that produced it, if any (deduplicates re-deliveries).
    pub event_id: Option<Uuid>,
    /// The user who caused it, if any.
    pub created_by: Option<i64>,
}

impl NewNotification {
    /// A notification of `notification_type` for `recipient_id`, with no due date, empty
    /// `meta_info`, no event and no creator yet.
    pub fn new(
        notification_type: NotificationType,
        recipient_id: i64,
        title: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            notification_type,
            recipient_id,
            title: title.into(),
            message: message.into(),
            due_date: None,
            meta_info: Value::Object(serde_json::Map::new()),
            event_id: None,
            created_by: None,
        }
    }
}

/// Writes `n` and returns the new row's id; `None` when nothing was written: the same event
/// already notified this recipient with this type, or the recipient does not exist. A creator
/// that is not a user of the tenant is stored as `NULL`. A written row is announced on
/// [`CHANNEL`] when the transaction commits.
pub async fn notify(
    conn: &mut PgConnection,
    n: NewNotification,
) -> Result<Option<i64>, sqlx::Error> {
    let title: String = n.title.chars().take(200).collect();
    let sql = format!(
        "WITH ins AS (
             INSERT INTO notifications (notification_type, assigned_to_id, title, message,
                                        due_date, meta_info, event_id, created_by_id,
                                        updated_by_id)
             SELECT $1, u.id, $3, $4, $5, $6, $7, c.id, c.id
               FROM users u
               LEFT JOIN users c ON c.id = $8
              WHERE u.id = $2
             ON CONFLICT (event_id, assigned_to_id, notification_type) DO NOTHING
             RETURNING id, assigned_to_id, notification_type, title, message, due_date,
                       meta_info, read, created_at),
         notice AS (
             SELECT id,
                    json_build_object('t', current_schema(), 'u', assigned_to_id, 'k', 'm',
                                      'id', id, 'n', {MESSAGE_JSON})::text AS whole,
                    json_build_object('t', current_schema(), 'u', assigned_to_id, 'k', 'm',
                                      'id', id)::text AS bare
               FROM ins)
         SELECT id FROM notice,
                LATERAL (SELECT pg_notify('{CHANNEL}', CASE WHEN octet_length(whole) <= {INLINE_LIMIT}
                                                            THEN whole ELSE bare END)) AS sent"
    );
    sqlx::query_scalar(&sql)
        .bind(n.notification_type.as_str())
        .bind(n.recipient_id)
        .bind(title)
        .bind(n.message)
        .bind(n.due_date)
        .bind(n.meta_info)
        .bind(n.event_id)
        .bind(n.created_by)
        .fetch_optional(conn)
        .await
}

/// Announces that `ids` (notifications of `user_id`) were marked read, with the user's unread
/// count as of this transaction; no ids announces the count only (after marking one unread).
/// Delivered when the transaction commits.
pub async fn announce_read(
    conn: &mut PgConnection,
    user_id: i64,
    ids: &[i64],
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "SELECT pg_notify('{CHANNEL}', json_build_object(
                    't', current_schema(), 'u', $1::bigint, 'k', $2::text, 'ids', $3::bigint[],
                    'c', (SELECT count(*) FROM notifications
                           WHERE assigned_to_id = $1 AND NOT read))::text)"
    );
    if ids.is_empty() {
        sqlx::query(&sql)
            .bind(user_id)
            .bind("c")
            .bind(Vec::<i64>::new())
            .execute(&mut *conn)
            .await?;
    }
    for chunk in ids.chunks(READ_IDS_PER_NOTICE) {
        sqlx::query(&sql)
            .bind(user_id)
            .bind("r")
            .bind(chunk)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_notification_type_round_trips_through_its_stored_value() {
        for t in NotificationType::ALL {
            assert_eq!(NotificationType::parse(t.as_str()), Some(t));
        }
        assert_eq!(NotificationType::parse("NOPE"), None);
    }
}
