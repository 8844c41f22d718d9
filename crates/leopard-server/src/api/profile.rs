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

use super::clients::client_in_scope;
use super::input::{int_param, text, FieldErrors, Patch};
use super::{events, push_arg, push_predicate, Filters};

/// Where a section row's scope lives in the list queries (its client, joined as `c`).
pub(crate) const SCOPE_COLUMNS: ScopeColumns<'static> = ScopeColumns {
    branch: "c.branch_id",
    owners: &[],
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
