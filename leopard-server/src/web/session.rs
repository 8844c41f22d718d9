//! Web sessions: the signed-in browser, its cookie, its CSRF token, and the [`WebUser`] and
//! [`WebForm`] extractors every page handler takes.
//!
//! - The cookie `leopard_session` holds 32 random bytes (hex); the tenant's `web_sessions`
//!   table keeps only their SHA-256. The cookie is host-only (no `Domain`), `HttpOnly`,
//!   `SameSite=Lax`, `Path=/`, and `Secure` in production mode. Because the row lives in the
//!   tenant's own schema, a cookie of tenant A presented on tenant B's host finds no session
//!   there and is refused, like a token bound to another tenant.
//! - A session ends on logout (its row is deleted), after the idle timeout without a request,
//!   at its absolute expiry, or when its user is deactivated (the principal no longer loads).
//! - Every state-changing form carries `csrf`, the HMAC of the session's token hash under a key
//!   derived from the server secret: a missing or wrong one is a 403 and the handler never runs
//!   ([`WebForm`]). The login form, which has no session yet, uses a double-submit cookie.
//! - [`WebUser`] becomes the same [`AuthUser`] the API's handlers take, so a page calls the
//!   API's own operations with the same principal, scope and permission checks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{Hmac, Mac};
use leopard_core::UserId;
use leopard_http::jwt::{Claims, TokenType};
use leopard_http::{ApiError, AuthUser};
use leopard_tenancy::TenantContext;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use crate::app::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "leopard_session";
/// The login form's double-submit CSRF cookie.
pub const LOGIN_CSRF_COOKIE: &str = "leopard_login_csrf";

type HmacSha256 = Hmac<Sha256>;

/// How web sessions behave: lifetimes, cookie security and the CSRF key.
#[derive(Clone)]
pub struct WebConfig {
    /// A session unused this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after login, used or not.
    pub lifetime: Duration,
    /// Whether cookies carry `Secure` (production mode).
    pub secure_cookies: bool,
    csrf_key: [u8; 32],
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("idle_timeout", &self.idle_timeout)
            .field("lifetime", &self.lifetime)
            .field("secure_cookies", &self.secure_cookies)
            .finish_non_exhaustive()
    }
}

impl WebConfig {
    /// A configuration whose CSRF key is derived from the server `secret`.
    pub fn new(secret: &[u8], idle_timeout: Duration, lifetime: Duration, secure: bool) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"leopard web csrf\0");
        hasher.update(secret);
        Self {
            idle_timeout,
            lifetime,
            secure_cookies: secure,
            csrf_key: hasher.finalize().into(),
        }
    }

    /// The CSRF token of the session whose token hashes to `token_hash`.
    pub(crate) fn csrf_for(&self, token_hash: &[u8]) -> String {
        hex(&self.mac(token_hash).finalize().into_bytes())
    }

    fn mac(&self, token_hash: &[u8]) -> HmacSha256 {
        // An HMAC accepts keys of any length: this cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.csrf_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(token_hash);
        mac
    }

    /// Whether `token` is the CSRF token of the session hashing to `token_hash` (constant time).
    pub(crate) fn csrf_matches(&self, token_hash: &[u8], token: &str) -> bool {
        unhex(token).is_some_and(|bytes| self.mac(token_hash).verify_slice(&bytes).is_ok())
    }

    /// A `Set-Cookie` value for `name` with `value`, living `max_age` (0 removes it).
    pub fn cookie(&self, name: &str, value: &str, max_age: Duration) -> HeaderValue {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        let value = format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
            max_age.as_secs()
        );
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || text.len() > 128 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// 32 random bytes, hex.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

pub(crate) fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie_value<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Creates a session for `user` in the tenant transaction `conn`; answers the cookie's token.
pub(crate) async fn create_session(
    conn: &mut PgConnection,
    config: &WebConfig,
    user: i64,
) -> Result<String, ApiError> {
    let token = random_token();
    sqlx::query(
        "INSERT INTO web_sessions (token_hash, user_id, expires_at)
         VALUES ($1, $2, now() + make_interval(secs => $3))",
    )
    .bind(token_hash(&token))
    .bind(user)
    .bind(config.lifetime.as_secs_f64())
    .execute(&mut *conn)
    .await?;
    // Sessions that ended long ago go with the next login of anyone.
    sqlx::query("DELETE FROM web_sessions WHERE expires_at < now() - interval '1 day'")
        .execute(&mut *conn)
        .await?;
    Ok(token)
}

/// How often a session's idle clock is written: at most once a second, or a hundredth of the
/// idle timeout when that is shorter. A burst of requests of one session (a page and its
/// fragments, several tabs) then reads the row instead of queueing on its lock and writing it
/// every time; a session may end up to this much before a full idle timeout without requests.
fn touch_interval(idle: Duration) -> Duration {
    (idle / 100).min(Duration::from_secs(1))
}

/// The user of a live session, touched (its idle clock restarts, unless it did within
/// [`touch_interval`]): id, username, e-mail and display name. One statement.
async fn touch_session(
    conn: &mut PgConnection,
    hash: &[u8],
    idle: Duration,
) -> Result<Option<(i64, String, String, String)>, ApiError> {
    Ok(sqlx::query_as(
        "WITH live AS (
             SELECT s.token_hash, u.id, u.username, u.email,
                    coalesce(nullif(trim(u.first_name || ' ' || u.last_name), ''), u.username)
                        AS display_name
               FROM web_sessions s JOIN users u ON u.id = s.user_id AND u.is_active
              WHERE s.token_hash = $1
                AND s.expires_at > now()
                AND s.last_seen_at > now() - make_interval(secs => $2)
         ), touched AS (
             UPDATE web_sessions s SET last_seen_at = now()
               FROM live
              WHERE s.token_hash = live.token_hash
                AND s.last_seen_at <= now() - make_interval(secs => $3)
         )
         SELECT id, username, email, display_name FROM live",
    )
    .bind(hash)
    .bind(idle.as_secs_f64())
    .bind(touch_interval(idle).as_secs_f64())
    .fetch_optional(&mut *conn)
    .await?)
}

/// The signed-in user of a page request.
#[derive(Debug, Clone)]
pub struct WebUser {
    /// The same authenticated user the API's handlers take.
    pub auth: AuthUser,
    /// The username.
    pub username: String,
    /// "First Last", or the username.
    pub display_name: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    /// Unread notifications at the time of the request (the top bar's bell).
    pub unread: i64,
    token_hash: Vec<u8>,
}

impl WebUser {
    /// Whether `sent` is this session's CSRF token (for a form whose body must not be read
    /// before the check: the multipart upload carries it in its query string).
    pub(crate) fn csrf_valid(&self, config: &WebConfig, sent: &str) -> bool {
        config.csrf_matches(&self.token_hash, sent)
    }

    /// The tenant's display name.
    pub fn tenant_name(&self) -> &str {
        &self.auth.tenant.tenant().name
    }
}

/// Why a page request has no user.
#[derive(Debug)]
pub enum NoSession {
    /// Not signed in (or the session ended): go to the login page, then come back.
    Login(String),
    /// Something else went wrong (the tenant is missing, the database is down).
    Error(ApiError),
}

impl IntoResponse for NoSession {
    fn into_response(self) -> Response {
        match self {
            Self::Login(next) => {
                let target = if next == "/" || !next.starts_with('/') || next.starts_with("//") {
                    "/login/".to_owned()
                } else {
                    format!(
                        "/login/?next={}",
                        url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                    )
                };
                Redirect::to(&target).into_response()
            }
            Self::Error(err) => super::error_page(&err, None),
        }
    }
}

impl From<ApiError> for NoSession {
    fn from(err: ApiError) -> Self {
        Self::Error(err)
    }
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = NoSession;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let tenant = parts
            .extensions
            .get::<TenantContext>()
            .cloned()
            .ok_or(ApiError::TenantNotFound)?;
        let next = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let Some(token) = cookie_value(parts, SESSION_COOKIE).filter(|t| t.len() == 64) else {
            return Err(NoSession::Login(next));
        };
        let hash = token_hash(token);
        let mut tx = tenant.begin().await.map_err(ApiError::from)?;
        let Some((user_id, username, email, display_name)) =
            touch_session(&mut tx, &hash, state.web.idle_timeout).await?
        else {
            return Err(NoSession::Login(next));
        };
        // The principal as the API's token path finds it: cached, or loaded in this transaction.
        let Some(principal) = state
            .auth
            .principal(&mut tx, tenant.tenant(), user_id)
            .await?
        else {
            return Err(NoSession::Login(next));
        };
        let unread = crate::api::crm::notifications::count_unread(&mut tx, user_id).await?;
        tx.commit().await.map_err(ApiError::from)?;
        let now = leopard_http::auth::unix_now();
        let claims = Claims {
            token_type: TokenType::Access,
            exp: now + i64::try_from(state.web.idle_timeout.as_secs()).unwrap_or(i64::MAX),
            iat: now,
            jti: String::new(),
            user_id: user_id.to_string(),
            tid: tenant.tenant().slug.to_string(),
            username: username.clone(),
            email,
            groups: principal.groups().to_vec(),
        };
        Ok(Self {
            auth: AuthUser {
                user_id: UserId(user_id),
                claims,
                principal,
                tenant,
                principals: Arc::clone(state.auth.principals()),
            },
            username,
            display_name,
            csrf: state.web.csrf_for(&hash),
            unread,
            token_hash: hash,
        })
    }
}

/// A submitted form of a signed-in user whose CSRF token checked out: the user and the fields
/// (the last value of each name; `values` keeps repeated ones).
#[derive(Debug)]
pub struct WebForm {
    /// Who submitted it.
    pub user: WebUser,
    /// The fields, the last value of each name.
    pub fields: HashMap<String, String>,
    /// Every `(name, value)` pair in order (for repeated names).
    pub pairs: Vec<(String, String)>,
}

impl WebForm {
    /// The trimmed value of field `name`, if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }
}

/// Reads an `application/x-www-form-urlencoded` body into its pairs: one larger than the
/// server's `--max-body-bytes` (the request's [`leopard_http::BodyLimits`]) is a 413, one not
/// received within the body deadline a 408.
pub(crate) async fn read_form(
    parts: &http::request::Parts,
    body: Body,
) -> Result<Vec<(String, String)>, ApiError> {
    let limits = parts.extensions.get::<leopard_http::BodyLimits>().copied();
    let max = limits.unwrap_or_default().max_body_bytes;
    let bytes = axum::body::to_bytes(body, max).await.map_err(|err| {
        leopard_http::limits::body_api_error(&err, limits.as_ref(), || {
            ApiError::BadRequest("The form could not be read.".into())
        })
    })?;
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&bytes).into_owned().collect();
    if pairs
        .iter()
        .any(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return Err(ApiError::BadRequest(
            "Null characters are not allowed.".into(),
        ));
    }
    Ok(pairs)
}

/// A refused form: 403, nothing changed.
pub(crate) fn csrf_refused() -> Response {
    super::error_page(
        &ApiError::Forbidden(
            "The form has expired or was not sent by this site. Reload the page and try again."
                .into(),
        ),
        None,
    )
}

impl FromRequest<AppState> for WebForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let user = WebUser::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let pairs = read_form(&parts, body)
            .await
            .map_err(|e| super::error_page(&e, Some(&user)))?;
        let fields: HashMap<String, String> = pairs.iter().cloned().collect();
        let sent = fields.get("csrf").map_or("", String::as_str);
        if !state.web.csrf_matches(&user.token_hash, sent) {
            tracing::info!(tenant = %user.auth.tenant.tenant().slug, "form refused: bad CSRF token");
            return Err(csrf_refused());
        }
        Ok(Self {
            user,
            fields,
            pairs,
        })
    }
}

/// Ends `user`'s session (logout) and answers the cookie that clears it.
pub(crate) async fn end_session(
    user: &WebUser,
    config: &WebConfig,
) -> Result<HeaderValue, ApiError> {
    let mut tx = user.auth.tenant.begin().await?;
    sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1")
        .bind(&user.token_hash)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(config.cookie(SESSION_COOKIE, "", Duration::ZERO))
}

/// A `303 See Other` to `location` (after a successful form post).
pub(crate) fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            HeaderValue::from_str(location).unwrap_or_else(|_| HeaderValue::from_static("/")),
        )],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idle_clock_is_written_at_most_once_a_second_or_every_hundredth_of_the_timeout() {
        assert_eq!(
            touch_interval(Duration::from_secs(1800)),
            Duration::from_secs(1)
        );
        assert_eq!(
            touch_interval(Duration::from_secs(1)),
            Duration::from_millis(10)
        );
        assert_eq!(touch_interval(Duration::ZERO), Duration::ZERO);
    }
}
