//! What the soft-deleted master-data resources of the institutes and courses slice share
//! (institutes, their locations, intakes, contact persons and requirements, course levels,
//! broad and narrow fields, courses): one [`Master`] trait and generic handlers served by
//! [`master_routes`].
//!
//! - Reading is tenant-wide: `view_<kind>`, or `view_institute` (the permission every role
//!   holds for institutes, whose detail page and the application form need the children and
//!   the course taxonomy). A user without either gets 403.
//! - Writes are verb-level: `add_<kind>`, `change_<kind>` (PUT and PATCH, both merge-patch, and
//!   restore), `delete_<kind>` (a soft delete, 204).
//! - Lists are paginated, live rows only unless `include_deleted` is truthy and the caller may
//!   delete the kind; exact-match integer filters per resource (a malformed one is a 400).
//! - A retrieve, update or delete of a missing or soft-deleted row is a 404; a restore of a
//!   live or missing row is a 404 too.
//! - Names are unique case-insensitively among live rows (partial unique indexes); a clash is a
//!   400 on the field. A reference to a missing or soft-deleted row is a 400 on the field; a
//!   write the database refuses for a reference still in use is a 400, never a 500.
//! - Writes record `<Entity>.CREATE`, one `<Entity>.UPDATE` naming the changed fields (none
//!   when nothing changed; a restore names `deleted_at`) and `<Entity>.DELETE`.
//!
//! The resources themselves are the submodules: `agents` (its own handlers: agents have a
//! kind and a scope of their own), `institutes` (with their children) and `courses` (the
//! course taxonomy and courses).

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::NaiveDate;
use leopard_http::{ApiError, AuthUser, JsonBody, Page, Pagination};
use leopard_rbac::{Action, Permission, Principal, ResourceKind};
use serde_json::{Map, Value};
use sqlx::postgres::PgArguments;
use sqlx::PgConnection;

use crate::api::crm::profile::update_event;
use crate::api::input::{int_param, list_params, object, param, path_id, text, FieldErrors, Patch};
use crate::api::{events, push_arg, truthy, Filters};
use crate::app::AppState;

pub mod agents;
pub mod courses;
pub mod institutes;

/// The lifecycle columns of a master row aliased `x`, rendered like the original.
macro_rules! lifecycle {
    () => {
        concat!(
            "x.created_by_id AS created_by, ",
            crate::api::input::rfc3339!("x.created_at"),
            " AS created_at, x.updated_by_id AS updated_by, ",
            crate::api::input::rfc3339!("x.updated_at"),
            " AS updated_at, ",
            crate::api::input::rfc3339!("x.deleted_at"),
            " AS deleted_at"
        )
    };
}
pub(crate) use lifecycle;

/// The lifecycle columns [`lifecycle!`] selects, as every master output carries them
/// (flattened into its JSON).
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct Lifecycle {
    /// The creating user's id.
    pub created_by: Option<i64>,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// The last updating user's id.
    pub updated_by: Option<i64>,
    /// Last change, RFC 3339.
    pub updated_at: String,
    /// Soft-delete time, or null.
    pub deleted_at: Option<String>,
}

/// A column value of a write.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    /// A text column.
    Text(String),
    /// An id (foreign key) column.
    Id(i64),
    /// A date column.
    Date(NaiveDate),
    /// A numeric column, as its canonical decimal string.
    Decimal(String),
    /// A boolean column.
    Bool(bool),
}

/// The columns a write sets, in body order.
pub(crate) type Fields = Vec<(&'static str, Val)>;

/// The id `column` of `fields`, if set.
pub(crate) fn id_of(fields: &Fields, column: &str) -> Option<i64> {
    fields.iter().find_map(|(c, v)| match v {
        Val::Id(id) if *c == column => Some(*id),
        _ => None,
    })
}

/// A soft-deleted master resource served by the generic handlers of [`master_routes`].
pub(crate) trait Master: Send + Sync + 'static {
    /// The event entity name (`Institute`, …).
    const ENTITY: &'static str;
    /// The permission kind.
    const KIND: ResourceKind;
    /// The table (key `id`, lifecycle columns, `deleted_at`).
    const TABLE: &'static str;
    /// The detail of the 404.
    const NOT_FOUND: &'static str;
    /// `SELECT … FROM <TABLE> x …` without `WHERE` (the row aliased `x`).
    const SELECT: &'static str;
    /// The list order.
    const ORDER: &'static str;
    /// The body fields holding a country code (documented as `CountryCode`).
    const COUNTRY_FIELDS: &'static [&'static str] = &[];
    /// Exact-match integer list filters: (query parameter, column).
    const FILTERS: &'static [(&'static str, &'static str)] = &[];
    /// The partial unique indexes on live names: (index, body field).
    const UNIQUE: &'static [(&'static str, &'static str)] = &[];
    /// The kind whose view permission also lets a user read this one (the resource whose
    /// forms need it).
    const READ_WITH: ResourceKind = ResourceKind::Institute;
    /// A row as the API answers it.
    type Output: serde::Serialize
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + Send
        + Sync
        + Unpin
        + 'static;

    /// Reads a body: `create` requires the required fields; otherwise (PUT, PATCH) only the
    /// fields present are set, and a required field may not be `null` or blank.
    fn read(body: &Map<String, Value>, create: bool) -> Result<Fields, ApiError>;

    /// Checks what `fields` refer to (row `id` on an update) before writing.
    fn check(
        _conn: &mut PgConnection,
        _id: Option<i64>,
        _fields: &Fields,
    ) -> impl std::future::Future<Output = Result<(), ApiError>> + Send {
        async { Ok(()) }
    }

    /// Checks that live row `id` may be soft-deleted (a 400 when something still needs it).
    fn check_delete(
        _conn: &mut PgConnection,
        _id: i64,
    ) -> impl std::future::Future<Output = Result<(), ApiError>> + Send {
        async { Ok(()) }
    }

    /// Adds resource-specific list clauses (text searches) after the generic ones.
    fn search(
        _params: &HashMap<String, String>,
        _clauses: &mut Vec<String>,
        _args: &mut PgArguments,
        _n: &mut usize,
    ) -> Result<(), ApiError> {
        Ok(())
    }
}

/// 403 unless `principal` may read master data `M` (see the module doc).
pub(crate) fn require_read<M: Master>(principal: &Principal) -> Result<(), ApiError> {
    crate::api::require_view_of_any(principal, &[M::KIND, M::READ_WITH])
}

/// A required text `field` of at most `max` characters (see [`Master::read`]).
pub(crate) fn required(
    body: &Map<String, Value>,
    field: &'static str,
    max: usize,
    create: bool,
    fields: &mut Fields,
    errors: &mut FieldErrors,
) {
    if let Some(v) = crate::api::input::required_text(body, field, max, create, errors) {
        fields.push((field, Val::Text(v)));
    }
}

/// An optional text `field` of at most `max` characters (`null` stores the empty text).
pub(crate) fn optional(
    body: &Map<String, Value>,
    field: &'static str,
    max: usize,
    fields: &mut Fields,
    errors: &mut FieldErrors,
) {
    match text(body, field, max, errors) {
        Patch::Set(v) => fields.push((field, Val::Text(v))),
        Patch::Null => fields.push((field, Val::Text(String::new()))),
        Patch::Absent => {}
    }
}

/// An optional e-mail `field` (blank allowed).
pub(crate) fn email(
    body: &Map<String, Value>,
    field: &'static str,
    fields: &mut Fields,
    errors: &mut FieldErrors,
) {
    match text(body, field, 254, errors) {
        Patch::Set(v) if !v.is_empty() && !crate::api::crm::clients::plausible_email(&v) => {
            errors.add(field, "Enter a valid email address.");
        }
        Patch::Set(v) => fields.push((field, Val::Text(v))),
        Patch::Null => fields.push((field, Val::Text(String::new()))),
        Patch::Absent => {}
    }
}

/// A required reference `field` stored in `column`.
pub(crate) fn reference(
    body: &Map<String, Value>,
    field: &'static str,
    column: &'static str,
    create: bool,
    fields: &mut Fields,
    errors: &mut FieldErrors,
) {
    if let Some(id) = crate::api::input::required_id(body, field, create, errors) {
        fields.push((column, Val::Id(id)));
    }
}

/// 400 on `field` unless `id` names a live row of `table` (a constant of the caller).
pub(crate) async fn live_ref(
    conn: &mut PgConnection,
    table: &str,
    field: &str,
    id: i64,
) -> Result<(), ApiError> {
    let found: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT id FROM {table} WHERE id = $1 AND deleted_at IS NULL FOR SHARE"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    match found {
        Some(_) => Ok(()),
        None => Err(ApiError::field(
            field,
            format!("Invalid pk \"{id}\" - object does not exist."),
        )),
    }
}

/// The routes of `M`: `list` (GET, POST), `detail` (GET, PUT, PATCH, DELETE) and, when given,
/// `restore` (POST).
pub(crate) fn master_routes<M: Master>(
    list: &'static str,
    detail: &'static str,
    restore: Option<&'static str>,
) -> Vec<crate::api::ApiRoute> {
    use axum::routing::{delete, get, patch, post, put};
    use http::Method;
    let mut routes = vec![
        crate::api::route(
            list,
            crate::api::Access::Tenant,
            [
                (Method::GET, get(master_list::<M>)),
                (Method::POST, post(master_create::<M>)),
            ],
        ),
        crate::api::route(
            detail,
            crate::api::Access::Tenant,
            [
                (Method::GET, get(master_retrieve::<M>)),
                (Method::PUT, put(master_update::<M>)),
                (Method::PATCH, patch(master_update::<M>)),
                (Method::DELETE, delete(master_destroy::<M>)),
            ],
        ),
    ]
    .into_iter()
    .map(|r| r.countries(M::COUNTRY_FIELDS))
    .collect::<Vec<_>>();
    if let Some(path) = restore {
        routes.push(crate::api::route(
            path,
            crate::api::Access::Tenant,
            [(Method::POST, post(master_restore::<M>))],
        ));
    }
    routes
}

fn not_found<M: Master>() -> ApiError {
    ApiError::NotFound(M::NOT_FOUND.into())
}

// ----- handlers ----------------------------------------------------------------------------

/// `GET <list>`.
pub(crate) async fn master_list<M: Master>(
    auth: AuthUser,
    pagination: Pagination,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<M::Output>>, ApiError> {
    require_read::<M>(&auth.principal)?;
    let params = list_params(query.as_deref());
    let mut tx = auth.tenant.begin().await?;
    let (rows, count) = crate::api::fetch_page(
        &mut tx,
        M::SELECT,
        &format!("{} x", M::TABLE),
        M::ORDER,
        || filters::<M>(&auth.principal, &params),
        &pagination,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(pagination.page(rows, count)?))
}

/// `POST <list>`: 201 with the new row.
pub(crate) async fn master_create<M: Master>(
    State(state): State<AppState>,
    auth: AuthUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<M::Output>), ApiError> {
    crate::api::require(&auth.principal, Action::Add, M::KIND)?;
    let fields = M::read(&object(body)?, true)?;
    let mut tx = auth.tenant.begin().await?;
    M::check(&mut tx, None, &fields).await?;
    let id = insert::<M>(&mut tx, &fields, auth.user_id.get()).await?;
    let out = fetch::<M>(&mut tx, id, false)
        .await?
        .ok_or_else(not_found::<M>)?;
    let event = events::created(M::ENTITY, id, events::state(&out)?, auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET <detail>`.
pub(crate) async fn master_retrieve<M: Master>(
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<M::Output>, ApiError> {
    require_read::<M>(&auth.principal)?;
    let id = path_id(&raw).ok_or_else(not_found::<M>)?;
    let mut tx = auth.tenant.begin().await?;
    let out = fetch::<M>(&mut tx, id, false)
        .await?
        .ok_or_else(not_found::<M>)?;
    tx.commit().await?;
    Ok(Json(out))
}

/// `PUT`/`PATCH <detail>` (both merge-patch).
pub(crate) async fn master_update<M: Master>(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<M::Output>, ApiError> {
    crate::api::require(&auth.principal, Action::Change, M::KIND)?;
    let id = path_id(&raw).ok_or_else(not_found::<M>)?;
    let fields = M::read(&object(body)?, false)?;
    let mut tx = auth.tenant.begin().await?;
    let before = fetch::<M>(&mut tx, id, true)
        .await?
        .ok_or_else(not_found::<M>)?;
    M::check(&mut tx, Some(id), &fields).await?;
    update::<M>(&mut tx, id, &fields, auth.user_id.get()).await?;
    let out = fetch::<M>(&mut tx, id, false)
        .await?
        .ok_or_else(not_found::<M>)?;
    let events = update_event(
        M::ENTITY,
        id,
        events::state(&before)?,
        events::state(&out)?,
        auth.user_id.get(),
    );
    events::record(&mut tx, events).await?;
    events::commit(tx, &state.waker).await?;
    Ok(Json(out))
}

/// `DELETE <detail>`: soft delete, 204.
pub(crate) async fn master_destroy<M: Master>(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    crate::api::require(&auth.principal, Action::Delete, M::KIND)?;
    let id = path_id(&raw).ok_or_else(not_found::<M>)?;
    let mut tx = auth.tenant.begin().await?;
    let before = fetch::<M>(&mut tx, id, true)
        .await?
        .ok_or_else(not_found::<M>)?;
    M::check_delete(&mut tx, id).await?;
    set_deleted::<M>(&mut tx, id, true, auth.user_id.get()).await?;
    let event = events::deleted(M::ENTITY, id, events::state(&before)?, auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST <restore>`: undoes a soft delete (404 for a live or missing row; a 400 when a live
/// row took the name meanwhile).
pub(crate) async fn master_restore<M: Master>(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<M::Output>, ApiError> {
    crate::api::require(&auth.principal, Action::Change, M::KIND)?;
    let gone = || ApiError::NotFound(format!("{} not found or not soft-deleted", M::ENTITY));
    let id = path_id(&raw).ok_or_else(gone)?;
    let mut tx = auth.tenant.begin().await?;
    let before = match fetch_any::<M>(&mut tx, id).await? {
        Some(row) => row,
        None => return Err(gone()),
    };
    set_deleted::<M>(&mut tx, id, false, auth.user_id.get()).await?;
    let out = fetch::<M>(&mut tx, id, false).await?.ok_or_else(gone)?;
    let event = events::updated_fields(
        M::ENTITY,
        id,
        events::state(&before)?,
        events::state(&out)?,
        &["deleted_at"],
        auth.user_id.get(),
    );
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok(Json(out))
}

// ----- data --------------------------------------------------------------------------------

/// The list's `WHERE` clause: live rows (or all, see the module doc), the exact-match filters
/// and the resource's searches.
fn filters<M: Master>(
    principal: &Principal,
    params: &HashMap<String, String>,
) -> Result<Filters, ApiError> {
    let mut args = PgArguments::default();
    let mut n = 0;
    let mut clauses = vec!["TRUE".to_owned()];
    let with_deleted = param(params, "include_deleted").is_some_and(truthy)
        && principal.has(Permission::new(M::KIND, Action::Delete));
    if !with_deleted {
        clauses.push("x.deleted_at IS NULL".to_owned());
    }
    for (key, column) in M::FILTERS {
        if let Some(value) = int_param(params, key)? {
            n += 1;
            push_arg(&mut args, value)?;
            clauses.push(format!("{column} = ${n}"));
        }
    }
    M::search(params, &mut clauses, &mut args, &mut n)?;
    Ok((clauses.join(" AND "), args, n))
}

/// A live row by id (`lock`: with a row lock).
async fn fetch<M: Master>(
    conn: &mut PgConnection,
    id: i64,
    lock: bool,
) -> Result<Option<M::Output>, ApiError> {
    let sql = format!(
        "{} WHERE x.id = $1 AND x.deleted_at IS NULL{}",
        M::SELECT,
        if lock { " FOR UPDATE OF x" } else { "" }
    );
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

/// A soft-deleted row by id, locked.
async fn fetch_any<M: Master>(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<M::Output>, ApiError> {
    let sql = format!(
        "{} WHERE x.id = $1 AND x.deleted_at IS NOT NULL FOR UPDATE OF x",
        M::SELECT
    );
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

/// Binds `value` as the next `$n` and returns its placeholder.
fn bind(args: &mut PgArguments, n: usize, value: &Val) -> Result<String, ApiError> {
    match value {
        Val::Text(s) => push_arg(args, s.clone())?,
        Val::Id(id) => push_arg(args, *id)?,
        Val::Date(d) => push_arg(args, *d)?,
        Val::Bool(b) => push_arg(args, *b)?,
        Val::Decimal(s) => {
            push_arg(args, s.clone())?;
            return Ok(format!("${n}::numeric"));
        }
    }
    Ok(format!("${n}"))
}

/// A database refusal mapped to a 400: a live name taken (on its field), a reference still in
/// use or missing, a check failed; anything else passes through.
fn refusal<M: Master>(err: sqlx::Error) -> ApiError {
    let Some(db) = err.as_database_error() else {
        return ApiError::from(err);
    };
    if let Some((_, field)) = M::UNIQUE
        .iter()
        .find(|(index, _)| db.constraint() == Some(*index))
    {
        return ApiError::field(
            field,
            format!("{} with this {field} already exists.", M::ENTITY),
        );
    }
    match db.code().as_deref() {
        Some("23503") => ApiError::BadRequest(
            "The change conflicts with a row that refers to this one or that it refers to.".into(),
        ),
        Some("23514") => ApiError::BadRequest("A value is not allowed.".into()),
        _ => ApiError::from(err),
    }
}

/// Inserts `fields` created by `user`; returns the new id.
async fn insert<M: Master>(
    conn: &mut PgConnection,
    fields: &Fields,
    user: i64,
) -> Result<i64, ApiError> {
    let mut args = PgArguments::default();
    let mut columns = Vec::new();
    let mut values = Vec::new();
    for (i, (column, value)) in fields.iter().enumerate() {
        columns.push(*column);
        values.push(bind(&mut args, i + 1, value)?);
    }
    let n = fields.len() + 1;
    push_arg(&mut args, user)?;
    // Table and column names are constants of the resource, never input.
    let sql = format!(
        "INSERT INTO {} ({}created_by_id, updated_by_id) VALUES ({}${n}, ${n}) RETURNING id",
        M::TABLE,
        columns.iter().map(|c| format!("{c}, ")).collect::<String>(),
        values.iter().map(|v| format!("{v}, ")).collect::<String>(),
    );
    sqlx::query_scalar_with(&sql, args)
        .fetch_one(&mut *conn)
        .await
        .map_err(refusal::<M>)
}

/// Sets `fields` of live row `id`, recording `user` as the last updater.
async fn update<M: Master>(
    conn: &mut PgConnection,
    id: i64,
    fields: &Fields,
    user: i64,
) -> Result<(), ApiError> {
    let mut args = PgArguments::default();
    push_arg(&mut args, id)?;
    push_arg(&mut args, user)?;
    let mut sets = String::new();
    for (i, (column, value)) in fields.iter().enumerate() {
        let placeholder = bind(&mut args, i + 3, value)?;
        sets.push_str(&format!("{column} = {placeholder}, "));
    }
    let sql = format!(
        "UPDATE {} SET {sets}updated_by_id = $2, updated_at = now()
          WHERE id = $1 AND deleted_at IS NULL",
        M::TABLE
    );
    sqlx::query_with(&sql, args)
        .execute(&mut *conn)
        .await
        .map_err(refusal::<M>)?;
    Ok(())
}

/// Soft-deletes (`deleted`) a live row or restores a soft-deleted one, recording `user`.
async fn set_deleted<M: Master>(
    conn: &mut PgConnection,
    id: i64,
    deleted: bool,
    user: i64,
) -> Result<(), ApiError> {
    sqlx::query(&format!(
        "UPDATE {}
            SET deleted_at = CASE WHEN $2 THEN now() ELSE NULL END,
                updated_by_id = $3, updated_at = now()
          WHERE id = $1 AND (deleted_at IS NULL) = $2",
        M::TABLE
    ))
    .bind(id)
    .bind(deleted)
    .bind(user)
    .execute(&mut *conn)
    .await
    .map_err(refusal::<M>)?;
    Ok(())
}
