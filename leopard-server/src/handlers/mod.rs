//! The server's built-in event handlers.
//!
//! Handlers react to the domain events the API records in the tenant transaction of each change
//! (`leopard_events::record`); the event bus started by `leopard serve` runs them. They register
//! with [`leopard_events::register_handler!`] like any application's, so `leopard events
//! handlers` lists them next to the others and [`registry`] refuses duplicate names.
//!
//! - [`AuditRecord`] (`audit.record`, every event type, transactional): one `audit_log` row per
//!   event, written in the transaction that marks the event handled, so exactly once.
//! - [`ClientTimeline`] (`timeline.client`): one `client_activities` row per client creation,
//!   stage change, (re)assignment and deletion ([`record_client_timeline`]).
//! - [`ClientAssignedNotice`] (`notifications.client_assigned`): a `CLIENT_ASSIGNED`
//!   notification to a client's new assignee ([`notify_client_assigned`]).
//! - [`ClientStageChangedNotice`] (`notifications.client_stage_changed`): `CLIENT_STAGE_CHANGED`
//!   notifications to the branch admins of the client's branch ([`notify_client_stage_changed`]).
//! - [`notes::NoteTimeline`] (`timeline.note`): `NOTE_ADDED`, `NOTE_EDITED` and `NOTE_DELETED`
//!   timeline entries of a note's client ([`notes::record_note_timeline`]).
//! - [`tasks`]: `timeline.task` (`TASK_CREATED` / `TASK_COMPLETED` on a client-linked task's
//!   client) and `notifications.task_assigned` (`TASK_ASSIGNED` on create, reassign and claim).
//! - [`profile::ProfileTimeline`] (`timeline.profile`): `PASSPORT_UPDATED`,
//!   `PROFICIENCY_ADDED`, `QUALIFICATION_ADDED` and `PROFILE_PICTURE_UPLOADED` timeline entries
//!   (types the original defined but never wrote; [`profile::record_profile_timeline`]).
//! - [`visa`]: `timeline.visa_application` (`VISA_APPLICATION_CREATED`, `ASSIGNED`,
//!   `VISA_STATUS_CHANGED` on the application's client) and
//!   `notifications.visa_application_assigned` (`VISA_APPLICATION_ASSIGNED` to a new assignee).
//! - [`college`]: `timeline.college_application` (`COLLEGE_APPLICATION_CREATED`, `ASSIGNED`,
//!   `APPLICATION_STAGE_CHANGED` on the application's client) and
//!   `notifications.application_assigned` (`APPLICATION_ASSIGNED` to the assignee of a new or
//!   reassigned application).
//!
//! The client handlers are transactional, and each of their writes is keyed by the event's id
//! (`client_activities.event_id`, `notifications (event_id, assigned_to_id, notification_type)`),
//! so even a repeated run of the same event writes nothing twice.
//!
//! Client events carry the client's state in `previous`/`current` with the keys `stage`,
//! `assigned_to` (user id or `null`), `branch_id`, `first_name` and `last_name`.
//!
//! Deliberate differences from the original (`original-backend.md` §5.3):
//! - creating and deleting a client write `CLIENT_CREATED` / `CLIENT_DELETED` timeline entries
//!   (the original wrote none on create, and its delete entry was unreachable);
//! - creating a client with an assignee notifies the assignee like a later assignment does;
//! - nobody is notified of an assignment they made themselves, or of their own stage change;
//! - stage changes notify the active branch admins of the client's branch only (the original
//!   also notified the assignee, and every branch admin of the tenant for a client without a
//!   branch); a client without a branch notifies nobody.

use leopard_events::{
    async_trait, Event, EventHandler, HandlerContext, HandlerError, HandlerRegistry,
};
use serde_json::{json, Value};
use sqlx::PgConnection;

use crate::notify::{notify, NewNotification, NotificationType};

pub mod college;
pub mod notes;
pub mod profile;
pub mod tasks;
pub mod visa;

/// Writes one row per event into the tenant's `audit_log` (`0004_audit_log.sql`). A repeated
/// delivery of the same event is a no-op (`event_id` is unique).
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditRecord;

impl AuditRecord {
    /// The handler's name.
    pub const NAME: &'static str = "audit.record";
}

#[async_trait]
impl EventHandler for AuditRecord {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> &'static [&'static str] {
        &["*"]
    }

    async fn handle(
        &self,
        ctx: &mut HandlerContext<'_>,
        event: &Event,
    ) -> Result<(), HandlerError> {
        let tx = ctx
            .tx()
            .ok_or_else(|| HandlerError::new("audit.record runs in the tenant transaction"))?;
        sqlx::query(
            "INSERT INTO audit_log (event_id, event_type, entity_type, entity_id, action, actor_id,
                                    changed_fields, occurred_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(event.id)
        .bind(&event.event_type)
        .bind(&event.entity_type)
        .bind(&event.entity_id)
        .bind(event.action.as_str())
        .bind(event.actor_id)
        .bind(&event.changed_fields)
        .bind(event.occurred_at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

leopard_events::register_handler!(AuditRecord);

/// `Client.CREATE`.
pub const CLIENT_CREATE: &str = "Client.CREATE";
/// `Client.stage.UPDATE`.
pub const CLIENT_STAGE_UPDATE: &str = "Client.stage.UPDATE";
/// `Client.assigned_to.UPDATE`.
pub const CLIENT_ASSIGNED_TO_UPDATE: &str = "Client.assigned_to.UPDATE";
/// `Client.DELETE`.
pub const CLIENT_DELETE: &str = "Client.DELETE";

/// The open tenant transaction of a transactional handler.
pub(crate) fn handler_tx<'c>(
    ctx: &'c mut HandlerContext<'_>,
    name: &str,
) -> Result<&'c mut PgConnection, HandlerError> {
    let tx = ctx
        .tx()
        .ok_or_else(|| HandlerError::new(format!("{name} runs in the tenant transaction")))?;
    Ok(&mut **tx)
}

/// The client id of a `Client.*` event.
pub(crate) fn client_id(event: &Event) -> Result<i64, HandlerError> {
    event.entity_id.parse().map_err(|_| {
        HandlerError::new(format!(
            "{} has a non-numeric client id {:?}",
            event.event_type, event.entity_id
        ))
    })
}

/// `key` of the state before (`None` when absent).
pub(crate) fn before<'e>(event: &'e Event, key: &str) -> Option<&'e Value> {
    event.previous.as_ref().and_then(|s| s.get(key))
}

/// `key` of the state after (`None` when absent).
pub(crate) fn after<'e>(event: &'e Event, key: &str) -> Option<&'e Value> {
    event.current.as_ref().and_then(|s| s.get(key))
}

/// `key` of the latest state carried by the event (after, else before).
pub(crate) fn latest<'e>(event: &'e Event, key: &str) -> Option<&'e Value> {
    after(event, key).or_else(|| before(event, key))
}

/// A user id held in a state value (a number, or a numeric string).
pub(crate) fn user_id(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// "First Last" of the client, or "Client <id>" when it has no name.
pub(crate) fn client_name(event: &Event, id: i64) -> String {
    let part = |key| {
        latest(event, key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
    };
    let name = format!("{} {}", part("first_name"), part("last_name"));
    let name = name.trim();
    if name.is_empty() {
        format!("Client {id}")
    } else {
        name.to_owned()
    }
}

/// The display name of a stage value (`FOLLOW_UP` → "Follow Up"; empty → "No Stage").
pub fn stage_label(stage: &str) -> String {
    if stage.trim().is_empty() {
        return "No Stage".to_owned();
    }
    stage
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let lower = w.to_lowercase();
            let mut chars = lower.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The description of the `ASSIGNED` timeline entry of an `<Entity>.assigned_to.UPDATE` event
/// about a `noun` ("Visa Application"): "<noun> assigned to <name>" or "<noun> unassigned".
/// Records `old_assigned_to`, `new_assigned_to`, `assigned_to_id` and (when assigned)
/// `assigned_to_name` in `metadata`.
pub(crate) async fn assignment_description(
    conn: &mut PgConnection,
    event: &Event,
    metadata: &mut Value,
    noun: &str,
) -> Result<String, sqlx::Error> {
    let old = user_id(before(event, "assigned_to"));
    let new = user_id(after(event, "assigned_to"));
    metadata["old_assigned_to"] = json!(old);
    metadata["new_assigned_to"] = json!(new);
    metadata["assigned_to_id"] = json!(new);
    Ok(match new {
        Some(user) => {
            let name = user_name(conn, user).await?;
            metadata["assigned_to_name"] = json!(name);
            format!("{noun} assigned to {name}")
        }
        None => format!("{noun} unassigned"),
    })
}

/// A user's full name, else username, else "Unknown User" (no such user).
pub(crate) async fn user_name(conn: &mut PgConnection, id: i64) -> Result<String, sqlx::Error> {
    let name: Option<String> = sqlx::query_scalar(
        "SELECT COALESCE(NULLIF(btrim(first_name || ' ' || last_name), ''), username)
           FROM users WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(name.unwrap_or_else(|| "Unknown User".to_owned()))
}

/// Writes one timeline entry of client `client` for `event`: performed by the event's actor
/// (when that user still exists), dated when the event happened, keyed by the event's id (a
/// repeated delivery writes nothing). Returns the new entry's id; `None` when the entry already
/// exists or the client does not.
pub(crate) async fn insert_activity(
    conn: &mut PgConnection,
    client: i64,
    activity_type: &str,
    description: &str,
    metadata: Value,
    event: &Event,
) -> Result<Option<i64>, HandlerError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO client_activities (client_id, activity_type, performed_by_id, description,
                                        metadata, event_id, created_at)
         SELECT c.id, $2, (SELECT u.id FROM users u WHERE u.id = $3), $4, $5, $6, $7
           FROM clients c
          WHERE c.id = $1
         ON CONFLICT (event_id) DO NOTHING
         RETURNING id",
    )
    .bind(client)
    .bind(activity_type)
    .bind(event.actor_id)
    .bind(description)
    .bind(metadata)
    .bind(event.id)
    .bind(event.occurred_at)
    .fetch_optional(conn)
    .await?)
}

/// Writes the timeline entry of a client event: `CLIENT_CREATED` ("Client created"),
/// `STAGE_CHANGED` ("Stage changed from Lead to Client"), `ASSIGNED` ("Assigned to Jane Doe" or
/// "Unassigned") or `CLIENT_DELETED` ("Client deleted"), performed by the event's actor, dated
/// when the event happened, with the old and new values in `metadata`. Returns the new entry's
/// id; `None` when the event was already written, the client no longer exists or the event type
/// has no entry.
pub async fn record_client_timeline(
    conn: &mut PgConnection,
    event: &Event,
) -> Result<Option<i64>, HandlerError> {
    let id = client_id(event)?;
    let mut metadata = json!({
        "event_id": event.id,
        "event_type": event.event_type,
        "changed_fields": event.changed_fields,
        "client_id": id,
    });
    let (activity_type, description) = match event.event_type.as_str() {
        CLIENT_CREATE => {
            metadata["stage"] = after(event, "stage").cloned().unwrap_or(Value::Null);
            metadata["assigned_to"] = after(event, "assigned_to").cloned().unwrap_or(Value::Null);
            metadata["branch_id"] = after(event, "branch_id").cloned().unwrap_or(Value::Null);
            ("CLIENT_CREATED", "Client created".to_owned())
        }
        CLIENT_STAGE_UPDATE => {
            let old = before(event, "stage").and_then(Value::as_str).unwrap_or("");
            let new = after(event, "stage").and_then(Value::as_str).unwrap_or("");
            metadata["old_stage"] = json!(old);
            metadata["new_stage"] = json!(new);
            (
                "STAGE_CHANGED",
                format!(
                    "Stage changed from {} to {}",
                    stage_label(old),
                    stage_label(new)
                ),
            )
        }
        CLIENT_ASSIGNED_TO_UPDATE => {
            let old = user_id(before(event, "assigned_to"));
            let new = user_id(after(event, "assigned_to"));
            metadata["old_assigned_to"] = json!(old);
            metadata["new_assigned_to"] = json!(new);
            let description = match new {
                Some(user) => {
                    let name = user_name(conn, user).await?;
                    metadata["assigned_to_name"] = json!(name);
                    format!("Assigned to {name}")
                }
                None => "Unassigned".to_owned(),
            };
            ("ASSIGNED", description)
        }
        CLIENT_DELETE => ("CLIENT_DELETED", "Client deleted".to_owned()),
        _ => return Ok(None),
    };
    insert_activity(conn, id, activity_type, &description, metadata, event).await
}

/// The `meta_info` of a client event's notification.
fn client_meta(event: &Event, id: i64) -> Value {
    json!({
        "client_id": id,
        "entity_type": "client",
        "entity_id": id,
        "event_id": event.id,
    })
}

/// Notifies a client's new assignee (`Client.assigned_to.UPDATE`, or `Client.CREATE` with an
/// assignee) with `CLIENT_ASSIGNED` "Client Assigned: <name>" / `Client "<name>" has been
/// assigned to you.`, unless nobody is assigned or the assignee is the actor. Returns the new
/// notification's id; `None` when nobody is notified or the event already notified.
pub async fn notify_client_assigned(
    conn: &mut PgConnection,
    event: &Event,
) -> Result<Option<i64>, HandlerError> {
    if event.event_type != CLIENT_ASSIGNED_TO_UPDATE && event.event_type != CLIENT_CREATE {
        return Ok(None);
    }
    let id = client_id(event)?;
    let Some(assignee) = user_id(after(event, "assigned_to")) else {
        return Ok(None);
    };
    if event.actor_id == Some(assignee) {
        return Ok(None);
    }
    let name = client_name(event, id);
    let mut notice = NewNotification::new(
        NotificationType::ClientAssigned,
        assignee,
        format!("Client Assigned: {name}"),
        format!("Client \"{name}\" has been assigned to you."),
    );
    notice.meta_info = client_meta(event, id);
    notice.event_id = Some(event.id);
    notice.created_by = event.actor_id;
    Ok(notify(conn, notice).await?)
}

/// Notifies the active branch admins of the client's branch (`branch_id` of the event's state,
/// else of the client row) of a `Client.stage.UPDATE` with `CLIENT_STAGE_CHANGED` "Client Stage
/// Changed: <name>" / `Client "<name>" stage changed to <Stage>.`, except the actor. A client
/// without a branch notifies nobody. Returns the ids of the new notifications (none for an
/// event already handled).
pub async fn notify_client_stage_changed(
    conn: &mut PgConnection,
    event: &Event,
) -> Result<Vec<i64>, HandlerError> {
    if event.event_type != CLIENT_STAGE_UPDATE {
        return Ok(Vec::new());
    }
    let id = client_id(event)?;
    let branch = match latest(event, "branch_id") {
        Some(value) => user_id(Some(value)),
        None => sqlx::query_scalar::<_, Option<i64>>("SELECT branch_id FROM clients WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .flatten(),
    };
    let Some(branch) = branch else {
        return Ok(Vec::new());
    };
    let admins: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT u.id
           FROM users u
           JOIN user_branches ub ON ub.user_id = u.id AND ub.branch_id = $1
           JOIN user_groups ug ON ug.user_id = u.id
           JOIN groups g ON g.id = ug.group_id AND lower(g.name) = lower($2)
          WHERE u.is_active
          ORDER BY u.id",
    )
    .bind(branch)
    .bind(leopard_rbac::Role::BranchAdmin.group_name())
    .fetch_all(&mut *conn)
    .await?;
    let name = client_name(event, id);
    let stage = stage_label(after(event, "stage").and_then(Value::as_str).unwrap_or(""));
    let mut written = Vec::new();
    for admin in admins {
        if event.actor_id == Some(admin) {
            continue;
        }
        let mut notice = NewNotification::new(
            NotificationType::ClientStageChanged,
            admin,
            format!("Client Stage Changed: {name}"),
            format!("Client \"{name}\" stage changed to {stage}."),
        );
        notice.meta_info = client_meta(event, id);
        notice.event_id = Some(event.id);
        notice.created_by = event.actor_id;
        if let Some(row) = notify(&mut *conn, notice).await? {
            written.push(row);
        }
    }
    Ok(written)
}

/// The client timeline (`timeline.client`): see [`record_client_timeline`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientTimeline;

impl ClientTimeline {
    /// The handler's name.
    pub const NAME: &'static str = "timeline.client";
}

#[async_trait]
impl EventHandler for ClientTimeline {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[
            CLIENT_CREATE,
            CLIENT_STAGE_UPDATE,
            CLIENT_ASSIGNED_TO_UPDATE,
            CLIENT_DELETE,
        ]
    }

    async fn handle(
        &self,
        ctx: &mut HandlerContext<'_>,
        event: &Event,
    ) -> Result<(), HandlerError> {
        record_client_timeline(handler_tx(ctx, Self::NAME)?, event).await?;
        Ok(())
    }
}

leopard_events::register_handler!(ClientTimeline);

/// The assignee's notice (`notifications.client_assigned`): see [`notify_client_assigned`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientAssignedNotice;

impl ClientAssignedNotice {
    /// The handler's name.
    pub const NAME: &'static str = "notifications.client_assigned";
}

#[async_trait]
impl EventHandler for ClientAssignedNotice {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[CLIENT_CREATE, CLIENT_ASSIGNED_TO_UPDATE]
    }

    async fn handle(
        &self,
        ctx: &mut HandlerContext<'_>,
        event: &Event,
    ) -> Result<(), HandlerError> {
        notify_client_assigned(handler_tx(ctx, Self::NAME)?, event).await?;
        Ok(())
    }
}

leopard_events::register_handler!(ClientAssignedNotice);

/// The branch admins' notice of a stage change (`notifications.client_stage_changed`): see
/// [`notify_client_stage_changed`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientStageChangedNotice;

impl ClientStageChangedNotice {
    /// The handler's name.
    pub const NAME: &'static str = "notifications.client_stage_changed";
}

#[async_trait]
impl EventHandler for ClientStageChangedNotice {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[CLIENT_STAGE_UPDATE]
    }

    async fn handle(
        &self,
        ctx: &mut HandlerContext<'_>,
        event: &Event,
    ) -> Result<(), HandlerError> {
        notify_client_stage_changed(handler_tx(ctx, Self::NAME)?, event).await?;
        Ok(())
    }
}

leopard_events::register_handler!(ClientStageChangedNotice);

/// Every handler registered in the program (the built-in ones and those of linked crates),
/// refusing duplicate names. Calling it through this module also keeps the built-in
/// registrations linked into the binary.
pub fn registry() -> Result<HandlerRegistry, leopard_events::EventsError> {
    HandlerRegistry::from_inventory()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_labels_are_title_cased_words() {
        assert_eq!(stage_label("LEAD"), "Lead");
        assert_eq!(stage_label("FOLLOW_UP"), "Follow Up");
        assert_eq!(stage_label(""), "No Stage");
    }
}
