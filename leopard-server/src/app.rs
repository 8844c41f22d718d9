//! The HTTP application: routes behind the tenancy layer.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use leopard_events::Waker;
use leopard_http::jwt::JwtKeys;
use leopard_http::{ApiError, Authenticator, Tenant, Throttle};
use leopard_tenancy::provision::Provisioner;
use leopard_tenancy::{TenancyLayer, TenantRegistry};
use serde_json::json;
use sqlx::postgres::PgPool;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::api;
use crate::identity::PgPrincipals;
use crate::openapi;
use crate::realtime::Realtime;

/// Everything the application needs to be built.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The pool: answers the health check and the platform (public-schema) routes; tenant data
    /// is reached only through tenant contexts.
    pub pool: PgPool,
    /// The tenant registry.
    pub registry: Arc<TenantRegistry>,
    /// Creates and manages tenants for the platform API.
    pub provisioner: Arc<Provisioner>,
    /// The token signing secret (at least 32 bytes).
    pub secret: Vec<u8>,
    /// Lifetime of access tokens.
    pub access_ttl: Duration,
    /// Lifetime of refresh tokens.
    pub refresh_ttl: Duration,
    /// Failed logins allowed per (tenant, username) per window.
    pub login_attempts_per_user: u32,
    /// Failed logins allowed per client address per window.
    pub login_attempts_per_address: u32,
    /// Login-throttling window.
    pub login_window: Duration,
    /// Wakes the event bus's workers after a commit that recorded events (the default wakes
    /// nobody: workers still find the events by polling).
    pub waker: Waker,
    /// Where uploaded files live, one directory per tenant schema (`<media_dir>/<schema>/…`);
    /// they are served only through the API. `leopard serve` uses `<data-dir>/media`.
    pub media_dir: PathBuf,
    /// The notification streams of this process (hub, buffer size, heartbeat). Feed it with a
    /// [`crate::realtime::Listener`] over the same database.
    pub realtime: Arc<Realtime>,
    /// Origins allowed to call the API from a browser (CORS).
    pub cors_origins: CorsOrigins,
    /// The largest JSON or form body, and the deadline for receiving a body.
    pub body_limits: leopard_http::BodyLimits,
    /// A web session unused this long ends (default 30 min).
    pub web_idle_timeout: Duration,
    /// A web session ends this long after login (default 12 h).
    pub web_session_lifetime: Duration,
    /// Whether the web interface's cookies carry `Secure` (production mode).
    pub secure_cookies: bool,
    /// The principal cache the authenticator consults (live only while a
    /// [`crate::principals::PrincipalListener`] runs for it).
    pub principals: Arc<leopard_http::PrincipalCache>,
    /// The list-count cache (live only while a notification listener runs for it).
    pub counts: Arc<crate::counts::CountCache>,
}

/// Origins allowed by CORS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// Any origin (`Access-Control-Allow-Origin: *`): the development default. Tokens travel in
    /// headers or the query, never in cookies, so no credentials are ever allowed.
    Any,
    /// Exactly these origins (`https://app.example.com`); none at all when empty (the
    /// production default).
    List(Vec<String>),
}

impl AppConfig {
    /// A configuration with the default lifetimes (access 30 min, refresh 1 day) and throttling
    /// (5 failures per user, 50 per address, per 15 min).
    pub fn new(
        pool: PgPool,
        registry: Arc<TenantRegistry>,
        provisioner: Arc<Provisioner>,
        secret: Vec<u8>,
    ) -> Self {
        Self {
            pool,
            registry,
            provisioner,
            secret,
            access_ttl: Duration::from_secs(30 * 60),
            refresh_ttl: Duration::from_secs(24 * 60 * 60),
            login_attempts_per_user: 5,
            login_attempts_per_address: 50,
            login_window: Duration::from_secs(15 * 60),
            waker: Waker::default(),
            media_dir: PathBuf::from("./.leopard/media"),
            realtime: Arc::new(Realtime::default()),
            cors_origins: CorsOrigins::Any,
            body_limits: leopard_http::BodyLimits::default(),
            web_idle_timeout: Duration::from_secs(30 * 60),
            web_session_lifetime: Duration::from_secs(12 * 60 * 60),
            secure_cookies: false,
            principals: Arc::new(leopard_http::PrincipalCache::default()),
            counts: Arc::new(crate::counts::CountCache::default()),
        }
    }
}

/// Login throttles: per (tenant, username) and per client address.
#[derive(Debug)]
pub struct LoginThrottles {
    /// Keyed by `tenant:username` (lower-cased).
    pub per_user: Throttle,
    /// Keyed by client address.
    pub per_address: Throttle,
}

/// Shared state of the HTTP application.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Platform (public schema) only.
    pub(crate) pool: PgPool,
    /// The health check's own single connection.
    pub(crate) health_pool: PgPool,
    /// Tenant tokens and principals.
    pub(crate) auth: Arc<Authenticator>,
    /// Platform-admin tokens (keys derived from the same secret for another purpose).
    pub(crate) platform_keys: Arc<JwtKeys>,
    /// Login throttling.
    pub(crate) throttles: Arc<LoginThrottles>,
    /// The tenant registry (the platform API refuses tenant hosts).
    pub(crate) registry: Arc<TenantRegistry>,
    /// Tenant management for the platform API.
    pub(crate) provisioner: Arc<Provisioner>,
    /// Wakes the event workers after commits that recorded events
    /// (`leopard_events::commit(tx, &state.waker)`).
    pub(crate) waker: Waker,
    /// Uploaded files and the key of their signed URLs.
    pub(crate) media: Arc<api::crm::profile_pictures::Media>,
    /// The notification streams.
    pub(crate) realtime: Arc<Realtime>,
    /// Web sessions: lifetimes, cookie security, the CSRF key.
    pub(crate) web: Arc<crate::web::WebConfig>,
    /// The web pages' cached option lists (valid while the principal cache is unchanged).
    pub(crate) web_options: Arc<crate::web::OptionCache>,
}

impl FromRef<AppState> for Arc<Authenticator> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.auth)
    }
}

/// The notification stream (Server-Sent Events, [`crate::realtime::stream`]): a tenant route
/// outside [`api::table`] because its body never ends.
pub const STREAM_PATH: &str = "/api/v1/notifications/stream/";

/// Paths that are served without a tenant (the OpenAPI document and its UI on every host).
pub const PUBLIC_PATHS: &[&str] = &[
    "/health/",
    "/api/platform/",
    openapi::SCHEMA_PATH,
    openapi::DOCS_PATH,
    "/static/",
    "/favicon.ico",
    "/platform/",
];

/// Builds the application router. Fails only for a secret shorter than 32 bytes.
pub fn router(config: AppConfig) -> Result<Router, ApiError> {
    let auth = Authenticator::new(
        JwtKeys::new(&config.secret)?,
        config.access_ttl,
        config.refresh_ttl,
        Arc::new(PgPrincipals),
    )
    .with_principal_cache(Arc::clone(&config.principals));
    // The health check has connections of its own, so it answers while the request pool is
    // exhausted (and says 503 only when the database itself is unreachable). A few, not one:
    // a single connection made concurrent probes queue on its round trip, capping /health/
    // (the benchmarks' ceiling of the box) at a fifth of what the machine does.
    let health_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(HEALTH_CONNECTIONS)
        .min_connections(0)
        .acquire_timeout(HEALTH_TIMEOUT)
        .connect_lazy_with(config.pool.connect_options().as_ref().clone());
    let counts = crate::counts::Counts {
        cache: Arc::clone(&config.counts),
        pool: config.pool.clone(),
    };
    let state = AppState {
        health_pool,
        pool: config.pool,
        auth: Arc::new(auth),
        platform_keys: Arc::new(JwtKeys::derived(&config.secret, "leopard platform tokens")?),
        throttles: Arc::new(LoginThrottles {
            per_user: Throttle::new(config.login_attempts_per_user, config.login_window),
            per_address: Throttle::new(config.login_attempts_per_address, config.login_window),
        }),
        registry: Arc::clone(&config.registry),
        provisioner: config.provisioner,
        waker: config.waker,
        media: Arc::new(api::crm::profile_pictures::Media::new(
            config.media_dir,
            &config.secret,
        )?),
        realtime: config.realtime,
        web: Arc::new(crate::web::WebConfig::new(
            &config.secret,
            config.web_idle_timeout,
            config.web_session_lifetime,
            config.secure_cookies,
        )),
        web_options: Arc::new(crate::web::OptionCache::default()),
    };
    let registry = Arc::clone(&config.registry);
    let mut tenancy = TenancyLayer::new(config.registry);
    for path in PUBLIC_PATHS {
        tenancy = tenancy.with_public_path(*path);
    }
    Ok(Router::new()
        .route("/health/", get(health).fallback(method_not_allowed))
        .route(
            "/api/public/tenant-info/",
            get(tenant_info).fallback(method_not_allowed),
        )
        .route(
            STREAM_PATH,
            get(crate::realtime::stream).fallback(|| async { ApiError::MethodNotAllowed }),
        )
        .route(
            openapi::SCHEMA_PATH,
            get(openapi::schema).fallback(method_not_allowed),
        )
        .route(
            openapi::DOCS_PATH,
            get(openapi::docs).fallback(method_not_allowed),
        )
        .route(
            openapi::DOCS_FILE_PATH,
            get(openapi::docs_file).fallback(method_not_allowed),
        )
        .merge(api::routes())
        .merge(crate::web::routes())
        .merge(crate::web::static_routes())
        .fallback(not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(refuse_null_characters))
        .layer(axum::middleware::from_fn_with_state(
            counts,
            crate::counts::scope,
        ))
        .layer(DefaultBodyLimit::max(config.body_limits.max_body_bytes))
        .layer(leopard_http::BodyDeadlineLayer::new(config.body_limits))
        .layer(tenancy)
        .layer(
            // Spans carry the method and path only: query strings may hold tokens.
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = %req.uri().path(),
                        tenant = tracing::field::Empty,
                    )
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(cors_layer(&config.cors_origins))
        .layer(axum::middleware::from_fn_with_state(
            registry,
            crate::web::html_tenant_errors,
        )))
}

/// The CORS layer: preflights allow the methods of the API and the headers real clients send
/// (`Authorization`, `Content-Type`, `Cache-Control`, `Pragma`, `Expires`, `Last-Event-ID`);
/// every response — the notification stream included — carries `Access-Control-Allow-Origin`
/// for an allowed origin. Origins that are not valid header values are ignored.
pub fn cors_layer(origins: &CorsOrigins) -> CorsLayer {
    let allow_origin = match origins {
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => AllowOrigin::list(
            list.iter()
                .filter_map(|o| HeaderValue::from_str(o.trim().trim_end_matches('/')).ok()),
        ),
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::CACHE_CONTROL,
            header::PRAGMA,
            header::EXPIRES,
            HeaderName::from_static("last-event-id"),
        ])
        .max_age(Duration::from_secs(600))
}

/// A query parameter holding a NUL character (`%00`) is a 400 on that parameter: PostgreSQL
/// text cannot hold one, so a filter carrying it would fail in the database with a 500.
async fn refuse_null_characters(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(query) = request.uri().query().filter(|q| q.contains("%00")) {
        let pairs = leopard_http::pagination::query_pairs(Some(query));
        if let Some((key, _)) = pairs
            .iter()
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return ApiError::field(&key.replace('\0', ""), "Null characters are not allowed.")
                .into_response();
        }
    }
    next.run(request).await
}

/// A known path asked with a method it does not serve: a JSON 405.
async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Unknown routes: a JSON 404, or the 404 page for a browser asking for a page.
async fn not_found(request: axum::extract::Request) -> Response {
    if crate::web::wants_html(&request) {
        crate::web::not_found_page()
    } else {
        ApiError::NotFound("Not found.".into()).into_response()
    }
}

/// How long the health check waits for the database.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// Connections of the health check's own pool (opened on demand).
const HEALTH_CONNECTIONS: u32 = 4;

/// `GET /health/`: 200 when the database answers within 2 s, else 503 (with `Retry-After`).
/// It uses a connection of its own, not the request pool.
async fn health(State(state): State<AppState>) -> Response {
    let check = tokio::time::timeout(
        HEALTH_TIMEOUT,
        sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.health_pool),
    )
    .await;
    match check {
        Ok(Ok(_)) => Json(json!({"status": "healthy", "service": "leopard"})).into_response(),
        Ok(Err(err)) => unhealthy(&err.to_string()),
        Err(_) => unhealthy("database check timed out"),
    }
}

fn unhealthy(cause: &str) -> Response {
    tracing::warn!(cause, "health check failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(
            header::RETRY_AFTER,
            HeaderValue::from(leopard_http::UNAVAILABLE_RETRY_AFTER_SECS),
        )],
        Json(json!({"status": "unhealthy", "service": "leopard", "error": "database unavailable"})),
    )
        .into_response()
}

/// `GET /api/public/tenant-info/`: the host's tenant name and id.
async fn tenant_info(tenant: Tenant) -> Response {
    let info = tenant.tenant();
    let mut response =
        Json(json!({"tenant_name": info.name, "tenant_id": info.id})).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(header::EXPIRES, HeaderValue::from_static("0"));
    response
}
