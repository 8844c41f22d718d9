//! Schema-per-tenant PostgreSQL for Leopard.
//!
//! - [`registry`]: the tenant and domain registry in the `public` schema, held in memory as an
//!   immutable snapshot that is swapped on `LISTEN/NOTIFY` and on a periodic reload, so resolving
//!   a request's tenant never queries the database.
//! - [`layer`]: [`TenancyLayer`], a tower layer that resolves each request's tenant and puts a
//!   [`TenantContext`] into the request extensions (JSON 404/403 otherwise).
//! - [`context`]: [`TenantContext::begin`], the only way to obtain a tenant-scoped database handle:
//!   a transaction whose `search_path` is set with `SET LOCAL` in the same round trip as `BEGIN`.
//! - [`provision`]: create a tenant (schema, migrations, domains) in one transaction; suspend,
//!   activate, deactivate or drop it; manage its domains.
//! - [`migrate`]: embedded shared and tenant migration sets; apply shared, one schema, or all
//!   schemas with bounded parallelism, persisted per-tenant status, resume and `skip_failing`.
//! - [`backup`]: tenant backup archives (one consistent snapshot of a schema's rows plus its
//!   media files and a manifest of hashes), restore into a new tenant in one transaction, clone,
//!   and verification of a tenant against an archive.
//! - [`embedded`]: a private PostgreSQL cluster started from the local binaries.
//! - `testing` (feature): [`testing::TestDatabase`], a fresh database per test.

pub mod backup;
pub mod context;
pub mod embedded;
mod error;
pub mod layer;
pub mod migrate;
pub mod model;
mod pool;
pub mod provision;
pub mod registry;
#[cfg(feature = "testing")]
pub mod testing;

pub use backup::{Archive, Manifest, Restored, Verification};
pub use context::{TenantContext, TenantTx};
pub use error::TenancyError;
pub use layer::{TenancyLayer, TenancyService};
pub use migrate::{MigrateAllOptions, MigrateReport, Migration, MigrationSet, Migrator};
pub use model::{NewTenant, SubscriptionStatus, Tenant, TenantInfo};
pub use provision::{Provisioned, Provisioner};
pub use registry::{RefreshTask, ResolveConfig, TenantRegistry};

/// The `LISTEN/NOTIFY` channel on which registry changes are announced.
pub const NOTIFY_CHANNEL: &str = "leopard_tenancy";
