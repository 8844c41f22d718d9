//! The college application handlers: the client's timeline (`timeline.college_application`)
//! and the assignee's notice (`notifications.application_assigned`).
//!
//! College application events (`api::applications::college_applications`) carry the application's state
//! with the keys `client_id`, `client_name`, `institute_name`, `course_name`, `stage`,
//! `stage_name` and `assigned_to`.
//!
//! Both handlers are transactional and keyed by the event's id, so a re-delivered event writes
//! nothing twice.
//!
//! Deliberate differences from the original (`original-backend.md` §5.3, §8.5):
//! - a stage move writes an `APPLICATION_STAGE_CHANGED` timeline entry ("College Application
//!   moved from Offer Received to Enrolled"; the original tracked no stage moves);
//! - clearing the assignee writes "College Application unassigned" and notifies nobody;
//! - nobody is notified of an application they assigned to themselves.

use leopard_events::{async_trait, Event, EventHandler, HandlerContext, HandlerError};
use serde_json::{json, Value};
use sqlx::PgConnection;

use super::{after, assignment_description, before, handler_tx, insert_activity, latest, user_id};
use crate::notify::{notify, NewNotification, NotificationType};

/// `CollegeApplication.CREATE`.
pub const COLLEGE_CREATE: &str = "CollegeApplication.CREATE";
/// `CollegeApplication.assigned_to.UPDATE`.
pub const COLLEGE_ASSIGNED_TO_UPDATE: &str = "CollegeApplication.assigned_to.UPDATE";
/// `CollegeApplication.stage.UPDATE`.
pub const COLLEGE_STAGE_UPDATE: &str = "CollegeApplication.stage.UPDATE";

/// The client id carried by a college application event.
fn client_of(event: &Event) -> Result<i64, HandlerError> {
    user_id(latest(event, "client_id")).ok_or_else(|| {
        HandlerError::new(format!(
            "{} of college application {} carries no client_id",
            event.event_type, event.entity_id
        ))
    })
}

/// A string of the latest state.
fn text<'e>(event: &'e Event, key: &str) -> &'e str {
    latest(event, key).and_then(Value::as_str).unwrap_or("")
}

/// "Course at Institute" as the event last saw it.
fn label(event: &Event) -> String {
    format!(
        "{} at {}",
        text(event, "course_name"),
        text(event, "institute_name")
    )
}

/// Writes the client's timeline entry of a college application event:
/// `COLLEGE_APPLICATION_CREATED` ("College Application created for <course> at <institute>"),
/// `ASSIGNED` ("College Application assigned to <name>") or `APPLICATION_STAGE_CHANGED`;
/// performed by the event's actor, dated when the event happened. Returns the new entry's id;
/// `None` when the event has no entry, was already written or the client no longer exists.
pub async fn record_college_timeline(
    conn: &mut PgConnection,
    event: &Event,
) -> Result<Option<i64>, HandlerError> {
    let client = client_of(event)?;
    let application: Option<i64> = event.entity_id.parse().ok();
    let label = label(event);
    let mut metadata = json!({
        "event_id": event.id,
        "event_type": event.event_type,
        "changed_fields": event.changed_fields,
        "client_id": client,
        "application_id": application,
        "institute_name": text(event, "institute_name"),
        "course_name": text(event, "course_name"),
    });
    let (activity_type, description) = match event.event_type.as_str() {
        COLLEGE_CREATE => {
            metadata["stage_name"] = after(event, "stage_name").cloned().unwrap_or(Value::Null);
            metadata["assigned_to"] = after(event, "assigned_to").cloned().unwrap_or(Value::Null);
            (
                "COLLEGE_APPLICATION_CREATED",
                format!("College Application created for {label}"),
            )
        }
        COLLEGE_ASSIGNED_TO_UPDATE => (
            "ASSIGNED",
            assignment_description(conn, event, &mut metadata, "College Application").await?,
        ),
        COLLEGE_STAGE_UPDATE => {
            let name = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_owned();
            let old = name(before(event, "stage_name"));
            let new = name(after(event, "stage_name"));
            metadata["old_stage"] = before(event, "stage").cloned().unwrap_or(Value::Null);
            metadata["new_stage"] = after(event, "stage").cloned().unwrap_or(Value::Null);
            metadata["old_stage_name"] = json!(old);
            metadata["new_stage_name"] = json!(new);
            (
                "APPLICATION_STAGE_CHANGED",
                format!("College Application moved from {old} to {new}"),
            )
        }
        _ => return Ok(None),
    };
    insert_activity(conn, client, activity_type, &description, metadata, event).await
}

/// Notifies an application's new assignee (`CollegeApplication.assigned_to.UPDATE`, or a
/// creation with an assignee) with `APPLICATION_ASSIGNED` "Application Assigned: <client>" /
/// "A college application for <client> (<course> at <institute>) has been assigned to you.",
/// unless the assignee was cleared or is the actor. Returns the new notification's id; `None`
/// when nobody is notified or the event already notified.
pub async fn notify_college_assigned(
    conn: &mut PgConnection,
    event: &Event,
) -> Result<Option<i64>, HandlerError> {
    if event.event_type != COLLEGE_ASSIGNED_TO_UPDATE && event.event_type != COLLEGE_CREATE {
        return Ok(None);
    }
    let Some(assignee) = user_id(after(event, "assigned_to")) else {
        return Ok(None);
    };
    if event.actor_id == Some(assignee) {
        return Ok(None);
    }
    let client = client_of(event)?;
    let name = match text(event, "client_name") {
        "" => format!("Client {client}"),
        name => name.to_owned(),
    };
    let label = label(event);
    let application: Option<i64> = event.entity_id.parse().ok();
    let mut notice = NewNotification::new(
        NotificationType::ApplicationAssigned,
        assignee,
        format!("Application Assigned: {name}"),
        format!("A college application for {name} ({label}) has been assigned to you."),
    );
    notice.meta_info = json!({
        "event_id": event.id,
        "entity_type": "collegeapplication",
        "entity_id": application,
        "client_id": client,
        "application_id": application,
    });
    notice.event_id = Some(event.id);
    notice.created_by = event.actor_id;
    Ok(notify(conn, notice).await?)
}

/// The college application timeline (`timeline.college_application`): see
/// [`record_college_timeline`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CollegeTimeline;

impl CollegeTimeline {
    /// The handler's name.
    pub const NAME: &'static str = "timeline.college_application";
}

#[async_trait]
impl EventHandler for CollegeTimeline {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[
            COLLEGE_CREATE,
            COLLEGE_ASSIGNED_TO_UPDATE,
            COLLEGE_STAGE_UPDATE,
        ]
    }

    async fn handle(
        &self,
        ctx: &mut HandlerContext<'_>,
        event: &Event,
    ) -> Result<(), HandlerError> {
        record_college_timeline(handler_tx(ctx, Self::NAME)?, event).await?;
        Ok(())
    }
}

leopard_events::register_handler!(CollegeTimeline);

/// The assignee's notice (`notifications.application_assigned`): see
/// [`notify_college_assigned`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CollegeAssignedNotice;

impl CollegeAssignedNotice {
    /// The handler's name.
    pub const NAME: &'static str = "notifications.application_assigned";
}

#[async_trait]
impl EventHandler for CollegeAssignedNotice {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[COLLEGE_CREATE, COLLEGE_ASSIGNED_TO_UPDATE]
    }

    async fn handle(
        &self,
        ctx: &mut HandlerContext<'_>,
        event: &Event,
    ) -> Result<(), HandlerError> {
        notify_college_assigned(handler_tx(ctx, Self::NAME)?, event).await?;
        Ok(())
    }
}

leopard_events::register_handler!(CollegeAssignedNotice);
