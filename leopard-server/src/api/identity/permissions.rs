//! `GET /api/v1/permissions/` and `GET /api/v1/permissions/{id}/`: the tenant's permission
//! catalogue, readable by any authenticated user (the permission dialogs list it to pick from).
//!
//! PermissionOutput is `{id, name, codename, content_type, content_type_display}` where both
//! content-type fields are `"app_label.model"`. The original omitted `codename`, but the web
//! client reads it, so it is included. The list is ordered by app label, model, codename, id.

use axum::extract::Path;
use axum::routing::get;
use axum::Json;
use http::Method;
use leopard_http::pagination::Page;
use leopard_http::{ApiError, AuthUser, Pagination};
use serde::Serialize;
use sqlx::{FromRow, PgConnection};

use crate::api::{route, Access, ApiRoute};

/// The permission routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        route(
            "/api/v1/permissions/",
            Access::Tenant,
            [(Method::GET, get(list))],
        )
        .paginated(true),
        route(
            "/api/v1/permissions/{id}/",
            Access::Tenant,
            [(Method::GET, get(retrieve))],
        ),
    ]
}

/// One permission as the API shows it.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct PermissionOutput {
    /// Database id.
    pub id: i32,
    /// Human name (`Can view client`).
    pub name: String,
    /// Django codename (`view_client`).
    pub codename: String,
    /// `app_label.model`.
    pub content_type: String,
    /// The same `app_label.model` string (the original's display field).
    pub content_type_display: String,
}

const SELECT: &str = "SELECT p.id, p.name, p.codename,
        ct.app_label || '.' || ct.model AS content_type,
        ct.app_label || '.' || ct.model AS content_type_display
   FROM permissions p JOIN content_types ct ON ct.id = p.content_type_id";

/// One page of permissions, ordered by app label, model, codename, id, and how many there
/// are.
pub async fn list_permissions(
    conn: &mut PgConnection,
    pagination: &Pagination,
) -> Result<(Vec<PermissionOutput>, i64), ApiError> {
    crate::api::fetch_page(
        conn,
        SELECT,
        "permissions p",
        "ct.app_label, ct.model, p.codename, p.id",
        crate::api::no_filters,
        pagination,
    )
    .await
}

/// The permission `id`, if it exists.
pub async fn find_permission(
    conn: &mut PgConnection,
    id: i32,
) -> Result<Option<PermissionOutput>, ApiError> {
    let sql = format!("{SELECT} WHERE p.id = $1");
    Ok(sqlx::query_as(&sql).bind(id).fetch_optional(conn).await?)
}

fn not_found() -> ApiError {
    ApiError::NotFound("Permission not found.".into())
}

/// `GET /api/v1/permissions/`.
pub(crate) async fn list(
    auth: AuthUser,
    pagination: Pagination,
) -> Result<Json<Page<PermissionOutput>>, ApiError> {
    let mut tx = auth.tenant.begin().await?;
    let (rows, count) = list_permissions(&mut tx, &pagination).await?;
    tx.commit().await?;
    Ok(Json(pagination.page(rows, count)?))
}

/// `GET /api/v1/permissions/{id}/`.
pub(crate) async fn retrieve(
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<PermissionOutput>, ApiError> {
    let id: i32 = id.parse().map_err(|_| not_found())?;
    let mut tx = auth.tenant.begin().await?;
    let found = find_permission(&mut tx, id).await?;
    tx.commit().await?;
    found.map(Json).ok_or_else(not_found)
}
