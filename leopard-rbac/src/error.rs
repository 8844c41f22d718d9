//! The one error type of `leopard-rbac`.

/// Everything that can go wrong when reading RBAC vocabulary from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RbacError {
    /// A permission codename that is not in the catalogue.
    #[error("unknown permission: {0}")]
    UnknownPermission(String),
    /// A group name that is not one of the built-in roles.
    #[error("unknown role: {0}")]
    UnknownRole(String),
}
