//! The task event handlers: the linked client's timeline (`timeline.task`) and the assignee's
//! notices (`notifications.task_assigned`).
//!
//! Task events (`api::crm::tasks`) carry the task's state with the keys `title`, `priority`,
//! `status`, `assigned_to`, `branch_id`, `branch_name`, `client_id` (the linked client or
//! `null`) and, after a claim, `claimed: true`.
//!
//! Both handlers are transactional and keyed by the event's id (`client_activities.event_id`,
//! `notifications (event_id, assigned_to_id, notification_type)`), so a re-delivered event
//! writes nothing twice.
//!
//! Deliberate differences from the original (`original-backend.md` §5.3, §6.1):
//! - a claim sends exactly one notice ("Task Claimed") to the claimer, not also a "Task
//!   Reassigned" one;
//! - nobody is notified of a task they assigned to themselves;
//! - completing a client-linked task writes the `TASK_COMPLETED` timeline entry the original
//!   declared but never produced.

use leopard_events::{async_trait, Event, EventHandler, HandlerContext, HandlerError};
use serde_json::{json, Value};
use sqlx::PgConnection;

use super::{after, before, handler_tx, insert_activity, latest, user_id};
use crate::notify::{notify, NewNotification, NotificationType};

/// `Task.CREATE`.
pub const TASK_CREATE: &str = "Task.CREATE";
/// `Task.assigned_to.UPDATE`.
pub const TASK_ASSIGNED_TO_UPDATE: &str = "Task.assigned_to.UPDATE";
/// `Task.status.UPDATE`.
pub const TASK_STATUS_UPDATE: &str = "Task.status.UPDATE";

/// The task id of a `Task.*` event.
fn task_id(event: &Event) -> Result<i64, HandlerError> {
    event.entity_id.parse().map_err(|_| {
        HandlerError::new(format!(
            "{} has a non-numeric task id {:?}",
            event.event_type, event.entity_id
        ))
    })
}

/// The task's title as the event last saw it.
fn title(event: &Event) -> String {
    latest(event, "title")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// Writes the linked client's timeline entry of a task event: `TASK_CREATED` ('Task "<title>"
/// created') on creation, `TASK_COMPLETED` ('Task "<title>" completed') when the status becomes
/// `COMPLETED`; performed by the event's actor, dated when the event happened. Returns the new
/// entry's id; `None` when the task is not linked to a client, the event has no entry or was
/// already written, or the client no longer exists.
pub async fn record_task_timeline(
    conn: &mut PgConnection,
    event: &Event,
) -> Result<Option<i64>, HandlerError> {
    let (activity_type, verb) = match event.event_type.as_str() {
        TASK_CREATE => ("TASK_CREATED", "created"),
        TASK_STATUS_UPDATE
            if after(event, "status").and_then(Value::as_str) == Some("COMPLETED") =>
        {
            ("TASK_COMPLETED", "completed")
        }
        _ => return Ok(None),
    };
    let Some(client) = user_id(latest(event, "client_id")) else {
        return Ok(None);
    };
    let id = task_id(event)?;
    let title = title(event);
    let metadata = json!({
        "event_id": event.id,
        "event_type": event.event_type,
        "changed_fields": event.changed_fields,
        "client_id": client,
        "task_id": id,
        "task_title": title,
    });
    insert_activity(
        conn,
        client,
        activity_type,
        &format!("Task \"{title}\" {verb}"),
        metadata,
        event,
    )
    .await
}

/// Notifies a task's assignee with `TASK_ASSIGNED`:
/// - `Task.CREATE` with an assignee other than the actor: "New Task Assigned: <title>" / "A new
///   <priority> priority task has been assigned to you.";
/// - `Task.assigned_to.UPDATE` after a claim: "Task Claimed: <title>" / "You have claimed a task
///   from <branch>." to the claimer;
/// - any other `Task.assigned_to.UPDATE` to someone other than the actor: "Task Reassigned:
///   <title>" / `Task "<title>" has been assigned to you.`
///
/// `meta_info` holds `task_id`, `priority`, `entity_type`, `entity_id`, `event_id`. Returns the
/// new notification's id; `None` when nobody is notified or the event already notified.
pub async fn notify_task_assigned(
    conn: &mut PgConnection,
    event: &Event,
) -> Result<Option<i64>, HandlerError> {
    let Some(assignee) = user_id(after(event, "assigned_to")) else {
        return Ok(None);
    };
    let id = task_id(event)?;
    let title = title(event);
    let priority = latest(event, "priority")
        .and_then(Value::as_str)
        .unwrap_or("MEDIUM")
        .to_owned();
    let claimed = after(event, "claimed").and_then(Value::as_bool) == Some(true);
    let by_actor = event.actor_id == Some(assignee);
    let (title, message) = match event.event_type.as_str() {
        TASK_CREATE if !by_actor => (
            format!("New Task Assigned: {title}"),
            format!(
                "A new {} priority task has been assigned to you.",
                priority.to_lowercase()
            ),
        ),
        TASK_ASSIGNED_TO_UPDATE if claimed => {
            let branch = before(event, "branch_name")
                .and_then(Value::as_str)
                .unwrap_or("your branch")
                .to_owned();
            (
                format!("Task Claimed: {title}"),
                format!("You have claimed a task from {branch}."),
            )
        }
        TASK_ASSIGNED_TO_UPDATE if !by_actor => (
            format!("Task Reassigned: {title}"),
            format!("Task \"{title}\" has been assigned to you."),
        ),
        _ => return Ok(None),
    };
    let mut notice = NewNotification::new(NotificationType::TaskAssigned, assignee, title, message);
    notice.meta_info = json!({
        "task_id": id,
        "priority": priority,
        "entity_type": "task",
        "entity_id": id,
        "event_id": event.id,
    });
    notice.event_id = Some(event.id);
    notice.created_by = event.actor_id;
    Ok(notify(conn, notice).await?)
}

/// The linked client's timeline (`timeline.task`): see [`record_task_timeline`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskTimeline;

impl TaskTimeline {
    /// The handler's name.
    pub const NAME: &'static str = "timeline.task";
}

#[async_trait]
impl EventHandler for TaskTimeline {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[TASK_CREATE, TASK_STATUS_UPDATE]
    }

    async fn handle(
        &self,
        ctx: &mut HandlerContext<'_>,
        event: &Event,
    ) -> Result<(), HandlerError> {
        record_task_timeline(handler_tx(ctx, Self::NAME)?, event).await?;
        Ok(())
    }
}

leopard_events::register_handler!(TaskTimeline);

/// The assignee's notice (`notifications.task_assigned`): see [`notify_task_assigned`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskAssignedNotice;

impl TaskAssignedNotice {
    /// The handler's name.
    pub const NAME: &'static str = "notifications.task_assigned";
}

#[async_trait]
impl EventHandler for TaskAssignedNotice {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[TASK_CREATE, TASK_ASSIGNED_TO_UPDATE]
    }

    async fn handle(
        &self,
        ctx: &mut HandlerContext<'_>,
        event: &Event,
    ) -> Result<(), HandlerError> {
        notify_task_assigned(handler_tx(ctx, Self::NAME)?, event).await?;
        Ok(())
    }
}

leopard_events::register_handler!(TaskAssignedNotice);
