//! `/api/v1/language-exams/`: the tenant's language-proficiency exams (the original's LPE master
//! data: IELTS, PTE, …), referenced by language proficiencies.
//!
//! Master data: tenant-wide to read for any holder of `view_lpe`; writes need `add_lpe`,
//! `change_lpe`, `delete_lpe`. Names are unique case-insensitively (400 on `name`, where the
//! original answered 500); `validity_term` (years) is 0–100. PUT validates a full body (`name`
//! required), PATCH is merge-patch. Deleting an exam that proficiency results still use is a
//! 409 (the original's PROTECT surfaced as a 500).
//!
//! Writes record `LanguageExam.CREATE`, `LanguageExam.UPDATE` (changed fields) and
//! `LanguageExam.DELETE`.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post, put};
use axum::Json;
use http::Method;
use leopard_http::{ApiError, AuthUser, JsonBody, Page, Pagination};
use leopard_rbac::{Action, ResourceKind};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::postgres::PgArguments;
use sqlx::PgConnection;

use crate::api::crm::profile::{not_found, update_event};
use crate::api::events;
use crate::api::input::{
    contains_pattern, list_params, object, param, path_id, required_text, rfc3339, text,
    unique_conflict, FieldErrors, Patch,
};
use crate::api::{push_arg, require, route, Access, ApiRoute, Filters};
use crate::app::AppState;

/// The event entity name.
const ENTITY: &str = "LanguageExam";

/// The permission kind.
const KIND: ResourceKind = ResourceKind::Lpe;

/// The case-insensitive unique index on names.
const NAME_INDEX: &str = "language_exams_name_ci";

/// The language-exam routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        route(
            "/api/v1/language-exams/",
            Access::Tenant,
            [(Method::GET, get(list)), (Method::POST, post(create))],
        ),
        route(
            "/api/v1/language-exams/{id}/",
            Access::Tenant,
            [
                (Method::GET, get(retrieve)),
                (Method::PUT, put(replace)),
                (Method::PATCH, patch(modify)),
                (Method::DELETE, delete(destroy)),
            ],
        ),
    ]
}

/// A language exam as the API answers it (the original's LPE output).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct LanguageExamOutput {
    /// Id.
    pub id: i64,
    /// Name ("IELTS"), unique case-insensitively.
    pub name: String,
    /// How many years a result stays valid (0–100).
    pub validity_term: i16,
    /// Free text.
    pub description: String,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Last change, RFC 3339.
    pub updated_at: String,
}

const EXAM_SELECT: &str = concat!(
    "SELECT e.id, e.name, e.validity_term, e.description, ",
    rfc3339!("e.created_at"),
    " AS created_at, ",
    rfc3339!("e.updated_at"),
    " AS updated_at FROM language_exams e"
);

/// A validated exam: every field known (a PATCH merged over the current row).
#[derive(Debug, Clone)]
struct ExamInput {
    name: String,
    validity_term: i16,
    description: String,
}

/// Reads an integer `field` within `0..=max` (a JSON integer or its decimal string); `null` is
/// an error.
fn bounded_int(
    body: &Map<String, Value>,
    field: &str,
    max: i16,
    errors: &mut FieldErrors,
) -> Option<i16> {
    let value = body.get(field)?;
    let parsed = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match parsed {
        Some(v) if (0..=i64::from(max)).contains(&v) => i16::try_from(v).ok(),
        Some(_) => {
            errors.add(field, format!("Ensure this value is between 0 and {max}."));
            None
        }
        None => {
            errors.add(field, "A valid integer is required.");
            None
        }
    }
}

/// Reads a create or PUT body (`base = None`: `name` required, the rest defaulted) or a PATCH
/// body merged over `base`.
fn exam_input(body: &Map<String, Value>, base: Option<&ExamInput>) -> Result<ExamInput, ApiError> {
    let mut errors = FieldErrors::default();
    let name = required_text(body, "name", 100, base.is_none(), &mut errors);
    let validity_term = bounded_int(body, "validity_term", 100, &mut errors);
    let description = match text(body, "description", 100_000, &mut errors) {
        Patch::Set(s) => Some(s),
        Patch::Null => Some(String::new()),
        Patch::Absent => None,
    };
    errors.finish()?;
    Ok(ExamInput {
        name: name
            .or_else(|| base.map(|b| b.name.clone()))
            .unwrap_or_default(),
        validity_term: validity_term
            .or_else(|| base.map(|b| b.validity_term))
            .unwrap_or(0),
        description: description
            .or_else(|| base.map(|b| b.description.clone()))
            .unwrap_or_default(),
    })
}

impl From<&LanguageExamOutput> for ExamInput {
    fn from(out: &LanguageExamOutput) -> Self {
        Self {
            name: out.name.clone(),
            validity_term: out.validity_term,
            description: out.description.clone(),
        }
    }
}

/// A duplicate name as a 400 on `name`.
fn duplicate(err: sqlx::Error) -> ApiError {
    unique_conflict(
        err,
        NAME_INDEX,
        "name",
        "A language exam with this name already exists.",
    )
}

// ----- handlers ----------------------------------------------------------------------------

/// `GET /api/v1/language-exams/`.
pub(crate) async fn list(
    auth: AuthUser,
    pagination: Pagination,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<LanguageExamOutput>>, ApiError> {
    require(&auth.principal, Action::View, KIND)?;
    let params = list_params(query.as_deref());
    let mut tx = auth.tenant.begin().await?;
    let (rows, count) = list_exams(&mut tx, &params, &pagination).await?;
    tx.commit().await?;
    Ok(Json(pagination.page(rows, count)?))
}

/// `POST /api/v1/language-exams/`.
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<LanguageExamOutput>), ApiError> {
    require(&auth.principal, Action::Add, KIND)?;
    let input = exam_input(&object(body)?, None)?;
    let mut tx = auth.tenant.begin().await?;
    let id = insert_exam(&mut tx, &input).await?;
    let out = fetch_exam(&mut tx, id, false)
        .await?
        .ok_or_else(not_found)?;
    let event = events::created(ENTITY, id, events::state(&out)?, auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET /api/v1/language-exams/{id}/`.
pub(crate) async fn retrieve(
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<LanguageExamOutput>, ApiError> {
    require(&auth.principal, Action::View, KIND)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    let out = fetch_exam(&mut tx, id, false)
        .await?
        .ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(Json(out))
}

/// `PUT /api/v1/language-exams/{id}/`: a full body.
pub(crate) async fn replace(
    state: State<AppState>,
    auth: AuthUser,
    path: Path<String>,
    body: JsonBody<Value>,
) -> Result<Json<LanguageExamOutput>, ApiError> {
    update(state, auth, path, body, true).await
}

/// `PATCH /api/v1/language-exams/{id}/`: merge-patch.
pub(crate) async fn modify(
    state: State<AppState>,
    auth: AuthUser,
    path: Path<String>,
    body: JsonBody<Value>,
) -> Result<Json<LanguageExamOutput>, ApiError> {
    update(state, auth, path, body, false).await
}

/// PUT (`full`) or PATCH.
async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<Value>,
    full: bool,
) -> Result<Json<LanguageExamOutput>, ApiError> {
    require(&auth.principal, Action::Change, KIND)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let body = object(body)?;
    let mut tx = auth.tenant.begin().await?;
    let before = fetch_exam(&mut tx, id, true).await?.ok_or_else(not_found)?;
    let base = ExamInput::from(&before);
    let input = exam_input(&body, (!full).then_some(&base))?;
    update_exam(&mut tx, id, &input).await?;
    let out = fetch_exam(&mut tx, id, false)
        .await?
        .ok_or_else(not_found)?;
    let events = update_event(
        ENTITY,
        id,
        events::state(&before)?,
        events::state(&out)?,
        auth.user_id.get(),
    );
    events::record(&mut tx, events).await?;
    events::commit(tx, &state.waker).await?;
    Ok(Json(out))
}

/// `DELETE /api/v1/language-exams/{id}/`: 409 while results use the exam.
pub(crate) async fn destroy(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    require(&auth.principal, Action::Delete, KIND)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    let before = fetch_exam(&mut tx, id, true).await?.ok_or_else(not_found)?;
    delete_exam(&mut tx, id).await?;
    let event = events::deleted(ENTITY, id, events::state(&before)?, auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- data --------------------------------------------------------------------------------

/// The `WHERE` clause of the list: `name` contains (case-insensitive).
fn exam_filters(params: &HashMap<String, String>) -> Result<Filters, ApiError> {
    let mut args = PgArguments::default();
    match param(params, "name") {
        Some(name) => {
            push_arg(&mut args, contains_pattern(name))?;
            Ok(("e.name ILIKE $1".to_owned(), args, 1))
        }
        None => Ok(("TRUE".to_owned(), args, 0)),
    }
}

/// One page of exams by name, and the total count.
async fn list_exams(
    conn: &mut PgConnection,
    params: &HashMap<String, String>,
    pagination: &Pagination,
) -> Result<(Vec<LanguageExamOutput>, i64), ApiError> {
    crate::api::fetch_page(
        conn,
        EXAM_SELECT,
        "language_exams e",
        "e.name, e.id",
        || exam_filters(params),
        pagination,
    )
    .await
}

/// One exam by id, locked with `lock`.
pub(crate) async fn fetch_exam(
    conn: &mut PgConnection,
    id: i64,
    lock: bool,
) -> Result<Option<LanguageExamOutput>, ApiError> {
    let sql = format!(
        "{EXAM_SELECT} WHERE e.id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

/// Inserts an exam; returns its id (400 on a duplicate name).
async fn insert_exam(conn: &mut PgConnection, input: &ExamInput) -> Result<i64, ApiError> {
    sqlx::query_scalar(
        "INSERT INTO language_exams (name, validity_term, description)
         VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(&input.name)
    .bind(input.validity_term)
    .bind(&input.description)
    .fetch_one(&mut *conn)
    .await
    .map_err(duplicate)
}

/// Replaces an exam's fields (400 on a duplicate name).
async fn update_exam(conn: &mut PgConnection, id: i64, input: &ExamInput) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE language_exams
            SET name = $2, validity_term = $3, description = $4, updated_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(&input.name)
    .bind(input.validity_term)
    .bind(&input.description)
    .execute(&mut *conn)
    .await
    .map_err(duplicate)?;
    Ok(())
}

/// Deletes a (locked) exam; 409 while proficiency results reference it.
async fn delete_exam(conn: &mut PgConnection, id: i64) -> Result<(), ApiError> {
    let used: i64 =
        sqlx::query_scalar("SELECT count(*) FROM proficiencies WHERE test_name_id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
    let in_use = || {
        ApiError::Conflict(format!(
            "This language exam cannot be deleted: {used} language proficiency result(s) use it."
        ))
    };
    if used > 0 {
        return Err(in_use());
    }
    sqlx::query("DELETE FROM language_exams WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(|e| {
            if e.as_database_error()
                .is_some_and(|db| db.is_foreign_key_violation())
            {
                in_use()
            } else {
                ApiError::from(e)
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn a_full_body_needs_a_name_and_a_patch_keeps_the_rest() {
        assert!(exam_input(&body(json!({"validity_term": 2})), None).is_err());
        let base = ExamInput {
            name: "IELTS".into(),
            validity_term: 2,
            description: "d".into(),
        };
        let patched = exam_input(&body(json!({"validity_term": "3"})), Some(&base));
        let patched = patched.map(|i| (i.name, i.validity_term, i.description));
        assert_eq!(patched.ok(), Some(("IELTS".into(), 3, "d".into())));
        for bad in [json!(-1), json!(101), json!(2.5), json!("x"), json!(null)] {
            let input = exam_input(&body(json!({"name": "A", "validity_term": bad})), None);
            assert!(input.is_err(), "{bad}");
        }
    }
}
