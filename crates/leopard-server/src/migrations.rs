//! The server's embedded migration sets.

use std::sync::Arc;

use leopard_tenancy::{Migration, MigrationSet};

/// Tenant migrations of the CRM, applied to every tenant schema in order.
pub const TENANT: &[Migration] = &[Migration::new(
    1,
    "content_types",
    include_str!("../migrations/tenant/0001_content_types.sql"),
)];

/// The server's migration set (no shared migrations beyond the registry's own yet).
pub fn set() -> Arc<MigrationSet> {
    // The constant lists are checked by a unit test, so this never panics.
    Arc::new(MigrationSet::new(Vec::new(), TENANT.to_vec()).expect("versions are increasing"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_sets_are_well_formed() {
        assert!(MigrationSet::new(Vec::new(), TENANT.to_vec()).is_ok());
        assert_eq!(set().latest_tenant_version(), 1);
    }
}
