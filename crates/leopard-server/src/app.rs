//! The HTTP application: routes behind the tenancy layer.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use leopard_http::Tenant;
use leopard_tenancy::{TenancyLayer, TenantRegistry};
use serde_json::json;
use sqlx::postgres::PgPool;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

/// Shared state of the HTTP application.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Used only by the health check; tenant data is reached through tenant contexts.
    health_pool: PgPool,
}

/// Paths that are served without a tenant.
pub const PUBLIC_PATHS: &[&str] = &["/health/"];

/// Builds the application router for `registry` (whose pool also answers the health check).
pub fn router(pool: PgPool, registry: Arc<TenantRegistry>) -> Router {
    let mut tenancy = TenancyLayer::new(registry);
    for path in PUBLIC_PATHS {
        tenancy = tenancy.with_public_path(*path);
    }
    Router::new()
        .route("/health/", get(health))
        .route("/api/public/tenant-info/", get(tenant_info))
        .with_state(AppState { health_pool: pool })
        .layer(tenancy)
        .layer(
            // Spans carry the method and path only: query strings may hold tokens.
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = %req.uri().path(),
                        tenant = tracing::field::Empty,
                    )
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
}

/// `GET /health/`: 200 when the database answers within 2 s, else 503.
async fn health(State(state): State<AppState>) -> Response {
    let check = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.health_pool),
    )
    .await;
    match check {
        Ok(Ok(_)) => Json(json!({"status": "healthy", "service": "leopard"})).into_response(),
        Ok(Err(err)) => unhealthy(&err.to_string()),
        Err(_) => unhealthy("database check timed out"),
    }
}

fn unhealthy(cause: &str) -> Response {
    tracing::warn!(cause, "health check failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "unhealthy", "service": "leopard", "error": "database unavailable"})),
    )
        .into_response()
}

/// `GET /api/public/tenant-info/`: the host's tenant name and id.
async fn tenant_info(tenant: Tenant) -> Response {
    let info = tenant.tenant();
    let mut response =
        Json(json!({"tenant_name": info.name, "tenant_id": info.id})).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(header::EXPIRES, HeaderValue::from_static("0"));
    response
}
