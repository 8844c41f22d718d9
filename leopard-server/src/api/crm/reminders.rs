//! `/api/v1/reminders/`: dated reminders linked to a record through (content type, object id).
//!
//! Permissions are verb-level (`view_reminder`, `add_reminder`, `change_reminder`,
//! `delete_reminder`; `completed/` is a change). The original's link is generic, but in practice
//! (and in the web client, which hard-codes content type 10) it is always a client; Leopard
//! accepts client links only for now (any other existing content type is a 400 `{"content_type":
//! ["Reminders can only be linked to clients."]}`), so a reminder follows its client's branch
//! (`leopard_rbac` rule `Branch` for `ResourceKind::Reminder`): lists show only reminders of
//! live clients in scope, a reminder out of scope answers 404, and linking to an unknown or
//! out-of-scope client is the same 400 on `object_id`.
//!
//! Lists use the original's page sizes (10 by default, at most 50) and accept `content_type`,
//! `object_id`, `is_completed`, `read` and `ordering` (a comma-separated list of whitelisted
//! fields, `-` for descending; default `-reminder_date,-reminder_time`, then `-id`).
//!
//! PATCH is a merge-patch of the writable fields (`title`, `reminder_date`, `reminder_time`,
//! `meta_info`, `read`, `is_completed`, `content_type`, `object_id`; `null` clears the date and
//! the time and empties `meta_info`). PUT is not served (405), like the original.
//!
//! Writes record `Reminder.CREATE`, `Reminder.UPDATE` (plus one `Reminder.<field>.UPDATE` per
//! changed tracked field) and `Reminder.DELETE`, with the linked client in `client_id`.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post};
use axum::Json;
use chrono::{NaiveDate, NaiveTime};
use http::Method;
use leopard_http::{ApiError, AuthUser, JsonBody, Page, Pagination};
use leopard_rbac::{check, Action, Principal, Resource, ResourceKind, ScopeColumns};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::postgres::PgArguments;
use sqlx::PgConnection;

use crate::api::crm::clients::client_in_scope;
use crate::api::events;
use crate::api::input::{
    boolean, date, int_param, list_params, object, param, path_id, required_id, required_text,
    rfc3339, time, user_name, FieldErrors, Patch,
};
use crate::api::{push_arg, push_predicate, require, route, truthy, Access, ApiRoute, Filters};
use crate::app::AppState;

/// The event entity name.
const ENTITY: &str = "Reminder";

/// The fields whose changes are recorded as `Reminder.<field>.UPDATE` events.
const TRACKED: &[&str] = &[
    "title",
    "reminder_date",
    "reminder_time",
    "read",
    "is_completed",
    "content_type",
    "object_id",
];

/// The content type id of a client (fixed by `0001_content_types.sql`).
pub const CLIENT_CONTENT_TYPE: i32 = 10;

/// The default and the largest page size of the reminder list (the original's).
const PAGE_SIZE: (i64, i64) = (10, 50);

/// The fields a list may be ordered by, with their columns.
const ORDERING: &[(&str, &str)] = &[
    ("id", "r.id"),
    ("title", "r.title"),
    ("reminder_date", "r.reminder_date"),
    ("reminder_time", "r.reminder_time"),
    ("created_at", "r.created_at"),
    ("read", "r.read"),
    ("is_completed", "r.is_completed"),
    ("notification_created", "r.notification_created"),
    ("content_type", "r.content_type_id"),
    ("object_id", "r.object_id"),
];

/// Where a reminder's scope lives in the list queries: its client's branch.
const SCOPE_COLUMNS: ScopeColumns<'static> = ScopeColumns {
    branch: "c.branch_id",
    owners: &[],
    region: "NULL",
};

/// The reminder routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        route(
            "/api/v1/reminders/",
            Access::Tenant,
            [(Method::GET, get(list)), (Method::POST, post(create))],
        ),
        route(
            "/api/v1/reminders/{id}/",
            Access::Tenant,
            [
                (Method::GET, get(retrieve)),
                (Method::PATCH, patch(update)),
                (Method::DELETE, delete(destroy)),
            ],
        ),
        route(
            "/api/v1/reminders/{id}/completed/",
            Access::Tenant,
            [(Method::POST, post(completed))],
        ),
    ]
}

/// A reminder as the API answers it (the original's Reminder serializer).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ReminderOutput {
    /// Id.
    pub id: i64,
    /// The day, `YYYY-MM-DD`.
    pub reminder_date: Option<String>,
    /// The time of day, `HH:MM:SS`.
    pub reminder_time: Option<String>,
    /// What to remember.
    pub title: String,
    /// Free JSON details (the web client stores `note_content` here).
    pub meta_info: Value,
    /// The creating user's id.
    pub created_by: Option<i64>,
    /// The creating user's "First Last" (or username).
    pub created_by_name: Option<String>,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Read.
    pub read: bool,
    /// Done.
    pub is_completed: bool,
    /// Whether the due notice was written.
    pub notification_created: bool,
    /// The linked record's content type id (10 = client).
    pub content_type: i32,
    /// The linked record's id.
    pub object_id: i64,
}

const REMINDER_SELECT: &str = concat!(
    "SELECT r.id, to_char(r.reminder_date, 'YYYY-MM-DD') AS reminder_date,
            to_char(r.reminder_time, 'HH24:MI:SS') AS reminder_time, r.title, r.meta_info,
            r.created_by_id AS created_by, ",
    user_name!("cu"),
    " AS created_by_name, ",
    rfc3339!("r.created_at"),
    " AS created_at, r.read, r.is_completed, r.notification_created,
            r.content_type_id AS content_type, r.object_id
       FROM reminders r
       JOIN clients c ON c.id = r.object_id AND r.content_type_id = 10
       LEFT JOIN users cu ON cu.id = r.created_by_id"
);

/// The body of a create or a PATCH, every field read and validated.
#[derive(Debug)]
struct ReminderInput {
    title: Option<String>,
    reminder_date: Patch<NaiveDate>,
    reminder_time: Patch<NaiveTime>,
    meta_info: Patch<Value>,
    read: Option<bool>,
    is_completed: Option<bool>,
    content_type: Option<i64>,
    object_id: Option<i64>,
}

/// Reads a create (`create = true`: `title`, `content_type`, `object_id` required) or a PATCH.
fn reminder_input(body: &Map<String, Value>, create: bool) -> Result<ReminderInput, ApiError> {
    let mut errors = FieldErrors::default();
    let meta_info = match body.get("meta_info") {
        None => Patch::Absent,
        Some(Value::Null) => Patch::Null,
        Some(v @ Value::Object(_)) => Patch::Set(v.clone()),
        Some(_) => {
            errors.add("meta_info", "Expected a JSON object.");
            Patch::Absent
        }
    };
    let input = ReminderInput {
        title: required_text(body, "title", 255, create, &mut errors),
        reminder_date: date(body, "reminder_date", &mut errors),
        reminder_time: time(body, "reminder_time", &mut errors),
        meta_info,
        read: boolean(body, "read", &mut errors),
        is_completed: boolean(body, "is_completed", &mut errors),
        content_type: required_id(body, "content_type", create, &mut errors),
        object_id: required_id(body, "object_id", create, &mut errors),
    };
    errors.finish()?;
    Ok(input)
}

fn not_found() -> ApiError {
    ApiError::NotFound("No Reminder matches the given query.".into())
}

/// The event state of a reminder: its output plus `client_id`.
fn event_state(out: &ReminderOutput) -> Result<Value, ApiError> {
    let mut state = events::state(out)?;
    if let Value::Object(map) = &mut state {
        map.insert("client_id".into(), Value::from(out.object_id));
    }
    Ok(state)
}

/// The `ORDER BY` of a list: the `ordering` parameter's whitelisted fields (400 for any other),
/// else `-reminder_date,-reminder_time`; always ending with the id.
fn order_by(params: &HashMap<String, String>) -> Result<String, ApiError> {
    crate::api::ordering(
        params,
        ORDERING,
        "r.reminder_date DESC, r.reminder_time DESC, r.id DESC",
        "r.id",
    )
}

// ----- handlers ----------------------------------------------------------------------------

/// `GET /api/v1/reminders/`.
pub(crate) async fn list(
    auth: AuthUser,
    pagination: Pagination,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<ReminderOutput>>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::Reminder)?;
    let pagination = pagination.sized(PAGE_SIZE.0, PAGE_SIZE.1);
    let params = list_params(query.as_deref());
    let order = order_by(&params)?;
    let mut tx = auth.tenant.begin().await?;
    let (rows, count) = crate::api::fetch_page(
        &mut tx,
        REMINDER_SELECT,
        "reminders r JOIN clients c ON c.id = r.object_id AND r.content_type_id = 10",
        &order,
        || reminder_filters(&auth.principal, &params),
        &pagination,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(pagination.page(rows, count)?))
}

/// `POST /api/v1/reminders/`.
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<ReminderOutput>), ApiError> {
    require(&auth.principal, Action::Add, ResourceKind::Reminder)?;
    let input = reminder_input(&object(body)?, true)?;
    let (Some(content_type), Some(object_id)) = (input.content_type, input.object_id) else {
        return Err(ApiError::BadRequest(
            "content_type and object_id are required.".into(),
        ));
    };
    let mut tx = auth.tenant.begin().await?;
    linked_client(
        &mut tx,
        &auth.principal,
        Action::Add,
        content_type,
        object_id,
    )
    .await?;
    let id = insert_reminder(&mut tx, &input, object_id, auth.user_id.get()).await?;
    let out = fetch_reminder(&mut tx, id).await?.ok_or_else(not_found)?;
    let event = events::created(ENTITY, id, event_state(&out)?, auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET /api/v1/reminders/{id}/`.
pub(crate) async fn retrieve(
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<ReminderOutput>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::Reminder)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    visible_reminder(&mut tx, &auth.principal, Action::View, id, false).await?;
    let out = fetch_reminder(&mut tx, id).await?.ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(Json(out))
}

/// `PATCH /api/v1/reminders/{id}/`.
pub(crate) async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<ReminderOutput>, ApiError> {
    let principal = &auth.principal;
    require(principal, Action::Change, ResourceKind::Reminder)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let input = reminder_input(&object(body)?, false)?;
    let mut tx = auth.tenant.begin().await?;
    visible_reminder(&mut tx, principal, Action::Change, id, true).await?;
    let before = fetch_reminder(&mut tx, id).await?.ok_or_else(not_found)?;
    let content_type = input.content_type.unwrap_or(i64::from(before.content_type));
    let object_id = input.object_id.unwrap_or(before.object_id);
    if (content_type, object_id) != (i64::from(before.content_type), before.object_id) {
        linked_client(&mut tx, principal, Action::Change, content_type, object_id).await?;
    }
    update_reminder(&mut tx, id, &input, object_id).await?;
    let out = fetch_reminder(&mut tx, id).await?.ok_or_else(not_found)?;
    commit_update(tx, &state, &before, &out, auth.user_id.get()).await?;
    Ok(Json(out))
}

/// `POST /api/v1/reminders/{id}/completed/`: marks the reminder done.
pub(crate) async fn completed(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<ReminderOutput>, ApiError> {
    require(&auth.principal, Action::Change, ResourceKind::Reminder)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    visible_reminder(&mut tx, &auth.principal, Action::Change, id, true).await?;
    let before = fetch_reminder(&mut tx, id).await?.ok_or_else(not_found)?;
    sqlx::query("UPDATE reminders SET is_completed = true WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let out = fetch_reminder(&mut tx, id).await?.ok_or_else(not_found)?;
    commit_update(tx, &state, &before, &out, auth.user_id.get()).await?;
    Ok(Json(out))
}

/// `DELETE /api/v1/reminders/{id}/`: hard delete.
pub(crate) async fn destroy(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    require(&auth.principal, Action::Delete, ResourceKind::Reminder)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    visible_reminder(&mut tx, &auth.principal, Action::Delete, id, true).await?;
    let before = fetch_reminder(&mut tx, id).await?.ok_or_else(not_found)?;
    sqlx::query("DELETE FROM reminders WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let event = events::deleted(ENTITY, id, event_state(&before)?, auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Records the update events of `before` → `after` and commits.
async fn commit_update(
    tx: leopard_tenancy::TenantTx,
    state: &AppState,
    before: &ReminderOutput,
    after: &ReminderOutput,
    actor: i64,
) -> Result<(), ApiError> {
    let (before_state, after_state) = (event_state(before)?, event_state(after)?);
    events::commit_change(
        tx,
        &state.waker,
        events::Change {
            entity: ENTITY,
            id: before.id,
            before: &before_state,
            after: &after_state,
            tracked: TRACKED,
            actor,
        },
    )
    .await
}

// ----- data --------------------------------------------------------------------------------

/// The `WHERE` clause of the list: scope by the client's branch, live clients, and the
/// `content_type`, `object_id`, `is_completed` and `read` filters.
fn reminder_filters(
    principal: &Principal,
    params: &HashMap<String, String>,
) -> Result<Filters, ApiError> {
    let mut args = PgArguments::default();
    let scope = leopard_rbac::filter(
        principal,
        Action::View,
        ResourceKind::Reminder,
        &SCOPE_COLUMNS,
        1,
    );
    let mut n = scope.params.len();
    push_predicate(&mut args, &scope)?;
    let mut clauses = vec![scope.sql, "c.deleted_at IS NULL".to_owned()];
    if let Some(content_type) = int_param(params, "content_type")? {
        n += 1;
        push_arg(&mut args, content_type)?;
        clauses.push(format!("r.content_type_id = ${n}"));
    }
    if let Some(object_id) = int_param(params, "object_id")? {
        n += 1;
        push_arg(&mut args, object_id)?;
        clauses.push(format!("r.object_id = ${n}"));
    }
    for (key, column) in [("is_completed", "r.is_completed"), ("read", "r.read")] {
        if let Some(value) = param(params, key) {
            n += 1;
            push_arg(&mut args, truthy(value))?;
            clauses.push(format!("{column} = ${n}"));
        }
    }
    Ok((clauses.join(" AND "), args, n))
}

/// Checks a link for `action`: the content type must exist (400 on `content_type`) and be the
/// client's (400 "Reminders can only be linked to clients."), and the client must be live and in
/// `principal`'s scope (400 on `object_id` otherwise, the same for unknown and out of scope).
async fn linked_client(
    conn: &mut PgConnection,
    principal: &Principal,
    action: Action,
    content_type: i64,
    object_id: i64,
) -> Result<(), ApiError> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM content_types WHERE id = $1)")
            .bind(content_type)
            .fetch_one(&mut *conn)
            .await?;
    if !exists {
        return Err(ApiError::field(
            "content_type",
            format!("Invalid pk \"{content_type}\" - object does not exist."),
        ));
    }
    if content_type != i64::from(CLIENT_CONTENT_TYPE) {
        return Err(ApiError::field(
            "content_type",
            "Reminders can only be linked to clients.",
        ));
    }
    client_in_scope(
        conn,
        principal,
        action,
        ResourceKind::Reminder,
        object_id,
        false,
        || {
            ApiError::field(
                "object_id",
                format!("Invalid pk \"{object_id}\" - object does not exist."),
            )
        },
    )
    .await?;
    Ok(())
}

/// 404 unless reminder `id` links to a live client and `principal` may `action` it; `lock`
/// locks the reminder.
async fn visible_reminder(
    conn: &mut PgConnection,
    principal: &Principal,
    action: Action,
    id: i64,
    lock: bool,
) -> Result<(), ApiError> {
    let sql = format!(
        "SELECT c.branch_id
           FROM reminders r JOIN clients c ON c.id = r.object_id AND r.content_type_id = 10
          WHERE r.id = $1 AND c.deleted_at IS NULL{}",
        if lock { " FOR UPDATE OF r" } else { "" }
    );
    let branch: Option<i64> = sqlx::query_scalar(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(not_found)?;
    if check(
        principal,
        action,
        &Resource::new(ResourceKind::Reminder, branch),
    )
    .allowed()
    {
        Ok(())
    } else {
        Err(not_found())
    }
}

/// One reminder by id (of a client, live or not).
async fn fetch_reminder(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<ReminderOutput>, ApiError> {
    Ok(
        sqlx::query_as(&format!("{REMINDER_SELECT} WHERE r.id = $1"))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// The value of a nullable patch that is set, else `None`.
fn set<T: Clone>(p: &Patch<T>) -> Option<T> {
    match p {
        Patch::Set(v) => Some(v.clone()),
        _ => None,
    }
}

/// `(changed, value)` of a nullable patch: `changed = false` leaves the column alone.
fn nullable<T: Clone>(p: &Patch<T>) -> (bool, Option<T>) {
    match p {
        Patch::Absent => (false, None),
        Patch::Null => (true, None),
        Patch::Set(v) => (true, Some(v.clone())),
    }
}

/// Inserts a reminder on client `client` created by `user`; returns its id.
async fn insert_reminder(
    conn: &mut PgConnection,
    input: &ReminderInput,
    client: i64,
    user: i64,
) -> Result<i64, ApiError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO reminders (content_type_id, object_id, title, reminder_date, reminder_time,
                                meta_info, read, is_completed, created_by_id)
         VALUES ($1, $2, $3, $4, $5, COALESCE($6, '{}'::jsonb), $7, $8, $9)
         RETURNING id",
    )
    .bind(CLIENT_CONTENT_TYPE)
    .bind(client)
    .bind(input.title.clone().unwrap_or_default())
    .bind(set(&input.reminder_date))
    .bind(set(&input.reminder_time))
    .bind(set(&input.meta_info))
    .bind(input.read.unwrap_or(false))
    .bind(input.is_completed.unwrap_or(false))
    .bind(user)
    .fetch_one(&mut *conn)
    .await?)
}

/// Applies the given fields of reminder `id`, linking it to client `client`.
async fn update_reminder(
    conn: &mut PgConnection,
    id: i64,
    input: &ReminderInput,
    client: i64,
) -> Result<(), ApiError> {
    let (date_set, date) = nullable(&input.reminder_date);
    let (time_set, time) = nullable(&input.reminder_time);
    let (meta_set, meta) = nullable(&input.meta_info);
    sqlx::query(
        "UPDATE reminders
            SET title = COALESCE($2, title),
                reminder_date = CASE WHEN $3 THEN $4 ELSE reminder_date END,
                reminder_time = CASE WHEN $5 THEN $6 ELSE reminder_time END,
                meta_info = CASE WHEN $7 THEN COALESCE($8, '{}'::jsonb) ELSE meta_info END,
                read = COALESCE($9, read),
                is_completed = COALESCE($10, is_completed),
                content_type_id = $11,
                object_id = $12,
                -- A reminder moved to another moment is due again (the scheduler notifies
                -- once per date and time).
                notification_created = notification_created
                    AND (CASE WHEN $3 THEN $4 ELSE reminder_date END)
                        IS NOT DISTINCT FROM reminder_date
                    AND (CASE WHEN $5 THEN $6 ELSE reminder_time END)
                        IS NOT DISTINCT FROM reminder_time
          WHERE id = $1",
    )
    .bind(id)
    .bind(input.title.as_deref())
    .bind(date_set)
    .bind(date)
    .bind(time_set)
    .bind(time)
    .bind(meta_set)
    .bind(meta)
    .bind(input.read)
    .bind(input.is_completed)
    .bind(CLIENT_CONTENT_TYPE)
    .bind(client)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn ordering_takes_whitelisted_fields_with_a_direction_and_ends_with_the_id() {
        assert_eq!(
            order_by(&params(&[])).ok().as_deref(),
            Some("r.reminder_date DESC, r.reminder_time DESC, r.id DESC")
        );
        assert_eq!(
            order_by(&params(&[("ordering", "title,-created_at")]))
                .ok()
                .as_deref(),
            Some("r.title ASC, r.created_at DESC, r.id DESC")
        );
        assert_eq!(
            order_by(&params(&[("ordering", "id")])).ok().as_deref(),
            Some("r.id ASC")
        );
        assert!(order_by(&params(&[("ordering", "password")])).is_err());
        assert!(order_by(&params(&[("ordering", "r.id; DROP TABLE x")])).is_err());
    }
}
