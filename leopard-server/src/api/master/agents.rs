//! `/api/v1/agents/`: external referral partners (`SUPER_AGENT` / `SUB_AGENT`), soft-deleted and
//! restorable, master data read tenant-wide.
//!
//! Permissions are verb-level (`view_agent` to list and read, `add_agent`, `change_agent` for
//! updates and restore, `delete_agent`); agents have no branch, so whoever holds the permission
//! sees all of them. A name is unique case-insensitively among live agents (a 400 on
//! `agent_name`; a restore colliding with a live name is the same 400). PUT and PATCH are both
//! merge-patch; `null` clears an optional field (`email` and `country` become null).
//!
//! Writes record `Agent.CREATE`, `Agent.<field>.UPDATE` (name, type), `Agent.DELETE` (soft
//! delete) and, on restore, `Agent.UPDATE` with changed field `deleted_at`.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post, put};
use axum::Json;
use http::Method;
use leopard_http::{ApiError, AuthUser, JsonBody, Page, Pagination};
use leopard_rbac::{Action, Principal, ResourceKind, ScopeColumns};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::postgres::PgArguments;
use sqlx::PgConnection;

use crate::api::crm::clients::plausible_email;
use crate::api::events;
use crate::api::input::{
    choice, contains_pattern, list_params, object, optional_country, param, path_id, required_text,
    rfc3339, text, unique_conflict, user_name, FieldErrors, Patch,
};
use crate::api::{push_arg, require, route, Access, ApiRoute};
use crate::app::AppState;

/// The event entity name.
const ENTITY: &str = "Agent";

/// The fields whose changes are recorded as `Agent.<field>.UPDATE` events.
const TRACKED: &[&str] = &["agent_name", "agent_type"];

/// The agent kinds.
pub(crate) const AGENT_TYPES: &[&str] = &["SUPER_AGENT", "SUB_AGENT"];

/// Agents have no branch: the policy rule is tenant-wide.
const SCOPE_COLUMNS: ScopeColumns<'static> = ScopeColumns {
    branch: "NULL::bigint",
    owners: &[],
    region: "NULL",
};

/// The partial unique index on live names.
const NAME_INDEX: &str = "agents_live_name";

/// The agent routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        route(
            "/api/v1/agents/",
            Access::Tenant,
            [(Method::GET, get(list)), (Method::POST, post(create))],
        )
        .countries(&["country"]),
        route(
            "/api/v1/agents/{id}/",
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
            "/api/v1/agents/{id}/restore/",
            Access::Tenant,
            [(Method::POST, post(restore))],
        ),
    ]
}

/// An agent as the API answers it (the original's AgentOutput).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AgentOutput {
    /// Id.
    pub id: i64,
    /// Name, unique among live agents.
    pub agent_name: String,
    /// `SUPER_AGENT` or `SUB_AGENT`.
    pub agent_type: String,
    /// "Super Agent" or "Sub Agent".
    pub agent_type_display: String,
    /// Company.
    pub company_name: String,
    /// Designation.
    pub designation: String,
    /// Phone number.
    pub phone_number: String,
    /// E-mail, or null.
    pub email: Option<String>,
    /// Web site URL.
    pub website: String,
    /// Whom to invoice.
    pub invoice_to: String,
    /// Street.
    pub street: String,
    /// Suburb.
    pub suburb: String,
    /// State.
    pub state: String,
    /// Postcode.
    pub postcode: String,
    /// Two-letter country code, or null.
    pub country: Option<String>,
    /// Free text.
    pub description: String,
    /// The creating user's id.
    pub created_by: Option<i64>,
    /// The creating user's "First Last" (or username).
    pub created_by_name: Option<String>,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// The last updating user's id.
    pub updated_by: Option<i64>,
    /// The last updating user's "First Last" (or username).
    pub updated_by_name: Option<String>,
    /// Last change, RFC 3339.
    pub updated_at: String,
}

const AGENT_SELECT: &str = concat!(
    "SELECT a.id, a.agent_name, a.agent_type,
            CASE a.agent_type WHEN 'SUPER_AGENT' THEN 'Super Agent' ELSE 'Sub Agent' END
                AS agent_type_display,
            a.company_name, a.designation, a.phone_number, a.email, a.website, a.invoice_to,
            a.street, a.suburb, a.state, a.postcode, NULLIF(a.country, '') AS country,
            a.description, a.created_by_id AS created_by, ",
    user_name!("cu"),
    " AS created_by_name, ",
    rfc3339!("a.created_at"),
    " AS created_at, a.updated_by_id AS updated_by, ",
    user_name!("uu"),
    " AS updated_by_name, ",
    rfc3339!("a.updated_at"),
    " AS updated_at
       FROM agents a
       LEFT JOIN users cu ON cu.id = a.created_by_id
       LEFT JOIN users uu ON uu.id = a.updated_by_id"
);

/// The optional text fields (never null in the table) with their maximum lengths.
const OPTIONAL_TEXTS: &[(&str, usize)] = &[
    ("company_name", 100),
    ("designation", 100),
    ("phone_number", 15),
    ("website", 100),
    ("invoice_to", 100),
    ("street", 100),
    ("suburb", 100),
    ("state", 100),
    ("postcode", 20),
    ("description", 500),
];

/// The body of a create or update, every field read and validated.
#[derive(Debug)]
struct AgentInput {
    agent_name: Option<String>,
    agent_type: Option<String>,
    /// Optional texts: `(column, value)`; `null` reads as empty.
    texts: Vec<(&'static str, String)>,
    /// `Null` (or blank) stores NULL.
    email: Patch<String>,
    /// `Null` (or blank) stores the empty code (answered as null).
    country: Patch<String>,
}

impl AgentInput {
    /// The value of optional text `column`, if given.
    fn text(&self, column: &str) -> Option<&str> {
        self.texts
            .iter()
            .find(|(f, _)| *f == column)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a create (`create = true`: `agent_name`, `agent_type` required) or update body.
fn agent_input(body: &Map<String, Value>, create: bool) -> Result<AgentInput, ApiError> {
    let mut errors = FieldErrors::default();
    let mut input = AgentInput {
        agent_name: required_text(body, "agent_name", 100, create, &mut errors),
        agent_type: choice(body, "agent_type", AGENT_TYPES, create, &mut errors),
        texts: Vec::new(),
        email: Patch::Absent,
        country: Patch::Absent,
    };
    for (field, max) in OPTIONAL_TEXTS {
        match text(body, field, *max, &mut errors) {
            Patch::Set(s) => input.texts.push((field, s)),
            Patch::Null => input.texts.push((field, String::new())),
            Patch::Absent => {}
        }
    }
    if let Some(site) = input.text("website") {
        let lower = site.to_ascii_lowercase();
        let scheme = lower.starts_with("http://") || lower.starts_with("https://");
        let bad = (!scheme && !site.is_empty()) || site.chars().any(char::is_whitespace);
        if bad {
            errors.add("website", "Enter a valid URL.");
        }
    }
    input.email = match text(body, "email", 254, &mut errors) {
        Patch::Set(s) if s.is_empty() => Patch::Null,
        Patch::Set(s) if !plausible_email(&s) => {
            errors.add("email", "Enter a valid email address.");
            Patch::Absent
        }
        other => other,
    };
    input.country = optional_country(body, "country", &mut errors);
    errors.finish()?;
    Ok(input)
}

fn not_found() -> ApiError {
    ApiError::NotFound("Agent not found".into())
}

/// The 400 of a name taken by a live agent.
fn name_taken(name: &str) -> String {
    format!("Agent with name '{name}' already exists")
}

// ----- handlers ----------------------------------------------------------------------------

/// `GET /api/v1/agents/`.
pub(crate) async fn list(
    auth: AuthUser,
    pagination: Pagination,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<AgentOutput>>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::Agent)?;
    let params = list_params(query.as_deref());
    let mut tx = auth.tenant.begin().await?;
    let (rows, count) = crate::api::fetch_page(
        &mut tx,
        AGENT_SELECT,
        "agents a",
        "lower(a.agent_name), a.id",
        || agent_filters(&auth.principal, &params),
        &pagination,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(pagination.page(rows, count)?))
}

/// `POST /api/v1/agents/`.
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<AgentOutput>), ApiError> {
    require(&auth.principal, Action::Add, ResourceKind::Agent)?;
    let input = agent_input(&object(body)?, true)?;
    let mut tx = auth.tenant.begin().await?;
    let id = insert_agent(&mut tx, &input, auth.user_id.get()).await?;
    let out = fetch_agent(&mut tx, id, false)
        .await?
        .ok_or_else(not_found)?;
    let event = events::created(ENTITY, id, events::state(&out)?, auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET /api/v1/agents/{id}/`.
pub(crate) async fn retrieve(
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<AgentOutput>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::Agent)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    let out = fetch_agent(&mut tx, id, false)
        .await?
        .ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(Json(out))
}

/// `PUT`/`PATCH /api/v1/agents/{id}/` (both merge-patch).
pub(crate) async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<AgentOutput>, ApiError> {
    require(&auth.principal, Action::Change, ResourceKind::Agent)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let input = agent_input(&object(body)?, false)?;
    let mut tx = auth.tenant.begin().await?;
    let before = fetch_agent(&mut tx, id, true)
        .await?
        .ok_or_else(not_found)?;
    update_agent(&mut tx, id, &input, auth.user_id.get()).await?;
    let out = fetch_agent(&mut tx, id, false)
        .await?
        .ok_or_else(not_found)?;
    let (before_state, after_state) = (events::state(&before)?, events::state(&out)?);
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

/// `DELETE /api/v1/agents/{id}/`: soft delete.
pub(crate) async fn destroy(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    require(&auth.principal, Action::Delete, ResourceKind::Agent)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    let before = fetch_agent(&mut tx, id, true)
        .await?
        .ok_or_else(not_found)?;
    set_deleted(&mut tx, id, true, auth.user_id.get()).await?;
    let event = events::deleted(ENTITY, id, events::state(&before)?, auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/agents/{id}/restore/`: undoes a soft delete.
pub(crate) async fn restore(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<AgentOutput>, ApiError> {
    require(&auth.principal, Action::Change, ResourceKind::Agent)?;
    let gone = || ApiError::NotFound("Agent not found or not soft-deleted".into());
    let id = path_id(&raw).ok_or_else(gone)?;
    let mut tx = auth.tenant.begin().await?;
    let deleted: Option<bool> =
        sqlx::query_scalar("SELECT deleted_at IS NOT NULL FROM agents WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    if deleted != Some(true) {
        return Err(gone());
    }
    let before: AgentOutput = sqlx::query_as(&format!("{AGENT_SELECT} WHERE a.id = $1"))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    set_deleted(&mut tx, id, false, auth.user_id.get()).await?;
    let out = fetch_agent(&mut tx, id, false).await?.ok_or_else(gone)?;
    let event = events::updated_fields(
        ENTITY,
        id,
        events::state(&before)?,
        events::state(&out)?,
        &["deleted_at"],
        auth.user_id.get(),
    );
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok(Json(out))
}

// ----- data --------------------------------------------------------------------------------

/// The `WHERE` clause of the list, its arguments and how many there are.
fn agent_filters(
    principal: &Principal,
    params: &HashMap<String, String>,
) -> Result<(String, PgArguments, usize), ApiError> {
    let (mut clauses, mut args, mut n) = crate::api::scoped_live_filters(
        principal,
        ResourceKind::Agent,
        &SCOPE_COLUMNS,
        "a",
        params,
    )?;
    if let Some(search) = param(params, "search") {
        n += 1;
        push_arg(&mut args, contains_pattern(search))?;
        clauses.push(format!(
            "(a.agent_name ILIKE ${n} OR a.email ILIKE ${n} OR a.phone_number ILIKE ${n})"
        ));
    }
    for (key, column) in [
        ("agent_name", "a.agent_name"),
        ("email", "a.email"),
        ("phone_number", "a.phone_number"),
    ] {
        if let Some(value) = param(params, key) {
            n += 1;
            push_arg(&mut args, contains_pattern(value))?;
            clauses.push(format!("{column} ILIKE ${n}"));
        }
    }
    if let Some(kind) = param(params, "agent_type") {
        n += 1;
        push_arg(&mut args, kind.to_owned())?;
        clauses.push(format!("a.agent_type = ${n}"));
    }
    if let Some(code) = param(params, "country") {
        n += 1;
        push_arg(&mut args, code.to_ascii_uppercase())?;
        clauses.push(format!("a.country = ${n}"));
    }
    Ok((clauses.join(" AND "), args, n))
}

/// A live agent by id (`lock`: with a row lock).
async fn fetch_agent(
    conn: &mut PgConnection,
    id: i64,
    lock: bool,
) -> Result<Option<AgentOutput>, ApiError> {
    let sql = format!(
        "{AGENT_SELECT} WHERE a.id = $1 AND a.deleted_at IS NULL{}",
        if lock { " FOR UPDATE OF a" } else { "" }
    );
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

/// Inserts an agent created by `user`; returns its id (a 400 when the name is taken).
async fn insert_agent(
    conn: &mut PgConnection,
    input: &AgentInput,
    user: i64,
) -> Result<i64, ApiError> {
    let name = input.agent_name.clone().unwrap_or_default();
    let t = |c: &str| input.text(c).unwrap_or_default().to_owned();
    sqlx::query_scalar(
        "INSERT INTO agents (agent_name, agent_type, company_name, designation, phone_number,
                             email, website, invoice_to, street, suburb, state, postcode,
                             country, description, created_by_id, updated_by_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)
         RETURNING id",
    )
    .bind(&name)
    .bind(
        input
            .agent_type
            .clone()
            .unwrap_or_else(|| "SUB_AGENT".into()),
    )
    .bind(t("company_name"))
    .bind(t("designation"))
    .bind(t("phone_number"))
    .bind(match &input.email {
        Patch::Set(e) => Some(e.clone()),
        _ => None,
    })
    .bind(t("website"))
    .bind(t("invoice_to"))
    .bind(t("street"))
    .bind(t("suburb"))
    .bind(t("state"))
    .bind(t("postcode"))
    .bind(match &input.country {
        Patch::Set(c) => c.clone(),
        _ => String::new(),
    })
    .bind(t("description"))
    .bind(user)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| unique_conflict(e, NAME_INDEX, "agent_name", &name_taken(&name)))
}

/// Applies the given fields of live agent `id`, recording `user` as the last updater (a 400
/// when the new name is taken).
async fn update_agent(
    conn: &mut PgConnection,
    id: i64,
    input: &AgentInput,
    user: i64,
) -> Result<(), ApiError> {
    let (email_set, email) = match &input.email {
        Patch::Absent => (false, None),
        Patch::Null => (true, None),
        Patch::Set(e) => (true, Some(e.clone())),
    };
    let country = match &input.country {
        Patch::Absent => None,
        Patch::Null => Some(String::new()),
        Patch::Set(c) => Some(c.clone()),
    };
    let name = input.agent_name.clone().unwrap_or_default();
    sqlx::query(
        "UPDATE agents
            SET agent_name = COALESCE($2, agent_name),
                agent_type = COALESCE($3, agent_type),
                company_name = COALESCE($4, company_name),
                designation = COALESCE($5, designation),
                phone_number = COALESCE($6, phone_number),
                email = CASE WHEN $7 THEN $8 ELSE email END,
                website = COALESCE($9, website),
                invoice_to = COALESCE($10, invoice_to),
                street = COALESCE($11, street),
                suburb = COALESCE($12, suburb),
                state = COALESCE($13, state),
                postcode = COALESCE($14, postcode),
                country = COALESCE($15, country),
                description = COALESCE($16, description),
                updated_by_id = $17,
                updated_at = now()
          WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .bind(input.agent_name.as_deref())
    .bind(input.agent_type.as_deref())
    .bind(input.text("company_name"))
    .bind(input.text("designation"))
    .bind(input.text("phone_number"))
    .bind(email_set)
    .bind(email)
    .bind(input.text("website"))
    .bind(input.text("invoice_to"))
    .bind(input.text("street"))
    .bind(input.text("suburb"))
    .bind(input.text("state"))
    .bind(input.text("postcode"))
    .bind(country)
    .bind(input.text("description"))
    .bind(user)
    .execute(&mut *conn)
    .await
    .map_err(|e| unique_conflict(e, NAME_INDEX, "agent_name", &name_taken(&name)))?;
    Ok(())
}

/// Soft-deletes (`deleted = true`) a live agent or restores a soft-deleted one (a 400 when a
/// live agent took its name meanwhile), recording `user`.
async fn set_deleted(
    conn: &mut PgConnection,
    id: i64,
    deleted: bool,
    user: i64,
) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE agents
            SET deleted_at = CASE WHEN $2 THEN now() ELSE NULL END,
                updated_by_id = $3, updated_at = now()
          WHERE id = $1 AND (deleted_at IS NULL) = $2",
    )
    .bind(id)
    .bind(deleted)
    .bind(user)
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        unique_conflict(
            e,
            NAME_INDEX,
            "agent_name",
            "A live agent already has this agent's name.",
        )
    })?;
    Ok(())
}
