//! `/api/v1/clients/`: clients, soft-deleted, scoped by their branch, with stage counts and the
//! read-only timeline written by event handlers.
//!
//! Permissions are verb-level (`view_client`, `add_client`, `change_client`, `delete_client`);
//! a client row is scoped by its branch (`leopard_rbac` rule `Branch`), so out of scope answers
//! 404 exactly like a missing client. Unlike the original, a client gets a branch: `branch_id` on
//! create, defaulting to the creator's only branch (required for anyone narrower than tenant
//! scope otherwise), and always inside the creator's scope (403). An assignee must exist (400)
//! and be a user the caller may see (403). A `visa_category_id` must name a visa category and an
//! `agent_id` a live agent (400); the output shows their names.
//!
//! The list filters by `search`, `email`, `first_name`, `last_name`, `stage`, `active`,
//! `visa_category`, `branch`, `assigned_to` and `id__in` (comma-separated ids: the names of the
//! clients a page of reminders links to, in one query), always within scope.
//!
//! PUT and PATCH are both merge-patch: an absent field is unchanged, `null` clears a nullable
//! field (`assigned_to_id`, `dob`, `visa_category_id`, `agent_id`; an optional text becomes
//! empty).
//!
//! Writes record `Client.CREATE`, `Client.<field>.UPDATE` per changed tracked field (the
//! assignee under `assigned_to`), `Client.DELETE` (soft delete) and, on restore,
//! `Client.UPDATE` with changed field `deleted_at`.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post, put};
use axum::Json;
use chrono::NaiveDate;
use http::Method;
use leopard_http::{ApiError, AuthUser, JsonBody, Page, Pagination};
use leopard_rbac::{check, filter, Action, Principal, Resource, ResourceKind, Scope, ScopeColumns};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::postgres::PgArguments;
use sqlx::PgConnection;

use crate::api::events;
use crate::api::identity::users::{may_touch, user_branch_ids};
use crate::api::input::{
    boolean, choice, contains_pattern, country, date, int_param, list_params, nullable_id, object,
    param, parse_int, path_id, required_text, rfc3339, text, user_name, FieldErrors, Patch,
};
use crate::api::{push_arg, push_predicate, require, route, truthy, Access, ApiRoute};
use crate::app::AppState;

/// The event entity name.
const ENTITY: &str = "Client";

/// The fields whose changes are recorded as `Client.<field>.UPDATE` events.
const TRACKED: &[&str] = &[
    "stage",
    "assigned_to",
    "branch_id",
    "active",
    "first_name",
    "last_name",
    "email",
    "phone_number",
];

/// The client stages.
const STAGES: &[&str] = &["LEAD", "FOLLOW_UP", "CLIENT", "CLOSE"];

/// The genders.
const GENDERS: &[&str] = &["MALE", "FEMALE", "OTHER"];

/// Where a client's scope lives in the list queries.
const SCOPE_COLUMNS: ScopeColumns<'static> = ScopeColumns {
    branch: "c.branch_id",
    owners: &[],
    region: "NULL",
};

/// The client routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        route(
            "/api/v1/clients/",
            Access::Tenant,
            [(Method::GET, get(list)), (Method::POST, post(create))],
        )
        .countries(&["country"]),
        route(
            "/api/v1/clients/stage-counts/",
            Access::Tenant,
            [(Method::GET, get(stage_counts))],
        ),
        route(
            "/api/v1/clients/{id}/",
            Access::Tenant,
            [
                (Method::GET, get(retrieve)),
                (Method::PUT, put(update)),
                (Method::PATCH, patch(update)),
                (Method::DELETE, delete(destroy)),
            ],
        )
        .countries(&["country"]),
        route(
            "/api/v1/clients/{id}/restore/",
            Access::Tenant,
            [(Method::POST, post(restore))],
        ),
        route(
            "/api/v1/clients/{id}/timeline/",
            Access::Tenant,
            [(Method::GET, get(timeline))],
        )
        .paginated(true),
    ]
}

/// A client as the API answers it (the original's ClientOutput).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ClientOutput {
    /// Id.
    pub id: i64,
    /// First name.
    pub first_name: String,
    /// Middle name.
    pub middle_name: String,
    /// Last name.
    pub last_name: String,
    /// `MALE`, `FEMALE`, `OTHER` (or empty).
    pub gender: String,
    /// Date of birth, `YYYY-MM-DD`.
    pub dob: Option<String>,
    /// Phone number.
    pub phone_number: String,
    /// E-mail.
    pub email: String,
    /// Who referred the client.
    pub referred_by: String,
    /// Street.
    pub street: String,
    /// Suburb.
    pub suburb: String,
    /// State.
    pub state: String,
    /// Postcode.
    pub postcode: String,
    /// Two-letter country code.
    pub country: String,
    /// The visa category's id.
    pub visa_category: Option<i64>,
    /// The visa category's name.
    pub visa_category_name: Option<String>,
    /// The referring agent's id.
    pub agent: Option<i64>,
    /// The referring agent's name (also when the agent was soft-deleted later).
    pub agent_name: Option<String>,
    /// Free text.
    pub description: String,
    /// The assignee's id.
    pub assigned_to: Option<i64>,
    /// The assignee's "First Last" (or username).
    pub assigned_to_name: Option<String>,
    /// `LEAD`, `FOLLOW_UP`, `CLIENT` or `CLOSE`.
    pub stage: String,
    /// Active.
    pub active: bool,
    /// The branch's id.
    pub branch: Option<i64>,
    /// The branch's name.
    pub branch_name: Option<String>,
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
    /// When it was soft-deleted, RFC 3339 (not on the wire, as in the original: lists show
    /// deleted clients only with `include_deleted`; the web interface offers their restore).
    #[serde(skip)]
    pub deleted_at: Option<String>,
}

/// One timeline entry (the original's ClientActivityOutput).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ClientActivityOutput {
    /// Id.
    pub id: i64,
    /// The client's id.
    pub client: i64,
    /// The activity code (`NOTE_ADDED`, `STAGE_CHANGED`, …).
    pub activity_type: String,
    /// Its display form ("Note Added", …).
    pub activity_type_display: String,
    /// Who did it.
    pub performed_by: Option<i64>,
    /// Their "First Last" (or username).
    pub performed_by_name: Option<String>,
    /// What happened.
    pub description: String,
    /// Details.
    pub metadata: Value,
    /// When, RFC 3339.
    pub created_at: String,
}

/// The live client counts per stage.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sqlx(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct StageCounts {
    /// Leads.
    pub lead: i64,
    /// Follow-ups.
    pub follow_up: i64,
    /// Clients.
    pub client: i64,
    /// Closed.
    pub close: i64,
    /// The sum of the four.
    pub total: i64,
}

const CLIENT_SELECT: &str = concat!(
    // The names are scalar subqueries, not joins: PostgreSQL planned the five-join form in
    // 4–8 ms (for a 0.2 ms page), again whenever a connection changed tenant; this form plans
    // in 0.1 ms (docs/performance.md).
    "SELECT c.id, c.first_name, c.middle_name, c.last_name, c.gender,
            to_char(c.dob, 'YYYY-MM-DD') AS dob, c.phone_number, c.email, c.referred_by,
            c.street, c.suburb, c.state, c.postcode, c.country,
            c.visa_category_id AS visa_category,
            (SELECT vc.name FROM visa_categories vc WHERE vc.id = c.visa_category_id)
                AS visa_category_name,
            c.agent_id AS agent,
            (SELECT ag.agent_name FROM agents ag WHERE ag.id = c.agent_id) AS agent_name,
            c.description,
            c.assigned_to_id AS assigned_to, (SELECT ",
    user_name!("au"),
    " FROM users au WHERE au.id = c.assigned_to_id) AS assigned_to_name, c.stage, c.active,
            c.branch_id AS branch,
            (SELECT b.name FROM branches b WHERE b.id = c.branch_id) AS branch_name,
            c.created_by_id AS created_by, (SELECT ",
    user_name!("cu"),
    " FROM users cu WHERE cu.id = c.created_by_id) AS created_by_name, ",
    rfc3339!("c.created_at"),
    " AS created_at, c.updated_by_id AS updated_by, ",
    rfc3339!("c.updated_at"),
    " AS updated_at, ",
    rfc3339!("c.deleted_at"),
    " AS deleted_at
       FROM clients c"
);

/// The body of a create or update, every field read and validated.
#[derive(Debug)]
struct ClientInput {
    first_name: Option<String>,
    gender: Option<String>,
    country: Option<String>,
    stage: Option<String>,
    active: Option<bool>,
    /// Optional texts: `(column, value)`; `null` reads as empty.
    texts: Vec<(&'static str, String)>,
    dob: Patch<NaiveDate>,
    visa_category_id: Patch<i64>,
    agent_id: Patch<i64>,
    assigned_to_id: Patch<i64>,
    branch_id: Patch<i64>,
}

/// The optional text fields with their maximum lengths.
const OPTIONAL_TEXTS: &[(&str, usize)] = &[
    ("middle_name", 100),
    ("last_name", 100),
    ("phone_number", 15),
    ("email", 254),
    ("street", 100),
    ("suburb", 100),
    ("state", 100),
    ("postcode", 20),
    ("referred_by", 100),
    ("description", 100_000),
];

/// Whether `email` looks like an e-mail address.
pub(crate) fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(char::is_whitespace)
}

/// Reads a create (`create = true`: `first_name`, `gender`, `country` required) or update body.
fn client_input(body: &Map<String, Value>, create: bool) -> Result<ClientInput, ApiError> {
    let mut errors = FieldErrors::default();
    let mut input = ClientInput {
        first_name: required_text(body, "first_name", 100, create, &mut errors),
        gender: choice(body, "gender", GENDERS, create, &mut errors),
        stage: choice(body, "stage", STAGES, false, &mut errors),
        active: boolean(body, "active", &mut errors),
        visa_category_id: nullable_id(body, "visa_category_id", &mut errors),
        agent_id: nullable_id(body, "agent_id", &mut errors),
        assigned_to_id: nullable_id(body, "assigned_to_id", &mut errors),
        branch_id: nullable_id(body, "branch_id", &mut errors),
        country: None,
        texts: Vec::new(),
        dob: Patch::Absent,
    };
    input.country = country(body, "country", create, &mut errors);
    for (field, max) in OPTIONAL_TEXTS {
        match text(body, field, *max, &mut errors) {
            Patch::Set(s) => input.texts.push((field, s)),
            Patch::Null => input.texts.push((field, String::new())),
            Patch::Absent => {}
        }
    }
    if let Some((_, email)) = input.texts.iter().find(|(f, _)| *f == "email") {
        if !email.is_empty() && !plausible_email(email) {
            errors.add("email", "Enter a valid email address.");
        }
    }
    input.dob = date(body, "dob", &mut errors);
    errors.finish()?;
    Ok(input)
}

impl ClientInput {
    /// The value of optional text `column`, if given.
    fn text(&self, column: &str) -> Option<&str> {
        self.texts
            .iter()
            .find(|(f, _)| *f == column)
            .map(|(_, v)| v.as_str())
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound("Client not found".into())
}

/// 404 unless `principal` may `action` a client of `branch`.
fn in_scope(principal: &Principal, action: Action, branch: Option<i64>) -> Result<(), ApiError> {
    if check(
        principal,
        action,
        &Resource::new(ResourceKind::Client, branch),
    )
    .allowed()
    {
        Ok(())
    } else {
        Err(not_found())
    }
}

/// The event state of a client: its output plus `branch_id`.
fn event_state(out: &ClientOutput, deleted_at: Option<Option<String>>) -> Result<Value, ApiError> {
    let mut state = events::state(out)?;
    if let Value::Object(map) = &mut state {
        map.insert(
            "branch_id".into(),
            out.branch.map_or(Value::Null, Value::from),
        );
        if let Some(deleted_at) = deleted_at {
            map.insert(
                "deleted_at".into(),
                deleted_at.map_or(Value::Null, Value::String),
            );
        }
    }
    Ok(state)
}

// ----- handlers ----------------------------------------------------------------------------

/// `GET /api/v1/clients/`.
pub(crate) async fn list(
    auth: AuthUser,
    pagination: Pagination,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<ClientOutput>>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::Client)?;
    let params = list_params(query.as_deref());
    let mut tx = auth.tenant.begin().await?;
    let (rows, count) = list_clients(&mut tx, &auth.principal, &params, &pagination).await?;
    tx.commit().await?;
    Ok(Json(pagination.page(rows, count)?))
}

/// `GET /api/v1/clients/stage-counts/`.
pub(crate) async fn stage_counts(auth: AuthUser) -> Result<Json<StageCounts>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::Client)?;
    let mut tx = auth.tenant.begin().await?;
    let counts = count_stages(&mut tx, &auth.principal).await?;
    tx.commit().await?;
    Ok(Json(counts))
}

/// `POST /api/v1/clients/`.
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<ClientOutput>), ApiError> {
    require(&auth.principal, Action::Add, ResourceKind::Client)?;
    let input = client_input(&object(body)?, true)?;
    let principal = &auth.principal;
    let branch = match input.branch_id {
        Patch::Set(b) => Some(b),
        Patch::Null | Patch::Absent => {
            let own = principal.branch_ids();
            if own.len() == 1 {
                own.iter().next().copied()
            } else if principal.scope() == Some(Scope::Tenant) {
                None
            } else {
                return Err(ApiError::field("branch_id", "This field is required."));
            }
        }
    };
    let mut tx = auth.tenant.begin().await?;
    if let Some(b) = branch {
        ensure_branch(&mut tx, b).await?;
    }
    if !check(
        principal,
        Action::Add,
        &Resource::new(ResourceKind::Client, branch),
    )
    .allowed()
    {
        return Err(ApiError::permission_denied());
    }
    if let Patch::Set(user) = input.assigned_to_id {
        ensure_assignable(&mut tx, principal, user).await?;
    }
    ensure_links(&mut tx, &input).await?;
    let id = insert_client(&mut tx, &input, branch, auth.user_id.get()).await?;
    let out = fetch_client(&mut tx, id).await?.ok_or_else(not_found)?;
    let event = events::created(ENTITY, id, event_state(&out, None)?, auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET /api/v1/clients/{id}/`.
pub(crate) async fn retrieve(
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<ClientOutput>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::Client)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    let out = fetch_live_client(&mut tx, id).await?;
    tx.commit().await?;
    // One read: the scope is decided on the row's branch, and an out-of-scope client is as
    // unknown as a missing one.
    let out = out.ok_or_else(not_found)?;
    in_scope(&auth.principal, Action::View, out.branch)?;
    Ok(Json(out))
}

/// `PUT`/`PATCH /api/v1/clients/{id}/`.
pub(crate) async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<ClientOutput>, ApiError> {
    let principal = &auth.principal;
    require(principal, Action::Change, ResourceKind::Client)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let input = client_input(&object(body)?, false)?;
    let mut tx = auth.tenant.begin().await?;
    let branch = client_branch(&mut tx, id, false, true)
        .await?
        .ok_or_else(not_found)?;
    in_scope(principal, Action::Change, branch)?;
    let new_branch = match input.branch_id {
        Patch::Set(b) if Some(b) != branch => {
            ensure_branch(&mut tx, b).await?;
            if !check(
                principal,
                Action::Change,
                &Resource::new(ResourceKind::Client, Some(b)),
            )
            .allowed()
            {
                return Err(ApiError::permission_denied());
            }
            Some(b)
        }
        Patch::Null => {
            return Err(ApiError::field("branch_id", "This field may not be null."));
        }
        _ => None,
    };
    let before = fetch_client(&mut tx, id).await?.ok_or_else(not_found)?;
    if let Patch::Set(user) = input.assigned_to_id {
        if before.assigned_to != Some(user) {
            ensure_assignable(&mut tx, principal, user).await?;
        }
    }
    ensure_links(&mut tx, &input).await?;
    update_client(&mut tx, id, &input, new_branch, auth.user_id.get()).await?;
    let out = fetch_client(&mut tx, id).await?.ok_or_else(not_found)?;
    let before_state = event_state(&before, None)?;
    let after_state = event_state(&out, None)?;
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

/// `DELETE /api/v1/clients/{id}/`: soft delete.
pub(crate) async fn destroy(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    require(&auth.principal, Action::Delete, ResourceKind::Client)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    let branch = client_branch(&mut tx, id, false, true)
        .await?
        .ok_or_else(not_found)?;
    in_scope(&auth.principal, Action::Delete, branch)?;
    let before = fetch_client(&mut tx, id).await?.ok_or_else(not_found)?;
    set_deleted(&mut tx, id, true, auth.user_id.get()).await?;
    let event = events::deleted(ENTITY, id, event_state(&before, None)?, auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/clients/{id}/restore/`: undoes a soft delete.
pub(crate) async fn restore(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<ClientOutput>, ApiError> {
    require(&auth.principal, Action::Change, ResourceKind::Client)?;
    let gone = || ApiError::NotFound("Client not found or not soft-deleted".into());
    let id = path_id(&raw).ok_or_else(gone)?;
    let mut tx = auth.tenant.begin().await?;
    let branch = client_branch(&mut tx, id, true, true)
        .await?
        .ok_or_else(gone)?;
    if !check(
        &auth.principal,
        Action::Change,
        &Resource::new(ResourceKind::Client, branch),
    )
    .allowed()
    {
        return Err(gone());
    }
    let deleted_at = deleted_at(&mut tx, id).await?;
    let before = fetch_client(&mut tx, id).await?.ok_or_else(gone)?;
    set_deleted(&mut tx, id, false, auth.user_id.get()).await?;
    let out = fetch_client(&mut tx, id).await?.ok_or_else(gone)?;
    let event = events::updated_fields(
        ENTITY,
        id,
        event_state(&before, Some(deleted_at))?,
        event_state(&out, Some(None))?,
        &["deleted_at"],
        auth.user_id.get(),
    );
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok(Json(out))
}

/// `GET /api/v1/clients/{id}/timeline/`.
pub(crate) async fn timeline(
    auth: AuthUser,
    pagination: Pagination,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<ClientActivityOutput>>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::Client)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let params = list_params(query.as_deref());
    let mut tx = auth.tenant.begin().await?;
    client_in_scope(
        &mut tx,
        &auth.principal,
        Action::View,
        ResourceKind::Client,
        id,
        false,
        not_found,
    )
    .await?;
    let (rows, count) =
        list_activities(&mut tx, id, param(&params, "activity_type"), &pagination).await?;
    tx.commit().await?;
    Ok(Json(pagination.page(rows, count)?))
}

// ----- data --------------------------------------------------------------------------------

/// The `WHERE` clause of the list, its arguments and how many there are.
fn client_filters(
    principal: &Principal,
    params: &HashMap<String, String>,
) -> Result<(String, PgArguments, usize), ApiError> {
    let (mut clauses, mut args, mut n) = crate::api::scoped_live_filters(
        principal,
        ResourceKind::Client,
        &SCOPE_COLUMNS,
        "c",
        params,
    )?;
    if let Some(raw) = param(params, "id__in") {
        let ids = raw
            .split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(|id| parse_int("id__in", id))
            .collect::<Result<Vec<i64>, _>>()?;
        n += 1;
        push_arg(&mut args, ids)?;
        clauses.push(format!("c.id = ANY(${n})"));
    }
    if let Some(search) = param(params, "search") {
        n += 1;
        push_arg(&mut args, contains_pattern(search))?;
        clauses.push(format!(
            "(c.first_name ILIKE ${n} OR c.last_name ILIKE ${n} OR c.email ILIKE ${n}
              OR c.phone_number ILIKE ${n})"
        ));
    }
    for (key, column) in [
        ("email", "c.email"),
        ("first_name", "c.first_name"),
        ("last_name", "c.last_name"),
    ] {
        if let Some(value) = param(params, key) {
            n += 1;
            push_arg(&mut args, contains_pattern(value))?;
            clauses.push(format!("{column} ILIKE ${n}"));
        }
    }
    if let Some(stage) = param(params, "stage") {
        n += 1;
        push_arg(&mut args, stage.to_owned())?;
        clauses.push(format!("c.stage = ${n}"));
    }
    if let Some(active) = param(params, "active") {
        n += 1;
        push_arg(&mut args, truthy(active))?;
        clauses.push(format!("c.active = ${n}"));
    }
    for (key, column) in [
        ("visa_category", "c.visa_category_id"),
        ("branch", "c.branch_id"),
        ("assigned_to", "c.assigned_to_id"),
    ] {
        if let Some(id) = int_param(params, key)? {
            n += 1;
            push_arg(&mut args, id)?;
            clauses.push(format!("{column} = ${n}"));
        }
    }
    Ok((clauses.join(" AND "), args, n))
}

/// The fields a client list may be ordered by (`ordering`).
const ORDERING: &[(&str, &str)] = &[
    ("id", "c.id"),
    ("first_name", "c.first_name"),
    ("last_name", "c.last_name"),
    ("email", "c.email"),
    ("phone_number", "c.phone_number"),
    ("stage", "c.stage"),
    ("country", "c.country"),
    (
        "branch",
        "(SELECT b.name FROM branches b WHERE b.id = c.branch_id)",
    ),
    (
        "assigned_to",
        "(SELECT au.username FROM users au WHERE au.id = c.assigned_to_id)",
    ),
    ("created_at", "c.created_at"),
    ("updated_at", "c.updated_at"),
];

/// One page of the clients `principal` may see, newest first unless `ordering` says otherwise
/// (whitelisted fields, see [`ORDERING`]), and the total count.
async fn list_clients(
    conn: &mut PgConnection,
    principal: &Principal,
    params: &HashMap<String, String>,
    pagination: &Pagination,
) -> Result<(Vec<ClientOutput>, i64), ApiError> {
    let order = crate::api::ordering(params, ORDERING, "c.created_at DESC, c.id DESC", "c.id")?;
    crate::api::fetch_page(
        conn,
        CLIENT_SELECT,
        "clients c",
        &order,
        || client_filters(principal, params),
        pagination,
    )
    .await
}

/// The live clients `principal` may see, counted per stage in one query.
async fn count_stages(
    conn: &mut PgConnection,
    principal: &Principal,
) -> Result<StageCounts, ApiError> {
    let scope = filter(
        principal,
        Action::View,
        ResourceKind::Client,
        &SCOPE_COLUMNS,
        1,
    );
    let mut args = PgArguments::default();
    push_predicate(&mut args, &scope)?;
    let sql = format!(
        "SELECT count(*) FILTER (WHERE c.stage = 'LEAD') AS \"LEAD\",
                count(*) FILTER (WHERE c.stage = 'FOLLOW_UP') AS \"FOLLOW_UP\",
                count(*) FILTER (WHERE c.stage = 'CLIENT') AS \"CLIENT\",
                count(*) FILTER (WHERE c.stage = 'CLOSE') AS \"CLOSE\",
                count(*) FILTER (WHERE c.stage IN ('LEAD', 'FOLLOW_UP', 'CLIENT', 'CLOSE'))
                    AS \"TOTAL\"
           FROM clients c
          WHERE c.deleted_at IS NULL AND {}",
        scope.sql
    );
    Ok(sqlx::query_as_with(&sql, args)
        .fetch_one(&mut *conn)
        .await?)
}

/// One client by id (live or soft-deleted).
async fn fetch_client(conn: &mut PgConnection, id: i64) -> Result<Option<ClientOutput>, ApiError> {
    fetch_client_where(conn, id, "").await
}

/// Live (not soft-deleted) client `id` as the API shows it.
async fn fetch_live_client(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<ClientOutput>, ApiError> {
    fetch_client_where(conn, id, " AND c.deleted_at IS NULL").await
}

/// Client `id` when it also matches `and` (a constant `AND …` clause, or empty).
async fn fetch_client_where(
    conn: &mut PgConnection,
    id: i64,
    and: &'static str,
) -> Result<Option<ClientOutput>, ApiError> {
    Ok(
        sqlx::query_as(&format!("{CLIENT_SELECT} WHERE c.id = $1{and}"))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// The branch of a live (`deleted = false`) or soft-deleted (`deleted = true`) client, locked
/// with `lock`; `None` when there is no such client.
async fn client_branch(
    conn: &mut PgConnection,
    id: i64,
    deleted: bool,
    lock: bool,
) -> Result<Option<Option<i64>>, ApiError> {
    let sql = format!(
        "SELECT branch_id FROM clients WHERE id = $1 AND (deleted_at IS NOT NULL) = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    Ok(sqlx::query_scalar(&sql)
        .bind(id)
        .bind(deleted)
        .fetch_optional(&mut *conn)
        .await?)
}

/// The branch of live client `id` when `principal` may `action` records of `kind` belonging
/// to it (a client-owned resource such as a note, passport or reminder follows its client's
/// branch); `Err(not_found)` when the client does not exist, is soft-deleted or is out of
/// scope. `lock` takes a row lock on the client (for writes that must not race a move).
pub(crate) async fn client_in_scope(
    conn: &mut PgConnection,
    principal: &Principal,
    action: Action,
    kind: ResourceKind,
    id: i64,
    lock: bool,
    not_found: impl Fn() -> ApiError,
) -> Result<Option<i64>, ApiError> {
    let branch = client_branch(conn, id, false, lock)
        .await?
        .ok_or_else(&not_found)?;
    if check(principal, action, &Resource::new(kind, branch)).allowed() {
        Ok(branch)
    } else {
        Err(not_found())
    }
}

/// When client `id` was deleted (RFC 3339), if it was.
async fn deleted_at(conn: &mut PgConnection, id: i64) -> Result<Option<String>, ApiError> {
    Ok(sqlx::query_scalar(concat!(
        "SELECT ",
        rfc3339!("deleted_at"),
        " FROM clients WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .flatten())
}

/// A 400 on `branch_id` unless live branch `id` exists.
async fn ensure_branch(conn: &mut PgConnection, id: i64) -> Result<(), ApiError> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM branches WHERE id = $1 AND deleted_at IS NULL)",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    if exists {
        Ok(())
    } else {
        Err(ApiError::field(
            "branch_id",
            format!("Invalid pk \"{id}\" - object does not exist."),
        ))
    }
}

/// A 400 on `visa_category_id` / `agent_id` when the body sets an unknown category or a
/// missing (or soft-deleted) agent.
async fn ensure_links(conn: &mut PgConnection, input: &ClientInput) -> Result<(), ApiError> {
    let category = match input.visa_category_id {
        Patch::Set(id) => Some(id),
        _ => None,
    };
    let agent = match input.agent_id {
        Patch::Set(id) => Some(id),
        _ => None,
    };
    if category.is_none() && agent.is_none() {
        return Ok(());
    }
    let (category_ok, agent_ok): (bool, bool) = sqlx::query_as(
        "SELECT $1::bigint IS NULL OR EXISTS (SELECT 1 FROM visa_categories WHERE id = $1),
                $2::bigint IS NULL
                OR EXISTS (SELECT 1 FROM agents WHERE id = $2 AND deleted_at IS NULL)",
    )
    .bind(category)
    .bind(agent)
    .fetch_one(&mut *conn)
    .await?;
    let mut errors = FieldErrors::default();
    if let (false, Some(id)) = (category_ok, category) {
        errors.add(
            "visa_category_id",
            format!("Invalid pk \"{id}\" - object does not exist."),
        );
    }
    if let (false, Some(id)) = (agent_ok, agent) {
        errors.add(
            "agent_id",
            format!("Invalid pk \"{id}\" - object does not exist."),
        );
    }
    errors.finish()
}

/// The branch of the client owning row `id` of `table` (a client-owned table with a
/// `client_id` column, a constant of the caller) when `principal` may `action` it as a `kind`;
/// `Err(not_found)` when there is no such row (or, with `live_only`, it is soft-deleted), or
/// its client is soft-deleted or out of scope. `lock` locks the client, then the row.
pub(crate) async fn owned_in_scope(
    conn: &mut PgConnection,
    principal: &Principal,
    (action, kind): (Action, ResourceKind),
    (table, live_only): (&str, bool),
    id: i64,
    lock: bool,
    not_found: impl Fn() -> ApiError,
) -> Result<Option<i64>, ApiError> {
    let live = if live_only {
        " AND deleted_at IS NULL"
    } else {
        ""
    };
    let client: i64 = sqlx::query_scalar(&format!(
        "SELECT client_id FROM {table} WHERE id = $1{live}"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(&not_found)?;
    let branch = client_in_scope(conn, principal, action, kind, client, lock, &not_found).await?;
    if lock {
        sqlx::query(&format!("SELECT 1 FROM {table} WHERE id = $1 FOR UPDATE"))
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(branch)
}

/// A 400 on `assigned_to_id` unless user `id` exists; a 403 unless `principal` may see them.
pub(crate) async fn ensure_assignable(
    conn: &mut PgConnection,
    principal: &Principal,
    id: i64,
) -> Result<(), ApiError> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Err(ApiError::field(
            "assigned_to_id",
            format!("Assigned user with id={id} does not exist"),
        ));
    }
    let branches = user_branch_ids(conn, id).await?;
    if may_touch(principal, Action::View, id, &branches) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "You cannot assign a client to a user outside your scope.".into(),
        ))
    }
}

/// Inserts a client created by `user` in `branch`; returns its id.
async fn insert_client(
    conn: &mut PgConnection,
    input: &ClientInput,
    branch: Option<i64>,
    user: i64,
) -> Result<i64, ApiError> {
    let t = |c: &str| input.text(c).unwrap_or_default().to_owned();
    let set = |p: &Patch<i64>| match p {
        Patch::Set(v) => Some(*v),
        _ => None,
    };
    Ok(sqlx::query_scalar(
        "INSERT INTO clients (first_name, middle_name, last_name, gender, dob, phone_number, email,
                              street, suburb, state, postcode, country, branch_id,
                              visa_category_id, agent_id, assigned_to_id, stage, active,
                              description, referred_by, created_by_id, updated_by_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                 $19, $20, $21, $21)
         RETURNING id",
    )
    .bind(input.first_name.clone().unwrap_or_default())
    .bind(t("middle_name"))
    .bind(t("last_name"))
    .bind(input.gender.clone().unwrap_or_default())
    .bind(match input.dob {
        Patch::Set(d) => Some(d),
        _ => None,
    })
    .bind(t("phone_number"))
    .bind(t("email"))
    .bind(t("street"))
    .bind(t("suburb"))
    .bind(t("state"))
    .bind(t("postcode"))
    .bind(input.country.clone().unwrap_or_default())
    .bind(branch)
    .bind(set(&input.visa_category_id))
    .bind(set(&input.agent_id))
    .bind(set(&input.assigned_to_id))
    .bind(input.stage.clone().unwrap_or_else(|| "LEAD".into()))
    .bind(input.active.unwrap_or(false))
    .bind(t("description"))
    .bind(t("referred_by"))
    .bind(user)
    .fetch_one(&mut *conn)
    .await?)
}

/// `(changed, value)` of a nullable patch: `changed = false` leaves the column alone.
fn nullable<T: Copy>(p: &Patch<T>) -> (bool, Option<T>) {
    match p {
        Patch::Absent => (false, None),
        Patch::Null => (true, None),
        Patch::Set(v) => (true, Some(*v)),
    }
}

/// Applies the given fields of a live client (`branch`: `None` = unchanged), recording `user`
/// as the last updater.
async fn update_client(
    conn: &mut PgConnection,
    id: i64,
    input: &ClientInput,
    branch: Option<i64>,
    user: i64,
) -> Result<(), ApiError> {
    let (dob_set, dob) = nullable(&input.dob);
    let (visa_set, visa) = nullable(&input.visa_category_id);
    let (agent_set, agent) = nullable(&input.agent_id);
    let (assignee_set, assignee) = nullable(&input.assigned_to_id);
    sqlx::query(
        "UPDATE clients
            SET first_name = COALESCE($2, first_name),
                middle_name = COALESCE($3, middle_name),
                last_name = COALESCE($4, last_name),
                gender = COALESCE($5, gender),
                dob = CASE WHEN $6 THEN $7 ELSE dob END,
                phone_number = COALESCE($8, phone_number),
                email = COALESCE($9, email),
                street = COALESCE($10, street),
                suburb = COALESCE($11, suburb),
                state = COALESCE($12, state),
                postcode = COALESCE($13, postcode),
                country = COALESCE($14, country),
                branch_id = COALESCE($15, branch_id),
                visa_category_id = CASE WHEN $16 THEN $17 ELSE visa_category_id END,
                agent_id = CASE WHEN $18 THEN $19 ELSE agent_id END,
                assigned_to_id = CASE WHEN $20 THEN $21 ELSE assigned_to_id END,
                stage = COALESCE($22, stage),
                active = COALESCE($23, active),
                description = COALESCE($24, description),
                referred_by = COALESCE($25, referred_by),
                updated_by_id = $26,
                updated_at = now()
          WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .bind(input.first_name.as_deref())
    .bind(input.text("middle_name"))
    .bind(input.text("last_name"))
    .bind(input.gender.as_deref())
    .bind(dob_set)
    .bind(dob)
    .bind(input.text("phone_number"))
    .bind(input.text("email"))
    .bind(input.text("street"))
    .bind(input.text("suburb"))
    .bind(input.text("state"))
    .bind(input.text("postcode"))
    .bind(input.country.as_deref())
    .bind(branch)
    .bind(visa_set)
    .bind(visa)
    .bind(agent_set)
    .bind(agent)
    .bind(assignee_set)
    .bind(assignee)
    .bind(input.stage.as_deref())
    .bind(input.active)
    .bind(input.text("description"))
    .bind(input.text("referred_by"))
    .bind(user)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Soft-deletes (`deleted = true`) a live client or restores a soft-deleted one, recording
/// `user`.
async fn set_deleted(
    conn: &mut PgConnection,
    id: i64,
    deleted: bool,
    user: i64,
) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE clients
            SET deleted_at = CASE WHEN $2 THEN now() ELSE NULL END,
                updated_by_id = $3, updated_at = now()
          WHERE id = $1 AND (deleted_at IS NULL) = $2",
    )
    .bind(id)
    .bind(deleted)
    .bind(user)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One page of client `client`'s timeline (optionally one `activity_type`), newest first, and
/// the total count.
async fn list_activities(
    conn: &mut PgConnection,
    client: i64,
    activity_type: Option<&str>,
    pagination: &Pagination,
) -> Result<(Vec<ClientActivityOutput>, i64), ApiError> {
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM client_activities a
          WHERE a.client_id = $1 AND ($2::text IS NULL OR a.activity_type = $2)",
    )
    .bind(client)
    .bind(activity_type)
    .fetch_one(&mut *conn)
    .await?;
    let rows = sqlx::query_as(concat!(
        "SELECT a.id, a.client_id AS client, a.activity_type,
                initcap(replace(lower(a.activity_type), '_', ' ')) AS activity_type_display,
                a.performed_by_id AS performed_by, ",
        user_name!("pu"),
        " AS performed_by_name, a.description, a.metadata, ",
        rfc3339!("a.created_at"),
        " AS created_at
           FROM client_activities a
           LEFT JOIN users pu ON pu.id = a.performed_by_id
          WHERE a.client_id = $1 AND ($2::text IS NULL OR a.activity_type = $2)
          ORDER BY a.created_at DESC, a.id DESC
          LIMIT $3 OFFSET $4"
    ))
    .bind(client)
    .bind(activity_type)
    .bind(pagination.limit())
    .bind(pagination.offset())
    .fetch_all(&mut *conn)
    .await?;
    Ok((rows, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn nullable_ids_accept_integers_and_decimal_strings_and_clear_on_null_or_blank() {
        let mut errors = FieldErrors::default();
        let b = body(serde_json::json!({"a": 5, "b": "7", "c": null, "d": "", "e": "x", "f": -1}));
        assert_eq!(nullable_id(&b, "a", &mut errors), Patch::Set(5));
        assert_eq!(nullable_id(&b, "b", &mut errors), Patch::Set(7));
        assert_eq!(nullable_id(&b, "c", &mut errors), Patch::Null);
        assert_eq!(nullable_id(&b, "d", &mut errors), Patch::Null);
        assert_eq!(nullable_id(&b, "zz", &mut errors), Patch::Absent);
        assert!(errors.finish().is_ok());
        let mut errors = FieldErrors::default();
        assert_eq!(nullable_id(&b, "e", &mut errors), Patch::Absent);
        assert_eq!(nullable_id(&b, "f", &mut errors), Patch::Absent);
        assert!(errors.finish().is_err());
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert!(plausible_email("a@example.com"));
        for bad in [
            "nope",
            "@example.com",
            "a@example",
            "a@.com",
            "a b@example.com",
        ] {
            assert!(!plausible_email(bad), "{bad}");
        }
    }

    #[test]
    fn an_update_body_may_omit_everything_but_not_null_a_required_field() {
        let input = client_input(&body(serde_json::json!({})), false);
        assert!(input.is_ok());
        assert!(client_input(&body(serde_json::json!({"first_name": null})), false).is_err());
        assert!(client_input(&body(serde_json::json!({"country": "A1"})), false).is_err());
        let cleared = client_input(
            &body(serde_json::json!({"email": null, "dob": null})),
            false,
        )
        .map(|i| (i.text("email").map(str::to_owned), i.dob));
        assert_eq!(
            cleared.ok(),
            Some((Some(String::new()), Patch::Null)),
            "null clears"
        );
    }
}
