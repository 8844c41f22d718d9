//! Leopard's vocabulary: typed ids and validated newtypes shared by every other crate.
//!
//! Nothing here does IO. A value of [`TenantSlug`], [`SchemaName`] or [`HostName`] is valid by
//! construction, so code that receives one never re-validates it, and a [`SchemaName`] can be
//! spliced into SQL only in its quoted form ([`SchemaName::quoted`]).

mod country;
mod error;
mod ids;
mod names;

pub use country::{Country, COUNTRIES};
pub use error::CoreError;
pub use ids::{DomainId, TenantId, UserId};
pub use names::{HostName, SchemaName, TenantSlug, RESERVED_SLUGS};
