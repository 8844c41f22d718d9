//! The tasks screen: mine (assigned to me or to a branch pool of mine), everything I can see,
//! overdue and due soon; status and priority filters; claim a pool task, complete or cancel
//! one — each the API's operation from [`crate::api::crm::tasks`].
//!
//! A button is rendered only where the API's rule would let the user act (claim: an
//! unassigned task in a pool of one of the user's branches; complete and cancel: the assignee
//! or the assigner of an open task); the operation decides anyway.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::Json;
use leopard_rbac::{Action, ResourceKind};
use maud::{html, Markup};

use super::widgets::{action_button, chip, display, may, minute, page, pager, Query};
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
                            td title=(task.detail) { (task.title) }
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
        div.toolbar { h1.grow { "Tasks" } }
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
