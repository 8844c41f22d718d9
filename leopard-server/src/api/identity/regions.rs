//! `/api/v1/regions/`: regions, the top of the organisation (regions → branches → users).
//!
//! A region is scoped (spec §4.3): a super admin sees every region, a region manager its own
//! regions (and those of its branches), a branch admin or consultant the regions holding its
//! branches, a user without a role none; a region out of scope answers 404 like a missing one.
//! Writing one needs the matching permission (`add_region`, `change_region`, `delete_region`)
//! and tenant scope. Names are unique case-insensitively. Delete
//! is a hard delete, refused while live branches reference the region.
//!
//! Writes record `Region.CREATE`, `Region.UPDATE` (+ `Region.<field>.UPDATE` for `name` and
//! `description`) and `Region.DELETE` in their own transaction.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post, put};
use axum::Json;
use http::Method;
use leopard_http::{ApiError, AuthUser, JsonBody, Page, Pagination};
use leopard_rbac::{check, filter, Action, Resource, ResourceKind, ScopeColumns};
use serde::Serialize;
use serde_json::Value;
use sqlx::postgres::PgArguments;
use sqlx::PgConnection;

use crate::api::events;
use crate::api::input::{
    contains_pattern, list_params, name_field, object, param, path_id, rfc3339, text,
    unique_conflict, FieldErrors, Patch,
};
use crate::api::{push_arg, push_predicate, require, route, Access, ApiRoute};
use crate::app::AppState;

/// The region routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        route(
            "/api/v1/regions/",
            Access::Tenant,
            [(Method::GET, get(list)), (Method::POST, post(create))],
        ),
        route(
            "/api/v1/regions/{id}/",
            Access::Tenant,
            [
                (Method::GET, get(retrieve)),
                (Method::PUT, put(update)),
                (Method::PATCH, patch(update)),
                (Method::DELETE, delete(destroy)),
            ],
        ),
    ]
}

/// A region as the API answers it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RegionOutput {
    /// Id.
    pub id: i64,
    /// Name (unique, case-insensitively).
    pub name: String,
    /// Free text.
    pub description: String,
    /// How many live (not soft-deleted) branches belong to the region.
    pub branch_count: i64,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Last change, RFC 3339.
    pub updated_at: String,
}

const REGION_SELECT: &str = concat!(
    "SELECT r.id, r.name, r.description,
            (SELECT count(*) FROM branches b
              WHERE b.region_id = r.id AND b.deleted_at IS NULL) AS branch_count, ",
    rfc3339!("r.created_at"),
    " AS created_at, ",
    rfc3339!("r.updated_at"),
    " AS updated_at FROM regions r"
);

const NOT_FOUND: &str = "Region not found";

/// The entity name of region events.
const ENTITY: &str = "Region";

/// The fields whose changes are recorded as `Region.<field>.UPDATE`.
const TRACKED: &[&str] = &["name", "description"];

fn not_found() -> ApiError {
    ApiError::NotFound(NOT_FOUND.into())
}

// ----- handlers ----------------------------------------------------------------------------

/// `GET /api/v1/regions/`: `search` (name/description icontains), `name` (icontains).
pub(crate) async fn list(
    auth: AuthUser,
    pagination: Pagination,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<RegionOutput>>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::Region)?;
    let params = list_params(query.as_deref());
    let mut tx = auth.tenant.begin().await?;
    let (rows, count) = list_regions(&mut tx, &auth, &params, &pagination).await?;
    tx.commit().await?;
    Ok(Json(pagination.page(rows, count)?))
}

/// `POST /api/v1/regions/`.
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<RegionOutput>), ApiError> {
    require(&auth.principal, Action::Add, ResourceKind::Region)?;
    if !check(&auth.principal, Action::Add, &region_resource()).allowed() {
        return Err(ApiError::permission_denied());
    }
    let body = object(body)?;
    let mut errors = FieldErrors::default();
    let name = name_field(&body, 100, true, &mut errors);
    let description = text(&body, "description", 1000, &mut errors);
    errors.finish()?;
    let name = name.ok_or_else(|| ApiError::field("name", "This field is required."))?;
    let description = match description {
        Patch::Set(d) => d,
        Patch::Absent | Patch::Null => String::new(),
    };
    let mut tx = auth.tenant.begin().await?;
    let id = insert_region(&mut tx, &name, &description).await?;
    let out = fetch_region(&mut tx, id).await?.ok_or_else(not_found)?;
    let event = events::created(ENTITY, id, events::state(&out)?, auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET /api/v1/regions/{id}/`.
pub(crate) async fn retrieve(
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<RegionOutput>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::Region)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    in_scope(&auth, Action::View, id)?;
    let mut tx = auth.tenant.begin().await?;
    let out = fetch_region(&mut tx, id).await?.ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(Json(out))
}

/// `PUT`/`PATCH /api/v1/regions/{id}/`: partial (merge-patch) semantics for both.
pub(crate) async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<RegionOutput>, ApiError> {
    require(&auth.principal, Action::Change, ResourceKind::Region)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    in_scope(&auth, Action::Change, id)?;
    let body = object(body)?;
    let mut errors = FieldErrors::default();
    let name = name_field(&body, 100, false, &mut errors);
    let description = match text(&body, "description", 1000, &mut errors) {
        Patch::Set(d) => Some(d),
        Patch::Null => Some(String::new()),
        Patch::Absent => None,
    };
    errors.finish()?;
    let mut tx = auth.tenant.begin().await?;
    // Locked first, so the recorded previous state is the one this update replaces.
    if lock_region_branches(&mut tx, id).await?.is_none() {
        return Err(not_found());
    }
    let before = fetch_region(&mut tx, id).await?.ok_or_else(not_found)?;
    if !update_region(&mut tx, id, name.as_deref(), description.as_deref()).await? {
        return Err(not_found());
    }
    let out = fetch_region(&mut tx, id).await?.ok_or_else(not_found)?;
    let before_state = events::state(&before)?;
    let after_state = events::state(&out)?;
    events::commit_change(
        tx,
        &state.waker,
        events::Change {
            entity: ENTITY,
            id,
            before: &before_state,
            after: &after_state,
            tracked: TRACKED,
            actor: auth.user_id.get(),
        },
    )
    .await?;
    Ok(Json(out))
}

/// `DELETE /api/v1/regions/{id}/`: hard delete, refused while live branches reference it.
pub(crate) async fn destroy(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    require(&auth.principal, Action::Delete, ResourceKind::Region)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    in_scope(&auth, Action::Delete, id)?;
    let mut tx = auth.tenant.begin().await?;
    let Some(live_branches) = lock_region_branches(&mut tx, id).await? else {
        return Err(not_found());
    };
    if live_branches > 0 {
        return Err(ApiError::BadRequest(format!(
            "Cannot delete region with assigned branches ({live_branches}). \
             Reassign or delete the branches first."
        )));
    }
    let before = fetch_region(&mut tx, id).await?.ok_or_else(not_found)?;
    delete_region(&mut tx, id).await?;
    let event = events::deleted(ENTITY, id, events::state(&before)?, auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    auth.principals_changed();
    Ok(StatusCode::NO_CONTENT)
}

/// A region not yet created (creating one needs tenant scope).
fn region_resource() -> Resource {
    Resource::new(ResourceKind::Region, None)
}

/// 404 (like a missing region) unless the row scope allows `action` on region `id`.
fn in_scope(auth: &AuthUser, action: Action, id: i64) -> Result<(), ApiError> {
    if check(&auth.principal, action, &Resource::region(id)).allowed() {
        Ok(())
    } else {
        Err(not_found())
    }
}

// ----- data --------------------------------------------------------------------------------

/// The `WHERE` clause of the list, its arguments and how many there are.
fn region_filters(
    auth: &AuthUser,
    params: &HashMap<String, String>,
) -> Result<(String, PgArguments, usize), ApiError> {
    let mut args = PgArguments::default();
    let mut n = 0;
    let scope = filter(
        &auth.principal,
        Action::View,
        ResourceKind::Region,
        &ScopeColumns {
            branch: "NULL",
            owners: &[],
            region: "r.id",
        },
        1,
    );
    n += scope.params.len();
    push_predicate(&mut args, &scope)?;
    let mut clauses = vec![scope.sql];
    if let Some(search) = param(params, "search") {
        n += 1;
        push_arg(&mut args, contains_pattern(search))?;
        clauses.push(format!("(r.name ILIKE ${n} OR r.description ILIKE ${n})"));
    }
    if let Some(name) = param(params, "name") {
        n += 1;
        push_arg(&mut args, contains_pattern(name))?;
        clauses.push(format!("r.name ILIKE ${n}"));
    }
    Ok((clauses.join(" AND "), args, n))
}

/// One page of the regions `auth` may see, ordered by name then id, and the total count.
async fn list_regions(
    conn: &mut PgConnection,
    auth: &AuthUser,
    params: &HashMap<String, String>,
    pagination: &Pagination,
) -> Result<(Vec<RegionOutput>, i64), ApiError> {
    crate::api::fetch_page(
        conn,
        REGION_SELECT,
        "regions r",
        "r.name, r.id",
        || region_filters(auth, params),
        pagination,
    )
    .await
}

/// One region by id.
async fn fetch_region(conn: &mut PgConnection, id: i64) -> Result<Option<RegionOutput>, ApiError> {
    Ok(sqlx::query_as(&format!("{REGION_SELECT} WHERE r.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

const DUPLICATE: &str = "Region with this name already exists.";

/// Inserts a region and returns its id; a duplicate name is a 400 on `name`.
async fn insert_region(
    conn: &mut PgConnection,
    name: &str,
    description: &str,
) -> Result<i64, ApiError> {
    sqlx::query_scalar("INSERT INTO regions (name, description) VALUES ($1, $2) RETURNING id")
        .bind(name)
        .bind(description)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| unique_conflict(e, "regions_name_ci", "name", DUPLICATE))
}

/// Applies the given fields (`None` = unchanged); `false` when the region does not exist.
async fn update_region(
    conn: &mut PgConnection,
    id: i64,
    name: Option<&str>,
    description: Option<&str>,
) -> Result<bool, ApiError> {
    let done = sqlx::query(
        "UPDATE regions SET name = COALESCE($2, name), description = COALESCE($3, description),
                updated_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(name)
    .bind(description)
    .execute(&mut *conn)
    .await
    .map_err(|e| unique_conflict(e, "regions_name_ci", "name", DUPLICATE))?;
    Ok(done.rows_affected() == 1)
}

/// Locks the region and counts its live branches; `None` when it does not exist.
async fn lock_region_branches(conn: &mut PgConnection, id: i64) -> Result<Option<i64>, ApiError> {
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM regions WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    if exists.is_none() {
        return Ok(None);
    }
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM branches WHERE region_id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Some(count))
}

/// Deletes a region (soft-deleted branches keep no link: the foreign key sets them to `NULL`).
async fn delete_region(conn: &mut PgConnection, id: i64) -> Result<(), ApiError> {
    sqlx::query("DELETE FROM regions WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
