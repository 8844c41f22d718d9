//! Leopard's event bus: a transactional outbox with handlers, workers, retries and pauses.
//!
//! - [`record`] writes an event in the caller's tenant transaction, so an event exists exactly
//!   when its change committed; [`diff`] turns two states into per-field events.
//! - [`EventHandler`]s register with [`register_handler!`] (through `inventory`); at start-up
//!   [`HandlerRegistry::from_inventory`] sorts them and refuses duplicate names.
//! - [`EventBus`] runs the workers ([`WorkerConfig`]): batches claimed with `FOR UPDATE SKIP
//!   LOCKED` under a lease, per-handler results so retries run only what failed, exponential
//!   backoff with jitter ([`Backoff`]), `failed` after the maximum attempts, expired leases
//!   recovered, wake-up on commit ([`Waker`], [`commit`]) with polling as the fallback.
//! - [`control`]: global and per-tenant pause/resume, status, retry, retention pruning.
//!
//! All events live in one public table (`public.leopard_events`, see [`MIGRATION`]), so a poll
//! costs the same for one tenant or ten thousand.

pub mod control;
mod error;
mod event;
mod handler;
#[cfg(feature = "nats")]
pub mod nats;
mod record;
mod worker;

pub use error::EventsError;
pub use event::{diff, Action, Event, NewEvent};
pub use handler::{
    EventHandler, HandlerContext, HandlerError, HandlerInfo, HandlerRegistration, HandlerRegistry,
};
pub use record::{record, record_all};
pub use worker::{commit, Backoff, EventBus, Running, Stats, Waker, WorkerConfig, CHANNEL};

/// Re-exported for [`register_handler!`] and handler implementations.
pub use async_trait::async_trait;

/// The shared (public-schema) migration creating the bus's tables; applications add it to their
/// shared migration set.
pub const MIGRATION: &str = include_str!("../migrations/0001_events.sql");

#[doc(hidden)]
pub mod __private {
    pub use inventory;
}
