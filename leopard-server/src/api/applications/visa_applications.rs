//! `/api/v1/visa-applications/`: a client's visa applications, scoped through the client's
//! branch, with status counts and dashboard statistics (one query each).
//!
//! Permissions are verb-level (`view_visaapplication`, `add_…`, `change_…`, `delete_…`); an
//! application follows its client (`leopard_rbac` rule `Branch` on the client's branch), so an
//! application of an out-of-scope or soft-deleted client answers 404 like a missing one, and so
//! does creating one for such a client. Creating copies the visa type's checklist into
//! `required_documents` (`[{name, received: false}]`) unless the body gives its own list.
//! Money is a decimal string with its currency (three letters, default `USD`).
//!
//! The list takes `ordering` (`client_name`, `visa_type`, `status`, `assigned_to`,
//! `date_applied`, `expiry_date`, `created_at`, `updated_at`, `id`; `-` descending), newest
//! first by default.
//!
//! PATCH is merge-patch: `null` clears a nullable field (`assigned_to_id`, the dates, `notes`,
//! `transaction_reference_no`); `required_documents` takes strings and/or `{name, received}`
//! objects. PUT is not served (405). DELETE — which the original lacked but real clients call —
//! is a hard delete.
//!
//! Writes record `VisaApplication.CREATE`, `VisaApplication.<field>.UPDATE` for `status`,
//! `assigned_to` and `visa_type`, and `VisaApplication.DELETE`; each state carries `client_id`,
//! `branch_id` and `visa_type_label` ("Name (code)") for the handlers (`handlers::visa`).

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post};
use axum::Json;
use chrono::NaiveDate;
use http::Method;
use leopard_http::{ApiError, AuthUser, JsonBody, Page, Pagination};
use leopard_rbac::{filter, Action, Principal, ResourceKind, ScopeColumns};
use serde::Serialize;
use serde_json::{json, Map, Value};
use sqlx::postgres::PgArguments;
use sqlx::PgConnection;

use crate::api::crm::clients::{client_in_scope, ensure_assignable, owned_in_scope};
use crate::api::events;
use crate::api::input::{
    boolean, choice, contains_pattern, currency, date, decimal, int_param, list_params,
    nullable_id, object, param, path_id, required_id, rfc3339, text, user_name, FieldErrors, Patch,
};
use crate::api::{push_arg, push_predicate, require, route, Access, ApiRoute};
use crate::app::AppState;

/// The event entity name.
const ENTITY: &str = "VisaApplication";

/// The fields whose changes are recorded as `VisaApplication.<field>.UPDATE` events.
const TRACKED: &[&str] = &["status", "assigned_to", "visa_type"];

/// The application statuses, in workflow order.
pub const STATUSES: &[&str] = &[
    "TO_BE_APPLIED",
    "VISA_APPLIED",
    "CASE_OPENED",
    "GRANTED",
    "REJECTED",
    "WITHDRAWN",
];

/// The informational dates.
const DATES: &[&str] = &[
    "expiry_date",
    "date_applied",
    "date_opened",
    "final_date",
    "date_granted",
    "date_rejected",
    "date_withdrawn",
];

/// Where an application's scope lives in the list queries (its client's branch).
const SCOPE_COLUMNS: ScopeColumns<'static> = ScopeColumns {
    branch: "c.branch_id",
    owners: &[],
    region: "NULL",
};

/// The largest fee `numeric(10, 2)` holds.
const MAX_FEE: f64 = 99_999_999.99;

/// The visa application routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        route(
            "/api/v1/visa-applications/",
            Access::Tenant,
            [(Method::GET, get(list)), (Method::POST, post(create))],
        ),
        route(
            "/api/v1/visa-applications/status-counts/",
            Access::Tenant,
            [(Method::GET, get(status_counts))],
        ),
        route(
            "/api/v1/visa-applications/dashboard-statistics/",
            Access::Tenant,
            [(Method::GET, get(dashboard_statistics))],
        ),
        route(
            "/api/v1/visa-applications/{id}/",
            Access::Tenant,
            [
                (Method::GET, get(retrieve)),
                (Method::PATCH, patch(update)),
                (Method::DELETE, delete(destroy)),
            ],
        ),
    ]
}

/// A visa application as the API answers it (the original's VisaApplicationOutput).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct VisaApplicationOutput {
    /// Id.
    pub id: i64,
    /// The client's id.
    pub client: i64,
    /// The client's "First Last".
    pub client_name: String,
    /// The visa type's id.
    pub visa_type: i64,
    /// The visa type's name.
    pub visa_type_name: String,
    /// The visa type's category name.
    pub visa_category_name: String,
    /// Transaction reference, or null.
    pub transaction_reference_no: Option<String>,
    /// Immigration fee, a decimal string ("1200.00").
    pub immigration_fee: String,
    /// Its currency (`USD`).
    pub immigration_fee_currency: String,
    /// Service fee, a decimal string.
    pub service_fee: String,
    /// Its currency.
    pub service_fee_currency: String,
    /// Whether it is a dependent's application.
    pub dependent: bool,
    /// Notes, or null.
    pub notes: Option<String>,
    /// The assignee's id.
    pub assigned_to: Option<i64>,
    /// The assignee's "First Last" (or username).
    pub assigned_to_name: Option<String>,
    /// `[{name, received}]`.
    pub required_documents: Value,
    /// Visa expiry, `YYYY-MM-DD`.
    pub expiry_date: Option<String>,
    /// Applied on.
    pub date_applied: Option<String>,
    /// Case opened on.
    pub date_opened: Option<String>,
    /// Final date.
    pub final_date: Option<String>,
    /// Granted on.
    pub date_granted: Option<String>,
    /// Rejected on.
    pub date_rejected: Option<String>,
    /// Withdrawn on.
    pub date_withdrawn: Option<String>,
    /// One of [`STATUSES`].
    pub status: String,
    /// The creating user's id.
    pub created_by: Option<i64>,
    /// The creating user's "First Last" (or username).
    pub created_by_name: Option<String>,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// The last updating user's id.
    pub updated_by: Option<i64>,
    /// Last change, RFC 3339.
    pub updated_at: String,
}

/// The application counts per status (the original's status-counts).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sqlx(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct StatusCounts {
    /// To be applied.
    pub to_be_applied: i64,
    /// Applied.
    pub visa_applied: i64,
    /// Case opened.
    pub case_opened: i64,
    /// Granted.
    pub granted: i64,
    /// Rejected.
    pub rejected: i64,
    /// Withdrawn.
    pub withdrawn: i64,
    /// All of them.
    pub total: i64,
}

const APPLICATION_SELECT: &str = concat!(
    "SELECT va.id, va.client_id AS client,
            btrim(c.first_name || ' ' || c.last_name) AS client_name,
            va.visa_type_id AS visa_type, vt.name AS visa_type_name,
            vc.name AS visa_category_name, va.transaction_reference_no,
            va.immigration_fee::text AS immigration_fee, va.immigration_fee_currency,
            va.service_fee::text AS service_fee, va.service_fee_currency, va.dependent,
            va.notes, va.assigned_to_id AS assigned_to, ",
    user_name!("au"),
    " AS assigned_to_name, va.required_documents,
            to_char(va.expiry_date, 'YYYY-MM-DD') AS expiry_date,
            to_char(va.date_applied, 'YYYY-MM-DD') AS date_applied,
            to_char(va.date_opened, 'YYYY-MM-DD') AS date_opened,
            to_char(va.final_date, 'YYYY-MM-DD') AS final_date,
            to_char(va.date_granted, 'YYYY-MM-DD') AS date_granted,
            to_char(va.date_rejected, 'YYYY-MM-DD') AS date_rejected,
            to_char(va.date_withdrawn, 'YYYY-MM-DD') AS date_withdrawn,
            va.status, va.created_by_id AS created_by, ",
    user_name!("cu"),
    " AS created_by_name, ",
    rfc3339!("va.created_at"),
    " AS created_at, va.updated_by_id AS updated_by, ",
    rfc3339!("va.updated_at"),
    " AS updated_at
       FROM visa_applications va
       JOIN clients c ON c.id = va.client_id
       JOIN visa_types vt ON vt.id = va.visa_type_id
       JOIN visa_categories vc ON vc.id = vt.visa_category_id
       LEFT JOIN users au ON au.id = va.assigned_to_id
       LEFT JOIN users cu ON cu.id = va.created_by_id"
);

/// The body of a create or update, every field read and validated.
#[derive(Debug)]
struct ApplicationInput {
    client_id: Option<i64>,
    visa_type_id: Option<i64>,
    immigration_fee: Option<String>,
    immigration_fee_currency: Option<String>,
    service_fee: Option<String>,
    service_fee_currency: Option<String>,
    transaction_reference_no: Patch<String>,
    dependent: Option<bool>,
    notes: Patch<String>,
    assigned_to_id: Patch<i64>,
    required_documents: Option<Value>,
    status: Option<String>,
    /// `(column, value)` of each given date.
    dates: Vec<(&'static str, Patch<NaiveDate>)>,
}

/// A required (on create) fee that may never be null.
fn fee(
    body: &Map<String, Value>,
    field: &str,
    create: bool,
    errors: &mut FieldErrors,
) -> Option<String> {
    match decimal(body, field, 2, (0.0, MAX_FEE), errors) {
        Patch::Set(v) => Some(v),
        Patch::Null => {
            errors.add(field, "This field may not be null.");
            None
        }
        Patch::Absent => {
            if create && !body.contains_key(field) {
                errors.add(field, "This field is required.");
            }
            None
        }
    }
}

/// `required_documents` normalized to `[{name, received}]`: strings (not received) or
/// `{name, received?}` objects; `None` when absent, a field error when malformed.
fn documents(body: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Value> {
    const FIELD: &str = "required_documents";
    let items = match body.get(FIELD)? {
        Value::Null => return Some(json!([])),
        Value::Array(items) => items,
        _ => {
            errors.add(
                FIELD,
                "Expected a list of document names or {name, received}.",
            );
            return None;
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let (name, received) = match item {
            Value::String(s) => (s.trim(), false),
            Value::Object(o) => match (o.get("name"), o.get("received")) {
                (Some(Value::String(s)), None | Some(Value::Null)) => (s.trim(), false),
                (Some(Value::String(s)), Some(Value::Bool(b))) => (s.trim(), *b),
                _ => {
                    errors.add(
                        FIELD,
                        "Each document needs a string name and a boolean received.",
                    );
                    return None;
                }
            },
            _ => {
                errors.add(
                    FIELD,
                    "Expected a list of document names or {name, received}.",
                );
                return None;
            }
        };
        if name.is_empty() || name.chars().count() > 200 {
            errors.add(FIELD, "A document name must have 1 to 200 characters.");
            return None;
        }
        out.push(json!({"name": name, "received": received}));
    }
    Some(Value::Array(out))
}

/// Reads a create (`create = true`: client, type and fees required) or update body.
fn application_input(
    body: &Map<String, Value>,
    create: bool,
) -> Result<ApplicationInput, ApiError> {
    let mut errors = FieldErrors::default();
    let mut input = ApplicationInput {
        client_id: if create {
            required_id(body, "client_id", true, &mut errors)
        } else {
            None
        },
        visa_type_id: required_id(body, "visa_type_id", create, &mut errors),
        immigration_fee: fee(body, "immigration_fee", create, &mut errors),
        immigration_fee_currency: currency(body, "immigration_fee_currency", &mut errors),
        service_fee: fee(body, "service_fee", create, &mut errors),
        service_fee_currency: currency(body, "service_fee_currency", &mut errors),
        transaction_reference_no: text(body, "transaction_reference_no", 150, &mut errors),
        dependent: boolean(body, "dependent", &mut errors),
        notes: text(body, "notes", 100_000, &mut errors),
        assigned_to_id: nullable_id(body, "assigned_to_id", &mut errors),
        required_documents: documents(body, &mut errors),
        status: choice(body, "status", STATUSES, false, &mut errors),
        dates: Vec::new(),
    };
    if !create && body.contains_key("client_id") {
        errors.add(
            "client_id",
            "The client of an application cannot be changed.",
        );
    }
    for field in DATES {
        let value = date(body, field, &mut errors);
        if value != Patch::Absent {
            input.dates.push((field, value));
        }
    }
    errors.finish()?;
    Ok(input)
}

impl ApplicationInput {
    /// `(given, value)` of date `column`.
    fn date(&self, column: &str) -> (bool, Option<NaiveDate>) {
        match self.dates.iter().find(|(c, _)| *c == column) {
            Some((_, Patch::Set(d))) => (true, Some(*d)),
            Some(_) => (true, None),
            None => (false, None),
        }
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound("Application not found".into())
}

fn client_not_found() -> ApiError {
    ApiError::NotFound("Client not found".into())
}

/// The event state of an application: its output plus `client_id`, `branch_id` and
/// `visa_type_label`.
fn event_state(
    out: &VisaApplicationOutput,
    branch: Option<i64>,
    label: &str,
) -> Result<Value, ApiError> {
    let mut state = events::state(out)?;
    if let Value::Object(map) = &mut state {
        map.insert("client_id".into(), Value::from(out.client));
        map.insert("branch_id".into(), branch.map_or(Value::Null, Value::from));
        map.insert("visa_type_label".into(), Value::from(label));
    }
    Ok(state)
}

// ----- handlers ----------------------------------------------------------------------------

/// `GET /api/v1/visa-applications/`.
pub(crate) async fn list(
    auth: AuthUser,
    pagination: Pagination,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<VisaApplicationOutput>>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::VisaApplication)?;
    let params = list_params(query.as_deref());
    let order = crate::api::ordering(&params, ORDERING, "va.created_at DESC, va.id DESC", "va.id")?;
    let mut tx = auth.tenant.begin().await?;
    let (rows, count) = crate::api::fetch_page(
        &mut tx,
        APPLICATION_SELECT,
        "visa_applications va JOIN clients c ON c.id = va.client_id",
        &order,
        || application_filters(&auth.principal, &params),
        &pagination,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(pagination.page(rows, count)?))
}

/// `GET /api/v1/visa-applications/status-counts/`.
pub(crate) async fn status_counts(auth: AuthUser) -> Result<Json<StatusCounts>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::VisaApplication)?;
    let mut tx = auth.tenant.begin().await?;
    let counts = count_statuses(&mut tx, &auth.principal).await?;
    tx.commit().await?;
    Ok(Json(counts))
}

/// `GET /api/v1/visa-applications/dashboard-statistics/`.
pub(crate) async fn dashboard_statistics(auth: AuthUser) -> Result<Json<Value>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::VisaApplication)?;
    let mut tx = auth.tenant.begin().await?;
    let stats = dashboard(&mut tx, &auth.principal).await?;
    tx.commit().await?;
    Ok(Json(stats))
}

/// `POST /api/v1/visa-applications/`.
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<VisaApplicationOutput>), ApiError> {
    let principal = &auth.principal;
    require(principal, Action::Add, ResourceKind::VisaApplication)?;
    let input = application_input(&object(body)?, true)?;
    let (Some(client), Some(visa_type)) = (input.client_id, input.visa_type_id) else {
        return Err(ApiError::field("client_id", "This field is required."));
    };
    let mut tx = auth.tenant.begin().await?;
    let branch = client_in_scope(
        &mut tx,
        principal,
        Action::Add,
        ResourceKind::VisaApplication,
        client,
        true,
        client_not_found,
    )
    .await?;
    let checklist = type_checklist(&mut tx, visa_type).await?;
    if let Patch::Set(user) = input.assigned_to_id {
        ensure_assignable(&mut tx, principal, user).await?;
    }
    let documents = match &input.required_documents {
        Some(docs) => docs.clone(),
        None => Value::Array(
            checklist
                .iter()
                .map(|name| json!({"name": name, "received": false}))
                .collect(),
        ),
    };
    let id = insert_application(
        &mut tx,
        &input,
        client,
        visa_type,
        documents,
        auth.user_id.get(),
    )
    .await?;
    let (out, label) = fetch_application(&mut tx, id)
        .await?
        .ok_or_else(not_found)?;
    let event = events::created(
        ENTITY,
        id,
        event_state(&out, branch, &label)?,
        auth.user_id.get(),
    );
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET /api/v1/visa-applications/{id}/`.
pub(crate) async fn retrieve(
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<VisaApplicationOutput>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::VisaApplication)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    application_in_scope(&mut tx, &auth.principal, Action::View, id, false).await?;
    let (out, _) = fetch_application(&mut tx, id)
        .await?
        .ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(Json(out))
}

/// `PATCH /api/v1/visa-applications/{id}/`.
pub(crate) async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<VisaApplicationOutput>, ApiError> {
    let principal = &auth.principal;
    require(principal, Action::Change, ResourceKind::VisaApplication)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let input = application_input(&object(body)?, false)?;
    let mut tx = auth.tenant.begin().await?;
    let branch = application_in_scope(&mut tx, principal, Action::Change, id, true).await?;
    let (before, before_label) = fetch_application(&mut tx, id)
        .await?
        .ok_or_else(not_found)?;
    if let Some(visa_type) = input.visa_type_id {
        type_checklist(&mut tx, visa_type).await?;
    }
    if let Patch::Set(user) = input.assigned_to_id {
        if before.assigned_to != Some(user) {
            ensure_assignable(&mut tx, principal, user).await?;
        }
    }
    update_application(&mut tx, id, &input, auth.user_id.get()).await?;
    let (out, label) = fetch_application(&mut tx, id)
        .await?
        .ok_or_else(not_found)?;
    let before_state = event_state(&before, branch, &before_label)?;
    let after_state = event_state(&out, branch, &label)?;
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

/// `DELETE /api/v1/visa-applications/{id}/`: a hard delete.
pub(crate) async fn destroy(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    require(
        &auth.principal,
        Action::Delete,
        ResourceKind::VisaApplication,
    )?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    let branch = application_in_scope(&mut tx, &auth.principal, Action::Delete, id, true).await?;
    let (before, label) = fetch_application(&mut tx, id)
        .await?
        .ok_or_else(not_found)?;
    sqlx::query("DELETE FROM visa_applications WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let event = events::deleted(
        ENTITY,
        id,
        event_state(&before, branch, &label)?,
        auth.user_id.get(),
    );
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- data --------------------------------------------------------------------------------

/// The fields the list may be ordered by (`ordering`, DRF style: `-` for descending).
const ORDERING: &[(&str, &str)] = &[
    ("id", "va.id"),
    ("client_name", "client_name"),
    ("visa_type", "vt.name"),
    ("status", "va.status"),
    ("assigned_to", "assigned_to_name"),
    ("date_applied", "va.date_applied"),
    ("expiry_date", "va.expiry_date"),
    ("created_at", "va.created_at"),
    ("updated_at", "va.updated_at"),
];

/// The `WHERE` clause of the list, its arguments and how many there are.
fn application_filters(
    principal: &Principal,
    params: &HashMap<String, String>,
) -> Result<(String, PgArguments, usize), ApiError> {
    let scope = filter(
        principal,
        Action::View,
        ResourceKind::VisaApplication,
        &SCOPE_COLUMNS,
        1,
    );
    let mut args = PgArguments::default();
    let mut n = scope.params.len();
    push_predicate(&mut args, &scope)?;
    let mut clauses = vec![scope.sql, "c.deleted_at IS NULL".to_owned()];
    if let Some(status) = param(params, "status") {
        n += 1;
        push_arg(&mut args, status.to_owned())?;
        clauses.push(format!("va.status = ${n}"));
    }
    for (key, column) in [
        ("client_id", "va.client_id"),
        ("visa_type_id", "va.visa_type_id"),
        ("assigned_to_id", "va.assigned_to_id"),
        ("created_by_id", "va.created_by_id"),
    ] {
        if let Some(id) = int_param(params, key)? {
            n += 1;
            push_arg(&mut args, id)?;
            clauses.push(format!("{column} = ${n}"));
        }
    }
    if let Some(name) = param(params, "client_name") {
        n += 1;
        push_arg(&mut args, contains_pattern(name))?;
        clauses.push(format!(
            "(c.first_name ILIKE ${n} OR c.last_name ILIKE ${n}
              OR (c.first_name || ' ' || c.last_name) ILIKE ${n})"
        ));
    }
    for (key, op) in [("date_applied_from", ">="), ("date_applied_to", "<=")] {
        if let Some(raw) = param(params, key) {
            let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
                ApiError::field(
                    key,
                    "Date has wrong format. Use one of these formats instead: YYYY-MM-DD.",
                )
            })?;
            n += 1;
            push_arg(&mut args, day)?;
            clauses.push(format!("va.date_applied {op} ${n}"));
        }
    }
    Ok((clauses.join(" AND "), args, n))
}

/// The scope predicate of the applications `principal` may view and its arguments.
fn view_scope(principal: &Principal) -> Result<(String, PgArguments), ApiError> {
    let scope = filter(
        principal,
        Action::View,
        ResourceKind::VisaApplication,
        &SCOPE_COLUMNS,
        1,
    );
    let mut args = PgArguments::default();
    push_predicate(&mut args, &scope)?;
    Ok((scope.sql, args))
}

/// The applications `principal` may see (of live clients), counted per status in one query.
async fn count_statuses(
    conn: &mut PgConnection,
    principal: &Principal,
) -> Result<StatusCounts, ApiError> {
    let (scope, args) = view_scope(principal)?;
    let sql = format!(
        "SELECT count(*) FILTER (WHERE va.status = 'TO_BE_APPLIED') AS \"TO_BE_APPLIED\",
                count(*) FILTER (WHERE va.status = 'VISA_APPLIED') AS \"VISA_APPLIED\",
                count(*) FILTER (WHERE va.status = 'CASE_OPENED') AS \"CASE_OPENED\",
                count(*) FILTER (WHERE va.status = 'GRANTED') AS \"GRANTED\",
                count(*) FILTER (WHERE va.status = 'REJECTED') AS \"REJECTED\",
                count(*) FILTER (WHERE va.status = 'WITHDRAWN') AS \"WITHDRAWN\",
                count(*) AS \"TOTAL\"
           FROM visa_applications va
           JOIN clients c ON c.id = va.client_id
          WHERE c.deleted_at IS NULL AND {scope}"
    );
    Ok(sqlx::query_as_with(&sql, args)
        .fetch_one(&mut *conn)
        .await?)
}

/// The dashboard statistics of the applications `principal` may see, in one query: totals,
/// per status, created today / this week (from Monday) / this month (UTC), granted in the same
/// periods (by `date_granted`), the top five visa types, the five newest applications and the
/// number without an assignee.
async fn dashboard(conn: &mut PgConnection, principal: &Principal) -> Result<Value, ApiError> {
    let (scope, args) = view_scope(principal)?;
    let sql = format!(
        "WITH scoped AS MATERIALIZED (
             SELECT va.id, va.status, va.visa_type_id, va.assigned_to_id, va.created_at,
                    va.date_granted, c.first_name, c.last_name
               FROM visa_applications va
               JOIN clients c ON c.id = va.client_id
              WHERE c.deleted_at IS NULL AND {scope}),
         bounds AS (
             SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AS day,
                    date_trunc('week', now() AT TIME ZONE 'UTC') AS week,
                    date_trunc('month', now() AT TIME ZONE 'UTC') AS month),
         totals AS (
             SELECT count(*) AS total,
                    count(*) FILTER (WHERE s.status = 'TO_BE_APPLIED') AS to_be_applied,
                    count(*) FILTER (WHERE s.status = 'VISA_APPLIED') AS visa_applied,
                    count(*) FILTER (WHERE s.status = 'CASE_OPENED') AS case_opened,
                    count(*) FILTER (WHERE s.status = 'GRANTED') AS granted,
                    count(*) FILTER (WHERE s.status = 'REJECTED') AS rejected,
                    count(*) FILTER (WHERE s.status = 'WITHDRAWN') AS withdrawn,
                    count(*) FILTER (WHERE s.created_at AT TIME ZONE 'UTC' >= b.day) AS today,
                    count(*) FILTER (WHERE s.created_at AT TIME ZONE 'UTC' >= b.week) AS week,
                    count(*) FILTER (WHERE s.created_at AT TIME ZONE 'UTC' >= b.month) AS month,
                    count(*) FILTER (WHERE s.status = 'GRANTED'
                                       AND s.date_granted >= b.day::date) AS g_today,
                    count(*) FILTER (WHERE s.status = 'GRANTED'
                                       AND s.date_granted >= b.week::date) AS g_week,
                    count(*) FILTER (WHERE s.status = 'GRANTED'
                                       AND s.date_granted >= b.month::date) AS g_month,
                    count(*) FILTER (WHERE s.assigned_to_id IS NULL) AS pending
               FROM scoped s CROSS JOIN bounds b
              GROUP BY b.day, b.week, b.month),
         by_type AS (
             SELECT vt.id AS visa_type__id, vt.name AS visa_type__name, count(*) AS count
               FROM scoped s JOIN visa_types vt ON vt.id = s.visa_type_id
              GROUP BY vt.id, vt.name
              ORDER BY count(*) DESC, vt.id
              LIMIT 5),
         recent AS (
             SELECT s.id, s.first_name AS client__first_name, s.last_name AS client__last_name,
                    vt.name AS visa_type__name, s.status, {created} AS created_at
               FROM scoped s JOIN visa_types vt ON vt.id = s.visa_type_id
              ORDER BY s.created_at DESC, s.id DESC
              LIMIT 5)
         SELECT json_build_object(
             'total_applications', COALESCE(t.total, 0),
             'status_breakdown', json_build_object(
                 'TO_BE_APPLIED', COALESCE(t.to_be_applied, 0),
                 'VISA_APPLIED', COALESCE(t.visa_applied, 0),
                 'CASE_OPENED', COALESCE(t.case_opened, 0),
                 'GRANTED', COALESCE(t.granted, 0),
                 'REJECTED', COALESCE(t.rejected, 0),
                 'WITHDRAWN', COALESCE(t.withdrawn, 0)),
             'time_based_counts', json_build_object(
                 'today', COALESCE(t.today, 0),
                 'this_week', COALESCE(t.week, 0),
                 'this_month', COALESCE(t.month, 0)),
             'granted_counts', json_build_object(
                 'today', COALESCE(t.g_today, 0),
                 'this_week', COALESCE(t.g_week, 0),
                 'this_month', COALESCE(t.g_month, 0)),
             'visa_type_breakdown', (SELECT COALESCE(json_agg(x ORDER BY x.count DESC,
                                                              x.visa_type__id), '[]')
                                       FROM by_type x),
             'recent_applications', (SELECT COALESCE(json_agg(r ORDER BY r.created_at DESC,
                                                              r.id DESC), '[]')
                                       FROM recent r),
             'pending_assignments', COALESCE(t.pending, 0))
           FROM (SELECT 1) one LEFT JOIN totals t ON TRUE",
        created = rfc3339!("s.created_at"),
    );
    Ok(sqlx::query_scalar_with(&sql, args)
        .fetch_one(&mut *conn)
        .await?)
}

/// The branch of application `id`'s client when `principal` may `action` it; 404 when the
/// application does not exist, or its client is soft-deleted or out of scope.
async fn application_in_scope(
    conn: &mut PgConnection,
    principal: &Principal,
    action: Action,
    id: i64,
    lock: bool,
) -> Result<Option<i64>, ApiError> {
    owned_in_scope(
        conn,
        principal,
        (action, ResourceKind::VisaApplication),
        ("visa_applications", false),
        id,
        lock,
        not_found,
    )
    .await
}

/// The checklist of visa type `id`; a 400 on `visa_type_id` when there is no such type.
async fn type_checklist(conn: &mut PgConnection, id: i64) -> Result<Vec<String>, ApiError> {
    let checklist: Option<Value> =
        sqlx::query_scalar("SELECT checklist FROM visa_types WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let checklist = checklist.ok_or_else(|| {
        ApiError::field(
            "visa_type_id",
            format!("Visa type with id={id} does not exist"),
        )
    })?;
    Ok(checklist
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default())
}

/// One application by id with its type's label ("Name (code)" or the name).
async fn fetch_application(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<(VisaApplicationOutput, String)>, ApiError> {
    let out: Option<VisaApplicationOutput> =
        sqlx::query_as(&format!("{APPLICATION_SELECT} WHERE va.id = $1"))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(out) = out else {
        return Ok(None);
    };
    let label: String = sqlx::query_scalar(
        "SELECT CASE WHEN code <> '' THEN name || ' (' || code || ')' ELSE name END
           FROM visa_types WHERE id = $1",
    )
    .bind(out.visa_type)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Some((out, label)))
}

/// Inserts an application of `client` for `visa_type` created by `user`; returns its id.
async fn insert_application(
    conn: &mut PgConnection,
    input: &ApplicationInput,
    client: i64,
    visa_type: i64,
    documents: Value,
    user: i64,
) -> Result<i64, ApiError> {
    let set = |p: &Patch<String>| match p {
        Patch::Set(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let d = |c| input.date(c).1;
    Ok(sqlx::query_scalar(
        "INSERT INTO visa_applications (client_id, visa_type_id, transaction_reference_no,
                                        immigration_fee, immigration_fee_currency, service_fee,
                                        service_fee_currency, dependent, notes, assigned_to_id,
                                        required_documents, status, expiry_date, date_applied,
                                        date_opened, final_date, date_granted, date_rejected,
                                        date_withdrawn, created_by_id, updated_by_id)
         VALUES ($1, $2, $3, $4::numeric, $5, $6::numeric, $7, $8, $9, $10, $11, $12, $13, $14,
                 $15, $16, $17, $18, $19, $20, $20)
         RETURNING id",
    )
    .bind(client)
    .bind(visa_type)
    .bind(set(&input.transaction_reference_no))
    .bind(input.immigration_fee.clone().unwrap_or_default())
    .bind(
        input
            .immigration_fee_currency
            .clone()
            .unwrap_or_else(|| "USD".into()),
    )
    .bind(input.service_fee.clone().unwrap_or_default())
    .bind(
        input
            .service_fee_currency
            .clone()
            .unwrap_or_else(|| "USD".into()),
    )
    .bind(input.dependent.unwrap_or(false))
    .bind(set(&input.notes))
    .bind(match input.assigned_to_id {
        Patch::Set(u) => Some(u),
        _ => None,
    })
    .bind(documents)
    .bind(
        input
            .status
            .clone()
            .unwrap_or_else(|| "TO_BE_APPLIED".into()),
    )
    .bind(d("expiry_date"))
    .bind(d("date_applied"))
    .bind(d("date_opened"))
    .bind(d("final_date"))
    .bind(d("date_granted"))
    .bind(d("date_rejected"))
    .bind(d("date_withdrawn"))
    .bind(user)
    .fetch_one(&mut *conn)
    .await?)
}

/// `(changed, value)` of a nullable text patch (an empty string stores null).
fn nullable_text(p: &Patch<String>) -> (bool, Option<String>) {
    match p {
        Patch::Absent => (false, None),
        Patch::Null => (true, None),
        Patch::Set(s) => (true, Some(s.clone()).filter(|s| !s.is_empty())),
    }
}

/// Applies the given fields of application `id`, recording `user` as the last updater.
async fn update_application(
    conn: &mut PgConnection,
    id: i64,
    input: &ApplicationInput,
    user: i64,
) -> Result<(), ApiError> {
    let (reference_set, reference) = nullable_text(&input.transaction_reference_no);
    let (notes_set, notes) = nullable_text(&input.notes);
    let (assignee_set, assignee) = match input.assigned_to_id {
        Patch::Absent => (false, None),
        Patch::Null => (true, None),
        Patch::Set(u) => (true, Some(u)),
    };
    let mut query = sqlx::query(
        "UPDATE visa_applications
            SET visa_type_id = COALESCE($2, visa_type_id),
                immigration_fee = COALESCE($3::numeric, immigration_fee),
                immigration_fee_currency = COALESCE($4, immigration_fee_currency),
                service_fee = COALESCE($5::numeric, service_fee),
                service_fee_currency = COALESCE($6, service_fee_currency),
                transaction_reference_no = CASE WHEN $7 THEN $8 ELSE transaction_reference_no END,
                dependent = COALESCE($9, dependent),
                notes = CASE WHEN $10 THEN $11 ELSE notes END,
                assigned_to_id = CASE WHEN $12 THEN $13 ELSE assigned_to_id END,
                required_documents = COALESCE($14, required_documents),
                status = COALESCE($15, status),
                expiry_date = CASE WHEN $16 THEN $17 ELSE expiry_date END,
                date_applied = CASE WHEN $18 THEN $19 ELSE date_applied END,
                date_opened = CASE WHEN $20 THEN $21 ELSE date_opened END,
                final_date = CASE WHEN $22 THEN $23 ELSE final_date END,
                date_granted = CASE WHEN $24 THEN $25 ELSE date_granted END,
                date_rejected = CASE WHEN $26 THEN $27 ELSE date_rejected END,
                date_withdrawn = CASE WHEN $28 THEN $29 ELSE date_withdrawn END,
                updated_by_id = $30,
                updated_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(input.visa_type_id)
    .bind(input.immigration_fee.as_deref())
    .bind(input.immigration_fee_currency.as_deref())
    .bind(input.service_fee.as_deref())
    .bind(input.service_fee_currency.as_deref())
    .bind(reference_set)
    .bind(reference)
    .bind(input.dependent)
    .bind(notes_set)
    .bind(notes)
    .bind(assignee_set)
    .bind(assignee)
    .bind(input.required_documents.clone())
    .bind(input.status.as_deref());
    for column in DATES {
        let (given, value) = input.date(column);
        query = query.bind(given).bind(value);
    }
    query.bind(user).execute(&mut *conn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_normalized_to_names_with_received_flags() {
        let mut errors = FieldErrors::default();
        let body = json!({"required_documents": ["Passport", {"name": " CV ", "received": true},
                                                 {"name": "Photo"}]});
        let docs = documents(body.as_object().unwrap_or(&Map::new()), &mut errors);
        assert!(errors.finish().is_ok());
        assert_eq!(
            docs,
            Some(json!([{"name": "Passport", "received": false},
                        {"name": "CV", "received": true},
                        {"name": "Photo", "received": false}]))
        );
        let mut errors = FieldErrors::default();
        let bad = json!({"required_documents": [1]});
        assert_eq!(
            documents(bad.as_object().unwrap_or(&Map::new()), &mut errors),
            None
        );
        assert!(errors.finish().is_err());
    }
}
