//! [`EventsError`]: everything the event bus can fail with.

/// An event-bus failure.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Tenancy failed (e.g. opening a tenant transaction).
    #[error(transparent)]
    Tenancy(#[from] leopard_tenancy::TenancyError),
    /// Two handlers were registered under one name.
    #[error("handler {0:?} is registered more than once")]
    DuplicateHandler(String),
    /// A handler name or event type is malformed.
    #[error("invalid {what}: {value:?}")]
    Invalid {
        /// What was invalid.
        what: &'static str,
        /// The offending value.
        value: String,
    },
    /// A state could not be serialised.
    #[error("serialisation failed: {0}")]
    Serialization(#[from] serde_json::Error),
    /// No such tenant.
    #[error("no tenant {0:?}")]
    UnknownTenant(String),
    /// No such event.
    #[error("no event {0}")]
    UnknownEvent(uuid::Uuid),
}
