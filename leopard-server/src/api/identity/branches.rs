//! `/api/v1/branches/`: branches, soft-deleted, each optionally inside a region.
//!
//! A branch row is scoped by its own id: a super admin reaches every branch, a region manager
//! the branches of their regions (and their own), everyone else their assigned branches. List,
//! retrieve and options need `view_branch`; create `add_branch`; update and restore
//! `change_branch`; delete `delete_branch`. Out of scope answers 404 like a missing branch.
//! Placing a branch (create, or moving it) inside a region needs that region in the caller's
//! reach: tenant scope places anywhere, region scope only inside the caller's regions, anything
//! narrower nowhere (403).
//!
//! PUT and PATCH are both merge-patch: an absent field is unchanged, `null` clears a nullable
//! field (`region_id`; a text field becomes empty), and `region_id: 0` also clears the region
//! for old clients.
//!
//! Writes record `Branch.CREATE`, `Branch.UPDATE` (+ `Branch.<field>.UPDATE` per changed
//! field), `Branch.DELETE` (soft delete) and, on restore, `Branch.UPDATE` with changed field
//! `deleted_at`, in their own transaction.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post, put};
use axum::Json;
use http::Method;
use leopard_http::{ApiError, AuthUser, JsonBody, Page, Pagination};
use leopard_rbac::{check, filter, Action, Principal, Resource, ResourceKind, Scope, ScopeColumns};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::postgres::PgArguments;
use sqlx::PgConnection;

use crate::api::events;
use crate::api::input::{
    contains_pattern, int_param, list_params, name_field, object, optional_country, param, path_id,
    rfc3339, text, unique_conflict, FieldErrors, Patch,
};
use crate::api::{push_arg, push_predicate, require, route, Access, ApiRoute};
use crate::app::AppState;

/// The branch routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        route(
            "/api/v1/branches/",
            Access::Tenant,
            [(Method::GET, get(list)), (Method::POST, post(create))],
        )
        .countries(&["country"]),
        route(
            "/api/v1/branches/options/",
            Access::Tenant,
            [(Method::GET, get(options))],
        ),
        route(
            "/api/v1/branches/{id}/",
            Access::Tenant,
            [
                (Method::GET, get(retrieve)),
                (Method::PUT, put(update)),
                (Method::PATCH, patch(update)),
                (Method::DELETE, delete(destroy)),
            ],
        )
        .countries(&["country"]),
        route(
            "/api/v1/branches/{id}/restore/",
            Access::Tenant,
            [(Method::POST, post(restore))],
        ),
    ]
}

/// A branch as the API answers it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct BranchOutput {
    /// Id.
    pub id: i64,
    /// Name (unique among live branches, case-insensitively).
    pub name: String,
    /// The region's id, if any.
    pub region: Option<i64>,
    /// The region's name, if any.
    pub region_name: Option<String>,
    /// Phone.
    pub phone: String,
    /// Website.
    pub website: String,
    /// Street.
    pub street: String,
    /// Suburb.
    pub suburb: String,
    /// State.
    pub state: String,
    /// Postcode.
    pub postcode: String,
    /// Two-letter country code, or empty.
    pub country: String,
    /// The creating user's id.
    pub created_by: Option<i64>,
    /// The creating user's "First Last" (or username).
    pub created_by_name: Option<String>,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// The last updating user's id.
    pub updated_by: Option<i64>,
    /// The last updating user's "First Last" (or username).
    pub updated_by_name: Option<String>,
    /// Last change, RFC 3339.
    pub updated_at: String,
}

/// One `{id, name}` of the options list.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct BranchOption {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
}

const BRANCH_SELECT: &str = concat!(
    "SELECT b.id, b.name, b.region_id AS region, r.name AS region_name,
            b.phone, b.website, b.street, b.suburb, b.state, b.postcode, b.country,
            b.created_by_id AS created_by,
            CASE WHEN cu.id IS NULL THEN NULL
                 ELSE COALESCE(NULLIF(btrim(cu.first_name || ' ' || cu.last_name), ''), cu.username)
            END AS created_by_name, ",
    rfc3339!("b.created_at"),
    " AS created_at,
            b.updated_by_id AS updated_by,
            CASE WHEN uu.id IS NULL THEN NULL
                 ELSE COALESCE(NULLIF(btrim(uu.first_name || ' ' || uu.last_name), ''), uu.username)
            END AS updated_by_name, ",
    rfc3339!("b.updated_at"),
    " AS updated_at
       FROM branches b
       LEFT JOIN regions r ON r.id = b.region_id
       LEFT JOIN users cu ON cu.id = b.created_by_id
       LEFT JOIN users uu ON uu.id = b.updated_by_id"
);

const SCOPE_COLUMNS: ScopeColumns<'static> = ScopeColumns {
    branch: "b.id",
    owners: &[],
    region: "NULL",
};

const NOT_FOUND: &str = "Branch not found";
const DUPLICATE: &str = "Branch with this name already exists.";
const NAME_INDEX: &str = "branches_name_ci_live";

/// The entity name of branch events.
const ENTITY: &str = "Branch";

/// The fields whose changes are recorded as `Branch.<field>.UPDATE`.
const TRACKED: &[&str] = &[
    "name", "region", "phone", "website", "street", "suburb", "state", "postcode", "country",
];

fn not_found() -> ApiError {
    ApiError::NotFound(NOT_FOUND.into())
}

// ----- input -------------------------------------------------------------------------------

/// The fields of a create or update body (`None`/[`Patch::Absent`] = not given).
#[derive(Debug, Default)]
struct BranchInput {
    name: Option<String>,
    region: Option<Patch<i64>>,
    phone: Option<String>,
    website: Option<String>,
    street: Option<String>,
    suburb: Option<String>,
    state: Option<String>,
    postcode: Option<String>,
    country: Option<String>,
}

/// The text fields and their limits.
const TEXT_FIELDS: [(&str, usize); 6] = [
    ("phone", 15),
    ("website", 100),
    ("street", 100),
    ("suburb", 100),
    ("state", 100),
    ("postcode", 20),
];

/// Reads and validates a body; `required` for a create.
fn branch_input(body: &Map<String, Value>, required: bool) -> Result<BranchInput, ApiError> {
    let mut errors = FieldErrors::default();
    let mut input = BranchInput {
        name: name_field(body, 100, required, &mut errors),
        region: region_field(body, &mut errors),
        ..BranchInput::default()
    };
    for (field, max) in TEXT_FIELDS {
        let value = match text(body, field, max, &mut errors) {
            Patch::Set(s) => Some(s),
            Patch::Null => Some(String::new()),
            Patch::Absent => None,
        };
        let slot = match field {
            "phone" => &mut input.phone,
            "website" => &mut input.website,
            "street" => &mut input.street,
            "suburb" => &mut input.suburb,
            "state" => &mut input.state,
            _ => &mut input.postcode,
        };
        *slot = value;
    }
    // Blank or null clears it (the original's plain `varchar(2)`); otherwise an assigned
    // ISO 3166-1 alpha-2 code, like every other country field.
    input.country = match optional_country(body, "country", &mut errors) {
        Patch::Set(code) => Some(code),
        Patch::Null => Some(String::new()),
        Patch::Absent => None,
    };
    errors.finish()?;
    Ok(input)
}

/// `region_id`: absent, `null` or `0` (clear), or an id.
fn region_field(body: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Patch<i64>> {
    let value = body.get("region_id")?;
    let id = match value {
        Value::Null => return Some(Patch::Null),
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match id {
        Some(0) => Some(Patch::Null),
        Some(id) if id > 0 => Some(Patch::Set(id)),
        _ => {
            errors.add("region_id", "A valid integer is required.");
            None
        }
    }
}

/// Whether `principal` may place a branch in `region`: tenant scope anywhere, region scope only
/// inside its regions, anything narrower nowhere.
fn may_place(principal: &Principal, region: Option<i64>) -> bool {
    match principal.scope() {
        Some(Scope::Tenant) => true,
        Some(Scope::Regions) => region.is_some_and(|r| principal.region_ids().contains(&r)),
        _ => false,
    }
}

fn branch_resource(id: i64) -> Resource {
    Resource::new(ResourceKind::Branch, Some(id))
}

/// 404 (like a missing branch) unless the row scope allows `action` on branch `id`.
fn in_scope(auth: &AuthUser, action: Action, id: i64) -> Result<(), ApiError> {
    if check(&auth.principal, action, &branch_resource(id)).allowed() {
        Ok(())
    } else {
        Err(not_found())
    }
}

// ----- handlers ----------------------------------------------------------------------------

/// `GET /api/v1/branches/`.
pub(crate) async fn list(
    auth: AuthUser,
    pagination: Pagination,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<BranchOutput>>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::Branch)?;
    let params = list_params(query.as_deref());
    let mut tx = auth.tenant.begin().await?;
    let (rows, count) = list_branches(&mut tx, &auth.principal, &params, &pagination).await?;
    tx.commit().await?;
    Ok(Json(pagination.page(rows, count)?))
}

/// `GET /api/v1/branches/options/`: a bare array of the live branches in scope.
pub(crate) async fn options(auth: AuthUser) -> Result<Json<Vec<BranchOption>>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::Branch)?;
    let mut tx = auth.tenant.begin().await?;
    let rows = branch_options(&mut tx, &auth.principal).await?;
    tx.commit().await?;
    Ok(Json(rows))
}

/// `POST /api/v1/branches/`.
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<BranchOutput>), ApiError> {
    require(&auth.principal, Action::Add, ResourceKind::Branch)?;
    let input = branch_input(&object(body)?, true)?;
    let name = input
        .name
        .clone()
        .ok_or_else(|| ApiError::field("name", "This field is required."))?;
    let region = match input.region {
        Some(Patch::Set(id)) => Some(id),
        _ => None,
    };
    let mut tx = auth.tenant.begin().await?;
    if let Some(region) = region {
        ensure_region(&mut tx, region).await?;
    }
    if !may_place(&auth.principal, region) {
        return Err(ApiError::permission_denied());
    }
    let id = insert_branch(&mut tx, &name, region, &input, auth.user_id.get()).await?;
    let out = fetch_branch(&mut tx, id, false)
        .await?
        .ok_or_else(not_found)?;
    let event = events::created(ENTITY, id, events::state(&out)?, auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    auth.principals_changed();
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET /api/v1/branches/{id}/`.
pub(crate) async fn retrieve(
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<BranchOutput>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::Branch)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    in_scope(&auth, Action::View, id)?;
    let mut tx = auth.tenant.begin().await?;
    let out = fetch_branch(&mut tx, id, true)
        .await?
        .ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(Json(out))
}

/// `PUT`/`PATCH /api/v1/branches/{id}/`.
pub(crate) async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<BranchOutput>, ApiError> {
    require(&auth.principal, Action::Change, ResourceKind::Branch)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    in_scope(&auth, Action::Change, id)?;
    let input = branch_input(&object(body)?, false)?;
    let mut tx = auth.tenant.begin().await?;
    let Some(current_region) = lock_live_branch(&mut tx, id).await? else {
        return Err(not_found());
    };
    let new_region = match input.region {
        Some(Patch::Set(r)) => Some(Some(r)),
        Some(Patch::Null) => Some(None),
        Some(Patch::Absent) | None => None,
    };
    if let Some(region) = new_region.filter(|r| *r != current_region) {
        if let Some(r) = region {
            ensure_region(&mut tx, r).await?;
        }
        if !may_place(&auth.principal, region) {
            return Err(ApiError::permission_denied());
        }
    }
    let before = fetch_branch(&mut tx, id, true)
        .await?
        .ok_or_else(not_found)?;
    update_branch(&mut tx, id, &input, new_region, auth.user_id.get()).await?;
    let out = fetch_branch(&mut tx, id, false)
        .await?
        .ok_or_else(not_found)?;
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
    auth.principals_changed();
    Ok(Json(out))
}

/// `DELETE /api/v1/branches/{id}/`: soft delete.
pub(crate) async fn destroy(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    require(&auth.principal, Action::Delete, ResourceKind::Branch)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    in_scope(&auth, Action::Delete, id)?;
    let mut tx = auth.tenant.begin().await?;
    if lock_live_branch(&mut tx, id).await?.is_none() {
        return Err(not_found());
    }
    let before = fetch_branch(&mut tx, id, true)
        .await?
        .ok_or_else(not_found)?;
    if !set_deleted(&mut tx, id, true, auth.user_id.get()).await? {
        return Err(not_found());
    }
    let event = events::deleted(ENTITY, id, events::state(&before)?, auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    auth.principals_changed();
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/branches/{id}/restore/`: undoes a soft delete.
pub(crate) async fn restore(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<BranchOutput>, ApiError> {
    require(&auth.principal, Action::Change, ResourceKind::Branch)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    in_scope(&auth, Action::Change, id)?;
    let mut tx = auth.tenant.begin().await?;
    let Some(deleted_at) = lock_deleted_branch(&mut tx, id).await? else {
        return Err(not_found());
    };
    let before = fetch_branch(&mut tx, id, false)
        .await?
        .ok_or_else(not_found)?;
    if !set_deleted(&mut tx, id, false, auth.user_id.get()).await? {
        return Err(not_found());
    }
    let out = fetch_branch(&mut tx, id, false)
        .await?
        .ok_or_else(not_found)?;
    let event = events::updated_fields(
        ENTITY,
        id,
        with_deleted_at(events::state(&before)?, Some(deleted_at)),
        with_deleted_at(events::state(&out)?, None),
        &["deleted_at"],
        auth.user_id.get(),
    );
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    auth.principals_changed();
    Ok(Json(out))
}

/// A branch's event state with its `deleted_at` (RFC 3339, or `null` when live).
fn with_deleted_at(mut state: Value, deleted_at: Option<String>) -> Value {
    if let Value::Object(map) = &mut state {
        map.insert(
            "deleted_at".into(),
            deleted_at.map_or(Value::Null, Value::String),
        );
    }
    state
}

// ----- data --------------------------------------------------------------------------------

/// The `WHERE` clause of the list, its arguments and how many there are.
fn branch_filters(
    principal: &Principal,
    params: &HashMap<String, String>,
) -> Result<(String, PgArguments, usize), ApiError> {
    let (mut clauses, mut args, mut n) = crate::api::scoped_live_filters(
        principal,
        ResourceKind::Branch,
        &SCOPE_COLUMNS,
        "b",
        params,
    )?;
    if let Some(search) = param(params, "search") {
        n += 1;
        push_arg(&mut args, contains_pattern(search))?;
        clauses.push(format!(
            "(b.name ILIKE ${n} OR b.phone ILIKE ${n} OR b.website ILIKE ${n}
              OR b.suburb ILIKE ${n} OR b.state ILIKE ${n})"
        ));
    }
    for (key, column) in [
        ("name", "b.name"),
        ("phone", "b.phone"),
        ("state", "b.state"),
    ] {
        if let Some(value) = param(params, key) {
            n += 1;
            push_arg(&mut args, contains_pattern(value))?;
            clauses.push(format!("{column} ILIKE ${n}"));
        }
    }
    if let Some(country) = param(params, "country") {
        n += 1;
        push_arg(&mut args, country.to_owned())?;
        clauses.push(format!("b.country = ${n}"));
    }
    if let Some(region) = int_param(params, "region_id")? {
        n += 1;
        push_arg(&mut args, region)?;
        clauses.push(format!("b.region_id = ${n}"));
    }
    Ok((clauses.join(" AND "), args, n))
}

/// One page of the branches `principal` may see, ordered by name then id, and the total count.
async fn list_branches(
    conn: &mut PgConnection,
    principal: &Principal,
    params: &HashMap<String, String>,
    pagination: &Pagination,
) -> Result<(Vec<BranchOutput>, i64), ApiError> {
    crate::api::fetch_page(
        conn,
        BRANCH_SELECT,
        "branches b",
        "b.name, b.id",
        || branch_filters(principal, params),
        pagination,
    )
    .await
}

/// Every live branch `principal` may see, as `{id, name}`, ordered by name then id.
async fn branch_options(
    conn: &mut PgConnection,
    principal: &Principal,
) -> Result<Vec<BranchOption>, ApiError> {
    let scope = filter(
        principal,
        Action::View,
        ResourceKind::Branch,
        &SCOPE_COLUMNS,
        1,
    );
    let mut args = PgArguments::default();
    push_predicate(&mut args, &scope)?;
    let sql = format!(
        "SELECT b.id, b.name FROM branches b
          WHERE b.deleted_at IS NULL AND {}
          ORDER BY b.name, b.id",
        scope.sql
    );
    Ok(sqlx::query_as_with(&sql, args)
        .fetch_all(&mut *conn)
        .await?)
}

/// One branch by id: only a live one with `live_only`, else live or soft-deleted.
async fn fetch_branch(
    conn: &mut PgConnection,
    id: i64,
    live_only: bool,
) -> Result<Option<BranchOutput>, ApiError> {
    Ok(sqlx::query_as(&format!(
        "{BRANCH_SELECT} WHERE b.id = $1 AND (NOT $2 OR b.deleted_at IS NULL)"
    ))
    .bind(id)
    .bind(live_only)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Locks a live branch and returns its region; `None` when there is no such live branch.
async fn lock_live_branch(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<Option<i64>>, ApiError> {
    Ok(sqlx::query_scalar(
        "SELECT region_id FROM branches WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Locks a soft-deleted branch and returns when it was deleted (RFC 3339); `None` when there
/// is no such soft-deleted branch.
async fn lock_deleted_branch(conn: &mut PgConnection, id: i64) -> Result<Option<String>, ApiError> {
    Ok(sqlx::query_scalar(concat!(
        "SELECT ",
        rfc3339!("deleted_at"),
        " FROM branches WHERE id = $1 AND deleted_at IS NOT NULL FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// A 400 on `region_id` unless region `id` exists.
async fn ensure_region(conn: &mut PgConnection, id: i64) -> Result<(), ApiError> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM regions WHERE id = $1)")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    if exists {
        Ok(())
    } else {
        Err(ApiError::field(
            "region_id",
            format!("Invalid pk \"{id}\" - object does not exist."),
        ))
    }
}

/// Inserts a branch created by `user`; a duplicate live name is a 400 on `name`.
async fn insert_branch(
    conn: &mut PgConnection,
    name: &str,
    region: Option<i64>,
    input: &BranchInput,
    user: i64,
) -> Result<i64, ApiError> {
    let or_empty = |v: &Option<String>| v.clone().unwrap_or_default();
    sqlx::query_scalar(
        "INSERT INTO branches (name, region_id, phone, website, street, suburb, state, postcode,
                               country, created_by_id, updated_by_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
         RETURNING id",
    )
    .bind(name)
    .bind(region)
    .bind(or_empty(&input.phone))
    .bind(or_empty(&input.website))
    .bind(or_empty(&input.street))
    .bind(or_empty(&input.suburb))
    .bind(or_empty(&input.state))
    .bind(or_empty(&input.postcode))
    .bind(or_empty(&input.country))
    .bind(user)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| unique_conflict(e, NAME_INDEX, "name", DUPLICATE))
}

/// Applies the given fields of a live branch (`region`: `None` = unchanged, `Some(None)` =
/// cleared), recording `user` as the last updater.
async fn update_branch(
    conn: &mut PgConnection,
    id: i64,
    input: &BranchInput,
    region: Option<Option<i64>>,
    user: i64,
) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE branches
            SET name = COALESCE($2, name),
                region_id = CASE WHEN $3 THEN $4 ELSE region_id END,
                phone = COALESCE($5, phone),
                website = COALESCE($6, website),
                street = COALESCE($7, street),
                suburb = COALESCE($8, suburb),
                state = COALESCE($9, state),
                postcode = COALESCE($10, postcode),
                country = COALESCE($11, country),
                updated_by_id = $12,
                updated_at = now()
          WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .bind(input.name.as_deref())
    .bind(region.is_some())
    .bind(region.flatten())
    .bind(input.phone.as_deref())
    .bind(input.website.as_deref())
    .bind(input.street.as_deref())
    .bind(input.suburb.as_deref())
    .bind(input.state.as_deref())
    .bind(input.postcode.as_deref())
    .bind(input.country.as_deref())
    .bind(user)
    .execute(&mut *conn)
    .await
    .map_err(|e| unique_conflict(e, NAME_INDEX, "name", DUPLICATE))?;
    Ok(())
}

/// Soft-deletes (`deleted = true`) a live branch or restores a soft-deleted one, recording
/// `user`; `false` when there was no such branch. A restore whose name is now taken by a live
/// branch is a 400 on `name`.
async fn set_deleted(
    conn: &mut PgConnection,
    id: i64,
    deleted: bool,
    user: i64,
) -> Result<bool, ApiError> {
    let done = sqlx::query(
        "UPDATE branches
            SET deleted_at = CASE WHEN $2 THEN now() ELSE NULL END,
                updated_by_id = $3, updated_at = now()
          WHERE id = $1 AND (deleted_at IS NULL) = $2",
    )
    .bind(id)
    .bind(deleted)
    .bind(user)
    .execute(&mut *conn)
    .await
    .map_err(|e| unique_conflict(e, NAME_INDEX, "name", DUPLICATE))?;
    Ok(done.rows_affected() == 1)
}
