//! The client page's profile and related tabs: passport (show, create and edit through the
//! API's upsert), language proficiencies, qualifications and employments (list, add, edit,
//! delete), note edit and delete, and the client's reminders, visa applications and college
//! applications.
//!
//! Every read and write is the API's own operation, called in-process with the session's
//! [`leopard_http::AuthUser`]: `passports`, the generic profile-section handlers of
//! [`crate::api::crm::profile`], `notes` (whose author-or-permission rule,
//! [`notes::may_touch`], also decides which buttons are shown), `reminders`,
//! `visa_applications` and `college_applications`. A row of another client, or out of scope,
//! is the API's 404; a refused write re-renders the tab with the API's field errors.

use axum::extract::{FromRequest, Multipart, Path, RawQuery, Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use leopard_http::pagination::MAX_PAGE_SIZE;
use leopard_http::{ApiError, AuthUser, JsonBody, Page};
use leopard_rbac::{Action, ResourceKind};
use maud::{html, Markup};
use serde_json::{Map, Value};

use super::clients::{detail, Posted, TabView};
use super::session::{csrf_refused, see_other};
use super::widgets::{
    action_button, chip, csrf_field, display, input, json_text, may, minute, select, textarea,
    FormErrors, Paged, Query,
};
use super::{error_page, WebForm, WebUser};
use crate::api::applications::{college_applications, visa_applications};
use crate::api::crm::clients::ClientOutput;
use crate::api::crm::employments::Employment;
use crate::api::crm::proficiencies::Proficiency;
use crate::api::crm::profile::{
    section_create, section_destroy, section_list, section_replace, section_retrieve, Section,
};
use crate::api::crm::qualifications::Qualification;
use crate::api::crm::{language_exams, notes, passports, profile_pictures, reminders};
use crate::app::AppState;

/// A form field: (name, label, input type, required). Type `exam` is the language exams'
/// select.
type Field = (&'static str, &'static str, &'static str, bool);

/// The passport form's fields.
const PASSPORT_FIELDS: &[Field] = &[
    ("passport_no", "Passport number", "text", true),
    (
        "passport_country",
        "Passport country (ISO code)",
        "text",
        true,
    ),
    ("nationality", "Nationality (ISO code)", "text", true),
    (
        "country_of_birth",
        "Country of birth (ISO code)",
        "text",
        true,
    ),
    ("date_of_issue", "Date of issue", "date", false),
    ("date_of_expiry", "Date of expiry", "date", false),
    ("place_of_issue", "Place of issue", "text", false),
];

/// Evaluates `$body` with `$S` naming the API's [`Section`] type of `$section` (the three
/// sections share one generic implementation in [`crate::api::crm::profile`]).
macro_rules! with_section {
    ($section:expr, $S:ident => $body:expr) => {
        match $section {
            SectionTab::Proficiencies => {
                type $S = Proficiency;
                $body
            }
            SectionTab::Qualifications => {
                type $S = Qualification;
                $body
            }
            SectionTab::Employments => {
                type $S = Employment;
                $body
            }
        }
    };
}

/// A client-owned profile section with its own tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SectionTab {
    /// Language proficiencies (`/api/v1/language-proficiencies/`).
    Proficiencies,
    /// Qualifications (`/api/v1/qualifications/`).
    Qualifications,
    /// Employments (`/api/v1/employments/`).
    Employments,
}

impl SectionTab {
    /// The section of a URL segment (which is also its tab key).
    pub(crate) fn from_key(key: &str) -> Option<Self> {
        match key {
            "proficiencies" => Some(Self::Proficiencies),
            "qualifications" => Some(Self::Qualifications),
            "employments" => Some(Self::Employments),
            _ => None,
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::Proficiencies => "proficiencies",
            Self::Qualifications => "qualifications",
            Self::Employments => "employments",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Proficiencies => "language proficiency",
            Self::Qualifications => "qualification",
            Self::Employments => "employment",
        }
    }

    fn kind(self) -> ResourceKind {
        with_section!(self, S => S::KIND)
    }

    /// The form's fields, in order; the table shows the same columns.
    fn fields(self) -> &'static [Field] {
        match self {
            Self::Proficiencies => &[
                ("test_name_id", "Exam", "exam", true),
                ("overall_score", "Overall", "text", true),
                ("listening_score", "Listening", "text", false),
                ("reading_score", "Reading", "text", false),
                ("writing_score", "Writing", "text", false),
                ("speaking_score", "Speaking", "text", false),
                ("test_date", "Test date", "date", true),
            ],
            Self::Qualifications => &[
                ("course", "Course", "text", true),
                ("institute", "Institute", "text", false),
                ("degree", "Degree", "text", false),
                ("field_of_study", "Field of study", "text", false),
                ("enroll_date", "Enrolled", "date", false),
                ("completion_date", "Completed", "date", false),
                ("country", "Country (ISO code)", "text", true),
            ],
            Self::Employments => &[
                ("employer_name", "Employer", "text", true),
                ("position", "Position", "text", true),
                ("start_date", "Start", "date", true),
                ("end_date", "End", "date", true),
                ("country", "Country (ISO code)", "text", true),
            ],
        }
    }
}

/// The page size of a client tab's list when the request names none.
pub(crate) const TAB_PAGE_SIZE: i64 = 100;

/// The reminders tab's page size, and the API's cap on reminder pages.
const REMINDERS_PAGE_SIZE: (i64, i64) = (50, 50);

/// The page `paged` of the rows of section `S` of `client`, as JSON objects (the API's list).
async fn rows_of<S: Section>(
    auth: &AuthUser,
    client: i64,
    paged: &Paged,
) -> Result<Page<Value>, ApiError> {
    let (pagination, raw) = paged.request("/api/v1/", &[("client_id", client.to_string())]);
    let Json(page) = section_list::<S>(auth.clone(), pagination, raw).await?;
    let results = page
        .results
        .iter()
        .map(|row| serde_json::to_value(row).map_err(|e| ApiError::Internal(e.to_string())))
        .collect::<Result<Vec<Value>, ApiError>>()?;
    Ok(Page {
        count: page.count,
        next: page.next,
        previous: page.previous,
        results,
    })
}

/// The JSON body of a posted section or passport form: the named fields, empty ones left out
/// (the API's default, or its "required"), ids as numbers, plus `client_id`.
fn body_of(fields: &[Field], form: &WebForm, client: i64) -> Value {
    let mut body = Map::new();
    body.insert("client_id".into(), Value::from(client));
    for (name, _, kind, _) in fields {
        let Some(value) = form.get(name) else {
            continue;
        };
        let json = if *kind == "exam" {
            value
                .parse::<i64>()
                .map_or_else(|_| Value::from(value), Value::from)
        } else {
            Value::from(value)
        };
        body.insert((*name).to_owned(), json);
    }
    Value::Object(body)
}

/// The fields of a form over `values`, with `exams` for an exam select.
fn form_fields(
    fields: &[Field],
    values: &dyn Fn(&str) -> String,
    errors: &FormErrors,
    exams: &[(String, String)],
) -> Markup {
    html! {
        @for (name, label, kind, required) in fields {
            @if *kind == "exam" {
                (select(name, label, exams, &values(name), Some("—"), errors))
            } @else {
                (input(name, label, kind, &values(name), errors, *required))
            }
        }
    }
}

/// The language exams offered by the proficiency form (the API's list).
async fn exam_options(auth: &AuthUser) -> Result<Vec<(String, String)>, ApiError> {
    let (pagination, raw) = super::options::first_page("/api/v1/language-exams/", &[]);
    let Json(page) = language_exams::list(auth.clone(), pagination, raw).await?;
    Ok(page
        .results
        .iter()
        .map(|e| (e.id.to_string(), e.name.clone()))
        .collect())
}

// ----- the tabs --------------------------------------------------------------------------------

/// The passport tab: the passport, and its form for those who may add or change passports.
pub(crate) async fn passport_tab(
    user: &WebUser,
    client: &ClientOutput,
    errors: &FormErrors,
    posted: Option<&Posted>,
) -> Result<Markup, ApiError> {
    let principal = &user.auth.principal;
    if !may(principal, Action::View, ResourceKind::Passport) {
        return Ok(html! { p.muted { "You cannot see passports." } });
    }
    let passport = match passports::retrieve(user.auth.clone(), Path(client.id.to_string())).await {
        Ok(Json(p)) => serde_json::to_value(p).map_err(|e| ApiError::Internal(e.to_string()))?,
        Err(ApiError::NotFound(_)) => Value::Null,
        Err(err) => return Err(err),
    };
    let exists = !passport.is_null();
    let may_write = if exists {
        may(principal, Action::Change, ResourceKind::Passport)
    } else {
        may(principal, Action::Add, ResourceKind::Passport)
            || may(principal, Action::Change, ResourceKind::Passport)
    };
    let values = |name: &str| match posted {
        Some(p) => p.get(name).cloned().unwrap_or_default(),
        None => json_text(passport.get(name)),
    };
    Ok(html! {
        div.cards {
            div.card {
                h2 { "Passport" }
                @if exists {
                    dl.props {
                        @for (name, label, _, _) in PASSPORT_FIELDS {
                            dt { (label) }
                            dd { @let v = json_text(passport.get(name)); @if v.is_empty() { "—" } @else { (v) } }
                        }
                        dt { "Updated" } dd { (minute(&json_text(passport.get("updated_at")))) }
                    }
                } @else {
                    p.muted { "No passport recorded." }
                }
            }
            @if may_write {
                div.card.span2 {
                    h2 { @if exists { "Edit passport" } @else { "Add passport" } }
                    (errors.alert(&PASSPORT_FIELDS.iter().map(|f| f.0).collect::<Vec<_>>()))
                    form.fields method="post" action={ "/clients/" (client.id) "/passport/" } novalidate {
                        (csrf_field(user))
                        (form_fields(PASSPORT_FIELDS, &values, errors, &[]))
                        div.wide { button.primary type="submit" { "Save passport" } }
                    }
                }
            }
        }
    })
}

/// A section's tab: its table, edit and delete buttons by permission, the add form (or the
/// edit form of row `?edit=`).
pub(crate) async fn section_tab(
    user: &WebUser,
    client: &ClientOutput,
    section: SectionTab,
    errors: &FormErrors,
    posted: Option<&Posted>,
    editing: Option<i64>,
    paging: &Query,
) -> Result<Markup, ApiError> {
    let auth = &user.auth;
    let kind = section.kind();
    if !may(&auth.principal, Action::View, kind) {
        return Ok(html! { p.muted { "You cannot see these records." } });
    }
    let paged = Paged::new(
        paging,
        &[("tab", section.key())],
        TAB_PAGE_SIZE,
        MAX_PAGE_SIZE,
    )?;
    let page = with_section!(section, S => rows_of::<S>(auth, client.id, &paged).await?);
    let rows = &page.results;
    let may_add = may(&auth.principal, Action::Add, kind);
    let may_change = may(&auth.principal, Action::Change, kind);
    let may_delete = may(&auth.principal, Action::Delete, kind);
    let exams = if section == SectionTab::Proficiencies && (may_add || may_change) {
        exam_options(auth).await?
    } else {
        Vec::new()
    };
    let here = paged.here();
    let editing_row = editing.and_then(|id| {
        rows.iter()
            .find(|r| r.get("id").and_then(Value::as_i64) == Some(id))
    });
    let fields = section.fields();
    let key = section.key();
    let shows_form = if editing_row.is_some() {
        may_change
    } else {
        may_add
    };
    let values = |name: &str| match (posted, editing_row) {
        (Some(p), _) => p.get(name).cloned().unwrap_or_default(),
        (None, Some(row)) => json_text(row.get(name)),
        (None, None) => String::new(),
    };
    let cell = |row: &Value, name: &str| {
        if name == "test_name_id" {
            json_text(row.get("test_name_display"))
        } else {
            json_text(row.get(name))
        }
    };
    let action = match editing_row {
        Some(row) => format!(
            "/clients/{}/{key}/{}/edit/",
            client.id,
            json_text(row.get("id"))
        ),
        None => format!("/clients/{}/{key}/new/", client.id),
    };
    Ok(html! {
        div.table-wrap {
            table.grid {
                thead { tr {
                    @for (_, label, _, _) in fields { th { (label) } }
                    @if may_change || may_delete { th { span.sr-only { "Actions" } } }
                } }
                tbody {
                    @for row in rows {
                        @let id = json_text(row.get("id"));
                        tr {
                            @for (name, _, _, _) in fields {
                                td { @let v = cell(row, name); @if v.is_empty() { "—" } @else { (v) } }
                            }
                            @if may_change || may_delete {
                                td.actions {
                                    @if may_change {
                                        a href={ (here) "&edit=" (id) } { "Edit" } " "
                                    }
                                    @if may_delete {
                                        (action_button(user, &format!("/clients/{}/{key}/{id}/delete/", client.id), "Delete", Some("Delete this record?")))
                                    }
                                }
                            }
                        }
                    }
                    @if rows.is_empty() {
                        tr.empty { td colspan=(fields.len() + 1) { "Nothing recorded." } }
                    }
                }
            }
        }
        (paged.pager(&page))
        @if shows_form {
            h2 { @if editing_row.is_some() { "Edit " (section.noun()) } @else { "Add " (section.noun()) } }
            (errors.alert(&fields.iter().map(|f| f.0).collect::<Vec<_>>()))
            form.fields method="post" action=(action) novalidate {
                (csrf_field(user))
                (form_fields(fields, &values, errors, &exams))
                div.wide {
                    button.primary type="submit" { "Save" }
                    @if editing_row.is_some() { " " a href=(here) { "Cancel" } }
                }
            }
        }
    })
}

/// The notes of the client with edit (`?edit=`) and delete by the API's rule.
pub(crate) async fn notes_tab(
    user: &WebUser,
    client: &ClientOutput,
    errors: &FormErrors,
    posted: Option<&Posted>,
    editing: Option<i64>,
    paging: &Query,
) -> Result<Markup, ApiError> {
    if !may(&user.auth.principal, Action::View, ResourceKind::Note) {
        return Ok(html! { p.muted { "You cannot see notes." } });
    }
    let paged = Paged::new(paging, &[("tab", "notes")], TAB_PAGE_SIZE, MAX_PAGE_SIZE)?;
    let here = paged.here();
    let (pagination, raw) = paged.request("/api/v1/notes/", &[("client", client.id.to_string())]);
    let Json(rows) = notes::list(user.auth.clone(), pagination, raw).await?;
    let principal = &user.auth.principal;
    let adding = editing.is_none();
    Ok(html! {
        @if may(principal, Action::Add, ResourceKind::Note) && adding {
            (errors.alert(&["content"]))
            form method="post" action={ "/clients/" (client.id) "/notes/" } {
                (csrf_field(user))
                (textarea("content", "New note", &posted.and_then(|p| p.get("content").cloned()).unwrap_or_default(), errors))
                button.primary type="submit" { "Add note" }
            }
        }
        ul.compact.timeline {
            @for note in &rows.results {
                li {
                    div {
                        time { (minute(&note.created_at)) }
                        strong { (note.author_name.as_deref().unwrap_or("—")) }
                        @if editing == Some(note.id) && notes::may_touch(principal, note.author, Action::Change) {
                            (errors.alert(&["content"]))
                            form method="post" action={ "/clients/" (client.id) "/notes/" (note.id) "/edit/" } {
                                (csrf_field(user))
                                (textarea("content", "Note", &posted.and_then(|p| p.get("content").cloned()).unwrap_or_else(|| note.content.clone()), errors))
                                button.primary type="submit" { "Save note" } " "
                                a href=(here) { "Cancel" }
                            }
                        } @else {
                            p { (note.content) }
                            @if notes::may_touch(principal, note.author, Action::Change) {
                                a href={ (here) "&edit=" (note.id) } { "Edit" } " "
                            }
                            @if notes::may_touch(principal, note.author, Action::Delete) {
                                (action_button(user, &format!("/clients/{}/notes/{}/delete/", client.id, note.id), "Delete", Some("Delete this note?")))
                            }
                        }
                    }
                }
            }
            @if rows.results.is_empty() { li.muted { "No notes yet." } }
        }
        (paged.pager(&rows))
    })
}

/// The client's reminders (the API's list filtered by `object_id`), with links to the
/// reminders page and the new-reminder and new-task forms for this client.
pub(crate) async fn reminders_tab(
    user: &WebUser,
    client: &ClientOutput,
    paging: &Query,
) -> Result<Markup, ApiError> {
    let principal = &user.auth.principal;
    if !may(principal, Action::View, ResourceKind::Reminder) {
        return Ok(html! { p.muted { "You cannot see reminders." } });
    }
    let (size, max) = REMINDERS_PAGE_SIZE;
    let paged = Paged::new(paging, &[("tab", "reminders")], size, max)?;
    let (pagination, raw) = paged.request(
        "/api/v1/reminders/",
        &[("object_id", client.id.to_string())],
    );
    let Json(rows) = reminders::list(user.auth.clone(), pagination, raw).await?;
    Ok(html! {
        div.toolbar {
            a.grow href={ "/reminders/?status=all&object_id=" (client.id) } { "All reminders of this client" }
            @if may(principal, Action::Add, ResourceKind::Reminder) {
                a.button href={ "/reminders/new/?client=" (client.id) } { "New reminder" }
            }
            @if may(principal, Action::Add, ResourceKind::Task) {
                a.button href={ "/tasks/new/?client=" (client.id) } { "New task" }
            }
        }
        div.table-wrap {
            table.grid {
                thead { tr { th { "Date" } th { "Time" } th { "Title" } th { "Status" } } }
                tbody {
                    @for r in &rows.results {
                        tr {
                            td { (r.reminder_date.as_deref().unwrap_or("—")) }
                            td { (r.reminder_time.as_deref().unwrap_or("—")) }
                            td { a href={ "/reminders/" (r.id) "/edit/" } { (r.title) } }
                            td { @if r.is_completed { (chip("DONE", "Done")) } @else { (chip("OPEN", "Open")) } }
                        }
                    }
                    @if rows.results.is_empty() { tr.empty { td colspan="4" { "No reminders." } } }
                }
            }
        }
        (paged.pager(&rows))
    })
}

/// The client's visa applications (the API's list filtered by `client_id`).
pub(crate) async fn visa_tab(
    user: &WebUser,
    client: &ClientOutput,
    paging: &Query,
) -> Result<Markup, ApiError> {
    let principal = &user.auth.principal;
    if !may(principal, Action::View, ResourceKind::VisaApplication) {
        return Ok(html! { p.muted { "You cannot see visa applications." } });
    }
    let paged = Paged::new(paging, &[("tab", "visa")], TAB_PAGE_SIZE, MAX_PAGE_SIZE)?;
    let (pagination, raw) = paged.request(
        "/api/v1/visa-applications/",
        &[("client_id", client.id.to_string())],
    );
    let Json(rows) = visa_applications::list(user.auth.clone(), pagination, raw).await?;
    Ok(html! {
        @if may(principal, Action::Add, ResourceKind::VisaApplication) {
            div.toolbar { a.button href={ "/visa-applications/new/?client=" (client.id) } { "New visa application" } }
        }
        div.table-wrap {
            table.grid {
                thead { tr { th { "Visa type" } th { "Status" } th { "Assigned to" } th { "Applied" } th { "Expiry" } } }
                tbody {
                    @for a in &rows.results {
                        tr tabindex="0" data-href={ "/visa-applications/" (a.id) "/" } {
                            td { a href={ "/visa-applications/" (a.id) "/" } { (a.visa_type_name) } }
                            td { (chip(&a.status, &display(&a.status))) }
                            td { (a.assigned_to_name.as_deref().unwrap_or("—")) }
                            td { (a.date_applied.as_deref().unwrap_or("—")) }
                            td { (a.expiry_date.as_deref().unwrap_or("—")) }
                        }
                    }
                    @if rows.results.is_empty() { tr.empty { td colspan="5" { "No visa applications." } } }
                }
            }
        }
        (paged.pager(&rows))
    })
}

/// The client's college applications (the API's list filtered by `client_id`).
pub(crate) async fn college_tab(
    user: &WebUser,
    client: &ClientOutput,
    paging: &Query,
) -> Result<Markup, ApiError> {
    let principal = &user.auth.principal;
    if !may(principal, Action::View, ResourceKind::CollegeApplication) {
        return Ok(html! { p.muted { "You cannot see college applications." } });
    }
    let paged = Paged::new(paging, &[("tab", "college")], TAB_PAGE_SIZE, MAX_PAGE_SIZE)?;
    let (pagination, raw) = paged.request(
        "/api/v1/college-applications/",
        &[("client_id", client.id.to_string())],
    );
    let Json(rows) = college_applications::list(user.auth.clone(), pagination, raw).await?;
    Ok(html! {
        div.table-wrap {
            table.grid {
                thead { tr { th { "Type" } th { "Stage" } th { "Institute" } th { "Course" } th { "Intake" } } }
                tbody {
                    @for a in &rows.results {
                        tr tabindex="0" data-href={ "/college-applications/" (a.id) "/" } {
                            td { a href={ "/college-applications/" (a.id) "/" } { (a.application_type_title) } }
                            td { (a.stage_name) }
                            td { (a.institute_name) }
                            td { (a.course_name) }
                            td { (a.intake_date) }
                        }
                    }
                    @if rows.results.is_empty() { tr.empty { td colspan="5" { "No college applications." } } }
                }
            }
        }
        (paged.pager(&rows))
    })
}

// ----- the forms ---------------------------------------------------------------------------

/// The outcome of a tab's write: back to the tab, or the tab with the API's field errors and
/// the posted values, or the error page.
async fn finish<T>(
    state: &AppState,
    result: Result<T, ApiError>,
    form: &WebForm,
    client: &str,
    tab: &str,
    editing: Option<i64>,
) -> Response {
    match result {
        Ok(_) => see_other(&format!("/clients/{client}/?tab={tab}")),
        Err(err) => match FormErrors::from_error(&err) {
            Some(errors) => {
                let posted: Posted = form.fields.clone();
                detail(
                    state,
                    &form.user,
                    client,
                    tab,
                    Some(&errors),
                    Some(&posted),
                    &TabView::editing(editing),
                )
                .await
            }
            None => error_page(&err, Some(&form.user)),
        },
    }
}

/// The client id of a path segment, or the API's 404.
fn client_id(raw: &str) -> Result<i64, ApiError> {
    crate::api::input::path_id(raw).ok_or_else(crate::api::crm::profile::not_found)
}

/// `POST /clients/{id}/passport/`: the API's upsert (`POST /api/v1/passports/upsert/`).
pub(crate) async fn passport_save(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm,
) -> Response {
    let client = match client_id(&id) {
        Ok(client) => client,
        Err(err) => return error_page(&err, Some(&form.user)),
    };
    let body = body_of(PASSPORT_FIELDS, &form, client);
    let app = state.clone();
    let result = passports::create(State(state), form.user.auth.clone(), JsonBody(body)).await;
    finish(&app, result, &form, &id, "passport", None).await
}

/// Checks that row `row` of `section` belongs to client `client` (the API's retrieve: out
/// of scope is its 404; a row of another client is a 404 too).
async fn own_row(
    auth: &AuthUser,
    section: SectionTab,
    client: i64,
    row: &str,
) -> Result<(), ApiError> {
    let path = Path(row.to_owned());
    let value = with_section!(section, S => {
        serde_json::to_value(section_retrieve::<S>(auth.clone(), path).await?.0)
    })
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    if value.get("client_id").and_then(Value::as_i64) == Some(client) {
        Ok(())
    } else {
        Err(crate::api::crm::profile::not_found())
    }
}

/// The client id and section of a section form's path, or the 404 of a bad one.
fn section_target(id: &str, key: &str) -> Result<(i64, SectionTab), ApiError> {
    let section = SectionTab::from_key(key).ok_or_else(crate::api::crm::profile::not_found)?;
    Ok((client_id(id)?, section))
}

/// `POST /clients/{id}/{section}/new/`: the section's create.
pub(crate) async fn section_add(
    State(state): State<AppState>,
    Path((id, key)): Path<(String, String)>,
    form: WebForm,
) -> Response {
    let (client, section) = match section_target(&id, &key) {
        Ok(target) => target,
        Err(err) => return error_page(&err, Some(&form.user)),
    };
    let body = JsonBody(body_of(section.fields(), &form, client));
    let app = state.clone();
    let (state, auth) = (State(state), form.user.auth.clone());
    let result =
        with_section!(section, S => section_create::<S>(state, auth, body).await.map(drop));
    finish(&app, result, &form, &id, section.key(), None).await
}

/// `POST /clients/{id}/{section}/{row}/edit/`: the section's PUT (the form posts every field).
pub(crate) async fn section_edit(
    State(state): State<AppState>,
    Path((id, key, row)): Path<(String, String, String)>,
    form: WebForm,
) -> Response {
    let (client, section) = match section_target(&id, &key) {
        Ok(target) => target,
        Err(err) => return error_page(&err, Some(&form.user)),
    };
    let auth = form.user.auth.clone();
    if let Err(err) = own_row(&auth, section, client, &row).await {
        return error_page(&err, Some(&form.user));
    }
    let body = JsonBody(body_of(section.fields(), &form, client));
    let app = state.clone();
    let (state, path) = (State(state), Path(row.clone()));
    let result = with_section!(section, S => {
        section_replace::<S>(state, auth, path, body).await.map(drop)
    });
    let editing = row.parse().ok();
    finish(&app, result, &form, &id, section.key(), editing).await
}

/// `POST /clients/{id}/{section}/{row}/delete/`: the section's delete.
pub(crate) async fn section_delete(
    State(state): State<AppState>,
    Path((id, key, row)): Path<(String, String, String)>,
    form: WebForm,
) -> Response {
    let (client, section) = match section_target(&id, &key) {
        Ok(target) => target,
        Err(err) => return error_page(&err, Some(&form.user)),
    };
    let auth = form.user.auth.clone();
    if let Err(err) = own_row(&auth, section, client, &row).await {
        return error_page(&err, Some(&form.user));
    }
    let app = state.clone();
    let (state, path) = (State(state), Path(row));
    let result = with_section!(section, S => section_destroy::<S>(state, auth, path).await);
    finish(&app, result, &form, &id, section.key(), None).await
}

/// Checks that note `note` belongs to the client of path segment `client` (the API's
/// retrieve: out of scope is its 404; a note of another client is a 404 too).
async fn own_note(auth: &AuthUser, client: &str, note: &str) -> Result<(), ApiError> {
    let client = client_id(client)?;
    let Json(found) = notes::retrieve(auth.clone(), Path(note.to_owned())).await?;
    if found.client == client {
        Ok(())
    } else {
        Err(crate::api::crm::profile::not_found())
    }
}

/// `POST /clients/{id}/notes/{note}/edit/`: the API's PATCH of `content` (author or
/// `change_note`).
pub(crate) async fn note_edit(
    State(state): State<AppState>,
    Path((id, note)): Path<(String, String)>,
    form: WebForm,
) -> Response {
    let auth = form.user.auth.clone();
    if let Err(err) = own_note(&auth, &id, &note).await {
        return error_page(&err, Some(&form.user));
    }
    let mut body = Map::new();
    body.insert(
        "content".into(),
        Value::from(form.fields.get("content").cloned().unwrap_or_default()),
    );
    let app = state.clone();
    let result = notes::update_put(
        State(state),
        auth,
        Path(note.clone()),
        JsonBody(Value::Object(body)),
    )
    .await;
    finish(&app, result, &form, &id, "notes", note.parse().ok()).await
}

/// `POST /clients/{id}/notes/{note}/delete/`: the API's delete (author or `delete_note`).
pub(crate) async fn note_delete(
    State(state): State<AppState>,
    Path((id, note)): Path<(String, String)>,
    form: WebForm,
) -> Response {
    let auth = form.user.auth.clone();
    if let Err(err) = own_note(&auth, &id, &note).await {
        return error_page(&err, Some(&form.user));
    }
    let app = state.clone();
    let result = notes::destroy(State(state), auth, Path(note)).await;
    finish(&app, result, &form, &id, "notes", None).await
}

// ----- the profile picture ---------------------------------------------------------------

/// The overview's picture card: the picture (served through [`picture_file`]), the upload
/// form for holders of `add_profilepicture` and the remove button for holders of
/// `delete_profilepicture`. Nothing for those who may not view pictures.
pub(crate) async fn picture_card(
    state: &AppState,
    user: &WebUser,
    client: &ClientOutput,
    errors: &FormErrors,
) -> Result<Markup, ApiError> {
    let principal = &user.auth.principal;
    if !may(principal, Action::View, ResourceKind::ProfilePicture) {
        return Ok(html! {});
    }
    let picture = match profile_pictures::retrieve(
        State(state.clone()),
        user.auth.clone(),
        HeaderMap::new(),
        Path(client.id.to_string()),
    )
    .await
    {
        Ok(Json(picture)) => Some(picture),
        Err(ApiError::NotFound(_)) => None,
        Err(err) => return Err(err),
    };
    let messages = errors.of("file");
    Ok(html! {
        div.card {
            h2 { "Profile picture" }
            @if let Some(picture) = &picture {
                img.avatar src={ "/clients/" (client.id) "/picture/?v=" (picture.id) "-" (picture.updated_at) } alt="Profile picture" width="160";
                p.muted { (picture.file_type) ", " (picture.file_size / 1024) " KiB" }
            } @else {
                p.muted { "No picture." }
            }
            @if may(principal, Action::Add, ResourceKind::ProfilePicture) {
                form method="post" enctype="multipart/form-data"
                    action={ "/clients/" (client.id) "/picture/?csrf=" (user.csrf) } {
                    div class={ "field" @if !messages.is_empty() { " invalid" } } {
                        label for="f-file" { "JPEG, PNG or WebP, at most 5 MiB" }
                        input #f-file type="file" name="file" accept="image/jpeg,image/png,image/webp";
                        @if !messages.is_empty() { p.error { (messages.join(" ")) } }
                    }
                    button type="submit" { "Upload" }
                }
            }
            @if picture.is_some() && may(principal, Action::Delete, ResourceKind::ProfilePicture) {
                (action_button(user, &format!("/clients/{}/picture/delete/", client.id), "Remove picture", Some("Remove the profile picture?")))
            }
        }
    })
}

/// `GET /clients/{id}/picture/`: the API's retrieve (permission and scope), then a redirect to
/// its signed, expiring file URL.
pub(crate) async fn picture_file(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match profile_pictures::retrieve(State(state), user.auth.clone(), headers, Path(id)).await {
        Ok(Json(picture)) => see_other(&picture.file_url),
        Err(err) => error_page(&err, Some(&user)),
    }
}

/// `POST /clients/{id}/picture/?csrf=`: the API's multipart upload. The CSRF token rides in
/// the query string, so it is checked before a byte of the body is read; the size and type
/// rules are the API's.
pub(crate) async fn picture_upload(
    State(state): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    request: Request,
) -> Response {
    let query = Query::parse(raw.as_deref());
    if !user.csrf_valid(&state.web, query.get("csrf").unwrap_or("")) {
        tracing::info!(tenant = %user.auth.tenant.tenant().slug, "upload refused: bad CSRF token");
        return csrf_refused();
    }
    let multipart = Multipart::from_request(request, &state).await;
    let result = profile_pictures::upload(
        State(state.clone()),
        user.auth.clone(),
        headers,
        Path(id.clone()),
        multipart,
    )
    .await;
    match result {
        Ok(_) => see_other(&format!("/clients/{id}/")),
        Err(err) => match upload_errors(&err) {
            Some(mut errors) => {
                if let Some(message) = errors.form.take() {
                    errors
                        .fields
                        .entry("file".into())
                        .or_default()
                        .push(message);
                }
                detail(
                    &state,
                    &user,
                    &id,
                    "overview",
                    Some(&errors),
                    None,
                    &TabView::default(),
                )
                .await
            }
            None => error_page(&err, Some(&user)),
        },
    }
}

/// The errors of a refused upload the overview shows on its file field: the API's 400s and
/// its 413 for a file over the size limit.
fn upload_errors(err: &ApiError) -> Option<FormErrors> {
    match err {
        ApiError::PayloadTooLarge(_) => Some(FormErrors {
            form: Some(err.detail()),
            ..FormErrors::default()
        }),
        _ => FormErrors::from_error(err),
    }
}

/// `POST /clients/{id}/picture/delete/`: the API's delete.
pub(crate) async fn picture_delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm,
) -> Response {
    match profile_pictures::destroy(State(state), form.user.auth.clone(), Path(id.clone())).await {
        Ok(_) => see_other(&format!("/clients/{id}/")),
        Err(err) => error_page(&err, Some(&form.user)),
    }
}
