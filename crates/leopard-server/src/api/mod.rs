//! The API resources, one module per resource: routes, thin handlers, and the SQL in functions
//! taking a tenant connection.
//!
//! Every handler follows the same shape: parse, authorize (a permission gate with
//! [`require`], then the row scope with `leopard_rbac::check` or `filter` — out of scope is a
//! 404), call a named data function inside one tenant transaction, shape the response.

use axum::Router;
use leopard_http::ApiError;
use leopard_rbac::{Action, Permission, Principal, ResourceKind};

use crate::app::AppState;

pub mod auth;

/// Every API route.
pub fn routes() -> Router<AppState> {
    Router::new().merge(auth::routes())
}

/// 403 unless `principal` holds the permission to do `action` on `kind`.
pub fn require(principal: &Principal, action: Action, kind: ResourceKind) -> Result<(), ApiError> {
    require_permission(principal, Permission::new(kind, action))
}

/// 403 unless `principal` holds `permission`.
pub fn require_permission(principal: &Principal, permission: Permission) -> Result<(), ApiError> {
    if principal.has(permission) {
        Ok(())
    } else {
        Err(ApiError::permission_denied())
    }
}

/// A query-string boolean: `true`/`1`/`yes`/`on` (any case) are true, everything else false.
pub fn truthy(value: &str) -> bool {
    matches!(
        value.to_ascii_lowercase().as_str(),
        "true" | "1" | "yes" | "on"
    )
}
