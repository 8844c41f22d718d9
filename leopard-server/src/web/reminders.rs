//! The reminders screen (`/reminders/`): the reminders the user may see (open, done or all;
//! by client; sortable; paged), create (`new/`, `?client=` preselects), edit, mark done and
//! delete.
//!
//! Every read and write is the API's operation from [`crate::api::crm::reminders`] with the
//! session's [`leopard_http::AuthUser`]: a reminder follows its client's branch (out of scope:
//! the API's 404), links only to a live client in scope (the API's 400 on `object_id`), and
//! its events are the API's. The note is `meta_info.note_content`, where the original web
//! client keeps it; the other keys of `meta_info` are left as they are.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{NaiveDateTime, Utc};
use leopard_http::{ApiError, JsonBody, Pagination};
use leopard_rbac::{Action, ResourceKind};
use maud::html;
use serde_json::{Map, Value};

use super::options::{self, keeping, Options};
use super::widgets::{
    action_button, chip, csrf_field, input, may, page, pager, select, sort_header, textarea,
    FormErrors, Query,
};
use super::{error_page, session::see_other, WebForm, WebUser};
use crate::api::crm::reminders::{self as api, ReminderOutput, CLIENT_CONTENT_TYPE};
use crate::app::AppState;

/// The list's tabs: `(status, label)` over the API's `is_completed`.
const TABS: &[(&str, &str)] = &[("open", "Open"), ("done", "Done"), ("all", "All")];

/// The default and largest page of the list (the API caps reminders at 50).
const PAGE_SIZE: (i64, i64) = (25, 50);

/// The key of `meta_info` holding the note.
const NOTE: &str = "note_content";

/// "YYYY-MM-DD HH:MM" of a reminder's date and time.
fn due(r: &ReminderOutput) -> String {
    match (&r.reminder_date, &r.reminder_time) {
        (Some(d), Some(t)) => format!("{d} {}", t.get(..5).unwrap_or(t)),
        (Some(d), None) => d.clone(),
        (None, Some(t)) => t.get(..5).unwrap_or(t).to_owned(),
        (None, None) => String::new(),
    }
}

/// Whether an open reminder's moment has passed (a date without a time is due at its end).
fn overdue(r: &ReminderOutput) -> bool {
    let Some(date) = r.reminder_date.as_deref() else {
        return false;
    };
    let time = r.reminder_time.as_deref().unwrap_or("23:59:59");
    !r.is_completed
        && NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y-%m-%d %H:%M:%S")
            .is_ok_and(|at| at < Utc::now().naive_utc())
}

/// The note of a reminder.
fn note(r: &ReminderOutput) -> &str {
    r.meta_info.get(NOTE).and_then(Value::as_str).unwrap_or("")
}

// ----- list --------------------------------------------------------------------------------

/// `GET /reminders/?status=open|done|all&object_id=&ordering=&page=&page_size=`.
pub(crate) async fn list(user: WebUser, RawQuery(raw): RawQuery) -> Response {
    let mut query = Query::parse(raw.as_deref());
    let status = query.get("status").unwrap_or("open").to_owned();
    let completed = match status.as_str() {
        "open" => Some("false"),
        "done" => Some("true"),
        "all" => None,
        _ => {
            let err = ApiError::field("status", "The status is open, done or all.");
            return error_page(&err, Some(&user));
        }
    };
    // The page size is the pager's and the API's both: capped where the API caps it.
    let size = query
        .get("page_size")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(PAGE_SIZE.0)
        .clamp(1, PAGE_SIZE.1);
    query.0.retain(|(k, _)| k != "page_size");
    query.0.push(("page_size".into(), size.to_string()));
    let number = query
        .get("page")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(1);
    let mut api_query: Vec<(String, String)> = query
        .0
        .iter()
        .filter(|(k, _)| k != "status")
        .cloned()
        .collect();
    if let Some(completed) = completed {
        api_query.push(("is_completed".into(), completed.into()));
    }
    let pagination = Pagination::new(number, size, "/reminders/".into(), api_query.clone());
    let auth = &user.auth;
    let rows = match api::list(
        auth.clone(),
        pagination,
        RawQuery(Some(Query(api_query).raw())),
    )
    .await
    {
        Ok(Json(rows)) => rows,
        Err(err) => return error_page(&err, Some(&user)),
    };
    let ids: Vec<i64> = rows.results.iter().map(|r| r.object_id).collect();
    let names =
        async { tokio::try_join!(options::client_names(auth, &ids), options::clients(auth)) };
    let (names, clients): (HashMap<String, String>, Options) = match names.await {
        Ok((names, clients)) => (names.into_iter().collect(), clients),
        Err(err) => return error_page(&err, Some(&user)),
    };
    let principal = &auth.principal;
    let may_change = may(principal, Action::Change, ResourceKind::Reminder);
    let may_delete = may(principal, Action::Delete, ResourceKind::Reminder);
    let may_client = may(principal, Action::View, ResourceKind::Client);
    let here = format!("/reminders/{}", query.with("page", query.get("page")));
    let body = html! {
        div.toolbar {
            h1.grow { "Reminders" }
            @if may(principal, Action::Add, ResourceKind::Reminder) && may_client {
                a.button.primary href={ "/reminders/new/" @if let Some(c) = query.get("object_id") { "?client=" (c) } } { "New reminder" }
            }
        }
        nav.tabs aria-label="Reminder status" {
            @for (key, label) in TABS {
                @if *key == status {
                    a href=(query.with("status", Some(key))) aria-current="page" { (label) }
                } @else {
                    a href=(query.with("status", Some(key))) { (label) }
                }
            }
        }
        @if !clients.is_empty() {
            form.toolbar method="get" action="/reminders/" aria-label="Filter reminders" {
                input type="hidden" name="status" value=(status);
                label.sr-only for="f-client" { "Client" }
                select #f-client name="object_id" data-autosubmit {
                    option value="" { "All clients" }
                    @for (value, label) in &clients {
                        option value=(value) selected[query.get("object_id") == Some(value.as_str())] { (label) }
                    }
                }
                button type="submit" data-js-hide { "Filter" }
            }
        }
        div.table-wrap {
            table.grid {
                thead { tr {
                    (sort_header(&query, "Reminder", "title"))
                    th scope="col" { "Client" }
                    (sort_header(&query, "Due", "reminder_date"))
                    th scope="col" { "Status" }
                    th scope="col" { "Note" }
                    th scope="col" { "Created by" }
                    th scope="col" { "Actions" }
                } }
                tbody {
                    @for r in &rows.results {
                        tr {
                            td { (r.title) }
                            td {
                                @if let Some(name) = names.get(&r.object_id.to_string()) {
                                    a href={ "/clients/" (r.object_id) "/" } { (name) }
                                } @else { "Client #" (r.object_id) }
                            }
                            td { (due(r)) }
                            td {
                                @if r.is_completed { (chip("COMPLETED", "Done")) }
                                @else if overdue(r) { (chip("OVERDUE", "Overdue")) }
                                @else { (chip("PENDING", "Open")) }
                            }
                            td title=(note(r)) { (note(r)) }
                            td { (r.created_by_name.as_deref().unwrap_or("—")) }
                            td {
                                @if may_change && !r.is_completed {
                                    form.inline method="post" action={ "/reminders/" (r.id) "/done/" } {
                                        (csrf_field(&user))
                                        input type="hidden" name="_return" value=(here);
                                        button type="submit" { "Done" }
                                    }
                                    " "
                                }
                                @if may_change { a.button href={ "/reminders/" (r.id) "/edit/" } { "Edit" } " " }
                                @if may_delete {
                                    (action_button(&user, &format!("/reminders/{}/delete/", r.id), "Delete", Some("Delete this reminder?")))
                                }
                            }
                        }
                    }
                    @if rows.results.is_empty() { tr.empty { td colspan="7" { "No reminders." } } }
                }
            }
        }
        (pager(&query, rows.count))
    };
    page(&user, "Reminders", "reminders", body)
}

// ----- create and edit ---------------------------------------------------------------------

/// The form's values by field name.
type Values = HashMap<String, String>;

fn values_of(r: &ReminderOutput) -> Values {
    HashMap::from([
        ("object_id".into(), r.object_id.to_string()),
        ("title".into(), r.title.clone()),
        (
            "reminder_date".into(),
            r.reminder_date.clone().unwrap_or_default(),
        ),
        (
            "reminder_time".into(),
            r.reminder_time
                .as_deref()
                .map(|t| t.get(..5).unwrap_or(t).to_owned())
                .unwrap_or_default(),
        ),
        ("note".into(), note(r).to_owned()),
    ])
}

/// The JSON body of the form. On create an empty field is left out (the API's "required");
/// on edit an empty date or time is `null`. The note goes into `meta_info` (over `meta`, the
/// stored one on edit).
fn form_body(form: &WebForm, meta: Option<&Value>, create: bool) -> Map<String, Value> {
    let mut body = Map::new();
    if create {
        body.insert("content_type".into(), Value::from(CLIENT_CONTENT_TYPE));
    }
    for name in ["object_id", "title", "reminder_date", "reminder_time"] {
        let Some(raw) = form.fields.get(name) else {
            continue;
        };
        let value = raw.trim();
        let json = if value.is_empty() {
            if create {
                continue;
            }
            match name {
                "title" => Value::from(""),
                "object_id" => continue,
                _ => Value::Null,
            }
        } else if name == "object_id" {
            value
                .parse::<i64>()
                .map_or_else(|_| Value::from(value), Value::from)
        } else {
            Value::from(value)
        };
        body.insert(name.to_owned(), json);
    }
    let mut meta = match meta {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    };
    match form.get("note") {
        Some(text) => meta.insert(NOTE.into(), Value::from(text)),
        None => meta.remove(NOTE),
    };
    body.insert("meta_info".into(), Value::Object(meta));
    body
}

/// Renders the reminder form (`stored`: the reminder on edit).
async fn render_form(
    user: &WebUser,
    stored: Option<&ReminderOutput>,
    values: &Values,
    errors: &FormErrors,
) -> Response {
    let clients = match options::clients(&user.auth).await {
        Ok(clients) => keeping(clients, stored.map(|r| r.object_id), None),
        Err(err) => return error_page(&err, Some(user)),
    };
    let value = |name: &str| values.get(name).cloned().unwrap_or_default();
    let (title, action) = match stored {
        Some(r) => (
            format!("Edit reminder: {}", r.title),
            format!("/reminders/{}/edit/", r.id),
        ),
        None => ("New reminder".to_owned(), "/reminders/new/".to_owned()),
    };
    let shown = [
        "object_id",
        "title",
        "reminder_date",
        "reminder_time",
        "meta_info",
    ];
    let body = html! {
        h1 { (title) }
        (errors.alert(&shown))
        form.fields method="post" action=(action) novalidate {
            (csrf_field(user))
            (select("object_id", "Client *", &clients, &value("object_id"), Some("—"), errors))
            div.wide { (input("title", "Reminder", "text", &value("title"), errors, true)) }
            (input("reminder_date", "Date", "date", &value("reminder_date"), errors, false))
            (input("reminder_time", "Time (UTC)", "time", &value("reminder_time"), errors, false))
            (textarea("note", "Note", &value("note"), errors))
            @if !errors.of("meta_info").is_empty() { p.error.wide { (errors.of("meta_info").join(" ")) } }
            div.wide { button.primary type="submit" { "Save reminder" } " " a href="/reminders/" { "Cancel" } }
        }
    };
    let mut response = page(user, &title, "reminders", body);
    if !errors.fields.is_empty() || errors.form.is_some() {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    response
}

fn posted(form: &WebForm) -> Values {
    form.fields
        .iter()
        .filter(|(k, _)| *k != "csrf")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `GET /reminders/new/[?client=]`.
pub(crate) async fn new(user: WebUser, RawQuery(raw): RawQuery) -> Response {
    if let Err(err) = crate::api::require(&user.auth.principal, Action::Add, ResourceKind::Reminder)
    {
        return error_page(&err, Some(&user));
    }
    let query = Query::parse(raw.as_deref());
    let mut values = Values::new();
    if let Some(client) = query.get("client") {
        values.insert("object_id".into(), client.to_owned());
    }
    values.insert(
        "reminder_date".into(),
        Utc::now()
            .date_naive()
            .succ_opt()
            .map(|d| d.to_string())
            .unwrap_or_default(),
    );
    values.insert("reminder_time".into(), "09:00".into());
    render_form(&user, None, &values, &FormErrors::default()).await
}

/// `POST /reminders/new/`.
pub(crate) async fn create(State(state): State<AppState>, form: WebForm) -> Response {
    let body = form_body(&form, None, true);
    match api::create(
        State(state),
        form.user.auth.clone(),
        JsonBody(Value::Object(body)),
    )
    .await
    {
        Ok(_) => see_other("/reminders/"),
        Err(err) => match FormErrors::from_error(&err) {
            Some(errors) => render_form(&form.user, None, &posted(&form), &errors).await,
            None => error_page(&err, Some(&form.user)),
        },
    }
}

/// `GET /reminders/{id}/edit/`.
pub(crate) async fn edit(user: WebUser, Path(id): Path<String>) -> Response {
    if let Err(err) =
        crate::api::require(&user.auth.principal, Action::Change, ResourceKind::Reminder)
    {
        return error_page(&err, Some(&user));
    }
    match api::retrieve(user.auth.clone(), Path(id)).await {
        Ok(Json(r)) => render_form(&user, Some(&r), &values_of(&r), &FormErrors::default()).await,
        Err(err) => error_page(&err, Some(&user)),
    }
}

/// `POST /reminders/{id}/edit/`: a merge-patch of the posted fields.
pub(crate) async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm,
) -> Response {
    let auth = form.user.auth.clone();
    let stored = match api::retrieve(auth.clone(), Path(id.clone())).await {
        Ok(Json(r)) => r,
        Err(err) => return error_page(&err, Some(&form.user)),
    };
    let body = form_body(&form, Some(&stored.meta_info), false);
    match api::update(State(state), auth, Path(id), JsonBody(Value::Object(body))).await {
        Ok(_) => see_other("/reminders/"),
        Err(err) => match FormErrors::from_error(&err) {
            Some(errors) => render_form(&form.user, Some(&stored), &posted(&form), &errors).await,
            None => error_page(&err, Some(&form.user)),
        },
    }
}

/// The list to go back to after an action: the posted `_return` when it is a reminders page.
fn back(form: &WebForm) -> &str {
    form.get("_return")
        .filter(|r| r.starts_with("/reminders/") && !r.starts_with("//"))
        .unwrap_or("/reminders/")
}

/// `POST /reminders/{id}/done/`: the API's `completed/`.
pub(crate) async fn done(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm,
) -> Response {
    match api::completed(State(state), form.user.auth.clone(), Path(id)).await {
        Ok(_) => see_other(back(&form)),
        Err(err) => error_page(&err, Some(&form.user)),
    }
}

/// `POST /reminders/{id}/delete/`: the API's hard delete.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm,
) -> Response {
    match api::destroy(State(state), form.user.auth.clone(), Path(id)).await {
        Ok(_) => see_other(back(&form)),
        Err(err) => error_page(&err, Some(&form.user)),
    }
}
