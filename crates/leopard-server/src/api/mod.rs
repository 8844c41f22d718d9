//! The API resources, one module per resource: routes, thin handlers, and the SQL in functions
//! taking a tenant connection.
//!
//! Every handler follows the same shape: parse, authorize (a permission gate with
//! [`require`], then the row scope with `leopard_rbac::check` or `filter` — out of scope is a
//! 404), call a named data function inside one tenant transaction, shape the response.

use axum::Router;
use leopard_http::ApiError;
use leopard_rbac::{Action, Permission, Principal, ResourceKind, SqlParam, SqlPredicate};
use sqlx::postgres::PgArguments;
use sqlx::Arguments as _;

use crate::app::AppState;

pub mod auth;
pub mod branches;
pub mod regions;

/// Every API route.
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(auth::routes())
        .merge(regions::routes())
        .merge(branches::routes())
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

/// Appends `value` to `args` (the next `$n`).
pub fn push_arg<'q, T>(args: &mut PgArguments, value: T) -> Result<(), ApiError>
where
    T: sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + 'q,
{
    args.add(value)
        .map_err(|e| ApiError::Internal(format!("binding a parameter: {e}")))
}

/// Appends a policy predicate's parameters to `args`, in order. Build the predicate with
/// `first_param` = the number of parameters already in `args` + 1, splice `predicate.sql` into
/// the query, then run it with `sqlx::query_with(&sql, args)` (or `query_as_with`, …).
pub fn push_predicate(args: &mut PgArguments, predicate: &SqlPredicate) -> Result<(), ApiError> {
    for param in &predicate.params {
        match param {
            SqlParam::Int(v) => push_arg(args, *v)?,
            SqlParam::IntArray(v) => push_arg(args, v.clone())?,
        }
    }
    Ok(())
}
