//! `/api/v1/users/`: list, create, retrieve, PATCH, DELETE (deactivate), `profile/`,
//! `assignable/` and `{id}/assign-permissions/` (`original-backend.md` §2.8, with the
//! hierarchy of spec README §2, defect 12).
//!
//! Permissions are verb-level: list/retrieve need `view_user`, create `add_user`, PATCH and
//! assign-permissions `change_user`, DELETE `delete_user`; `profile/` and `assignable/` need
//! only authentication. A user is in scope when it is the caller or shares a branch the
//! caller's scope covers (a Super Admin reaches everyone); out of scope answers 404.
//!
//! The hierarchy: an actor grants only roles below its own, assigns only branches and regions
//! inside its scope, edits only users whose role it could grant, never changes its own role,
//! assignments, activity or permissions, and never grants a permission it lacks.
//!
//! Writes record, in their own transaction, `User.CREATE`; on PATCH `User.UPDATE` plus
//! `User.<field>.UPDATE` per changed tracked field ([`TRACKED`]); on DELETE (deactivation)
//! `User.UPDATE` and `User.is_active.UPDATE`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post};
use axum::Json;
use chrono::{DateTime, Utc};
use http::Method;
use leopard_http::{ApiError, AuthUser, JsonBody, Page, Pagination};
use leopard_rbac::{
    check, filter, grantable_roles, may_assign_branches, may_assign_regions, may_grant, Action,
    PermissionSet, Principal, Resource, ResourceKind, Role, ScopeColumns,
};
use serde::Serialize;
use serde_json::Value;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{PgConnection, Row};

use crate::api::events;
use crate::api::identity::groups::display_name;
use crate::api::input::{
    boolean, contains_pattern, id_list, object, parse_int, required_text, FieldErrors,
};
use crate::api::{push_arg, push_predicate, require, route, truthy, Access, ApiRoute};
use crate::app::AppState;
use crate::identity::{self, NewUser};

/// The user routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        route(
            "/api/v1/users/",
            Access::Tenant,
            [(Method::GET, get(list)), (Method::POST, post(create))],
        ),
        route(
            "/api/v1/users/profile/",
            Access::Tenant,
            [(Method::GET, get(profile))],
        ),
        route(
            "/api/v1/users/assignable/",
            Access::Tenant,
            [(Method::GET, get(assignable))],
        )
        .paginated(true),
        route(
            "/api/v1/users/{id}/",
            Access::Tenant,
            [
                (Method::GET, get(retrieve)),
                (Method::PATCH, patch(update)),
                (Method::DELETE, delete(deactivate)),
            ],
        ),
        route(
            "/api/v1/users/{id}/assign-permissions/",
            Access::Tenant,
            [(Method::POST, post(assign_permissions))],
        ),
    ]
}

/// `{id, name}` of a branch or region.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct NamedRef {
    /// Row id.
    pub id: i64,
    /// Row name.
    pub name: String,
}

/// `{id, name, content_type}` of a permission.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PermissionRef {
    /// Permission id.
    pub id: i64,
    /// Human name.
    pub name: String,
    /// `app_label.model`.
    pub content_type: String,
}

/// The original's `UserOutput`.
#[derive(Debug, Clone, Serialize)]
pub struct UserOutput {
    /// User id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// E-mail address.
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// "First Last", or the username when either is empty.
    pub full_name: String,
    /// Group names.
    pub groups_list: Vec<String>,
    /// Group display names.
    pub groups_list_display: Vec<String>,
    /// The highest built-in role, else the first group.
    pub primary_group: Option<String>,
    /// Its display name.
    pub primary_group_display: Option<String>,
    /// The tenant's slug.
    pub tenant: String,
    /// The tenant's name.
    pub tenant_name: String,
    /// Assigned live branches.
    pub branches_data: Vec<NamedRef>,
    /// Assigned regions.
    pub regions_data: Vec<NamedRef>,
    /// Direct permissions.
    pub user_permissions_list: Vec<PermissionRef>,
    /// Whether the user may log in.
    pub is_active: bool,
    /// Django's staff flag (unused, kept for the wire).
    pub is_staff: bool,
    /// Django's superuser flag (unused, kept for the wire).
    pub is_superuser: bool,
    /// Creation time.
    pub date_joined: DateTime<Utc>,
    /// Last successful login.
    pub last_login: Option<DateTime<Utc>>,
}

/// The entity name of user events.
const ENTITY: &str = "User";

/// The user fields whose changes are recorded as `User.<field>.UPDATE`.
pub const TRACKED: &[&str] = &[
    "email",
    "first_name",
    "last_name",
    "is_active",
    "groups",
    "branch_ids",
    "region_ids",
];

/// A user's event state: identity, activity, group names and assigned branch and region ids.
fn user_state(user: &UserOutput) -> Value {
    serde_json::json!({
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "is_active": user.is_active,
        "groups": user.groups_list,
        "branch_ids": sorted_ids(&user.branches_data),
        "region_ids": sorted_ids(&user.regions_data),
    })
}

fn sorted_ids(refs: &[NamedRef]) -> Vec<i64> {
    let mut ids: Vec<i64> = refs.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    ids
}

/// The original's `AssignableUser`.
#[derive(Debug, Clone, Serialize)]
pub struct AssignableUser {
    /// User id.
    pub id: i64,
    /// "First Last" or the username.
    pub full_name: String,
    /// E-mail address.
    pub email: String,
    /// The highest built-in role, else the first group.
    pub primary_group: Option<String>,
    /// Its display name.
    pub primary_group_display: Option<String>,
    /// Login name.
    pub username: String,
}

fn primary_group(groups: &[String]) -> Option<String> {
    groups
        .iter()
        .filter_map(|g| Role::from_group_name(g))
        .min()
        .map(|r| r.group_name().to_owned())
        .or_else(|| groups.first().cloned())
}

fn full_name(first: &str, last: &str, username: &str) -> String {
    if first.is_empty() || last.is_empty() {
        username.to_owned()
    } else {
        format!("{first} {last}")
    }
}

const USER_COLUMNS: &str = "
    u.id, u.username, u.email, u.first_name, u.last_name, u.is_active, u.is_staff,
    u.is_superuser, u.date_joined, u.last_login,
    ARRAY(SELECT g.name::text FROM user_groups ug JOIN groups g ON g.id = ug.group_id
           WHERE ug.user_id = u.id ORDER BY g.id) AS groups,
    COALESCE((SELECT json_agg(json_build_object('id', b.id, 'name', b.name) ORDER BY b.name, b.id)
                FROM user_branches ub JOIN branches b ON b.id = ub.branch_id
               WHERE ub.user_id = u.id AND b.deleted_at IS NULL), '[]'::json) AS branches_data,
    COALESCE((SELECT json_agg(json_build_object('id', r.id, 'name', r.name) ORDER BY r.name, r.id)
                FROM user_regions ur JOIN regions r ON r.id = ur.region_id
               WHERE ur.user_id = u.id), '[]'::json) AS regions_data,
    COALESCE((SELECT json_agg(json_build_object('id', p.id, 'name', p.name,
                     'content_type', ct.app_label || '.' || ct.model) ORDER BY p.id)
                FROM user_permissions up JOIN permissions p ON p.id = up.permission_id
                JOIN content_types ct ON ct.id = p.content_type_id
               WHERE up.user_id = u.id
                 AND NOT (ct.app_label = 'auth' AND ct.model IN ('group', 'permission'))),
             '[]'::json) AS user_permissions_list";

fn json_list<T: serde::de::DeserializeOwned>(row: &PgRow, column: &str) -> Result<T, ApiError> {
    serde_json::from_value(row.try_get::<Value, _>(column)?)
        .map_err(|e| ApiError::Internal(format!("decoding {column}: {e}")))
}

fn user_output(row: &PgRow, auth: &AuthUser) -> Result<UserOutput, ApiError> {
    let groups: Vec<String> = row.try_get("groups")?;
    let first: String = row.try_get("first_name")?;
    let last: String = row.try_get("last_name")?;
    let username: String = row.try_get("username")?;
    let primary = primary_group(&groups);
    let tenant = auth.tenant.tenant();
    Ok(UserOutput {
        id: row.try_get("id")?,
        full_name: full_name(&first, &last, &username),
        email: row.try_get("email")?,
        groups_list_display: groups.iter().map(|g| display_name(g)).collect(),
        primary_group_display: primary.as_deref().map(display_name),
        primary_group: primary,
        groups_list: groups,
        tenant: tenant.slug.to_string(),
        tenant_name: tenant.name.clone(),
        branches_data: json_list(row, "branches_data")?,
        regions_data: json_list(row, "regions_data")?,
        user_permissions_list: json_list(row, "user_permissions_list")?,
        is_active: row.try_get("is_active")?,
        is_staff: row.try_get("is_staff")?,
        is_superuser: row.try_get("is_superuser")?,
        date_joined: row.try_get("date_joined")?,
        last_login: row.try_get("last_login")?,
        username,
        first_name: first,
        last_name: last,
    })
}

/// List filters (`search`, `email`, `is_active`, `role`/`group`, `branch_id`, `region_id`).
#[derive(Debug, Default, serde::Deserialize)]
pub struct UserFilters {
    search: Option<String>,
    email: Option<String>,
    is_active: Option<String>,
    role: Option<String>,
    group: Option<String>,
    branch_id: Option<String>,
    region_id: Option<String>,
}

/// The `WHERE` clause selecting the users `principal` may `action`, plus `filters`; parameters
/// are pushed to `args`.
fn scoped_where(
    principal: &Principal,
    action: Action,
    filters: &UserFilters,
    default_active: Option<bool>,
    args: &mut PgArguments,
    n: &mut usize,
) -> Result<String, ApiError> {
    let mut clauses = Vec::new();
    // A user is in scope when one of its live branches passes the policy, or it passes with no
    // branch (ownership: the user itself) — exactly `may_touch`. The predicate is rendered
    // twice over the same parameters: once on a membership row's branch (without owners, so
    // PostgreSQL can hash the sub-select), once on no branch with the user's id as owner.
    let by_branch = filter(
        principal,
        action,
        ResourceKind::User,
        &ScopeColumns {
            branch: "ub.branch_id",
            owners: &[],
            region: "NULL",
        },
        *n,
    );
    let by_owner = filter(
        principal,
        action,
        ResourceKind::User,
        &ScopeColumns {
            branch: "NULL::bigint",
            owners: &["u.id"],
            region: "NULL",
        },
        *n,
    );
    debug_assert!(by_owner.params.starts_with(&by_branch.params));
    *n += by_owner.params.len();
    push_predicate(args, &by_owner)?;
    clauses.push(match (by_branch.sql.as_str(), by_owner.sql.as_str()) {
        ("TRUE", _) | (_, "TRUE") => "TRUE".to_owned(),
        ("FALSE", owner) => owner.to_owned(),
        (branch, owner) => format!(
            "(EXISTS (SELECT 1 FROM user_branches ub
                        JOIN branches sb ON sb.id = ub.branch_id AND sb.deleted_at IS NULL
                       WHERE ub.user_id = u.id AND {branch}) OR {owner})"
        ),
    });
    let mut param = |n: &mut usize, clause: &str| {
        clauses.push(clause.replace("$?", &format!("${n}")));
        *n += 1;
    };
    if let Some(search) = filters.search.as_deref().filter(|s| !s.trim().is_empty()) {
        push_arg(args, contains_pattern(search.trim()))?;
        param(
            n,
            "(u.first_name ILIKE $? OR u.last_name ILIKE $? OR u.email ILIKE $? OR u.username ILIKE $?)",
        );
    }
    if let Some(email) = filters.email.as_deref().filter(|s| !s.trim().is_empty()) {
        push_arg(args, contains_pattern(email.trim()))?;
        param(n, "u.email ILIKE $?");
    }
    let active = filters.is_active.as_deref().map(truthy).or(default_active);
    if let Some(active) = active {
        push_arg(args, active)?;
        param(n, "u.is_active = $?");
    }
    if let Some(group) = filters.role.as_deref().or(filters.group.as_deref()) {
        push_arg(args, group.trim().to_owned())?;
        param(
            n,
            "EXISTS (SELECT 1 FROM user_groups fg JOIN groups g ON g.id = fg.group_id
                      WHERE fg.user_id = u.id AND g.name = $?)",
        );
    }
    if let Some(raw) = filters.branch_id.as_deref().filter(|s| !s.is_empty()) {
        push_arg(args, parse_int("branch_id", raw)?)?;
        param(
            n,
            "EXISTS (SELECT 1 FROM user_branches fb WHERE fb.user_id = u.id AND fb.branch_id = $?)",
        );
    }
    if let Some(raw) = filters.region_id.as_deref().filter(|s| !s.is_empty()) {
        push_arg(args, parse_int("region_id", raw)?)?;
        param(
            n,
            "(EXISTS (SELECT 1 FROM user_regions fr WHERE fr.user_id = u.id AND fr.region_id = $?)
              OR EXISTS (SELECT 1 FROM user_branches fb JOIN branches b ON b.id = fb.branch_id
                          WHERE fb.user_id = u.id AND b.region_id = $?))",
        );
    }
    Ok(clauses.join(" AND "))
}

/// One page of users `principal` may view, with the total.
pub async fn list_users(
    conn: &mut PgConnection,
    principal: &Principal,
    filters: &UserFilters,
    default_active: Option<bool>,
    page: &Pagination,
) -> Result<(Vec<PgRow>, i64), ApiError> {
    let mut args = PgArguments::default();
    let mut n = 1;
    let clause = scoped_where(
        principal,
        Action::View,
        filters,
        default_active,
        &mut args,
        &mut n,
    )?;
    let sql = format!(
        "SELECT {USER_COLUMNS}, count(*) OVER () AS total FROM users u WHERE {clause}
          ORDER BY lower(u.username), u.id {}",
        page.limit_clause()
    );
    let rows = sqlx::query_with(&sql, args).fetch_all(&mut *conn).await?;
    let total = match rows.first() {
        Some(row) => row.try_get("total")?,
        None => count_users(conn, principal, filters, default_active).await?,
    };
    Ok((rows, total))
}

async fn count_users(
    conn: &mut PgConnection,
    principal: &Principal,
    filters: &UserFilters,
    default_active: Option<bool>,
) -> Result<i64, ApiError> {
    let mut args = PgArguments::default();
    let mut n = 1;
    let clause = scoped_where(
        principal,
        Action::View,
        filters,
        default_active,
        &mut args,
        &mut n,
    )?;
    let sql = format!("SELECT count(*) FROM users u WHERE {clause}");
    Ok(sqlx::query_scalar_with(&sql, args)
        .fetch_one(&mut *conn)
        .await?)
}

/// The row of user `id`, whatever the scope.
pub async fn fetch_user(conn: &mut PgConnection, id: i64) -> Result<Option<PgRow>, ApiError> {
    Ok(sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// The live branches of user `id`.
pub async fn user_branch_ids(conn: &mut PgConnection, id: i64) -> Result<Vec<i64>, ApiError> {
    Ok(sqlx::query_scalar(
        "SELECT ub.branch_id FROM user_branches ub
           JOIN branches b ON b.id = ub.branch_id AND b.deleted_at IS NULL
          WHERE ub.user_id = $1",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?)
}

/// Whether `principal` may `action` user `id` with live branches `branches` — allowed when any
/// of the user's branches (or the user itself) is in reach: exactly the list predicate.
pub fn may_touch(principal: &Principal, action: Action, id: i64, branches: &[i64]) -> bool {
    branches.iter().map(|b| Some(*b)).chain([None]).any(|b| {
        check(
            principal,
            action,
            &Resource::new(ResourceKind::User, b).owned_by([id]),
        )
        .allowed()
    })
}

fn not_found() -> ApiError {
    ApiError::NotFound("User not found or access denied".into())
}

/// Loads user `id` if `principal` may `action` it; 404 otherwise.
async fn scoped_user(
    conn: &mut PgConnection,
    principal: &Principal,
    action: Action,
    id: i64,
) -> Result<PgRow, ApiError> {
    let row = fetch_user(conn, id).await?.ok_or_else(not_found)?;
    let branches = user_branch_ids(conn, id).await?;
    if may_touch(principal, action, id, &branches) {
        Ok(row)
    } else {
        Err(not_found())
    }
}

pub(crate) async fn list(
    auth: AuthUser,
    page: Pagination,
    Query(filters): Query<UserFilters>,
) -> Result<Json<Page<UserOutput>>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::User)?;
    let mut tx = auth.tenant.begin().await?;
    let (rows, total) = list_users(&mut tx, &auth.principal, &filters, None, &page).await?;
    tx.commit().await?;
    let results = rows
        .iter()
        .map(|r| user_output(r, &auth))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(page.page(results, total)?))
}

pub(crate) async fn assignable(
    auth: AuthUser,
    page: Pagination,
    Query(filters): Query<UserFilters>,
) -> Result<Json<Page<AssignableUser>>, ApiError> {
    let mut tx = auth.tenant.begin().await?;
    let (rows, total) = list_users(&mut tx, &auth.principal, &filters, Some(true), &page).await?;
    tx.commit().await?;
    let results = rows
        .iter()
        .map(|r| {
            let u = user_output(r, &auth)?;
            Ok(AssignableUser {
                id: u.id,
                full_name: u.full_name,
                email: u.email,
                primary_group: u.primary_group,
                primary_group_display: u.primary_group_display,
                username: u.username,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Json(page.page(results, total)?))
}

pub(crate) async fn retrieve(
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<UserOutput>, ApiError> {
    let id = crate::api::input::path_id(&raw).ok_or_else(not_found)?;
    require(&auth.principal, Action::View, ResourceKind::User)?;
    let mut tx = auth.tenant.begin().await?;
    let row = scoped_user(&mut tx, &auth.principal, Action::View, id).await?;
    tx.commit().await?;
    Ok(Json(user_output(&row, &auth)?))
}

/// `GET /api/v1/users/profile/`: the caller, plus its effective permissions.
pub(crate) async fn profile(auth: AuthUser) -> Result<Json<Value>, ApiError> {
    let mut tx = auth.tenant.begin().await?;
    let row = fetch_user(&mut tx, auth.user_id.get())
        .await?
        .ok_or(ApiError::Unauthorized)?;
    tx.commit().await?;
    let mut out = serde_json::to_value(user_output(&row, &auth)?)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let permissions: Vec<Value> = auth
        .principal
        .permissions()
        .iter()
        .map(|p| {
            serde_json::json!({
                "codename": p.codename(),
                "name": p.name(),
                "content_type": p.content_type(),
            })
        })
        .collect();
    if let Value::Object(map) = &mut out {
        map.insert("permissions".into(), Value::Array(permissions));
    }
    Ok(Json(out))
}

fn role_field(
    principal: &Principal,
    name: Option<String>,
    errors: &mut FieldErrors,
) -> Result<Option<Role>, ApiError> {
    let Some(name) = name else { return Ok(None) };
    let Some(role) = Role::from_group_name(&name) else {
        errors.add("group_name", format!(
            "\"{name}\" is not a valid choice: SUPER_ADMIN, REGION_MANAGER, BRANCH_ADMIN or CONSULTANT."
        ));
        return Ok(None);
    };
    if !grantable_roles(principal).contains(&role) {
        return Err(ApiError::Forbidden(format!(
            "You may not grant the role {}.",
            role.group_name()
        )));
    }
    Ok(Some(role))
}

fn check_assignments(
    principal: &Principal,
    branches: Option<&[i64]>,
    regions: Option<&[i64]>,
) -> Result<(), ApiError> {
    if branches.is_some_and(|b| !may_assign_branches(principal, b)) {
        return Err(ApiError::Forbidden(
            "You may only assign branches within your own scope.".into(),
        ));
    }
    if regions.is_some_and(|r| !may_assign_regions(principal, r)) {
        return Err(ApiError::Forbidden(
            "You may only assign regions within your own scope.".into(),
        ));
    }
    Ok(())
}

pub(crate) async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<UserOutput>), ApiError> {
    require(&auth.principal, Action::Add, ResourceKind::User)?;
    let body = object(body)?;
    let mut errors = FieldErrors::default();
    let username = required_text(&body, "username", 150, true, &mut errors);
    let email = required_text(&body, "email", 254, true, &mut errors);
    let password = match body.get("password") {
        Some(Value::String(p)) => Some(p.clone()),
        _ => {
            errors.add("password", "This field is required.");
            None
        }
    };
    let first_name = required_text(&body, "first_name", 150, true, &mut errors);
    let last_name = required_text(&body, "last_name", 150, true, &mut errors);
    let group_name = required_text(&body, "group_name", 150, true, &mut errors);
    let branch_ids = id_list(&body, "branch_ids", &mut errors);
    let region_ids = id_list(&body, "region_ids", &mut errors);
    let is_active = boolean(&body, "is_active", &mut errors).unwrap_or(true);
    let role = role_field(&auth.principal, group_name, &mut errors)?;
    if let Some(email) = email.as_deref().filter(|e| !e.is_empty()) {
        if let Err(e) = identity::validate_email(email) {
            errors.add("email", e);
        }
    }
    errors.finish()?;
    check_assignments(
        &auth.principal,
        branch_ids.as_deref(),
        region_ids.as_deref(),
    )?;
    let new = NewUser {
        username: username.unwrap_or_default(),
        email: email.unwrap_or_default(),
        password: password.unwrap_or_default(),
        first_name: first_name.unwrap_or_default(),
        last_name: last_name.unwrap_or_default(),
        groups: role
            .map(|r| r.group_name().to_owned())
            .into_iter()
            .collect(),
        branch_ids: branch_ids.unwrap_or_default(),
        region_ids: region_ids.unwrap_or_default(),
        is_active,
    };
    let mut tx = auth.tenant.begin().await?;
    let id = identity::create_user(&mut tx, &new, auth.tenant.tenant().max_users).await?;
    let row = fetch_user(&mut tx, id).await?.ok_or_else(not_found)?;
    let out = user_output(&row, &auth)?;
    let event = events::created(ENTITY, id, user_state(&out), auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    auth.principals_changed();
    Ok((StatusCode::CREATED, Json(out)))
}

/// The hierarchy check for editing user `id` (already known to be in scope): oneself, or a user
/// whose roles the actor could all grant.
async fn ensure_may_edit(
    conn: &mut PgConnection,
    principal: &Principal,
    id: i64,
) -> Result<(), ApiError> {
    if id == principal.user_id().get() {
        return Ok(());
    }
    let groups: Vec<String> = sqlx::query_scalar(
        "SELECT g.name::text FROM user_groups ug JOIN groups g ON g.id = ug.group_id
          WHERE ug.user_id = $1",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let grantable = grantable_roles(principal);
    let all_below = groups
        .iter()
        .filter_map(|g| Role::from_group_name(g))
        .all(|r| grantable.contains(&r));
    if all_below {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "You may not edit a user whose role is not below yours.".into(),
        ))
    }
}

pub(crate) async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<UserOutput>, ApiError> {
    let id = crate::api::input::path_id(&raw).ok_or_else(not_found)?;
    require(&auth.principal, Action::Change, ResourceKind::User)?;
    let body = object(body)?;
    let mut errors = FieldErrors::default();
    let email = required_text(&body, "email", 254, false, &mut errors);
    let first_name = required_text(&body, "first_name", 150, false, &mut errors);
    let last_name = required_text(&body, "last_name", 150, false, &mut errors);
    let password = match body.get("password") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) if p.is_empty() => None,
        Some(Value::String(p)) => Some(p.clone()),
        Some(_) => {
            errors.add("password", "Not a valid string.");
            None
        }
    };
    let group_name = required_text(&body, "group_name", 150, false, &mut errors);
    let branch_ids = id_list(&body, "branch_ids", &mut errors);
    let region_ids = id_list(&body, "region_ids", &mut errors);
    let is_active = boolean(&body, "is_active", &mut errors);
    let own = id == auth.user_id.get();
    if own
        && (group_name.is_some()
            || branch_ids.is_some()
            || region_ids.is_some()
            || is_active.is_some())
    {
        return Err(ApiError::Forbidden(
            "You may not change your own role, assignments or activity.".into(),
        ));
    }
    let role = role_field(&auth.principal, group_name, &mut errors)?;
    if let Some(email) = email.as_deref().filter(|e| !e.is_empty()) {
        if let Err(e) = identity::validate_email(email) {
            errors.add("email", e);
        }
    }
    errors.finish()?;
    check_assignments(
        &auth.principal,
        branch_ids.as_deref(),
        region_ids.as_deref(),
    )?;
    let mut tx = auth.tenant.begin().await?;
    let row = scoped_user(&mut tx, &auth.principal, Action::Change, id).await?;
    ensure_may_edit(&mut tx, &auth.principal, id).await?;
    let before = user_state(&user_output(&row, &auth)?);
    let was_active: bool = row.try_get("is_active")?;
    if is_active == Some(true) && !was_active {
        identity::ensure_capacity(&mut tx, auth.tenant.tenant().max_users).await?;
    }
    let hash = match password {
        Some(password) => {
            let username: String = row.try_get("username")?;
            let current_email: String = row.try_get("email")?;
            let email_for_policy = email.clone().unwrap_or(current_email);
            if let Err(messages) =
                leopard_http::password::validate_policy(&password, &username, &email_for_policy)
            {
                return Err(ApiError::Validation(
                    [("password".to_owned(), messages)].into_iter().collect(),
                ));
            }
            Some(identity::hash_password(password).await?)
        }
        None => None,
    };
    sqlx::query(
        "UPDATE users SET
            email = COALESCE($2, email),
            first_name = COALESCE($3, first_name),
            last_name = COALESCE($4, last_name),
            password = COALESCE($5, password),
            is_active = COALESCE($6, is_active)
          WHERE id = $1",
    )
    .bind(id)
    .bind(email.map(|e| e.to_lowercase()))
    .bind(first_name)
    .bind(last_name)
    .bind(hash)
    .bind(is_active)
    .execute(&mut *tx)
    .await
    .map_err(identity::user_conflict)?;
    let group_ids = match role {
        Some(role) => Some(identity::group_ids(&mut tx, &[role.group_name().to_owned()]).await?),
        None => None,
    };
    if let Some(ids) = &branch_ids {
        identity::ensure_exist(&mut tx, "branches", "branch_ids", ids).await?;
    }
    if let Some(ids) = &region_ids {
        identity::ensure_exist(&mut tx, "regions", "region_ids", ids).await?;
    }
    identity::set_memberships(
        &mut tx,
        id,
        group_ids.as_deref(),
        branch_ids.as_deref(),
        region_ids.as_deref(),
    )
    .await?;
    if is_active == Some(false) {
        revoke_refresh_tokens(&mut tx, id).await?;
    }
    let row = fetch_user(&mut tx, id).await?.ok_or_else(not_found)?;
    let out = user_output(&row, &auth)?;
    let after_state = user_state(&out);
    events::commit_change(
        tx,
        &state.waker,
        events::Change {
            entity: ENTITY,
            id,
            before: &before,
            after: &after_state,
            tracked: TRACKED,
            actor: auth.user_id.get(),
        },
    )
    .await?;
    auth.principals_changed();
    Ok(Json(out))
}

/// Revokes every live refresh token of user `id` (on deactivation).
pub async fn revoke_refresh_tokens(conn: &mut PgConnection, id: i64) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `DELETE /api/v1/users/{id}/`: deactivates the user (rows referencing it stay valid).
pub(crate) async fn deactivate(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = crate::api::input::path_id(&raw).ok_or_else(not_found)?;
    require(&auth.principal, Action::Delete, ResourceKind::User)?;
    if id == auth.user_id.get() {
        return Err(ApiError::BadRequest(
            "You cannot deactivate yourself.".into(),
        ));
    }
    let mut tx = auth.tenant.begin().await?;
    let row = scoped_user(&mut tx, &auth.principal, Action::Delete, id).await?;
    ensure_may_edit(&mut tx, &auth.principal, id).await?;
    let before = user_state(&user_output(&row, &auth)?);
    sqlx::query("UPDATE users SET is_active = false WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    revoke_refresh_tokens(&mut tx, id).await?;
    let row = fetch_user(&mut tx, id).await?.ok_or_else(not_found)?;
    let after_state = user_state(&user_output(&row, &auth)?);
    events::commit_change(
        tx,
        &state.waker,
        events::Change {
            entity: ENTITY,
            id,
            before: &before,
            after: &after_state,
            tracked: &["is_active"],
            actor: auth.user_id.get(),
        },
    )
    .await?;
    auth.principals_changed();
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/users/{id}/assign-permissions/`: replaces the user's direct permissions.
pub(crate) async fn assign_permissions(
    auth: AuthUser,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<UserOutput>, ApiError> {
    let id = crate::api::input::path_id(&raw).ok_or_else(not_found)?;
    require(&auth.principal, Action::Change, ResourceKind::User)?;
    let body = object(body)?;
    let mut errors = FieldErrors::default();
    let ids = id_list(&body, "permission_ids", &mut errors);
    errors.finish()?;
    let ids = ids
        .filter(|ids| !ids.is_empty())
        .ok_or_else(|| ApiError::field("permission_ids", "This list may not be empty."))?;
    if id == auth.user_id.get() {
        return Err(ApiError::Forbidden(
            "You may not change your own permissions.".into(),
        ));
    }
    let unknown: Vec<String> = ids
        .iter()
        .filter(|i| {
            u16::try_from(**i - 1)
                .ok()
                .and_then(leopard_rbac::Permission::from_id)
                .is_none()
        })
        .map(ToString::to_string)
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::field(
            "permission_ids",
            format!("Invalid permission id(s): {}.", unknown.join(", ")),
        ));
    }
    let db_ids: Vec<i32> = ids.iter().filter_map(|i| i32::try_from(*i).ok()).collect();
    let wanted: PermissionSet = identity::permission_set(&db_ids);
    if !may_grant(&auth.principal, &wanted) {
        return Err(ApiError::Forbidden(
            "You may not grant permissions you do not hold.".into(),
        ));
    }
    let mut tx = auth.tenant.begin().await?;
    scoped_user(&mut tx, &auth.principal, Action::Change, id).await?;
    ensure_may_edit(&mut tx, &auth.principal, id).await?;
    sqlx::query("DELETE FROM user_permissions WHERE user_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO user_permissions (user_id, permission_id)
         SELECT $1, p FROM unnest($2::integer[]) AS p ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(&db_ids)
    .execute(&mut *tx)
    .await?;
    let row = fetch_user(&mut tx, id).await?.ok_or_else(not_found)?;
    tx.commit().await?;
    auth.principals_changed();
    Ok(Json(user_output(&row, &auth)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_groups_display_their_role_names_and_others_are_title_cased() {
        assert_eq!(display_name("SUPER_ADMIN"), "Super Admin");
        assert_eq!(display_name("CONSULTANT"), "Consultant");
        assert_eq!(display_name("visa_TEAM"), "Visa Team");
    }

    #[test]
    fn the_primary_group_is_the_highest_role_whatever_the_order() {
        let groups = vec!["CONSULTANT".to_owned(), "BRANCH_ADMIN".to_owned()];
        assert_eq!(primary_group(&groups).as_deref(), Some("BRANCH_ADMIN"));
        assert_eq!(primary_group(&["team".to_owned()]).as_deref(), Some("team"));
        assert_eq!(primary_group(&[]), None);
    }
}
