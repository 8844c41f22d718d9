//! The calendar screen (`/calendar/`): a month grid (`?month=YYYY-MM`, the default) and a week
//! of day columns (`?view=week&week=YYYY-MM-DD`, the week holding that day, Monday first), with
//! previous, today and next links; an event's page; create and edit forms with inline errors;
//! delete.
//!
//! Every read and write is the API's operation from [`crate::api::crm::calendar`] with the
//! session's [`leopard_http::AuthUser`]: the grid shows exactly the events `GET
//! /api/v1/events/?start_date=&end_date=` lists for the user (own, created, and the team's with
//! `view_team_events`), an event out of reach is the API's 404, and the assignment rules
//! (`assign_calendarevent_to_others`, assignees and branches in scope) are the API's. The form
//! offers someone other than the user as assignee only to holders of that permission.
//!
//! Times are UTC, like every time the interface shows. An event's colour reaches the page as
//! `data-color` (the Content-Security-Policy allows no inline style); `app.js` paints it.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveTime, Utc, Weekday};
use leopard_http::{ApiError, JsonBody, Pagination};
use leopard_rbac::{Action, Permission, ResourceKind};
use maud::{html, Markup};
use serde_json::{Map, Value};

use super::options::{self, keeping, Options};
use super::widgets::{
    action_button, csrf_field, input, may, minute, page, select, textarea, FormErrors, Query,
};
use super::{error_page, session::see_other, WebForm, WebUser};
use crate::api::crm::calendar::{self as api, EventOutput};
use crate::app::AppState;

/// The most events one grid shows (the API's largest page).
const MAX_EVENTS: i64 = 1000;

/// The events shown in a month cell before "+N more".
const CELL_EVENTS: usize = 4;

/// The colour of a new event (the API's default).
const DEFAULT_COLOR: &str = "#3788d8";

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

// ----- dates ---------------------------------------------------------------------------------

/// An RFC 3339 time of the API.
fn instant(rfc3339: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// The Monday of `day`'s week.
fn monday(day: NaiveDate) -> NaiveDate {
    day - Duration::days(i64::from(day.weekday().num_days_from_monday()))
}

/// A 400 on `field` with `message` (a malformed query of the calendar).
fn bad(field: &str, message: &str) -> ApiError {
    ApiError::field(field, message)
}

/// Years the calendar navigates (four digits both ways, so every link stays valid).
fn in_range(day: NaiveDate) -> bool {
    (1001..=9998).contains(&day.year())
}

/// What the calendar shows: a month or a week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    /// The month whose first day this is.
    Month(NaiveDate),
    /// The week whose Monday this is.
    Week(NaiveDate),
}

impl View {
    /// Reads `view`, `month` and `week` (today's month by default); a 400 when malformed.
    fn parse(query: &Query, today: NaiveDate) -> Result<Self, ApiError> {
        let view = match query.get("view").unwrap_or("month") {
            "month" => {
                let first = match query.get("month") {
                    None => today.with_day(1).unwrap_or(today),
                    Some(raw) => NaiveDate::parse_from_str(&format!("{raw}-01"), "%Y-%m-%d")
                        .ok()
                        .filter(|_| raw.len() == 7)
                        .ok_or_else(|| bad("month", "Enter a month as YYYY-MM."))?,
                };
                Self::Month(first)
            }
            "week" => {
                let day = match query.get("week") {
                    None => today,
                    Some(raw) => NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                        .map_err(|_| bad("week", "Enter a day as YYYY-MM-DD."))?,
                };
                Self::Week(monday(day))
            }
            _ => return Err(bad("view", "The view is month or week.")),
        };
        if in_range(view.anchor()) {
            Ok(view)
        } else {
            Err(bad("month", "Enter a year from 1001 to 9998."))
        }
    }

    fn anchor(self) -> NaiveDate {
        match self {
            Self::Month(day) | Self::Week(day) => day,
        }
    }

    /// The days of the grid: whole weeks, Monday first.
    fn days(self) -> Vec<NaiveDate> {
        let (start, end) = match self {
            Self::Month(first) => {
                let last = first
                    .checked_add_months(Months::new(1))
                    .map_or(first, |next| next - Duration::days(1));
                (monday(first), monday(last) + Duration::days(6))
            }
            Self::Week(start) => (start, start + Duration::days(6)),
        };
        start.iter_days().take_while(|d| *d <= end).collect()
    }

    /// The link of this view.
    fn href(self) -> String {
        match self {
            Self::Month(first) => format!("/calendar/?month={}", first.format("%Y-%m")),
            Self::Week(start) => format!("/calendar/?view=week&week={start}"),
        }
    }

    /// The view before (`-1`) or after (`1`) this one.
    fn step(self, by: i32) -> Self {
        match self {
            Self::Month(first) => {
                let moved = if by < 0 {
                    first.checked_sub_months(Months::new(by.unsigned_abs()))
                } else {
                    first.checked_add_months(Months::new(by.unsigned_abs()))
                };
                Self::Month(moved.unwrap_or(first))
            }
            Self::Week(start) => Self::Week(start + Duration::days(7 * i64::from(by))),
        }
    }

    fn title(self) -> String {
        match self {
            Self::Month(first) => first.format("%B %Y").to_string(),
            Self::Week(start) => {
                let end = start + Duration::days(6);
                format!("{} – {}", start.format("%-d %b"), end.format("%-d %b %Y"))
            }
        }
    }
}

/// The first and the last day an event covers (an end at midnight ends the day before).
fn event_days(event: &EventOutput) -> Option<(NaiveDate, NaiveDate)> {
    let (start, end) = (instant(&event.start)?, instant(&event.end)?);
    let mut last = end.date_naive();
    if end.time() == NaiveTime::MIN && end > start {
        last = last.pred_opt().unwrap_or(last);
    }
    Some((start.date_naive(), last.max(start.date_naive())))
}

/// "HH:MM" of an RFC 3339 time.
fn clock(rfc3339: &str) -> &str {
    rfc3339.get(11..16).unwrap_or("")
}

/// The `datetime-local` value ("YYYY-MM-DDTHH:MM") of an RFC 3339 time.
fn local_value(rfc3339: &str) -> String {
    rfc3339.get(..16).unwrap_or(rfc3339).to_owned()
}

// ----- the grid ------------------------------------------------------------------------------

/// `GET /calendar/?view=&month=&week=`.
pub(crate) async fn show(user: WebUser, RawQuery(raw): RawQuery) -> Response {
    let query = Query::parse(raw.as_deref());
    let today = Utc::now().date_naive();
    let view = match View::parse(&query, today) {
        Ok(view) => view,
        Err(err) => return error_page(&err, Some(&user)),
    };
    let days = view.days();
    let (Some(first), Some(last)) = (days.first().copied(), days.last().copied()) else {
        return error_page(&bad("month", "Enter a month as YYYY-MM."), Some(&user));
    };
    let filter = format!("start_date={first}&end_date={last}T23:59:59.999999Z");
    let listed = api::list(
        user.auth.clone(),
        Pagination::new(1, MAX_EVENTS, "/api/v1/events/".into(), Vec::new()),
        RawQuery(Some(filter)),
    )
    .await;
    let Json(listed) = match listed {
        Ok(listed) => listed,
        Err(err) => return error_page(&err, Some(&user)),
    };
    let mut events: Vec<(NaiveDate, NaiveDate, &EventOutput)> = listed
        .results
        .iter()
        .filter_map(|e| event_days(e).map(|(a, b)| (a, b, e)))
        .collect();
    events.sort_by(|a, b| (&a.2.start, a.2.id).cmp(&(&b.2.start, b.2.id)));
    let on = |day: NaiveDate| -> Vec<(bool, &EventOutput)> {
        events
            .iter()
            .filter(|(a, b, _)| *a <= day && day <= *b)
            .map(|(a, _, e)| (*a == day, *e))
            .collect()
    };
    let may_add = may(
        &user.auth.principal,
        Action::Add,
        ResourceKind::CalendarEvent,
    );
    let is_week = matches!(view, View::Week(_));
    // The other view of about the same days: this month's week of today (or its first week),
    // or the month of this week's Monday.
    let other = match view {
        View::Month(first) => View::Week(monday(
            if (first.year(), first.month()) == (today.year(), today.month()) {
                today
            } else {
                first
            },
        )),
        View::Week(start) => View::Month(start.with_day(1).unwrap_or(start)),
    };
    let today_view = match view {
        View::Month(_) => View::Month(today.with_day(1).unwrap_or(today)),
        View::Week(_) => View::Week(monday(today)),
    };
    let new_href = |day: NaiveDate| format!("/calendar/new/?date={day}");
    let body = html! {
        div.toolbar.cal-toolbar {
            h1.grow { "Calendar · " (view.title()) }
            nav.cal-nav aria-label="Calendar pages" {
                a.button href=(view.step(-1).href()) rel="prev" { "‹ Previous" }
                a.button href=(today_view.href()) { "Today" }
                a.button href=(view.step(1).href()) rel="next" { "Next ›" }
            }
            nav.segmented aria-label="Calendar view" {
                @if is_week {
                    a href=(other.href()) { "Month" }
                    a href=(view.href()) aria-current="page" { "Week" }
                } @else {
                    a href=(view.href()) aria-current="page" { "Month" }
                    a href=(other.href()) { "Week" }
                }
            }
            @if may_add {
                a.button.primary href="/calendar/new/" { "New event" }
            }
        }
        @if listed.count > MAX_EVENTS {
            p.alert { "Showing the first " (MAX_EVENTS) " of " (listed.count) " events of this period." }
        }
        @if is_week {
            div.cal-week {
                @for day in &days {
                    section class={ "cal-col" @if *day == today { " today" } } {
                        h2 {
                            span { (WEEKDAYS[day.weekday().num_days_from_monday() as usize]) " " (day.format("%-d %b")) }
                            @if may_add { a.cal-add href=(new_href(*day)) title="New event this day" aria-label={ "New event on " (day) } { "+" } }
                        }
                        ol {
                            @for (starts, event) in on(*day) {
                                li { (event_card(event, starts, true)) }
                            }
                        }
                    }
                }
            }
        } @else {
            @let month = view.anchor().month();
            div.cal-month role="grid" aria-label=(view.title()) {
                div.cal-row role="row" {
                    @for name in WEEKDAYS { div.cal-wd role="columnheader" { (name) } }
                }
                @for week in days.chunks(7) {
                    div.cal-row role="row" {
                        @for day in week {
                            @let here = on(*day);
                            div role="gridcell" class={
                                "cal-day"
                                @if day.month() != month { " out" }
                                @if *day == today { " today" }
                                @if matches!(day.weekday(), Weekday::Sat | Weekday::Sun) { " weekend" }
                            } {
                                div.cal-date {
                                    a href=(View::Week(monday(*day)).href()) title="This week" { (day.day()) }
                                    @if may_add { a.cal-add href=(new_href(*day)) title="New event this day" aria-label={ "New event on " (day) } { "+" } }
                                }
                                ol {
                                    @for (starts, event) in here.iter().take(CELL_EVENTS) {
                                        li { (event_card(event, *starts, false)) }
                                    }
                                }
                                @if here.len() > CELL_EVENTS {
                                    a.cal-more href={ "/calendar/?view=week&week=" (day) } { "+" (here.len() - CELL_EVENTS) " more" }
                                }
                            }
                        }
                    }
                }
            }
        }
        p.muted.cal-foot { "Times are UTC. " (listed.count) " event" @if listed.count != 1 { "s" } " in this period." }
    };
    page(&user, "Calendar", "calendar", body)
}

/// An event in the grid: its time (on its first day), title and, in a week, its place.
fn event_card(event: &EventOutput, starts: bool, week: bool) -> Markup {
    let when = if event.all_day {
        "All day".to_owned()
    } else if starts {
        if week {
            format!("{}–{}", clock(&event.start), clock(&event.end))
        } else {
            clock(&event.start).to_owned()
        }
    } else {
        "…".to_owned()
    };
    let tip = if event.location.is_empty() {
        format!("{} {}", minute(&event.start), event.title)
    } else {
        format!(
            "{} {} · {}",
            minute(&event.start),
            event.title,
            event.location
        )
    };
    html! {
        a.cal-ev href={ "/calendar/" (event.id) "/" } data-color=(event.hex_color) title=(tip) {
            time { (when) } " " span.t { (event.title) }
            @if week && !event.location.is_empty() { small { (event.location) } }
        }
    }
}

// ----- one event -----------------------------------------------------------------------------

/// `GET /calendar/{id}/`.
pub(crate) async fn detail(user: WebUser, Path(id): Path<String>) -> Response {
    let event = match api::retrieve(user.auth.clone(), Path(id)).await {
        Ok(Json(event)) => event,
        Err(err) => return error_page(&err, Some(&user)),
    };
    let principal = &user.auth.principal;
    let month = event.start.get(..7).unwrap_or("");
    let hours = event.duration_minutes / 60;
    let length = match (hours, event.duration_minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    };
    let props: Vec<(&str, String)> = vec![
        ("Starts", minute(&event.start)),
        ("Ends", minute(&event.end)),
        ("Length", length),
        (
            "All day",
            if event.all_day { "Yes" } else { "No" }.to_owned(),
        ),
        ("Location", event.location.clone()),
        (
            "Assigned to",
            event
                .assigned_to_full_name
                .clone()
                .filter(|n| !n.is_empty())
                .or_else(|| event.assigned_to_name.clone())
                .unwrap_or_default(),
        ),
        ("Branch", event.branch_name.clone().unwrap_or_default()),
        (
            "Created",
            format!(
                "{} by {}",
                minute(&event.created_at),
                event.created_by_name.as_deref().unwrap_or("—")
            ),
        ),
        (
            "Updated",
            format!(
                "{} by {}",
                minute(&event.updated_at),
                event.updated_by_name.as_deref().unwrap_or("—")
            ),
        ),
    ];
    let body = html! {
        div.toolbar {
            h1.grow { span.swatch data-color=(event.hex_color) {} " " (event.title) }
            a.button href={ "/calendar/?month=" (month) } { "Month" }
            @if may(principal, Action::Change, ResourceKind::CalendarEvent) {
                a.button href={ "/calendar/" (event.id) "/edit/" } { "Edit" }
            }
            @if may(principal, Action::Delete, ResourceKind::CalendarEvent) {
                (action_button(&user, &format!("/calendar/{}/delete/", event.id), "Delete", Some("Delete this event? This cannot be undone.")))
            }
        }
        div.cards {
            div.card.span2 {
                dl.props {
                    @for (label, value) in &props {
                        dt { (label) } dd { @if value.is_empty() { "—" } @else { (value) } }
                    }
                }
                @if !event.description.is_empty() {
                    h2 { "Description" } p.pre { (event.description) }
                }
                p.muted { "Times are UTC." }
            }
        }
    };
    page(&user, &event.title, "calendar", body)
}

// ----- create and edit -----------------------------------------------------------------------

/// The form's values by field name.
type Values = Map<String, Value>;

fn text_of(values: &Values, name: &str) -> String {
    match values.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The form values of a stored event.
fn values_of(event: &EventOutput) -> Values {
    let mut values = Values::new();
    for (name, value) in [
        ("title", event.title.clone()),
        ("start", local_value(&event.start)),
        ("end", local_value(&event.end)),
        ("location", event.location.clone()),
        ("description", event.description.clone()),
        ("hex_color", event.hex_color.to_ascii_lowercase()),
    ] {
        values.insert(name.into(), Value::from(value));
    }
    values.insert("all_day".into(), Value::Bool(event.all_day));
    for (name, id) in [
        ("assigned_to_id", event.assigned_to),
        ("branch_id", event.branch),
    ] {
        values.insert(name.into(), id.map_or(Value::Null, Value::from));
    }
    values
}

/// The posted values, kept when a form is refused.
fn posted(form: &WebForm) -> Values {
    let mut values: Values = form
        .fields
        .iter()
        .filter(|(k, _)| *k != "csrf")
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    values.insert("all_day".into(), Value::Bool(form.get("all_day").is_some()));
    values
}

/// The JSON body of the form: on create an empty field is left out (the API's default or its
/// "required"); on edit an empty id or time is `null` and an empty text is emptied.
fn form_body(form: &WebForm, create: bool) -> Map<String, Value> {
    let mut body = Map::new();
    for name in [
        "title",
        "start",
        "end",
        "location",
        "description",
        "hex_color",
        "assigned_to_id",
        "branch_id",
    ] {
        let Some(raw) = form.fields.get(name) else {
            continue;
        };
        let value = raw.trim();
        let nullable = matches!(name, "start" | "end" | "assigned_to_id" | "branch_id");
        let json = if value.is_empty() {
            if create {
                continue;
            }
            if nullable {
                Value::Null
            } else {
                Value::from("")
            }
        } else if name.ends_with("_id") {
            value
                .parse::<i64>()
                .map_or_else(|_| Value::from(value), Value::from)
        } else {
            Value::from(value)
        };
        body.insert(name.to_owned(), json);
    }
    body.insert("all_day".into(), Value::Bool(form.get("all_day").is_some()));
    body
}

/// The people the user may make an event's assignee: anyone assignable in scope with
/// `assign_calendarevent_to_others`, else only themselves; the stored assignee is kept.
async fn assignee_choices(
    user: &WebUser,
    current: Option<(i64, &str)>,
) -> Result<Options, ApiError> {
    let auth = &user.auth;
    let me = auth.user_id.get();
    let mut choices = if auth
        .principal
        .has(Permission::ASSIGN_CALENDAREVENT_TO_OTHERS)
    {
        options::assignees(auth).await?
    } else {
        Vec::new()
    };
    choices = keeping(
        choices,
        Some(me),
        Some(&format!("{} (me)", user.display_name)),
    );
    Ok(keeping(
        choices,
        current.map(|(id, _)| id),
        current.map(|(_, name)| name),
    ))
}

/// Renders the event form (`event`: the stored one on edit).
async fn render_form(
    user: &WebUser,
    event: Option<&EventOutput>,
    values: &Values,
    errors: &FormErrors,
) -> Response {
    let auth = &user.auth;
    let current_assignee = event.and_then(|e| {
        e.assigned_to.map(|id| {
            (
                id,
                e.assigned_to_full_name
                    .as_deref()
                    .filter(|n| !n.is_empty())
                    .or(e.assigned_to_name.as_deref())
                    .unwrap_or(""),
            )
        })
    });
    let choices = async {
        tokio::try_join!(
            assignee_choices(user, current_assignee),
            options::branches(auth)
        )
    };
    let (assignees, branches) = match choices.await {
        Ok(choices) => choices,
        Err(err) => return error_page(&err, Some(user)),
    };
    let branches = keeping(
        branches,
        event.and_then(|e| e.branch),
        event.and_then(|e| e.branch_name.as_deref()),
    );
    let all_day = matches!(values.get("all_day"), Some(Value::Bool(true)));
    let (title, action, back) = match event {
        Some(e) => (
            format!("Edit event: {}", e.title),
            format!("/calendar/{}/edit/", e.id),
            format!("/calendar/{}/", e.id),
        ),
        None => (
            "New event".to_owned(),
            "/calendar/new/".to_owned(),
            "/calendar/".to_owned(),
        ),
    };
    let shown = [
        "title",
        "start",
        "end",
        "all_day",
        "location",
        "hex_color",
        "assigned_to_id",
        "branch_id",
        "description",
    ];
    let color = Some(text_of(values, "hex_color"))
        .filter(|c| c.len() == 7 && c.starts_with('#'))
        .unwrap_or_else(|| DEFAULT_COLOR.to_owned());
    let body = html! {
        h1 { (title) }
        (errors.alert(&shown))
        form.fields method="post" action=(action) novalidate {
            (csrf_field(user))
            div.wide { (input("title", "Title", "text", &text_of(values, "title"), errors, true)) }
            (input("start", "Starts (UTC)", "datetime-local", &text_of(values, "start"), errors, true))
            (input("end", "Ends (UTC)", "datetime-local", &text_of(values, "end"), errors, true))
            div.field.check {
                label { input type="checkbox" name="all_day" value="true" checked[all_day]; " All day" }
            }
            (input("location", "Location", "text", &text_of(values, "location"), errors, false))
            (input("hex_color", "Colour", "color", &color, errors, false))
            (select("assigned_to_id", "Assigned to", &assignees, &text_of(values, "assigned_to_id"), Some("Nobody"), errors))
            @if !branches.is_empty() {
                (select("branch_id", "Branch (the team that sees it)", &branches, &text_of(values, "branch_id"), Some("No branch"), errors))
            }
            (textarea("description", "Description", &text_of(values, "description"), errors))
            div.wide { button.primary type="submit" { "Save event" } " " a href=(back) { "Cancel" } }
        }
    };
    let mut response = page(user, &title, "calendar", body);
    if !errors.fields.is_empty() || errors.form.is_some() {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    response
}

/// `GET /calendar/new/[?date=YYYY-MM-DD]`: 09:00–10:00 of that day (today by default).
pub(crate) async fn new(user: WebUser, RawQuery(raw): RawQuery) -> Response {
    if let Err(err) = crate::api::require(
        &user.auth.principal,
        Action::Add,
        ResourceKind::CalendarEvent,
    ) {
        return error_page(&err, Some(&user));
    }
    let query = Query::parse(raw.as_deref());
    let day = query
        .get("date")
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .filter(|d| in_range(*d))
        .unwrap_or_else(|| Utc::now().date_naive());
    let mut values = Values::new();
    values.insert("start".into(), Value::from(format!("{day}T09:00")));
    values.insert("end".into(), Value::from(format!("{day}T10:00")));
    values.insert("hex_color".into(), Value::from(DEFAULT_COLOR));
    render_form(&user, None, &values, &FormErrors::default()).await
}

/// `POST /calendar/new/`.
pub(crate) async fn create(State(state): State<AppState>, form: WebForm) -> Response {
    let body = form_body(&form, true);
    match api::create(
        State(state),
        form.user.auth.clone(),
        JsonBody(Value::Object(body)),
    )
    .await
    {
        Ok((_, Json(event))) => see_other(&format!(
            "/calendar/?month={}",
            event.start.get(..7).unwrap_or("")
        )),
        Err(err) => match FormErrors::from_error(&err) {
            Some(errors) => render_form(&form.user, None, &posted(&form), &errors).await,
            None => error_page(&err, Some(&form.user)),
        },
    }
}

/// `GET /calendar/{id}/edit/`.
pub(crate) async fn edit(user: WebUser, Path(id): Path<String>) -> Response {
    if let Err(err) = crate::api::require(
        &user.auth.principal,
        Action::Change,
        ResourceKind::CalendarEvent,
    ) {
        return error_page(&err, Some(&user));
    }
    match api::retrieve(user.auth.clone(), Path(id)).await {
        Ok(Json(event)) => {
            render_form(
                &user,
                Some(&event),
                &values_of(&event),
                &FormErrors::default(),
            )
            .await
        }
        Err(err) => error_page(&err, Some(&user)),
    }
}

/// `POST /calendar/{id}/edit/`: a merge-patch of the posted fields.
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
        JsonBody(Value::Object(body)),
    )
    .await;
    match result {
        Ok(Json(event)) => see_other(&format!("/calendar/{}/", event.id)),
        Err(err) => match FormErrors::from_error(&err) {
            Some(errors) => match api::retrieve(form.user.auth.clone(), Path(id)).await {
                Ok(Json(event)) => {
                    render_form(&form.user, Some(&event), &posted(&form), &errors).await
                }
                Err(err) => error_page(&err, Some(&form.user)),
            },
            None => error_page(&err, Some(&form.user)),
        },
    }
}

/// `POST /calendar/{id}/delete/`: the API's hard delete, then the event's month.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm,
) -> Response {
    let auth = form.user.auth.clone();
    // The month to return to; whether the event may be deleted is the API's to decide.
    let month = match api::retrieve(auth.clone(), Path(id.clone())).await {
        Ok(Json(event)) => event.start.get(..7).unwrap_or("").to_owned(),
        Err(_) => String::new(),
    };
    match api::destroy(State(state), auth, Path(id)).await {
        Ok(_) if month.is_empty() => see_other("/calendar/"),
        Ok(_) => see_other(&format!("/calendar/?month={month}")),
        Err(err) => error_page(&err, Some(&form.user)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(raw: &str) -> Query {
        Query::parse(Some(raw))
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn a_month_grid_is_whole_weeks_from_monday_to_sunday() {
        let view = View::parse(&q("month=2031-05"), d(2030, 1, 1)).ok();
        assert_eq!(view, Some(View::Month(d(2031, 5, 1))));
        let days = view.map(View::days).unwrap_or_default();
        assert_eq!(days.first().copied(), Some(d(2031, 4, 28)));
        assert_eq!(days.last().copied(), Some(d(2031, 6, 1)));
        assert_eq!(days.len() % 7, 0);
    }

    #[test]
    fn a_week_starts_on_the_monday_of_the_given_day_and_steps_by_seven_days() {
        let view = View::parse(&q("view=week&week=2031-05-15"), d(2030, 1, 1)).ok();
        assert_eq!(view, Some(View::Week(d(2031, 5, 12))));
        let next = view.map(|v| v.step(1).href());
        assert_eq!(
            next.as_deref(),
            Some("/calendar/?view=week&week=2031-05-19")
        );
        let prev = View::Month(d(2031, 1, 1)).step(-1).href();
        assert_eq!(prev, "/calendar/?month=2030-12");
    }

    #[test]
    fn malformed_or_far_dates_are_refused() {
        for raw in [
            "month=2031-13",
            "month=2031-5",
            "month=May",
            "view=week&week=2031-02-30",
            "view=year",
            "month=0999-01",
            "month=99999-01",
        ] {
            assert!(View::parse(&q(raw), d(2030, 1, 1)).is_err(), "{raw}");
        }
    }
}
