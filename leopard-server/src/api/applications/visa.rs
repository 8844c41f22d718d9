//! `/api/v1/visa-categories/` (seeded master data, a bare array) and `/api/v1/visa-types/`
//! (types with their document checklist).
//!
//! Reading is tenant-wide for anyone who works with visas or clients: `view_visacategory` /
//! `view_visatype`, or `view_visaapplication` or `view_client` (the application form and the
//! client filters need these lists; the original let every authenticated user read them, a
//! user without a role still sees nothing). Writes are verb-level (`add_visatype`,
//! `change_visatype`, `delete_visatype`). PATCH is merge-patch over `visa_category_id`, `name`,
//! `code`, `description` and `checklist` (the original accepted only the checklist; real
//! clients send the whole form). A type used by an application cannot be deleted (400).
//!
//! Writes record `VisaType.CREATE`, `VisaType.<field>.UPDATE` and `VisaType.DELETE`.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post};
use axum::Json;
use http::Method;
use leopard_http::{ApiError, AuthUser, JsonBody, Page, Pagination};
use leopard_rbac::{Action, Principal, ResourceKind};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::postgres::PgArguments;
use sqlx::PgConnection;

use crate::api::events;
use crate::api::input::{
    contains_pattern, int_param, list_params, object, param, path_id, required_id, required_text,
    string_list, text, FieldErrors, Patch,
};
use crate::api::{push_arg, require, route, Access, ApiRoute};
use crate::app::AppState;

/// The event entity name.
const ENTITY: &str = "VisaType";

/// The fields whose changes are recorded as `VisaType.<field>.UPDATE` events.
const TRACKED: &[&str] = &["visa_category", "name", "code", "checklist"];

/// The visa category and type routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        route(
            "/api/v1/visa-categories/",
            Access::Tenant,
            [(Method::GET, get(categories))],
        ),
        route(
            "/api/v1/visa-types/",
            Access::Tenant,
            [(Method::GET, get(list)), (Method::POST, post(create))],
        ),
        route(
            "/api/v1/visa-types/{id}/",
            Access::Tenant,
            [
                (Method::GET, get(retrieve)),
                (Method::PATCH, patch(update)),
                (Method::DELETE, delete(destroy)),
            ],
        ),
    ]
}

/// A visa category (the original's VisaCategoryOutput).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct VisaCategoryOutput {
    /// Id.
    pub id: i64,
    /// Name ("Work Visa").
    pub name: String,
    /// Short code ("WORK"), or null.
    pub code: Option<String>,
    /// Free text.
    pub description: String,
}

/// A visa type (the original's VisaTypeOutput).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct VisaTypeOutput {
    /// Id.
    pub id: i64,
    /// Its category: `{id, name, code, description}`.
    pub visa_category: Value,
    /// The category's name.
    pub visa_category_name: String,
    /// Name ("Employer Sponsored").
    pub name: String,
    /// Subclass code ("482").
    pub code: String,
    /// Free text.
    pub description: String,
    /// The document names an application of this type needs.
    pub checklist: Value,
}

const TYPE_SELECT: &str = "SELECT t.id,
            json_build_object('id', vc.id, 'name', vc.name, 'code', vc.code,
                              'description', vc.description) AS visa_category,
            vc.name AS visa_category_name, t.name, t.code, t.description, t.checklist
       FROM visa_types t
       JOIN visa_categories vc ON vc.id = t.visa_category_id";

/// 403 unless `principal` may read visa master data of `kind`: its own view permission, or
/// that of visa applications or clients (whose forms list them).
fn require_read(principal: &Principal, kind: ResourceKind) -> Result<(), ApiError> {
    crate::api::require_view_of_any(
        principal,
        &[kind, ResourceKind::VisaApplication, ResourceKind::Client],
    )
}

fn not_found() -> ApiError {
    ApiError::NotFound("Visa type not found".into())
}

/// The body of a create or update.
#[derive(Debug, Default)]
struct TypeInput {
    visa_category_id: Option<i64>,
    name: Option<String>,
    code: Option<String>,
    description: Option<String>,
    checklist: Option<Vec<String>>,
}

/// Reads a create (`visa_category_id`, `name` required) or update body.
fn type_input(body: &Map<String, Value>, create: bool) -> Result<TypeInput, ApiError> {
    let mut errors = FieldErrors::default();
    let optional = |field, max, errors: &mut FieldErrors| match text(body, field, max, errors) {
        Patch::Set(s) => Some(s),
        Patch::Null => Some(String::new()),
        Patch::Absent => None,
    };
    let input = TypeInput {
        visa_category_id: required_id(body, "visa_category_id", create, &mut errors),
        name: required_text(body, "name", 100, create, &mut errors),
        code: optional("code", 50, &mut errors),
        description: optional("description", 100_000, &mut errors),
        checklist: match string_list(body, "checklist", 200, &mut errors) {
            Patch::Set(items) => Some(items.into_iter().filter(|s| !s.is_empty()).collect()),
            Patch::Null => Some(Vec::new()),
            Patch::Absent => None,
        },
    };
    errors.finish()?;
    Ok(input)
}

// ----- handlers ----------------------------------------------------------------------------

/// `GET /api/v1/visa-categories/`: every category, by name (not paginated).
pub(crate) async fn categories(auth: AuthUser) -> Result<Json<Vec<VisaCategoryOutput>>, ApiError> {
    require_read(&auth.principal, ResourceKind::VisaCategory)?;
    let mut tx = auth.tenant.begin().await?;
    let rows =
        sqlx::query_as("SELECT id, name, code, description FROM visa_categories ORDER BY name, id")
            .fetch_all(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(Json(rows))
}

/// `GET /api/v1/visa-types/`.
pub(crate) async fn list(
    auth: AuthUser,
    pagination: Pagination,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<VisaTypeOutput>>, ApiError> {
    require_read(&auth.principal, ResourceKind::VisaType)?;
    let params = list_params(query.as_deref());
    let mut tx = auth.tenant.begin().await?;
    let (rows, count) = crate::api::fetch_page(
        &mut tx,
        TYPE_SELECT,
        "visa_types t JOIN visa_categories vc ON vc.id = t.visa_category_id",
        "vc.name, t.name, t.id",
        || type_filters(&params),
        &pagination,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(pagination.page(rows, count)?))
}

/// `POST /api/v1/visa-types/`.
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<VisaTypeOutput>), ApiError> {
    require(&auth.principal, Action::Add, ResourceKind::VisaType)?;
    let input = type_input(&object(body)?, true)?;
    let mut tx = auth.tenant.begin().await?;
    if let Some(category) = input.visa_category_id {
        ensure_category(&mut tx, category).await?;
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO visa_types (visa_category_id, name, code, description, checklist)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(input.visa_category_id)
    .bind(input.name.clone().unwrap_or_default())
    .bind(input.code.clone().unwrap_or_default())
    .bind(input.description.clone().unwrap_or_default())
    .bind(Value::from(input.checklist.clone().unwrap_or_default()))
    .fetch_one(&mut *tx)
    .await?;
    let out = fetch_type(&mut tx, id, false)
        .await?
        .ok_or_else(not_found)?;
    let event = events::created(ENTITY, id, events::state(&out)?, auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET /api/v1/visa-types/{id}/`.
pub(crate) async fn retrieve(
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<VisaTypeOutput>, ApiError> {
    require_read(&auth.principal, ResourceKind::VisaType)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    let out = fetch_type(&mut tx, id, false)
        .await?
        .ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(Json(out))
}

/// `PATCH /api/v1/visa-types/{id}/`.
pub(crate) async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<VisaTypeOutput>, ApiError> {
    require(&auth.principal, Action::Change, ResourceKind::VisaType)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let input = type_input(&object(body)?, false)?;
    let mut tx = auth.tenant.begin().await?;
    let before = fetch_type(&mut tx, id, true).await?.ok_or_else(not_found)?;
    if let Some(category) = input.visa_category_id {
        ensure_category(&mut tx, category).await?;
    }
    sqlx::query(
        "UPDATE visa_types
            SET visa_category_id = COALESCE($2, visa_category_id),
                name = COALESCE($3, name),
                code = COALESCE($4, code),
                description = COALESCE($5, description),
                checklist = COALESCE($6, checklist)
          WHERE id = $1",
    )
    .bind(id)
    .bind(input.visa_category_id)
    .bind(input.name.as_deref())
    .bind(input.code.as_deref())
    .bind(input.description.as_deref())
    .bind(input.checklist.clone().map(Value::from))
    .execute(&mut *tx)
    .await?;
    let out = fetch_type(&mut tx, id, false)
        .await?
        .ok_or_else(not_found)?;
    let (before_state, after_state) = (type_state(&before)?, type_state(&out)?);
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

/// `DELETE /api/v1/visa-types/{id}/`: a hard delete, refused (400) while an application uses
/// the type.
pub(crate) async fn destroy(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    require(&auth.principal, Action::Delete, ResourceKind::VisaType)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    let before = fetch_type(&mut tx, id, true).await?.ok_or_else(not_found)?;
    let used: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM visa_applications WHERE visa_type_id = $1)",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if used {
        return Err(ApiError::BadRequest(
            "Cannot delete a visa type that is used by visa applications.".into(),
        ));
    }
    sqlx::query("DELETE FROM visa_types WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let event = events::deleted(ENTITY, id, type_state(&before)?, auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- data --------------------------------------------------------------------------------

/// A type's event state: its output with the category flattened to its id.
fn type_state(out: &VisaTypeOutput) -> Result<Value, ApiError> {
    let mut state = events::state(out)?;
    if let Value::Object(map) = &mut state {
        let category = out.visa_category.get("id").cloned().unwrap_or(Value::Null);
        map.insert("visa_category".into(), category);
    }
    Ok(state)
}

/// The `WHERE` clause of the list, its arguments and how many there are.
fn type_filters(
    params: &HashMap<String, String>,
) -> Result<(String, PgArguments, usize), ApiError> {
    let mut clauses = vec!["TRUE".to_owned()];
    let mut args = PgArguments::default();
    let mut n = 0;
    if let Some(category) = int_param(params, "visa_category_id")? {
        n += 1;
        push_arg(&mut args, category)?;
        clauses.push(format!("t.visa_category_id = ${n}"));
    }
    if let Some(search) = param(params, "search") {
        n += 1;
        push_arg(&mut args, contains_pattern(search))?;
        clauses.push(format!("(t.name ILIKE ${n} OR t.code ILIKE ${n})"));
    }
    Ok((clauses.join(" AND "), args, n))
}

/// A visa type by id (`lock`: with a row lock).
async fn fetch_type(
    conn: &mut PgConnection,
    id: i64,
    lock: bool,
) -> Result<Option<VisaTypeOutput>, ApiError> {
    let sql = format!(
        "{TYPE_SELECT} WHERE t.id = $1{}",
        if lock { " FOR UPDATE OF t" } else { "" }
    );
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

/// A 400 on `visa_category_id` unless category `id` exists.
async fn ensure_category(conn: &mut PgConnection, id: i64) -> Result<(), ApiError> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM visa_categories WHERE id = $1)")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
    if exists {
        Ok(())
    } else {
        Err(ApiError::field(
            "visa_category_id",
            format!("Visa category with id={id} does not exist"),
        ))
    }
}
