//! `/login/` and `/logout/`: the tenant's login form (it names the agency), signing in through
//! the API's own login check (throttles, password verification and upgrade), and logout.
//!
//! The login form has no session yet, so its CSRF defence is a double-submit cookie: `GET`
//! sets `leopard_login_csrf` to a random value and the form carries the same value; a `POST`
//! whose field and cookie differ is a 403 and signs nobody in. `next` returns the user to the
//! page that sent them to the login, and only to a path of this host.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use http::Extensions;
use leopard_http::{ApiError, Tenant};
use maud::{html, Markup};

use super::session::{
    cookie_value, create_session, csrf_refused, end_session, random_token, read_form, see_other,
    LOGIN_CSRF_COOKIE, SESSION_COOKIE,
};
use super::{bare_page, error_page, WebForm};
use crate::api::identity::auth::check_login;
use crate::api::input::client_address;
use crate::app::AppState;

/// Where to go after a login: a local path under `prefix` only (never another host), else
/// `prefix` itself.
pub(crate) fn safe_next_under(next: Option<&str>, prefix: &str) -> String {
    match next {
        Some(path)
            if path.starts_with(prefix) && !path.starts_with("//") && !path.contains('\\') =>
        {
            path.to_owned()
        }
        _ => prefix.to_owned(),
    }
}

fn safe_next(next: Option<&str>) -> String {
    safe_next_under(next, "/")
}

/// What a login form shows around its fields.
pub(crate) struct LoginBox<'a> {
    /// Where the form posts.
    pub action: &'a str,
    /// The heading (the tenant's name, or the platform's).
    pub heading: &'a str,
    /// The line under it.
    pub subtitle: &'a str,
}

/// The login form of a tenant or of the platform: the double-submit `csrf` token, the page to
/// return to, the username typed so far and the error of a refused attempt.
pub(crate) fn login_box(
    frame: &LoginBox<'_>,
    csrf: &str,
    next: &str,
    username: &str,
    error: Option<&str>,
) -> Markup {
    html! {
        main.center {
            form.box method="post" action=(frame.action) {
                h1 { (frame.heading) }
                p.muted { (frame.subtitle) }
                @if let Some(error) = error {
                    div.alert role="alert" { (error) }
                }
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="next" value=(next);
                div.field {
                    label for="username" { "Username or e-mail" }
                    input #username name="username" value=(username) autocomplete="username" required autofocus;
                }
                div.field {
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="current-password" required;
                }
                button.primary type="submit" { "Log in" }
            }
        }
    }
}

fn login_page(
    tenant: &Tenant,
    csrf: &str,
    next: &str,
    username: &str,
    error: Option<&str>,
) -> Response {
    let name = &tenant.tenant().name;
    let frame = LoginBox {
        action: "/login/",
        heading: name,
        subtitle: "Sign in to Leopard",
    };
    bare_page(
        &format!("Log in · {name}"),
        login_box(&frame, csrf, next, username, error),
    )
}

/// `GET /login/`.
pub(crate) async fn form(
    State(state): State<AppState>,
    tenant: Tenant,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let existing = cookie_value(&parts, LOGIN_CSRF_COOKIE)
        .filter(|v| v.len() == 64)
        .map(str::to_owned);
    let csrf = existing.clone().unwrap_or_else(random_token);
    let next = safe_next(super::widgets::Query::parse(parts.uri.query()).get("next"));
    let mut response = login_page(&tenant, &csrf, &next, "", None);
    if existing.is_none() {
        response.headers_mut().append(
            header::SET_COOKIE,
            state
                .web
                .cookie(LOGIN_CSRF_COOKIE, &csrf, Duration::from_secs(2 * 60 * 60)),
        );
    }
    response
}

/// `POST /login/`.
pub(crate) async fn submit(
    State(state): State<AppState>,
    tenant: Tenant,
    extensions: Extensions,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let pairs = match read_form(&parts, body).await {
        Ok(pairs) => pairs,
        Err(err) => return error_page(&err, None),
    };
    let field = |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let cookie = cookie_value(&parts, LOGIN_CSRF_COOKIE).unwrap_or("");
    let sent = field("csrf");
    if cookie.len() != 64 || sent != cookie {
        return csrf_refused();
    }
    let username = field("username").trim().to_owned();
    let next = safe_next(Some(field("next")));
    if username.is_empty() || field("password").is_empty() {
        return with_status(
            login_page(
                &tenant,
                sent,
                &next,
                &username,
                Some("Enter your username and password."),
            ),
            StatusCode::BAD_REQUEST,
        );
    }
    let result = sign_in(&state, &tenant, &extensions, &username, field("password")).await;
    match result {
        Ok(token) => {
            let mut response = see_other(&next);
            let headers = response.headers_mut();
            headers.append(
                header::SET_COOKIE,
                state.web.cookie(SESSION_COOKIE, &token, state.web.lifetime),
            );
            headers.append(
                header::SET_COOKIE,
                state.web.cookie(LOGIN_CSRF_COOKIE, "", Duration::ZERO),
            );
            response
        }
        Err(err @ (ApiError::InvalidCredentials | ApiError::Throttled(_))) => {
            let mut response = with_status(
                login_page(&tenant, sent, &next, &username, Some(&err.detail())),
                err.status(),
            );
            response.headers_mut().extend(
                err.extra_headers()
                    .into_iter()
                    .filter(|(name, _)| name == header::RETRY_AFTER),
            );
            response
        }
        Err(err) => error_page(&err, None),
    }
}

/// Checks the credentials and opens a session in one tenant transaction.
async fn sign_in(
    state: &AppState,
    tenant: &Tenant,
    extensions: &Extensions,
    username: &str,
    password: &str,
) -> Result<String, ApiError> {
    let mut tx = tenant.begin().await?;
    let user = check_login(
        state,
        &mut tx,
        tenant,
        &client_address(extensions),
        username,
        password.to_owned(),
    )
    .await?;
    let token = create_session(&mut tx, &state.web, user.id).await?;
    tx.commit().await?;
    Ok(token)
}

fn with_status(mut response: Response, status: StatusCode) -> Response {
    *response.status_mut() = status;
    response
}

/// `POST /logout/`: ends the session (CSRF-checked, so no other site can log a user out).
pub(crate) async fn logout(State(state): State<AppState>, form: WebForm) -> Response {
    match end_session(&form.user, &state.web).await {
        Ok(clear) => {
            let mut response = see_other("/login/");
            response.headers_mut().append(header::SET_COOKIE, clear);
            response
        }
        Err(err) => error_page(&err, Some(&form.user)),
    }
}
