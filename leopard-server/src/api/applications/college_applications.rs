//! `/api/v1/college-applications/`: a client's applications to institutes, moving through the
//! stages of their application type, with stage counts and dashboard statistics (one query
//! each).
//!
//! Permissions are verb-level (`view_collegeapplication`, `add_…`, `change_…`, `delete_…`); an
//! application follows its client (`leopard_rbac` rule `Branch` on the client's branch), so an
//! application of an out-of-scope or soft-deleted client answers 404 like a missing one, and so
//! does creating one for such a client.
//!
//! - Create checks that the type is live and has stages (the application starts at position
//!   1), that the institute is live and the course, campus (`location_id`) and intake
//!   (`start_date_id`) are live rows of that institute, and that `super_agent_id` names a live
//!   SUPER_AGENT and `sub_agent_id` a live SUB_AGENT: a 400 on the field otherwise.
//! - PATCH is merge-patch: `null` clears `finish_date` and the agent and assignee links (`0`
//!   clears the links too, as old clients send). The type and client cannot change. A stage move
//!   (`stage_id`) must stay within the application's type; any stage may be chosen. After a
//!   change of institute, course, campus or intake, all four must still agree.
//! - DELETE is soft (204). PUT is not served (405).
//! - The list takes `ordering` (`client_name`, `application_type`, `stage`, `institute`,
//!   `course`, `intake_date`, `created_at`, `updated_at`, `id`; `-` descending), newest first
//!   by default.
//! - Writes record `CollegeApplication.CREATE`, `CollegeApplication.<field>.UPDATE` for
//!   `stage`, `assigned_to`, `institute` and `course` (the first two feed the timeline and the
//!   assignee's notice, all of them the audit log) and `CollegeApplication.DELETE`; each state
//!   carries `client_id`, `branch_id` and `stage_name` for the handlers (`handlers::college`).

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
use serde_json::{Map, Value};
use sqlx::postgres::PgArguments;
use sqlx::PgConnection;

use crate::api::crm::clients::{client_in_scope, ensure_assignable, owned_in_scope};
use crate::api::events;
use crate::api::input::{
    contains_pattern, date, decimal, int_param, list_params, object, param, path_id, required_id,
    rfc3339, text, user_name, FieldErrors, Patch,
};
use crate::api::{push_arg, push_predicate, require, route, Access, ApiRoute};
use crate::app::AppState;

/// The event entity name.
const ENTITY: &str = "CollegeApplication";

/// The fields whose changes are recorded as `CollegeApplication.<field>.UPDATE` events.
const TRACKED: &[&str] = &["stage", "assigned_to", "institute", "course"];

/// Where an application's scope lives in the list queries (its client's branch).
const SCOPE_COLUMNS: ScopeColumns<'static> = ScopeColumns {
    branch: "c.branch_id",
    owners: &[],
    region: "NULL",
};

/// The largest fee `numeric(12, 2)` holds.
const MAX_FEE: f64 = 9_999_999_999.99;

/// The dashboard's time filters.
pub const TIME_FILTERS: &[&str] = &["today", "this_week", "this_month", "all"];

/// The college application routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        route(
            "/api/v1/college-applications/",
            Access::Tenant,
            [(Method::GET, get(list)), (Method::POST, post(create))],
        ),
        route(
            "/api/v1/college-applications/stage-counts/",
            Access::Tenant,
            [(Method::GET, get(stage_counts))],
        ),
        route(
            "/api/v1/college-applications/dashboard-statistics/",
            Access::Tenant,
            [(Method::GET, get(dashboard_statistics))],
        ),
        route(
            "/api/v1/college-applications/{id}/",
            Access::Tenant,
            [
                (Method::GET, get(retrieve)),
                (Method::PATCH, patch(update)),
                (Method::DELETE, delete(destroy)),
            ],
        ),
    ]
}

/// A college application as the API answers it (the original's CollegeApplicationOutput).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct CollegeApplicationOutput {
    /// Id.
    pub id: i64,
    /// The application type's id.
    pub application_type: i64,
    /// Its title.
    pub application_type_title: String,
    /// The current stage's id.
    pub stage: i64,
    /// Its name.
    pub stage_name: String,
    /// Its position within the type.
    pub stage_position: i32,
    /// Whether it is the type's last stage.
    pub is_final_stage: bool,
    /// The client's id.
    pub client: i64,
    /// The client's "First Last".
    pub client_name: String,
    /// The institute's id.
    pub institute: i64,
    /// Its name.
    pub institute_name: String,
    /// The course's id.
    pub course: i64,
    /// Its name.
    pub course_name: String,
    /// The intake's id (the original called the intake the "start date").
    pub start_date: i64,
    /// The intake's date, `YYYY-MM-DD`.
    pub intake_date: String,
    /// The campus's id.
    pub location: i64,
    /// "State, Country name".
    pub location_display: String,
    /// Expected finish, `YYYY-MM-DD`, or null.
    pub finish_date: Option<String>,
    /// Total tuition fee, a decimal string.
    pub total_tuition_fee: String,
    /// The institute's student id, or blank.
    pub student_id: String,
    /// The super agent's id.
    pub super_agent: Option<i64>,
    /// Its name.
    pub super_agent_name: Option<String>,
    /// The sub agent's id.
    pub sub_agent: Option<i64>,
    /// Its name.
    pub sub_agent_name: Option<String>,
    /// The assignee's id.
    pub assigned_to: Option<i64>,
    /// The assignee's "First Last" (or username).
    pub assigned_to_name: Option<String>,
    /// Notes.
    pub notes: String,
    /// The creating user's id.
    pub created_by: Option<i64>,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// The last updating user's id.
    pub updated_by: Option<i64>,
    /// Last change, RFC 3339.
    pub updated_at: String,
}

/// One stage's count in `stage-counts/`.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StageCount {
    /// The stage's id.
    pub stage_id: i64,
    /// Its name.
    pub stage_name: String,
    /// Its position.
    pub position: i32,
    /// The applications in it.
    pub count: i64,
}

/// The answer of `stage-counts/`.
#[derive(Debug, Clone, Serialize)]
pub struct StageCounts {
    /// All applications counted.
    pub total: i64,
    /// The stages holding at least one of them.
    pub by_stage: Vec<StageCount>,
}

/// The output of one application. Only the client (for the scope) and the stage are joined;
/// every other name is a scalar subquery, which keeps planning cheap (a join of nine relations
/// costs more to plan than to run).
const APPLICATION_SELECT: &str = concat!(
    "SELECT ca.id, ca.application_type_id AS application_type,
            (SELECT t.title FROM application_types t WHERE t.id = ca.application_type_id)
                AS application_type_title,
            ca.stage_id AS stage, s.stage_name, s.position AS stage_position,
            s.position = (SELECT max(f.position) FROM stages f
                           WHERE f.application_type_id = ca.application_type_id)
                AS is_final_stage,
            ca.client_id AS client, btrim(c.first_name || ' ' || c.last_name) AS client_name,
            ca.institute_id AS institute,
            (SELECT i.name FROM institutes i WHERE i.id = ca.institute_id) AS institute_name,
            ca.course_id AS course,
            (SELECT co.name FROM courses co WHERE co.id = ca.course_id) AS course_name,
            ca.start_date_id AS start_date,
            (SELECT to_char(it.intake_date, 'YYYY-MM-DD') FROM institute_intakes it
              WHERE it.id = ca.start_date_id) AS intake_date,
            ca.location_id AS location,
            (SELECT concat_ws(', ', NULLIF(l.state, ''),
                              COALESCE((SELECT n.name FROM country_names n
                                         WHERE n.code = l.country), l.country))
               FROM institute_locations l WHERE l.id = ca.location_id) AS location_display,
            to_char(ca.finish_date, 'YYYY-MM-DD') AS finish_date,
            ca.total_tuition_fee::text AS total_tuition_fee, ca.student_id,
            ca.super_agent_id AS super_agent,
            (SELECT a.agent_name FROM agents a WHERE a.id = ca.super_agent_id) AS super_agent_name,
            ca.sub_agent_id AS sub_agent,
            (SELECT a.agent_name FROM agents a WHERE a.id = ca.sub_agent_id) AS sub_agent_name,
            ca.assigned_to_id AS assigned_to,
            (SELECT ",
    user_name!("au"),
    " FROM users au WHERE au.id = ca.assigned_to_id) AS assigned_to_name,
            ca.notes, ca.created_by_id AS created_by, ",
    rfc3339!("ca.created_at"),
    " AS created_at, ca.updated_by_id AS updated_by, ",
    rfc3339!("ca.updated_at"),
    " AS updated_at
       FROM college_applications ca
       JOIN clients c ON c.id = ca.client_id
       JOIN stages s ON s.id = ca.stage_id"
);

/// The body of a create or update, every field read and validated.
#[derive(Debug, Default)]
struct ApplicationInput {
    application_type_id: Option<i64>,
    client_id: Option<i64>,
    stage_id: Option<i64>,
    institute_id: Option<i64>,
    course_id: Option<i64>,
    start_date_id: Option<i64>,
    location_id: Option<i64>,
    total_tuition_fee: Option<String>,
    finish_date: Patch<NaiveDate>,
    student_id: Option<String>,
    notes: Option<String>,
    super_agent_id: Patch<i64>,
    sub_agent_id: Patch<i64>,
    assigned_to_id: Patch<i64>,
}

/// A nullable link `field`: `null`, `""` and `0` clear it (old clients send `0`).
fn link(body: &Map<String, Value>, field: &str, errors: &mut FieldErrors) -> Patch<i64> {
    match body.get(field) {
        Some(v) if v.as_i64() == Some(0) || v.as_str().map(str::trim) == Some("0") => Patch::Null,
        _ => crate::api::input::nullable_id(body, field, errors),
    }
}

/// A text field stored blank when `null`.
fn blank_text(
    body: &Map<String, Value>,
    field: &str,
    max: usize,
    errors: &mut FieldErrors,
) -> Option<String> {
    match text(body, field, max, errors) {
        Patch::Set(s) => Some(s),
        Patch::Null => Some(String::new()),
        Patch::Absent => None,
    }
}

/// Reads a create (`create = true`: the type, client, institute parts and fee required) or an
/// update body.
fn application_input(
    body: &Map<String, Value>,
    create: bool,
) -> Result<ApplicationInput, ApiError> {
    let mut errors = FieldErrors::default();
    let mut input = ApplicationInput {
        institute_id: required_id(body, "institute_id", create, &mut errors),
        course_id: required_id(body, "course_id", create, &mut errors),
        start_date_id: required_id(body, "start_date_id", create, &mut errors),
        location_id: required_id(body, "location_id", create, &mut errors),
        finish_date: date(body, "finish_date", &mut errors),
        student_id: blank_text(body, "student_id", 100, &mut errors),
        notes: blank_text(body, "notes", 100_000, &mut errors),
        super_agent_id: link(body, "super_agent_id", &mut errors),
        sub_agent_id: link(body, "sub_agent_id", &mut errors),
        assigned_to_id: link(body, "assigned_to_id", &mut errors),
        ..ApplicationInput::default()
    };
    match decimal(body, "total_tuition_fee", 2, (0.0, MAX_FEE), &mut errors) {
        Patch::Set(v) => input.total_tuition_fee = Some(v),
        Patch::Null => errors.add("total_tuition_fee", "This field may not be null."),
        Patch::Absent => {
            if create && !body.contains_key("total_tuition_fee") {
                errors.add("total_tuition_fee", "This field is required.");
            }
        }
    }
    if create {
        input.application_type_id = required_id(body, "application_type_id", true, &mut errors);
        input.client_id = required_id(body, "client_id", true, &mut errors);
        if body.contains_key("stage_id") {
            errors.add(
                "stage_id",
                "A new application always starts in the first stage of its type.",
            );
        }
    } else {
        input.stage_id = required_id(body, "stage_id", false, &mut errors);
        for field in ["application_type_id", "client_id"] {
            if body.contains_key(field) {
                errors.add(field, "This field cannot be changed.");
            }
        }
        if body.get("finish_date") == Some(&Value::Null) {
            input.finish_date = Patch::Null;
        }
    }
    errors.finish()?;
    Ok(input)
}

fn not_found() -> ApiError {
    ApiError::NotFound("Application not found".into())
}

fn client_not_found() -> ApiError {
    ApiError::NotFound("Client not found".into())
}

/// The event state of an application: its output plus `client_id` and `branch_id`.
fn event_state(out: &CollegeApplicationOutput, branch: Option<i64>) -> Result<Value, ApiError> {
    let mut state = events::state(out)?;
    if let Value::Object(map) = &mut state {
        map.insert("client_id".into(), Value::from(out.client));
        map.insert("branch_id".into(), branch.map_or(Value::Null, Value::from));
    }
    Ok(state)
}

// ----- handlers ----------------------------------------------------------------------------

/// `GET /api/v1/college-applications/`.
pub(crate) async fn list(
    auth: AuthUser,
    pagination: Pagination,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<CollegeApplicationOutput>>, ApiError> {
    require(
        &auth.principal,
        Action::View,
        ResourceKind::CollegeApplication,
    )?;
    let params = list_params(query.as_deref());
    let order = crate::api::ordering(&params, ORDERING, "ca.created_at DESC, ca.id DESC", "ca.id")?;
    let mut tx = auth.tenant.begin().await?;
    let (rows, count) = crate::api::fetch_page(
        &mut tx,
        APPLICATION_SELECT,
        "college_applications ca JOIN clients c ON c.id = ca.client_id",
        &order,
        || application_filters(&auth.principal, &params),
        &pagination,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(pagination.page(rows, count)?))
}

/// `GET /api/v1/college-applications/stage-counts/[?application_type_id=]`.
pub(crate) async fn stage_counts(
    auth: AuthUser,
    RawQuery(query): RawQuery,
) -> Result<Json<StageCounts>, ApiError> {
    require(
        &auth.principal,
        Action::View,
        ResourceKind::CollegeApplication,
    )?;
    let params = list_params(query.as_deref());
    let of_type = int_param(&params, "application_type_id")?;
    let mut tx = auth.tenant.begin().await?;
    let by_stage = count_stages(&mut tx, &auth.principal, of_type).await?;
    tx.commit().await?;
    Ok(Json(StageCounts {
        total: by_stage.iter().map(|s| s.count).sum(),
        by_stage,
    }))
}

/// `GET /api/v1/college-applications/dashboard-statistics/?time_filter=`.
pub(crate) async fn dashboard_statistics(
    auth: AuthUser,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    require(
        &auth.principal,
        Action::View,
        ResourceKind::CollegeApplication,
    )?;
    let params = list_params(query.as_deref());
    let time_filter = param(&params, "time_filter").unwrap_or("all");
    if !TIME_FILTERS.contains(&time_filter) {
        return Err(ApiError::field(
            "time_filter",
            format!("\"{time_filter}\" is not a valid choice (today, this_week, this_month, all)."),
        ));
    }
    let mut tx = auth.tenant.begin().await?;
    let stats = dashboard(&mut tx, &auth.principal, time_filter).await?;
    tx.commit().await?;
    Ok(Json(stats))
}

/// `POST /api/v1/college-applications/`.
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<CollegeApplicationOutput>), ApiError> {
    let principal = &auth.principal;
    require(principal, Action::Add, ResourceKind::CollegeApplication)?;
    let input = application_input(&object(body)?, true)?;
    let (Some(client), Some(of_type)) = (input.client_id, input.application_type_id) else {
        return Err(ApiError::field("client_id", "This field is required."));
    };
    let mut tx = auth.tenant.begin().await?;
    let branch = client_in_scope(
        &mut tx,
        principal,
        Action::Add,
        ResourceKind::CollegeApplication,
        client,
        true,
        client_not_found,
    )
    .await?;
    let stage = first_stage(&mut tx, of_type).await?;
    let parts = Parts {
        institute: input.institute_id.unwrap_or_default(),
        course: input.course_id.unwrap_or_default(),
        location: input.location_id.unwrap_or_default(),
        intake: input.start_date_id.unwrap_or_default(),
    };
    check_parts(&mut tx, &parts).await?;
    check_agents(&mut tx, &input).await?;
    if let Patch::Set(user) = input.assigned_to_id {
        ensure_assignable(&mut tx, principal, user).await?;
    }
    let id = insert_application(
        &mut tx,
        &input,
        client,
        of_type,
        stage,
        &parts,
        auth.user_id.get(),
    )
    .await?;
    let out = fetch_application(&mut tx, id)
        .await?
        .ok_or_else(not_found)?;
    let event = events::created(ENTITY, id, event_state(&out, branch)?, auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET /api/v1/college-applications/{id}/`.
pub(crate) async fn retrieve(
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<CollegeApplicationOutput>, ApiError> {
    require(
        &auth.principal,
        Action::View,
        ResourceKind::CollegeApplication,
    )?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    application_in_scope(&mut tx, &auth.principal, Action::View, id, false).await?;
    let out = fetch_application(&mut tx, id)
        .await?
        .ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(Json(out))
}

/// `PATCH /api/v1/college-applications/{id}/`.
pub(crate) async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<CollegeApplicationOutput>, ApiError> {
    let principal = &auth.principal;
    require(principal, Action::Change, ResourceKind::CollegeApplication)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let input = application_input(&object(body)?, false)?;
    let mut tx = auth.tenant.begin().await?;
    let branch = application_in_scope(&mut tx, principal, Action::Change, id, true).await?;
    let before = fetch_application(&mut tx, id)
        .await?
        .ok_or_else(not_found)?;
    if let Some(stage) = input.stage_id {
        check_stage_of_type(&mut tx, stage, before.application_type).await?;
    }
    if input.institute_id.is_some()
        || input.course_id.is_some()
        || input.location_id.is_some()
        || input.start_date_id.is_some()
    {
        let parts = Parts {
            institute: input.institute_id.unwrap_or(before.institute),
            course: input.course_id.unwrap_or(before.course),
            location: input.location_id.unwrap_or(before.location),
            intake: input.start_date_id.unwrap_or(before.start_date),
        };
        check_parts(&mut tx, &parts).await?;
    }
    check_agents(&mut tx, &input).await?;
    if let Patch::Set(user) = input.assigned_to_id {
        if before.assigned_to != Some(user) {
            ensure_assignable(&mut tx, principal, user).await?;
        }
    }
    update_application(&mut tx, id, &input, auth.user_id.get()).await?;
    let out = fetch_application(&mut tx, id)
        .await?
        .ok_or_else(not_found)?;
    let before_state = event_state(&before, branch)?;
    let after_state = event_state(&out, branch)?;
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

/// `DELETE /api/v1/college-applications/{id}/`: a soft delete, 204.
pub(crate) async fn destroy(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    require(
        &auth.principal,
        Action::Delete,
        ResourceKind::CollegeApplication,
    )?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    let branch = application_in_scope(&mut tx, &auth.principal, Action::Delete, id, true).await?;
    let before = fetch_application(&mut tx, id)
        .await?
        .ok_or_else(not_found)?;
    sqlx::query(
        "UPDATE college_applications SET deleted_at = now(), updated_by_id = $2,
                                         updated_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(auth.user_id.get())
    .execute(&mut *tx)
    .await?;
    let event = events::deleted(
        ENTITY,
        id,
        event_state(&before, branch)?,
        auth.user_id.get(),
    );
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- data --------------------------------------------------------------------------------

/// The fields the list may be ordered by (`ordering`, DRF style: `-` for descending).
const ORDERING: &[(&str, &str)] = &[
    ("id", "ca.id"),
    ("client_name", "client_name"),
    ("application_type", "application_type_title"),
    ("stage", "s.position"),
    ("institute", "institute_name"),
    ("course", "course_name"),
    ("intake_date", "intake_date"),
    ("created_at", "ca.created_at"),
    ("updated_at", "ca.updated_at"),
];

/// The `WHERE` clause of the list, its arguments and how many there are.
fn application_filters(
    principal: &Principal,
    params: &HashMap<String, String>,
) -> Result<(String, PgArguments, usize), ApiError> {
    let scope = filter(
        principal,
        Action::View,
        ResourceKind::CollegeApplication,
        &SCOPE_COLUMNS,
        1,
    );
    let mut args = PgArguments::default();
    let mut n = scope.params.len();
    push_predicate(&mut args, &scope)?;
    let mut clauses = vec![
        scope.sql,
        "c.deleted_at IS NULL".to_owned(),
        "ca.deleted_at IS NULL".to_owned(),
    ];
    for (key, column) in [
        ("client_id", "ca.client_id"),
        ("application_type_id", "ca.application_type_id"),
        ("stage_id", "ca.stage_id"),
        ("institute_id", "ca.institute_id"),
        ("assigned_to_id", "ca.assigned_to_id"),
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
    Ok((clauses.join(" AND "), args, n))
}

/// The live applications `principal` may see (of live clients; of type `of_type` when given),
/// counted per stage in one query; stages without any are left out.
async fn count_stages(
    conn: &mut PgConnection,
    principal: &Principal,
    of_type: Option<i64>,
) -> Result<Vec<StageCount>, ApiError> {
    let scope = filter(
        principal,
        Action::View,
        ResourceKind::CollegeApplication,
        &SCOPE_COLUMNS,
        2,
    );
    let mut args = PgArguments::default();
    push_arg(&mut args, of_type)?;
    push_predicate(&mut args, &scope)?;
    let sql = format!(
        "SELECT s.id AS stage_id, s.stage_name, s.position, count(*) AS count
           FROM college_applications ca
           JOIN clients c ON c.id = ca.client_id
           JOIN stages s ON s.id = ca.stage_id
          WHERE ca.deleted_at IS NULL AND c.deleted_at IS NULL
            AND ($1::bigint IS NULL OR ca.application_type_id = $1) AND {}
          GROUP BY s.id, s.stage_name, s.position, s.application_type_id
          ORDER BY s.application_type_id, s.position",
        scope.sql
    );
    Ok(sqlx::query_as_with(&sql, args)
        .fetch_all(&mut *conn)
        .await?)
}

/// The dashboard statistics of the live applications `principal` may see, in one query: the
/// total, those in their type's final stage (with an intake on or after the start of the
/// `time_filter` period, UTC, weeks from Monday; `all` keeps every intake) and their top ten
/// intake dates (newest first), the top five types and institutes, the ten newest
/// applications and the number without an assignee.
async fn dashboard(
    conn: &mut PgConnection,
    principal: &Principal,
    time_filter: &str,
) -> Result<Value, ApiError> {
    let scope = filter(
        principal,
        Action::View,
        ResourceKind::CollegeApplication,
        &SCOPE_COLUMNS,
        2,
    );
    let mut args = PgArguments::default();
    push_arg(&mut args, time_filter.to_owned())?;
    push_predicate(&mut args, &scope)?;
    let sql = format!(
        "WITH scoped AS MATERIALIZED (
             SELECT ca.id, ca.application_type_id, ca.institute_id, ca.course_id,
                    ca.assigned_to_id, ca.created_at, ca.stage_id, it.intake_date,
                    c.first_name, c.last_name,
                    s.position = (SELECT max(f.position) FROM stages f
                                   WHERE f.application_type_id = ca.application_type_id)
                        AS final
               FROM college_applications ca
               JOIN clients c ON c.id = ca.client_id
               JOIN stages s ON s.id = ca.stage_id
               JOIN institute_intakes it ON it.id = ca.start_date_id
              WHERE ca.deleted_at IS NULL AND c.deleted_at IS NULL AND {scope}),
         bound AS (
             SELECT CASE $1
                        WHEN 'today' THEN date_trunc('day', now() AT TIME ZONE 'UTC')::date
                        WHEN 'this_week' THEN date_trunc('week', now() AT TIME ZONE 'UTC')::date
                        WHEN 'this_month' THEN date_trunc('month', now() AT TIME ZONE 'UTC')::date
                    END AS since),
         final AS (
             SELECT s.* FROM scoped s CROSS JOIN bound b
              WHERE s.final AND (b.since IS NULL OR s.intake_date >= b.since)),
         intakes AS (
             SELECT to_char(f.intake_date, 'YYYY-MM-DD') AS start_date__intake_date,
                    count(*) AS count, f.intake_date
               FROM final f GROUP BY f.intake_date
              ORDER BY f.intake_date DESC LIMIT 10),
         by_type AS (
             SELECT t.id AS application_type__id, t.title AS application_type__title,
                    count(*) AS count
               FROM scoped s JOIN application_types t ON t.id = s.application_type_id
              GROUP BY t.id, t.title ORDER BY count(*) DESC, t.id LIMIT 5),
         by_institute AS (
             SELECT i.id AS institute__id, i.name AS institute__name, count(*) AS count
               FROM scoped s JOIN institutes i ON i.id = s.institute_id
              GROUP BY i.id, i.name ORDER BY count(*) DESC, i.id LIMIT 5),
         recent AS (
             SELECT s.id, s.first_name AS client__first_name, s.last_name AS client__last_name,
                    i.name AS institute__name, co.name AS course__name,
                    st.stage_name AS stage__stage_name,
                    to_char(s.intake_date, 'YYYY-MM-DD') AS start_date__intake_date,
                    {created} AS created_at, s.created_at AS at
               FROM scoped s
               JOIN institutes i ON i.id = s.institute_id
               JOIN courses co ON co.id = s.course_id
               JOIN stages st ON st.id = s.stage_id
              ORDER BY s.created_at DESC, s.id DESC LIMIT 10)
         SELECT json_build_object(
             'total_applications', (SELECT count(*) FROM scoped),
             'final_stage_count', (SELECT count(*) FROM final),
             'time_filter', $1::text,
             'intake_breakdown', (SELECT COALESCE(json_agg(json_build_object(
                                      'start_date__intake_date', x.start_date__intake_date,
                                      'count', x.count) ORDER BY x.intake_date DESC), '[]')
                                    FROM intakes x),
             'application_type_breakdown', (SELECT COALESCE(json_agg(x ORDER BY x.count DESC,
                                                 x.application_type__id), '[]')
                                              FROM by_type x),
             'institute_breakdown', (SELECT COALESCE(json_agg(x ORDER BY x.count DESC,
                                          x.institute__id), '[]')
                                       FROM by_institute x),
             'recent_applications', (SELECT COALESCE(json_agg(json_build_object(
                                         'id', r.id,
                                         'client__first_name', r.client__first_name,
                                         'client__last_name', r.client__last_name,
                                         'institute__name', r.institute__name,
                                         'course__name', r.course__name,
                                         'stage__stage_name', r.stage__stage_name,
                                         'start_date__intake_date', r.start_date__intake_date,
                                         'created_at', r.created_at)
                                         ORDER BY r.at DESC, r.id DESC), '[]')
                                       FROM recent r),
             'pending_assignments', (SELECT count(*) FROM scoped
                                      WHERE assigned_to_id IS NULL))",
        scope = scope.sql,
        created = rfc3339!("s.created_at"),
    );
    Ok(sqlx::query_scalar_with(&sql, args)
        .fetch_one(&mut *conn)
        .await?)
}

/// The branch of application `id`'s client when `principal` may `action` it; 404 when the
/// application does not exist or is soft-deleted, or its client is soft-deleted or out of scope.
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
        (action, ResourceKind::CollegeApplication),
        ("college_applications", true),
        id,
        lock,
        not_found,
    )
    .await
}

/// The first stage of live type `id`; a 400 on `application_type_id` when there is no such
/// type or it has no stages. The type's row stays key-share locked until the end of the
/// transaction, so a concurrent delete of the type either waits for this application (and
/// then refuses, the type being in use) or commits first (and this create sees the type gone);
/// stage writers, which take `FOR NO KEY UPDATE`, are not blocked.
async fn first_stage(conn: &mut PgConnection, id: i64) -> Result<i64, ApiError> {
    let row: Option<(Option<i64>,)> = sqlx::query_as(
        "SELECT (SELECT s.id FROM stages s WHERE s.application_type_id = t.id
                  ORDER BY s.position LIMIT 1)
           FROM application_types t WHERE t.id = $1 AND t.deleted_at IS NULL
            FOR KEY SHARE OF t",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        None => Err(ApiError::field(
            "application_type_id",
            format!("Invalid pk \"{id}\" - object does not exist."),
        )),
        Some((None,)) => Err(ApiError::field(
            "application_type_id",
            "This application type has no stages yet; add one first.",
        )),
        Some((Some(stage),)) => {
            // Keep the stage: a concurrent delete of it now waits for this application (and
            // then refuses, the stage being in use), or it won the race and the stage is gone.
            let kept: Option<i64> =
                sqlx::query_scalar("SELECT id FROM stages WHERE id = $1 FOR KEY SHARE")
                    .bind(stage)
                    .fetch_optional(&mut *conn)
                    .await?;
            kept.ok_or_else(|| {
                ApiError::field(
                    "application_type_id",
                    "The first stage of this type was just deleted; try again.",
                )
            })
        }
    }
}

/// A 400 on `stage_id` unless stage `stage` belongs to type `of_type`.
async fn check_stage_of_type(
    conn: &mut PgConnection,
    stage: i64,
    of_type: i64,
) -> Result<(), ApiError> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT application_type_id FROM stages WHERE id = $1 FOR KEY SHARE")
            .bind(stage)
            .fetch_optional(&mut *conn)
            .await?;
    match found {
        Some(t) if t == of_type => Ok(()),
        Some(_) => Err(ApiError::field(
            "stage_id",
            format!("Stage {stage} does not belong to this application's type."),
        )),
        None => Err(ApiError::field(
            "stage_id",
            format!("Invalid pk \"{stage}\" - object does not exist."),
        )),
    }
}

/// An institute with the course, campus and intake an application names.
#[derive(Debug, Clone, Copy)]
struct Parts {
    institute: i64,
    course: i64,
    location: i64,
    intake: i64,
}

/// What [`check_parts`] finds: whether the institute is live, and the owner and liveness of
/// the course, campus and intake (null when missing).
#[derive(Debug, sqlx::FromRow)]
struct PartsFound {
    institute_live: Option<bool>,
    course_owner: Option<i64>,
    course_live: Option<bool>,
    location_owner: Option<i64>,
    location_live: Option<bool>,
    intake_owner: Option<i64>,
    intake_live: Option<bool>,
}

/// A 400 unless the institute is live and the course, campus and intake are live rows of it,
/// in one query (the message names the first field at fault).
async fn check_parts(conn: &mut PgConnection, parts: &Parts) -> Result<(), ApiError> {
    let found: PartsFound = sqlx::query_as(
        "SELECT (SELECT deleted_at IS NULL FROM institutes WHERE id = $1) AS institute_live,
                (SELECT institute_id FROM courses WHERE id = $2) AS course_owner,
                (SELECT deleted_at IS NULL FROM courses WHERE id = $2) AS course_live,
                (SELECT institute_id FROM institute_locations WHERE id = $3) AS location_owner,
                (SELECT deleted_at IS NULL FROM institute_locations WHERE id = $3)
                    AS location_live,
                (SELECT institute_id FROM institute_intakes WHERE id = $4) AS intake_owner,
                (SELECT deleted_at IS NULL FROM institute_intakes WHERE id = $4) AS intake_live",
    )
    .bind(parts.institute)
    .bind(parts.course)
    .bind(parts.location)
    .bind(parts.intake)
    .fetch_one(&mut *conn)
    .await?;
    let institute = found.institute_live;
    let course = found.course_owner.zip(found.course_live);
    let location = found.location_owner.zip(found.location_live);
    let intake = found.intake_owner.zip(found.intake_live);
    if institute != Some(true) {
        return Err(ApiError::field(
            "institute_id",
            format!(
                "Invalid pk \"{}\" - object does not exist.",
                parts.institute
            ),
        ));
    }
    for (field, what, id, found) in [
        ("course_id", "course", parts.course, course),
        ("location_id", "campus", parts.location, location),
        ("start_date_id", "intake", parts.intake, intake),
    ] {
        match found {
            Some((owner, true)) if owner == parts.institute => {}
            Some((_, true)) => {
                return Err(ApiError::field(
                    field,
                    format!(
                        "The {what} {id} does not belong to institute {}.",
                        parts.institute
                    ),
                ))
            }
            _ => {
                return Err(ApiError::field(
                    field,
                    format!("Invalid pk \"{id}\" - object does not exist."),
                ))
            }
        }
    }
    Ok(())
}

/// A 400 unless the given super agent is a live SUPER_AGENT and the sub agent a live
/// SUB_AGENT.
async fn check_agents(conn: &mut PgConnection, input: &ApplicationInput) -> Result<(), ApiError> {
    for (field, link, kind, label) in [
        (
            "super_agent_id",
            input.super_agent_id,
            "SUPER_AGENT",
            "a super agent",
        ),
        (
            "sub_agent_id",
            input.sub_agent_id,
            "SUB_AGENT",
            "a sub agent",
        ),
    ] {
        let Patch::Set(id) = link else { continue };
        let found: Option<String> = sqlx::query_scalar(
            "SELECT agent_type FROM agents WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
        match found {
            Some(t) if t == kind => {}
            Some(_) => {
                return Err(ApiError::field(
                    field,
                    format!("Agent {id} is not {label}."),
                ))
            }
            None => {
                return Err(ApiError::field(
                    field,
                    format!("Invalid pk \"{id}\" - object does not exist."),
                ))
            }
        }
    }
    Ok(())
}

/// One live application by id.
async fn fetch_application(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<CollegeApplicationOutput>, ApiError> {
    Ok(sqlx::query_as(&format!(
        "{APPLICATION_SELECT} WHERE ca.id = $1 AND ca.deleted_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// The value of a link patch on a create.
fn set(p: Patch<i64>) -> Option<i64> {
    match p {
        Patch::Set(v) => Some(v),
        _ => None,
    }
}

/// Inserts an application of `client` in `stage` of `of_type` created by `user`; returns its id.
async fn insert_application(
    conn: &mut PgConnection,
    input: &ApplicationInput,
    client: i64,
    of_type: i64,
    stage: i64,
    parts: &Parts,
    user: i64,
) -> Result<i64, ApiError> {
    sqlx::query_scalar(
        "INSERT INTO college_applications (application_type_id, stage_id, client_id, institute_id,
                                           course_id, start_date_id, location_id, finish_date,
                                           total_tuition_fee, student_id, super_agent_id,
                                           sub_agent_id, assigned_to_id, notes, created_by_id,
                                           updated_by_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::numeric, $10, $11, $12, $13, $14, $15, $15)
         RETURNING id",
    )
    .bind(of_type)
    .bind(stage)
    .bind(client)
    .bind(parts.institute)
    .bind(parts.course)
    .bind(parts.intake)
    .bind(parts.location)
    .bind(match input.finish_date {
        Patch::Set(d) => Some(d),
        _ => None,
    })
    .bind(input.total_tuition_fee.clone().unwrap_or_default())
    .bind(input.student_id.clone().unwrap_or_default())
    .bind(set(input.super_agent_id))
    .bind(set(input.sub_agent_id))
    .bind(set(input.assigned_to_id))
    .bind(input.notes.clone().unwrap_or_default())
    .bind(user)
    .fetch_one(&mut *conn)
    .await
    .map_err(changed_meanwhile)
}

/// A foreign key the database refused (a stage, course, campus, intake or agent deleted by a
/// concurrent request after it was checked) as a 400; anything else passes through.
fn changed_meanwhile(err: sqlx::Error) -> ApiError {
    match err.as_database_error().and_then(|db| db.code()).as_deref() {
        Some("23503") => ApiError::BadRequest(
            "Something this application refers to was changed meanwhile; try again.".into(),
        ),
        _ => ApiError::from(err),
    }
}

/// `(changed, value)` of a nullable patch.
fn nullable<T: Copy>(p: Patch<T>) -> (bool, Option<T>) {
    match p {
        Patch::Absent => (false, None),
        Patch::Null => (true, None),
        Patch::Set(v) => (true, Some(v)),
    }
}

/// Applies the given fields of application `id`, recording `user` as the last updater.
async fn update_application(
    conn: &mut PgConnection,
    id: i64,
    input: &ApplicationInput,
    user: i64,
) -> Result<(), ApiError> {
    let (finish_set, finish) = nullable(input.finish_date);
    let (super_set, super_agent) = nullable(input.super_agent_id);
    let (sub_set, sub_agent) = nullable(input.sub_agent_id);
    let (assignee_set, assignee) = nullable(input.assigned_to_id);
    sqlx::query(
        "UPDATE college_applications
            SET stage_id = COALESCE($2, stage_id),
                institute_id = COALESCE($3, institute_id),
                course_id = COALESCE($4, course_id),
                start_date_id = COALESCE($5, start_date_id),
                location_id = COALESCE($6, location_id),
                total_tuition_fee = COALESCE($7::numeric, total_tuition_fee),
                student_id = COALESCE($8, student_id),
                notes = COALESCE($9, notes),
                finish_date = CASE WHEN $10 THEN $11 ELSE finish_date END,
                super_agent_id = CASE WHEN $12 THEN $13 ELSE super_agent_id END,
                sub_agent_id = CASE WHEN $14 THEN $15 ELSE sub_agent_id END,
                assigned_to_id = CASE WHEN $16 THEN $17 ELSE assigned_to_id END,
                updated_by_id = $18,
                updated_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(input.stage_id)
    .bind(input.institute_id)
    .bind(input.course_id)
    .bind(input.start_date_id)
    .bind(input.location_id)
    .bind(input.total_tuition_fee.as_deref())
    .bind(input.student_id.as_deref())
    .bind(input.notes.as_deref())
    .bind(finish_set)
    .bind(finish)
    .bind(super_set)
    .bind(super_agent)
    .bind(sub_set)
    .bind(sub_agent)
    .bind(assignee_set)
    .bind(assignee)
    .bind(user)
    .execute(&mut *conn)
    .await
    .map_err(changed_meanwhile)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn zero_null_and_blank_clear_a_link_and_an_id_sets_it() {
        let body = json!({"a": 0, "b": null, "c": "", "d": 7, "e": "0"});
        let body = body.as_object().cloned().unwrap_or_default();
        let mut errors = FieldErrors::default();
        assert_eq!(link(&body, "a", &mut errors), Patch::Null);
        assert_eq!(link(&body, "b", &mut errors), Patch::Null);
        assert_eq!(link(&body, "c", &mut errors), Patch::Null);
        assert_eq!(link(&body, "d", &mut errors), Patch::Set(7));
        assert_eq!(link(&body, "e", &mut errors), Patch::Null);
        assert_eq!(link(&body, "f", &mut errors), Patch::Absent);
        assert!(errors.finish().is_ok());
    }

    #[test]
    fn a_create_needs_its_fields_and_cannot_choose_its_stage() {
        let body = json!({"stage_id": 3});
        let body = body.as_object().cloned().unwrap_or_default();
        let err = application_input(&body, true)
            .err()
            .map(|e| format!("{e:?}"));
        let err = err.unwrap_or_default();
        for field in [
            "application_type_id",
            "client_id",
            "institute_id",
            "course_id",
            "start_date_id",
            "location_id",
            "total_tuition_fee",
            "stage_id",
        ] {
            assert!(err.contains(field), "{field} missing from {err}");
        }
    }
}
