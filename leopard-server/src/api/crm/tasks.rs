//! `/api/v1/tasks/`: tasks assigned to a user, to a branch pool or to nobody, optionally linked
//! to a record (a client, …), with comments, `@mentions`, claim, complete and cancel.
//!
//! Permissions are verb-level (`view_task` to list and read, `add_task` to create,
//! `change_task` to update, complete, cancel and claim). A task is visible to its owners (the
//! assignee, the creator, the assigner), to the scope covering its branch pool, and to the
//! scope covering the branch of the client it is linked to (`leopard_rbac` rule `OwnOrBranch`,
//! decided twice: once with the pool's branch and the owners, once with the linked client's
//! branch). Out of scope answers 404 everywhere, exactly like a missing task.
//!
//! Task rules on top of that (spec §4.3): complete/cancel only by the assignee or the assigner
//! (403 otherwise); comment by the assignee, the assigner, a member of the task's branch pool or
//! anyone who may change the task; claim only by a member of the task's branch pool (400
//! otherwise); delete by the creator or a holder of `delete_task` within scope (403 otherwise).
//!
//! Input: a task is assigned to a user (`assigned_to`) or a branch pool (`branch_id`), never
//! both (400 `non_field_errors`); on an update assigning one clears the other. An assignee must
//! exist (400) and be a user the caller may see (403); a pool must be a live branch (400) within
//! the caller's scope (403). `linked_entity_type` is a model name of the `content_types` table
//! (case-insensitive; unknown → 400) and `linked_entity_id` must exist (a client must also be
//! within the caller's scope); a type whose table does not exist yet cannot be linked (400).
//! PUT and PATCH are both merge-patch. Setting `status` to `COMPLETED` sets `completed_at`,
//! leaving `COMPLETED` clears it.
//!
//! Writes record `Task.CREATE`, `Task.<field>.UPDATE` per changed tracked field, `Task.DELETE`
//! (hard delete) and, for a comment, `Task.UPDATE` with changed field `comments`. The event state
//! holds `title`, `priority`, `status`, `due_date`, `assigned_to`, `branch_id`, `branch_name`,
//! `assigned_by`, `created_by`, `content_type`, `object_id`, `client_id` (the linked client, or
//! null) and, on a claim, `claimed: true` (so the notification handler tells a claim from a
//! reassignment). Mentioned users get their `TASK_MENTIONED` notification in the comment's own
//! transaction, keyed by the comment event's id.

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post, put};
use axum::Json;
use chrono::{DateTime, Utc};
use http::Method;
use leopard_http::pagination::query_pairs;
use leopard_http::{ApiError, AuthUser, JsonBody, Page, Pagination};
use leopard_rbac::{check, filter, Action, Principal, Resource, ResourceKind, ScopeColumns};
use serde::Serialize;
use serde_json::{json, Map, Value};
use sqlx::postgres::PgArguments;
use sqlx::PgConnection;

use crate::api::events;
use crate::api::identity::users::{may_touch, user_branch_ids};
use crate::api::input::{
    choice, datetime, int_param, list_params, nullable_id, object, param, path_id, required_text,
    rfc3339, string_list, text, FieldErrors, Patch,
};
use crate::api::{push_arg, push_predicate, require, route, truthy, Access, ApiRoute};
use crate::app::AppState;
use crate::notify::{notify, NewNotification, NotificationType};

/// The event entity name.
const ENTITY: &str = "Task";

/// The fields whose changes are recorded as `Task.<field>.UPDATE` events.
const TRACKED: &[&str] = &[
    "title",
    "priority",
    "status",
    "due_date",
    "assigned_to",
    "branch_id",
    "assigned_by",
    "content_type",
    "object_id",
];

/// The priorities.
const PRIORITIES: &[&str] = &["LOW", "MEDIUM", "HIGH", "URGENT"];

/// The statuses.
const STATUSES: &[&str] = &[
    "PENDING",
    "IN_PROGRESS",
    "COMPLETED",
    "CANCELLED",
    "OVERDUE",
];

/// The content type of clients (fixed: real clients hard-code it).
pub const CLIENT_CONTENT_TYPE: i32 = 10;

/// The longest comment accepted.
const MAX_COMMENT: usize = 5_000;

/// The longest detail accepted.
const MAX_DETAIL: usize = 100_000;

/// The most tags a task may carry, and the longest tag.
const MAX_TAGS: usize = 50;
const MAX_TAG: usize = 100;

/// The default and largest `days` of `due_soon`.
const DUE_SOON_DAYS: i64 = 3;
const MAX_DUE_SOON_DAYS: i64 = 365;

/// The models a task may link to, with their tables; a model whose table does not exist (yet)
/// cannot be linked. Every other model of the `content_types` table cannot be linked either.
const LINKABLE: &[(&str, &str)] = &[
    ("user", "users"),
    ("region", "regions"),
    ("branch", "branches"),
    ("agent", "agents"),
    ("client", "clients"),
    ("note", "notes"),
    ("task", "tasks"),
    ("reminder", "reminders"),
    ("calendarevent", "calendar_events"),
    ("visacategory", "visa_categories"),
    ("visatype", "visa_types"),
    ("visaapplication", "visa_applications"),
    ("institute", "institutes"),
    ("course", "courses"),
    ("collegeapplication", "college_applications"),
];

/// Where a task's own scope lives in the list queries: its branch pool and its owners.
const OWN_SCOPE: ScopeColumns<'static> = ScopeColumns {
    branch: "t.branch_id",
    owners: &["t.assigned_to_id", "t.created_by_id", "t.assigned_by_id"],
    region: "NULL",
};

/// Where the linked client's scope lives in the list queries.
const CLIENT_SCOPE: ScopeColumns<'static> = ScopeColumns {
    branch: "lc.branch_id",
    owners: &[],
    region: "NULL",
};

/// The task routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        route(
            "/api/v1/tasks/",
            Access::Tenant,
            [(Method::GET, get(list)), (Method::POST, post(create))],
        ),
        route(
            "/api/v1/tasks/overdue/",
            Access::Tenant,
            [(Method::GET, get(overdue))],
        ),
        route(
            "/api/v1/tasks/due_soon/",
            Access::Tenant,
            [(Method::GET, get(due_soon))],
        ),
        route(
            "/api/v1/tasks/{id}/",
            Access::Tenant,
            [
                (Method::GET, get(retrieve)),
                (Method::PUT, put(update)),
                (Method::PATCH, patch(update)),
                (Method::DELETE, delete(destroy)),
            ],
        ),
        route(
            "/api/v1/tasks/{id}/complete/",
            Access::Tenant,
            [(Method::POST, post(complete))],
        ),
        route(
            "/api/v1/tasks/{id}/cancel/",
            Access::Tenant,
            [(Method::POST, post(cancel))],
        ),
        route(
            "/api/v1/tasks/{id}/add_comment/",
            Access::Tenant,
            [(Method::POST, post(add_comment))],
        ),
        route(
            "/api/v1/tasks/{id}/claim/",
            Access::Tenant,
            [(Method::POST, post(claim))],
        ),
    ]
}

/// A task as the API answers it (the original's TaskOutput).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TaskOutput {
    /// Id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// What to do.
    pub detail: String,
    /// `LOW`, `MEDIUM`, `HIGH` or `URGENT`.
    pub priority: String,
    /// Its display form ("Medium", …).
    pub priority_display: String,
    /// `PENDING`, `IN_PROGRESS`, `COMPLETED`, `CANCELLED` or `OVERDUE`.
    pub status: String,
    /// Its display form ("In Progress", …).
    pub status_display: String,
    /// When it is due, RFC 3339.
    pub due_date: String,
    /// The assignee's id.
    pub assigned_to: Option<i64>,
    /// The assignee's username.
    pub assigned_to_name: Option<String>,
    /// The assignee's "First Last".
    pub assigned_to_full_name: Option<String>,
    /// The branch pool's id.
    pub branch_id: Option<i64>,
    /// The branch pool's name.
    pub branch_name: Option<String>,
    /// Whether the task is in a branch pool.
    pub assigned_to_branch: bool,
    /// The assigner's id.
    pub assigned_by: Option<i64>,
    /// The assigner's username.
    pub assigned_by_name: Option<String>,
    /// The assigner's "First Last".
    pub assigned_by_full_name: Option<String>,
    /// The creator's id.
    pub created_by: Option<i64>,
    /// The creator's username.
    pub created_by_name: Option<String>,
    /// The creator's "First Last".
    pub created_by_full_name: Option<String>,
    /// The last updater's id.
    pub updated_by: Option<i64>,
    /// The last updater's username.
    pub updated_by_name: Option<String>,
    /// The last updater's "First Last".
    pub updated_by_full_name: Option<String>,
    /// Tags (a list of strings).
    pub tags: Value,
    /// Comments, oldest first: `{user_id, username, full_name, text, mentions, created_at}`.
    pub comments: Value,
    /// The linked record's content-type id.
    pub content_type: Option<i32>,
    /// The linked record's id.
    pub object_id: Option<i64>,
    /// The linked record's model name (`client`, …).
    pub linked_entity_type: Option<String>,
    /// The linked record's id.
    pub linked_entity_id: Option<i64>,
    /// The linked client's "First Last" ("Visa Application" for a visa application; else null).
    pub linked_entity_name: Option<String>,
    /// When it was completed, RFC 3339.
    pub completed_at: Option<String>,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Last change, RFC 3339.
    pub updated_at: String,
}

/// The username of the user whose id is in `column` (a scalar subquery: with seven lookups
/// as joins, planning the list took 45 ms per request; as subqueries, 2.5 ms).
macro_rules! username {
    ($column:literal) => {
        concat!(
            "(SELECT u.username FROM users u WHERE u.id = ",
            $column,
            ")"
        )
    };
}

/// The "First Last" (Django's `get_full_name`) of the user whose id is in `column`, null when
/// there is none.
macro_rules! full_name {
    ($column:literal) => {
        concat!(
            "(SELECT btrim(u.first_name || ' ' || u.last_name) FROM users u WHERE u.id = ",
            $column,
            ")"
        )
    };
}

/// The tables a task's scope needs: the task and its linked client.
const TASK_FROM: &str =
    "tasks t LEFT JOIN clients lc ON t.content_type_id = 10 AND lc.id = t.object_id";

const TASK_SELECT: &str = concat!(
    "SELECT t.id, t.title, t.detail, t.priority,
            initcap(lower(t.priority)) AS priority_display, t.status,
            initcap(replace(lower(t.status), '_', ' ')) AS status_display, ",
    rfc3339!("t.due_date"),
    " AS due_date, t.assigned_to_id AS assigned_to, ",
    username!("t.assigned_to_id"),
    " AS assigned_to_name, ",
    full_name!("t.assigned_to_id"),
    " AS assigned_to_full_name, t.branch_id,
            (SELECT b.name FROM branches b WHERE b.id = t.branch_id) AS branch_name,
            (t.branch_id IS NOT NULL) AS assigned_to_branch,
            t.assigned_by_id AS assigned_by, ",
    username!("t.assigned_by_id"),
    " AS assigned_by_name, ",
    full_name!("t.assigned_by_id"),
    " AS assigned_by_full_name, t.created_by_id AS created_by, ",
    username!("t.created_by_id"),
    " AS created_by_name, ",
    full_name!("t.created_by_id"),
    " AS created_by_full_name, t.updated_by_id AS updated_by, ",
    username!("t.updated_by_id"),
    " AS updated_by_name, ",
    full_name!("t.updated_by_id"),
    " AS updated_by_full_name, t.tags, t.comments, t.content_type_id AS content_type,
            t.object_id,
            (SELECT ct.model FROM content_types ct WHERE ct.id = t.content_type_id)
                AS linked_entity_type,
            t.object_id AS linked_entity_id,
            CASE WHEN t.content_type_id = 10
                     THEN NULLIF(btrim(lc.first_name || ' ' || lc.last_name), '')
                 WHEN t.content_type_id = (SELECT id FROM content_types
                                            WHERE app_label = 'immigration'
                                              AND model = 'visaapplication')
                     THEN 'Visa Application'
                 WHEN t.content_type_id = (SELECT id FROM content_types
                                            WHERE app_label = 'immigration'
                                              AND model = 'collegeapplication')
                     THEN 'College Application'
            END AS linked_entity_name, ",
    rfc3339!("t.completed_at"),
    " AS completed_at, ",
    rfc3339!("t.created_at"),
    " AS created_at, ",
    rfc3339!("t.updated_at"),
    " AS updated_at
       FROM tasks t
       LEFT JOIN clients lc ON t.content_type_id = 10 AND lc.id = t.object_id"
);

/// The body of a create or update, every field read and validated.
#[derive(Debug)]
struct TaskInput {
    title: Option<String>,
    detail: Option<String>,
    priority: Option<String>,
    status: Option<String>,
    due_date: Option<DateTime<Utc>>,
    tags: Patch<Vec<String>>,
    assigned_to: Patch<i64>,
    branch_id: Patch<i64>,
    assigned_by: Patch<i64>,
    linked_entity_type: Patch<String>,
    linked_entity_id: Patch<i64>,
}

/// Reads a create (`create = true`: `title`, `detail`, `due_date` required; `status` ignored,
/// a task starts `PENDING`) or update body.
fn task_input(body: &Map<String, Value>, create: bool) -> Result<TaskInput, ApiError> {
    let mut errors = FieldErrors::default();
    let mut input = TaskInput {
        title: required_text(body, "title", 200, create, &mut errors),
        detail: required_text(body, "detail", MAX_DETAIL, create, &mut errors),
        priority: choice(body, "priority", PRIORITIES, false, &mut errors),
        status: if create {
            None
        } else {
            choice(body, "status", STATUSES, false, &mut errors)
        },
        due_date: None,
        tags: string_list(body, "tags", MAX_TAG, &mut errors),
        assigned_to: nullable_id(body, "assigned_to", &mut errors),
        branch_id: nullable_id(body, "branch_id", &mut errors),
        assigned_by: nullable_id(body, "assigned_by", &mut errors),
        linked_entity_type: text(body, "linked_entity_type", 100, &mut errors),
        linked_entity_id: Patch::Absent,
    };
    match datetime(body, "due_date", &mut errors) {
        Patch::Set(d) => input.due_date = Some(d),
        Patch::Null => errors.add(
            "due_date",
            if create {
                "This field is required."
            } else {
                "This field may not be null."
            },
        ),
        Patch::Absent => {
            if create && !body.contains_key("due_date") {
                errors.add("due_date", "This field is required.");
            }
        }
    }
    if let Patch::Set(tags) = &input.tags {
        if tags.len() > MAX_TAGS {
            errors.add(
                "tags",
                format!("Ensure this field has no more than {MAX_TAGS} elements."),
            );
        }
    }
    input.linked_entity_id = nullable_id(body, "linked_entity_id", &mut errors);
    if let Patch::Set(s) = &input.linked_entity_type {
        if s.is_empty() {
            input.linked_entity_type = Patch::Null;
        }
    }
    match (&input.linked_entity_type, &input.linked_entity_id) {
        (Patch::Set(_), Patch::Absent | Patch::Null) => errors.add(
            "linked_entity_id",
            "This field is required when linked_entity_type is set.",
        ),
        (Patch::Null, Patch::Set(_)) | (Patch::Absent, Patch::Set(_)) if create => errors.add(
            "linked_entity_type",
            "This field is required when linked_entity_id is set.",
        ),
        (Patch::Null, Patch::Set(_)) => errors.add(
            "linked_entity_type",
            "This field is required when linked_entity_id is set.",
        ),
        _ => {}
    }
    if let (Patch::Set(_), Patch::Set(_)) = (&input.assigned_to, &input.branch_id) {
        errors.add(
            "non_field_errors",
            "Task cannot be assigned to both a user and a branch.",
        );
    }
    errors.finish()?;
    Ok(input)
}

fn not_found() -> ApiError {
    ApiError::NotFound("Task not found".into())
}

/// What decides a task's scope, and the few fields the actions need.
#[derive(Debug, Clone, sqlx::FromRow)]
struct TaskRef {
    branch_id: Option<i64>,
    assigned_to_id: Option<i64>,
    assigned_by_id: Option<i64>,
    created_by_id: Option<i64>,
    /// The branch of the linked client, if the task is linked to a client.
    client_branch: Option<i64>,
    content_type_id: Option<i32>,
    object_id: Option<i64>,
}

impl TaskRef {
    /// Whether `principal` may `action` this task: by its pool or its owners, or by its linked
    /// client's branch — exactly what [`scope_filter`] selects.
    fn allows(&self, principal: &Principal, action: Action) -> bool {
        let own = Resource::new(ResourceKind::Task, self.branch_id).owned_by(
            [self.assigned_to_id, self.created_by_id, self.assigned_by_id]
                .into_iter()
                .flatten(),
        );
        check(principal, action, &own).allowed()
            || check(
                principal,
                action,
                &Resource::new(ResourceKind::Task, self.client_branch),
            )
            .allowed()
    }

    /// Whether `user` is the task's assignee or assigner.
    fn assignee_or_assigner(&self, user: i64) -> bool {
        self.assigned_to_id == Some(user) || self.assigned_by_id == Some(user)
    }
}

/// The task with its scope, 404 unless `principal` may `action` it.
async fn scoped_task(
    conn: &mut PgConnection,
    principal: &Principal,
    action: Action,
    id: i64,
    lock: bool,
) -> Result<TaskRef, ApiError> {
    let task = task_ref(conn, id, lock).await?.ok_or_else(not_found)?;
    if task.allows(principal, action) {
        Ok(task)
    } else {
        Err(not_found())
    }
}

/// The event state of a task (`claimed` marks the state after a claim).
fn event_state(out: &TaskOutput, client_id: Option<i64>, claimed: bool) -> Value {
    let mut state = json!({
        "title": out.title,
        "priority": out.priority,
        "status": out.status,
        "due_date": out.due_date,
        "assigned_to": out.assigned_to,
        "branch_id": out.branch_id,
        "branch_name": out.branch_name,
        "assigned_by": out.assigned_by,
        "created_by": out.created_by,
        "content_type": out.content_type,
        "object_id": out.object_id,
        "client_id": client_id,
    });
    if claimed {
        state["claimed"] = Value::Bool(true);
    }
    state
}

/// The linked client of a task output.
fn linked_client(out: &TaskOutput) -> Option<i64> {
    if out.content_type == Some(CLIENT_CONTENT_TYPE) {
        out.object_id
    } else {
        None
    }
}

/// Records the change from `before` to the task's current state and commits: the end of every
/// update-like handler. Returns the task as it is now.
async fn finish_change(
    state: &AppState,
    mut tx: leopard_tenancy::TenantTx,
    id: i64,
    before: &TaskOutput,
    actor: i64,
    claimed: bool,
) -> Result<TaskOutput, ApiError> {
    let out = fetch_task(&mut tx, id).await?.ok_or_else(not_found)?;
    let before_state = event_state(before, linked_client(before), false);
    let after_state = event_state(&out, linked_client(&out), claimed);
    events::commit_change(
        tx,
        &state.waker,
        events::Change {
            entity: ENTITY,
            id,
            before: &before_state,
            after: &after_state,
            tracked: TRACKED,
            actor,
        },
    )
    .await?;
    Ok(out)
}

// ----- handlers ----------------------------------------------------------------------------

/// `GET /api/v1/tasks/`.
pub(crate) async fn list(
    auth: AuthUser,
    pagination: Pagination,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<TaskOutput>>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::Task)?;
    let filters = ListFilters::parse(query.as_deref())?;
    let mut tx = auth.tenant.begin().await?;
    let (rows, count) = list_tasks(&mut tx, &auth.principal, &filters, &pagination).await?;
    tx.commit().await?;
    Ok(Json(pagination.page(rows, count)?))
}

/// `POST /api/v1/tasks/`.
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<TaskOutput>), ApiError> {
    let principal = &auth.principal;
    require(principal, Action::Add, ResourceKind::Task)?;
    let input = task_input(&object(body)?, true)?;
    let me = auth.user_id.get();
    let mut tx = auth.tenant.begin().await?;
    let assignee = match input.assigned_to {
        Patch::Set(user) => {
            ensure_user(&mut tx, principal, "assigned_to", user).await?;
            Some(user)
        }
        _ => None,
    };
    let branch = match input.branch_id {
        Patch::Set(b) => {
            ensure_pool(&mut tx, principal, Action::Add, b).await?;
            Some(b)
        }
        _ => None,
    };
    let assigned_by = match input.assigned_by {
        Patch::Set(user) if user != me => {
            ensure_user(&mut tx, principal, "assigned_by", user).await?;
            user
        }
        _ => me,
    };
    let link = match (&input.linked_entity_type, input.linked_entity_id) {
        (Patch::Set(model), Patch::Set(object)) => {
            Some(resolve_link(&mut tx, principal, model, object).await?)
        }
        _ => None,
    };
    let id = insert_task(
        &mut tx,
        &input,
        NewTask {
            assignee,
            branch,
            assigned_by,
            link,
            user: me,
        },
    )
    .await?;
    let out = fetch_task(&mut tx, id).await?.ok_or_else(not_found)?;
    let event = events::created(
        ENTITY,
        id,
        event_state(&out, linked_client(&out), false),
        me,
    );
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET /api/v1/tasks/{id}/`.
pub(crate) async fn retrieve(
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<TaskOutput>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::Task)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    scoped_task(&mut tx, &auth.principal, Action::View, id, false).await?;
    let out = fetch_task(&mut tx, id).await?.ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(Json(out))
}

/// `PUT`/`PATCH /api/v1/tasks/{id}/`.
pub(crate) async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<TaskOutput>, ApiError> {
    let principal = &auth.principal;
    require(principal, Action::Change, ResourceKind::Task)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let input = task_input(&object(body)?, false)?;
    let me = auth.user_id.get();
    let mut tx = auth.tenant.begin().await?;
    let task = scoped_task(&mut tx, principal, Action::Change, id, true).await?;
    let before = fetch_task(&mut tx, id).await?.ok_or_else(not_found)?;
    // The assignment after the change: a user clears the pool and a pool clears the user.
    let (mut assignee, mut branch) = (task.assigned_to_id, task.branch_id);
    match input.assigned_to {
        Patch::Set(user) => {
            if Some(user) != task.assigned_to_id {
                ensure_user(&mut tx, principal, "assigned_to", user).await?;
            }
            assignee = Some(user);
            branch = None;
        }
        Patch::Null => assignee = None,
        Patch::Absent => {}
    }
    match input.branch_id {
        Patch::Set(b) => {
            if Some(b) != task.branch_id {
                ensure_pool(&mut tx, principal, Action::Change, b).await?;
            }
            branch = Some(b);
            assignee = None;
        }
        Patch::Null => branch = None,
        Patch::Absent => {}
    }
    let assigned_by = match input.assigned_by {
        Patch::Set(user) => {
            if Some(user) != task.assigned_by_id && user != me {
                ensure_user(&mut tx, principal, "assigned_by", user).await?;
            }
            Some(user)
        }
        Patch::Null => None,
        Patch::Absent => task.assigned_by_id,
    };
    // `task_input` refused a type without an id and a cleared type with an id.
    let link = match (&input.linked_entity_type, input.linked_entity_id) {
        (Patch::Null, _) | (Patch::Absent, Patch::Null) => None,
        (Patch::Set(model), Patch::Set(object)) => {
            Some(resolve_link(&mut tx, principal, model, object).await?)
        }
        (Patch::Absent, Patch::Set(object)) => match task.content_type_id {
            Some(ct) => {
                let model = content_type_model(&mut tx, ct).await?;
                Some(resolve_link(&mut tx, principal, &model, object).await?)
            }
            None => {
                return Err(ApiError::field(
                    "linked_entity_type",
                    "This field is required when linked_entity_id is set.",
                ))
            }
        },
        _ => task.content_type_id.zip(task.object_id),
    };
    update_task(
        &mut tx,
        id,
        &input,
        Assignment {
            assignee,
            branch,
            assigned_by,
            link,
        },
        me,
    )
    .await?;
    let out = finish_change(&state, tx, id, &before, me, false).await?;
    Ok(Json(out))
}

/// `DELETE /api/v1/tasks/{id}/`: hard delete, by the creator or a holder of `delete_task`
/// within scope.
pub(crate) async fn destroy(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let principal = &auth.principal;
    require(principal, Action::View, ResourceKind::Task)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let me = auth.user_id.get();
    let mut tx = auth.tenant.begin().await?;
    let task = scoped_task(&mut tx, principal, Action::View, id, true).await?;
    if task.created_by_id != Some(me) && !task.allows(principal, Action::Delete) {
        return Err(ApiError::Forbidden(
            "Only the task's creator or a user allowed to delete tasks may delete it.".into(),
        ));
    }
    let before = fetch_task(&mut tx, id).await?.ok_or_else(not_found)?;
    sqlx::query("DELETE FROM tasks WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let event = events::deleted(
        ENTITY,
        id,
        event_state(&before, linked_client(&before), false),
        me,
    );
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/tasks/{id}/complete/`.
pub(crate) async fn complete(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<TaskOutput>, ApiError> {
    finish(state, auth, raw, "COMPLETED", "complete").await
}

/// `POST /api/v1/tasks/{id}/cancel/`.
pub(crate) async fn cancel(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<TaskOutput>, ApiError> {
    finish(state, auth, raw, "CANCELLED", "cancel").await
}

/// Completes or cancels a task (`status`), for its assignee or assigner only.
async fn finish(
    state: AppState,
    auth: AuthUser,
    raw: String,
    status: &str,
    verb: &str,
) -> Result<Json<TaskOutput>, ApiError> {
    let principal = &auth.principal;
    require(principal, Action::Change, ResourceKind::Task)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let me = auth.user_id.get();
    let mut tx = auth.tenant.begin().await?;
    let task = scoped_task(&mut tx, principal, Action::Change, id, true).await?;
    if !task.assignee_or_assigner(me) {
        return Err(ApiError::Forbidden(format!(
            "Only the assignee or the assigner of this task can {verb} it."
        )));
    }
    let before = fetch_task(&mut tx, id).await?.ok_or_else(not_found)?;
    set_status(&mut tx, id, status, me).await?;
    let out = finish_change(&state, tx, id, &before, me, false).await?;
    Ok(Json(out))
}

/// `POST /api/v1/tasks/{id}/claim/`: a member of the task's branch pool takes it.
pub(crate) async fn claim(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<TaskOutput>, ApiError> {
    let principal = &auth.principal;
    require(principal, Action::Change, ResourceKind::Task)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let me = auth.user_id.get();
    let mut tx = auth.tenant.begin().await?;
    let task = scoped_task(&mut tx, principal, Action::View, id, true).await?;
    let Some(branch) = task.branch_id else {
        return Err(ApiError::BadRequest(
            "This task is not assigned to a branch, so it cannot be claimed.".into(),
        ));
    };
    if !principal.branch_ids().contains(&branch) {
        return Err(ApiError::BadRequest(
            "You can only claim tasks of a branch you belong to.".into(),
        ));
    }
    let before = fetch_task(&mut tx, id).await?.ok_or_else(not_found)?;
    sqlx::query(
        "UPDATE tasks
            SET assigned_to_id = $2, branch_id = NULL,
                assigned_by_id = COALESCE(assigned_by_id, $2),
                updated_by_id = $2, updated_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(me)
    .execute(&mut *tx)
    .await?;
    let out = finish_change(&state, tx, id, &before, me, true).await?;
    Ok(Json(out))
}

/// `POST /api/v1/tasks/{id}/add_comment/`: appends `{"comment": "…"}` with its `@mentions`
/// and notifies each mentioned user (except the author) once.
pub(crate) async fn add_comment(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<TaskOutput>, ApiError> {
    let principal = &auth.principal;
    require(principal, Action::View, ResourceKind::Task)?;
    let id = path_id(&raw).ok_or_else(not_found)?;
    let body = object(body)?;
    let mut errors = FieldErrors::default();
    let comment = required_text(&body, "comment", MAX_COMMENT, true, &mut errors);
    errors.finish()?;
    let comment = comment.unwrap_or_default();
    let me = auth.user_id.get();
    let mut tx = auth.tenant.begin().await?;
    let task = scoped_task(&mut tx, principal, Action::View, id, true).await?;
    let member = task
        .branch_id
        .is_some_and(|b| principal.branch_ids().contains(&b));
    if !(task.assignee_or_assigner(me) || member || task.allows(principal, Action::Change)) {
        return Err(ApiError::Forbidden(
            "Only the assignee, the assigner, a member of the task's branch or a user allowed \
             to change it can comment on this task."
                .into(),
        ));
    }
    let before = fetch_task(&mut tx, id).await?.ok_or_else(not_found)?;
    let author = comment_user(&mut tx, me).await?.ok_or_else(not_found)?;
    let tokens = mention_tokens(&comment);
    let users = mentioned_users(&mut tx, &tokens).await?;
    let mut mentions = Vec::new();
    let mut mentioned = BTreeSet::new();
    for token in &tokens {
        let Some((user, end)) = token
            .candidates()
            .find_map(|(name, end)| users.get(&name.to_lowercase()).map(|u| (u, end)))
        else {
            continue;
        };
        mentions.push(json!({
            "user_id": user.id,
            "username": user.username,
            "full_name": user.full_name,
            "start_pos": token.start,
            "end_pos": end,
        }));
        mentioned.insert(user.id);
    }
    let entry = json!({
        "user_id": author.id,
        "username": author.username,
        "full_name": author.full_name,
        "text": comment,
        "mentions": mentions,
        "created_at": Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
    });
    sqlx::query(
        "UPDATE tasks SET comments = comments || jsonb_build_array($2::jsonb),
                          updated_by_id = $3, updated_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(&entry)
    .bind(me)
    .execute(&mut *tx)
    .await?;
    let out = fetch_task(&mut tx, id).await?.ok_or_else(not_found)?;
    let client = linked_client(&out);
    let mut current = event_state(&out, client, false);
    current["comment"] = entry;
    let event = events::updated_fields(
        ENTITY,
        id,
        event_state(&before, client, false),
        current,
        &["comments"],
        me,
    );
    let event_id = leopard_events::record(&mut tx, event)
        .await
        .map_err(ApiError::from)?;
    let due = DateTime::parse_from_rfc3339(&out.due_date)
        .ok()
        .map(|d| d.with_timezone(&Utc));
    for user in mentioned.into_iter().filter(|u| *u != me) {
        let mut notice = NewNotification::new(
            NotificationType::TaskMentioned,
            user,
            "You were mentioned in a task comment",
            format!(
                "{} mentioned you in a comment on task: {}",
                author.username, out.title
            ),
        );
        notice.due_date = due;
        notice.meta_info = json!({
            "task_id": id,
            "comment_text": comment,
            "mentioned_by": author.username,
            "mentioned_by_id": author.id,
            "entity_type": "task",
            "entity_id": id,
        });
        notice.event_id = Some(event_id);
        notice.created_by = Some(me);
        notify(&mut tx, notice).await?;
    }
    events::commit(tx, &state.waker).await?;
    Ok(Json(out))
}

/// `GET /api/v1/tasks/overdue/`: the caller's open tasks past their due date, unpaginated.
pub(crate) async fn overdue(auth: AuthUser) -> Result<Json<Vec<TaskOutput>>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::Task)?;
    let mut tx = auth.tenant.begin().await?;
    let rows = own_open_tasks(&mut tx, auth.user_id.get(), None).await?;
    tx.commit().await?;
    Ok(Json(rows))
}

/// `GET /api/v1/tasks/due_soon/?days=3`: the caller's open tasks due within `days`,
/// unpaginated.
pub(crate) async fn due_soon(
    auth: AuthUser,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<TaskOutput>>, ApiError> {
    require(&auth.principal, Action::View, ResourceKind::Task)?;
    let params = list_params(query.as_deref());
    let days = int_param(&params, "days")?.unwrap_or(DUE_SOON_DAYS);
    if !(0..=MAX_DUE_SOON_DAYS).contains(&days) {
        return Err(ApiError::field(
            "days",
            format!("Ensure this value is between 0 and {MAX_DUE_SOON_DAYS}."),
        ));
    }
    let mut tx = auth.tenant.begin().await?;
    let rows = own_open_tasks(&mut tx, auth.user_id.get(), Some(days)).await?;
    tx.commit().await?;
    Ok(Json(rows))
}

// ----- mentions ----------------------------------------------------------------------------

/// One `@username` token of a comment: the name as written and its character span (`@`
/// included, end exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
struct MentionToken {
    /// The name after `@`.
    name: String,
    /// The position of `@`.
    start: usize,
    /// The position after the name.
    end: usize,
}

impl MentionToken {
    /// The names to try, longest first, with their end positions: the token as written, then
    /// without trailing `.`/`-` (so "thanks @bob." mentions `bob`).
    fn candidates(&self) -> impl Iterator<Item = (String, usize)> + '_ {
        let trimmed = self.name.trim_end_matches(['.', '-']);
        let short = (trimmed.len() < self.name.len() && !trimmed.is_empty()).then(|| {
            (
                trimmed.to_owned(),
                self.end - (self.name.len() - trimmed.len()),
            )
        });
        std::iter::once((self.name.clone(), self.end)).chain(short)
    }
}

/// A character of a mentioned username (letters, digits, `.`, `_`, `-`).
fn name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// The `@username` tokens of `text` (§8.9): `@` at the start or after a character that cannot
/// be part of a name (so an e-mail address is no mention), followed by at least one name
/// character; positions count characters.
fn mention_tokens(text: &str) -> Vec<MentionToken> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '@' && (i == 0 || !name_char(chars[i - 1])) {
            let mut j = i + 1;
            while j < chars.len() && name_char(chars[j]) {
                j += 1;
            }
            if j > i + 1 {
                out.push(MentionToken {
                    name: chars[i + 1..j].iter().collect(),
                    start: i,
                    end: j,
                });
                i = j;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// A user as a comment names them.
#[derive(Debug, Clone, sqlx::FromRow)]
struct CommentUser {
    id: i64,
    username: String,
    full_name: String,
}

/// User `id` as a comment names them.
async fn comment_user(conn: &mut PgConnection, id: i64) -> Result<Option<CommentUser>, ApiError> {
    Ok(sqlx::query_as(
        "SELECT id, username, btrim(first_name || ' ' || last_name) AS full_name
           FROM users WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// The active users any candidate name of `tokens` resolves to, by lower-cased username.
async fn mentioned_users(
    conn: &mut PgConnection,
    tokens: &[MentionToken],
) -> Result<HashMap<String, CommentUser>, ApiError> {
    let names: BTreeSet<String> = tokens
        .iter()
        .flat_map(|t| t.candidates().map(|(n, _)| n.to_lowercase()))
        .collect();
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    let users: Vec<CommentUser> = sqlx::query_as(
        "SELECT id, username, btrim(first_name || ' ' || last_name) AS full_name
           FROM users WHERE is_active AND lower(username) = ANY($1)",
    )
    .bind(names.into_iter().collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?;
    Ok(users
        .into_iter()
        .map(|u| (u.username.to_lowercase(), u))
        .collect())
}

// ----- data --------------------------------------------------------------------------------

/// The list's query parameters, validated.
#[derive(Debug, Default)]
struct ListFilters {
    assigned_to_me: bool,
    statuses: Vec<String>,
    priorities: Vec<String>,
    assigned_to: Option<i64>,
    link: Option<(i64, i64)>,
    client: Option<i64>,
    include_overdue: bool,
}

impl ListFilters {
    /// Reads the query string: `status`/`priority` may repeat (also as `status[]`) or hold
    /// comma-separated values; `content_type` and `object_id` go together.
    fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let pairs = query_pairs(query);
        let params = list_params(query);
        let mut errors = FieldErrors::default();
        let mut choices = |key: &str, allowed: &[&str]| -> Vec<String> {
            let mut out = Vec::new();
            for (k, v) in &pairs {
                if k != key && *k != format!("{key}[]") {
                    continue;
                }
                for value in v.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                    let value = value.to_ascii_uppercase();
                    if allowed.contains(&value.as_str()) {
                        out.push(value);
                    } else {
                        errors.add(key, format!("\"{value}\" is not a valid choice."));
                    }
                }
            }
            out
        };
        let statuses = choices("status", STATUSES);
        let priorities = choices("priority", PRIORITIES);
        errors.finish()?;
        let link = match (
            int_param(&params, "content_type")?,
            int_param(&params, "object_id")?,
        ) {
            (Some(ct), Some(object)) => Some((ct, object)),
            (None, None) => None,
            _ => {
                return Err(ApiError::BadRequest(
                    "content_type and object_id must be given together.".into(),
                ))
            }
        };
        Ok(Self {
            assigned_to_me: param(&params, "assigned_to_me").is_some_and(truthy),
            statuses,
            priorities,
            assigned_to: int_param(&params, "assigned_to")?,
            link,
            client: int_param(&params, "client")?,
            include_overdue: param(&params, "include_overdue").is_none_or(truthy),
        })
    }
}

/// The scope predicate of the task list: the task's own scope (pool, owners) or its linked
/// client's branch, with parameters from `$first`. Agrees with [`TaskRef::allows`].
fn scope_filter(principal: &Principal, first: usize) -> (String, PgArguments, usize) {
    let own = filter(
        principal,
        Action::View,
        ResourceKind::Task,
        &OWN_SCOPE,
        first,
    );
    let by_client = filter(
        principal,
        Action::View,
        ResourceKind::Task,
        &CLIENT_SCOPE,
        first + own.params.len(),
    );
    let mut args = PgArguments::default();
    let n = first - 1 + own.params.len() + by_client.params.len();
    // Binding integers and integer arrays cannot fail.
    let _ = push_predicate(&mut args, &own);
    let _ = push_predicate(&mut args, &by_client);
    (format!("({} OR {})", own.sql, by_client.sql), args, n)
}

/// The `WHERE` clause of the list, its arguments and the last `$n`.
fn task_filters(
    principal: &Principal,
    filters: &ListFilters,
) -> Result<(String, PgArguments, usize), ApiError> {
    let (scope, mut args, mut n) = scope_filter(principal, 1);
    let mut clauses = vec![scope];
    if filters.assigned_to_me {
        let me = principal.user_id().get();
        let branches: Vec<i64> = principal.branch_ids().iter().copied().collect();
        push_arg(&mut args, me)?;
        push_arg(&mut args, branches)?;
        clauses.push(format!(
            "(t.assigned_to_id = ${} OR t.branch_id = ANY(${}))",
            n + 1,
            n + 2
        ));
        n += 2;
    }
    if !filters.statuses.is_empty() {
        n += 1;
        push_arg(&mut args, filters.statuses.clone())?;
        clauses.push(format!("t.status = ANY(${n})"));
    }
    if !filters.priorities.is_empty() {
        n += 1;
        push_arg(&mut args, filters.priorities.clone())?;
        clauses.push(format!("t.priority = ANY(${n})"));
    }
    if let Some(user) = filters.assigned_to {
        n += 1;
        push_arg(&mut args, user)?;
        clauses.push(format!("t.assigned_to_id = ${n}"));
    }
    if let Some((ct, object)) = filters.link {
        push_arg(&mut args, ct)?;
        push_arg(&mut args, object)?;
        clauses.push(format!(
            "(t.content_type_id = ${} AND t.object_id = ${})",
            n + 1,
            n + 2
        ));
        n += 2;
    }
    if let Some(client) = filters.client {
        n += 1;
        push_arg(&mut args, client)?;
        clauses.push(format!(
            "(t.content_type_id = {CLIENT_CONTENT_TYPE} AND t.object_id = ${n})"
        ));
    }
    if !filters.include_overdue {
        clauses.push("(t.due_date >= now() OR t.status IN ('COMPLETED', 'CANCELLED'))".to_owned());
    }
    Ok((clauses.join(" AND "), args, n))
}

/// One page of the tasks `principal` may see (latest due first) and the total count.
async fn list_tasks(
    conn: &mut PgConnection,
    principal: &Principal,
    filters: &ListFilters,
    pagination: &Pagination,
) -> Result<(Vec<TaskOutput>, i64), ApiError> {
    crate::api::fetch_page(
        conn,
        TASK_SELECT,
        TASK_FROM,
        "t.due_date DESC, t.created_at DESC, t.id DESC",
        || task_filters(principal, filters),
        pagination,
    )
    .await
}

/// `user`'s own `PENDING`/`IN_PROGRESS` tasks, by due date: overdue ones (`within = None`), or
/// those due from now to `within` days from now.
async fn own_open_tasks(
    conn: &mut PgConnection,
    user: i64,
    within: Option<i64>,
) -> Result<Vec<TaskOutput>, ApiError> {
    let window = match within {
        None => "t.due_date < now()",
        Some(_) => "t.due_date >= now() AND t.due_date <= now() + make_interval(days => $2::int)",
    };
    let sql = format!(
        "{TASK_SELECT}
          WHERE t.assigned_to_id = $1 AND t.status IN ('PENDING', 'IN_PROGRESS') AND {window}
          ORDER BY t.due_date, t.id"
    );
    let mut query = sqlx::query_as(&sql).bind(user);
    if let Some(days) = within {
        query = query.bind(i32::try_from(days).unwrap_or(i32::MAX));
    }
    Ok(query.fetch_all(&mut *conn).await?)
}

/// One task by id.
async fn fetch_task(conn: &mut PgConnection, id: i64) -> Result<Option<TaskOutput>, ApiError> {
    Ok(sqlx::query_as(&format!("{TASK_SELECT} WHERE t.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

/// A task's scope (row-locked with `lock`); `None` when there is no such task.
async fn task_ref(
    conn: &mut PgConnection,
    id: i64,
    lock: bool,
) -> Result<Option<TaskRef>, ApiError> {
    let sql = format!(
        "SELECT t.branch_id, t.assigned_to_id, t.assigned_by_id, t.created_by_id,
                lc.branch_id AS client_branch, t.content_type_id, t.object_id
           FROM {TASK_FROM}
          WHERE t.id = $1{}",
        if lock { " FOR UPDATE OF t" } else { "" }
    );
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

/// A 400 on `field` unless user `id` exists; a 403 unless `principal` may see them.
async fn ensure_user(
    conn: &mut PgConnection,
    principal: &Principal,
    field: &str,
    id: i64,
) -> Result<(), ApiError> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Err(ApiError::field(
            field,
            format!("Invalid pk \"{id}\" - object does not exist."),
        ));
    }
    let branches = user_branch_ids(conn, id).await?;
    if may_touch(principal, Action::View, id, &branches) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "You cannot assign a task to a user outside your scope.".into(),
        ))
    }
}

/// A 400 on `branch_id` unless live branch `id` exists; a 403 unless `principal` may `action`
/// tasks of that branch pool.
async fn ensure_pool(
    conn: &mut PgConnection,
    principal: &Principal,
    action: Action,
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
    if check(
        principal,
        action,
        &Resource::new(ResourceKind::Task, Some(id)),
    )
    .allowed()
    {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "You cannot assign a task to a branch outside your scope.".into(),
        ))
    }
}

/// The model name of content type `id`.
async fn content_type_model(conn: &mut PgConnection, id: i32) -> Result<String, ApiError> {
    let model: Option<String> = sqlx::query_scalar("SELECT model FROM content_types WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    model.ok_or_else(|| ApiError::Internal(format!("task content type {id} is unknown")))
}

/// The `(content_type_id, object_id)` of a link to `model` `object`: the model must be a
/// linkable model of the `content_types` table (400 on `linked_entity_type`), its table must
/// exist and hold `object` (400 on `linked_entity_id`), and a client must be live and within
/// `principal`'s scope (400 as if it did not exist).
async fn resolve_link(
    conn: &mut PgConnection,
    principal: &Principal,
    model: &str,
    object: i64,
) -> Result<(i32, i64), ApiError> {
    let model = model.trim().to_ascii_lowercase();
    let ct: Option<i32> = sqlx::query_scalar(
        "SELECT id FROM content_types WHERE app_label = 'immigration' AND model = $1",
    )
    .bind(&model)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(ct) = ct else {
        return Err(ApiError::field(
            "linked_entity_type",
            format!("Invalid entity type: {model}"),
        ));
    };
    let table = LINKABLE
        .iter()
        .find(|(m, _)| *m == model)
        .map(|(_, table)| *table);
    let present = match table {
        Some(table) => {
            sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
                .bind(table)
                .fetch_one(&mut *conn)
                .await?
        }
        None => false,
    };
    let Some(table) = table.filter(|_| present) else {
        return Err(ApiError::field(
            "linked_entity_type",
            format!("Entity type {model} cannot be linked yet."),
        ));
    };
    let missing = || {
        ApiError::field(
            "linked_entity_id",
            format!("{model} with id {object} does not exist."),
        )
    };
    if ct == CLIENT_CONTENT_TYPE {
        crate::api::crm::clients::client_in_scope(
            conn,
            principal,
            Action::View,
            ResourceKind::Client,
            object,
            false,
            missing,
        )
        .await?;
        return Ok((ct, object));
    }
    let application = match table {
        "visa_applications" => Some((
            "SELECT client_id FROM visa_applications WHERE id = $1",
            ResourceKind::VisaApplication,
        )),
        "college_applications" => Some((
            "SELECT client_id FROM college_applications WHERE id = $1 AND deleted_at IS NULL",
            ResourceKind::CollegeApplication,
        )),
        _ => None,
    };
    if let Some((client_sql, kind)) = application {
        // An application follows its client: out of scope reads as missing.
        let client: Option<i64> = sqlx::query_scalar(client_sql)
            .bind(object)
            .fetch_optional(&mut *conn)
            .await?;
        crate::api::crm::clients::client_in_scope(
            conn,
            principal,
            Action::View,
            kind,
            client.ok_or_else(missing)?,
            false,
            missing,
        )
        .await?;
        return Ok((ct, object));
    }
    let live = if table == "branches" {
        " AND deleted_at IS NULL"
    } else {
        ""
    };
    // `table` comes from LINKABLE, never from the request.
    let exists: bool = sqlx::query_scalar(&format!(
        "SELECT EXISTS (SELECT 1 FROM {table} WHERE id = $1{live})"
    ))
    .bind(object)
    .fetch_one(&mut *conn)
    .await?;
    if exists {
        Ok((ct, object))
    } else {
        Err(missing())
    }
}

/// What a new task is assigned to and linked with, and who creates it.
struct NewTask {
    assignee: Option<i64>,
    branch: Option<i64>,
    assigned_by: i64,
    link: Option<(i32, i64)>,
    user: i64,
}

/// Inserts a `PENDING` task; returns its id.
async fn insert_task(
    conn: &mut PgConnection,
    input: &TaskInput,
    new: NewTask,
) -> Result<i64, ApiError> {
    let tags = match &input.tags {
        Patch::Set(tags) => json!(tags),
        _ => json!([]),
    };
    Ok(sqlx::query_scalar(
        "INSERT INTO tasks (title, detail, priority, due_date, assigned_to_id, branch_id,
                            assigned_by_id, tags, content_type_id, object_id,
                            created_by_id, updated_by_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
         RETURNING id",
    )
    .bind(input.title.as_deref().unwrap_or_default())
    .bind(input.detail.as_deref().unwrap_or_default())
    .bind(input.priority.as_deref().unwrap_or("MEDIUM"))
    .bind(input.due_date)
    .bind(new.assignee)
    .bind(new.branch)
    .bind(new.assigned_by)
    .bind(tags)
    .bind(new.link.map(|(ct, _)| ct))
    .bind(new.link.map(|(_, object)| object))
    .bind(new.user)
    .fetch_one(&mut *conn)
    .await?)
}

/// A task's assignment and link after an update.
struct Assignment {
    assignee: Option<i64>,
    branch: Option<i64>,
    assigned_by: Option<i64>,
    link: Option<(i32, i64)>,
}

/// Applies an update (absent fields unchanged), recording `user` as the last updater. Moving
/// into `COMPLETED` sets `completed_at`, moving out of it clears it.
async fn update_task(
    conn: &mut PgConnection,
    id: i64,
    input: &TaskInput,
    assignment: Assignment,
    user: i64,
) -> Result<(), ApiError> {
    let tags = match &input.tags {
        Patch::Set(tags) => Some(json!(tags)),
        Patch::Null => Some(json!([])),
        Patch::Absent => None,
    };
    sqlx::query(
        "UPDATE tasks
            SET title = COALESCE($2, title),
                detail = COALESCE($3, detail),
                priority = COALESCE($4, priority),
                completed_at = CASE
                    WHEN $5::text IS NULL OR $5 = status THEN completed_at
                    WHEN $5 = 'COMPLETED' THEN now()
                    ELSE NULL END,
                status = COALESCE($5, status),
                due_date = COALESCE($6, due_date),
                tags = COALESCE($7, tags),
                assigned_to_id = $8,
                branch_id = $9,
                assigned_by_id = $10,
                content_type_id = $11,
                object_id = $12,
                updated_by_id = $13,
                updated_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(input.title.as_deref())
    .bind(input.detail.as_deref())
    .bind(input.priority.as_deref())
    .bind(input.status.as_deref())
    .bind(input.due_date)
    .bind(tags)
    .bind(assignment.assignee)
    .bind(assignment.branch)
    .bind(assignment.assigned_by)
    .bind(assignment.link.map(|(ct, _)| ct))
    .bind(assignment.link.map(|(_, object)| object))
    .bind(user)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Sets a task's status to `COMPLETED` (stamping `completed_at` unless already completed) or
/// `CANCELLED` (clearing it), recording `user`.
async fn set_status(
    conn: &mut PgConnection,
    id: i64,
    status: &str,
    user: i64,
) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE tasks
            SET completed_at = CASE
                    WHEN $2 <> 'COMPLETED' THEN NULL
                    WHEN status = 'COMPLETED' THEN COALESCE(completed_at, now())
                    ELSE now() END,
                status = $2, updated_by_id = $3, updated_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(user)
    .execute(&mut *conn)
    .await?;
    Ok(())
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

    fn names(text: &str) -> Vec<(String, usize, usize)> {
        mention_tokens(text)
            .into_iter()
            .map(|t| (t.name, t.start, t.end))
            .collect()
    }

    #[test]
    fn mentions_are_at_signs_followed_by_name_characters_outside_email_addresses() {
        assert_eq!(
            names("@ann and @bob_x, see mail@example.com"),
            vec![("ann".into(), 0, 4), ("bob_x".into(), 9, 15)]
        );
        assert_eq!(names("(@j.doe-2) @ @"), vec![("j.doe-2".into(), 1, 9)]);
        assert_eq!(names("héllo @zoë!"), vec![("zoë".into(), 6, 10)]);
    }

    #[test]
    fn a_trailing_full_stop_is_tried_last() {
        let token = &mention_tokens("thanks @bob.")[0];
        let candidates: Vec<_> = token.candidates().collect();
        assert_eq!(candidates, vec![("bob.".into(), 12), ("bob".into(), 11)]);
    }

    #[test]
    fn a_create_needs_title_detail_and_due_date_and_never_both_assignments() {
        let err = task_input(&body(json!({})), true).err();
        let Some(ApiError::Validation(fields)) = err else {
            panic!("expected a validation error");
        };
        assert_eq!(
            fields.keys().map(String::as_str).collect::<Vec<_>>(),
            vec!["detail", "due_date", "title"]
        );
        let both = task_input(
            &body(
                json!({"title": "t", "detail": "d", "due_date": "2030-01-01T00:00:00Z",
                         "assigned_to": 1, "branch_id": 2}),
            ),
            true,
        )
        .err();
        let Some(ApiError::Validation(fields)) = both else {
            panic!("expected a validation error");
        };
        assert!(fields.contains_key("non_field_errors"));
    }
}
