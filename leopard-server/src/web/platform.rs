//! The platform administration pages on the base host (`localhost:8000/`, a host that resolves
//! to no tenant): the platform login, the tenants (list, create with its first Super Admin,
//! suspend, activate) and their domains (add, remove).
//!
//! Platform administrators live in the public schema and belong to no tenant, so their
//! sessions do too: a row of `public.leopard_platform_web_sessions` (shared migration 4) behind
//! the cookie `leopard_platform_session`, with the same rules as a tenant's sessions (token
//! hashed, HttpOnly, SameSite=Lax, Secure in production, idle expiry, logout revokes, CSRF on
//! every form). Every page answers only on the base host (a tenant host gets the 404 page), and
//! every operation is the platform API's own handler from [`crate::api::platform`], called
//! with the same [`PlatformAdmin`] its bearer extractor builds.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{FromRequest, FromRequestParts, Path, RawQuery, Request, State};
use axum::http::{header, request::Parts, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use http::Extensions;
use leopard_http::{ApiError, JsonBody};
use maud::{html, Markup, DOCTYPE};
use serde_json::{json, Map, Value};
use sqlx::PgConnection;

use super::session::{
    cookie_value, csrf_refused, random_token, read_form, see_other, token_hash, LOGIN_CSRF_COOKIE,
};
use super::widgets::{chip, input, pager, select, textarea, FormErrors, Query};
use super::{assets, error_page, html_response};
use crate::api::input::client_address;
use crate::api::platform::{self as api, BaseHost, PlatformAdmin};
use crate::app::AppState;

/// The cookie of a platform session.
pub const PLATFORM_SESSION_COOKIE: &str = "leopard_platform_session";

/// The signed-in platform administrator of a page request on the base host.
#[derive(Debug, Clone)]
pub struct PlatformUser {
    /// The admin, as the platform API's handlers take it.
    pub admin: PlatformAdmin,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    token_hash: Vec<u8>,
}

/// Why a platform page has no admin: the 404 page on a tenant host, else the login.
fn no_session(parts: &Parts) -> Response {
    let next = parts
        .uri
        .path_and_query()
        .map_or("/platform/", |p| p.as_str());
    let target = format!(
        "/platform/login/?next={}",
        url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
    );
    Redirect::to(&target).into_response()
}

async fn touch_session(
    conn: &mut PgConnection,
    hash: &[u8],
    idle: Duration,
) -> Result<Option<(i64, String)>, ApiError> {
    Ok(sqlx::query_as(
        "UPDATE public.leopard_platform_web_sessions s SET last_seen_at = now()
           FROM public.leopard_platform_admins a
          WHERE s.token_hash = $1 AND a.id = s.admin_id AND a.is_active
            AND s.expires_at > now()
            AND s.last_seen_at > now() - make_interval(secs => $2)
          RETURNING a.id, a.username",
    )
    .bind(hash)
    .bind(idle.as_secs_f64())
    .fetch_optional(&mut *conn)
    .await?)
}

impl FromRequestParts<AppState> for PlatformUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if BaseHost::from_request_parts(parts, state).await.is_err() {
            return Err(super::not_found_page());
        }
        let Some(token) = cookie_value(parts, PLATFORM_SESSION_COOKIE).filter(|t| t.len() == 64)
        else {
            return Err(no_session(parts));
        };
        let hash = token_hash(token);
        let found = async {
            let mut conn = state.pool.acquire().await?;
            touch_session(&mut conn, &hash, state.web.idle_timeout).await
        }
        .await
        .map_err(|err| error_page(&err, None))?;
        let Some((id, username)) = found else {
            return Err(no_session(parts));
        };
        Ok(Self {
            admin: PlatformAdmin { id, username },
            csrf: state.web.csrf_for(&hash),
            token_hash: hash,
        })
    }
}

/// A CSRF-checked form of a signed-in platform admin.
#[derive(Debug)]
pub struct PlatformForm {
    /// Who submitted it.
    pub user: PlatformUser,
    /// The fields, the last value of each name.
    pub fields: HashMap<String, String>,
}

impl PlatformForm {
    /// The trimmed value of `name` (empty when absent).
    fn text(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", |v| v.trim())
    }
}

impl FromRequest<AppState> for PlatformForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let user = PlatformUser::from_request_parts(&mut parts, state).await?;
        let pairs = read_form(&parts, body)
            .await
            .map_err(|e| error_page(&e, None))?;
        let fields: HashMap<String, String> = pairs.into_iter().collect();
        let sent = fields.get("csrf").map_or("", String::as_str);
        if !state.web.csrf_matches(&user.token_hash, sent) {
            tracing::info!("platform form refused: bad CSRF token");
            return Err(csrf_refused());
        }
        Ok(Self { user, fields })
    }
}

/// A platform page: a top bar (the platform, the admin, logout) around `content`.
fn platform_page(user: &PlatformUser, title: &str, content: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Leopard platform" }
                link rel="icon" href=(assets::url("icon.svg"));
                link rel="stylesheet" href=(assets::url("app.css"));
                script type="module" src=(assets::url("app.js")) {}
            }
            body {
                div.shell.platform {
                    header.topbar {
                        a.brand href="/platform/" { "Leopard" small { "platform" } }
                        span.spacer {}
                        button type="button" data-theme-toggle title="Switch light/dark theme" { "◐" }
                        span.user { (user.admin.username) }
                        form.inline method="post" action="/platform/logout/" {
                            input type="hidden" name="csrf" value=(user.csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                    nav.side aria-label="Main" {
                        h3 { "Platform" }
                        a href="/platform/" aria-current="page" { "Tenants" }
                    }
                    main #main { (content) }
                }
            }
        }
    };
    html_response(markup)
}

fn csrf(user: &PlatformUser) -> Markup {
    html! { input type="hidden" name="csrf" value=(user.csrf); }
}

fn with_status(mut response: Response, status: StatusCode) -> Response {
    *response.status_mut() = status;
    response
}

// ----- login -----------------------------------------------------------------------------------

fn login_page(csrf: &str, next: &str, username: &str, error: Option<&str>) -> Response {
    let frame = super::login::LoginBox {
        action: "/platform/login/",
        heading: "Leopard platform",
        subtitle: "Sign in to manage the agencies",
    };
    super::bare_page(
        "Platform login",
        super::login::login_box(&frame, csrf, next, username, error),
    )
}

fn safe_next(next: Option<&str>) -> String {
    super::login::safe_next_under(next, "/platform/")
}

/// `GET /platform/login/` (base host only).
pub(crate) async fn login_form(
    State(state): State<AppState>,
    _base: BaseHost,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let existing = cookie_value(&parts, LOGIN_CSRF_COOKIE)
        .filter(|v| v.len() == 64)
        .map(str::to_owned);
    let token = existing.clone().unwrap_or_else(random_token);
    let next = safe_next(Query::parse(parts.uri.query()).get("next"));
    let mut response = login_page(&token, &next, "", None);
    if existing.is_none() {
        response.headers_mut().append(
            header::SET_COOKIE,
            state
                .web
                .cookie(LOGIN_CSRF_COOKIE, &token, Duration::from_secs(2 * 60 * 60)),
        );
    }
    response
}

/// `POST /platform/login/`: the platform API's login check, then a session.
pub(crate) async fn login_submit(
    State(state): State<AppState>,
    _base: BaseHost,
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
                sent,
                &next,
                &username,
                Some("Enter your username and password."),
            ),
            StatusCode::BAD_REQUEST,
        );
    }
    let signed_in = async {
        let mut tx = state.pool.begin().await?;
        let admin = api::check_platform_login(
            &state,
            &mut tx,
            &client_address(&extensions),
            &username,
            field("password").to_owned(),
        )
        .await?;
        let token = random_token();
        sqlx::query(
            "INSERT INTO public.leopard_platform_web_sessions (token_hash, admin_id, expires_at)
             VALUES ($1, $2, now() + make_interval(secs => $3))",
        )
        .bind(token_hash(&token))
        .bind(admin.id)
        .bind(state.web.lifetime.as_secs_f64())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM public.leopard_platform_web_sessions
              WHERE expires_at < now() - interval '1 day'",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok::<_, ApiError>(token)
    }
    .await;
    match signed_in {
        Ok(token) => {
            let mut response = see_other(&next);
            let headers = response.headers_mut();
            headers.append(
                header::SET_COOKIE,
                state
                    .web
                    .cookie(PLATFORM_SESSION_COOKIE, &token, state.web.lifetime),
            );
            headers.append(
                header::SET_COOKIE,
                state.web.cookie(LOGIN_CSRF_COOKIE, "", Duration::ZERO),
            );
            response
        }
        Err(err @ (ApiError::InvalidCredentials | ApiError::Throttled(_))) => {
            let mut response = with_status(
                login_page(sent, &next, &username, Some(&err.detail())),
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

/// `POST /platform/logout/`: deletes the session row.
pub(crate) async fn logout(State(state): State<AppState>, form: PlatformForm) -> Response {
    let ended = async {
        let mut conn = state.pool.acquire().await?;
        sqlx::query("DELETE FROM public.leopard_platform_web_sessions WHERE token_hash = $1")
            .bind(&form.user.token_hash)
            .execute(&mut *conn)
            .await?;
        Ok::<_, ApiError>(())
    }
    .await;
    match ended {
        Ok(()) => {
            let mut response = see_other("/platform/login/");
            response.headers_mut().append(
                header::SET_COOKIE,
                state
                    .web
                    .cookie(PLATFORM_SESSION_COOKIE, "", Duration::ZERO),
            );
            response
        }
        Err(err) => error_page(&err, None),
    }
}

// ----- tenants ---------------------------------------------------------------------------------

fn status_chip(tenant: &leopard_tenancy::Tenant) -> Markup {
    let status = tenant.subscription_status.as_str();
    html! {
        (chip(status, status))
        @if !tenant.is_active { " " (chip("CLOSE", "inactive")) }
    }
}

/// `GET /platform/`: every tenant, paged.
pub(crate) async fn tenants(
    State(state): State<AppState>,
    user: PlatformUser,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Query::parse(raw.as_deref());
    let page = match api::tenants_page(&state, &query.pagination("/platform/")).await {
        Ok(page) => page,
        Err(err) => return error_page(&err, None),
    };
    let body = html! {
        div.toolbar {
            h1.grow { "Tenants" }
            a.button.primary href="/platform/tenants/new/" { "New tenant" }
        }
        div.table-wrap {
            table.grid {
                thead { tr {
                    th scope="col" { "Slug" } th scope="col" { "Name" } th scope="col" { "Status" }
                    th scope="col" { "Domains" } th.num scope="col" { "Max users" } th scope="col" { "Created" }
                } }
                tbody {
                    @for t in &page.results {
                        tr {
                            td { a href={ "/platform/tenants/" (t.slug) "/" } { (t.slug) } }
                            td { (t.name) }
                            td { (status_chip(t)) }
                            td { (t.domains.join(", ")) }
                            td.num { (t.max_users) }
                            td { (t.created_at.format("%Y-%m-%d")) }
                        }
                    }
                    @if page.results.is_empty() { tr.empty { td colspan="6" { "No tenants yet." } } }
                }
            }
        }
        (pager(&query, page.count))
    };
    platform_page(&user, "Tenants", body)
}

const STATUSES: &[&str] = &["TRIAL", "ACTIVE", "SUSPENDED", "CANCELLED"];

const TENANT_FIELDS: &[&str] = &[
    "slug",
    "name",
    "max_users",
    "subscription_status",
    "contact_email",
    "contact_phone",
    "domains",
    "admin.username",
    "admin.email",
    "admin.password",
    "admin.first_name",
    "admin.last_name",
];

fn tenant_form(user: &PlatformUser, values: &Map<String, Value>, errors: &FormErrors) -> Response {
    let text = |name: &str| {
        values
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let statuses: Vec<(String, String)> = STATUSES
        .iter()
        .map(|s| ((*s).to_owned(), (*s).to_owned()))
        .collect();
    let body = html! {
        p.muted { a href="/platform/" { "← Tenants" } }
        h1 { "New tenant" }
        (errors.alert(TENANT_FIELDS))
        form.fields method="post" action="/platform/tenants/new/" novalidate {
            (csrf(user))
            (input("slug", "Slug", "text", &text("slug"), errors, true))
            (input("name", "Name", "text", &text("name"), errors, true))
            (input("max_users", "Max users", "number", &text("max_users"), errors, false))
            (select("subscription_status", "Subscription", &statuses, &text("subscription_status"), None, errors))
            (input("contact_email", "Contact e-mail", "email", &text("contact_email"), errors, false))
            (input("contact_phone", "Contact phone", "tel", &text("contact_phone"), errors, false))
            (textarea("domains", "Extra domains (one per line)", &text("domains"), errors))
            h2.wide { "First Super Admin (optional)" }
            (input("admin.username", "Username", "text", &text("admin.username"), errors, false))
            (input("admin.email", "E-mail", "email", &text("admin.email"), errors, false))
            (input("admin.first_name", "First name", "text", &text("admin.first_name"), errors, false))
            (input("admin.last_name", "Last name", "text", &text("admin.last_name"), errors, false))
            (input("admin.password", "Password", "password", "", errors, false))
            div.wide { button.primary type="submit" { "Create tenant" } " " a href="/platform/" { "Cancel" } }
        }
    };
    let status = if errors.fields.is_empty() && errors.form.is_none() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    with_status(platform_page(user, "New tenant", body), status)
}

/// `GET /platform/tenants/new/`.
pub(crate) async fn tenants_new(user: PlatformUser) -> Response {
    let mut values = Map::new();
    values.insert("subscription_status".into(), Value::from("TRIAL"));
    tenant_form(&user, &values, &FormErrors::default())
}

/// `POST /platform/tenants/new/`: the platform API's create (with the first admin when a
/// username is given).
pub(crate) async fn tenants_create(State(state): State<AppState>, form: PlatformForm) -> Response {
    let mut values = Map::new();
    for name in TENANT_FIELDS {
        if *name != "admin.password" {
            values.insert((*name).to_owned(), Value::from(form.text(name)));
        }
    }
    let mut body = json!({
        "slug": form.text("slug"),
        "name": form.text("name"),
        "subscription_status": form.text("subscription_status"),
        "contact_email": form.text("contact_email"),
        "contact_phone": form.text("contact_phone"),
        "domains": form.text("domains").lines().map(str::trim).filter(|d| !d.is_empty()).collect::<Vec<_>>(),
    });
    let max_users = form.text("max_users");
    if !max_users.is_empty() {
        match max_users.parse::<i32>() {
            Ok(n) => body["max_users"] = Value::from(n),
            Err(_) => {
                let mut errors = FormErrors::default();
                errors.fields.insert(
                    "max_users".into(),
                    vec!["A valid integer is required.".into()],
                );
                return tenant_form(&form.user, &values, &errors);
            }
        }
    }
    if !form.text("admin.username").is_empty() {
        body["admin"] = json!({
            "username": form.text("admin.username"),
            "email": form.text("admin.email"),
            "first_name": form.text("admin.first_name"),
            "last_name": form.text("admin.last_name"),
            "password": form.fields.get("admin.password").map_or("", String::as_str),
        });
    }
    let input = match serde_json::from_value::<api::CreateTenantInput>(body) {
        Ok(input) => input,
        Err(err) => return error_page(&ApiError::BadRequest(err.to_string()), None),
    };
    let slug = form.text("slug").to_owned();
    match api::create_tenant(State(state), form.user.admin.clone(), JsonBody(input)).await {
        Ok(_) => see_other(&format!("/platform/tenants/{slug}/")),
        Err(err) => match FormErrors::from_error(&err) {
            Some(errors) => tenant_form(&form.user, &values, &errors),
            None => error_page(&err, None),
        },
    }
}

/// `GET /platform/tenants/{slug}/`: the tenant, its domains, suspend or activate.
pub(crate) async fn tenant_show(
    State(state): State<AppState>,
    user: PlatformUser,
    Path(slug): Path<String>,
) -> Response {
    match api::get_tenant(State(state), user.admin.clone(), Path(slug)).await {
        Ok(Json(tenant)) => tenant_page(&user, &tenant, &FormErrors::default(), ""),
        Err(err) => error_page(&err, None),
    }
}

fn tenant_page(
    user: &PlatformUser,
    tenant: &leopard_tenancy::Tenant,
    errors: &FormErrors,
    domain: &str,
) -> Response {
    let slug = tenant.slug.as_str();
    let serving = tenant.is_active && tenant.subscription_status.is_serving();
    let body = html! {
        p.muted { a href="/platform/" { "← Tenants" } }
        div.toolbar {
            h1.grow { (tenant.name) " " (status_chip(tenant)) }
            form.inline method="post" action={ "/platform/tenants/" (slug) "/status/" } {
                (csrf(user))
                @if serving {
                    input type="hidden" name="action" value="suspend";
                    button.danger type="submit" data-confirm="Suspend this tenant? Its users are refused at once." { "Suspend" }
                } @else {
                    input type="hidden" name="action" value="activate";
                    button.primary type="submit" { "Activate" }
                }
            }
        }
        dl.props {
            dt { "Slug" } dd { (slug) }
            dt { "Schema" } dd { code { (tenant.schema_name.as_str()) } }
            dt { "Max users" } dd { (tenant.max_users) }
            dt { "Contact" } dd { (tenant.contact_email.as_deref().unwrap_or("—")) " " (tenant.contact_phone.as_deref().unwrap_or("")) }
            dt { "Created" } dd { (tenant.created_at.format("%Y-%m-%d %H:%M")) }
        }
        section.card {
            h2 { "Domains" }
            (errors.alert(&["domain"]))
            table.grid {
                thead { tr { th scope="col" { "Domain" } th scope="col" { "Actions" } } }
                tbody {
                    @for (i, d) in tenant.domains.iter().enumerate() {
                        tr {
                            td { (d) @if i == 0 { " " (chip("", "primary")) } }
                            td {
                                @if tenant.domains.len() > 1 {
                                    form.inline method="post" action={ "/platform/tenants/" (slug) "/domains/remove/" } {
                                        (csrf(user))
                                        input type="hidden" name="domain" value=(d);
                                        button type="submit" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.toolbar method="post" action={ "/platform/tenants/" (slug) "/domains/" } {
                (csrf(user))
                (input("domain", "Add a domain", "text", domain, errors, false))
                label { input type="checkbox" name="is_primary" value="true"; " primary" }
                button type="submit" { "Add domain" }
            }
        }
    };
    let status = if errors.fields.is_empty() && errors.form.is_none() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    with_status(platform_page(user, &tenant.name, body), status)
}

/// `POST /platform/tenants/{slug}/status/` (`action=suspend|activate`): the platform API's
/// update (suspend sets `SUSPENDED`; activate sets `ACTIVE` and `is_active`).
pub(crate) async fn tenant_status(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    form: PlatformForm,
) -> Response {
    let body = match form.text("action") {
        "suspend" => json!({ "subscription_status": "SUSPENDED" }),
        "activate" => json!({ "subscription_status": "ACTIVE", "is_active": true }),
        _ => {
            return error_page(
                &ApiError::field("action", "Choose suspend or activate."),
                None,
            )
        }
    };
    let input = match serde_json::from_value::<api::UpdateTenantInput>(body) {
        Ok(input) => input,
        Err(err) => return error_page(&ApiError::BadRequest(err.to_string()), None),
    };
    match api::update_tenant(
        State(state),
        form.user.admin.clone(),
        Path(slug.clone()),
        JsonBody(input),
    )
    .await
    {
        Ok(_) => see_other(&format!("/platform/tenants/{slug}/")),
        Err(err) => error_page(&err, None),
    }
}

/// `POST /platform/tenants/{slug}/domains/`: adds a domain.
pub(crate) async fn domain_add(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    form: PlatformForm,
) -> Response {
    let body = json!({
        "domain": form.text("domain"),
        "is_primary": form.text("is_primary") == "true",
    });
    let input = match serde_json::from_value::<api::DomainInput>(body) {
        Ok(input) => input,
        Err(err) => return error_page(&ApiError::BadRequest(err.to_string()), None),
    };
    let result = api::add_domain(
        State(state.clone()),
        form.user.admin.clone(),
        Path(slug.clone()),
        JsonBody(input),
    )
    .await;
    domain_result(state, form, slug, result.map(|_| ())).await
}

/// `POST /platform/tenants/{slug}/domains/remove/` (`domain`): removes a domain.
pub(crate) async fn domain_remove(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    form: PlatformForm,
) -> Response {
    let domain = form.text("domain").to_owned();
    let result = api::remove_domain(
        State(state.clone()),
        form.user.admin.clone(),
        Path((slug.clone(), domain)),
    )
    .await;
    domain_result(state, form, slug, result.map(|_| ())).await
}

/// After a domain change: back to the tenant, or its page with the refusal inline.
async fn domain_result(
    state: AppState,
    form: PlatformForm,
    slug: String,
    result: Result<(), ApiError>,
) -> Response {
    match result {
        Ok(()) => see_other(&format!("/platform/tenants/{slug}/")),
        Err(err) => match FormErrors::from_error(&err) {
            Some(errors) => {
                match api::get_tenant(State(state), form.user.admin.clone(), Path(slug)).await {
                    Ok(Json(tenant)) => {
                        tenant_page(&form.user, &tenant, &errors, form.text("domain"))
                    }
                    Err(err) => error_page(&err, None),
                }
            }
            None => error_page(&err, None),
        },
    }
}
