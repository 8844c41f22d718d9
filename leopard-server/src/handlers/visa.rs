//! The visa application handlers: the client's timeline (`timeline.visa_application`) and the
//! assignee's notice (`notifications.visa_application_assigned`).
//!
//! Visa application events (`api::applications::visa_applications`) carry the application's state with the
//! keys `client_id`, `client_name`, `visa_type_label` ("Name (code)"), `status` and
//! `assigned_to`.
//!
//! Both handlers are transactional and keyed by the event's id, so a re-delivered event writes
//! nothing twice.
//!
//! Deliberate differences from the original (`original-backend.md` §5.3):
//! - a status change writes a `VISA_STATUS_CHANGED` timeline entry ("Visa Application status
//!   changed from To Be Applied to Visa Applied"; the original wrote nothing);
//! - clearing the assignee writes "Visa Application unassigned" and notifies nobody;
//! - nobody is notified of an application they assigned to themselves.

use leopard_events::{async_trait, Event, EventHandler, HandlerContext, HandlerError};
use serde_json::{json, Value};
use sqlx::PgConnection;

use super::{
    after, assignment_description, before, handler_tx, insert_activity, latest, stage_label,
    user_id,
};
use crate::notify::{notify, NewNotification, NotificationType};

/// `VisaApplication.CREATE`.
pub const VISA_CREATE: &str = "VisaApplication.CREATE";
/// `VisaApplication.assigned_to.UPDATE`.
pub const VISA_ASSIGNED_TO_UPDATE: &str = "VisaApplication.assigned_to.UPDATE";
/// `VisaApplication.status.UPDATE`.
pub const VISA_STATUS_UPDATE: &str = "VisaApplication.status.UPDATE";

/// The client id carried by a visa application event.
fn client_of(event: &Event) -> Result<i64, HandlerError> {
    user_id(latest(event, "client_id")).ok_or_else(|| {
        HandlerError::new(format!(
            "{} of visa application {} carries no client_id",
            event.event_type, event.entity_id
        ))
    })
}

/// A string of the latest state.
fn text<'e>(event: &'e Event, key: &str) -> &'e str {
    latest(event, key).and_then(Value::as_str).unwrap_or("")
}

/// The visa type's label as the event last saw it.
fn type_label(event: &Event) -> String {
    let label = text(event, "visa_type_label");
    if label.is_empty() {
        text(event, "visa_type_name").to_owned()
    } else {
        label.to_owned()
    }
}

/// Writes the client's timeline entry of a visa application event: `VISA_APPLICATION_CREATED`
/// ("Visa Application created for <type>"), `ASSIGNED` ("Visa Application assigned to <name>")
/// or `VISA_STATUS_CHANGED`; performed by the event's actor, dated when the event happened.
/// Returns the new entry's id; `None` when the event has no entry, was already written or the
/// client no longer exists.
pub async fn record_visa_timeline(
    conn: &mut PgConnection,
    event: &Event,
) -> Result<Option<i64>, HandlerError> {
    let client = client_of(event)?;
    let application: Option<i64> = event.entity_id.parse().ok();
    let label = type_label(event);
    let mut metadata = json!({
        "event_id": event.id,
        "event_type": event.event_type,
        "changed_fields": event.changed_fields,
        "client_id": client,
        "visa_application_id": application,
        "visa_type_name": label,
    });
    let (activity_type, description) = match event.event_type.as_str() {
        VISA_CREATE => {
            metadata["status"] = after(event, "status").cloned().unwrap_or(Value::Null);
            metadata["assigned_to"] = after(event, "assigned_to").cloned().unwrap_or(Value::Null);
            (
                "VISA_APPLICATION_CREATED",
                format!("Visa Application created for {label}"),
            )
        }
        VISA_ASSIGNED_TO_UPDATE => (
            "ASSIGNED",
            assignment_description(conn, event, &mut metadata, "Visa Application").await?,
        ),
        VISA_STATUS_UPDATE => {
            let old = before(event, "status")
                .and_then(Value::as_str)
                .unwrap_or("");
            let new = after(event, "status").and_then(Value::as_str).unwrap_or("");
            metadata["old_status"] = json!(old);
            metadata["new_status"] = json!(new);
            (
                "VISA_STATUS_CHANGED",
                format!(
                    "Visa Application status changed from {} to {}",
                    stage_label(old),
                    stage_label(new)
                ),
            )
        }
        _ => return Ok(None),
    };
    insert_activity(conn, client, activity_type, &description, metadata, event).await
}

/// Notifies an application's new assignee (`VisaApplication.assigned_to.UPDATE`) with
/// `VISA_APPLICATION_ASSIGNED` "Visa Application Assigned: <client>" / "A visa application for
/// <client> (<type>) has been assigned to you.", unless the assignee was cleared or is the
/// actor. Returns the new notification's id; `None` when nobody is notified or the event
/// already notified.
pub async fn notify_visa_assigned(
    conn: &mut PgConnection,
    event: &Event,
) -> Result<Option<i64>, HandlerError> {
    if event.event_type != VISA_ASSIGNED_TO_UPDATE {
        return Ok(None);
    }
    let Some(assignee) = user_id(after(event, "assigned_to")) else {
        return Ok(None);
    };
    if event.actor_id == Some(assignee) {
        return Ok(None);
    }
    let client = client_of(event)?;
    let name: Option<String> = sqlx::query_scalar(
        "SELECT NULLIF(btrim(first_name || ' ' || last_name), '') FROM clients WHERE id = $1",
    )
    .bind(client)
    .fetch_optional(&mut *conn)
    .await?
    .flatten();
    let name = name.unwrap_or_else(|| format!("Client {client}"));
    let label = type_label(event);
    let application: Option<i64> = event.entity_id.parse().ok();
    let mut notice = NewNotification::new(
        NotificationType::VisaApplicationAssigned,
        assignee,
        format!("Visa Application Assigned: {name}"),
        format!("A visa application for {name} ({label}) has been assigned to you."),
    );
    notice.meta_info = json!({
        "event_id": event.id,
        "entity_type": "visaapplication",
        "entity_id": application,
        "client_id": client,
        "visa_application_id": application,
        "visa_type_name": label,
    });
    notice.event_id = Some(event.id);
    notice.created_by = event.actor_id;
    Ok(notify(conn, notice).await?)
}

/// The visa application timeline (`timeline.visa_application`): see [`record_visa_timeline`].
#[derive(Debug, Clone, Copy, Default)]
pub struct VisaTimeline;

impl VisaTimeline {
    /// The handler's name.
    pub const NAME: &'static str = "timeline.visa_application";
}

#[async_trait]
impl EventHandler for VisaTimeline {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[VISA_CREATE, VISA_ASSIGNED_TO_UPDATE, VISA_STATUS_UPDATE]
    }

    async fn handle(
        &self,
        ctx: &mut HandlerContext<'_>,
        event: &Event,
    ) -> Result<(), HandlerError> {
        record_visa_timeline(handler_tx(ctx, Self::NAME)?, event).await?;
        Ok(())
    }
}

leopard_events::register_handler!(VisaTimeline);

/// The assignee's notice (`notifications.visa_application_assigned`): see
/// [`notify_visa_assigned`].
#[derive(Debug, Clone, Copy, Default)]
pub struct VisaAssignedNotice;

impl VisaAssignedNotice {
    /// The handler's name.
    pub const NAME: &'static str = "notifications.visa_application_assigned";
}

#[async_trait]
impl EventHandler for VisaAssignedNotice {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[VISA_ASSIGNED_TO_UPDATE]
    }

    async fn handle(
        &self,
        ctx: &mut HandlerContext<'_>,
        event: &Event,
    ) -> Result<(), HandlerError> {
        notify_visa_assigned(handler_tx(ctx, Self::NAME)?, event).await?;
        Ok(())
    }
}

leopard_events::register_handler!(VisaAssignedNotice);
