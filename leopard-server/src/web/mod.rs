//! The web interface: server-rendered HTML pages at `/` of every tenant host, for the agency
//! staff who use the CRM all day.
//!
//! - Pages are [`maud`] templates (checked at compile time, every interpolated string escaped)
//!   with progressive enhancement from one small ES module (`assets/app.js`): the live bell,
//!   auto-submitting filters, keyboard navigation, the theme switch and the stage board's drag
//!   and drop. Every page works without it.
//! - A page handler is as thin as an API handler: it reads the session ([`WebUser`]) or a
//!   CSRF-checked form ([`WebForm`]), calls **the API's own operation** in-process with the same
//!   [`leopard_http::AuthUser`] (so permission gates, row scope, validation and events are the
//!   API's, never a copy), and renders the result. A validation error re-renders the form with
//!   the messages inline; a refusal renders the error page with the API's status.
//! - Buttons and menu entries are rendered only when the principal holds the permission the
//!   operation checks; the operation refuses anyway.
//! - Every page answers with a strict Content-Security-Policy (`default-src 'self'`), `X-Frame-Options:
//!   DENY`, `Referrer-Policy: same-origin` and `X-Content-Type-Options: nosniff`.
//!
//! Modules: [`session`] (cookies, CSRF, extractors), [`assets`] (embedded static files),
//! [`widgets`] (the shell, tables, forms), and one module per screen.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use leopard_http::ApiError;
use maud::{html, Markup, DOCTYPE};

use crate::app::AppState;

mod admin;
pub mod assets;
mod calendar;
mod client_tabs;
mod clients;
mod college;
mod dashboard;
mod login;
mod master;
mod notifications;
mod options;
pub mod platform;
mod reminders;
pub mod session;
mod tasks;
mod visa;
pub(crate) mod widgets;

pub use options::OptionCache;
pub use session::{WebConfig, WebForm, WebUser};

/// The Content-Security-Policy of every page: nothing from another origin, no inline script or
/// style, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
    object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// The routes of the web interface (tenant hosts; `/static/` on every host).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard::show))
        .route("/login/", get(login::form).post(login::submit))
        .route("/logout/", post(login::logout))
        .route("/clients/", get(clients::list))
        .route("/clients/new/", get(clients::new).post(clients::create))
        .route("/clients/{id}/", get(clients::show))
        .route(
            "/clients/{id}/edit/",
            get(clients::edit).post(clients::update),
        )
        .route("/clients/{id}/delete/", post(clients::delete))
        .route("/clients/{id}/restore/", post(clients::restore))
        .route("/clients/{id}/notes/", post(clients::add_note))
        .merge(client_tab_routes())
        .route("/tasks/", get(tasks::list))
        .route("/tasks/{id}/{action}/", post(tasks::act))
        .route("/notifications/", get(notifications::list))
        .route("/notifications/menu/", get(notifications::menu))
        .route("/notifications/read-all/", post(notifications::read_all))
        .route("/notifications/{id}/read/", post(notifications::read))
        .route("/stream/", get(notifications::stream))
        // The platform pages (base host only; web/platform.rs).
        .route("/platform/", get(platform::tenants))
        .route(
            "/platform/login/",
            get(platform::login_form).post(platform::login_submit),
        )
        .route("/platform/logout/", post(platform::logout))
        .route(
            "/platform/tenants/new/",
            get(platform::tenants_new).post(platform::tenants_create),
        )
        .route("/platform/tenants/{slug}/", get(platform::tenant_show))
        .route(
            "/platform/tenants/{slug}/status/",
            post(platform::tenant_status),
        )
        .route(
            "/platform/tenants/{slug}/domains/",
            post(platform::domain_add),
        )
        .route(
            "/platform/tenants/{slug}/domains/remove/",
            post(platform::domain_remove),
        )
        .route("/search/", get(clients::search))
        .route("/admin/users/", get(admin::users_list))
        .route(
            "/admin/users/new/",
            get(admin::users_new).post(admin::users_create),
        )
        .route(
            "/admin/users/{id}/deactivate/",
            post(admin::users_deactivate),
        )
        .route("/admin/branches/", get(admin::branches_list))
        .route("/admin/regions/", get(admin::regions_list))
        .route("/admin/groups/", get(admin::groups_list))
        .route(
            "/admin/groups/new/",
            get(admin::groups_new).post(admin::groups_create),
        )
        .route(
            "/admin/groups/{id}/",
            get(admin::groups_show).post(admin::groups_update),
        )
        .route("/admin/groups/{id}/delete/", post(admin::groups_delete))
        // Master data: one generic screen per resource (web/master.rs).
        .route("/master/{slug}/", get(master::list))
        .route("/master/{slug}/new/", get(master::new).post(master::create))
        .route(
            "/master/{slug}/{id}/",
            get(master::show).post(master::update),
        )
        .route("/master/{slug}/{id}/delete/", post(master::delete))
        .merge(application_routes())
        .merge(work_routes())
        .layer(axum::middleware::from_fn(security_headers))
}

// ----- visa and college applications (issue 15, screens 5 and 6) ------------------------------

/// The forms of the client page's tabs ([`client_tabs`]).
fn client_tab_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/clients/{id}/picture/",
            get(client_tabs::picture_file)
                .post(client_tabs::picture_upload)
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::api::crm::profile_pictures::BODY_LIMIT,
                )),
        )
        .route(
            "/clients/{id}/picture/delete/",
            post(client_tabs::picture_delete),
        )
        .route("/clients/{id}/passport/", post(client_tabs::passport_save))
        .route(
            "/clients/{id}/notes/{note}/edit/",
            post(client_tabs::note_edit),
        )
        .route(
            "/clients/{id}/notes/{note}/delete/",
            post(client_tabs::note_delete),
        )
        .route(
            "/clients/{id}/{section}/new/",
            post(client_tabs::section_add),
        )
        .route(
            "/clients/{id}/{section}/{row}/edit/",
            post(client_tabs::section_edit),
        )
        .route(
            "/clients/{id}/{section}/{row}/delete/",
            post(client_tabs::section_delete),
        )
}

/// The routes of the visa and college application screens ([`visa`], [`college`]).
fn application_routes() -> Router<AppState> {
    Router::new()
        .route("/visa-applications/", get(visa::list))
        .route("/visa-applications/new/", get(visa::new).post(visa::create))
        .route("/visa-applications/{id}/", get(visa::show))
        .route(
            "/visa-applications/{id}/edit/",
            get(visa::edit).post(visa::update),
        )
        .route(
            "/visa-applications/{id}/documents/",
            post(visa::documents_update),
        )
        .route("/visa-applications/{id}/delete/", post(visa::delete))
        .route(
            "/visa-types/",
            get(visa::types_list).post(visa::types_create),
        )
        .route("/visa-categories/", get(visa::categories_list))
        .route("/college-applications/", get(college::list))
        .route("/college-applications/board/", get(college::board))
        .route("/college-applications/{id}/", get(college::show))
        .route(
            "/college-applications/{id}/stage/",
            post(college::move_stage),
        )
        .route(
            "/application-types/",
            get(college::types_list).post(college::types_create),
        )
        .route("/application-types/{id}/", get(college::type_show))
        .route(
            "/application-types/{id}/delete/",
            post(college::type_delete),
        )
        .route(
            "/application-types/{id}/stages/",
            post(college::stage_create),
        )
        .route(
            "/application-types/{id}/stages/{stage}/move/",
            post(college::stage_move),
        )
        .route(
            "/application-types/{id}/stages/{stage}/delete/",
            post(college::stage_delete),
        )
}

// ----- calendar, reminders, task pages (issue 15) ---------------------------------------------

/// The routes of the calendar ([`calendar`]), the reminders ([`reminders`]) and the task form
/// and page ([`tasks`]; a static segment wins over `/tasks/{id}/{action}/`).
fn work_routes() -> Router<AppState> {
    Router::new()
        .route("/calendar/", get(calendar::show))
        .route("/calendar/new/", get(calendar::new).post(calendar::create))
        .route("/calendar/{id}/", get(calendar::detail))
        .route(
            "/calendar/{id}/edit/",
            get(calendar::edit).post(calendar::update),
        )
        .route("/calendar/{id}/delete/", post(calendar::delete))
        .route("/reminders/", get(reminders::list))
        .route(
            "/reminders/new/",
            get(reminders::new).post(reminders::create),
        )
        .route(
            "/reminders/{id}/edit/",
            get(reminders::edit).post(reminders::update),
        )
        .route("/reminders/{id}/done/", post(reminders::done))
        .route("/reminders/{id}/delete/", post(reminders::delete))
        .route("/tasks/new/", get(tasks::new).post(tasks::create))
        .route("/tasks/{id}/", get(tasks::detail))
        .route("/tasks/{id}/comments/", post(tasks::comment))
}

/// The static files (served on every host, without a tenant).
pub fn static_routes() -> Router<AppState> {
    Router::new()
        .route("/static/{file}", get(assets::serve))
        .route(
            "/favicon.ico",
            get(|| async { axum::response::Redirect::permanent(assets::url("icon.svg")) }),
        )
}

/// Adds the security headers of a page to `response`.
pub fn add_security_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    add_security_headers(&mut response);
    response
}

/// Whether a request is a browser's asking for a page (not the API's, not a file).
pub fn wants_html(request: &Request) -> bool {
    let path = request.uri().path();
    !path.starts_with("/api/")
        && path != "/health/"
        && !path.starts_with("/static/")
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"))
}

/// Outermost middleware: a browser asking for a page of an unknown or inactive tenant gets the
/// tenant-not-found or tenant-inactive page instead of the tenancy layer's JSON; `/` of the
/// base host (`localhost`, a host that is the registry's base domain) goes to the platform
/// pages.
pub async fn html_tenant_errors(
    axum::extract::State(registry): axum::extract::State<
        std::sync::Arc<leopard_tenancy::TenantRegistry>,
    >,
    request: Request,
    next: Next,
) -> Response {
    let html = wants_html(&request);
    if html && request.uri().path() == "/" {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(|h| {
                h.rsplit_once(':')
                    .map_or(h, |(name, _)| name)
                    .to_ascii_lowercase()
            });
        if host.as_deref() == Some(registry.config().base_domain.as_str()) {
            return axum::response::Redirect::to("/platform/").into_response();
        }
    }
    let response = next.run(request).await;
    if !html {
        return response;
    }
    let status = response.status();
    if status != StatusCode::NOT_FOUND && status != StatusCode::FORBIDDEN {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return Response::from_parts(parts, axum::body::Body::empty());
    };
    let code = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(str::to_owned));
    match code.as_deref() {
        Some("tenant_not_found") => error_page(&ApiError::TenantNotFound, None),
        Some("tenant_inactive") => error_page(&ApiError::TenantInactive, None),
        _ => Response::from_parts(parts, axum::body::Body::from(bytes)),
    }
}

/// A page-shaped 404 for an unknown path asked by a browser.
pub fn not_found_page() -> Response {
    error_page(&ApiError::NotFound("Page not found.".into()), None)
}

/// The error page of `err` in the interface's style, with the API's status. Internal causes
/// are logged, never shown. With a user, the page keeps the navigation.
pub fn error_page(err: &ApiError, user: Option<&WebUser>) -> Response {
    err.log_internal();
    let status = err.status();
    let title = match err {
        ApiError::TenantNotFound => "No agency here",
        ApiError::TenantInactive => "This agency is inactive",
        ApiError::NotFound(_) => "Not found",
        ApiError::Forbidden(_) => "Not allowed",
        ApiError::Throttled(_) => "Too many attempts",
        ApiError::Unavailable => "Temporarily unavailable",
        ApiError::Internal(_) => "Something went wrong",
        _ => "The request was refused",
    };
    let body = html! {
        p.code { (status.as_u16()) }
        h1 { (title) }
        p { (err.detail()) }
        @if matches!(err, ApiError::TenantNotFound) {
            p.muted { "Check the address: each agency has its own host name, such as acme.localhost." }
        }
        @if !matches!(err, ApiError::TenantNotFound | ApiError::TenantInactive) {
            p { a href="/" { "Back to the dashboard" } }
        }
    };
    let mut response = match user {
        Some(user) => widgets::page(user, title, "", body),
        None => bare_page(title, html! { div.center { div.box { (body) } } }),
    };
    *response.status_mut() = status;
    response.headers_mut().extend(
        err.extra_headers()
            .into_iter()
            .filter(|(name, _)| name != header::WWW_AUTHENTICATE),
    );
    add_security_headers(&mut response);
    response
}

/// A page without the shell (login, errors before a session).
pub fn bare_page(title: &str, content: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Leopard" }
                link rel="icon" href=(assets::url("icon.svg"));
                link rel="stylesheet" href=(assets::url("app.css"));
                script type="module" src=(assets::url("app.js")) {}
            }
            body { (content) }
        }
    };
    html_response(markup)
}

/// `markup` as a `text/html` response.
pub fn html_response(markup: Markup) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        markup.into_string(),
    )
        .into_response()
}
