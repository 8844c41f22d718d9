//! The server's built-in event handlers.
//!
//! Handlers react to the domain events the API records in the tenant transaction of each change
//! (`leopard_events::record`); the event bus started by `leopard serve` runs them. They register
//! with [`leopard_events::register_handler!`] like any application's, so `leopard events
//! handlers` lists them next to the others and [`registry`] refuses duplicate names.
//!
//! - [`AuditRecord`] (`audit.record`, every event type, transactional): one `audit_log` row per
//!   event, written in the transaction that marks the event handled, so exactly once.

use leopard_events::{
    async_trait, Event, EventHandler, HandlerContext, HandlerError, HandlerRegistry,
};

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

/// Every handler registered in the program (the built-in ones and those of linked crates),
/// refusing duplicate names. Calling it through this module also keeps the built-in
/// registrations linked into the binary.
pub fn registry() -> Result<HandlerRegistry, leopard_events::EventsError> {
    HandlerRegistry::from_inventory()
}
