//! `/api/v1/events/`: calendar events (meetings, appointments) with start and end, an optional
//! assignee and branch, a colour and a location; hard-deleted.
//!
//! Permissions are verb-level (`view_calendarevent`, `add_…`, `change_…`, `delete_…`). Row
//! visibility is the `leopard_rbac` rule `OwnOrTeam`: everyone reaches the events assigned to
//! them or created by them (the original hid an event from its creator once assigned to someone
//! else); holders of `view_team_events` also reach the events of their team — events whose
//! branch, or one of whose assignee's branches, is covered by the caller's scope (the caller's
//! branches for Branch Admins and Consultants, the branches of its regions for Region Managers,
//! everything for a Super Admin). Lists use `leopard_rbac::filter` over the event's branch and
//! its assignee's branches; detail routes use `leopard_rbac::check` over the same branches, so an
//! event is reachable exactly when it is listed. Out of reach answers 404.
//!
//! Assigning an event to someone else needs `assign_calendarevent_to_others` and an assignee
//! the caller may see (403 otherwise; the original did not enforce either); an unknown assignee
//! or branch is a 400; a branch must be inside the caller's scope (403).
//!
//! Unlike the original, `location` is kept, `duration` always equals `end − start` (a generated
//! column), PATCH is a merge-patch (`null` unassigns, clears the branch, empties the
//! description and location, resets the colour) and may move the event to another branch.
//! PUT is not served (405), like the original.
//!
//! Writes record `CalendarEvent.CREATE`, `CalendarEvent.UPDATE` (plus one
//! `CalendarEvent.<field>.UPDATE` per changed tracked field) and `CalendarEvent.DELETE`.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use http::Method;
use leopard_http::{ApiError, AuthUser, JsonBody, Page, Pagination};
use leopard_rbac::{
    check, may_assign_branches, Action, Permission, Principal, Resource, ResourceKind, ScopeColumns,
};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::postgres::PgArguments;
use sqlx::PgConnection;

use crate::api::events;
use crate::api::identity::users::{may_touch, user_branch_ids};
use crate::api::input::{
    boolean, contains_pattern, datetime, int_param, list_params, nullable_id, object, param,
    parse_datetime, path_id, required_text, rfc3339, text, user_name, FieldErrors, Patch,
};
use crate::api::{push_arg, push_predicate, require, route, Access, ApiRoute, Filters};
use crate::app::AppState;

/// The event entity name.
const ENTITY: &str = "CalendarEvent";

/// The fields whose changes are recorded as `CalendarEvent.<field>.UPDATE` events.
const TRACKED: &[&str] = &[
    "title",
    "description",
    "start",
    "end",
    "assigned_to",
    "branch_id",
    "hex_color",
    "location",
    "all_day",
];

/// The colour of an event created without one.
const DEFAULT_COLOR: &str = "#3788d8";

/// The largest `days` of `upcoming/`.
const MAX_UPCOMING_DAYS: i64 = 3660;

/// The calendar routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        route(
            "/api/v1/events/",
            Access::Tenant,
            [(Method::GET, get(list)), (Method::POST, post(create))],
        ),
        route(
            "/api/v1/events/upcoming/",
            Access::Tenant,
            [(Method::GET, get(upcoming))],
        )
        .paginated(true),
        route(
            "/api/v1/events/today/",
            Access::Tenant,
            [(Method::GET, get(today))],
        )
        .paginated(true),
        route(
            "/api/v1/events/{id}/",
            Access::Tenant,
            [
                (Method::GET, get(retrieve)),
                (Method::PATCH, patch(update)),
                (Method::DELETE, delete(destroy)),
            ],
        ),
    ]
}

/// A duration rendered like DRF's `DurationField`: `HH:MM:SS`, `D HH:MM:SS` past a day, with
/// `.uuuuuu` when there are microseconds. Read from a number of microseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DrfDuration(pub String);

impl From<i64> for DrfDuration {
    fn from(micros: i64) -> Self {
        let micros = micros.max(0);
        let (secs, frac) = (micros / 1_000_000, micros % 1_000_000);
        let (days, rest) = (secs / 86_400, secs % 86_400);
        let mut out = format!(
            "{:02}:{:02}:{:02}",
            rest / 3600,
            (rest % 3600) / 60,
            rest % 60
        );
        if days > 0 {
            out = format!("{days} {out}");
        }
        if frac > 0 {
            out.push_str(&format!(".{frac:06}"));
        }
        DrfDuration(out)
    }
}

/// A calendar event as the API answers it (the original's EventOutput).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EventOutput {
    /// Id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Free text.
    pub description: String,
    /// Start, RFC 3339.
    pub start: String,
    /// End, RFC 3339 (after the start).
    pub end: String,
    /// `end − start` as DRF renders a duration (`HH:MM:SS`, `D HH:MM:SS`).
    #[sqlx(try_from = "i64")]
    pub duration: DrfDuration,
    /// `end − start` in whole minutes.
    pub duration_minutes: i64,
    /// The assignee's id.
    pub assigned_to: Option<i64>,
    /// The assignee's username.
    pub assigned_to_name: Option<String>,
    /// The assignee's "First Last" (empty when they have no name).
    pub assigned_to_full_name: Option<String>,
    /// `#RRGGBB`.
    pub hex_color: String,
    /// Where.
    pub location: String,
    /// An all-day event.
    pub all_day: bool,
    /// The branch's id.
    pub branch: Option<i64>,
    /// The branch's id (again, as the original answers it).
    pub branch_id: Option<i64>,
    /// The branch's name.
    pub branch_name: Option<String>,
    /// The creating user's id.
    pub created_by: Option<i64>,
    /// The creating user's username.
    pub created_by_name: Option<String>,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// The last updating user's id.
    pub updated_by: Option<i64>,
    /// The last updating user's username.
    pub updated_by_name: Option<String>,
    /// Last change, RFC 3339.
    pub updated_at: String,
    /// Ended before now.
    pub is_past: bool,
    /// Started and not ended.
    pub is_ongoing: bool,
    /// Starts after now.
    pub is_upcoming: bool,
}

const EVENT_SELECT: &str = concat!(
    "SELECT e.id, e.title, e.description, ",
    rfc3339!("e.start_at"),
    " AS \"start\", ",
    rfc3339!("e.end_at"),
    " AS \"end\",
            (extract(epoch FROM e.duration) * 1000000)::bigint AS duration,
            floor(extract(epoch FROM e.duration) / 60)::bigint AS duration_minutes,
            e.assigned_to_id AS assigned_to, au.username AS assigned_to_name, ",
    user_name!("au"),
    " AS assigned_to_full_name,
            e.hex_color, e.location, e.all_day,
            e.branch_id AS branch, e.branch_id, b.name AS branch_name,
            e.created_by_id AS created_by, cu.username AS created_by_name, ",
    rfc3339!("e.created_at"),
    " AS created_at, e.updated_by_id AS updated_by, uu.username AS updated_by_name, ",
    rfc3339!("e.updated_at"),
    " AS updated_at,
            e.end_at < now() AS is_past,
            (e.start_at <= now() AND e.end_at >= now()) AS is_ongoing,
            e.start_at > now() AS is_upcoming
       FROM calendar_events e
       LEFT JOIN users au ON au.id = e.assigned_to_id
       LEFT JOIN users cu ON cu.id = e.created_by_id
       LEFT JOIN users uu ON uu.id = e.updated_by_id
       LEFT JOIN branches b ON b.id = e.branch_id"
);

/// The body of a create or a PATCH, every field read and validated.
#[derive(Debug)]
struct EventInput {
    title: Option<String>,
    /// `null` reads as empty.
    description: Option<String>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    assigned_to_id: Patch<i64>,
    /// Normalised `#rrggbb`; `null` reads as the default colour.
    hex_color: Option<String>,
    /// `null` reads as empty.
    location: Option<String>,
    all_day: Option<bool>,
    branch_id: Patch<i64>,
}

/// A required date-time `field` on a create; on a PATCH it may be absent but not `null`.
fn required_datetime(
    body: &Map<String, Value>,
    field: &str,
    create: bool,
    errors: &mut FieldErrors,
) -> Option<DateTime<Utc>> {
    match datetime(body, field, errors) {
        Patch::Set(at) => Some(at),
        Patch::Null => {
            errors.add(
                field,
                if create {
                    "This field is required."
                } else {
                    "This field may not be null."
                },
            );
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

/// `#?RRGGBB` normalised to `#RRGGBB`; `None` when malformed.
fn hex_color(raw: &str) -> Option<String> {
    let digits = raw.strip_prefix('#').unwrap_or(raw);
    (digits.len() == 6 && digits.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| format!("#{digits}"))
}

/// An optional text that `null` empties.
fn optional_text(
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

/// Reads a create (`create = true`: `title`, `start`, `end` required) or a PATCH body.
fn event_input(body: &Map<String, Value>, create: bool) -> Result<EventInput, ApiError> {
    let mut errors = FieldErrors::default();
    let color = match text(body, "hex_color", 7, &mut errors) {
        Patch::Set(s) if s.is_empty() => Some(DEFAULT_COLOR.to_owned()),
        Patch::Set(s) => {
            let color = hex_color(&s);
            if color.is_none() {
                errors.add(
                    "hex_color",
                    "Enter a valid hex colour: #RRGGBB (the # is optional).",
                );
            }
            color
        }
        Patch::Null => Some(DEFAULT_COLOR.to_owned()),
        Patch::Absent => None,
    };
    let input = EventInput {
        title: required_text(body, "title", 200, create, &mut errors),
        description: optional_text(body, "description", 100_000, &mut errors),
        start: required_datetime(body, "start", create, &mut errors),
        end: required_datetime(body, "end", create, &mut errors),
        assigned_to_id: nullable_id(body, "assigned_to_id", &mut errors),
        hex_color: color,
        location: optional_text(body, "location", 255, &mut errors),
        all_day: boolean(body, "all_day", &mut errors),
        branch_id: nullable_id(body, "branch_id", &mut errors),
    };
    errors.finish()?;
    Ok(input)
}

/// 400 on `end` unless `end` is after `start`.
fn ensure_order(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<(), ApiError> {
    if end > start {
        Ok(())
    } else {
        Err(ApiError::field("end", "End time must be after start time."))
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound("Event not found".into())
}

/// The visibility predicate of `action` on `e` (a `calendar_events` alias) with parameters
/// from `$first`: the policy filter over the event's owners and over each of its branches (its
/// own and its assignee's live branches).
fn visibility(principal: &Principal, action: Action, first: usize) -> leopard_rbac::SqlPredicate {
    let mut predicate = leopard_rbac::filter(
        principal,
        action,
        ResourceKind::CalendarEvent,
        &ScopeColumns {
            branch: "tb.branch_id",
            owners: &["e.assigned_to_id", "e.created_by_id"],
            region: "NULL",
        },
        first,
    );
    if predicate.sql != "TRUE" && predicate.sql != "FALSE" {
        predicate.sql = format!(
            "EXISTS (SELECT 1
                       FROM (SELECT e.branch_id
                             UNION ALL
                             SELECT ub.branch_id
                               FROM user_branches ub
                               JOIN branches ubb ON ubb.id = ub.branch_id
                                                AND ubb.deleted_at IS NULL
                              WHERE ub.user_id = e.assigned_to_id) tb (branch_id)
                      WHERE {})",
            predicate.sql
        );
    }
    predicate
}

/// A time-window of the `upcoming/` and `today/` lists.
#[derive(Debug, Clone, Copy)]
enum Window {
    /// Everything (the plain list).
    All,
    /// Ending from now and starting within `days` days.
    Upcoming(i64),
    /// Overlapping today (UTC).
    Today,
}

// ----- handlers ----------------------------------------------------------------------------

/// `GET /api/v1/events/`.
pub(crate) async fn list(
    auth: AuthUser,
    pagination: Pagination,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<EventOutput>>, ApiError> {
    page_of(auth, pagination, query, Window::All).await
}

/// `GET /api/v1/events/upcoming/`: `days` (default 7).
pub(crate) async fn upcoming(
    auth: AuthUser,
    pagination: Pagination,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<EventOutput>>, ApiError> {
    let params = list_params(query.as_deref());
    let days = int_param(&params, "days")?.unwrap_or(7);
    if !(0..=MAX_UPCOMING_DAYS).contains(&days) {
        return Err(ApiError::field(
            "days",
            format!("Ensure this value is between 0 and {MAX_UPCOMING_DAYS}."),
        ));
    }
    page_of(auth, pagination, query, Window::Upcoming(days)).await
}

/// `GET /api/v1/events/today/`.
pub(crate) async fn today(
    auth: AuthUser,
    pagination: Pagination,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<EventOutput>>, ApiError> {
    page_of(auth, pagination, query, Window::Today).await
}

/// One page of the visible events in `window`, with the list filters of `query`.
async fn page_of(
    auth: AuthUser,
    pagination: Pagination,
    query: Option<String>,
    window: Window,
) -> Result<Json<Page<EventOutput>>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::CalendarEvent)?;
    let params = list_params(query.as_deref());
    let order = match window {
        Window::All => "e.start_at DESC, e.id DESC",
        Window::Upcoming(_) | Window::Today => "e.start_at ASC, e.id ASC",
    };
    // Validate the filters before opening a transaction.
    event_filters(&auth.principal, &params, window)?;
    let mut tx = auth.tenant.begin().await?;
    let (rows, count) = crate::api::fetch_page(
        &mut tx,
        EVENT_SELECT,
        "calendar_events e",
        order,
        || event_filters(&auth.principal, &params, window),
        &pagination,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(pagination.page(rows, count)?))
}

/// `POST /api/v1/events/`.
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<EventOutput>), ApiError> {
    let principal = &auth.principal;
    require(principal, Action::Add, ResourceKind::CalendarEvent)?;
    let input = event_input(&object(body)?, true)?;
    let (Some(start), Some(end)) = (input.start, input.end) else {
        return Err(ApiError::BadRequest("start and end are required.".into()));
    };
    ensure_order(start, end)?;
    let mut tx = auth.tenant.begin().await?;
    let assignee = match input.assigned_to_id {
        Patch::Set(user) => {
            ensure_assignable(&mut tx, principal, user).await?;
            Some(user)
        }
        Patch::Null | Patch::Absent => None,
    };
    let branch = match input.branch_id {
        Patch::Set(b) => {
            ensure_branch(&mut tx, principal, b).await?;
            Some(b)
        }
        Patch::Null | Patch::Absent => None,
    };
    let id = insert_event(
        &mut tx,
        &input,
        (start, end),
        (assignee, branch),
        auth.user_id.get(),
    )
    .await?;
    let out = fetch_event(&mut tx, id).await?.ok_or_else(not_found)?;
    let event = events::created(ENTITY, id, events::state(&out)?, auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET /api/v1/events/{id}/`.
pub(crate) async fn retrieve(
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<EventOutput>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::CalendarEvent)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    visible_event(&mut tx, &auth.principal, Action::View, id, false).await?;
    let out = fetch_event(&mut tx, id).await?.ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(Json(out))
}

/// `PATCH /api/v1/events/{id}/`: merge-patch.
pub(crate) async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<EventOutput>, ApiError> {
    let principal = &auth.principal;
    require(principal, Action::Change, ResourceKind::CalendarEvent)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let input = event_input(&object(body)?, false)?;
    let mut tx = auth.tenant.begin().await?;
    let current = visible_event(&mut tx, principal, Action::Change, id, true).await?;
    ensure_order(
        input.start.unwrap_or(current.start),
        input.end.unwrap_or(current.end),
    )?;
    if let Patch::Set(user) = input.assigned_to_id {
        if current.assigned_to != Some(user) {
            ensure_assignable(&mut tx, principal, user).await?;
        }
    }
    if let Patch::Set(b) = input.branch_id {
        if current.branch != Some(b) {
            ensure_branch(&mut tx, principal, b).await?;
        }
    }
    let before = fetch_event(&mut tx, id).await?.ok_or_else(not_found)?;
    update_event(&mut tx, id, &input, auth.user_id.get()).await?;
    let out = fetch_event(&mut tx, id).await?.ok_or_else(not_found)?;
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

/// `DELETE /api/v1/events/{id}/`: hard delete.
pub(crate) async fn destroy(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    require(&auth.principal, Action::Delete, ResourceKind::CalendarEvent)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    visible_event(&mut tx, &auth.principal, Action::Delete, id, true).await?;
    let before = fetch_event(&mut tx, id).await?.ok_or_else(not_found)?;
    sqlx::query("DELETE FROM calendar_events WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let event = events::deleted(ENTITY, id, events::state(&before)?, auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- data --------------------------------------------------------------------------------

/// A date-time query value (`start_date`, `end_date`): RFC 3339, a naive date-time (UTC) or a
/// date (its midnight, UTC); a 400 on `key` otherwise.
fn instant_param(
    params: &HashMap<String, String>,
    key: &str,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(raw) = param(params, key) else {
        return Ok(None);
    };
    parse_datetime(raw)
        .or_else(|| {
            NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc())
        })
        .map(Some)
        .ok_or_else(|| {
            ApiError::field(
                key,
                "Enter a valid date/time: YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss][+HH:MM|Z].",
            )
        })
}

/// The `WHERE` clause of a list: visibility, the window, and the `start_date`, `end_date`,
/// `assigned_to`, `branch` and `search` filters.
fn event_filters(
    principal: &Principal,
    params: &HashMap<String, String>,
    window: Window,
) -> Result<Filters, ApiError> {
    let mut args = PgArguments::default();
    let scope = visibility(principal, Action::View, 1);
    let mut n = scope.params.len();
    push_predicate(&mut args, &scope)?;
    let mut clauses = vec![scope.sql];
    match window {
        Window::All => {}
        Window::Upcoming(days) => {
            n += 1;
            push_arg(&mut args, days)?;
            clauses.push(format!(
                "e.end_at >= now() AND e.start_at <= now() + make_interval(days => ${n}::int)"
            ));
        }
        Window::Today => clauses.push(
            "e.start_at < date_trunc('day', now(), 'UTC') + interval '1 day'
             AND e.end_at > date_trunc('day', now(), 'UTC')"
                .to_owned(),
        ),
    }
    if let Some(at) = instant_param(params, "start_date")? {
        n += 1;
        push_arg(&mut args, at)?;
        clauses.push(format!("e.end_at >= ${n}"));
    }
    if let Some(at) = instant_param(params, "end_date")? {
        n += 1;
        push_arg(&mut args, at)?;
        clauses.push(format!("e.start_at <= ${n}"));
    }
    for (key, column) in [
        ("assigned_to", "e.assigned_to_id"),
        ("branch", "e.branch_id"),
    ] {
        if let Some(value) = int_param(params, key)? {
            n += 1;
            push_arg(&mut args, value)?;
            clauses.push(format!("{column} = ${n}"));
        }
    }
    if let Some(search) = param(params, "search") {
        n += 1;
        push_arg(&mut args, contains_pattern(search))?;
        clauses.push(format!(
            "(e.title ILIKE ${n} OR e.description ILIKE ${n} OR e.location ILIKE ${n})"
        ));
    }
    Ok((clauses.join(" AND "), args, n))
}

/// What the writers need of an event: its times, assignee and branch.
#[derive(Debug, sqlx::FromRow)]
struct EventOwners {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    branch: Option<i64>,
    assigned_to: Option<i64>,
    created_by: Option<i64>,
}

/// Event `id` when `principal` may `action` it (404 otherwise), locked with `lock`: allowed
/// through its owners (assignee, creator), its branch or one of its assignee's live branches —
/// the rows [`visibility`] lists.
async fn visible_event(
    conn: &mut PgConnection,
    principal: &Principal,
    action: Action,
    id: i64,
    lock: bool,
) -> Result<EventOwners, ApiError> {
    let sql = format!(
        "SELECT start_at AS start, end_at AS \"end\", branch_id AS branch, assigned_to_id AS assigned_to,
                created_by_id AS created_by
           FROM calendar_events WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let event: EventOwners = sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(not_found)?;
    let team = match event.assigned_to {
        Some(user) => user_branch_ids(conn, user).await?,
        None => Vec::new(),
    };
    let owners: Vec<i64> = [event.assigned_to, event.created_by]
        .into_iter()
        .flatten()
        .collect();
    let allowed = std::iter::once(event.branch)
        .chain(team.into_iter().map(Some))
        .any(|branch| {
            check(
                principal,
                action,
                &Resource::new(ResourceKind::CalendarEvent, branch).owned_by(owners.clone()),
            )
            .allowed()
        });
    if allowed {
        Ok(event)
    } else {
        Err(not_found())
    }
}

/// A 400 on `assigned_to_id` unless user `id` exists; assigning someone other than the caller
/// needs `assign_calendarevent_to_others` and a user the caller may see (403).
async fn ensure_assignable(
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
            format!("User with ID {id} not found"),
        ));
    }
    if id == principal.user_id().get() {
        return Ok(());
    }
    if !principal.has(Permission::ASSIGN_CALENDAREVENT_TO_OTHERS) {
        return Err(ApiError::Forbidden(
            "You do not have permission to assign events to other users.".into(),
        ));
    }
    let branches = user_branch_ids(conn, id).await?;
    if may_touch(principal, Action::View, id, &branches) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "You cannot assign an event to a user outside your scope.".into(),
        ))
    }
}

/// A 400 on `branch_id` unless live branch `id` exists; a 403 unless it is inside the caller's
/// scope.
async fn ensure_branch(
    conn: &mut PgConnection,
    principal: &Principal,
    id: i64,
) -> Result<(), ApiError> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM branches WHERE id = $1 AND deleted_at IS NULL)",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    if !exists {
        return Err(ApiError::field(
            "branch_id",
            format!("Invalid pk \"{id}\" - object does not exist."),
        ));
    }
    if may_assign_branches(principal, &[id]) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "You cannot put an event in a branch outside your scope.".into(),
        ))
    }
}

/// One event by id.
async fn fetch_event(conn: &mut PgConnection, id: i64) -> Result<Option<EventOutput>, ApiError> {
    Ok(sqlx::query_as(&format!("{EVENT_SELECT} WHERE e.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

/// Inserts an event created by `user`; returns its id.
async fn insert_event(
    conn: &mut PgConnection,
    input: &EventInput,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    (assignee, branch): (Option<i64>, Option<i64>),
    user: i64,
) -> Result<i64, ApiError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO calendar_events (title, description, start_at, end_at, assigned_to_id,
                                      hex_color, location, all_day, branch_id, created_by_id,
                                      updated_by_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
         RETURNING id",
    )
    .bind(input.title.clone().unwrap_or_default())
    .bind(input.description.clone().unwrap_or_default())
    .bind(start)
    .bind(end)
    .bind(assignee)
    .bind(
        input
            .hex_color
            .clone()
            .unwrap_or_else(|| DEFAULT_COLOR.to_owned()),
    )
    .bind(input.location.clone().unwrap_or_default())
    .bind(input.all_day.unwrap_or(false))
    .bind(branch)
    .bind(user)
    .fetch_one(&mut *conn)
    .await?)
}

/// `(changed, value)` of a nullable patch: `changed = false` leaves the column alone.
fn nullable(p: &Patch<i64>) -> (bool, Option<i64>) {
    match p {
        Patch::Absent => (false, None),
        Patch::Null => (true, None),
        Patch::Set(v) => (true, Some(*v)),
    }
}

/// Applies the given fields of event `id`, recording `user` as the last updater (the duration
/// follows the times by itself).
async fn update_event(
    conn: &mut PgConnection,
    id: i64,
    input: &EventInput,
    user: i64,
) -> Result<(), ApiError> {
    let (assignee_set, assignee) = nullable(&input.assigned_to_id);
    let (branch_set, branch) = nullable(&input.branch_id);
    sqlx::query(
        "UPDATE calendar_events
            SET title = COALESCE($2, title),
                description = COALESCE($3, description),
                start_at = COALESCE($4, start_at),
                end_at = COALESCE($5, end_at),
                assigned_to_id = CASE WHEN $6 THEN $7 ELSE assigned_to_id END,
                hex_color = COALESCE($8, hex_color),
                location = COALESCE($9, location),
                all_day = COALESCE($10, all_day),
                branch_id = CASE WHEN $11 THEN $12 ELSE branch_id END,
                updated_by_id = $13,
                updated_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(input.title.as_deref())
    .bind(input.description.as_deref())
    .bind(input.start)
    .bind(input.end)
    .bind(assignee_set)
    .bind(assignee)
    .bind(input.hex_color.as_deref())
    .bind(input.location.as_deref())
    .bind(input.all_day)
    .bind(branch_set)
    .bind(branch)
    .bind(user)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_render_like_drf() {
        let hour = 3_600_000_000_i64;
        assert_eq!(DrfDuration::from(hour + 30 * 60_000_000).0, "01:30:00");
        assert_eq!(DrfDuration::from(26 * hour).0, "1 02:00:00");
        assert_eq!(DrfDuration::from(3 * 24 * hour).0, "3 00:00:00");
        assert_eq!(DrfDuration::from(1_500_000).0, "00:00:01.500000");
    }

    #[test]
    fn colours_take_an_optional_hash_and_six_hex_digits() {
        assert_eq!(hex_color("ff0000").as_deref(), Some("#ff0000"));
        assert_eq!(hex_color("#3788D8").as_deref(), Some("#3788D8"));
        for bad in ["#fff", "red", "#gggggg", "##12345"] {
            assert_eq!(hex_color(bad), None, "{bad}");
        }
    }
}
