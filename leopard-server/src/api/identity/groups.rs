//! `/api/v1/groups/`: groups (roles) and the permissions they carry.
//!
//! Reads (list, detail) need `view_group`, writes (create, update, delete,
//! `assign-permissions`) need `change_group` — verb level, where the original gated everything on
//! `change_group` (spec README §2, 11). `options/` is open to any authenticated user: it lists
//! the built-in role groups the caller may grant, to fill the user form.
//!
//! Nobody grants a permission it lacks (spec README §2, 12): every permission set written to a
//! group must be a subset of the actor's own permissions, and an actor may not modify or delete a
//! group that carries permissions it lacks itself (that would let it strip a stronger role).
//! Unknown permission ids are a 400, not silently skipped. The four built-in role groups carry
//! the roles, so they cannot be deleted or renamed. Names are unique case-insensitively.
//!
//! GroupOutput is `{id, name, display_name, permissions_list: [{id, name, content_type}],
//! permissions_count, users_count}`.

use std::collections::BTreeMap;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post, put};
use axum::Json;
use http::Method;
use leopard_http::{ApiError, AuthUser, JsonBody, Page, Pagination};
use leopard_rbac::{Permission, Principal, Role};
use serde::Serialize;
use serde_json::Value;
use sqlx::{FromRow, PgConnection};

use crate::api::{require_permission, route, Access, ApiRoute};
use crate::identity;

/// The group routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        route(
            "/api/v1/groups/",
            Access::Tenant,
            [(Method::GET, get(list)), (Method::POST, post(create))],
        ),
        route(
            "/api/v1/groups/options/",
            Access::Tenant,
            [(Method::GET, get(options))],
        ),
        route(
            "/api/v1/groups/{id}/",
            Access::Tenant,
            [
                (Method::GET, get(retrieve)),
                (Method::PUT, put(update)),
                (Method::PATCH, patch(update)),
                (Method::DELETE, delete(destroy)),
            ],
        ),
        route(
            "/api/v1/groups/{id}/assign-permissions/",
            Access::Tenant,
            [(Method::POST, post(assign_permissions))],
        ),
    ]
}

/// Longest group name.
const NAME_MAX: usize = 150;

/// A group as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct GroupOutput {
    /// Database id.
    pub id: i64,
    /// Group name (`SUPER_ADMIN`, `Auditors`, …).
    pub name: String,
    /// Human name: the role's display name, or the name title-cased.
    pub display_name: String,
    /// The group's permissions, `[{id, name, content_type}]`.
    pub permissions_list: Vec<PermissionBrief>,
    /// How many permissions the group carries.
    pub permissions_count: usize,
    /// How many users belong to the group.
    pub users_count: i64,
}

/// A permission inside [`GroupOutput`].
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PermissionBrief {
    /// Database id.
    pub id: i32,
    /// Human name (`Can view client`).
    pub name: String,
    /// `app_label.model`.
    pub content_type: String,
}

/// An entry of `GET /api/v1/groups/options/`.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct GroupOption {
    /// Database id.
    pub id: i64,
    /// Group name.
    pub name: String,
    /// Human name.
    #[sqlx(skip)]
    pub display_name: String,
}

#[derive(FromRow)]
struct GroupRow {
    id: i64,
    name: String,
    permissions_list: sqlx::types::Json<Vec<PermissionBrief>>,
    users_count: i64,
}

impl From<GroupRow> for GroupOutput {
    fn from(row: GroupRow) -> Self {
        let permissions_list = row.permissions_list.0;
        Self {
            id: row.id,
            display_name: display_name(&row.name),
            name: row.name,
            permissions_count: permissions_list.len(),
            permissions_list,
            users_count: row.users_count,
        }
    }
}

/// The display name of group `name`: a built-in role's display name (`Super Admin`), otherwise
/// the name with underscores as spaces, title-cased like Python's `str.title()`.
pub fn display_name(name: &str) -> String {
    if let Some(role) = Role::from_group_name(name) {
        return role.display_name().to_owned();
    }
    let mut out = String::with_capacity(name.len());
    let mut previous_cased = false;
    for c in name.chars().map(|c| if c == '_' { ' ' } else { c }) {
        if previous_cased {
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_uppercase());
        }
        previous_cased = c.is_alphabetic();
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Data functions.
// ---------------------------------------------------------------------------------------------

const SELECT_GROUP: &str = "SELECT g.id, g.name,
        COALESCE((SELECT json_agg(json_build_object(
                           'id', p.id, 'name', p.name,
                           'content_type', ct.app_label || '.' || ct.model)
                         ORDER BY ct.app_label, ct.model, p.codename, p.id)
                    FROM group_permissions gp
                    JOIN permissions p ON p.id = gp.permission_id
                    JOIN content_types ct ON ct.id = p.content_type_id
                   WHERE gp.group_id = g.id), '[]'::json) AS permissions_list,
        (SELECT count(*) FROM user_groups ug WHERE ug.group_id = g.id) AS users_count
   FROM groups g";

/// One page of groups, ordered by name, id, and how many there are.
pub async fn list_groups(
    conn: &mut PgConnection,
    pagination: &Pagination,
) -> Result<(Vec<GroupOutput>, i64), ApiError> {
    let (rows, count) = crate::api::fetch_page::<GroupRow>(
        conn,
        SELECT_GROUP,
        "groups g",
        "g.name, g.id",
        crate::api::no_filters,
        pagination,
    )
    .await?;
    Ok((rows.into_iter().map(GroupOutput::from).collect(), count))
}

/// The group `id`, if it exists.
pub async fn find_group(conn: &mut PgConnection, id: i64) -> Result<Option<GroupOutput>, ApiError> {
    let sql = format!("{SELECT_GROUP} WHERE g.id = $1");
    let row: Option<GroupRow> = sqlx::query_as(&sql).bind(id).fetch_optional(conn).await?;
    Ok(row.map(GroupOutput::from))
}

/// Locks the group `id` for the rest of the transaction and returns its name and permission
/// ids, if it exists.
pub async fn lock_group(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<(String, Vec<i32>)>, ApiError> {
    let name: Option<String> =
        sqlx::query_scalar("SELECT name FROM groups WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(name) = name else {
        return Ok(None);
    };
    let ids: Vec<i32> = sqlx::query_scalar(
        "SELECT permission_id FROM group_permissions WHERE group_id = $1 ORDER BY permission_id",
    )
    .bind(id)
    .fetch_all(conn)
    .await?;
    Ok(Some((name, ids)))
}

/// Which of `ids` exist as permissions.
pub async fn existing_permission_ids(
    conn: &mut PgConnection,
    ids: &[i32],
) -> Result<Vec<i32>, ApiError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM permissions WHERE id = ANY($1) ORDER BY id")
            .bind(ids)
            .fetch_all(conn)
            .await?,
    )
}

/// Maps a unique violation on the group name to a field error; other errors pass through.
fn group_conflict(err: sqlx::Error) -> ApiError {
    if let Some(db) = err.as_database_error() {
        if db.constraint() == Some("groups_name_ci") {
            return ApiError::field("name", "A group with this name already exists.");
        }
    }
    ApiError::from(err)
}

/// Creates a group called `name`; returns its id.
pub async fn insert_group(conn: &mut PgConnection, name: &str) -> Result<i64, ApiError> {
    sqlx::query_scalar("INSERT INTO groups (name) VALUES ($1) RETURNING id")
        .bind(name)
        .fetch_one(conn)
        .await
        .map_err(group_conflict)
}

/// Renames the group `id`.
pub async fn rename_group(conn: &mut PgConnection, id: i64, name: &str) -> Result<(), ApiError> {
    sqlx::query("UPDATE groups SET name = $2 WHERE id = $1")
        .bind(id)
        .bind(name)
        .execute(conn)
        .await
        .map_err(group_conflict)?;
    Ok(())
}

/// Replaces the permissions of group `id` with `permission_ids` (which must exist).
pub async fn set_group_permissions(
    conn: &mut PgConnection,
    id: i64,
    permission_ids: &[i32],
) -> Result<(), ApiError> {
    sqlx::query("DELETE FROM group_permissions WHERE group_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO group_permissions (group_id, permission_id)
         SELECT $1, unnest($2::integer[]) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(permission_ids)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes the group `id` (memberships and grants go with it).
pub async fn delete_group(conn: &mut PgConnection, id: i64) -> Result<(), ApiError> {
    sqlx::query("DELETE FROM groups WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The groups called one of `names`, ordered by name, id.
pub async fn groups_named(
    conn: &mut PgConnection,
    names: &[String],
) -> Result<Vec<GroupOption>, ApiError> {
    let mut rows: Vec<GroupOption> =
        sqlx::query_as("SELECT id, name FROM groups WHERE name = ANY($1) ORDER BY name, id")
            .bind(names)
            .fetch_all(conn)
            .await?;
    for row in &mut rows {
        row.display_name = display_name(&row.name);
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------------------------
// Input.
// ---------------------------------------------------------------------------------------------

/// Field errors collected while parsing a body.
#[derive(Default)]
struct Errors(BTreeMap<String, Vec<String>>);

impl Errors {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }

    fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}

/// The body must be a JSON object.
fn object(body: &Value) -> Result<&serde_json::Map<String, Value>, ApiError> {
    body.as_object()
        .ok_or_else(|| ApiError::BadRequest("Expected a JSON object.".into()))
}

/// `name`: a string of 1–150 characters after trimming; `None` when absent.
fn parse_name(
    body: &serde_json::Map<String, Value>,
    required: bool,
    errors: &mut Errors,
) -> Option<String> {
    match body.get("name") {
        None if required => {
            errors.add("name", "This field is required.");
            None
        }
        None => None,
        Some(Value::Null) => {
            errors.add("name", "This field may not be null.");
            None
        }
        Some(Value::String(s)) => {
            let name = s.trim();
            if name.is_empty() {
                errors.add("name", "This field may not be blank.");
                None
            } else if name.chars().count() > NAME_MAX {
                errors.add(
                    "name",
                    format!("Ensure this field has no more than {NAME_MAX} characters."),
                );
                None
            } else {
                Some(name.to_owned())
            }
        }
        Some(_) => {
            errors.add("name", "Not a valid string.");
            None
        }
    }
}

/// `permission_ids`: a list of integers, deduplicated and sorted; `None` when absent.
fn parse_permission_ids(
    body: &serde_json::Map<String, Value>,
    required: bool,
    errors: &mut Errors,
) -> Option<Vec<i64>> {
    const FIELD: &str = "permission_ids";
    match body.get(FIELD) {
        None if required => {
            errors.add(FIELD, "This field is required.");
            None
        }
        None => None,
        Some(Value::Null) => {
            errors.add(FIELD, "This field may not be null.");
            None
        }
        Some(Value::Array(items)) => {
            let mut ids = Vec::with_capacity(items.len());
            for item in items {
                match item.as_i64() {
                    Some(id) => ids.push(id),
                    None => {
                        errors.add(FIELD, "A valid integer is required.");
                        return None;
                    }
                }
            }
            if required && ids.is_empty() {
                errors.add(FIELD, "This list may not be empty.");
                return None;
            }
            ids.sort_unstable();
            ids.dedup();
            Some(ids)
        }
        Some(_) => {
            errors.add(
                FIELD,
                "Expected a list of items but got a value of another type.",
            );
            None
        }
    }
}

/// Checks that every one of `ids` is a permission (else 400 naming the unknown ones) and that
/// `principal` may grant them all (else 403); returns them as database ids.
async fn grantable_permission_ids(
    conn: &mut PgConnection,
    principal: &Principal,
    ids: &[i64],
) -> Result<Vec<i32>, ApiError> {
    let candidates: Vec<i32> = ids
        .iter()
        .filter_map(|id| i32::try_from(*id).ok())
        .collect();
    let existing = existing_permission_ids(conn, &candidates).await?;
    let unknown: Vec<String> = ids
        .iter()
        .filter(|id| !i32::try_from(**id).is_ok_and(|id| existing.binary_search(&id).is_ok()))
        .map(ToString::to_string)
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::field(
            "permission_ids",
            format!("Invalid permission id(s): {}", unknown.join(", ")),
        ));
    }
    ensure_may_grant(principal, &existing)?;
    Ok(existing)
}

/// 403 unless `principal` holds every permission of `ids` (database ids). An id outside the
/// catalogue is held by nobody, so it is never grantable.
fn ensure_may_grant(principal: &Principal, ids: &[i32]) -> Result<(), ApiError> {
    let set = identity::permission_set(ids);
    if set.len() == ids.len() && leopard_rbac::may_grant(principal, &set) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "You cannot grant permissions you do not have yourself.".into(),
        ))
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound("Group not found.".into())
}

fn parse_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| not_found())
}

/// Locks group `id` for a write by `principal`: 404 when missing, 403 when the group carries a
/// permission the actor lacks. Returns the current name.
async fn lock_for_write(
    conn: &mut PgConnection,
    principal: &Principal,
    id: i64,
) -> Result<String, ApiError> {
    let (name, current) = lock_group(conn, id).await?.ok_or_else(not_found)?;
    ensure_may_grant(principal, &current).map_err(|_| {
        ApiError::Forbidden("You cannot modify a group with permissions you do not have.".into())
    })?;
    Ok(name)
}

// ---------------------------------------------------------------------------------------------
// Handlers.
// ---------------------------------------------------------------------------------------------

/// `GET /api/v1/groups/`.
pub(crate) async fn list(
    auth: AuthUser,
    pagination: Pagination,
) -> Result<Json<Page<GroupOutput>>, ApiError> {
    require_permission(&auth.principal, Permission::VIEW_GROUP)?;
    let mut tx = auth.tenant.begin().await?;
    let (rows, count) = list_groups(&mut tx, &pagination).await?;
    tx.commit().await?;
    Ok(Json(pagination.page(rows, count)?))
}

/// `GET /api/v1/groups/{id}/`.
pub(crate) async fn retrieve(
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<GroupOutput>, ApiError> {
    require_permission(&auth.principal, Permission::VIEW_GROUP)?;
    let id = parse_id(&id)?;
    let mut tx = auth.tenant.begin().await?;
    let group = find_group(&mut tx, id).await?.ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(Json(group))
}

/// `POST /api/v1/groups/`.
pub(crate) async fn create(
    auth: AuthUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<GroupOutput>), ApiError> {
    require_permission(&auth.principal, Permission::CHANGE_GROUP)?;
    let body = object(&body)?;
    let mut errors = Errors::default();
    let name = parse_name(body, true, &mut errors);
    let permission_ids = parse_permission_ids(body, false, &mut errors);
    errors.finish()?;
    let name = name.ok_or_else(|| ApiError::field("name", "This field is required."))?;
    let mut tx = auth.tenant.begin().await?;
    let permissions = match permission_ids {
        Some(ids) => grantable_permission_ids(&mut tx, &auth.principal, &ids).await?,
        None => Vec::new(),
    };
    let id = insert_group(&mut tx, &name).await?;
    set_group_permissions(&mut tx, id, &permissions).await?;
    let group = find_group(&mut tx, id).await?.ok_or_else(not_found)?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(group)))
}

/// `PUT`/`PATCH /api/v1/groups/{id}/`: optional `name` and `permission_ids` (replaces the set).
pub(crate) async fn update(
    auth: AuthUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<GroupOutput>, ApiError> {
    require_permission(&auth.principal, Permission::CHANGE_GROUP)?;
    let id = parse_id(&id)?;
    let body = object(&body)?;
    let mut errors = Errors::default();
    let name = parse_name(body, false, &mut errors);
    let permission_ids = parse_permission_ids(body, false, &mut errors);
    errors.finish()?;
    let mut tx = auth.tenant.begin().await?;
    let current = lock_for_write(&mut tx, &auth.principal, id).await?;
    if let Some(name) = name.filter(|n| *n != current) {
        if Role::from_group_name(&current).is_some() {
            return Err(ApiError::field(
                "name",
                "Built-in role groups cannot be renamed.",
            ));
        }
        rename_group(&mut tx, id, &name).await?;
    }
    if let Some(ids) = permission_ids {
        let permissions = grantable_permission_ids(&mut tx, &auth.principal, &ids).await?;
        set_group_permissions(&mut tx, id, &permissions).await?;
    }
    let group = find_group(&mut tx, id).await?.ok_or_else(not_found)?;
    tx.commit().await?;
    auth.principals_changed();
    Ok(Json(group))
}

/// `DELETE /api/v1/groups/{id}/`: 204; the built-in role groups are refused.
pub(crate) async fn destroy(
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    require_permission(&auth.principal, Permission::CHANGE_GROUP)?;
    let id = parse_id(&id)?;
    let mut tx = auth.tenant.begin().await?;
    let name = lock_for_write(&mut tx, &auth.principal, id).await?;
    if Role::from_group_name(&name).is_some() {
        return Err(ApiError::BadRequest(
            "Built-in role groups cannot be deleted.".into(),
        ));
    }
    delete_group(&mut tx, id).await?;
    tx.commit().await?;
    auth.principals_changed();
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/groups/{id}/assign-permissions/`: `{"permission_ids": [...]}` (non-empty)
/// replaces the group's permissions.
pub(crate) async fn assign_permissions(
    auth: AuthUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<GroupOutput>, ApiError> {
    require_permission(&auth.principal, Permission::CHANGE_GROUP)?;
    let id = parse_id(&id)?;
    let body = object(&body)?;
    let mut errors = Errors::default();
    let permission_ids = parse_permission_ids(body, true, &mut errors);
    errors.finish()?;
    let ids = permission_ids
        .ok_or_else(|| ApiError::field("permission_ids", "This field is required."))?;
    let mut tx = auth.tenant.begin().await?;
    lock_for_write(&mut tx, &auth.principal, id).await?;
    let permissions = grantable_permission_ids(&mut tx, &auth.principal, &ids).await?;
    set_group_permissions(&mut tx, id, &permissions).await?;
    let group = find_group(&mut tx, id).await?.ok_or_else(not_found)?;
    tx.commit().await?;
    auth.principals_changed();
    Ok(Json(group))
}

/// `GET /api/v1/groups/options/`: bare array of the built-in role groups the caller may grant.
pub(crate) async fn options(auth: AuthUser) -> Result<Json<Vec<GroupOption>>, ApiError> {
    let names: Vec<String> = leopard_rbac::grantable_roles(&auth.principal)
        .into_iter()
        .map(|r| r.group_name().to_owned())
        .collect();
    if names.is_empty() {
        return Ok(Json(Vec::new()));
    }
    let mut tx = auth.tenant.begin().await?;
    let rows = groups_named(&mut tx, &names).await?;
    tx.commit().await?;
    Ok(Json(rows))
}
