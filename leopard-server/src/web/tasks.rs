//! The tasks screen: mine (assigned to me or to a branch pool of mine), everything I can see,
//! overdue and due soon; status and priority filters; claim a pool task, complete or cancel
//! one — each the API's operation from [`crate::api::crm::tasks`].
//!
//! A task's page (`/tasks/{id}/`) shows its details, its actions and its comments, with a form
//! adding one through the API's `add_comment/` (whose `@username` mentions notify the users
//! named, exactly as over the API); `/tasks/new/` (`?client=` preselects the linked client)
//! creates one through the API's create, with inline errors.
//!
//! A button is rendered only where the API's rule would let the user act (claim: an
//! unassigned task in a pool of one of the user's branches; complete and cancel: the assignee
//! or the assigner of an open task); the operation decides anyway.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use leopard_http::JsonBody;
use leopard_rbac::{Action, ResourceKind};
use maud::{html, Markup};
use serde_json::{json, Map, Value};

use super::options;
use super::widgets::{
    action_button, chip, csrf_field, display, input, may, minute, page, pager, select, textarea,
    FormErrors, Query,
};
use super::{error_page, session::see_other, WebForm, WebUser};
use crate::api::crm::tasks::{self as api, TaskOutput};
use crate::app::AppState;

const VIEWS: &[(&str, &str)] = &[
    ("mine", "Mine and my pools"),
    ("all", "All I can see"),
    ("overdue", "Overdue"),
    ("due_soon", "Due soon"),
];
const STATUSES: &[&str] = &[
    "PENDING",
    "IN_PROGRESS",
    "COMPLETED",
    "CANCELLED",
    "OVERDUE",
];
const PRIORITIES: &[&str] = &["LOW", "MEDIUM", "HIGH", "URGENT"];

fn is_open(task: &TaskOutput) -> bool {
    !matches!(task.status.as_str(), "COMPLETED" | "CANCELLED")
}

/// The rows of a task table with their actions (also the client page's tasks tab).
pub(crate) fn table(user: &WebUser, rows: &[TaskOutput]) -> Markup {
    let principal = &user.auth.principal;
    let me = user.auth.user_id.get();
    let may_change = may(principal, Action::Change, ResourceKind::Task);
    html! {
        div.table-wrap {
            table.grid {
                thead { tr {
                    th scope="col" { "Title" } th scope="col" { "Priority" } th scope="col" { "Status" }
                    th scope="col" { "Due" } th scope="col" { "Assigned to" } th scope="col" { "Linked to" }
                    th scope="col" { "Actions" }
                } }
                tbody {
                    @for task in rows {
                        tr {
                            td title=(task.detail) { a href={ "/tasks/" (task.id) "/" } { (task.title) } }
                            td { (chip(&task.priority, &task.priority_display)) }
                            td { (chip(&task.status, &task.status_display)) }
                            td { (minute(&task.due_date)) }
                            td {
                                @if let Some(name) = &task.assigned_to_full_name { (name) }
                                @else if let Some(branch) = &task.branch_name { "Pool: " (branch) }
                                @else { "—" }
                            }
                            td {
                                @if let (Some("client"), Some(id)) = (task.linked_entity_type.as_deref(), task.linked_entity_id) {
                                    a href={ "/clients/" (id) "/" } { (task.linked_entity_name.as_deref().unwrap_or("Client")) }
                                } @else if let Some(name) = &task.linked_entity_name { (name) }
                            }
                            td {
                                @if may_change && is_open(task) {
                                    @if task.assigned_to.is_none() && task.branch_id.is_some_and(|b| principal.branch_ids().contains(&b)) {
                                        (action_button(user, &format!("/tasks/{}/claim/", task.id), "Claim", None))
                                    }
                                    @if task.assigned_to == Some(me) || task.assigned_by == Some(me) {
                                        (action_button(user, &format!("/tasks/{}/complete/", task.id), "Complete", None))
                                        " "
                                        (action_button(user, &format!("/tasks/{}/cancel/", task.id), "Cancel", Some("Cancel this task?")))
                                    }
                                }
                            }
                        }
                    }
                    @if rows.is_empty() { tr.empty { td colspan="7" { "No tasks." } } }
                }
            }
        }
    }
}

/// `GET /tasks/?view=`.
pub(crate) async fn list(user: WebUser, RawQuery(raw): RawQuery) -> Response {
    let query = Query::parse(raw.as_deref());
    let view = query.get("view").unwrap_or("mine").to_owned();
    let auth = user.auth.clone();
    let mut api_query = Query(
        query
            .0
            .iter()
            .filter(|(k, _)| k != "view")
            .cloned()
            .collect(),
    );
    let result = match view.as_str() {
        "overdue" => api::overdue(auth).await.map(|Json(rows)| {
            let count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
            (rows, count, false)
        }),
        "due_soon" => api::due_soon(auth, RawQuery(None)).await.map(|Json(rows)| {
            let count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
            (rows, count, false)
        }),
        other => {
            if other == "mine" {
                api_query.0.push(("assigned_to_me".into(), "true".into()));
            }
            api::list(
                auth,
                api_query.pagination("/tasks/"),
                RawQuery(Some(api_query.raw())),
            )
            .await
            .map(|Json(page)| (page.results, page.count, true))
        }
    };
    let (rows, count, paged) = match result {
        Ok(rows) => rows,
        Err(err) => return error_page(&err, Some(&user)),
    };
    let body = html! {
        div.toolbar {
            h1.grow { "Tasks" }
            @if may(&user.auth.principal, Action::Add, ResourceKind::Task) {
                a.button.primary href="/tasks/new/" { "New task" }
            }
        }
        nav.tabs aria-label="Task views" {
            @for (key, label) in VIEWS {
                @if *key == view {
                    a href={ "?view=" (key) } aria-current="page" { (label) }
                } @else {
                    a href={ "?view=" (key) } { (label) }
                }
            }
        }
        @if paged {
            form.toolbar method="get" action="/tasks/" aria-label="Filter tasks" {
                input type="hidden" name="view" value=(view);
                label.sr-only for="f-status" { "Status" }
                select #f-status name="status" data-autosubmit {
                    option value="" { "Any status" }
                    @for status in STATUSES {
                        option value=(status) selected[query.get("status") == Some(*status)] { (display(status)) }
                    }
                }
                label.sr-only for="f-priority" { "Priority" }
                select #f-priority name="priority" data-autosubmit {
                    option value="" { "Any priority" }
                    @for priority in PRIORITIES {
                        option value=(priority) selected[query.get("priority") == Some(*priority)] { (display(priority)) }
                    }
                }
                button type="submit" data-js-hide { "Filter" }
            }
        }
        (table(&user, &rows))
        @if paged { (pager(&query, count)) }
    };
    page(&user, "Tasks", "tasks", body)
}

/// `POST /tasks/{id}/{claim|complete|cancel}/`.
pub(crate) async fn act(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    form: WebForm,
) -> Response {
    let auth = form.user.auth.clone();
    let result = match action.as_str() {
        "claim" => api::claim(State(state), auth, Path(id)).await,
        "complete" => api::complete(State(state), auth, Path(id)).await,
        "cancel" => api::cancel(State(state), auth, Path(id)).await,
        _ => {
            return error_page(
                &leopard_http::ApiError::NotFound("Page not found.".into()),
                Some(&form.user),
            )
        }
    };
    match result {
        Ok(_) => see_other(
            form.get("_return")
                .filter(|r| r.starts_with('/') && !r.starts_with("//"))
                .unwrap_or("/tasks/"),
        ),
        Err(err) => error_page(&err, Some(&form.user)),
    }
}

// ----- a task's page: details, comments, mentions --------------------------------------------

/// Whether the API's comment rule would let `user` comment on `task`: its assignee or
/// assigner, a member of its branch pool, or someone who may change tasks (the task is in
/// scope, or the page would be a 404). The operation decides anyway.
fn may_comment(user: &WebUser, task: &TaskOutput) -> bool {
    let principal = &user.auth.principal;
    let me = user.auth.user_id.get();
    task.assigned_to == Some(me)
        || task.assigned_by == Some(me)
        || task
            .branch_id
            .is_some_and(|b| principal.branch_ids().contains(&b))
        || may(principal, Action::Change, ResourceKind::Task)
}

/// A comment's text with its `@mentions` (the API's character spans) in bold.
fn comment_text(text: &str, mentions: Option<&Vec<Value>>) -> Markup {
    let chars: Vec<char> = text.chars().collect();
    let position = |m: &Value, key: &str| {
        m.get(key)
            .and_then(Value::as_u64)
            .and_then(|p| usize::try_from(p).ok())
    };
    let mut spans: Vec<(usize, usize)> = mentions
        .map(|list| {
            list.iter()
                .filter_map(|m| Some((position(m, "start_pos")?, position(m, "end_pos")?)))
                .filter(|(start, end)| start < end && *end <= chars.len())
                .collect()
        })
        .unwrap_or_default();
    spans.sort_unstable();
    let mut parts: Vec<(bool, String)> = Vec::new();
    let mut at = 0;
    for (start, end) in spans {
        if start < at {
            continue;
        }
        parts.push((false, chars[at..start].iter().collect()));
        parts.push((true, chars[start..end].iter().collect()));
        at = end;
    }
    parts.push((false, chars[at..].iter().collect()));
    html! {
        @for (mention, part) in &parts {
            @if *mention { b.mention { (part) } } @else { (part) }
        }
    }
}

/// The task's actions (claim, complete, cancel) where the API's rules would allow them,
/// returning to `back`.
fn task_actions(user: &WebUser, task: &TaskOutput, back: &str) -> Markup {
    let principal = &user.auth.principal;
    let me = user.auth.user_id.get();
    let form = |action: &str, label: &str, confirm: Option<&str>| {
        html! {
            form.inline method="post" action={ "/tasks/" (task.id) "/" (action) "/" } data-confirm=[confirm] {
                (csrf_field(user))
                input type="hidden" name="_return" value=(back);
                button type="submit" { (label) }
            }
        }
    };
    html! {
        @if may(principal, Action::Change, ResourceKind::Task) && is_open(task) {
            @if task.assigned_to.is_none() && task.branch_id.is_some_and(|b| principal.branch_ids().contains(&b)) {
                (form("claim", "Claim", None))
            }
            @if task.assigned_to == Some(me) || task.assigned_by == Some(me) {
                (form("complete", "Complete", None))
                (form("cancel", "Cancel task", Some("Cancel this task?")))
            }
        }
    }
}

/// `GET /tasks/{id}/`.
pub(crate) async fn detail(user: WebUser, Path(id): Path<String>) -> Response {
    detail_page(&user, &id, &FormErrors::default(), "").await
}

async fn detail_page(user: &WebUser, id: &str, errors: &FormErrors, draft: &str) -> Response {
    let task = match api::retrieve(user.auth.clone(), Path(id.to_owned())).await {
        Ok(Json(task)) => task,
        Err(err) => return error_page(&err, Some(user)),
    };
    let back = format!("/tasks/{}/", task.id);
    let name = |full: &Option<String>, username: &Option<String>| {
        full.clone()
            .filter(|n| !n.is_empty())
            .or_else(|| username.clone())
            .unwrap_or_default()
    };
    let assigned = match (&task.assigned_to_name, &task.branch_name) {
        (Some(_), _) => name(&task.assigned_to_full_name, &task.assigned_to_name),
        (None, Some(branch)) => format!("Pool: {branch}"),
        (None, None) => String::new(),
    };
    let tags: Vec<&str> = task
        .tags
        .as_array()
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let props: Vec<(&str, String)> = vec![
        ("Due", minute(&task.due_date)),
        ("Assigned to", assigned),
        (
            "Assigned by",
            name(&task.assigned_by_full_name, &task.assigned_by_name),
        ),
        ("Tags", tags.join(", ")),
        (
            "Created",
            format!(
                "{} by {}",
                minute(&task.created_at),
                name(&task.created_by_full_name, &task.created_by_name)
            ),
        ),
        ("Updated", minute(&task.updated_at)),
        (
            "Completed",
            task.completed_at.as_deref().map(minute).unwrap_or_default(),
        ),
    ];
    let comments: &[Value] = task.comments.as_array().map_or(&[], Vec::as_slice);
    let field = |c: &Value, key: &str| c.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
    let messages = errors.of("comment");
    let body = html! {
        div.toolbar {
            h1.grow { (task.title) " " (chip(&task.priority, &task.priority_display)) " " (chip(&task.status, &task.status_display)) }
            (task_actions(user, &task, &back))
            a.button href="/tasks/" { "All tasks" }
        }
        (errors.alert(&["comment"]))
        div.cards {
            div.card.span2 {
                h2 { "Details" }
                dl.props {
                    dt { "Linked to" }
                    dd {
                        @if let (Some("client"), Some(cid)) = (task.linked_entity_type.as_deref(), task.linked_entity_id) {
                            a href={ "/clients/" (cid) "/" } { (task.linked_entity_name.as_deref().unwrap_or("Client")) }
                        } @else if let Some(linked) = &task.linked_entity_name { (linked) }
                        @else { "—" }
                    }
                    @for (label, value) in &props {
                        dt { (label) } dd { @if value.is_empty() { "—" } @else { (value) } }
                    }
                }
                h2 { "What to do" }
                p.pre { (task.detail) }
            }
            div.card.span2 #comments role="region" aria-label="Comments" {
                h2 { "Comments " span.muted { (comments.len()) } }
                ol.comments {
                    @for c in comments {
                        li {
                            div.meta {
                                b { @let full = field(c, "full_name"); @if full.is_empty() { (field(c, "username")) } @else { (full) } }
                                " " span.muted { "@" (field(c, "username")) " · " (minute(&field(c, "created_at"))) }
                            }
                            p.pre { (comment_text(&field(c, "text"), c.get("mentions").and_then(Value::as_array))) }
                        }
                    }
                    @if comments.is_empty() { li.muted { "No comments yet." } }
                }
                @if may_comment(user, &task) {
                    form.comment-form method="post" action={ "/tasks/" (task.id) "/comments/" } novalidate {
                        (csrf_field(user))
                        div class={ "field" @if !messages.is_empty() { " invalid" } } {
                            label for="f-comment" { "Add a comment (mention a colleague with @username: they are notified)" }
                            textarea #f-comment name="comment" rows="3" maxlength="5000"
                                aria-invalid=[(!messages.is_empty()).then_some("true")] { (draft) }
                            @if !messages.is_empty() { p.error { (messages.join(" ")) } }
                        }
                        button.primary type="submit" { "Add comment" }
                    }
                }
            }
        }
    };
    let mut response = page(user, &task.title, "tasks", body);
    if !errors.fields.is_empty() || errors.form.is_some() {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    response
}

/// `POST /tasks/{id}/comments/`: the API's `add_comment/`, which records the `@mentions` and
/// notifies each mentioned user.
pub(crate) async fn comment(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm,
) -> Response {
    let text = form.fields.get("comment").cloned().unwrap_or_default();
    let body = json!({ "comment": text });
    match api::add_comment(
        State(state),
        form.user.auth.clone(),
        Path(id.clone()),
        JsonBody(body),
    )
    .await
    {
        Ok(Json(task)) => see_other(&format!("/tasks/{}/#comments", task.id)),
        Err(err) => match FormErrors::from_error(&err) {
            Some(errors) => detail_page(&form.user, &id, &errors, &text).await,
            None => error_page(&err, Some(&form.user)),
        },
    }
}

// ----- a new task ----------------------------------------------------------------------------

/// Renders the task form with `values` and `errors`.
async fn render_form(
    user: &WebUser,
    values: &HashMap<String, String>,
    errors: &FormErrors,
) -> Response {
    let auth = &user.auth;
    let choices = async {
        tokio::try_join!(
            options::assignees(auth),
            options::branches(auth),
            options::clients(auth)
        )
    };
    let (assignees, branches, clients) = match choices.await {
        Ok(choices) => choices,
        Err(err) => return error_page(&err, Some(user)),
    };
    let value = |name: &str| values.get(name).cloned().unwrap_or_default();
    let priorities: Vec<(String, String)> = PRIORITIES
        .iter()
        .map(|p| ((*p).to_owned(), display(p)))
        .collect();
    let shown = [
        "title",
        "detail",
        "priority",
        "due_date",
        "assigned_to",
        "branch_id",
        "linked_entity_id",
        "linked_entity_type",
        "tags",
    ];
    let body = html! {
        h1 { "New task" }
        (errors.alert(&shown))
        form.fields method="post" action="/tasks/new/" novalidate {
            (csrf_field(user))
            div.wide { (input("title", "Title", "text", &value("title"), errors, true)) }
            (select("priority", "Priority", &priorities, &value("priority"), None, errors))
            (input("due_date", "Due (UTC)", "datetime-local", &value("due_date"), errors, true))
            (select("assigned_to", "Assign to a person", &assignees, &value("assigned_to"), Some("—"), errors))
            @if !branches.is_empty() {
                (select("branch_id", "…or to a branch pool", &branches, &value("branch_id"), Some("—"), errors))
            }
            @if !clients.is_empty() {
                (select("linked_entity_id", "Client", &clients, &value("linked_entity_id"), Some("No client"), errors))
            }
            (input("tags", "Tags (comma-separated)", "text", &value("tags"), errors, false))
            (textarea("detail", "What to do *", &value("detail"), errors))
            div.wide { button.primary type="submit" { "Create task" } " " a href="/tasks/" { "Cancel" } }
        }
    };
    let mut response = page(user, "New task", "tasks", body);
    if !errors.fields.is_empty() || errors.form.is_some() {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    response
}

/// `GET /tasks/new/[?client=]`: due tomorrow at 09:00 (UTC), medium priority.
pub(crate) async fn new(user: WebUser, RawQuery(raw): RawQuery) -> Response {
    if let Err(err) = crate::api::require(&user.auth.principal, Action::Add, ResourceKind::Task) {
        return error_page(&err, Some(&user));
    }
    let query = Query::parse(raw.as_deref());
    let tomorrow = chrono::Utc::now()
        .date_naive()
        .succ_opt()
        .unwrap_or_default();
    let mut values = HashMap::from([
        ("priority".to_owned(), "MEDIUM".to_owned()),
        ("due_date".to_owned(), format!("{tomorrow}T09:00")),
    ]);
    if let Some(client) = query.get("client") {
        values.insert("linked_entity_id".into(), client.to_owned());
    }
    render_form(&user, &values, &FormErrors::default()).await
}

/// The JSON body of the task form: empty fields left out (the API's defaults or its
/// "required"), the tags split at commas, a chosen client as the task's link.
fn form_body(form: &WebForm) -> Map<String, Value> {
    let mut body = Map::new();
    for name in ["title", "detail", "priority", "due_date"] {
        if let Some(value) = form.get(name) {
            body.insert(name.to_owned(), Value::from(value));
        }
    }
    for name in ["assigned_to", "branch_id", "linked_entity_id"] {
        if let Some(value) = form.get(name) {
            let id = value
                .parse::<i64>()
                .map_or_else(|_| Value::from(value), Value::from);
            body.insert(name.to_owned(), id);
        }
    }
    if body.contains_key("linked_entity_id") {
        body.insert("linked_entity_type".into(), Value::from("client"));
    }
    if let Some(tags) = form.get("tags") {
        let tags: Vec<Value> = tags
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(Value::from)
            .collect();
        body.insert("tags".into(), Value::Array(tags));
    }
    body
}

/// `POST /tasks/new/`.
pub(crate) async fn create(State(state): State<AppState>, form: WebForm) -> Response {
    let body = form_body(&form);
    match api::create(
        State(state),
        form.user.auth.clone(),
        JsonBody(Value::Object(body)),
    )
    .await
    {
        Ok((_, Json(task))) => see_other(&format!("/tasks/{}/", task.id)),
        Err(err) => match FormErrors::from_error(&err) {
            Some(errors) => {
                let values: HashMap<String, String> = form
                    .fields
                    .iter()
                    .filter(|(k, _)| *k != "csrf")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                render_form(&form.user, &values, &errors).await
            }
            None => error_page(&err, Some(&form.user)),
        },
    }
}
