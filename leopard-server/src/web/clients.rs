//! The clients screens: the list (search, stage, branch, assignee, include deleted; sortable,
//! paged), create and edit with inline validation errors, assign and change stage from the
//! client page, soft delete and restore, and the client page with its tabs (overview, notes,
//! timeline, tasks here; passport, profile sections, reminders and applications in
//! [`super::client_tabs`]).
//!
//! Every read and write is the API's operation from [`crate::api::crm::clients`] (and
//! `notes`, `tasks`), called with the session's [`leopard_http::AuthUser`]: the rows, the
//! scope, the validation and the events are the API's.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::Json;
use leopard_http::pagination::MAX_PAGE_SIZE;
use leopard_http::{ApiError, JsonBody};
use leopard_rbac::{Action, ResourceKind};
use maud::{html, Markup};
use serde_json::{Map, Value};

use super::client_tabs::TAB_PAGE_SIZE;
use super::widgets::{
    self, action_button, chip, csrf_field, display, input, may, minute, page, pager, select,
    sort_header, textarea, FormErrors, Paged, Query,
};
use super::{client_tabs, error_page, options, session::see_other, WebForm, WebUser};
use crate::api::crm::clients::{self as api, ClientOutput};
use crate::api::crm::{notes, tasks};
use crate::app::AppState;

const STAGES: &[&str] = &["LEAD", "FOLLOW_UP", "CLIENT", "CLOSE"];
const GENDERS: &[&str] = &["MALE", "FEMALE", "OTHER"];

/// The text fields of the client form: (name, label, input type, required).
const TEXT_FIELDS: &[(&str, &str, &str, bool)] = &[
    ("first_name", "First name", "text", true),
    ("middle_name", "Middle name", "text", false),
    ("last_name", "Last name", "text", true),
    ("email", "E-mail", "email", false),
    ("phone_number", "Phone", "tel", false),
    ("dob", "Date of birth", "date", false),
    ("street", "Street", "text", false),
    ("suburb", "Suburb", "text", false),
    ("state", "State", "text", false),
    ("postcode", "Postcode", "text", false),
    ("country", "Country (ISO code)", "text", false),
    ("referred_by", "Referred by", "text", false),
];

/// The form fields that are ids (an empty one clears the link).
const ID_FIELDS: &[&str] = &[
    "branch_id",
    "assigned_to_id",
    "visa_category_id",
    "agent_id",
];

/// The name shown for a client.
fn client_name(c: &ClientOutput) -> String {
    format!("{} {}", c.first_name, c.last_name)
        .trim()
        .to_owned()
}

fn stage_options() -> Vec<(String, String)> {
    STAGES
        .iter()
        .map(|s| ((*s).to_owned(), display(s)))
        .collect()
}

/// `GET /clients/`.
pub(crate) async fn list(
    State(state): State<AppState>,
    user: WebUser,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Query::parse(raw.as_deref());
    let auth = &user.auth;
    // The rows and the filter bar's options are independent reads: side by side.
    let (page_of, options) = tokio::join!(
        api::list(
            auth.clone(),
            query.pagination("/clients/"),
            RawQuery(Some(query.raw())),
        ),
        options::filter_options(&state.web_options, auth),
    );
    let Json(rows) = match page_of {
        Ok(rows) => rows,
        Err(err) => return error_page(&err, Some(&user)),
    };
    let options = match options {
        Ok(options) => options,
        Err(err) => return error_page(&err, Some(&user)),
    };
    let (branch_list, assignees) = &*options;
    let principal = &auth.principal;
    let may_delete = may(principal, Action::Delete, ResourceKind::Client);
    let none = FormErrors::default();
    let body = html! {
        div.toolbar {
            h1.grow { "Clients" }
            @if may(principal, Action::Add, ResourceKind::Client) {
                a.button.primary href="/clients/new/" { "New client" }
            }
        }
        form.toolbar method="get" action="/clients/" aria-label="Filter clients" {
            label.sr-only for="f-search" { "Search" }
            input #f-search type="search" name="search" placeholder="Name, e-mail, phone" value=(query.get("search").unwrap_or(""));
            label.sr-only for="f-stage" { "Stage" }
            select #f-stage name="stage" data-autosubmit {
                option value="" { "All stages" }
                @for (value, label) in stage_options() {
                    option value=(value) selected[query.get("stage") == Some(value.as_str())] { (label) }
                }
            }
            @if !branch_list.is_empty() {
                label.sr-only for="f-branch" { "Branch" }
                select #f-branch name="branch" data-autosubmit {
                    option value="" { "All branches" }
                    @for (value, label) in branch_list {
                        option value=(value) selected[query.get("branch") == Some(value.as_str())] { (label) }
                    }
                }
            }
            label.sr-only for="f-assigned" { "Assignee" }
            select #f-assigned name="assigned_to" data-autosubmit {
                option value="" { "Anyone" }
                @for (value, label) in assignees {
                    option value=(value) selected[query.get("assigned_to") == Some(value.as_str())] { (label) }
                }
            }
            @if may_delete {
                label { input type="checkbox" name="include_deleted" value="true" checked[query.get("include_deleted").is_some()] data-autosubmit; " Include deleted" }
            }
            @if let Some(ordering) = query.get("ordering") { input type="hidden" name="ordering" value=(ordering); }
            @if let Some(size) = query.get("page_size") { input type="hidden" name="page_size" value=(size); }
            button type="submit" { "Filter" }
            a href="/clients/" { "Clear" }
        }
        (none.alert(&[]))
        div.table-wrap {
            table.grid {
                thead { tr {
                    (sort_header(&query, "Name", "first_name"))
                    (sort_header(&query, "E-mail", "email"))
                    (sort_header(&query, "Phone", "phone_number"))
                    (sort_header(&query, "Stage", "stage"))
                    (sort_header(&query, "Branch", "branch"))
                    (sort_header(&query, "Assigned to", "assigned_to"))
                    (sort_header(&query, "Country", "country"))
                    (sort_header(&query, "Created", "created_at"))
                } }
                tbody {
                    @for c in &rows.results {
                        @if c.deleted_at.is_some() {
                            tr.deleted {
                                td { (client_name(c)) " " (action_button(&user, &format!("/clients/{}/restore/", c.id), "Restore", None)) }
                                td { (c.email) } td { (c.phone_number) }
                                td { (chip(&c.stage, &display(&c.stage))) }
                                td { (c.branch_name.as_deref().unwrap_or("—")) }
                                td { (c.assigned_to_name.as_deref().unwrap_or("—")) }
                                td { (c.country) } td { (widgets::day(&c.created_at)) }
                            }
                        } @else {
                        tr tabindex="0" data-href={ "/clients/" (c.id) "/" } {
                            td { a href={ "/clients/" (c.id) "/" } { (client_name(c)) } }
                            td { (c.email) }
                            td { (c.phone_number) }
                            td { (chip(&c.stage, &display(&c.stage))) }
                            td { (c.branch_name.as_deref().unwrap_or("—")) }
                            td { (c.assigned_to_name.as_deref().unwrap_or("—")) }
                            td { (c.country) }
                            td { (widgets::day(&c.created_at)) }
                        }
                        }
                    }
                    @if rows.results.is_empty() {
                        tr.empty { td colspan="8" { "No clients match." } }
                    }
                }
            }
        }
        (pager(&query, rows.count))
    };
    page(&user, "Clients", "clients", body)
}

/// `GET /search/?q=`: the top bar's search — the clients list filtered by `search`.
pub(crate) async fn search(RawQuery(raw): RawQuery) -> Response {
    let query = Query::parse(raw.as_deref());
    let target = Query::default().with("search", query.get("q"));
    see_other(&format!("/clients/{target}"))
}

/// The create or edit form. `values` are the current field values.
fn client_form(
    user: &WebUser,
    action: &str,
    values: &Map<String, Value>,
    errors: &FormErrors,
    branch_list: &[(String, String)],
    assignees: &[(String, String)],
) -> Markup {
    let text = |name: &str| match values.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let genders: Vec<(String, String)> = GENDERS
        .iter()
        .map(|g| ((*g).to_owned(), display(g)))
        .collect();
    let mut shown: Vec<&str> = TEXT_FIELDS.iter().map(|f| f.0).collect();
    shown.extend([
        "gender",
        "stage",
        "branch_id",
        "assigned_to_id",
        "description",
    ]);
    html! {
        (errors.alert(&shown))
        form.fields method="post" action=(action) novalidate {
            (csrf_field(user))
            @for (name, label, kind, required) in TEXT_FIELDS {
                (input(name, label, kind, &text(name), errors, *required))
            }
            (select("gender", "Gender", &genders, &text("gender"), Some("—"), errors))
            (select("stage", "Stage", &stage_options(), &text("stage"), None, errors))
            @if !branch_list.is_empty() {
                (select("branch_id", "Branch", branch_list, &text("branch_id"), Some("—"), errors))
            }
            (select("assigned_to_id", "Assigned to", assignees, &text("assigned_to_id"), Some("Nobody"), errors))
            (textarea("description", "Description", &text("description"), errors))
            div.wide { button.primary type="submit" { "Save" } " " a href="/clients/" { "Cancel" } }
        }
    }
}

/// The JSON body of a client form: the posted fields. On create an empty field is left out
/// (the API's default, or its "required"); on edit empty ids and dates become `null`.
fn form_body(form: &WebForm, create: bool) -> Map<String, Value> {
    let mut body = Map::new();
    for (name, value) in &form.fields {
        let name = name.as_str();
        if name == "csrf" || name.starts_with('_') {
            continue;
        }
        let value = value.trim();
        if create && value.is_empty() {
            // Absent, so the API answers "required" for a required field.
            continue;
        }
        let json = if ID_FIELDS.contains(&name) || name == "dob" {
            if value.is_empty() {
                Value::Null
            } else {
                value
                    .parse::<i64>()
                    .map_or_else(|_| Value::from(value), Value::from)
            }
        } else {
            Value::from(value)
        };
        body.insert(name.to_owned(), json);
    }
    body
}

/// `GET /clients/new/`.
pub(crate) async fn new(user: WebUser) -> Response {
    if let Err(err) = crate::api::require(&user.auth.principal, Action::Add, ResourceKind::Client) {
        return error_page(&err, Some(&user));
    }
    let mut values = Map::new();
    values.insert("stage".into(), Value::from("LEAD"));
    render_form(
        &user,
        "/clients/new/",
        "New client",
        &values,
        &FormErrors::default(),
    )
    .await
}

async fn render_form(
    user: &WebUser,
    action: &str,
    title: &str,
    values: &Map<String, Value>,
    errors: &FormErrors,
) -> Response {
    let auth = &user.auth;
    let (branch_list, assignees) =
        match tokio::try_join!(options::branches(auth), options::assignees(auth)) {
            Ok(options) => options,
            Err(err) => return error_page(&err, Some(user)),
        };
    let body = html! {
        h1 { (title) }
        (client_form(user, action, values, errors, &branch_list, &assignees))
    };
    let mut response = page(user, title, "clients", body);
    if !errors.fields.is_empty() || errors.form.is_some() {
        *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    }
    response
}

/// `POST /clients/new/`.
pub(crate) async fn create(State(state): State<AppState>, form: WebForm) -> Response {
    let body = form_body(&form, true);
    let result = api::create(
        State(state),
        form.user.auth.clone(),
        JsonBody(Value::Object(body.clone())),
    )
    .await;
    match result {
        Ok((_, Json(client))) => see_other(&format!("/clients/{}/", client.id)),
        Err(err) => match FormErrors::from_error(&err) {
            Some(errors) => {
                render_form(&form.user, "/clients/new/", "New client", &body, &errors).await
            }
            None => error_page(&err, Some(&form.user)),
        },
    }
}

/// The form values of a stored client.
fn values_of(client: &ClientOutput) -> Map<String, Value> {
    match serde_json::to_value(client) {
        Ok(Value::Object(mut map)) => {
            for (field, source) in [("branch_id", "branch"), ("assigned_to_id", "assigned_to")] {
                let value = map.get(source).cloned().unwrap_or(Value::Null);
                map.insert(field.to_owned(), value);
            }
            map
        }
        _ => Map::new(),
    }
}

/// `GET /clients/{id}/edit/`.
pub(crate) async fn edit(user: WebUser, Path(id): Path<String>) -> Response {
    match api::retrieve(user.auth.clone(), Path(id.clone())).await {
        Ok(Json(client)) => {
            let title = format!("Edit {}", client_name(&client));
            render_form(
                &user,
                &format!("/clients/{}/edit/", client.id),
                &title,
                &values_of(&client),
                &FormErrors::default(),
            )
            .await
        }
        Err(err) => error_page(&err, Some(&user)),
    }
}

/// `POST /clients/{id}/edit/`: a merge-patch of the posted fields (the edit form posts them
/// all; the assign and stage forms of the client page post one). `_return=detail` comes back
/// to the client page.
pub(crate) async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm,
) -> Response {
    let body = form_body(&form, false);
    let back_to_detail = form.get("_return") == Some("detail");
    let result = api::update(
        State(state.clone()),
        form.user.auth.clone(),
        Path(id.clone()),
        JsonBody(Value::Object(body.clone())),
    )
    .await;
    match result {
        Ok(Json(client)) => see_other(&format!("/clients/{}/", client.id)),
        Err(err) => match FormErrors::from_error(&err) {
            Some(errors) if back_to_detail => {
                detail(
                    &state,
                    &form.user,
                    &id,
                    "overview",
                    Some(&errors),
                    None,
                    &TabView::default(),
                )
                .await
            }
            Some(errors) => {
                let action = format!("/clients/{id}/edit/");
                render_form(&form.user, &action, "Edit client", &body, &errors).await
            }
            None => error_page(&err, Some(&form.user)),
        },
    }
}

/// `POST /clients/{id}/delete/`: soft delete.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm,
) -> Response {
    match api::destroy(State(state), form.user.auth.clone(), Path(id)).await {
        Ok(_) => see_other("/clients/"),
        Err(err) => error_page(&err, Some(&form.user)),
    }
}

/// `POST /clients/{id}/restore/`.
pub(crate) async fn restore(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm,
) -> Response {
    match api::restore(State(state), form.user.auth.clone(), Path(id.clone())).await {
        Ok(_) => see_other(&format!("/clients/{id}/")),
        Err(err) => error_page(&err, Some(&form.user)),
    }
}

/// `POST /clients/{id}/notes/`: adds a note (the API's `POST /api/v1/notes/`).
pub(crate) async fn add_note(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm,
) -> Response {
    let mut body = Map::new();
    body.insert(
        "client".into(),
        id.parse::<i64>()
            .map_or_else(|_| Value::from(id.clone()), Value::from),
    );
    body.insert(
        "content".into(),
        Value::from(form.fields.get("content").cloned().unwrap_or_default()),
    );
    match notes::create(
        State(state.clone()),
        form.user.auth.clone(),
        JsonBody(Value::Object(body)),
    )
    .await
    {
        Ok(_) => see_other(&format!("/clients/{id}/?tab=notes")),
        Err(err) => match FormErrors::from_error(&err) {
            Some(errors) => {
                detail(
                    &state,
                    &form.user,
                    &id,
                    "notes",
                    Some(&errors),
                    Some(&form.fields),
                    &TabView::default(),
                )
                .await
            }
            None => error_page(&err, Some(&form.user)),
        },
    }
}

/// `GET /clients/{id}/?tab=`.
pub(crate) async fn show(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Query::parse(raw.as_deref());
    let tab = query.get("tab").unwrap_or("overview").to_owned();
    let editing = query.get("edit").and_then(|v| v.parse().ok());
    let view = TabView {
        editing,
        paging: query,
    };
    detail(&state, &user, &id, &tab, None, None, &view).await
}

const TABS: &[(&str, &str)] = &[
    ("overview", "Overview"),
    ("passport", "Passport"),
    ("proficiencies", "Languages"),
    ("qualifications", "Qualifications"),
    ("employments", "Employments"),
    ("notes", "Notes"),
    ("timeline", "Timeline"),
    ("tasks", "Tasks"),
    ("reminders", "Reminders"),
    ("visa", "Visa applications"),
    ("college", "College applications"),
];

/// The fields of a refused form, shown again in its tab.
pub(crate) type Posted = HashMap<String, String>;

/// What a request asks of the client page's tab beyond its key: the row in its edit form, and
/// the page of its list.
#[derive(Debug, Clone, Default)]
pub(crate) struct TabView {
    /// The row of the tab in its edit form (`?edit=`).
    pub(crate) editing: Option<i64>,
    /// The request's query, whose `page` and `page_size` page the tab's list.
    pub(crate) paging: Query,
}

impl TabView {
    /// The first page of the tab, with row `editing` in its edit form.
    pub(crate) fn editing(editing: Option<i64>) -> Self {
        Self {
            editing,
            paging: Query::default(),
        }
    }
}

/// The client page on `tab`, with `errors` and the `posted` values of a refused form of that
/// tab, the row in its edit form and the page of its list as `view` asks.
pub(crate) async fn detail(
    state: &AppState,
    user: &WebUser,
    id: &str,
    tab: &str,
    errors: Option<&FormErrors>,
    posted: Option<&Posted>,
    view: &TabView,
) -> Response {
    let (editing, paging) = (view.editing, &view.paging);
    let auth = &user.auth;
    let client = match api::retrieve(auth.clone(), Path(id.to_owned())).await {
        Ok(Json(client)) => client,
        Err(err) => return error_page(&err, Some(user)),
    };
    let none = FormErrors::default();
    let errors = errors.unwrap_or(&none);
    let content = match tab {
        "passport" => client_tabs::passport_tab(user, &client, errors, posted).await,
        "notes" => client_tabs::notes_tab(user, &client, errors, posted, editing, paging).await,
        "reminders" => client_tabs::reminders_tab(user, &client, paging).await,
        "visa" => client_tabs::visa_tab(user, &client, paging).await,
        "college" => client_tabs::college_tab(user, &client, paging).await,
        "timeline" => timeline_tab(user, &client, paging).await,
        "tasks" => tasks_tab(user, &client, paging).await,
        other => match client_tabs::SectionTab::from_key(other) {
            Some(section) => {
                client_tabs::section_tab(user, &client, section, errors, posted, editing, paging)
                    .await
            }
            None => overview_tab(state, user, &client, errors).await,
        },
    };
    let content = match content {
        Ok(markup) => markup,
        Err(err) => return error_page(&err, Some(user)),
    };
    let principal = &auth.principal;
    let inactive = !client.active;
    let name = client_name(&client);
    let body = html! {
        div.toolbar {
            h1.grow { (name) " " (chip(&client.stage, &display(&client.stage))) }
            @if may(principal, Action::Change, ResourceKind::Client) {
                a.button href={ "/clients/" (client.id) "/edit/" } { "Edit" }
            }
            @if may(principal, Action::Delete, ResourceKind::Client) {
                (action_button(user, &format!("/clients/{}/delete/", client.id), "Delete", Some("Delete this client? It can be restored from the list with “Include deleted”.")))
            }
        }
        @if inactive { p.muted { "This client is marked inactive." } }
        nav.tabs aria-label="Client sections" {
            @for (key, label) in TABS {
                @if *key == tab || (tab.is_empty() && *key == "overview") {
                    a href={ "?tab=" (key) } aria-current="page" { (label) }
                } @else {
                    a href={ "?tab=" (key) } { (label) }
                }
            }
        }
        (content)
    };
    let mut response = page(user, &name, "clients", body);
    if !errors.fields.is_empty() || errors.form.is_some() {
        *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    }
    response
}

async fn overview_tab(
    state: &AppState,
    user: &WebUser,
    client: &ClientOutput,
    errors: &FormErrors,
) -> Result<Markup, ApiError> {
    let may_change = may(&user.auth.principal, Action::Change, ResourceKind::Client);
    let assignees = async {
        if may_change {
            options::assignees(&user.auth).await
        } else {
            Ok(Vec::new())
        }
    };
    // Independent reads (each its own tenant transaction): side by side.
    let (assignees, picture) = tokio::try_join!(
        assignees,
        client_tabs::picture_card(state, user, client, errors)
    )?;
    let props: Vec<(&str, String)> = vec![
        ("E-mail", client.email.clone()),
        ("Phone", client.phone_number.clone()),
        ("Gender", display(&client.gender)),
        ("Date of birth", client.dob.clone().unwrap_or_default()),
        (
            "Address",
            [
                client.street.as_str(),
                client.suburb.as_str(),
                client.state.as_str(),
                client.postcode.as_str(),
                client.country.as_str(),
            ]
            .iter()
            .filter(|p| !p.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(", "),
        ),
        ("Branch", client.branch_name.clone().unwrap_or_default()),
        (
            "Assigned to",
            client.assigned_to_name.clone().unwrap_or_default(),
        ),
        (
            "Visa category",
            client.visa_category_name.clone().unwrap_or_default(),
        ),
        ("Agent", client.agent_name.clone().unwrap_or_default()),
        ("Referred by", client.referred_by.clone()),
        (
            "Created",
            format!(
                "{} by {}",
                minute(&client.created_at),
                client.created_by_name.as_deref().unwrap_or("—")
            ),
        ),
        ("Updated", minute(&client.updated_at)),
    ];
    let assigned = client
        .assigned_to
        .map(|a| a.to_string())
        .unwrap_or_default();
    Ok(html! {
        (errors.alert(&["file"]))
        div.cards {
            (picture)
            div.card.span2 {
                h2 { "Details" }
                dl.props {
                    @for (label, value) in &props {
                        dt { (label) } dd { @if value.is_empty() { "—" } @else { (value) } }
                    }
                }
                @if !client.description.is_empty() { h2 { "Description" } p { (client.description) } }
            }
            @if may_change {
                div.card {
                    h2 { "Assign" }
                    form.toolbar method="post" action={ "/clients/" (client.id) "/edit/" } {
                        (csrf_field(user))
                        input type="hidden" name="_return" value="detail";
                        label.sr-only for="assign-to" { "Assign to" }
                        select #assign-to name="assigned_to_id" {
                            option value="" { "Nobody" }
                            @for (value, label) in &assignees {
                                option value=(value) selected[*value == assigned] { (label) }
                            }
                        }
                        button type="submit" { "Assign" }
                    }
                    h2 { "Stage" }
                    form.toolbar method="post" action={ "/clients/" (client.id) "/edit/" } {
                        (csrf_field(user))
                        input type="hidden" name="_return" value="detail";
                        label.sr-only for="change-stage" { "Stage" }
                        select #change-stage name="stage" {
                            @for (value, label) in stage_options() {
                                option value=(value) selected[value == client.stage] { (label) }
                            }
                        }
                        button type="submit" { "Change stage" }
                    }
                }
            }
        }
    })
}

async fn timeline_tab(
    user: &WebUser,
    client: &ClientOutput,
    paging: &Query,
) -> Result<Markup, ApiError> {
    let paged = Paged::new(paging, &[("tab", "timeline")], TAB_PAGE_SIZE, MAX_PAGE_SIZE)?;
    let (pagination, raw) = paged.request("/api/v1/clients/timeline/", &[]);
    let Json(rows) = api::timeline(
        user.auth.clone(),
        pagination,
        Path(client.id.to_string()),
        raw,
    )
    .await?;
    Ok(html! {
        ul.compact.timeline {
            @for entry in &rows.results {
                li {
                    time datetime=(entry.created_at) { (minute(&entry.created_at)) }
                    span.chip { (entry.activity_type_display) }
                    " " (entry.description)
                    @if let Some(who) = &entry.performed_by_name { span.muted { " — " (who) } }
                }
            }
            @if rows.results.is_empty() { li.muted { "Nothing has happened yet." } }
        }
        (paged.pager(&rows))
    })
}

async fn tasks_tab(
    user: &WebUser,
    client: &ClientOutput,
    paging: &Query,
) -> Result<Markup, ApiError> {
    if !may(&user.auth.principal, Action::View, ResourceKind::Task) {
        return Ok(html! { p.muted { "You cannot see tasks." } });
    }
    let paged = Paged::new(paging, &[("tab", "tasks")], TAB_PAGE_SIZE, MAX_PAGE_SIZE)?;
    let (pagination, raw) = paged.request("/api/v1/tasks/", &[("client", client.id.to_string())]);
    let Json(rows) = tasks::list(user.auth.clone(), pagination, raw).await?;
    Ok(html! {
        (super::tasks::table(user, &rows.results))
        (paged.pager(&rows))
    })
}
