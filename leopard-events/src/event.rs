//! Events: what [`crate::record`] writes and handlers receive.
//!
//! An event type is `<Entity>.<ACTION>` (`Client.CREATE`) or, for one field's change,
//! `<Entity>.<field>.UPDATE` (`Client.assigned_to.UPDATE`). [`diff`] turns two states of a
//! record into the per-field events of its tracked fields.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// What happened to the entity. Soft deletes are `Delete`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Action {
    /// Created.
    Create,
    /// Changed.
    Update,
    /// Deleted (soft deletes included).
    Delete,
}

impl Action {
    /// `CREATE`, `UPDATE` or `DELETE`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Create => "CREATE",
            Action::Update => "UPDATE",
            Action::Delete => "DELETE",
        }
    }

    /// Parses `CREATE`, `UPDATE` or `DELETE`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "CREATE" => Some(Action::Create),
            "UPDATE" => Some(Action::Update),
            "DELETE" => Some(Action::Delete),
            _ => None,
        }
    }
}

/// An event to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// `Client.CREATE`, `Client.assigned_to.UPDATE`, …
    pub event_type: String,
    /// `Client`, `Task`, …
    pub entity_type: String,
    /// The entity's id, as text.
    pub entity_id: String,
    /// What happened.
    pub action: Action,
    /// The state before (updates and deletes).
    pub previous: Option<Value>,
    /// The state after (creates and updates).
    pub current: Option<Value>,
    /// The fields that changed.
    pub changed_fields: Vec<String>,
    /// The user who caused it.
    pub actor_id: Option<i64>,
}

impl NewEvent {
    /// `<entity>.<ACTION>` of `entity_id`, with no states yet.
    pub fn new(entity_type: &str, entity_id: impl ToString, action: Action) -> Self {
        Self {
            event_type: format!("{entity_type}.{}", action.as_str()),
            entity_type: entity_type.to_owned(),
            entity_id: entity_id.to_string(),
            action,
            previous: None,
            current: None,
            changed_fields: Vec::new(),
            actor_id: None,
        }
    }

    /// The creation of `entity_id` in state `current`.
    pub fn created(entity_type: &str, entity_id: impl ToString, current: Value) -> Self {
        Self::new(entity_type, entity_id, Action::Create).with_current(current)
    }

    /// The deletion (soft or hard) of `entity_id`, last seen in state `previous`.
    pub fn deleted(entity_type: &str, entity_id: impl ToString, previous: Value) -> Self {
        Self::new(entity_type, entity_id, Action::Delete).with_previous(previous)
    }

    /// The same event with `previous` as the state before.
    #[must_use]
    pub fn with_previous(mut self, previous: Value) -> Self {
        self.previous = Some(previous);
        self
    }

    /// The same event with `current` as the state after.
    #[must_use]
    pub fn with_current(mut self, current: Value) -> Self {
        self.current = Some(current);
        self
    }

    /// The same event caused by user `actor_id`.
    #[must_use]
    pub fn by(mut self, actor_id: i64) -> Self {
        self.actor_id = Some(actor_id);
        self
    }
}

/// The per-field `UPDATE` events between two states of an entity, one per field of `tracked`
/// whose value differs (a missing field counts as `null`), plus — when anything tracked changed —
/// one `<Entity>.UPDATE` carrying every changed field. Empty when nothing tracked changed.
pub fn diff(
    entity_type: &str,
    entity_id: impl ToString,
    previous: &Value,
    current: &Value,
    tracked: &[&str],
) -> Vec<NewEvent> {
    let entity_id = entity_id.to_string();
    let changed: Vec<&str> = tracked
        .iter()
        .copied()
        .filter(|f| {
            previous.get(f).unwrap_or(&Value::Null) != current.get(f).unwrap_or(&Value::Null)
        })
        .collect();
    if changed.is_empty() {
        return Vec::new();
    }
    let mut events = Vec::with_capacity(changed.len() + 1);
    let mut whole = NewEvent::new(entity_type, &entity_id, Action::Update)
        .with_previous(previous.clone())
        .with_current(current.clone());
    whole.changed_fields = changed.iter().map(|f| (*f).to_owned()).collect();
    events.push(whole);
    for field in changed {
        let mut one = NewEvent::new(entity_type, &entity_id, Action::Update)
            .with_previous(previous.clone())
            .with_current(current.clone());
        one.event_type = format!("{entity_type}.{field}.UPDATE");
        one.changed_fields = vec![field.to_owned()];
        events.push(one);
    }
    events
}

/// A recorded event, as handlers receive it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// UUIDv7.
    pub id: Uuid,
    /// The tenant's registry id.
    pub tenant_id: i64,
    /// The tenant's slug.
    pub tenant_slug: String,
    /// `Client.CREATE`, …
    pub event_type: String,
    /// `Client`, …
    pub entity_type: String,
    /// The entity's id, as text.
    pub entity_id: String,
    /// What happened.
    pub action: Action,
    /// The state before.
    pub previous: Option<Value>,
    /// The state after.
    pub current: Option<Value>,
    /// The fields that changed.
    pub changed_fields: Vec<String>,
    /// Who caused it.
    pub actor_id: Option<i64>,
    /// When it was recorded.
    pub occurred_at: DateTime<Utc>,
    /// Which attempt this is (1 for the first).
    pub attempt: i32,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn diff_emits_one_event_per_changed_tracked_field_and_one_for_the_whole_update() {
        let before = json!({"stage": "LEAD", "assigned_to": 1, "notes": "a"});
        let after = json!({"stage": "CLIENT", "assigned_to": 1, "notes": "b"});
        let events = diff("Client", 7, &before, &after, &["stage", "assigned_to"]);
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(types, ["Client.UPDATE", "Client.stage.UPDATE"]);
        assert_eq!(events[0].changed_fields, ["stage"]);
        assert_eq!(events[1].entity_id, "7");
        assert_eq!(
            events[1].previous.as_ref().map(|p| &p["stage"]),
            Some(&json!("LEAD"))
        );
    }

    #[test]
    fn a_missing_field_counts_as_null_and_no_change_means_no_event() {
        let before = json!({"assigned_to": null});
        let after = json!({});
        assert!(diff("Client", 1, &before, &after, &["assigned_to"]).is_empty());
        let after = json!({"assigned_to": 3});
        assert_eq!(
            diff("Client", 1, &before, &after, &["assigned_to"]).len(),
            2
        );
    }

    #[test]
    fn event_types_follow_the_entity_action_convention() {
        assert_eq!(
            NewEvent::created("Task", 1, json!({})).event_type,
            "Task.CREATE"
        );
        assert_eq!(
            NewEvent::deleted("Branch", 2, json!({})).event_type,
            "Branch.DELETE"
        );
        assert_eq!(Action::parse("UPDATE"), Some(Action::Update));
    }
}
