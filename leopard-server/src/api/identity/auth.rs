//! `POST /api/token/` and `POST /api/token/refresh/`.
//!
//! Login takes `{username, password}` (the username or the e-mail address) and answers
//! `{access, refresh}`. A Django PBKDF2 hash that verifies is replaced by an argon2id hash in the
//! same transaction. Failures count against the (tenant, username) and client-address throttles;
//! over the limit the answer is 429 with `Retry-After`.
//!
//! Refresh takes `{refresh}`, checks it is bound to this tenant, consumes its ledger row and
//! answers a new `{access, refresh}` pair; presenting an already-consumed refresh token revokes
//! every refresh token of that user (replay of a stolen token).

use axum::extract::State;
use axum::routing::post;
use axum::Json;
use http::{Extensions, Method};
use leopard_http::auth::unix_now;
use leopard_http::jwt::{ClaimsInput, TokenPair, TokenType};
use leopard_http::{ApiError, Authenticator, JsonBody, Tenant};
use leopard_tenancy::TenantContext;
use serde_json::Value;
use sqlx::PgConnection;

use crate::api::input::{
    client_address, credential, issue_recorded_pair, RefreshLedger, DUMMY_HASH,
};
use crate::api::{route, Access, ApiRoute};
use crate::app::AppState;
use crate::identity::{self, LoginUser};

/// The token routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        route(
            "/api/token/",
            Access::TenantPublic,
            [(Method::POST, post(login))],
        ),
        route(
            "/api/token/refresh/",
            Access::TenantPublic,
            [(Method::POST, post(refresh))],
        ),
    ]
}

/// `POST /api/token/`.
pub(crate) async fn login(
    State(state): State<AppState>,
    tenant: Tenant,
    extensions: Extensions,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<TokenPair>, ApiError> {
    let username = credential(&body, "username")?;
    let password = credential(&body, "password")?;
    let mut tx = tenant.begin().await?;
    let user = check_login(
        &state,
        &mut tx,
        &tenant,
        &client_address(&extensions),
        &username,
        password,
    )
    .await?;
    let pair = issue(&state.auth, &mut tx, &tenant, &user).await?;
    tx.commit().await?;
    Ok(Json(pair))
}

/// Checks a login in the tenant transaction `conn`: the (tenant, username) and client-address
/// throttles (429 over the limit), then the username or e-mail and the password of an active
/// user (one 401 for every failure, counted against both throttles). On success the stored
/// hash is upgraded when needed, `last_login` is set and the user's throttle is cleared. The
/// API's token login and the web interface's login form both sign in through here.
pub(crate) async fn check_login(
    state: &AppState,
    conn: &mut PgConnection,
    tenant: &TenantContext,
    address_key: &str,
    username: &str,
    password: String,
) -> Result<LoginUser, ApiError> {
    let user_key = format!(
        "{}:{}",
        tenant.tenant().slug,
        username.trim().to_lowercase()
    );
    let throttles = &state.throttles;
    if let Err(wait) = throttles
        .per_user
        .check(&user_key)
        .and(throttles.per_address.check(address_key))
    {
        return Err(ApiError::Throttled(wait));
    }
    let user = identity::find_login(&mut *conn, username.trim()).await?;
    let stored = user
        .as_ref()
        .map_or_else(|| DUMMY_HASH.to_owned(), |u| u.password.clone());
    let verification = identity::verify_password(password.clone(), stored).await?;
    let user = match (user, verification) {
        (Some(user), leopard_http::Verification::Valid { needs_rehash }) if user.is_active => {
            if needs_rehash {
                let hash = identity::hash_password(password).await?;
                sqlx::query("UPDATE users SET password = $2 WHERE id = $1")
                    .bind(user.id)
                    .bind(hash)
                    .execute(&mut *conn)
                    .await?;
            }
            user
        }
        _ => {
            throttles.per_user.fail(&user_key);
            throttles.per_address.fail(address_key);
            tracing::info!(tenant = %tenant.tenant().slug, "failed login");
            return Err(ApiError::InvalidCredentials);
        }
    };
    sqlx::query("UPDATE users SET last_login = now() WHERE id = $1")
        .bind(user.id)
        .execute(&mut *conn)
        .await?;
    throttles.per_user.clear(&user_key);
    Ok(user)
}

/// Issues a pair for `user` and records the refresh token in the ledger.
async fn issue(
    auth: &Authenticator,
    conn: &mut PgConnection,
    tenant: &TenantContext,
    user: &LoginUser,
) -> Result<TokenPair, ApiError> {
    let input = ClaimsInput {
        user_id: user.id.to_string(),
        tid: tenant.tenant().slug.to_string(),
        username: user.username.clone(),
        email: user.email.clone(),
        groups: user.groups.clone(),
    };
    issue_recorded_pair(
        auth.keys(),
        &input,
        (auth.access_ttl(), auth.refresh_ttl()),
        conn,
        RefreshLedger::Tenant,
        user.id,
    )
    .await
}

/// `POST /api/token/refresh/`.
pub(crate) async fn refresh(
    State(state): State<AppState>,
    tenant: Tenant,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<TokenPair>, ApiError> {
    let token = credential(&body, "refresh")?;
    let claims = state
        .auth
        .keys()
        .decode(&token, TokenType::Refresh, unix_now())?;
    claims.require_tenant(tenant.tenant().slug.as_str())?;
    let user_id: i64 = claims.user_id.parse().map_err(|_| ApiError::Unauthorized)?;
    let mut tx = tenant.begin().await?;
    let consumed: Option<i64> = sqlx::query_scalar(
        "UPDATE refresh_tokens SET revoked_at = now()
          WHERE jti = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > now()
          RETURNING user_id",
    )
    .bind(&claims.jti)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    if consumed.is_none() {
        // A valid signature on a consumed token: someone replays it. Revoke the whole family.
        let revoked = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = now()
              WHERE user_id = $1 AND revoked_at IS NULL
                AND EXISTS (SELECT 1 FROM refresh_tokens WHERE jti = $2 AND user_id = $1)",
        )
        .bind(user_id)
        .bind(&claims.jti)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if revoked.rows_affected() > 0 {
            tracing::warn!(tenant = %tenant.tenant().slug, user_id, "refresh token replayed; revoked the user's refresh tokens");
        }
        return Err(ApiError::Unauthorized);
    }
    let user = identity::find_login_by_id(&mut tx, user_id)
        .await?
        .filter(|u| u.is_active)
        .ok_or(ApiError::Unauthorized)?;
    let pair = issue(&state.auth, &mut tx, &tenant, &user).await?;
    tx.commit().await?;
    Ok(Json(pair))
}
