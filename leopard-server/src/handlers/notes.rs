//! The note timeline (`timeline.note`): one `client_activities` row per note creation
//! (`NOTE_ADDED` "Note added"), content edit (`NOTE_EDITED` "Note edited") and deletion
//! (`NOTE_DELETED` "Note deleted"). The original wrote only `NOTE_ADDED`; the other two types
//! existed unused.
//!
//! Note events carry the note's state (`api::crm::notes`) with `client_id`, `author` and `content`.
//! The entry is performed by the event's actor, dated when the event happened, keyed by the
//! event id (a repeated run writes nothing), and carries `note_id`, `client_id`, `author_id`
//! and — for an addition or an edit — the note's content in `metadata` (a deleted note's text
//! is not copied into the timeline).

use leopard_events::{async_trait, Event, EventHandler, HandlerContext, HandlerError};
use serde_json::{json, Value};
use sqlx::PgConnection;

use super::{handler_tx, insert_activity, latest, user_id};

/// `Note.CREATE`.
pub const NOTE_CREATE: &str = "Note.CREATE";
/// `Note.UPDATE` (recorded when the content changed).
pub const NOTE_UPDATE: &str = "Note.UPDATE";
/// `Note.DELETE`.
pub const NOTE_DELETE: &str = "Note.DELETE";

/// Writes the timeline entry of a note event. Returns the new entry's id; `None` when the
/// event was already written, the client no longer exists or the event type has no entry.
pub async fn record_note_timeline(
    conn: &mut PgConnection,
    event: &Event,
) -> Result<Option<i64>, HandlerError> {
    let (activity_type, description) = match event.event_type.as_str() {
        NOTE_CREATE => ("NOTE_ADDED", "Note added"),
        NOTE_UPDATE => ("NOTE_EDITED", "Note edited"),
        NOTE_DELETE => ("NOTE_DELETED", "Note deleted"),
        _ => return Ok(None),
    };
    let client = user_id(latest(event, "client_id")).ok_or_else(|| {
        HandlerError::new(format!(
            "{} of note {} carries no client_id",
            event.event_type, event.entity_id
        ))
    })?;
    let note: Option<i64> = event.entity_id.parse().ok();
    let mut metadata = json!({
        "event_id": event.id,
        "event_type": event.event_type,
        "note_id": note,
        "client_id": client,
        "author_id": user_id(latest(event, "author")),
    });
    if event.event_type != NOTE_DELETE {
        metadata["content"] = latest(event, "content").cloned().unwrap_or(Value::Null);
    }
    insert_activity(conn, client, activity_type, description, metadata, event).await
}

/// The note timeline (`timeline.note`): see [`record_note_timeline`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoteTimeline;

impl NoteTimeline {
    /// The handler's name.
    pub const NAME: &'static str = "timeline.note";
}

#[async_trait]
impl EventHandler for NoteTimeline {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[NOTE_CREATE, NOTE_UPDATE, NOTE_DELETE]
    }

    async fn handle(
        &self,
        ctx: &mut HandlerContext<'_>,
        event: &Event,
    ) -> Result<(), HandlerError> {
        record_note_timeline(handler_tx(ctx, Self::NAME)?, event).await?;
        Ok(())
    }
}

leopard_events::register_handler!(NoteTimeline);
