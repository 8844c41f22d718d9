//! Master data: institutes with their locations, intakes, contact persons and requirements;
//! course levels, broad and narrow fields, courses; agents.
//!
//! One screen shape serves them all, driven by a [`Resource`] descriptor per resource (its
//! columns, its form fields, its parent): a list (search where the API searches, paged), a
//! create form, a detail page that is the edit form for those who may change the row (a read-only
//! sheet otherwise), and delete. An institute's page lists its children, each with its own add
//! form. Every read and write is the API's operation from [`crate::api::master`] (the generic
//! master handlers, and [`crate::api::master::agents`]), called with the session's
//! [`AuthUser`]: permissions, validation (country codes, unique names, live references) and
//! events are the API's.

use std::future::Future;
use std::pin::Pin;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::Json;
use leopard_http::{ApiError, AuthUser, JsonBody, Pagination};
use leopard_rbac::{Action, ResourceKind};
use maud::{html, Markup};
use serde::Serialize;
use serde_json::{Map, Value};

use super::widgets::{
    action_button, csrf_field, display, input, json_text, may, page, pager, select, textarea,
    FormErrors, Query,
};
use super::{error_page, session::see_other, WebForm, WebUser};
use crate::api::master::courses::{BroadField, Course, CourseLevel, NarrowField};
use crate::api::master::institutes::{ContactPerson, Institute, Intake, Location, Requirement};
use crate::api::master::{
    agents, master_create, master_destroy, master_list, master_retrieve, master_update, Master,
};
use crate::app::AppState;

type Fut<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + Send>>;

/// One page of rows as JSON objects, and the count of all.
type Rows = (Vec<Value>, i64);

/// The API operations of one resource, with rows as JSON objects.
struct Ops {
    list: fn(AuthUser, Pagination, String) -> Fut<Rows>,
    create: fn(AppState, AuthUser, Value) -> Fut<Value>,
    retrieve: fn(AuthUser, String) -> Fut<Value>,
    update: fn(AppState, AuthUser, String, Value) -> Fut<Value>,
    destroy: fn(AppState, AuthUser, String) -> Fut<()>,
}

fn to_value<T: Serialize>(value: T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|e| ApiError::Internal(e.to_string()))
}

fn rows<T: Serialize>(rows: Vec<T>) -> Result<Vec<Value>, ApiError> {
    rows.into_iter().map(to_value).collect()
}

/// The operations of a resource served by the generic master handlers.
fn master_ops<M: Master>() -> Ops {
    Ops {
        list: |auth, pagination, raw| {
            Box::pin(async move {
                let Json(page) = master_list::<M>(auth, pagination, RawQuery(Some(raw))).await?;
                Ok((rows(page.results)?, page.count))
            })
        },
        create: |state, auth, body| {
            Box::pin(async move {
                let (_, Json(row)) = master_create::<M>(State(state), auth, JsonBody(body)).await?;
                to_value(row)
            })
        },
        retrieve: |auth, id| {
            Box::pin(async move {
                let Json(row) = master_retrieve::<M>(auth, Path(id)).await?;
                to_value(row)
            })
        },
        update: |state, auth, id, body| {
            Box::pin(async move {
                let Json(row) =
                    master_update::<M>(State(state), auth, Path(id), JsonBody(body)).await?;
                to_value(row)
            })
        },
        destroy: |state, auth, id| {
            Box::pin(async move {
                master_destroy::<M>(State(state), auth, Path(id)).await?;
                Ok(())
            })
        },
    }
}

/// The operations of agents (their own handlers, same shapes).
fn agent_ops() -> Ops {
    Ops {
        list: |auth, pagination, raw| {
            Box::pin(async move {
                let Json(page) = agents::list(auth, pagination, RawQuery(Some(raw))).await?;
                Ok((rows(page.results)?, page.count))
            })
        },
        create: |state, auth, body| {
            Box::pin(async move {
                let (_, Json(row)) = agents::create(State(state), auth, JsonBody(body)).await?;
                to_value(row)
            })
        },
        retrieve: |auth, id| {
            Box::pin(async move {
                let Json(row) = agents::retrieve(auth, Path(id)).await?;
                to_value(row)
            })
        },
        update: |state, auth, id, body| {
            Box::pin(async move {
                let Json(row) =
                    agents::update(State(state), auth, Path(id), JsonBody(body)).await?;
                to_value(row)
            })
        },
        destroy: |state, auth, id| {
            Box::pin(async move {
                agents::destroy(State(state), auth, Path(id)).await?;
                Ok(())
            })
        },
    }
}

/// What a form field holds.
#[derive(Clone, Copy)]
enum Kind {
    /// One line of text (the input type given).
    Text(&'static str),
    /// Several lines.
    Long,
    /// An ISO 3166-1 alpha-2 code (blank is `null`).
    Country,
    /// A date (blank is `null`).
    Date,
    /// A decimal amount.
    Amount,
    /// One of `(value, label)`.
    Choice(&'static [(&'static str, &'static str)]),
    /// The id of a row of the resource with this slug (its `name` shown).
    Ref(&'static str),
}

/// A form field: body field name, label, kind, required on create.
struct Field(&'static str, &'static str, Kind, bool);

/// One master resource as the screens show it.
struct Resource {
    /// The URL segment under `/master/`, as the API's (`institute-locations`).
    slug: &'static str,
    /// The plural title.
    title: &'static str,
    /// One row, in a sentence ("location").
    singular: &'static str,
    /// The permission kind the API checks.
    kind: ResourceKind,
    /// The navigation entry it highlights.
    nav: &'static str,
    /// The columns of the list: (JSON field, label); the first links to the row.
    columns: &'static [(&'static str, &'static str)],
    /// The form.
    fields: &'static [Field],
    /// Whether the API's list takes `search`.
    search: bool,
    /// The parent reference field (`institute`) of an institute's child.
    parent: Option<&'static str>,
    ops: fn() -> Ops,
}

const GENDERS: &[(&str, &str)] = &[
    ("", "—"),
    ("MALE", "Male"),
    ("FEMALE", "Female"),
    ("OTHER", "Other"),
];
const REQUIREMENT_TYPES: &[(&str, &str)] = &[
    ("ACADEMIC", "Academic"),
    ("LANGUAGE", "Language"),
    ("FINANCIAL", "Financial"),
    ("DOCUMENT", "Document"),
    ("OTHER", "Other"),
];
const AGENT_TYPES: &[(&str, &str)] = &[("SUPER_AGENT", "Super agent"), ("SUB_AGENT", "Sub agent")];

/// The institute children, in the order of the institute page.
const CHILDREN: &[&str] = &[
    "institute-locations",
    "institute-intakes",
    "institute-contact-persons",
    "institute-requirements",
];

static RESOURCES: &[Resource] = &[
    Resource {
        slug: "institutes",
        title: "Institutes",
        singular: "institute",
        kind: ResourceKind::Institute,
        nav: "institutes",
        columns: &[
            ("name", "Name"),
            ("short_name", "Short name"),
            ("phone", "Phone"),
            ("website", "Website"),
        ],
        fields: &[
            Field("name", "Name", Kind::Text("text"), true),
            Field("short_name", "Short name", Kind::Text("text"), true),
            Field("phone", "Phone", Kind::Text("tel"), false),
            Field("website", "Website", Kind::Text("text"), false),
        ],
        search: true,
        parent: None,
        ops: master_ops::<Institute>,
    },
    Resource {
        slug: "institute-locations",
        title: "Locations",
        singular: "location",
        kind: ResourceKind::InstituteLocation,
        nav: "institutes",
        columns: &[
            ("state", "State"),
            ("suburb", "Suburb"),
            ("street_name", "Street"),
            ("postcode", "Postcode"),
            ("country", "Country"),
            ("phone_number", "Phone"),
            ("email", "E-mail"),
        ],
        fields: &[
            Field("street_name", "Street", Kind::Text("text"), false),
            Field("suburb", "Suburb", Kind::Text("text"), false),
            Field("state", "State", Kind::Text("text"), true),
            Field("postcode", "Postcode", Kind::Text("text"), false),
            Field("country", "Country (ISO code)", Kind::Country, true),
            Field("phone_number", "Phone", Kind::Text("tel"), false),
            Field("email", "E-mail", Kind::Text("email"), false),
        ],
        search: false,
        parent: Some("institute"),
        ops: master_ops::<Location>,
    },
    Resource {
        slug: "institute-intakes",
        title: "Intakes",
        singular: "intake",
        kind: ResourceKind::InstituteIntake,
        nav: "institutes",
        columns: &[("intake_date", "Date"), ("description", "Description")],
        fields: &[
            Field("intake_date", "Date", Kind::Date, true),
            Field("description", "Description", Kind::Long, false),
        ],
        search: false,
        parent: Some("institute"),
        ops: master_ops::<Intake>,
    },
    Resource {
        slug: "institute-contact-persons",
        title: "Contact persons",
        singular: "contact person",
        kind: ResourceKind::InstituteContactPerson,
        nav: "institutes",
        columns: &[
            ("name", "Name"),
            ("position", "Position"),
            ("phone", "Phone"),
            ("email", "E-mail"),
        ],
        fields: &[
            Field("name", "Name", Kind::Text("text"), true),
            Field("gender", "Gender", Kind::Choice(GENDERS), false),
            Field("position", "Position", Kind::Text("text"), false),
            Field("phone", "Phone", Kind::Text("tel"), false),
            Field("email", "E-mail", Kind::Text("email"), false),
        ],
        search: false,
        parent: Some("institute"),
        ops: master_ops::<ContactPerson>,
    },
    Resource {
        slug: "institute-requirements",
        title: "Requirements",
        singular: "requirement",
        kind: ResourceKind::InstituteRequirement,
        nav: "institutes",
        columns: &[
            ("title", "Title"),
            ("requirement_type", "Type"),
            ("description", "Description"),
        ],
        fields: &[
            Field("title", "Title", Kind::Text("text"), true),
            Field(
                "requirement_type",
                "Type",
                Kind::Choice(REQUIREMENT_TYPES),
                true,
            ),
            Field("description", "Description", Kind::Long, false),
        ],
        search: false,
        parent: Some("institute"),
        ops: master_ops::<Requirement>,
    },
    Resource {
        slug: "courses",
        title: "Courses",
        singular: "course",
        kind: ResourceKind::Course,
        nav: "courses",
        columns: &[
            ("name", "Name"),
            ("institute_name", "Institute"),
            ("level_name", "Level"),
            ("broad_field_name", "Broad field"),
            ("narrow_field_name", "Narrow field"),
            ("total_tuition_fee", "Tuition fee"),
            ("coe_fee", "CoE fee"),
        ],
        fields: &[
            Field("name", "Name", Kind::Text("text"), true),
            Field("institute", "Institute", Kind::Ref("institutes"), true),
            Field("level", "Level", Kind::Ref("course-levels"), true),
            Field(
                "broad_field",
                "Broad field",
                Kind::Ref("broad-fields"),
                true,
            ),
            Field(
                "narrow_field",
                "Narrow field",
                Kind::Ref("narrow-fields"),
                true,
            ),
            Field("total_tuition_fee", "Tuition fee", Kind::Amount, true),
            Field("coe_fee", "CoE fee", Kind::Amount, true),
            Field("description", "Description", Kind::Long, false),
        ],
        search: false,
        parent: None,
        ops: master_ops::<Course>,
    },
    Resource {
        slug: "course-levels",
        title: "Course levels",
        singular: "course level",
        kind: ResourceKind::CourseLevel,
        nav: "course-levels",
        columns: &[("name", "Name")],
        fields: &[Field("name", "Name", Kind::Text("text"), true)],
        search: false,
        parent: None,
        ops: master_ops::<CourseLevel>,
    },
    Resource {
        slug: "broad-fields",
        title: "Broad fields",
        singular: "broad field",
        kind: ResourceKind::BroadField,
        nav: "fields",
        columns: &[("name", "Name")],
        fields: &[Field("name", "Name", Kind::Text("text"), true)],
        search: false,
        parent: None,
        ops: master_ops::<BroadField>,
    },
    Resource {
        slug: "narrow-fields",
        title: "Narrow fields",
        singular: "narrow field",
        kind: ResourceKind::NarrowField,
        nav: "fields",
        columns: &[("name", "Name"), ("broad_field_name", "Broad field")],
        fields: &[
            Field("name", "Name", Kind::Text("text"), true),
            Field(
                "broad_field",
                "Broad field",
                Kind::Ref("broad-fields"),
                true,
            ),
        ],
        search: false,
        parent: None,
        ops: master_ops::<NarrowField>,
    },
    Resource {
        slug: "agents",
        title: "Agents",
        singular: "agent",
        kind: ResourceKind::Agent,
        nav: "agents",
        columns: &[
            ("agent_name", "Name"),
            ("agent_type_display", "Type"),
            ("company_name", "Company"),
            ("phone_number", "Phone"),
            ("email", "E-mail"),
            ("country", "Country"),
        ],
        fields: &[
            Field("agent_name", "Name", Kind::Text("text"), true),
            Field("agent_type", "Type", Kind::Choice(AGENT_TYPES), true),
            Field("company_name", "Company", Kind::Text("text"), false),
            Field("designation", "Designation", Kind::Text("text"), false),
            Field("phone_number", "Phone", Kind::Text("tel"), false),
            Field("email", "E-mail", Kind::Text("email"), false),
            Field("website", "Website", Kind::Text("text"), false),
            Field("invoice_to", "Invoice to", Kind::Text("text"), false),
            Field("street", "Street", Kind::Text("text"), false),
            Field("suburb", "Suburb", Kind::Text("text"), false),
            Field("state", "State", Kind::Text("text"), false),
            Field("postcode", "Postcode", Kind::Text("text"), false),
            Field("country", "Country (ISO code)", Kind::Country, false),
            Field("description", "Description", Kind::Long, false),
        ],
        search: true,
        parent: None,
        ops: agent_ops,
    },
];

fn resource(slug: &str) -> Result<&'static Resource, ApiError> {
    RESOURCES
        .iter()
        .find(|r| r.slug == slug)
        .ok_or_else(|| ApiError::NotFound("Page not found.".into()))
}

/// A list of `slug`'s rows, up to `size` (for a reference's options, an institute's children).
async fn fetch_rows(auth: &AuthUser, slug: &str, query: Query) -> Result<Rows, ApiError> {
    let res = resource(slug)?;
    let pagination = query.pagination(&format!("/master/{slug}/"));
    ((res.ops)().list)(auth.clone(), pagination, query.raw()).await
}

/// The options of each reference field of `res`: field name → (id, name).
async fn ref_options(
    user: &WebUser,
    res: &Resource,
) -> Result<Vec<(&'static str, Vec<(String, String)>)>, ApiError> {
    let mut out = Vec::new();
    for Field(name, _, kind, _) in res.fields {
        if let Kind::Ref(target) = kind {
            let query = Query(vec![("page_size".into(), "1000".into())]);
            let (rows, _) = fetch_rows(&user.auth, target, query).await?;
            let options = rows
                .iter()
                .map(|row| {
                    let mut label = json_text(row.get("name"));
                    if let Some(broad) = row.get("broad_field_name") {
                        label = format!("{} / {label}", json_text(Some(broad)));
                    }
                    (json_text(row.get("id")), label)
                })
                .collect();
            out.push((*name, options));
        }
    }
    Ok(out)
}

/// The JSON body of a submitted form: each field of `res` that was posted (a blank reference,
/// date, amount or country is `null`; a reference that is a number is sent as one).
fn body_of(res: &Resource, form: &WebForm) -> Map<String, Value> {
    let mut body = Map::new();
    for Field(name, _, kind, _) in res.fields {
        let Some(raw) = form.get(name) else { continue };
        let raw = raw.trim();
        let value = match kind {
            Kind::Ref(_) | Kind::Date | Kind::Amount | Kind::Country if raw.is_empty() => {
                Value::Null
            }
            Kind::Ref(_) => raw
                .parse::<i64>()
                .map_or_else(|_| Value::from(raw), Value::from),
            _ => Value::from(raw),
        };
        body.insert((*name).to_owned(), value);
    }
    if let Some(parent) = res.parent {
        if let Some(raw) = form.get(parent) {
            let value = raw
                .trim()
                .parse::<i64>()
                .map_or_else(|_| Value::from(raw), Value::from);
            body.insert(parent.to_owned(), value);
        }
    }
    body
}

/// The form of `res` with `values`, posting to `action`.
fn form_markup(
    user: &WebUser,
    res: &Resource,
    action: &str,
    values: &Map<String, Value>,
    options: &[(&'static str, Vec<(String, String)>)],
    errors: &FormErrors,
    submit: &str,
) -> Markup {
    let shown: Vec<&str> = res.fields.iter().map(|f| f.0).collect();
    html! {
        (errors.alert(&shown))
        form.fields method="post" action=(action) novalidate {
            (csrf_field(user))
            @if let Some(parent) = res.parent {
                input type="hidden" name=(parent) value=(json_text(values.get(parent)));
            }
            @for Field(name, label, kind, required) in res.fields {
                @let value = json_text(values.get(*name));
                @match kind {
                    Kind::Text(input_type) => (input(name, label, input_type, &value, errors, *required)),
                    Kind::Date => (input(name, label, "date", &value, errors, *required)),
                    Kind::Amount => (input(name, label, "text", &value, errors, *required)),
                    Kind::Country => (input(name, label, "text", &value, errors, *required)),
                    Kind::Long => (textarea(name, label, &value, errors)),
                    Kind::Choice(choices) => {
                        @let choices: Vec<(String, String)> = choices.iter().map(|(v, l)| ((*v).to_owned(), (*l).to_owned())).collect();
                        (select(name, label, &choices, &value, None, errors))
                    }
                    Kind::Ref(_) => {
                        @let empty = Vec::new();
                        @let choices = options.iter().find(|(n, _)| n == name).map_or(&empty, |(_, o)| o);
                        (select(name, label, choices, &value, Some("—"), errors))
                    }
                }
            }
            div.wide { button.primary type="submit" { (submit) } }
        }
    }
}

/// The table of `rows` of `res`.
fn table(user: &WebUser, res: &Resource, rows: &[Value]) -> Markup {
    let deletable = may(&user.auth.principal, Action::Delete, res.kind);
    html! {
        div.table-wrap {
            table.grid {
                thead { tr {
                    @for (_, label) in res.columns { th scope="col" { (label) } }
                    @if deletable { th scope="col" { "Actions" } }
                } }
                tbody {
                    @for row in rows {
                        @let id = json_text(row.get("id"));
                        tr {
                            @for (i, (field, _)) in res.columns.iter().enumerate() {
                                @let cell = json_text(row.get(*field));
                                td {
                                    @if i == 0 {
                                        a href={ "/master/" (res.slug) "/" (id) "/" } { @if cell.is_empty() { "—" } @else { (cell) } }
                                    } @else if *field == "requirement_type" { (display(&cell)) }
                                    @else { (cell) }
                                }
                            }
                            @if deletable {
                                td { (action_button(user, &format!("/master/{}/{id}/delete/", res.slug), "Delete", Some("Delete this row?"))) }
                            }
                        }
                    }
                    @if rows.is_empty() { tr.empty { td colspan=(res.columns.len() + 1) { "Nothing here yet." } } }
                }
            }
        }
    }
}

fn with_status(mut response: Response, errors: &FormErrors) -> Response {
    if !errors.fields.is_empty() || errors.form.is_some() {
        *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    }
    response
}

/// `GET /master/{slug}/`.
pub(crate) async fn list(
    user: WebUser,
    Path(slug): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let res = match resource(&slug) {
        Ok(res) => res,
        Err(err) => return error_page(&err, Some(&user)),
    };
    let query = Query::parse(raw.as_deref());
    let (rows, count) = match fetch_rows(&user.auth, res.slug, query.clone()).await {
        Ok(found) => found,
        Err(err) => return error_page(&err, Some(&user)),
    };
    let body = html! {
        div.toolbar {
            h1.grow { (res.title) }
            @if res.parent.is_none() && may(&user.auth.principal, Action::Add, res.kind) {
                a.button.primary href={ "/master/" (res.slug) "/new/" } { "New " (res.singular) }
            }
        }
        @if res.nav == "fields" {
            nav.tabs aria-label="Fields of study" {
                @for (slug, label) in [("broad-fields", "Broad fields"), ("narrow-fields", "Narrow fields")] {
                    a href={ "/master/" (slug) "/" } aria-current=[(slug == res.slug).then_some("page")] { (label) }
                }
            }
        }
        @if res.search {
            form.toolbar method="get" action={ "/master/" (res.slug) "/" } role="search" {
                label.sr-only for="f-search" { "Search" }
                input #f-search type="search" name="search" placeholder="Search by name" value=(query.get("search").unwrap_or(""));
                button type="submit" { "Search" }
            }
        }
        (table(&user, res, &rows))
        (pager(&query, count))
    };
    page(&user, res.title, res.nav, body)
}

/// `GET /master/{slug}/new/` (`?institute=ID` for an institute's child).
pub(crate) async fn new(
    user: WebUser,
    Path(slug): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let res = match resource(&slug) {
        Ok(res) => res,
        Err(err) => return error_page(&err, Some(&user)),
    };
    if let Err(err) = crate::api::require(&user.auth.principal, Action::Add, res.kind) {
        return error_page(&err, Some(&user));
    }
    let query = Query::parse(raw.as_deref());
    let mut values = Map::new();
    if let Some(parent) = res.parent {
        values.insert(
            parent.to_owned(),
            Value::from(query.get(parent).unwrap_or("")),
        );
    }
    create_form(&user, res, &values, &FormErrors::default()).await
}

async fn create_form(
    user: &WebUser,
    res: &Resource,
    values: &Map<String, Value>,
    errors: &FormErrors,
) -> Response {
    let options = match ref_options(user, res).await {
        Ok(options) => options,
        Err(err) => return error_page(&err, Some(user)),
    };
    let action = format!("/master/{}/new/", res.slug);
    let title = format!("New {}", res.singular);
    let body = html! {
        h1 { (title) }
        (form_markup(user, res, &action, values, &options, errors, "Create"))
    };
    with_status(page(user, &title, res.nav, body), errors)
}

/// Where a row's page is after a write: a child's parent, else the row's own list.
fn back_to(res: &Resource, row: &Map<String, Value>) -> String {
    match res.parent {
        Some(parent) => format!("/master/institutes/{}/", json_text(row.get(parent))),
        None => format!("/master/{}/", res.slug),
    }
}

/// `POST /master/{slug}/new/`.
pub(crate) async fn create(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    form: WebForm,
) -> Response {
    let res = match resource(&slug) {
        Ok(res) => res,
        Err(err) => return error_page(&err, Some(&form.user)),
    };
    let body = body_of(res, &form);
    match ((res.ops)().create)(state, form.user.auth.clone(), Value::Object(body.clone())).await {
        Ok(_) => see_other(&back_to(res, &body)),
        Err(err) => match FormErrors::from_error(&err) {
            Some(errors) => create_form(&form.user, res, &body, &errors).await,
            None => error_page(&err, Some(&form.user)),
        },
    }
}

/// `GET /master/{slug}/{id}/`: the row (its form for those who may change it), and an
/// institute's children.
pub(crate) async fn show(user: WebUser, Path((slug, id)): Path<(String, String)>) -> Response {
    let res = match resource(&slug) {
        Ok(res) => res,
        Err(err) => return error_page(&err, Some(&user)),
    };
    let row = match ((res.ops)().retrieve)(user.auth.clone(), id.clone()).await {
        Ok(Value::Object(row)) => row,
        Ok(_) => return error_page(&ApiError::Internal("row shape".into()), Some(&user)),
        Err(err) => return error_page(&err, Some(&user)),
    };
    detail(&user, res, &id, &row, &FormErrors::default()).await
}

async fn detail(
    user: &WebUser,
    res: &Resource,
    id: &str,
    row: &Map<String, Value>,
    errors: &FormErrors,
) -> Response {
    let principal = &user.auth.principal;
    let options = match ref_options(user, res).await {
        Ok(options) => options,
        Err(err) => return error_page(&err, Some(user)),
    };
    let mut children = Vec::new();
    if res.slug == "institutes" {
        for slug in CHILDREN {
            let Ok(child) = resource(slug) else { continue };
            if !may(principal, Action::View, child.kind) {
                continue;
            }
            let query = Query(vec![
                ("institute".into(), id.to_owned()),
                ("page_size".into(), "100".into()),
            ]);
            match fetch_rows(&user.auth, slug, query).await {
                Ok((rows, _)) => children.push((child, rows)),
                Err(err) => return error_page(&err, Some(user)),
            }
        }
    }
    let heading = json_text(res.columns.first().and_then(|(f, _)| row.get(*f)));
    let action = format!("/master/{}/{id}/", res.slug);
    let body = html! {
        p.muted { a href=(back_to(res, row)) { "← " @if res.parent.is_some() { "Institute" } @else { (res.title) } } }
        div.toolbar {
            h1.grow { (heading) }
            @if may(principal, Action::Delete, res.kind) {
                (action_button(user, &format!("/master/{}/{id}/delete/", res.slug), "Delete", Some("Delete this row?")))
            }
        }
        @if may(principal, Action::Change, res.kind) {
            (form_markup(user, res, &action, row, &options, errors, "Save"))
        } @else {
            dl.props {
                @for Field(name, label, _, _) in res.fields {
                    dt { (label) }
                    dd { (json_text(row.get(*name))) }
                }
            }
        }
        @for (child, rows) in &children {
            section.card {
                div.toolbar {
                    h2.grow { (child.title) }
                    @if may(principal, Action::Add, child.kind) {
                        a.button href={ "/master/" (child.slug) "/new/?institute=" (id) } { "Add " (child.singular) }
                    }
                }
                (table(user, child, rows))
            }
        }
    };
    with_status(page(user, &heading, res.nav, body), errors)
}

/// `POST /master/{slug}/{id}/`: saves the form.
pub(crate) async fn update(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
    form: WebForm,
) -> Response {
    let res = match resource(&slug) {
        Ok(res) => res,
        Err(err) => return error_page(&err, Some(&form.user)),
    };
    let mut body = body_of(res, &form);
    if let Some(parent) = res.parent {
        body.remove(parent);
    }
    let auth = form.user.auth.clone();
    match ((res.ops)().update)(state, auth, id.clone(), Value::Object(body.clone())).await {
        Ok(Value::Object(row)) => see_other(&back_to(res, &row)),
        Ok(_) => see_other(&format!("/master/{}/", res.slug)),
        Err(err) => match FormErrors::from_error(&err) {
            Some(errors) => {
                let mut row = match ((res.ops)().retrieve)(form.user.auth.clone(), id.clone()).await
                {
                    Ok(Value::Object(row)) => row,
                    Ok(_) => Map::new(),
                    Err(err) => return error_page(&err, Some(&form.user)),
                };
                row.extend(body);
                detail(&form.user, res, &id, &row, &errors).await
            }
            None => error_page(&err, Some(&form.user)),
        },
    }
}

/// `POST /master/{slug}/{id}/delete/`: the API's soft delete (refused while something needs
/// the row).
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
    form: WebForm,
) -> Response {
    let res = match resource(&slug) {
        Ok(res) => res,
        Err(err) => return error_page(&err, Some(&form.user)),
    };
    let auth = form.user.auth.clone();
    let back = match res.parent {
        Some(_) => match ((res.ops)().retrieve)(auth.clone(), id.clone()).await {
            Ok(Value::Object(row)) => back_to(res, &row),
            Ok(_) => format!("/master/{}/", res.slug),
            Err(err) => return error_page(&err, Some(&form.user)),
        },
        None => format!("/master/{}/", res.slug),
    };
    match ((res.ops)().destroy)(state, auth, id).await {
        Ok(()) => see_other(&back),
        Err(err) => error_page(&err, Some(&form.user)),
    }
}
