//! The visa screens: applications — the list (status tabs, client search, sortable columns,
//! pages), the application page with its document checklist (tick and untick, add a
//! document), create and edit with inline validation errors, delete — and the visa types
//! (list, create) and categories (list) they are built on.
//!
//! Every read and write is the API's operation from
//! [`crate::api::applications::visa_applications`] and [`crate::api::applications::visa`],
//! called with the session's [`leopard_http::AuthUser`]: an application follows its client's
//! branch (out of scope: the API's 404), the checklist is the API's `required_documents`, and
//! the events (`VisaApplication.*`, the client's timeline) are the API's.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use leopard_http::{ApiError, AuthUser, JsonBody};
use leopard_rbac::{Action, ResourceKind};
use maud::html;
use serde_json::{json, Map, Value};

use super::widgets::{
    action_button, chip, csrf_field, day, display, input, may, minute, page, pager, select,
    sort_header, textarea, FormErrors, Query,
};
use super::{error_page, options, session::see_other, WebForm, WebUser};
use crate::api::applications::visa::{self, VisaTypeOutput};
use crate::api::applications::visa_applications::{self as api, VisaApplicationOutput, STATUSES};
use crate::app::AppState;

/// The text inputs of the application form: (name, label, input type).
const TEXT_FIELDS: &[(&str, &str, &str)] = &[
    ("immigration_fee", "Immigration fee *", "text"),
    ("immigration_fee_currency", "Currency", "text"),
    ("service_fee", "Service fee *", "text"),
    ("service_fee_currency", "Currency", "text"),
    ("transaction_reference_no", "Transaction reference", "text"),
    ("date_applied", "Applied on", "date"),
    ("date_opened", "Case opened on", "date"),
    ("final_date", "Final date", "date"),
    ("date_granted", "Granted on", "date"),
    ("date_rejected", "Rejected on", "date"),
    ("date_withdrawn", "Withdrawn on", "date"),
    ("expiry_date", "Visa expiry", "date"),
];

/// The fields of the form that are ids or dates (empty: left out on create, `null` on edit).
const NULLABLE: &[&str] = &[
    "client_id",
    "visa_type_id",
    "assigned_to_id",
    "date_applied",
    "date_opened",
    "final_date",
    "date_granted",
    "date_rejected",
    "date_withdrawn",
    "expiry_date",
];

const ID_FIELDS: &[&str] = &["client_id", "visa_type_id", "assigned_to_id"];

fn status_options() -> Vec<(String, String)> {
    STATUSES
        .iter()
        .map(|s| ((*s).to_owned(), display(s)))
        .collect()
}

/// The visa types (the API's `visa-types/`) as options "Category — Name (code)".
async fn type_options(auth: &AuthUser) -> Result<Vec<(String, String)>, ApiError> {
    let (pagination, raw) = options::first_page("/api/v1/visa-types/", &[]);
    let Json(rows) = visa::list(auth.clone(), pagination, raw).await?;
    Ok(rows
        .results
        .iter()
        .map(|t| (t.id.to_string(), type_label(t)))
        .collect())
}

fn type_label(t: &VisaTypeOutput) -> String {
    if t.code.is_empty() {
        format!("{} — {}", t.visa_category_name, t.name)
    } else {
        format!("{} — {} ({})", t.visa_category_name, t.name, t.code)
    }
}

fn with_status(mut response: Response, errors: &FormErrors) -> Response {
    if !errors.fields.is_empty() || errors.form.is_some() {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    response
}

// ----- list --------------------------------------------------------------------------------

/// `GET /visa-applications/?status=&client_name=&ordering=&page=`.
pub(crate) async fn list(user: WebUser, RawQuery(raw): RawQuery) -> Response {
    let query = Query::parse(raw.as_deref());
    let rows = match api::list(
        user.auth.clone(),
        query.pagination("/visa-applications/"),
        RawQuery(Some(query.raw())),
    )
    .await
    {
        Ok(Json(rows)) => rows,
        Err(err) => return error_page(&err, Some(&user)),
    };
    let principal = &user.auth.principal;
    let current = query.get("status");
    let body = html! {
        div.toolbar {
            h1.grow { "Visa applications" }
            @if may(principal, Action::Add, ResourceKind::VisaApplication) {
                a.button.primary href="/visa-applications/new/" { "New visa application" }
            }
        }
        nav.tabs aria-label="Status" {
            @if current.is_none() {
                a href=(query.with("status", None)) aria-current="page" { "All" }
            } @else {
                a href=(query.with("status", None)) { "All" }
            }
            @for status in STATUSES {
                @if current == Some(*status) {
                    a href=(query.with("status", Some(status))) aria-current="page" { (display(status)) }
                } @else {
                    a href=(query.with("status", Some(status))) { (display(status)) }
                }
            }
        }
        form.toolbar method="get" action="/visa-applications/" aria-label="Filter visa applications" {
            @if let Some(status) = current { input type="hidden" name="status" value=(status); }
            label.sr-only for="f-client-name" { "Client" }
            input #f-client-name type="search" name="client_name" placeholder="Client name" value=(query.get("client_name").unwrap_or(""));
            @if let Some(ordering) = query.get("ordering") { input type="hidden" name="ordering" value=(ordering); }
            @if let Some(size) = query.get("page_size") { input type="hidden" name="page_size" value=(size); }
            button type="submit" { "Filter" }
            a href="/visa-applications/" { "Clear" }
        }
        div.table-wrap {
            table.grid {
                thead { tr {
                    (sort_header(&query, "Client", "client_name"))
                    (sort_header(&query, "Visa type", "visa_type"))
                    th scope="col" { "Category" }
                    (sort_header(&query, "Status", "status"))
                    (sort_header(&query, "Assigned to", "assigned_to"))
                    (sort_header(&query, "Applied", "date_applied"))
                    th scope="col" { "Documents" }
                    (sort_header(&query, "Created", "created_at"))
                } }
                tbody {
                    @for a in &rows.results {
                        tr tabindex="0" data-href={ "/visa-applications/" (a.id) "/" } {
                            td { a href={ "/visa-applications/" (a.id) "/" } { (a.client_name) } }
                            td { (a.visa_type_name) }
                            td { (a.visa_category_name) }
                            td { (chip(&a.status, &display(&a.status))) }
                            td { (a.assigned_to_name.as_deref().unwrap_or("—")) }
                            td { (a.date_applied.as_deref().unwrap_or("—")) }
                            td { (received_summary(&a.required_documents)) }
                            td { (day(&a.created_at)) }
                        }
                    }
                    @if rows.results.is_empty() {
                        tr.empty { td colspan="8" { "No visa applications match." } }
                    }
                }
            }
        }
        (pager(&query, rows.count))
    };
    page(&user, "Visa applications", "visa_applications", body)
}

/// The checklist items `(name, received)` of an application.
fn documents(docs: &Value) -> Vec<(String, bool)> {
    docs.as_array()
        .map(|items| {
            items
                .iter()
                .map(|d| {
                    (
                        d.get("name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                        d.get("received").and_then(Value::as_bool).unwrap_or(false),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// "received / total" of a checklist.
fn received_summary(docs: &Value) -> String {
    let items = documents(docs);
    let received = items.iter().filter(|(_, r)| *r).count();
    format!("{received} / {}", items.len())
}

// ----- detail ------------------------------------------------------------------------------

/// `GET /visa-applications/{id}/`.
pub(crate) async fn show(user: WebUser, Path(id): Path<String>) -> Response {
    detail(&user, &id, &FormErrors::default()).await
}

async fn detail(user: &WebUser, id: &str, errors: &FormErrors) -> Response {
    let a = match api::retrieve(user.auth.clone(), Path(id.to_owned())).await {
        Ok(Json(a)) => a,
        Err(err) => return error_page(&err, Some(user)),
    };
    let principal = &user.auth.principal;
    let may_change = may(principal, Action::Change, ResourceKind::VisaApplication);
    let fee = |amount: &str, currency: &str| format!("{amount} {currency}");
    let props: Vec<(&str, String)> = vec![
        ("Visa type", a.visa_type_name.clone()),
        ("Category", a.visa_category_name.clone()),
        ("Status", display(&a.status)),
        (
            "Assigned to",
            a.assigned_to_name.clone().unwrap_or_default(),
        ),
        (
            "Immigration fee",
            fee(&a.immigration_fee, &a.immigration_fee_currency),
        ),
        ("Service fee", fee(&a.service_fee, &a.service_fee_currency)),
        (
            "Transaction reference",
            a.transaction_reference_no.clone().unwrap_or_default(),
        ),
        (
            "Dependent",
            if a.dependent { "Yes" } else { "No" }.to_owned(),
        ),
        ("Applied on", a.date_applied.clone().unwrap_or_default()),
        ("Case opened on", a.date_opened.clone().unwrap_or_default()),
        ("Final date", a.final_date.clone().unwrap_or_default()),
        ("Granted on", a.date_granted.clone().unwrap_or_default()),
        ("Rejected on", a.date_rejected.clone().unwrap_or_default()),
        ("Withdrawn on", a.date_withdrawn.clone().unwrap_or_default()),
        ("Visa expiry", a.expiry_date.clone().unwrap_or_default()),
        (
            "Created",
            format!(
                "{} by {}",
                minute(&a.created_at),
                a.created_by_name.as_deref().unwrap_or("—")
            ),
        ),
        ("Updated", minute(&a.updated_at)),
    ];
    let docs = documents(&a.required_documents);
    let title = format!("Visa application of {}", a.client_name);
    let body = html! {
        div.toolbar {
            h1.grow { (a.client_name) " · " (a.visa_type_name) " " (chip(&a.status, &display(&a.status))) }
            a.button href={ "/clients/" (a.client) "/?tab=timeline" } { "Client timeline" }
            @if may_change {
                a.button href={ "/visa-applications/" (a.id) "/edit/" } { "Edit" }
            }
            @if may(principal, Action::Delete, ResourceKind::VisaApplication) {
                (action_button(user, &format!("/visa-applications/{}/delete/", a.id), "Delete", Some("Delete this visa application? This cannot be undone.")))
            }
        }
        (errors.alert(&[]))
        div.cards {
            div.card.span2 {
                h2 { "Details" }
                dl.props {
                    dt { "Client" } dd { a href={ "/clients/" (a.client) "/" } { (a.client_name) } }
                    @for (label, value) in &props {
                        dt { (label) } dd { @if value.is_empty() { "—" } @else { (value) } }
                    }
                }
                @if let Some(notes) = a.notes.as_deref().filter(|n| !n.is_empty()) {
                    h2 { "Notes" } p { (notes) }
                }
            }
            div.card {
                h2 { "Documents " span.muted { (received_summary(&a.required_documents)) " received" } }
                @if may_change {
                    form method="post" action={ "/visa-applications/" (a.id) "/documents/" } {
                        (csrf_field(user))
                        ul.checklist {
                            @for (i, (name, received)) in docs.iter().enumerate() {
                                li {
                                    label {
                                        input type="checkbox" name="received" value=(i) checked[*received];
                                        " " (name)
                                    }
                                }
                            }
                            @if docs.is_empty() { li.muted { "No documents listed." } }
                        }
                        div.field {
                            label for="f-add-document" { "Add a document" }
                            input #f-add-document type="text" name="add" maxlength="200";
                        }
                        button.primary type="submit" { "Save checklist" }
                    }
                } @else {
                    ul.checklist {
                        @for (name, received) in &docs {
                            li { @if *received { "☑ " } @else { "☐ " } (name) }
                        }
                        @if docs.is_empty() { li.muted { "No documents listed." } }
                    }
                }
            }
        }
    };
    with_status(page(user, &title, "visa_applications", body), errors)
}

/// `POST /visa-applications/{id}/documents/`: the checklist as ticked (`received` holds the
/// indexes of the received documents) plus an optional new document (`add`) — a PATCH of
/// `required_documents`.
pub(crate) async fn documents_update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm,
) -> Response {
    let auth = form.user.auth.clone();
    let current = match api::retrieve(auth.clone(), Path(id.clone())).await {
        Ok(Json(a)) => a,
        Err(err) => return error_page(&err, Some(&form.user)),
    };
    let ticked: Vec<usize> = form
        .pairs
        .iter()
        .filter(|(k, _)| k == "received")
        .filter_map(|(_, v)| v.trim().parse().ok())
        .collect();
    let mut list: Vec<Value> = documents(&current.required_documents)
        .into_iter()
        .enumerate()
        .map(|(i, (name, _))| json!({"name": name, "received": ticked.contains(&i)}))
        .collect();
    if let Some(added) = form.get("add") {
        list.push(json!({"name": added, "received": false}));
    }
    let body = json!({ "required_documents": list });
    match api::update(State(state), auth, Path(id.clone()), JsonBody(body)).await {
        Ok(_) => see_other(&format!("/visa-applications/{id}/")),
        Err(err) => match FormErrors::from_error(&err) {
            Some(errors) => detail(&form.user, &id, &errors).await,
            None => error_page(&err, Some(&form.user)),
        },
    }
}

// ----- create and edit ---------------------------------------------------------------------

/// The JSON body of an application form. On create an empty field is left out (the API's
/// default, or its "required"); on edit empty ids and dates become `null`.
fn form_body(form: &WebForm, create: bool) -> Map<String, Value> {
    let mut body = Map::new();
    for (name, value) in &form.fields {
        let name = name.as_str();
        if name == "csrf" || name == "dependent" || name.starts_with('_') {
            continue;
        }
        if !create && name == "client_id" {
            continue;
        }
        let value = value.trim();
        let json = if value.is_empty() {
            if create {
                continue;
            }
            if NULLABLE.contains(&name) {
                Value::Null
            } else {
                Value::from("")
            }
        } else if ID_FIELDS.contains(&name) {
            value
                .parse::<i64>()
                .map_or_else(|_| Value::from(value), Value::from)
        } else {
            Value::from(value)
        };
        body.insert(name.to_owned(), json);
    }
    body.insert(
        "dependent".into(),
        Value::from(form.get("dependent").is_some()),
    );
    body
}

/// The form values of a stored application.
fn values_of(a: &VisaApplicationOutput) -> Map<String, Value> {
    match serde_json::to_value(a) {
        Ok(Value::Object(mut map)) => {
            for (field, source) in [
                ("client_id", "client"),
                ("visa_type_id", "visa_type"),
                ("assigned_to_id", "assigned_to"),
            ] {
                let value = map.get(source).cloned().unwrap_or(Value::Null);
                map.insert(field.to_owned(), value);
            }
            map
        }
        _ => Map::new(),
    }
}

async fn render_form(
    user: &WebUser,
    action: &str,
    title: &str,
    values: &Map<String, Value>,
    errors: &FormErrors,
    create: bool,
) -> Response {
    let auth = &user.auth;
    let options = async {
        let clients = if create {
            options::clients(auth).await?
        } else {
            Vec::new()
        };
        let (types, assignees) = tokio::try_join!(type_options(auth), options::assignees(auth))?;
        Ok::<_, ApiError>((clients, types, assignees))
    };
    let (client_list, types, assignees) = match options.await {
        Ok(options) => options,
        Err(err) => return error_page(&err, Some(user)),
    };
    let text = |name: &str| match values.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let dependent = matches!(values.get("dependent"), Some(Value::Bool(true)));
    let mut shown: Vec<&str> = TEXT_FIELDS.iter().map(|f| f.0).collect();
    shown.extend([
        "client_id",
        "visa_type_id",
        "status",
        "assigned_to_id",
        "dependent",
        "notes",
    ]);
    let back = if create {
        "/visa-applications/".to_owned()
    } else {
        format!("/visa-applications/{}/", text("id"))
    };
    let body = html! {
        h1 { (title) }
        (errors.alert(&shown))
        form.fields method="post" action=(action) novalidate {
            (csrf_field(user))
            @if create {
                (select("client_id", "Client *", &client_list, &text("client_id"), Some("—"), errors))
            } @else {
                div.field { label { "Client" } p { (text("client_name")) } }
            }
            (select("visa_type_id", "Visa type *", &types, &text("visa_type_id"), Some("—"), errors))
            (select("status", "Status", &status_options(), &text("status"), None, errors))
            (select("assigned_to_id", "Assigned to", &assignees, &text("assigned_to_id"), Some("Nobody"), errors))
            @for (name, label, kind) in TEXT_FIELDS {
                (input(name, label, kind, &text(name), errors, false))
            }
            div.field.check {
                label { input type="checkbox" name="dependent" value="true" checked[dependent]; " Dependent's application" }
                @if !errors.of("dependent").is_empty() { p.error { (errors.of("dependent").join(" ")) } }
            }
            (textarea("notes", "Notes", &text("notes"), errors))
            div.wide { button.primary type="submit" { "Save" } " " a href=(back) { "Cancel" } }
        }
    };
    with_status(page(user, title, "visa_applications", body), errors)
}

/// `GET /visa-applications/new/[?client=]`.
pub(crate) async fn new(user: WebUser, RawQuery(raw): RawQuery) -> Response {
    if let Err(err) = crate::api::require(
        &user.auth.principal,
        Action::Add,
        ResourceKind::VisaApplication,
    ) {
        return error_page(&err, Some(&user));
    }
    let query = Query::parse(raw.as_deref());
    let mut values = Map::new();
    values.insert("status".into(), Value::from("TO_BE_APPLIED"));
    values.insert("immigration_fee_currency".into(), Value::from("USD"));
    values.insert("service_fee_currency".into(), Value::from("USD"));
    if let Some(client) = query.get("client") {
        values.insert("client_id".into(), Value::from(client));
    }
    render_form(
        &user,
        "/visa-applications/new/",
        "New visa application",
        &values,
        &FormErrors::default(),
        true,
    )
    .await
}

/// `POST /visa-applications/new/`.
pub(crate) async fn create(State(state): State<AppState>, form: WebForm) -> Response {
    let body = form_body(&form, true);
    let result = api::create(
        State(state),
        form.user.auth.clone(),
        JsonBody(Value::Object(body.clone())),
    )
    .await;
    match result {
        Ok((_, Json(a))) => see_other(&format!("/visa-applications/{}/", a.id)),
        Err(err) => match FormErrors::from_error(&err) {
            Some(errors) => {
                let mut values = body;
                for (k, v) in &form.fields {
                    if k != "csrf" && k != "dependent" {
                        values.insert(k.clone(), Value::from(v.as_str()));
                    }
                }
                render_form(
                    &form.user,
                    "/visa-applications/new/",
                    "New visa application",
                    &values,
                    &errors,
                    true,
                )
                .await
            }
            None => error_page(&err, Some(&form.user)),
        },
    }
}

/// `GET /visa-applications/{id}/edit/`.
pub(crate) async fn edit(user: WebUser, Path(id): Path<String>) -> Response {
    if let Err(err) = crate::api::require(
        &user.auth.principal,
        Action::Change,
        ResourceKind::VisaApplication,
    ) {
        return error_page(&err, Some(&user));
    }
    match api::retrieve(user.auth.clone(), Path(id)).await {
        Ok(Json(a)) => {
            let title = format!("Edit visa application of {}", a.client_name);
            render_form(
                &user,
                &format!("/visa-applications/{}/edit/", a.id),
                &title,
                &values_of(&a),
                &FormErrors::default(),
                false,
            )
            .await
        }
        Err(err) => error_page(&err, Some(&user)),
    }
}

/// `POST /visa-applications/{id}/edit/`: a merge-patch of the posted fields.
pub(crate) async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm,
) -> Response {
    let body = form_body(&form, false);
    let result = api::update(
        State(state),
        form.user.auth.clone(),
        Path(id.clone()),
        JsonBody(Value::Object(body.clone())),
    )
    .await;
    match result {
        Ok(Json(a)) => see_other(&format!("/visa-applications/{}/", a.id)),
        Err(err) => match FormErrors::from_error(&err) {
            Some(errors) => {
                // The stored row names the client; the posted values are kept.
                let mut values = match api::retrieve(form.user.auth.clone(), Path(id.clone())).await
                {
                    Ok(Json(a)) => values_of(&a),
                    Err(err) => return error_page(&err, Some(&form.user)),
                };
                for (k, v) in &form.fields {
                    if k != "csrf" {
                        values.insert(k.clone(), Value::from(v.as_str()));
                    }
                }
                values.insert(
                    "dependent".into(),
                    Value::from(form.get("dependent").is_some()),
                );
                let action = format!("/visa-applications/{id}/edit/");
                render_form(
                    &form.user,
                    &action,
                    "Edit visa application",
                    &values,
                    &errors,
                    false,
                )
                .await
            }
            None => error_page(&err, Some(&form.user)),
        },
    }
}

/// `POST /visa-applications/{id}/delete/`: the API's hard delete.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm,
) -> Response {
    match api::destroy(State(state), form.user.auth.clone(), Path(id)).await {
        Ok(_) => see_other("/visa-applications/"),
        Err(err) => error_page(&err, Some(&form.user)),
    }
}

// ----- visa types and categories -----------------------------------------------------------

/// `GET /visa-types/?search=&visa_category_id=`.
pub(crate) async fn types_list(user: WebUser, RawQuery(raw): RawQuery) -> Response {
    types_page(&user, raw.as_deref(), &Map::new(), &FormErrors::default()).await
}

async fn types_page(
    user: &WebUser,
    raw: Option<&str>,
    values: &Map<String, Value>,
    errors: &FormErrors,
) -> Response {
    let query = Query::parse(raw);
    let auth = &user.auth;
    let rows = match visa::list(
        auth.clone(),
        query.pagination("/visa-types/"),
        RawQuery(Some(query.raw())),
    )
    .await
    {
        Ok(Json(rows)) => rows,
        Err(err) => return error_page(&err, Some(user)),
    };
    let categories = match visa::categories(auth.clone()).await {
        Ok(Json(rows)) => rows,
        Err(err) => return error_page(&err, Some(user)),
    };
    let category_options: Vec<(String, String)> = categories
        .iter()
        .map(|c| (c.id.to_string(), c.name.clone()))
        .collect();
    let text = |name: &str| match values.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let may_add = may(&auth.principal, Action::Add, ResourceKind::VisaType);
    let body = html! {
        div.toolbar {
            h1.grow { "Visa types" }
            a.button href="/visa-categories/" { "Categories" }
        }
        form.toolbar method="get" action="/visa-types/" aria-label="Filter visa types" {
            label.sr-only for="f-search" { "Search" }
            input #f-search type="search" name="search" placeholder="Name or code" value=(query.get("search").unwrap_or(""));
            label.sr-only for="f-category" { "Category" }
            select #f-category name="visa_category_id" data-autosubmit {
                option value="" { "All categories" }
                @for (value, label) in &category_options {
                    option value=(value) selected[query.get("visa_category_id") == Some(value.as_str())] { (label) }
                }
            }
            button type="submit" { "Filter" }
        }
        div.table-wrap {
            table.grid {
                thead { tr {
                    th scope="col" { "Category" } th scope="col" { "Name" } th scope="col" { "Code" }
                    th scope="col" { "Checklist" } th scope="col" { "Description" }
                } }
                tbody {
                    @for t in &rows.results {
                        tr {
                            td { (t.visa_category_name) }
                            td { (t.name) }
                            td { (t.code) }
                            td { (t.checklist.as_array().map(|items| items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                            td { (t.description) }
                        }
                    }
                    @if rows.results.is_empty() { tr.empty { td colspan="5" { "No visa types." } } }
                }
            }
        }
        (pager(&query, rows.count))
        @if may_add {
            h2 { "New visa type" }
            (errors.alert(&["visa_category_id", "name", "code", "checklist", "description"]))
            form.fields method="post" action="/visa-types/" novalidate {
                (csrf_field(user))
                (select("visa_category_id", "Category *", &category_options, &text("visa_category_id"), Some("—"), errors))
                (input("name", "Name", "text", &text("name"), errors, true))
                (input("code", "Code", "text", &text("code"), errors, false))
                (textarea("checklist", "Checklist (one document a line)", &text("checklist"), errors))
                (textarea("description", "Description", &text("description"), errors))
                div.wide { button.primary type="submit" { "Create visa type" } }
            }
        }
    };
    with_status(page(user, "Visa types", "visa_types", body), errors)
}

/// `POST /visa-types/`: creates a type (the checklist one document a line).
pub(crate) async fn types_create(State(state): State<AppState>, form: WebForm) -> Response {
    let mut body = Map::new();
    for name in ["name", "code", "description"] {
        if let Some(value) = form.fields.get(name) {
            body.insert(name.to_owned(), Value::from(value.trim()));
        }
    }
    if let Some(category) = form.get("visa_category_id") {
        body.insert(
            "visa_category_id".into(),
            category
                .parse::<i64>()
                .map_or_else(|_| Value::from(category), Value::from),
        );
    }
    let checklist: Vec<Value> = form
        .fields
        .get("checklist")
        .map(String::as_str)
        .unwrap_or("")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(Value::from)
        .collect();
    body.insert("checklist".into(), Value::Array(checklist));
    match visa::create(
        State(state),
        form.user.auth.clone(),
        JsonBody(Value::Object(body)),
    )
    .await
    {
        Ok(_) => see_other("/visa-types/"),
        Err(err) => match FormErrors::from_error(&err) {
            Some(errors) => {
                let values: Map<String, Value> = form
                    .fields
                    .iter()
                    .filter(|(k, _)| *k != "csrf")
                    .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                    .collect();
                types_page(&form.user, None, &values, &errors).await
            }
            None => error_page(&err, Some(&form.user)),
        },
    }
}

/// `GET /visa-categories/`: the seeded categories (the API serves them read-only).
pub(crate) async fn categories_list(user: WebUser) -> Response {
    let rows = match visa::categories(user.auth.clone()).await {
        Ok(Json(rows)) => rows,
        Err(err) => return error_page(&err, Some(&user)),
    };
    let body = html! {
        div.toolbar {
            h1.grow { "Visa categories" }
            a.button href="/visa-types/" { "Visa types" }
        }
        p.muted { "Categories are master data seeded with the agency; visa types are added under them." }
        div.table-wrap {
            table.grid {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Code" } th scope="col" { "Description" } } }
                tbody {
                    @for c in &rows {
                        tr { td { (c.name) } td { (c.code.as_deref().unwrap_or("—")) } td { (c.description) } }
                    }
                    @if rows.is_empty() { tr.empty { td colspan="3" { "No categories." } } }
                }
            }
        }
    };
    page(&user, "Visa categories", "visa_categories", body)
}
