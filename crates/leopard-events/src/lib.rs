//! Leopard's event bus.
//!
//! This crate is intentionally empty until the events issue fills it: a transactional outbox
//! written in the same transaction as the change, handlers registered with `inventory`, a worker
//! pool with retries and backoff, pause/resume and retention. Nothing here pretends to deliver
//! events yet.
