//! Leopard: schema-per-tenant PostgreSQL, RBAC and events for multi-tenant SaaS CRMs.
//!
//! This facade re-exports the member crates:
//! - [`core`]: ids and validated newtypes;
//! - [`tenancy`]: registry, resolution, the tower layer, tenant transactions, provisioning and
//!   migrations;
//! - [`rbac`]: the policy engine;
//! - [`events`]: the transactional outbox and workers;
//! - [`http`]: axum extractors, errors and JSON responses;
//! - [`server`]: the reference CRM server behind the `leopard` binary.

pub use leopard_core as core;
pub use leopard_events as events;
pub use leopard_http as http;
pub use leopard_rbac as rbac;
pub use leopard_server as server;
pub use leopard_tenancy as tenancy;
