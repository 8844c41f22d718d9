//! What the client profile sections (`language-proficiencies`, `qualifications`,
//! `employments`, `passports`) and the profile picture share: records that belong to a client
//! and follow the client's branch for scope.
//!
//! - A record is reached through its client: a missing record, a record of a soft-deleted
//!   client and a record out of the caller's scope all answer 404 `{"detail": "Not found."}`.
//! - A `client_id` in a body must name a live client the caller may act on with the section's
//!   permission; an unknown and an out-of-scope client get the same 400 on `client_id`, so a
//!   body cannot probe which clients exist.
//! - Lists join `clients c` and keep the rows whose client is live and in scope (the same rule
//!   as the object checks: `leopard_rbac::filter` with `branch: "c.branch_id"`), filtered by
//!   `client_id` when asked.
//! - An update records one `<Entity>.UPDATE` naming the changed fields (none when nothing
//!   changed).

use std::collections::HashMap;

use chrono::NaiveDate;
use leopard_http::ApiError;
use leopard_rbac::{filter, Action, Principal, ResourceKind, ScopeColumns};
use serde_json::{Map, Value};
use sqlx::postgres::PgArguments;
use sqlx::PgConnection;

use crate::api::crm::clients::client_in_scope;
use crate::api::input::{int_param, text, FieldErrors, Patch};
use crate::api::{events, push_arg, push_predicate, Filters};

/// Where a section row's scope lives in the list queries (its client, joined as `c`).
pub(crate) const SCOPE_COLUMNS: ScopeColumns<'static> = ScopeColumns {
    branch: "c.branch_id",
    owners: &[],
    region: "NULL",
};

/// The fields that never count as a change.
const UNTRACKED: &[&str] = &["created_at", "updated_at"];

/// The 404 of a missing or out-of-scope record.
pub(crate) fn not_found() -> ApiError {
    ApiError::NotFound("Not found.".into())
}

/// The 400 of a body `client_id` naming no client the caller may use (unknown, soft-deleted
/// or out of scope alike).
fn invalid_client(id: i64) -> ApiError {
    ApiError::field(
        "client_id",
        format!("Invalid pk \"{id}\" - object does not exist."),
    )
}

/// The client of row `id` of `table` (whose client column is `client_id`, a constant of the
/// caller), locked with `lock`; `None` when there is no such row.
async fn owner(
    conn: &mut PgConnection,
    table: &str,
    key: &str,
    id: i64,
    lock: bool,
) -> Result<Option<i64>, ApiError> {
    let sql = format!(
        "SELECT client_id FROM {table} WHERE {key} = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    Ok(sqlx::query_scalar(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

/// The client of row `id` of `table` (key column `key`) when `principal` may `action` it as a
/// `kind`; 404 otherwise (missing row, soft-deleted client, out of scope). `lock` locks the
/// row and its client.
pub(crate) async fn scoped_record(
    conn: &mut PgConnection,
    principal: &Principal,
    (action, kind): (Action, ResourceKind),
    (table, key): (&str, &str),
    id: i64,
    lock: bool,
) -> Result<i64, ApiError> {
    let client = owner(conn, table, key, id, lock)
        .await?
        .ok_or_else(not_found)?;
    client_in_scope(conn, principal, action, kind, client, lock, not_found).await?;
    Ok(client)
}

/// 400 on `client_id` unless live client `id` is one `principal` may `action` records of
/// `kind` for; locks the client.
pub(crate) async fn body_client(
    conn: &mut PgConnection,
    principal: &Principal,
    action: Action,
    kind: ResourceKind,
    id: i64,
) -> Result<(), ApiError> {
    client_in_scope(conn, principal, action, kind, id, true, || {
        invalid_client(id)
    })
    .await?;
    Ok(())
}

/// The start of a section list's filters: the caller's scope over the joined client `c`, live
/// clients only, and `<alias>.client_id = ?` when the query has `client_id` (400 when it is not
/// an integer). Returns the clauses, their arguments and the last `$n` used.
pub(crate) fn section_filters(
    principal: &Principal,
    kind: ResourceKind,
    alias: &str,
    params: &HashMap<String, String>,
) -> Result<(Vec<String>, PgArguments, usize), ApiError> {
    let mut args = PgArguments::default();
    let scope = filter(principal, Action::View, kind, &SCOPE_COLUMNS, 1);
    let mut n = scope.params.len();
    push_predicate(&mut args, &scope)?;
    let mut clauses = vec![scope.sql, "c.deleted_at IS NULL".to_owned()];
    if let Some(client) = int_param(params, "client_id")? {
        n += 1;
        push_arg(&mut args, client)?;
        clauses.push(format!("{alias}.client_id = ${n}"));
    }
    Ok((clauses, args, n))
}

/// Joins the clauses of [`section_filters`] (and any added) into a [`Filters`].
pub(crate) fn joined((clauses, args, n): (Vec<String>, PgArguments, usize)) -> Filters {
    (clauses.join(" AND "), args, n)
}

/// The top-level fields whose values differ between two states (timestamps ignored).
pub(crate) fn changed_fields(before: &Value, after: &Value) -> Vec<String> {
    let (Value::Object(old), Value::Object(new)) = (before, after) else {
        return Vec::new();
    };
    new.iter()
        .filter(|(k, v)| !UNTRACKED.contains(&k.as_str()) && old.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect()
}

/// The `<entity>.UPDATE` of a change from `before` to `after` by `actor`, or nothing when no
/// field changed.
pub(crate) fn update_event(
    entity: &str,
    id: i64,
    before: Value,
    after: Value,
    actor: i64,
) -> Vec<leopard_events::NewEvent> {
    let changed = changed_fields(&before, &after);
    if changed.is_empty() {
        return Vec::new();
    }
    let names: Vec<&str> = changed.iter().map(String::as_str).collect();
    vec![events::updated_fields(
        entity, id, before, after, &names, actor,
    )]
}

/// A field a full record must have: a value of the body, else (PATCH) `base`, else a 400
/// ("This field is required."; `null` is "This field may not be null."). A field the parser
/// already refused is not reported twice.
pub(crate) fn must<T>(
    body: &Map<String, Value>,
    field: &str,
    value: Patch<T>,
    base: Option<T>,
    errors: &mut FieldErrors,
) -> Option<T> {
    match value {
        Patch::Set(v) => Some(v),
        Patch::Null => {
            errors.add(field, "This field may not be null.");
            None
        }
        Patch::Absent if body.contains_key(field) => None,
        Patch::Absent => {
            if base.is_none() {
                errors.add(field, "This field is required.");
            }
            base
        }
    }
}

/// A non-blank text of at most `max` characters a full record must have (see [`must`]).
pub(crate) fn must_text(
    body: &Map<String, Value>,
    field: &str,
    max: usize,
    base: Option<&str>,
    errors: &mut FieldErrors,
) -> Option<String> {
    match text(body, field, max, errors) {
        Patch::Set(s) if s.is_empty() => {
            errors.add(field, "This field may not be blank.");
            None
        }
        value => must(body, field, value, base.map(str::to_owned), errors),
    }
}

/// A nullable field: a value of the body, `None` for `null`, else (PATCH) `base`, else `None`.
pub(crate) fn may<T>(value: Patch<T>, base: Option<T>) -> Option<T> {
    match value {
        Patch::Set(v) => Some(v),
        Patch::Null => None,
        Patch::Absent => base,
    }
}

/// An optional text: a value of the body (`null` = empty), else (PATCH) `base`, else empty.
pub(crate) fn blank_or(value: Patch<String>, base: Option<&str>) -> String {
    match value {
        Patch::Set(v) => v,
        Patch::Null => String::new(),
        Patch::Absent => base.unwrap_or_default().to_owned(),
    }
}

/// A `YYYY-MM-DD` rendered by the database back as a date (for merging a PATCH over a row).
pub(crate) fn day(value: Option<&str>) -> Option<NaiveDate> {
    value.and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
}

/// A client-owned profile section served by the generic handlers of [`section_routes`]
/// (qualifications, employments, language proficiencies): what differs between them is only
/// the row type, the body rules and the SQL.
pub(crate) trait Section: Send + Sync + 'static {
    /// The event entity name (`Qualification`, …).
    const ENTITY: &'static str;
    /// The permission kind.
    const KIND: ResourceKind;
    /// The table (key column `id`, client column `client_id`).
    const TABLE: &'static str;
    /// The body fields holding a country code (documented as `CountryCode`).
    const COUNTRY_FIELDS: &'static [&'static str] = &[];
    /// A row as the API answers it.
    type Output: serde::Serialize
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + Send
        + Sync
        + Unpin
        + 'static;
    /// A validated full record.
    type Input: Send + Sync + 'static;

    /// Reads a full body (`base = None`: POST, PUT) or a PATCH merged over `base`.
    fn read(
        body: &Map<String, Value>,
        base: Option<&Self::Output>,
    ) -> Result<Self::Input, ApiError>;

    /// The client `input` belongs to.
    fn client_of(input: &Self::Input) -> i64;

    /// Checks what the body refers to beyond its client (e.g. the exam of a result).
    fn check(
        _conn: &mut PgConnection,
        _input: &Self::Input,
    ) -> impl std::future::Future<Output = Result<(), ApiError>> + Send {
        async { Ok(()) }
    }

    /// One page of the rows `principal` may see matching `params`, and the total count.
    fn list(
        conn: &mut PgConnection,
        principal: &Principal,
        params: &HashMap<String, String>,
        pagination: &leopard_http::Pagination,
    ) -> impl std::future::Future<Output = Result<(Vec<Self::Output>, i64), ApiError>> + Send;

    /// One row by id (callers check scope first).
    fn fetch(
        conn: &mut PgConnection,
        id: i64,
    ) -> impl std::future::Future<Output = Result<Option<Self::Output>, ApiError>> + Send;

    /// Inserts `input` recorded by `user`; returns the new id.
    fn insert(
        conn: &mut PgConnection,
        input: &Self::Input,
        user: i64,
    ) -> impl std::future::Future<Output = Result<i64, ApiError>> + Send;

    /// Replaces row `id` with `input`, recording `user` as the last updater.
    fn update(
        conn: &mut PgConnection,
        id: i64,
        input: &Self::Input,
        user: i64,
    ) -> impl std::future::Future<Output = Result<(), ApiError>> + Send;
}

/// The routes of section `S`: `list_path` (GET list, POST) and `detail_path` (GET, PUT with a
/// full body, PATCH merge-patch, DELETE).
pub(crate) fn section_routes<S: Section>(
    list_path: &'static str,
    detail_path: &'static str,
) -> Vec<crate::api::ApiRoute> {
    use axum::routing::{delete, get, patch, post, put};
    use http::Method;
    vec![
        crate::api::route(
            list_path,
            crate::api::Access::Tenant,
            [
                (Method::GET, get(section_list::<S>)),
                (Method::POST, post(section_create::<S>)),
            ],
        ),
        crate::api::route(
            detail_path,
            crate::api::Access::Tenant,
            [
                (Method::GET, get(section_retrieve::<S>)),
                (Method::PUT, put(section_replace::<S>)),
                (Method::PATCH, patch(section_modify::<S>)),
                (Method::DELETE, delete(section_destroy::<S>)),
            ],
        ),
    ]
    .into_iter()
    .map(|r| r.countries(S::COUNTRY_FIELDS))
    .collect()
}

/// `GET <list>`: one page of the rows in scope.
pub(crate) async fn section_list<S: Section>(
    auth: leopard_http::AuthUser,
    pagination: leopard_http::Pagination,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<axum::Json<leopard_http::Page<S::Output>>, ApiError> {
    crate::api::require(&auth.principal, Action::View, S::KIND)?;
    let params = crate::api::input::list_params(query.as_deref());
    let mut tx = auth.tenant.begin().await?;
    let (rows, count) = S::list(&mut tx, &auth.principal, &params, &pagination).await?;
    tx.commit().await?;
    Ok(axum::Json(pagination.page(rows, count)?))
}

/// `POST <list>`: a full body; 201 with the new row.
pub(crate) async fn section_create<S: Section>(
    axum::extract::State(state): axum::extract::State<crate::app::AppState>,
    auth: leopard_http::AuthUser,
    leopard_http::JsonBody(body): leopard_http::JsonBody<Value>,
) -> Result<(http::StatusCode, axum::Json<S::Output>), ApiError> {
    crate::api::require(&auth.principal, Action::Add, S::KIND)?;
    let input = S::read(&crate::api::input::object(body)?, None)?;
    let mut tx = auth.tenant.begin().await?;
    body_client(
        &mut tx,
        &auth.principal,
        Action::Add,
        S::KIND,
        S::client_of(&input),
    )
    .await?;
    S::check(&mut tx, &input).await?;
    let id = S::insert(&mut tx, &input, auth.user_id.get()).await?;
    let out = S::fetch(&mut tx, id).await?.ok_or_else(not_found)?;
    let event = events::created(S::ENTITY, id, events::state(&out)?, auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok((http::StatusCode::CREATED, axum::Json(out)))
}

/// `GET <detail>`.
pub(crate) async fn section_retrieve<S: Section>(
    auth: leopard_http::AuthUser,
    axum::extract::Path(raw): axum::extract::Path<String>,
) -> Result<axum::Json<S::Output>, ApiError> {
    crate::api::require(&auth.principal, Action::View, S::KIND)?;
    let id = crate::api::input::path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    scoped_record(
        &mut tx,
        &auth.principal,
        (Action::View, S::KIND),
        (S::TABLE, "id"),
        id,
        false,
    )
    .await?;
    let out = S::fetch(&mut tx, id).await?.ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(axum::Json(out))
}

/// `PUT <detail>`: a full body.
pub(crate) async fn section_replace<S: Section>(
    state: axum::extract::State<crate::app::AppState>,
    auth: leopard_http::AuthUser,
    path: axum::extract::Path<String>,
    body: leopard_http::JsonBody<Value>,
) -> Result<axum::Json<S::Output>, ApiError> {
    section_update::<S>(state, auth, path, body, true).await
}

/// `PATCH <detail>`: merge-patch.
async fn section_modify<S: Section>(
    state: axum::extract::State<crate::app::AppState>,
    auth: leopard_http::AuthUser,
    path: axum::extract::Path<String>,
    body: leopard_http::JsonBody<Value>,
) -> Result<axum::Json<S::Output>, ApiError> {
    section_update::<S>(state, auth, path, body, false).await
}

/// PUT (`full`) or PATCH; moving a row to another client needs that client in scope too.
async fn section_update<S: Section>(
    axum::extract::State(state): axum::extract::State<crate::app::AppState>,
    auth: leopard_http::AuthUser,
    axum::extract::Path(raw): axum::extract::Path<String>,
    leopard_http::JsonBody(body): leopard_http::JsonBody<Value>,
    full: bool,
) -> Result<axum::Json<S::Output>, ApiError> {
    let principal = &auth.principal;
    crate::api::require(principal, Action::Change, S::KIND)?;
    let id = crate::api::input::path_id(&raw).ok_or_else(not_found)?;
    let body = crate::api::input::object(body)?;
    let mut tx = auth.tenant.begin().await?;
    let client = scoped_record(
        &mut tx,
        principal,
        (Action::Change, S::KIND),
        (S::TABLE, "id"),
        id,
        true,
    )
    .await?;
    let before = S::fetch(&mut tx, id).await?.ok_or_else(not_found)?;
    let input = S::read(&body, (!full).then_some(&before))?;
    if S::client_of(&input) != client {
        body_client(
            &mut tx,
            principal,
            Action::Change,
            S::KIND,
            S::client_of(&input),
        )
        .await?;
    }
    S::check(&mut tx, &input).await?;
    S::update(&mut tx, id, &input, auth.user_id.get()).await?;
    let out = S::fetch(&mut tx, id).await?.ok_or_else(not_found)?;
    let events = update_event(
        S::ENTITY,
        id,
        events::state(&before)?,
        events::state(&out)?,
        auth.user_id.get(),
    );
    events::record(&mut tx, events).await?;
    events::commit(tx, &state.waker).await?;
    Ok(axum::Json(out))
}

/// `DELETE <detail>`: hard delete, 204.
pub(crate) async fn section_destroy<S: Section>(
    axum::extract::State(state): axum::extract::State<crate::app::AppState>,
    auth: leopard_http::AuthUser,
    axum::extract::Path(raw): axum::extract::Path<String>,
) -> Result<http::StatusCode, ApiError> {
    crate::api::require(&auth.principal, Action::Delete, S::KIND)?;
    let id = crate::api::input::path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    scoped_record(
        &mut tx,
        &auth.principal,
        (Action::Delete, S::KIND),
        (S::TABLE, "id"),
        id,
        true,
    )
    .await?;
    let before = S::fetch(&mut tx, id).await?.ok_or_else(not_found)?;
    // The table name is a constant of the section, never input.
    sqlx::query(&format!("DELETE FROM {} WHERE id = $1", S::TABLE))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let event = events::deleted(S::ENTITY, id, events::state(&before)?, auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok(http::StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changed_fields_ignore_timestamps_and_list_what_differs() {
        let before = json!({"a": 1, "b": "x", "updated_at": "t1"});
        let after = json!({"a": 2, "b": "x", "updated_at": "t2", "c": null});
        assert_eq!(changed_fields(&before, &after), vec!["a", "c"]);
        assert!(update_event("X", 1, before.clone(), before, 1).is_empty());
    }

    #[test]
    fn rendered_days_parse_back() {
        assert_eq!(
            day(Some("2024-02-29")),
            NaiveDate::from_ymd_opt(2024, 2, 29)
        );
        assert_eq!(day(None), None);
    }
}
