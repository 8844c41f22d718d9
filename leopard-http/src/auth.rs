//! Request authentication: the [`AuthUser`] extractor and the [`Authenticator`] behind it.
//!
//! A request is authenticated by `Authorization: Bearer <access token>`. The token must be
//! well-formed, HS256-signed with the tenant key, unexpired, of type `access`, and bound (`tid`)
//! to the tenant the request was routed to; only then is the user loaded — active users only —
//! through the application's [`PrincipalSource`], or taken from the [`PrincipalCache`] when the
//! cache is live (no database round trip). Every failure is the same generic 401, which names
//! no tenant (spec §2, defects 2 and 5).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{FromRef, FromRequestParts};
use futures::future::BoxFuture;
use http::request::Parts;
use leopard_core::UserId;
use leopard_rbac::Principal;
use leopard_tenancy::{TenantContext, TenantInfo};
use sqlx::PgConnection;

use crate::jwt::{Claims, JwtKeys, TokenType};
use crate::principals::PrincipalCache;
use crate::ApiError;

/// Loads the principal of an active user from the tenant's schema.
pub trait PrincipalSource: Send + Sync + 'static {
    /// The active user `user_id`'s principal, or `None` when there is no such active user.
    fn load<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        user_id: i64,
    ) -> BoxFuture<'a, Result<Option<Principal>, ApiError>>;
}

/// Token keys, lifetimes and the principal source: what [`AuthUser`] needs from the state.
pub struct Authenticator {
    keys: JwtKeys,
    access_ttl: Duration,
    refresh_ttl: Duration,
    source: Arc<dyn PrincipalSource>,
    cache: Arc<PrincipalCache>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// An authenticator signing with `keys`, issuing tokens with the given lifetimes and loading
    /// users from `source`.
    pub fn new(
        keys: JwtKeys,
        access_ttl: Duration,
        refresh_ttl: Duration,
        source: Arc<dyn PrincipalSource>,
    ) -> Self {
        Self {
            keys,
            access_ttl,
            refresh_ttl,
            source,
            cache: Arc::new(PrincipalCache::default()),
        }
    }

    /// Uses `cache` as the principal cache (shared with the invalidation listener).
    pub fn with_principal_cache(mut self, cache: Arc<PrincipalCache>) -> Self {
        self.cache = cache;
        self
    }

    /// The principal cache (bypassed until its invalidation listener makes it live).
    pub fn principals(&self) -> &Arc<PrincipalCache> {
        &self.cache
    }

    /// The signing keys.
    pub fn keys(&self) -> &JwtKeys {
        &self.keys
    }

    /// Lifetime of access tokens.
    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// Lifetime of refresh tokens.
    pub fn refresh_ttl(&self) -> Duration {
        self.refresh_ttl
    }

    /// Checks an access token for `tenant`: signature, expiry, type and tenant binding.
    pub fn verify_access(&self, token: &str, tenant: &TenantContext) -> Result<Claims, ApiError> {
        let claims = self.keys.decode(token, TokenType::Access, unix_now())?;
        claims.require_tenant(tenant.tenant().slug.as_str())?;
        Ok(claims)
    }

    /// Verifies `token` for `tenant` and loads its active user's principal.
    pub async fn authenticate(
        &self,
        token: &str,
        tenant: &TenantContext,
    ) -> Result<AuthUser, ApiError> {
        let claims = self.verify_access(token, tenant)?;
        let user_id: i64 = claims.user_id.parse().map_err(|_| ApiError::Unauthorized)?;
        let principal = match self.cache.get(tenant.tenant(), user_id) {
            Some(principal) => principal,
            None => {
                let mut tx = tenant.begin().await?;
                let principal = self
                    .load_principal(&mut tx, tenant.tenant(), user_id)
                    .await?
                    .ok_or(ApiError::Unauthorized)?;
                tx.commit().await?;
                principal
            }
        };
        Ok(AuthUser {
            user_id: UserId(user_id),
            claims,
            principal,
            tenant: tenant.clone(),
            principals: Arc::clone(&self.cache),
        })
    }
}

impl Authenticator {
    /// The principal of the active user `user_id` of `tenant`, as [`Authenticator::authenticate`]
    /// finds it: from the cache when it is live and holds a fresh entry (no database round
    /// trip), else loaded through the source on `conn` (a transaction of that tenant) and
    /// stored. `None` when there is no such active user.
    pub async fn principal(
        &self,
        conn: &mut PgConnection,
        tenant: &TenantInfo,
        user_id: i64,
    ) -> Result<Option<Arc<Principal>>, ApiError> {
        match self.cache.get(tenant, user_id) {
            Some(principal) => Ok(Some(principal)),
            None => self.load_principal(conn, tenant, user_id).await,
        }
    }

    /// Loads the principal through the source and stores it, unless an invalidation raced
    /// with the load (the generation is read first).
    async fn load_principal(
        &self,
        conn: &mut PgConnection,
        tenant: &TenantInfo,
        user_id: i64,
    ) -> Result<Option<Arc<Principal>>, ApiError> {
        let generation = self.cache.generation();
        let Some(principal) = self.source.load(conn, user_id).await? else {
            return Ok(None);
        };
        let principal = Arc::new(principal);
        self.cache
            .store(tenant, user_id, Arc::clone(&principal), generation);
        Ok(Some(principal))
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The bearer token of `parts`, if an `Authorization: Bearer …` header is present.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// The authenticated user of a tenant request: claims, principal and tenant context.
///
/// Needs `Arc<Authenticator>: FromRef<S>` and the tenancy layer in front. No credentials →
/// 401 `not_authenticated`; bad, foreign or expired credentials → 401 `token_not_valid`.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// The user's id.
    pub user_id: UserId,
    /// The verified claims of the access token.
    pub claims: Claims,
    /// The user as the policy engine sees it, loaded for this request.
    pub principal: Arc<Principal>,
    /// The request's tenant.
    pub tenant: TenantContext,
    /// The principal cache of the process, for [`AuthUser::principals_changed`].
    pub principals: Arc<PrincipalCache>,
}

impl AuthUser {
    /// Drops the cached principals of this request's tenant: a handler calls it right after
    /// committing a change that can alter a principal (users' activity, groups, permissions,
    /// branches, regions), so this instance's very next request sees the change. Other
    /// instances learn it from the database's notice.
    pub fn principals_changed(&self) {
        self.principals
            .invalidate_schema(self.tenant.tenant().schema.as_str());
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    Arc<Authenticator>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let tenant = parts
            .extensions
            .get::<TenantContext>()
            .cloned()
            .ok_or(ApiError::TenantNotFound)?;
        let token = bearer_token(parts).ok_or(ApiError::NotAuthenticated)?;
        let auth = Arc::<Authenticator>::from_ref(state);
        auth.authenticate(token, &tenant).await
    }
}
