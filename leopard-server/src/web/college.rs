//! The college-application screens: the list (type, stage and client filters, sortable
//! columns, pages), the application page with its stage move, the stage board of an
//! application type (one column per stage in order, one card per application; a card is
//! dragged to another column, or moved with its own small form without JavaScript), and the
//! application types with their stages (create a type; add, reorder and delete stages; delete
//! a type).
//!
//! Every read and write is the API's operation from
//! [`crate::api::applications::college_applications`], [`crate::api::applications::stages`]
//! and the generic master-data handlers of the application types, called with the session's
//! [`leopard_http::AuthUser`]: the scope (an application follows its client's branch), the
//! rules (a move stays within the application's type; a stage holding live applications, or a
//! type with live applications, cannot be deleted) and the events (a stage move is the
//! `CollegeApplication.stage.UPDATE` event, written to the client's timeline) are the API's.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use leopard_http::{ApiError, AuthUser, JsonBody};
use leopard_rbac::{Action, ResourceKind};
use maud::{html, Markup};
use serde_json::{json, Map, Value};

use super::widgets::{
    action_button, chip, csrf_field, day, input, may, minute, page, pager, select, sort_header,
    textarea, FormErrors, Query,
};
use super::{error_page, session::see_other, WebForm, WebUser};
use crate::api::applications::application_types::{ApplicationType, ApplicationTypeOutput};
use crate::api::applications::college_applications::{self as api, CollegeApplicationOutput};
use crate::api::applications::stages::{self, StageOutput};
use crate::api::master::{master_create, master_destroy, master_list, master_retrieve};
use crate::app::AppState;

fn with_status(mut response: Response, errors: &FormErrors) -> Response {
    if !errors.fields.is_empty() || errors.form.is_some() {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    response
}

/// A page request of up to 1000 rows with `extra` parameters.
fn rows_query(extra: &[(&str, String)]) -> Query {
    let mut pairs = vec![("page_size".to_owned(), "1000".to_owned())];
    pairs.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    Query(pairs)
}

/// The live application types (the API's `application-types/`), by title.
async fn all_types(auth: &AuthUser) -> Result<Vec<ApplicationTypeOutput>, ApiError> {
    let q = rows_query(&[]);
    let Json(rows) = master_list::<ApplicationType>(
        auth.clone(),
        q.pagination("/api/v1/application-types/"),
        RawQuery(Some(q.raw())),
    )
    .await?;
    Ok(rows.results)
}

/// The stages of type `of_type` in order (the API's `stages/?application_type_id=`).
async fn stages_of(auth: &AuthUser, of_type: i64) -> Result<Vec<StageOutput>, ApiError> {
    let Json(rows) = stages::list(
        auth.clone(),
        RawQuery(Some(format!("application_type_id={of_type}"))),
    )
    .await?;
    Ok(rows)
}

fn stage_options(stages: &[StageOutput]) -> Vec<(String, String)> {
    stages
        .iter()
        .map(|s| {
            (
                s.id.to_string(),
                format!("{}. {}", s.position, s.stage_name),
            )
        })
        .collect()
}

// ----- list --------------------------------------------------------------------------------

/// `GET /college-applications/?application_type_id=&stage_id=&client_name=&ordering=`.
pub(crate) async fn list(user: WebUser, RawQuery(raw): RawQuery) -> Response {
    let query = Query::parse(raw.as_deref());
    let auth = &user.auth;
    let rows = match api::list(
        auth.clone(),
        query.pagination("/college-applications/"),
        RawQuery(Some(query.raw())),
    )
    .await
    {
        Ok(Json(rows)) => rows,
        Err(err) => return error_page(&err, Some(&user)),
    };
    let types = match all_types(auth).await {
        Ok(types) => types,
        Err(err) => return error_page(&err, Some(&user)),
    };
    let chosen_type = query
        .get("application_type_id")
        .and_then(|t| t.parse::<i64>().ok());
    let stage_list = match chosen_type {
        Some(t) => match stages_of(auth, t).await {
            Ok(stages) => stages,
            Err(err) => return error_page(&err, Some(&user)),
        },
        None => Vec::new(),
    };
    let body = html! {
        div.toolbar {
            h1.grow { "College applications" }
            @if let Some(t) = chosen_type {
                a.button href={ "/college-applications/board/?type=" (t) } { "Stage board" }
            } @else {
                a.button href="/college-applications/board/" { "Stage board" }
            }
            a.button href="/application-types/" { "Application types" }
        }
        form.toolbar method="get" action="/college-applications/" aria-label="Filter college applications" {
            label.sr-only for="f-client-name" { "Client" }
            input #f-client-name type="search" name="client_name" placeholder="Client name" value=(query.get("client_name").unwrap_or(""));
            label.sr-only for="f-type" { "Application type" }
            select #f-type name="application_type_id" data-autosubmit {
                option value="" { "All types" }
                @for t in &types {
                    option value=(t.id) selected[chosen_type == Some(t.id)] { (t.title) }
                }
            }
            @if !stage_list.is_empty() {
                label.sr-only for="f-stage" { "Stage" }
                select #f-stage name="stage_id" data-autosubmit {
                    option value="" { "All stages" }
                    @for (value, label) in stage_options(&stage_list) {
                        option value=(value) selected[query.get("stage_id") == Some(value.as_str())] { (label) }
                    }
                }
            }
            @if let Some(ordering) = query.get("ordering") { input type="hidden" name="ordering" value=(ordering); }
            @if let Some(size) = query.get("page_size") { input type="hidden" name="page_size" value=(size); }
            button type="submit" { "Filter" }
            a href="/college-applications/" { "Clear" }
        }
        div.table-wrap {
            table.grid {
                thead { tr {
                    (sort_header(&query, "Client", "client_name"))
                    (sort_header(&query, "Type", "application_type"))
                    (sort_header(&query, "Stage", "stage"))
                    (sort_header(&query, "Institute", "institute"))
                    (sort_header(&query, "Course", "course"))
                    (sort_header(&query, "Intake", "intake_date"))
                    th scope="col" { "Assigned to" }
                    (sort_header(&query, "Created", "created_at"))
                } }
                tbody {
                    @for a in &rows.results {
                        tr tabindex="0" data-href={ "/college-applications/" (a.id) "/" } {
                            td { a href={ "/college-applications/" (a.id) "/" } { (a.client_name) } }
                            td { (a.application_type_title) }
                            td { (stage_chip(a)) }
                            td { (a.institute_name) }
                            td { (a.course_name) }
                            td { (a.intake_date) }
                            td { (a.assigned_to_name.as_deref().unwrap_or("—")) }
                            td { (day(&a.created_at)) }
                        }
                    }
                    @if rows.results.is_empty() {
                        tr.empty { td colspan="8" { "No college applications match." } }
                    }
                }
            }
        }
        (pager(&query, rows.count))
    };
    page(&user, "College applications", "college_applications", body)
}

fn stage_chip(a: &CollegeApplicationOutput) -> Markup {
    let class = if a.is_final_stage { "FINAL" } else { "STAGE" };
    chip(class, &format!("{}. {}", a.stage_position, a.stage_name))
}

// ----- detail and the stage move -----------------------------------------------------------

/// `GET /college-applications/{id}/`.
pub(crate) async fn show(user: WebUser, Path(id): Path<String>) -> Response {
    detail(&user, &id, &FormErrors::default()).await
}

async fn detail(user: &WebUser, id: &str, errors: &FormErrors) -> Response {
    let auth = &user.auth;
    let a = match api::retrieve(auth.clone(), Path(id.to_owned())).await {
        Ok(Json(a)) => a,
        Err(err) => return error_page(&err, Some(user)),
    };
    let may_change = may(
        &auth.principal,
        Action::Change,
        ResourceKind::CollegeApplication,
    );
    let stage_list = if may_change {
        match stages_of(auth, a.application_type).await {
            Ok(stages) => stages,
            Err(err) => return error_page(&err, Some(user)),
        }
    } else {
        Vec::new()
    };
    let props: Vec<(&str, String)> = vec![
        ("Type", a.application_type_title.clone()),
        ("Stage", format!("{}. {}", a.stage_position, a.stage_name)),
        ("Institute", a.institute_name.clone()),
        ("Course", a.course_name.clone()),
        ("Campus", a.location_display.clone()),
        ("Intake", a.intake_date.clone()),
        ("Finish", a.finish_date.clone().unwrap_or_default()),
        ("Total tuition fee", a.total_tuition_fee.clone()),
        ("Student id", a.student_id.clone()),
        (
            "Super agent",
            a.super_agent_name.clone().unwrap_or_default(),
        ),
        ("Sub agent", a.sub_agent_name.clone().unwrap_or_default()),
        (
            "Assigned to",
            a.assigned_to_name.clone().unwrap_or_default(),
        ),
        ("Created", minute(&a.created_at)),
        ("Updated", minute(&a.updated_at)),
    ];
    let title = format!("College application of {}", a.client_name);
    let body = html! {
        div.toolbar {
            h1.grow { (a.client_name) " · " (a.institute_name) " " (stage_chip(&a)) }
            a.button href={ "/clients/" (a.client) "/?tab=timeline" } { "Client timeline" }
            a.button href={ "/college-applications/board/?type=" (a.application_type) } { "Stage board" }
        }
        (errors.alert(&["stage_id"]))
        div.cards {
            div.card.span2 {
                h2 { "Details" }
                dl.props {
                    dt { "Client" } dd { a href={ "/clients/" (a.client) "/" } { (a.client_name) } }
                    @for (label, value) in &props {
                        dt { (label) } dd { @if value.is_empty() { "—" } @else { (value) } }
                    }
                }
                @if !a.notes.is_empty() { h2 { "Notes" } p { (a.notes) } }
            }
            @if may_change {
                div.card {
                    h2 { "Move to stage" }
                    form method="post" action={ "/college-applications/" (a.id) "/stage/" } {
                        (csrf_field(user))
                        (select("stage_id", "Stage", &stage_options(&stage_list), &a.stage.to_string(), None, errors))
                        button.primary type="submit" { "Move" }
                    }
                }
            }
        }
    };
    with_status(page(user, &title, "college_applications", body), errors)
}

/// A plain-text answer (the board's script shows it when a move is refused).
fn text_response(status: StatusCode, text: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// `POST /college-applications/{id}/stage/` (`stage_id`): the API's stage move (a PATCH of
/// `stage_id`, which must be a stage of the application's type). From the board's script
/// (`board=1`) the answer is JSON (or the refusal as text with the API's status); from a form
/// it is a redirect to the board (`_return=board`) or the application page, and a refusal
/// re-renders the application page with the message (400) or the error page.
pub(crate) async fn move_stage(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm,
) -> Response {
    let from_script = form.get("board") == Some("1");
    let stage = form.get("stage_id").unwrap_or("");
    let stage_value = stage
        .parse::<i64>()
        .map_or_else(|_| Value::from(stage), Value::from);
    let result = api::update(
        State(state),
        form.user.auth.clone(),
        Path(id.clone()),
        JsonBody(json!({ "stage_id": stage_value })),
    )
    .await;
    match result {
        Ok(Json(a)) if from_script => Json(json!({
            "id": a.id, "stage": a.stage, "stage_name": a.stage_name,
        }))
        .into_response(),
        Ok(Json(a)) => {
            if form.get("_return") == Some("board") {
                see_other(&format!(
                    "/college-applications/board/?type={}",
                    a.application_type
                ))
            } else {
                see_other(&format!("/college-applications/{}/", a.id))
            }
        }
        Err(err) if from_script => {
            err.log_internal();
            let message = match FormErrors::from_error(&err) {
                Some(errors) => errors
                    .fields
                    .values()
                    .flatten()
                    .cloned()
                    .chain(errors.form)
                    .collect::<Vec<_>>()
                    .join(" "),
                None => err.detail(),
            };
            text_response(err.status(), message)
        }
        Err(err) => match FormErrors::from_error(&err) {
            Some(errors) => detail(&form.user, &id, &errors).await,
            None => error_page(&err, Some(&form.user)),
        },
    }
}

// ----- the stage board ---------------------------------------------------------------------

/// `GET /college-applications/board/?type=`: the stages of a type as columns (in order), its
/// applications as cards. Without `type`, the first type.
pub(crate) async fn board(user: WebUser, RawQuery(raw): RawQuery) -> Response {
    let query = Query::parse(raw.as_deref());
    let auth = &user.auth;
    if let Err(err) = crate::api::require(
        &auth.principal,
        Action::View,
        ResourceKind::CollegeApplication,
    ) {
        return error_page(&err, Some(&user));
    }
    let types = match all_types(auth).await {
        Ok(types) => types,
        Err(err) => return error_page(&err, Some(&user)),
    };
    let chosen = match query.get("type") {
        Some(raw) => match types.iter().find(|t| t.id.to_string() == raw) {
            Some(t) => Some(t),
            None => {
                return error_page(
                    &ApiError::NotFound("No such application type.".into()),
                    Some(&user),
                )
            }
        },
        None => types.first(),
    };
    let (stage_list, cards) = match chosen {
        Some(t) => {
            let q = rows_query(&[
                ("application_type_id", t.id.to_string()),
                ("ordering", "client_name".to_owned()),
            ]);
            let fetched = tokio::try_join!(
                stages_of(auth, t.id),
                api::list(
                    auth.clone(),
                    q.pagination("/api/v1/college-applications/"),
                    RawQuery(Some(q.raw())),
                )
            );
            match fetched {
                Ok((stages, Json(rows))) => (stages, rows.results),
                Err(err) => return error_page(&err, Some(&user)),
            }
        }
        None => (Vec::new(), Vec::new()),
    };
    let may_move = may(
        &auth.principal,
        Action::Change,
        ResourceKind::CollegeApplication,
    );
    let options = stage_options(&stage_list);
    let body = html! {
        div.toolbar {
            h1.grow { "Stage board" }
            form.inline method="get" action="/college-applications/board/" {
                label.sr-only for="f-board-type" { "Application type" }
                select #f-board-type name="type" data-autosubmit {
                    @for t in &types {
                        option value=(t.id) selected[chosen.is_some_and(|c| c.id == t.id)] { (t.title) }
                    }
                }
                button type="submit" data-js-hide { "Show" }
            }
            a.button href="/college-applications/" { "List" }
        }
        @if types.is_empty() {
            p.muted { "There is no application type yet." }
        } @else if stage_list.is_empty() {
            p.muted { "This type has no stages yet." }
        }
        @if may_move {
            p.muted { "Drag a card to another column to move the application, or use its form." }
        }
        div.board data-board data-csrf=[may_move.then_some(user.csrf.as_str())] {
            @for stage in &stage_list {
                @let in_stage: Vec<&CollegeApplicationOutput> = cards.iter().filter(|c| c.stage == stage.id).collect();
                section.column data-stage=(stage.id) aria-label=(stage.stage_name) {
                    h2 { span { (stage.position) ". " (stage.stage_name) } span data-count { (in_stage.len()) } }
                    ol {
                        @for card in &in_stage {
                            li.cardlet data-card=(card.id) draggable=[may_move.then_some("true")] {
                                a href={ "/college-applications/" (card.id) "/" } { (card.client_name) }
                                small { (card.institute_name) " · " (card.course_name) }
                                small { "Intake " (card.intake_date) }
                                @if may_move {
                                    form.inline.move method="post" action={ "/college-applications/" (card.id) "/stage/" } {
                                        (csrf_field(&user))
                                        input type="hidden" name="_return" value="board";
                                        label.sr-only for={ "move-" (card.id) } { "Stage" }
                                        select id={ "move-" (card.id) } name="stage_id" {
                                            @for (value, label) in &options {
                                                option value=(value) selected[*value == card.stage.to_string()] { (label) }
                                            }
                                        }
                                        button type="submit" { "Move" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page(&user, "Stage board", "college_board", body)
}

// ----- application types and their stages --------------------------------------------------

/// `GET /application-types/`.
pub(crate) async fn types_list(user: WebUser) -> Response {
    types_page(&user, &Map::new(), &FormErrors::default()).await
}

async fn types_page(user: &WebUser, values: &Map<String, Value>, errors: &FormErrors) -> Response {
    let types = match all_types(&user.auth).await {
        Ok(types) => types,
        Err(err) => return error_page(&err, Some(user)),
    };
    let text = |name: &str| {
        values
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let may_add = may(
        &user.auth.principal,
        Action::Add,
        ResourceKind::ApplicationType,
    );
    let body = html! {
        div.toolbar { h1.grow { "Application types" } }
        div.table-wrap {
            table.grid {
                thead { tr {
                    th scope="col" { "Title" } th scope="col" { "Currency" } th scope="col" { "Tax" }
                    th.num scope="col" { "Stages" } th scope="col" { "Active" } th scope="col" { "In use" }
                    th scope="col" { "Board" }
                } }
                tbody {
                    @for t in &types {
                        tr tabindex="0" data-href={ "/application-types/" (t.id) "/" } {
                            td { a href={ "/application-types/" (t.id) "/" } { (t.title) } }
                            td { (t.currency) }
                            td { (t.tax_name) " " (t.tax_percentage) "%" }
                            td.num { (t.stages_count) }
                            td { @if t.is_active { "Yes" } @else { "No" } }
                            td { @if t.has_applications { "Yes" } @else { "No" } }
                            td { a href={ "/college-applications/board/?type=" (t.id) } { "Board" } }
                        }
                    }
                    @if types.is_empty() { tr.empty { td colspan="7" { "No application types." } } }
                }
            }
        }
        @if may_add {
            h2 { "New application type" }
            (errors.alert(&["title", "currency", "tax_name", "tax_percentage", "description"]))
            form.fields method="post" action="/application-types/" novalidate {
                (csrf_field(user))
                (input("title", "Title", "text", &text("title"), errors, true))
                (input("currency", "Currency", "text", &text("currency"), errors, false))
                (input("tax_name", "Tax name", "text", &text("tax_name"), errors, false))
                (input("tax_percentage", "Tax %", "text", &text("tax_percentage"), errors, false))
                (textarea("description", "Description", &text("description"), errors))
                div.wide { button.primary type="submit" { "Create application type" } }
            }
        }
    };
    with_status(
        page(user, "Application types", "application_types", body),
        errors,
    )
}

/// The posted `fields` that are not empty, as JSON strings.
fn text_body(form: &WebForm, fields: &[&str]) -> Map<String, Value> {
    fields
        .iter()
        .filter_map(|name| {
            form.fields
                .get(*name)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(|v| ((*name).to_owned(), Value::from(v)))
        })
        .collect()
}

/// `POST /application-types/`.
pub(crate) async fn types_create(State(state): State<AppState>, form: WebForm) -> Response {
    let mut body = text_body(
        &form,
        &["currency", "tax_name", "tax_percentage", "description"],
    );
    body.insert(
        "title".into(),
        Value::from(form.fields.get("title").map_or("", |v| v.trim())),
    );
    match master_create::<ApplicationType>(
        State(state),
        form.user.auth.clone(),
        JsonBody(Value::Object(body.clone())),
    )
    .await
    {
        Ok((_, Json(t))) => see_other(&format!("/application-types/{}/", t.id)),
        Err(err) => match FormErrors::from_error(&err) {
            Some(errors) => types_page(&form.user, &body, &errors).await,
            None => error_page(&err, Some(&form.user)),
        },
    }
}

/// `GET /application-types/{id}/`: the type and its stages.
pub(crate) async fn type_show(user: WebUser, Path(id): Path<String>) -> Response {
    type_detail(&user, &id, &FormErrors::default()).await
}

async fn type_detail(user: &WebUser, id: &str, errors: &FormErrors) -> Response {
    let auth = &user.auth;
    let t = match master_retrieve::<ApplicationType>(auth.clone(), Path(id.to_owned())).await {
        Ok(Json(t)) => t,
        Err(err) => return error_page(&err, Some(user)),
    };
    let stage_list = match stages_of(auth, t.id).await {
        Ok(stages) => stages,
        Err(err) => return error_page(&err, Some(user)),
    };
    let principal = &auth.principal;
    let may_reorder = may(principal, Action::Change, ResourceKind::Stage);
    let may_delete_stage = may(principal, Action::Delete, ResourceKind::Stage);
    let last = stage_list.len();
    let body = html! {
        div.toolbar {
            h1.grow { (t.title) @if !t.is_active { " " span.muted { "(inactive)" } } }
            a.button href={ "/college-applications/board/?type=" (t.id) } { "Stage board" }
            @if may(principal, Action::Delete, ResourceKind::ApplicationType) {
                (action_button(user, &format!("/application-types/{}/delete/", t.id), "Delete type", Some("Delete this application type?")))
            }
        }
        @if !t.description.is_empty() { p { (t.description) } }
        (errors.alert(&["stage_name", "position", "description"]))
        h2 { "Stages" }
        div.table-wrap {
            table.grid {
                thead { tr {
                    th.num scope="col" { "#" } th scope="col" { "Stage" } th scope="col" { "Description" }
                    th scope="col" { "Final" } th scope="col" { "Actions" }
                } }
                tbody {
                    @for (i, s) in stage_list.iter().enumerate() {
                        tr {
                            td.num { (s.position) }
                            td { (s.stage_name) }
                            td { (s.description) }
                            td { @if s.is_final_stage { "Final" } }
                            td {
                                @if may_reorder && i > 0 {
                                    (move_button(user, t.id, s.id, "up", "↑ Up"))
                                }
                                @if may_reorder && i + 1 < last {
                                    " " (move_button(user, t.id, s.id, "down", "↓ Down"))
                                }
                                @if may_delete_stage {
                                    " " (action_button(user, &format!("/application-types/{}/stages/{}/delete/", t.id, s.id), "Delete", Some("Delete this stage?")))
                                }
                            }
                        }
                    }
                    @if stage_list.is_empty() { tr.empty { td colspan="5" { "No stages yet." } } }
                }
            }
        }
        @if may(principal, Action::Add, ResourceKind::Stage) {
            h2 { "Add a stage" }
            form.fields method="post" action={ "/application-types/" (t.id) "/stages/" } novalidate {
                (csrf_field(user))
                (input("stage_name", "Name", "text", "", errors, true))
                (input("position", "Position (empty: last)", "number", "", errors, false))
                (textarea("description", "Description", "", errors))
                div.wide { button.primary type="submit" { "Add stage" } }
            }
        }
    };
    with_status(page(user, &t.title, "application_types", body), errors)
}

fn move_button(user: &WebUser, of_type: i64, stage: i64, direction: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action={ "/application-types/" (of_type) "/stages/" (stage) "/move/" } {
            (csrf_field(user))
            input type="hidden" name="direction" value=(direction);
            button type="submit" { (label) }
        }
    }
}

/// The refusal of a type-page form: inline (400) or the error page.
async fn type_refused(form: &WebForm, of_type: &str, err: &ApiError) -> Response {
    match FormErrors::from_error(err) {
        Some(errors) => type_detail(&form.user, of_type, &errors).await,
        None => error_page(err, Some(&form.user)),
    }
}

/// `POST /application-types/{id}/delete/`: the API's soft delete (refused while live
/// applications use the type).
pub(crate) async fn type_delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm,
) -> Response {
    match master_destroy::<ApplicationType>(State(state), form.user.auth.clone(), Path(id.clone()))
        .await
    {
        Ok(_) => see_other("/application-types/"),
        Err(err) => type_refused(&form, &id, &err).await,
    }
}

/// `POST /application-types/{id}/stages/`: adds a stage (at `position`, or last).
pub(crate) async fn stage_create(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm,
) -> Response {
    let mut body = text_body(&form, &["description"]);
    body.insert(
        "stage_name".into(),
        Value::from(form.fields.get("stage_name").map_or("", |v| v.trim())),
    );
    body.insert(
        "application_type_id".into(),
        id.parse::<i64>()
            .map_or_else(|_| Value::from(id.as_str()), Value::from),
    );
    if let Some(position) = form.get("position") {
        body.insert(
            "position".into(),
            position
                .parse::<i64>()
                .map_or_else(|_| Value::from(position), Value::from),
        );
    }
    match stages::create(
        State(state),
        form.user.auth.clone(),
        JsonBody(Value::Object(body)),
    )
    .await
    {
        Ok(_) => see_other(&format!("/application-types/{id}/")),
        Err(err) => type_refused(&form, &id, &err).await,
    }
}

/// `POST /application-types/{id}/stages/{stage}/move/` (`direction=up|down`): the API's
/// reorder with the stage one position up or down.
pub(crate) async fn stage_move(
    State(state): State<AppState>,
    Path((id, stage)): Path<(String, String)>,
    form: WebForm,
) -> Response {
    let auth = form.user.auth.clone();
    let (Ok(of_type), Ok(stage_id)) = (id.parse::<i64>(), stage.parse::<i64>()) else {
        return error_page(&ApiError::NotFound("Not found.".into()), Some(&form.user));
    };
    let current = match stages_of(&auth, of_type).await {
        Ok(stages) => stages,
        Err(err) => return error_page(&err, Some(&form.user)),
    };
    // The slot (1-based) in the type's order, which is what the reorder's positions name.
    let Some(slot) = current
        .iter()
        .position(|s| s.id == stage_id)
        .and_then(|i| i64::try_from(i + 1).ok())
    else {
        return error_page(&ApiError::NotFound("Not found.".into()), Some(&form.user));
    };
    let target = match form.get("direction") {
        Some("up") => slot - 1,
        Some("down") => slot + 1,
        _ => {
            return type_refused(
                &form,
                &id,
                &ApiError::field("direction", "Choose up or down."),
            )
            .await
        }
    };
    let body = json!({
        "application_type_id": of_type,
        "stages": [{"stage_id": stage_id, "new_position": target}],
    });
    match stages::reorder(State(state), auth, JsonBody(body)).await {
        Ok(_) => see_other(&format!("/application-types/{id}/")),
        Err(err) => type_refused(&form, &id, &err).await,
    }
}

/// `POST /application-types/{id}/stages/{stage}/delete/`: the API's delete (refused while
/// live applications are in the stage).
pub(crate) async fn stage_delete(
    State(state): State<AppState>,
    Path((id, stage)): Path<(String, String)>,
    form: WebForm,
) -> Response {
    // The URL names the stage under its type: another type's stage is not found here.
    let of_type = id.parse::<i64>().unwrap_or_default();
    match stages_of(&form.user.auth, of_type).await {
        Ok(list) if list.iter().any(|s| s.id.to_string() == stage) => {}
        Ok(_) => return error_page(&ApiError::NotFound("Not found.".into()), Some(&form.user)),
        Err(err) => return error_page(&err, Some(&form.user)),
    }
    match stages::destroy(State(state), form.user.auth.clone(), Path(stage)).await {
        Ok(_) => see_other(&format!("/application-types/{id}/")),
        Err(err) => type_refused(&form, &id, &err).await,
    }
}
