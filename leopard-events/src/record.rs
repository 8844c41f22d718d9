//! Recording: an event is written by the caller's tenant transaction, so it exists exactly when
//! the change that caused it committed. Recording sends no NOTIFY (that would take PostgreSQL's
//! global notify lock at every writer's commit); call [`crate::Waker::wake`] after the commit
//! (or [`crate::commit`]) for prompt pickup — workers also poll.

use leopard_tenancy::TenantTx;
use uuid::Uuid;

use crate::{EventsError, NewEvent};

/// Writes `event` in `tx` and returns its id (a UUIDv7).
pub async fn record(tx: &mut TenantTx, event: NewEvent) -> Result<Uuid, EventsError> {
    let ids = record_all(tx, vec![event]).await?;
    Ok(ids[0])
}

/// Writes several events in `tx` with one statement; returns their ids in order.
pub async fn record_all(
    tx: &mut TenantTx,
    events: Vec<NewEvent>,
) -> Result<Vec<Uuid>, EventsError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let tenant_id = tx.tenant().id.0;
    let tenant_slug = tx.tenant().slug.to_string();
    let n = events.len();
    let mut ids = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    let mut entity_types = Vec::with_capacity(n);
    let mut entity_ids = Vec::with_capacity(n);
    let mut actions = Vec::with_capacity(n);
    let mut previous = Vec::with_capacity(n);
    let mut current = Vec::with_capacity(n);
    let mut changed = Vec::with_capacity(n);
    let mut actors = Vec::with_capacity(n);
    for event in events {
        if event.event_type.is_empty() || event.event_type.len() > 200 {
            return Err(EventsError::Invalid {
                what: "event type",
                value: event.event_type,
            });
        }
        ids.push(Uuid::now_v7());
        types.push(event.event_type);
        entity_types.push(event.entity_type);
        entity_ids.push(event.entity_id);
        actions.push(event.action.as_str());
        previous.push(event.previous);
        current.push(event.current);
        // Arrays of arrays cannot be bound; the changed fields travel as a JSON list.
        changed.push(serde_json::to_value(&event.changed_fields)?);
        actors.push(event.actor_id);
    }
    sqlx::query(
        "INSERT INTO public.leopard_events
            (id, tenant_id, tenant_slug, event_type, entity_type, entity_id, action,
             previous, current, changed_fields, actor_id)
         SELECT id, $2, $3, t, et, ei, a, p, c,
                ARRAY(SELECT jsonb_array_elements_text(cf)), actor
           FROM unnest($1::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
                       $8::jsonb[], $9::jsonb[], $10::jsonb[], $11::bigint[])
                AS x(id, t, et, ei, a, p, c, cf, actor)",
    )
    .bind(&ids)
    .bind(tenant_id)
    .bind(&tenant_slug)
    .bind(&types)
    .bind(&entity_types)
    .bind(&entity_ids)
    .bind(&actions)
    .bind(&previous)
    .bind(&current)
    .bind(&changed)
    .bind(&actors)
    .execute(&mut **tx)
    .await?;
    Ok(ids)
}
