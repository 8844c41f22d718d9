//! `/api/v1/notifications/`: the caller's own notifications — list, detail, marking read or
//! completed, the unread count, the overdue ones. The live stream (`stream/`) is
//! [`crate::realtime::stream`].
//!
//! Notifications are personal: every route works on the caller's rows only (someone else's
//! notification answers 404 like a missing one), and any authenticated user of the tenant may
//! call them, whatever their role (a user with no role still reads their own notifications:
//! spec §2 "fail closed … but their own profile and notifications"). Rows are written by
//! [`crate::notify::notify`] (API actions, event handlers, the scheduler); there is no create
//! or delete route, as in the original.
//!
//! Unlike the original, the detail route works (it always answered 404), `update_notification`
//! with `read: true` also pushes the change to the user's streams, and errors use the common
//! `{"detail", "code"}` shape. Marking read (`mark_read`, `bulk_mark_read`,
//! `update_notification`) announces `notification_read` and `unread_count_update` to every open
//! stream of the user, on every server process, when the transaction commits; marking unread
//! announces the new unread count.

use axum::extract::{Path, RawQuery};
use axum::routing::{get, patch, post, put};
use axum::Json;
use http::Method;
use leopard_http::{ApiError, AuthUser, JsonBody, Page, Pagination};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::postgres::PgArguments;
use sqlx::PgConnection;

use crate::api::input::{
    boolean, id_list, list_params, object, param, path_id, rfc3339, FieldErrors,
};
use crate::api::{fetch_page, push_arg, route, truthy, Access, ApiRoute, Filters};
use crate::notify::announce_read;

/// The notification routes. The stream (`stream/`) is served by the application router itself
/// ([`crate::app::STREAM_PATH`]): it is not a JSON route and its body never ends, so route-table
/// sweeps that read whole bodies must not include it.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        route(
            "/api/v1/notifications/",
            Access::Tenant,
            [(Method::GET, get(list))],
        )
        .paginated(true),
        route(
            "/api/v1/notifications/unread_count/",
            Access::Tenant,
            [(Method::GET, get(unread_count))],
        ),
        route(
            "/api/v1/notifications/overdue/",
            Access::Tenant,
            [(Method::GET, get(overdue))],
        ),
        route(
            "/api/v1/notifications/bulk_mark_read/",
            Access::Tenant,
            [(Method::POST, post(bulk_mark_read))],
        ),
        route(
            "/api/v1/notifications/{id}/",
            Access::Tenant,
            [(Method::GET, get(retrieve))],
        ),
        route(
            "/api/v1/notifications/{id}/update_notification/",
            Access::Tenant,
            [
                (Method::PUT, put(update_notification)),
                (Method::PATCH, patch(update_notification)),
            ],
        ),
        route(
            "/api/v1/notifications/{id}/mark_read/",
            Access::Tenant,
            [(Method::POST, post(mark_read))],
        ),
    ]
}

/// A notification as the API answers it (the original's NotificationOutput).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct NotificationOutput {
    /// Id.
    pub id: i64,
    /// `CLIENT_ASSIGNED`, `TASK_ASSIGNED`, `REMINDER_DUE`, … (see [`crate::notify::NotificationType`]).
    pub notification_type: String,
    /// Its display form ("Client Assigned", …).
    pub notification_type_display: String,
    /// The recipient's id (always the caller).
    pub assigned_to: i64,
    /// The recipient's "First Last", or null when both are blank.
    pub assigned_to_name: Option<String>,
    /// Title.
    pub title: String,
    /// Message.
    pub message: String,
    /// When the thing it is about falls due, RFC 3339.
    pub due_date: Option<String>,
    /// Navigation context (`task_id`, `client_id`, `entity_type` + `entity_id`, …).
    pub meta_info: Value,
    /// Read.
    pub read: bool,
    /// When it was marked read, RFC 3339.
    pub read_at: Option<String>,
    /// Marked completed by the user.
    pub is_completed: bool,
    /// Whether `due_date` is set and in the past.
    pub is_overdue: bool,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Last change, RFC 3339.
    pub updated_at: String,
}

const NOTIFICATION_SELECT: &str = concat!(
    "SELECT n.id, n.notification_type,
            initcap(replace(lower(n.notification_type), '_', ' ')) AS notification_type_display,
            n.assigned_to_id AS assigned_to,
            NULLIF(btrim(u.first_name || ' ' || u.last_name), '') AS assigned_to_name,
            n.title, n.message, ",
    rfc3339!("n.due_date"),
    " AS due_date, n.meta_info, n.read, ",
    rfc3339!("n.read_at"),
    " AS read_at, n.is_completed,
            (n.due_date IS NOT NULL AND n.due_date < now()) AS is_overdue, ",
    rfc3339!("n.created_at"),
    " AS created_at, ",
    rfc3339!("n.updated_at"),
    " AS updated_at
       FROM notifications n
       JOIN users u ON u.id = n.assigned_to_id"
);

fn not_found() -> ApiError {
    ApiError::NotFound("Notification not found or access denied".into())
}

// ----- handlers ----------------------------------------------------------------------------

/// `GET /api/v1/notifications/`: newest first. `include_read` (default true; only `true`,
/// `1`, `yes`, `on` are true once given) and `type` (exact).
pub(crate) async fn list(
    auth: AuthUser,
    pagination: Pagination,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<NotificationOutput>>, ApiError> {
    let params = list_params(query.as_deref());
    let include_read = params.get("include_read").is_none_or(|v| truthy(v.trim()));
    let kind = param(&params, "type").map(str::to_owned);
    let user = auth.user_id.get();
    let filters = || -> Result<Filters, ApiError> {
        let mut args = PgArguments::default();
        push_arg(&mut args, user)?;
        let mut clauses = vec!["n.assigned_to_id = $1".to_owned()];
        let mut n = 1;
        if !include_read {
            clauses.push("NOT n.read".into());
        }
        if let Some(kind) = &kind {
            n += 1;
            push_arg(&mut args, kind.clone())?;
            clauses.push(format!("n.notification_type = ${n}"));
        }
        Ok((clauses.join(" AND "), args, n))
    };
    let mut tx = auth.tenant.begin().await?;
    let (rows, count) = fetch_page(
        &mut tx,
        NOTIFICATION_SELECT,
        "notifications n",
        "n.created_at DESC, n.id DESC",
        filters,
        &pagination,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(pagination.page(rows, count)?))
}

/// `GET /api/v1/notifications/{id}/`.
pub(crate) async fn retrieve(
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<NotificationOutput>, ApiError> {
    let id = path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    let out = fetch_notification(&mut tx, auth.user_id.get(), id)
        .await?
        .ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(Json(out))
}

/// `PUT`/`PATCH /api/v1/notifications/{id}/update_notification/`: `read` (true sets `read_at`,
/// false clears it) and `is_completed`, both optional booleans.
pub(crate) async fn update_notification(
    auth: AuthUser,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<NotificationOutput>, ApiError> {
    let id = path_id(&raw).ok_or_else(not_found)?;
    let body = object(body)?;
    let mut errors = FieldErrors::default();
    let read = boolean(&body, "read", &mut errors);
    let is_completed = boolean(&body, "is_completed", &mut errors);
    errors.finish()?;
    let user = auth.user_id.get();
    let mut tx = auth.tenant.begin().await?;
    let was_read = lock_notification(&mut tx, user, id)
        .await?
        .ok_or_else(not_found)?;
    update_row(&mut tx, user, id, read, is_completed).await?;
    match read {
        Some(true) if !was_read => announce_read(&mut tx, user, &[id]).await?,
        Some(false) if was_read => announce_read(&mut tx, user, &[]).await?,
        _ => {}
    }
    let out = fetch_notification(&mut tx, user, id)
        .await?
        .ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(Json(out))
}

/// `POST /api/v1/notifications/{id}/mark_read/`.
pub(crate) async fn mark_read(
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<NotificationOutput>, ApiError> {
    let id = path_id(&raw).ok_or_else(not_found)?;
    let user = auth.user_id.get();
    let mut tx = auth.tenant.begin().await?;
    let marked = mark_read_rows(&mut tx, user, &[id]).await?;
    if marked.is_empty() {
        // Already read, or not the caller's: tell them apart.
        fetch_notification(&mut tx, user, id)
            .await?
            .ok_or_else(not_found)?;
    } else {
        announce_read(&mut tx, user, &marked).await?;
    }
    let out = fetch_notification(&mut tx, user, id)
        .await?
        .ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(Json(out))
}

/// `POST /api/v1/notifications/bulk_mark_read/`: `{"notification_ids": [...]}` (required,
/// non-empty) → `{"marked_read_count": n}`, the number of the caller's unread notifications
/// among them now marked read (other ids are ignored).
pub(crate) async fn bulk_mark_read(
    auth: AuthUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let body = object(body)?;
    let mut errors = FieldErrors::default();
    let ids = id_list(&body, "notification_ids", &mut errors);
    errors.finish()?;
    let mut ids = ids
        .filter(|ids| !ids.is_empty())
        .ok_or_else(|| ApiError::BadRequest("notification_ids list is required".into()))?;
    ids.sort_unstable();
    ids.dedup();
    let user = auth.user_id.get();
    let mut tx = auth.tenant.begin().await?;
    let marked = mark_read_rows(&mut tx, user, &ids).await?;
    if !marked.is_empty() {
        announce_read(&mut tx, user, &marked).await?;
    }
    tx.commit().await?;
    Ok(Json(json!({"marked_read_count": marked.len()})))
}

/// `GET /api/v1/notifications/unread_count/`.
pub(crate) async fn unread_count(auth: AuthUser) -> Result<Json<Value>, ApiError> {
    let mut tx = auth.tenant.begin().await?;
    let count = count_unread(&mut tx, auth.user_id.get()).await?;
    tx.commit().await?;
    Ok(Json(json!({"unread_count": count})))
}

/// `GET /api/v1/notifications/overdue/`: unpaginated; due in the past and not completed, by
/// due date.
pub(crate) async fn overdue(auth: AuthUser) -> Result<Json<Vec<NotificationOutput>>, ApiError> {
    let mut tx = auth.tenant.begin().await?;
    let rows = list_overdue(&mut tx, auth.user_id.get()).await?;
    tx.commit().await?;
    Ok(Json(rows))
}

// ----- data --------------------------------------------------------------------------------

/// Notification `id` of `user`.
async fn fetch_notification(
    conn: &mut PgConnection,
    user: i64,
    id: i64,
) -> Result<Option<NotificationOutput>, ApiError> {
    Ok(sqlx::query_as(&format!(
        "{NOTIFICATION_SELECT} WHERE n.id = $1 AND n.assigned_to_id = $2"
    ))
    .bind(id)
    .bind(user)
    .fetch_optional(conn)
    .await?)
}

/// Locks notification `id` of `user`; its `read` flag, `None` when it is not theirs.
async fn lock_notification(
    conn: &mut PgConnection,
    user: i64,
    id: i64,
) -> Result<Option<bool>, ApiError> {
    Ok(sqlx::query_scalar(
        "SELECT read FROM notifications WHERE id = $1 AND assigned_to_id = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(user)
    .fetch_optional(conn)
    .await?)
}

/// Applies `update_notification`'s fields to notification `id` of `user`.
async fn update_row(
    conn: &mut PgConnection,
    user: i64,
    id: i64,
    read: Option<bool>,
    is_completed: Option<bool>,
) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE notifications
            SET read = coalesce($3, read),
                read_at = CASE WHEN $3 IS NULL THEN read_at
                               WHEN $3 THEN (CASE WHEN read THEN read_at ELSE now() END)
                               ELSE NULL END,
                is_completed = coalesce($4, is_completed),
                updated_at = now(), updated_by_id = $2
          WHERE id = $1 AND assigned_to_id = $2",
    )
    .bind(id)
    .bind(user)
    .bind(read)
    .bind(is_completed)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks `user`'s unread notifications among `ids` read; returns the ids marked, in order.
async fn mark_read_rows(
    conn: &mut PgConnection,
    user: i64,
    ids: &[i64],
) -> Result<Vec<i64>, ApiError> {
    let mut marked: Vec<i64> = sqlx::query_scalar(
        "UPDATE notifications
            SET read = true, read_at = now(), updated_at = now(), updated_by_id = $1
          WHERE assigned_to_id = $1 AND id = ANY($2) AND NOT read
          RETURNING id",
    )
    .bind(user)
    .bind(ids)
    .fetch_all(conn)
    .await?;
    marked.sort_unstable();
    Ok(marked)
}

/// `user`'s unread notifications.
pub(crate) async fn count_unread(conn: &mut PgConnection, user: i64) -> Result<i64, ApiError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE assigned_to_id = $1 AND NOT read",
    )
    .bind(user)
    .fetch_one(conn)
    .await?)
}

/// `user`'s overdue notifications: due in the past, not completed, by due date.
async fn list_overdue(
    conn: &mut PgConnection,
    user: i64,
) -> Result<Vec<NotificationOutput>, ApiError> {
    Ok(sqlx::query_as(&format!(
        "{NOTIFICATION_SELECT}
          WHERE n.assigned_to_id = $1 AND n.due_date < now() AND NOT n.is_completed
          ORDER BY n.due_date, n.id"
    ))
    .bind(user)
    .fetch_all(conn)
    .await?)
}
