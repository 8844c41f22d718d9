//! `/api/v1/notes/`: free-text notes on a client, author-stamped, hard-deleted.
//!
//! A note follows its client's branch (`leopard_rbac` rule `Branch` for `ResourceKind::Note`):
//! lists join the client and show only notes of live clients in scope, and a note out of scope
//! (or of a soft-deleted client) answers 404 exactly like a missing one. Creating needs
//! `add_note` and a client in scope (an unknown or out-of-scope client is the same 400 on
//! `client`). Editing is allowed to the note's author or to holders of `change_note`, deleting to
//! the author or to holders of `delete_note` — always within scope; anyone else gets a 403 with a
//! clear message (the original answered 400 for a refused edit).
//!
//! PUT and PATCH change `content` only (PUT requires it); other fields are ignored. Content is
//! trimmed, 1–10 000 characters, never blank.
//!
//! Writes record `Note.CREATE`, `Note.UPDATE` (plus `Note.content.UPDATE`) when the content
//! changed, and `Note.DELETE`; their state carries `client_id`, which the timeline handler
//! (`handlers::notes`) reads.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post, put};
use axum::Json;
use http::Method;
use leopard_http::{ApiError, AuthUser, JsonBody, Page, Pagination};
use leopard_rbac::{check, Action, Permission, Principal, Resource, ResourceKind, ScopeColumns};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::postgres::PgArguments;
use sqlx::PgConnection;

use crate::api::crm::clients::client_in_scope;
use crate::api::events;
use crate::api::input::{
    int_param, list_params, object, path_id, required_id, required_text, rfc3339, user_name,
    FieldErrors,
};
use crate::api::{push_arg, push_predicate, require, route, Access, ApiRoute, Filters};
use crate::app::AppState;

/// The event entity name.
const ENTITY: &str = "Note";

/// The fields whose changes are recorded as `Note.<field>.UPDATE` events.
const TRACKED: &[&str] = &["content"];

/// The longest note, in characters.
const MAX_CONTENT: usize = 10_000;

/// Where a note's scope lives in the list queries: its client's branch.
const SCOPE_COLUMNS: ScopeColumns<'static> = ScopeColumns {
    branch: "c.branch_id",
    owners: &[],
    region: "NULL",
};

/// The note routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        route(
            "/api/v1/notes/",
            Access::Tenant,
            [(Method::GET, get(list)), (Method::POST, post(create))],
        ),
        route(
            "/api/v1/notes/{id}/",
            Access::Tenant,
            [
                (Method::GET, get(retrieve)),
                (Method::PUT, put(update_put)),
                (Method::PATCH, patch(update_patch)),
                (Method::DELETE, delete(destroy)),
            ],
        ),
    ]
}

/// A note as the API answers it (the original's NoteOutput).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct NoteOutput {
    /// Id.
    pub id: i64,
    /// The client's id.
    pub client: i64,
    /// The author's id (null once the author is deleted).
    pub author: Option<i64>,
    /// The author's "First Last" (or username).
    pub author_name: Option<String>,
    /// The text, trimmed.
    pub content: String,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Last change, RFC 3339.
    pub updated_at: String,
}

const NOTE_SELECT: &str = concat!(
    "SELECT n.id, n.client_id AS client, n.author_id AS author, ",
    user_name!("au"),
    " AS author_name, n.content, ",
    rfc3339!("n.created_at"),
    " AS created_at, ",
    rfc3339!("n.updated_at"),
    " AS updated_at
       FROM notes n
       JOIN clients c ON c.id = n.client_id
       LEFT JOIN users au ON au.id = n.author_id"
);

fn not_found() -> ApiError {
    ApiError::NotFound("No Note matches the given query.".into())
}

/// The content of a body: required on a create and a PUT, optional on a PATCH.
fn content(body: &Map<String, Value>, required: bool) -> Result<Option<String>, ApiError> {
    let mut errors = FieldErrors::default();
    let content = required_text(body, "content", MAX_CONTENT, required, &mut errors);
    errors.finish()?;
    Ok(content)
}

/// The event state of a note: its output plus `client_id`.
fn event_state(out: &NoteOutput) -> Result<Value, ApiError> {
    let mut state = events::state(out)?;
    if let Value::Object(map) = &mut state {
        map.insert("client_id".into(), Value::from(out.client));
    }
    Ok(state)
}

/// What the edit and delete rules need to know about a visible note: its author.
struct NoteScope {
    author: Option<i64>,
}

/// Note `id` of a live client if `principal` may view it (404 otherwise), locked with `lock`.
async fn visible_note(
    conn: &mut PgConnection,
    principal: &Principal,
    id: i64,
    lock: bool,
) -> Result<NoteScope, ApiError> {
    let (branch, author) = note_owner(conn, id, lock).await?.ok_or_else(not_found)?;
    if check(
        principal,
        Action::View,
        &Resource::new(ResourceKind::Note, branch),
    )
    .allowed()
    {
        Ok(NoteScope { author })
    } else {
        Err(not_found())
    }
}

/// The notes rule: the note's author, or a holder of the `action` permission on notes, may
/// edit (`Change`) or delete (`Delete`) a note of their scope. The web page shows its buttons by
/// this very function.
pub(crate) fn may_touch(principal: &Principal, author: Option<i64>, action: Action) -> bool {
    author == Some(principal.user_id().get())
        || principal.has(Permission::new(ResourceKind::Note, action))
}

/// 403 with `message` unless `principal` wrote the note or holds the permission to `action`
/// notes (the note is already known to be visible, so a holder is within scope).
fn author_or(
    principal: &Principal,
    note: &NoteScope,
    action: Action,
    message: &str,
) -> Result<(), ApiError> {
    if may_touch(principal, note.author, action) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(message.into()))
    }
}

// ----- handlers ----------------------------------------------------------------------------

/// `GET /api/v1/notes/`.
pub(crate) async fn list(
    auth: AuthUser,
    pagination: Pagination,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<NoteOutput>>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::Note)?;
    let params = list_params(query.as_deref());
    let mut tx = auth.tenant.begin().await?;
    let (rows, count) = list_notes(&mut tx, &auth.principal, &params, &pagination).await?;
    tx.commit().await?;
    Ok(Json(pagination.page(rows, count)?))
}

/// `POST /api/v1/notes/`.
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<NoteOutput>), ApiError> {
    if !auth
        .principal
        .has(Permission::new(ResourceKind::Note, Action::Add))
    {
        return Err(ApiError::Forbidden(
            "You do not have permission to add notes.".into(),
        ));
    }
    let body = object(body)?;
    let mut errors = FieldErrors::default();
    let client = required_id(&body, "client", true, &mut errors);
    let text = required_text(&body, "content", MAX_CONTENT, true, &mut errors);
    errors.finish()?;
    let (Some(client), Some(text)) = (client, text) else {
        return Err(ApiError::BadRequest(
            "client and content are required.".into(),
        ));
    };
    let mut tx = auth.tenant.begin().await?;
    client_in_scope(
        &mut tx,
        &auth.principal,
        Action::Add,
        ResourceKind::Note,
        client,
        false,
        || {
            ApiError::field(
                "client",
                format!("Invalid pk \"{client}\" - object does not exist."),
            )
        },
    )
    .await?;
    let id = insert_note(&mut tx, client, auth.user_id.get(), &text).await?;
    let out = fetch_note(&mut tx, id).await?.ok_or_else(not_found)?;
    let event = events::created(ENTITY, id, event_state(&out)?, auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET /api/v1/notes/{id}/`.
pub(crate) async fn retrieve(
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<NoteOutput>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::Note)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    visible_note(&mut tx, &auth.principal, id, false).await?;
    let out = fetch_note(&mut tx, id).await?.ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(Json(out))
}

/// `PUT /api/v1/notes/{id}/`: `content` required.
pub(crate) async fn update_put(
    state: State<AppState>,
    auth: AuthUser,
    path: Path<String>,
    body: JsonBody<Value>,
) -> Result<Json<NoteOutput>, ApiError> {
    update(state, auth, path, body, true).await
}

/// `PATCH /api/v1/notes/{id}/`: `content` optional.
pub(crate) async fn update_patch(
    state: State<AppState>,
    auth: AuthUser,
    path: Path<String>,
    body: JsonBody<Value>,
) -> Result<Json<NoteOutput>, ApiError> {
    update(state, auth, path, body, false).await
}

/// A note's content change, by its author or a holder of `change_note`.
async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<Value>,
    required: bool,
) -> Result<Json<NoteOutput>, ApiError> {
    let principal = &auth.principal;
    require(principal, Action::View, ResourceKind::Note)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let text = content(&object(body)?, required)?;
    let mut tx = auth.tenant.begin().await?;
    let note = visible_note(&mut tx, principal, id, true).await?;
    author_or(
        principal,
        &note,
        Action::Change,
        "You do not have permission to edit this note.",
    )?;
    let before = fetch_note(&mut tx, id).await?.ok_or_else(not_found)?;
    let Some(text) = text else {
        tx.commit().await?;
        return Ok(Json(before));
    };
    update_content(&mut tx, id, &text).await?;
    let out = fetch_note(&mut tx, id).await?.ok_or_else(not_found)?;
    let (before_state, after_state) = (event_state(&before)?, event_state(&out)?);
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

/// `DELETE /api/v1/notes/{id}/`: hard delete, by the author or a holder of `delete_note`.
pub(crate) async fn destroy(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let principal = &auth.principal;
    require(principal, Action::View, ResourceKind::Note)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    let note = visible_note(&mut tx, principal, id, true).await?;
    author_or(
        principal,
        &note,
        Action::Delete,
        "You do not have permission to delete this note.",
    )?;
    let before = fetch_note(&mut tx, id).await?.ok_or_else(not_found)?;
    delete_note(&mut tx, id).await?;
    let event = events::deleted(ENTITY, id, event_state(&before)?, auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- data --------------------------------------------------------------------------------

/// The `WHERE` clause of the list: scope by the client's branch, live clients, and the
/// `client` and `author` filters.
fn note_filters(
    principal: &Principal,
    params: &HashMap<String, String>,
) -> Result<Filters, ApiError> {
    let mut args = PgArguments::default();
    let scope = leopard_rbac::filter(
        principal,
        Action::View,
        ResourceKind::Note,
        &SCOPE_COLUMNS,
        1,
    );
    let mut n = scope.params.len();
    push_predicate(&mut args, &scope)?;
    let mut clauses = vec![scope.sql, "c.deleted_at IS NULL".to_owned()];
    for (key, column) in [("client", "n.client_id"), ("author", "n.author_id")] {
        if let Some(value) = int_param(params, key)? {
            n += 1;
            push_arg(&mut args, value)?;
            clauses.push(format!("{column} = ${n}"));
        }
    }
    Ok((clauses.join(" AND "), args, n))
}

/// One page of the notes `principal` may see, newest first, and the total count.
async fn list_notes(
    conn: &mut PgConnection,
    principal: &Principal,
    params: &HashMap<String, String>,
    pagination: &Pagination,
) -> Result<(Vec<NoteOutput>, i64), ApiError> {
    crate::api::fetch_page(
        conn,
        NOTE_SELECT,
        "notes n JOIN clients c ON c.id = n.client_id",
        "n.created_at DESC, n.id DESC",
        || note_filters(principal, params),
        pagination,
    )
    .await
}

/// One note by id (whatever its client's state).
async fn fetch_note(conn: &mut PgConnection, id: i64) -> Result<Option<NoteOutput>, ApiError> {
    Ok(sqlx::query_as(&format!("{NOTE_SELECT} WHERE n.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

/// The client branch and the author of note `id` of a live client (`None`: no such note),
/// locking the note with `lock`.
async fn note_owner(
    conn: &mut PgConnection,
    id: i64,
    lock: bool,
) -> Result<Option<(Option<i64>, Option<i64>)>, ApiError> {
    let sql = format!(
        "SELECT c.branch_id, n.author_id
           FROM notes n JOIN clients c ON c.id = n.client_id
          WHERE n.id = $1 AND c.deleted_at IS NULL{}",
        if lock { " FOR UPDATE OF n" } else { "" }
    );
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

/// Inserts a note by `author` on `client`; returns its id.
async fn insert_note(
    conn: &mut PgConnection,
    client: i64,
    author: i64,
    content: &str,
) -> Result<i64, ApiError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO notes (client_id, author_id, content) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(client)
    .bind(author)
    .bind(content)
    .fetch_one(&mut *conn)
    .await?)
}

/// Replaces note `id`'s content.
async fn update_content(conn: &mut PgConnection, id: i64, content: &str) -> Result<(), ApiError> {
    sqlx::query("UPDATE notes SET content = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(content)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Deletes note `id`.
async fn delete_note(conn: &mut PgConnection, id: i64) -> Result<(), ApiError> {
    sqlx::query("DELETE FROM notes WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
