//! Timeline entries of the client profile sections and the profile picture
//! (`timeline.profile`): the activity types the original defined but never wrote.
//!
//! - `Passport.CREATE` / `Passport.UPDATE` → `PASSPORT_UPDATED` "Passport updated";
//! - `Proficiency.CREATE` → `PROFICIENCY_ADDED` "<exam name> result added";
//! - `Qualification.CREATE` → `QUALIFICATION_ADDED` "Qualification added: <course>";
//! - `ProfilePicture.CREATE` / `ProfilePicture.UPDATE` → `PROFILE_PICTURE_UPLOADED` "Profile
//!   picture uploaded".
//!
//! The events' states carry `client_id`; the entry is performed by the event's actor, dated when
//! the event happened, written once per event (`client_activities.event_id`), and skipped when
//! the client no longer exists. An update that changed nothing records no event, hence no entry.

use leopard_events::{async_trait, Event, EventHandler, HandlerContext, HandlerError};
use serde_json::{json, Value};
use sqlx::PgConnection;

use super::{handler_tx, insert_activity, latest, user_id};

/// `Passport.CREATE`.
pub const PASSPORT_CREATE: &str = "Passport.CREATE";
/// `Passport.UPDATE`.
pub const PASSPORT_UPDATE: &str = "Passport.UPDATE";
/// `Proficiency.CREATE`.
pub const PROFICIENCY_CREATE: &str = "Proficiency.CREATE";
/// `Qualification.CREATE`.
pub const QUALIFICATION_CREATE: &str = "Qualification.CREATE";
/// `ProfilePicture.CREATE`.
pub const PROFILE_PICTURE_CREATE: &str = "ProfilePicture.CREATE";
/// `ProfilePicture.UPDATE`.
pub const PROFILE_PICTURE_UPDATE: &str = "ProfilePicture.UPDATE";

/// A string of the event's latest state, trimmed (empty when absent).
fn latest_text<'e>(event: &'e Event, key: &str) -> &'e str {
    latest(event, key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
}

/// Writes the timeline entry of a profile event (see the module doc). Returns the new entry's
/// id; `None` when the event was already written, the client no longer exists or the event type
/// has no entry.
pub async fn record_profile_timeline(
    conn: &mut PgConnection,
    event: &Event,
) -> Result<Option<i64>, HandlerError> {
    let client = user_id(latest(event, "client_id")).ok_or_else(|| {
        HandlerError::new(format!(
            "{} {} carries no client_id",
            event.event_type, event.entity_id
        ))
    })?;
    let mut metadata = json!({
        "event_id": event.id,
        "event_type": event.event_type,
        "changed_fields": event.changed_fields,
        "client_id": client,
        "entity_type": event.entity_type,
        "entity_id": event.entity_id,
    });
    let (activity_type, description) = match event.event_type.as_str() {
        PASSPORT_CREATE | PASSPORT_UPDATE => {
            metadata["passport_country"] = json!(latest_text(event, "passport_country"));
            metadata["date_of_expiry"] = latest(event, "date_of_expiry")
                .cloned()
                .unwrap_or(Value::Null);
            ("PASSPORT_UPDATED", "Passport updated".to_owned())
        }
        PROFICIENCY_CREATE => {
            let exam = latest_text(event, "test_name_display");
            let exam = if exam.is_empty() {
                "Language test"
            } else {
                exam
            };
            metadata["test_name"] = json!(exam);
            metadata["overall_score"] = latest(event, "overall_score")
                .cloned()
                .unwrap_or(Value::Null);
            ("PROFICIENCY_ADDED", format!("{exam} result added"))
        }
        QUALIFICATION_CREATE => {
            let course = latest_text(event, "course");
            metadata["course"] = json!(course);
            (
                "QUALIFICATION_ADDED",
                format!("Qualification added: {course}"),
            )
        }
        PROFILE_PICTURE_CREATE | PROFILE_PICTURE_UPDATE => {
            metadata["file_type"] = json!(latest_text(event, "file_type"));
            metadata["file_size"] = latest(event, "file_size").cloned().unwrap_or(Value::Null);
            (
                "PROFILE_PICTURE_UPLOADED",
                "Profile picture uploaded".to_owned(),
            )
        }
        _ => return Ok(None),
    };
    insert_activity(conn, client, activity_type, &description, metadata, event).await
}

/// The profile timeline (`timeline.profile`): see [`record_profile_timeline`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ProfileTimeline;

impl ProfileTimeline {
    /// The handler's name.
    pub const NAME: &'static str = "timeline.profile";
}

#[async_trait]
impl EventHandler for ProfileTimeline {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[
            PASSPORT_CREATE,
            PASSPORT_UPDATE,
            PROFICIENCY_CREATE,
            QUALIFICATION_CREATE,
            PROFILE_PICTURE_CREATE,
            PROFILE_PICTURE_UPDATE,
        ]
    }

    async fn handle(
        &self,
        ctx: &mut HandlerContext<'_>,
        event: &Event,
    ) -> Result<(), HandlerError> {
        record_profile_timeline(handler_tx(ctx, Self::NAME)?, event).await?;
        Ok(())
    }
}

leopard_events::register_handler!(ProfileTimeline);
