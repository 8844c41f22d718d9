//! A small notes service that embeds `leopard-tenancy` as a library.
//!
//! Each tenant has its own PostgreSQL schema holding its own `notes` table. The pieces:
//!
//! - [`migration_set`]: the service's tenant migrations ([`TENANT_MIGRATIONS`], SQL files under
//!   `migrations/` embedded with `include_str!`), applied to every tenant schema when it is
//!   provisioned and by `Migrator::migrate_all` afterwards.
//! - [`app`]: the axum router behind a [`TenancyLayer`], which resolves each request's tenant
//!   from its `Host` header and puts a [`TenantContext`] into the request extensions, or answers
//!   404 `tenant_not_found` / 403 `tenant_inactive` itself.
//! - [`notes`]: the SQL, as plain functions over a `&mut PgConnection`. Handlers open a tenant
//!   transaction with [`TenantContext::begin`] and pass it in; they only parse, call and shape.
//! - [`error`]: the service's error type and its JSON answers.
//!
//! | Route | Tenant | Answer |
//! |---|---|---|
//! | `GET /notes/` | required | 200, the newest notes first (at most [`notes::LIST_LIMIT`]) |
//! | `POST /notes/` `{"body": "..."}` | required | 201, the stored note; 400 on invalid input |
//! | `GET /health/` | none | 200 `{"status": "ok"}` |

pub mod error;
pub mod notes;

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use leopard_tenancy::{
    Migration, MigrationSet, TenancyError, TenancyLayer, TenantContext, TenantRegistry,
};
use serde::Deserialize;
use serde_json::json;

pub use error::ApiError;
use notes::{Note, NoteBody};

/// The service's tenant migrations, applied in order to every tenant schema.
pub const TENANT_MIGRATIONS: &[Migration] = &[Migration::new(
    1,
    "notes",
    include_str!("../migrations/0001_notes.sql"),
)];

/// Paths served without a tenant (prefixes).
pub const PUBLIC_PATHS: &[&str] = &["/health/"];

/// The service's migration set: no shared (public-schema) migrations of its own, and
/// [`TENANT_MIGRATIONS`] for every tenant schema.
pub fn migration_set() -> Result<MigrationSet, TenancyError> {
    MigrationSet::new(Vec::new(), TENANT_MIGRATIONS.to_vec())
}

/// The service's router, resolving tenants through `registry`.
///
/// Keep the registry fresh while serving (`TenantRegistry::start_refresh`), or call
/// `TenantRegistry::reload` after changing tenants: resolution reads only the in-memory
/// snapshot.
pub fn app(registry: Arc<TenantRegistry>) -> Router {
    let tenancy = PUBLIC_PATHS
        .iter()
        .fold(TenancyLayer::new(registry), |layer, path| {
            layer.with_public_path(*path)
        });
    Router::new()
        .route("/notes/", get(list_notes).post(create_note))
        .route("/health/", get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Applied to every route and to the fallbacks: an unknown host gets the layer's 404
        // whatever the path.
        .layer(tenancy)
}

/// `GET /notes/`: the tenant's newest notes.
async fn list_notes(Extension(ctx): Extension<TenantContext>) -> Result<Json<Vec<Note>>, ApiError> {
    let mut tx = ctx.begin().await?;
    let notes = notes::list(&mut tx, notes::LIST_LIMIT).await?;
    tx.commit().await?;
    Ok(Json(notes))
}

/// The body of `POST /notes/`. `body` stays untyped so that a missing, `null` or non-string
/// value is reported on the field instead of as unreadable JSON.
#[derive(Debug, Deserialize)]
struct NoteInput {
    body: Option<serde_json::Value>,
}

/// `POST /notes/`: stores a note for the tenant.
async fn create_note(
    Extension(ctx): Extension<TenantContext>,
    input: Result<Json<NoteInput>, JsonRejection>,
) -> Result<(StatusCode, Json<Note>), ApiError> {
    let Json(input) = input?;
    let body = match &input.body {
        None | Some(serde_json::Value::Null) => NoteBody::parse(None),
        Some(serde_json::Value::String(text)) => NoteBody::parse(Some(text)),
        Some(_) => Err("Not a valid string.".to_owned()),
    }
    .map_err(|message| ApiError::field("body", message))?;
    let mut tx = ctx.begin().await?;
    let note = notes::create(&mut tx, &body).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(note)))
}

/// `GET /health/`: answers without a tenant and without the database (a liveness check).
async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Unknown paths of a known tenant.
async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// Known paths with the wrong method.
async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(json!({ "detail": "Method not allowed.", "code": "method_not_allowed" })),
    )
        .into_response()
}
