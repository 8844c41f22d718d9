//! Domain events of the API's write handlers: small helpers that turn the response structs
//! (already `Serialize`) into event states, record the events in the change's own tenant
//! transaction (so an event exists exactly when its change committed), and commit while waking
//! the event workers.
//!
//! Event types follow `leopard_events`: `<Entity>.CREATE|UPDATE|DELETE`, plus one
//! `<Entity>.<field>.UPDATE` per changed tracked field ([`leopard_events::diff`]). The actor is
//! always the caller's user id.

use leopard_events::{Action, NewEvent, Waker};
use leopard_http::ApiError;
use leopard_tenancy::TenantTx;
use serde::Serialize;
use serde_json::Value;

/// The JSON state of an entity as recorded in its events.
pub(crate) fn state<T: Serialize>(value: &T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|e| ApiError::Internal(format!("event state: {e}")))
}

/// `<entity>.CREATE` of `id` in state `current`, by `actor`.
pub(crate) fn created(entity: &str, id: i64, current: Value, actor: i64) -> NewEvent {
    NewEvent::created(entity, id, current).by(actor)
}

/// `<entity>.DELETE` of `id`, last seen in state `previous`, by `actor`.
pub(crate) fn deleted(entity: &str, id: i64, previous: Value, actor: i64) -> NewEvent {
    NewEvent::deleted(entity, id, previous).by(actor)
}

/// What an update changed: the entity, its states before and after, the tracked fields, the
/// actor.
pub(crate) struct Change<'a> {
    /// `User`, `Branch`, …
    pub(crate) entity: &'a str,
    /// The entity's id.
    pub(crate) id: i64,
    /// The state before.
    pub(crate) before: &'a Value,
    /// The state after.
    pub(crate) after: &'a Value,
    /// The fields whose changes become events.
    pub(crate) tracked: &'a [&'a str],
    /// Who changed it.
    pub(crate) actor: i64,
}

/// Records the update events of `change` (none when nothing tracked changed) in `tx`, commits
/// it and wakes the event workers: the end of every update handler.
pub(crate) async fn commit_change(
    mut tx: TenantTx,
    waker: &Waker,
    change: Change<'_>,
) -> Result<(), ApiError> {
    let events = leopard_events::diff(
        change.entity,
        change.id,
        change.before,
        change.after,
        change.tracked,
    )
    .into_iter()
    .map(|e| e.by(change.actor))
    .collect();
    record(&mut tx, events).await?;
    commit(tx, waker).await
}

/// One `<entity>.UPDATE` naming `changed` fields explicitly (a change no tracked field shows,
/// such as a restore clearing `deleted_at`).
pub(crate) fn updated_fields(
    entity: &str,
    id: i64,
    previous: Value,
    current: Value,
    changed: &[&str],
    actor: i64,
) -> NewEvent {
    let mut event = NewEvent::new(entity, id, Action::Update)
        .with_previous(previous)
        .with_current(current)
        .by(actor);
    event.changed_fields = changed.iter().map(|f| (*f).to_owned()).collect();
    event
}

/// Records `events` in `tx` (one statement; nothing for an empty list).
pub(crate) async fn record(tx: &mut TenantTx, events: Vec<NewEvent>) -> Result<(), ApiError> {
    leopard_events::record_all(tx, events)
        .await
        .map_err(ApiError::from)?;
    Ok(())
}

/// Commits `tx` and wakes the event workers.
pub(crate) async fn commit(tx: TenantTx, waker: &Waker) -> Result<(), ApiError> {
    leopard_events::commit(tx, waker)
        .await
        .map_err(ApiError::from)
}
