//! An application's own event handler, registered with `leopard_events::register_handler!`.
//!
//! [`ClientCounter`] counts `Client.CREATE` events per tenant into a table of its own
//! (`client_stats`, created by [`TENANT_MIGRATION`]). It is transactional (the default): its
//! write commits in the same tenant transaction that marks the event handled, so each event
//! is counted exactly once, whatever the retries.
//!
//! A binary picks the handler up with `HandlerRegistry::from_inventory()`, provided the linker
//! keeps this crate: reference it from the binary (`use custom_handler as _;` or any item).

use leopard_events::{async_trait, Event, EventHandler, HandlerContext, HandlerError};
use leopard_tenancy::Migration;

/// The tenant table the handler writes: one row holding how many clients were created.
pub const TENANT_MIGRATION: Migration = Migration::new(
    1,
    "client_stats",
    "CREATE TABLE client_stats (
         id         integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
         created    bigint NOT NULL DEFAULT 0,
         last_event uuid
     )",
);

/// Counts `Client.CREATE` events into `client_stats`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientCounter;

impl ClientCounter {
    /// The handler's name (names are unique in a program; prefix them with the application).
    pub const NAME: &'static str = "example.client_counter";
}

#[async_trait]
impl EventHandler for ClientCounter {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> &'static [&'static str] {
        &["Client.CREATE"]
    }

    async fn handle(
        &self,
        ctx: &mut HandlerContext<'_>,
        event: &Event,
    ) -> Result<(), HandlerError> {
        let tx = ctx
            .tx()
            .ok_or_else(|| HandlerError::new("ClientCounter is transactional"))?;
        sqlx::query(
            "INSERT INTO client_stats (id, created, last_event) VALUES (1, 1, $1)
             ON CONFLICT (id) DO UPDATE
                SET created = client_stats.created + 1, last_event = EXCLUDED.last_event",
        )
        .bind(event.id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

leopard_events::register_handler!(ClientCounter);

/// Every handler of the program, this crate's included (calling it keeps the crate linked).
pub fn registry() -> Result<leopard_events::HandlerRegistry, leopard_events::EventsError> {
    leopard_events::HandlerRegistry::from_inventory()
}
