//! What every screen is built from: the shell (top bar, left navigation filtered by
//! permission), dense tables with sortable headers and a pager, form fields with inline errors,
//! and the query-string helpers that keep a list's filters across its links.

use std::collections::BTreeMap;

use axum::response::Response;
use leopard_http::pagination::parse_positive;
use leopard_http::{ApiError, Page, Pagination};
use leopard_rbac::{Action, Permission, Principal, ResourceKind};
use maud::{html, Markup, DOCTYPE};

use super::{assets, html_response, WebUser};

/// One entry of the left navigation: shown only to a principal that may `action` one of the
/// kinds `needs` (no kinds: everyone).
struct NavItem {
    section: &'static str,
    key: &'static str,
    label: &'static str,
    href: &'static str,
    needs: &'static [ResourceKind],
    action: Action,
}

/// The navigation, in order. An entry whose permission the user lacks is not rendered (its
/// pages refuse the user anyway).
const NAV: &[NavItem] = &[
    NavItem {
        section: "Work",
        key: "dashboard",
        label: "Dashboard",
        href: "/",
        needs: &[],
        action: Action::View,
    },
    NavItem {
        section: "Work",
        key: "clients",
        label: "Clients",
        href: "/clients/",
        needs: &[ResourceKind::Client],
        action: Action::View,
    },
    NavItem {
        section: "Work",
        key: "tasks",
        label: "Tasks",
        href: "/tasks/",
        needs: &[ResourceKind::Task],
        action: Action::View,
    },
    NavItem {
        section: "Work",
        key: "calendar",
        label: "Calendar",
        href: "/calendar/",
        needs: &[ResourceKind::CalendarEvent],
        action: Action::View,
    },
    NavItem {
        section: "Work",
        key: "reminders",
        label: "Reminders",
        href: "/reminders/",
        needs: &[ResourceKind::Reminder],
        action: Action::View,
    },
    NavItem {
        section: "Work",
        key: "notifications",
        label: "Notifications",
        href: "/notifications/",
        needs: &[],
        action: Action::View,
    },
    // Master data (web/master.rs): read by those who fill forms with it.
    NavItem {
        section: "Master data",
        key: "institutes",
        label: "Institutes",
        href: "/master/institutes/",
        needs: &[ResourceKind::Institute],
        action: Action::View,
    },
    NavItem {
        section: "Master data",
        key: "courses",
        label: "Courses",
        href: "/master/courses/",
        needs: &[ResourceKind::Course],
        action: Action::View,
    },
    NavItem {
        section: "Master data",
        key: "course-levels",
        label: "Course levels",
        href: "/master/course-levels/",
        needs: &[ResourceKind::CourseLevel],
        action: Action::View,
    },
    NavItem {
        section: "Master data",
        key: "fields",
        label: "Fields of study",
        href: "/master/broad-fields/",
        needs: &[ResourceKind::BroadField],
        action: Action::View,
    },
    NavItem {
        section: "Master data",
        key: "agents",
        label: "Agents",
        href: "/master/agents/",
        needs: &[ResourceKind::Agent],
        action: Action::View,
    },
    // Administration: for those who manage the organisation (consultants may read users and
    // branches to fill their forms, but get no administration menu).
    NavItem {
        section: "Administration",
        key: "users",
        label: "Users",
        href: "/admin/users/",
        needs: &[ResourceKind::User],
        action: Action::Add,
    },
    NavItem {
        section: "Administration",
        key: "branches",
        label: "Branches",
        href: "/admin/branches/",
        needs: &[ResourceKind::Branch],
        action: Action::Change,
    },
    NavItem {
        section: "Administration",
        key: "regions",
        label: "Regions",
        href: "/admin/regions/",
        needs: &[ResourceKind::Region],
        action: Action::Change,
    },
    // Applications (visa and college, issue 15 screens 5 and 6): gated by the view permission
    // the API's list checks.
    NavItem {
        section: "Applications",
        key: "visa_applications",
        label: "Visa applications",
        href: "/visa-applications/",
        needs: &[ResourceKind::VisaApplication],
        action: Action::View,
    },
    NavItem {
        section: "Applications",
        key: "visa_types",
        label: "Visa types",
        href: "/visa-types/",
        needs: &[
            ResourceKind::VisaType,
            ResourceKind::VisaApplication,
            ResourceKind::Client,
        ],
        action: Action::View,
    },
    NavItem {
        section: "Applications",
        key: "visa_categories",
        label: "Visa categories",
        href: "/visa-categories/",
        needs: &[
            ResourceKind::VisaCategory,
            ResourceKind::VisaApplication,
            ResourceKind::Client,
        ],
        action: Action::View,
    },
    NavItem {
        section: "Applications",
        key: "college_applications",
        label: "College applications",
        href: "/college-applications/",
        needs: &[ResourceKind::CollegeApplication],
        action: Action::View,
    },
    NavItem {
        section: "Applications",
        key: "college_board",
        label: "Stage board",
        href: "/college-applications/board/",
        needs: &[ResourceKind::CollegeApplication],
        action: Action::View,
    },
    NavItem {
        section: "Applications",
        key: "application_types",
        label: "Application types",
        href: "/application-types/",
        needs: &[
            ResourceKind::ApplicationType,
            ResourceKind::CollegeApplication,
        ],
        action: Action::View,
    },
];

/// Entries gated by a permission that names no resource kind (`auth.change_group`), placed
/// after [`NAV`]'s entries of their section.
const PERMISSION_NAV: &[(NavItem, Permission)] = &[(
    NavItem {
        section: "Administration",
        key: "groups",
        label: "Groups",
        href: "/admin/groups/",
        needs: &[],
        action: Action::Change,
    },
    Permission::CHANGE_GROUP,
)];

/// Whether `principal` may `action` resources of `kind` at all (the API's permission gate; the
/// row scope is checked by the operation).
pub(crate) fn may(principal: &Principal, action: Action, kind: ResourceKind) -> bool {
    principal.has(Permission::new(kind, action))
}

fn nav(user: &WebUser, active: &str) -> Markup {
    let principal = &user.auth.principal;
    let visible: Vec<&NavItem> = NAV
        .iter()
        .filter(|item| {
            item.needs.is_empty()
                || item
                    .needs
                    .iter()
                    .any(|kind| may(principal, item.action, *kind))
        })
        .chain(
            PERMISSION_NAV
                .iter()
                .filter(|(_, permission)| principal.has(*permission))
                .map(|(item, _)| item),
        )
        .collect();
    let mut sections: Vec<&str> = Vec::new();
    for item in &visible {
        if !sections.contains(&item.section) {
            sections.push(item.section);
        }
    }
    html! {
        nav.side aria-label="Main" {
            @for section in &sections {
                h3 { (section) }
                @for item in visible.iter().filter(|i| i.section == *section) {
                    @if item.key == active {
                        a href=(item.href) aria-current="page" { (item.label) }
                    } @else {
                        a href=(item.href) { (item.label) }
                    }
                }
            }
        }
    }
}

/// A full page: the shell around `content`, titled `title`, with navigation entry `active`
/// highlighted.
pub(crate) fn page(user: &WebUser, title: &str, active: &str, content: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (user.tenant_name()) }
                link rel="icon" href=(assets::url("icon.svg"));
                link rel="stylesheet" href=(assets::url("app.css"));
                script type="module" src=(assets::url("app.js")) {}
            }
            body {
                div.shell {
                    header.topbar {
                        a.brand href="/" { (user.tenant_name()) small { "Leopard" } }
                        form.search role="search" action="/search/" method="get" {
                            label.sr-only for="global-search" { "Search clients" }
                            input #global-search type="search" name="q" placeholder="Search clients ( / )" autocomplete="off";
                        }
                        span.spacer {}
                        div.bell-wrap {
                            a.bell href="/notifications/" data-bell data-stream="/stream/"
                                aria-haspopup="true" aria-expanded="false"
                                aria-label={ "Notifications: " (user.unread) " unread" } {
                                svg.icon viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" {
                                    path d="M12 22a2 2 0 0 0 2-2h-4a2 2 0 0 0 2 2zm6-6V11a6 6 0 0 0-5-5.9V4a1 1 0 0 0-2 0v1.1A6 6 0 0 0 6 11v5l-2 2v1h16v-1z" fill="currentColor" {}
                                }
                                " " span.count data-zero=(user.unread == 0) { (user.unread) }
                            }
                            div #bell-menu.bell-menu hidden {}
                        }
                        button type="button" data-theme-toggle title="Switch light/dark theme" { "◐" }
                        span.user { (user.display_name) }
                        form.inline method="post" action="/logout/" {
                            (csrf_field(user))
                            button type="submit" { "Log out" }
                        }
                    }
                    (nav(user, active))
                    main #main { (content) }
                }
            }
        }
    };
    html_response(markup)
}

/// The hidden CSRF field every state-changing form carries.
pub(crate) fn csrf_field(user: &WebUser) -> Markup {
    html! { input type="hidden" name="csrf" value=(user.csrf); }
}

/// A small POST form with one button (an action on a row).
pub(crate) fn action_button(
    user: &WebUser,
    action: &str,
    label: &str,
    confirm: Option<&str>,
) -> Markup {
    html! {
        form.inline method="post" action=(action) data-confirm=[confirm] {
            (csrf_field(user))
            button type="submit" { (label) }
        }
    }
}

/// A chip for an enum value (`LEAD`, `HIGH`, …) showing `label`.
pub(crate) fn chip(value: &str, label: &str) -> Markup {
    html! { span class={ "chip " (value) } { (label) } }
}

/// "Title Case" of an `UPPER_SNAKE` enum value (`FOLLOW_UP` → "Follow Up").
pub(crate) fn display(value: &str) -> String {
    value
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let lower = w.to_lowercase();
            let mut chars = lower.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_uppercase().collect::<String>() + chars.as_str()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The date part of an RFC 3339 time, or the whole text.
pub(crate) fn day(rfc3339: &str) -> &str {
    rfc3339.get(..10).unwrap_or(rfc3339)
}

/// "YYYY-MM-DD HH:MM" of an RFC 3339 time.
pub(crate) fn minute(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(d), Some(t)) => format!("{d} {t}"),
        _ => rfc3339.to_owned(),
    }
}

/// A JSON value as the text of a cell or an input: strings as they are, `null` or absent as
/// nothing, anything else as its JSON.
pub(crate) fn json_text(value: Option<&serde_json::Value>) -> String {
    match value {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

// ----- query strings -------------------------------------------------------------------------

/// A list page's query: its parameters in order, rebuilt into links that change one of them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query(pub Vec<(String, String)>);

impl Query {
    /// Parses a raw query string.
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        Self(
            url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .into_owned()
                .filter(|(_, v)| !v.is_empty())
                .collect(),
        )
    }

    /// The value of `key`, if any.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The query with `key` set to `value` (removed when `None`), and `page` reset unless it is
    /// the key changed.
    pub(crate) fn with(&self, key: &str, value: Option<&str>) -> String {
        let mut pairs: Vec<(String, String)> = self
            .0
            .iter()
            .filter(|(k, _)| k != key && (key == "page" || k != "page"))
            .cloned()
            .collect();
        if let Some(value) = value {
            pairs.push((key.to_owned(), value.to_owned()));
        }
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &pairs {
            out.append_pair(k, v);
        }
        let text = out.finish();
        if text.is_empty() {
            "?".to_owned()
        } else {
            format!("?{text}")
        }
    }

    /// The query string as it is (for the API operation).
    pub(crate) fn raw(&self) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            out.append_pair(k, v);
        }
        out.finish()
    }

    /// The page request (`page`, `page_size`, default 25) for the API operation.
    pub(crate) fn pagination(&self, path: &str) -> Pagination {
        let number = |key: &str, default: i64| {
            self.get(key)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(default)
        };
        Pagination::new(
            number("page", 1),
            number("page_size", 25),
            path.to_owned(),
            Vec::new(),
        )
    }
}

/// A sortable column header: a link ordering by `field`, toggling the direction when the list
/// is already ordered by it.
pub(crate) fn sort_header(query: &Query, label: &str, field: &str) -> Markup {
    let current = query.get("ordering").unwrap_or("");
    let (next, sort) = if current == field {
        (format!("-{field}"), Some("ascending"))
    } else if current == format!("-{field}") {
        (field.to_owned(), Some("descending"))
    } else {
        (field.to_owned(), None)
    };
    let arrow = match sort {
        Some("ascending") => " ▲",
        Some(_) => " ▼",
        None => "",
    };
    html! {
        th scope="col" aria-sort=[sort] {
            a href=(query.with("ordering", Some(&next))) { (label) (arrow) }
        }
    }
}

/// The page sizes a pager offers.
const PAGE_SIZES: [i64; 4] = [25, 50, 100, 250];

/// The pager under a table: position, previous/next links and the page size.
pub(crate) fn pager(query: &Query, count: i64) -> Markup {
    let size = query
        .get("page_size")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(25)
        .clamp(1, 1000);
    let page = query
        .get("page")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(1)
        .max(1);
    let pages = ((count + size - 1) / size).max(1);
    pager_markup(
        query,
        count,
        (page, size),
        page > 1,
        page < pages,
        &PAGE_SIZES,
    )
}

/// The pager's markup: page `page` of `size` rows out of `count`, a previous and a next link
/// when `previous` and `next`, and the page sizes `sizes`; links are `query` with another
/// `page` (or `page_size`).
fn pager_markup(
    query: &Query,
    count: i64,
    (page, size): (i64, i64),
    previous: bool,
    next: bool,
    sizes: &[i64],
) -> Markup {
    let pages = ((count + size - 1) / size).max(1);
    let first = if count == 0 {
        0
    } else {
        ((page - 1).saturating_mul(size) + 1).min(count)
    };
    let last = page.saturating_mul(size).min(count);
    html! {
        div.pager {
            span { (first) "–" (last) " of " (count) }
            @if previous {
                a href=(query.with("page", Some(&(page - 1).to_string()))) rel="prev" { "‹ Previous" }
            }
            span { "page " (page) " / " (pages) }
            @if next {
                a href=(query.with("page", Some(&(page + 1).to_string()))) rel="next" { "Next ›" }
            }
            form.inline method="get" {
                @for (k, v) in query.0.iter().filter(|(k, _)| k != "page_size" && k != "page") {
                    input type="hidden" name=(k) value=(v);
                }
                label for="page-size" { "Rows " }
                select #page-size name="page_size" data-autosubmit {
                    @for option in sizes {
                        option value=(option) selected[*option == size] { (option) }
                    }
                }
                button type="submit" data-js-hide { "Apply" }
            }
        }
    }
}

/// One paged list of a page that shows several (the client page's tabs): its `page` and
/// `page_size`, checked as the API's extractor checks them, and the query of its pager's links.
#[derive(Debug, Clone)]
pub(crate) struct Paged {
    /// The pager's query: the list's own parameters (`tab=…`), then `page` and `page_size` as
    /// requested.
    query: Query,
    page: i64,
    size: i64,
    max: i64,
    /// Whether the request named a page size (the pager stays, to change it back).
    chosen: bool,
}

impl Paged {
    /// The page `request` asks for, under the list's own parameters `own`: `page` 1 and
    /// `page_size` `default` unless given, a size capped at `max` (the API's own cap), and a
    /// malformed number the API's 400.
    pub(crate) fn new(
        request: &Query,
        own: &[(&str, &str)],
        default: i64,
        max: i64,
    ) -> Result<Self, ApiError> {
        let page = parse_positive("page", request.get("page"), 1)?;
        let asked = request.get("page_size");
        let size = parse_positive("page_size", asked, default)?.min(max);
        let mut query = Query(
            own.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        if page > 1 {
            query.0.push(("page".into(), page.to_string()));
        }
        if asked.is_some() {
            query.0.push(("page_size".into(), size.to_string()));
        }
        Ok(Self {
            query,
            page,
            size,
            max,
            chosen: asked.is_some(),
        })
    }

    /// The API list request of this page under `path`, with the list's `filters`.
    pub(crate) fn request(
        &self,
        path: &str,
        filters: &[(&str, String)],
    ) -> (Pagination, axum::extract::RawQuery) {
        let mut pairs: Vec<(String, String)> = filters
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        pairs.push(("page_size".into(), self.size.to_string()));
        let pagination = Pagination::new(self.page, self.size, path.to_owned(), pairs.clone());
        pairs.push(("page".into(), self.page.to_string()));
        (
            pagination,
            axum::extract::RawQuery(Some(Query(pairs).raw())),
        )
    }

    /// The link to this very page (`?tab=…`, then `&page=…` past the first), for links that add
    /// a parameter to it.
    pub(crate) fn here(&self) -> String {
        let page = (self.page > 1).then(|| self.page.to_string());
        self.query.with("page", page.as_deref())
    }

    /// The pager under the list, from the API's own `count`, `next` and `previous`: shown when
    /// the list has more than one page, or the request chose a page size.
    pub(crate) fn pager<T>(&self, page: &Page<T>) -> Markup {
        if page.next.is_none() && page.previous.is_none() && !self.chosen {
            return html! {};
        }
        let sizes: Vec<i64> = PAGE_SIZES.into_iter().filter(|s| *s <= self.max).collect();
        pager_markup(
            &self.query,
            page.count,
            (self.page, self.size),
            page.previous.is_some(),
            page.next.is_some(),
            &sizes,
        )
    }
}

// ----- forms ---------------------------------------------------------------------------------

/// The errors of a refused form: per field, plus a message for the whole form.
#[derive(Debug, Clone, Default)]
pub(crate) struct FormErrors {
    /// Messages per field name.
    pub(crate) fields: BTreeMap<String, Vec<String>>,
    /// A message for the whole form (a refusal that names no field).
    pub(crate) form: Option<String>,
}

impl FormErrors {
    /// The errors of `err` when it is one a form can show (a 4xx), else `None` (the caller
    /// renders the error page).
    pub(crate) fn from_error(err: &ApiError) -> Option<Self> {
        match err {
            ApiError::Validation(fields) => {
                let mut fields = fields.clone();
                let form = fields
                    .remove("non_field_errors")
                    .or_else(|| fields.remove("detail"))
                    .map(|m| m.join(" "));
                Some(Self { fields, form })
            }
            ApiError::BadRequest(_) | ApiError::Conflict(_) => Some(Self {
                fields: BTreeMap::new(),
                form: Some(err.detail()),
            }),
            _ => None,
        }
    }

    /// The messages of `field`.
    pub(crate) fn of(&self, field: &str) -> &[String] {
        self.fields.get(field).map_or(&[], Vec::as_slice)
    }

    /// The alert above a form: the form's message, and the fields no input shows.
    pub(crate) fn alert(&self, shown: &[&str]) -> Markup {
        let others: Vec<String> = self
            .fields
            .iter()
            .filter(|(k, _)| !shown.contains(&k.as_str()))
            .map(|(k, v)| format!("{}: {}", display(k), v.join(" ")))
            .collect();
        html! {
            @if self.form.is_some() || !others.is_empty() || !self.fields.is_empty() {
                div.alert role="alert" {
                    @if let Some(message) = &self.form { p { (message) } }
                    @if self.form.is_none() && others.is_empty() { p { "Please correct the errors below." } }
                    @for message in &others { p { (message) } }
                }
            }
        }
    }
}

/// An input field: label, input of `kind` (`text`, `email`, `date`, …), inline errors.
pub(crate) fn input(
    name: &str,
    label: &str,
    kind: &str,
    value: &str,
    errors: &FormErrors,
    required: bool,
) -> Markup {
    let messages = errors.of(name);
    let id = format!("f-{name}");
    let err_id = format!("{id}-error");
    html! {
        div class={ "field" @if !messages.is_empty() { " invalid" } } {
            label for=(id) { (label) @if required { " *" } }
            input id=(id) type=(kind) name=(name) value=(value) required[required]
                aria-invalid=[(!messages.is_empty()).then_some("true")]
                aria-describedby=[(!messages.is_empty()).then_some(err_id.as_str())];
            @if !messages.is_empty() {
                p.error id=(err_id) { (messages.join(" ")) }
            }
        }
    }
}

/// A select field over `(value, label)` options, with an empty choice when `blank` is given.
pub(crate) fn select(
    name: &str,
    label: &str,
    options: &[(String, String)],
    selected: &str,
    blank: Option<&str>,
    errors: &FormErrors,
) -> Markup {
    let messages = errors.of(name);
    let id = format!("f-{name}");
    html! {
        div class={ "field" @if !messages.is_empty() { " invalid" } } {
            label for=(id) { (label) }
            select id=(id) name=(name) aria-invalid=[(!messages.is_empty()).then_some("true")] {
                @if let Some(blank) = blank { option value="" { (blank) } }
                @for (value, text) in options {
                    option value=(value) selected[value == selected] { (text) }
                }
            }
            @if !messages.is_empty() { p.error { (messages.join(" ")) } }
        }
    }
}

/// A textarea field.
pub(crate) fn textarea(name: &str, label: &str, value: &str, errors: &FormErrors) -> Markup {
    let messages = errors.of(name);
    let id = format!("f-{name}");
    html! {
        div class={ "field wide" @if !messages.is_empty() { " invalid" } } {
            label for=(id) { (label) }
            textarea id=(id) name=(name) rows="3" { (value) }
            @if !messages.is_empty() { p.error { (messages.join(" ")) } }
        }
    }
}
