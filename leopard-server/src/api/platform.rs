//! The platform API: platform (super-super) administrators, who live in the public schema and
//! belong to no tenant, manage tenants.
//!
//! Every route answers only on the base host — a `Host` that resolves to no tenant; on a tenant
//! host it is a 404. Platform tokens are signed with the platform keys (derived from the server
//! secret for another purpose) and carry an empty `tid`, so a tenant token is refused here and
//! a platform token is refused on every tenant route, by signature alone.
//!
//! - `POST /api/platform/token/` `{username, password}` → `{access, refresh}` (throttled like
//!   tenant logins, key `platform:<username>`).
//! - `POST /api/platform/token/refresh/` `{refresh}` → a new pair while the admin is active.
//! - `GET /api/platform/tenants/` (paginated), `POST` (provisions; optional first Super Admin
//!   under `admin`), `GET|PATCH|DELETE /api/platform/tenants/{slug}/` (`DELETE` deactivates;
//!   `?purge=true` drops the schema and answers 204).
//! - `POST /api/platform/tenants/{slug}/domains/` `{domain, is_primary?}` adds a domain (201
//!   with the tenant; a domain another tenant holds is a 400), `DELETE
//!   …/domains/{domain}/` removes one (200 with the tenant; a tenant keeps at least one).

use std::collections::BTreeMap;

use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::Json;
use http::request::Parts;
use http::{Extensions, Method};
use leopard_core::{HostName, TenantSlug};
use leopard_http::auth::{bearer_token, unix_now};
use leopard_http::jwt::{ClaimsInput, TokenPair, TokenType};
use leopard_http::pagination::query_pairs;
use leopard_http::{ApiError, JsonBody, Pagination};
use leopard_tenancy::{NewTenant, SubscriptionStatus, Tenant};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::{PgConnection, Row};

use crate::api::input::{
    client_address, credential, issue_recorded_pair, RefreshLedger, DUMMY_HASH,
};
use crate::api::{route, truthy, Access, ApiRoute};
use crate::app::AppState;
use crate::identity::{self, NewUser};

/// The group claim of platform tokens.
pub const PLATFORM_GROUP: &str = "PLATFORM_ADMIN";

/// The platform routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        route(
            "/api/platform/token/",
            Access::Platform,
            [(Method::POST, post(login))],
        ),
        route(
            "/api/platform/token/refresh/",
            Access::Platform,
            [(Method::POST, post(refresh))],
        ),
        route(
            "/api/platform/tenants/",
            Access::Platform,
            [
                (Method::GET, get(list_tenants)),
                (Method::POST, post(create_tenant)),
            ],
        ),
        route(
            "/api/platform/tenants/{slug}/",
            Access::Platform,
            [
                (Method::GET, get(get_tenant)),
                (Method::PATCH, patch(update_tenant)),
                (Method::DELETE, delete(delete_tenant)),
            ],
        )
        .statuses(Method::DELETE, &[200, 204]),
        route(
            "/api/platform/tenants/{slug}/domains/",
            Access::Platform,
            [(Method::POST, post(add_domain))],
        ),
        route(
            "/api/platform/tenants/{slug}/domains/{domain}/",
            Access::Platform,
            [(Method::DELETE, delete(remove_domain))],
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Extractors
// ---------------------------------------------------------------------------------------------

/// Proof that the request came to the base host (its `Host` resolves to no tenant); on a
/// tenant host the extraction fails with a 404.
#[derive(Debug, Clone, Copy)]
pub struct BaseHost;

impl FromRequestParts<AppState> for BaseHost {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| parts.uri.host());
        match host.and_then(|h| state.registry.resolve_host(h)) {
            Some(_) => Err(ApiError::NotFound("Not found.".into())),
            None => Ok(Self),
        }
    }
}

/// The authenticated platform administrator of a request on the base host.
///
/// No credentials → 401 `not_authenticated`; a token that is not a valid platform access
/// token, or whose admin is gone or inactive → 401 `token_not_valid`.
#[derive(Debug, Clone)]
pub struct PlatformAdmin {
    /// The admin's id.
    pub id: i64,
    /// The admin's username.
    pub username: String,
}

impl FromRequestParts<AppState> for PlatformAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        BaseHost::from_request_parts(parts, state).await?;
        let token = bearer_token(parts).ok_or(ApiError::NotAuthenticated)?;
        let claims = state
            .platform_keys
            .decode(token, TokenType::Access, unix_now())?;
        claims.require_tenant("")?;
        let id: i64 = claims.user_id.parse().map_err(|_| ApiError::Unauthorized)?;
        let mut conn = state.pool.acquire().await?;
        let admin = find_admin_by_id(&mut conn, id)
            .await?
            .filter(|a| a.is_active)
            .ok_or(ApiError::Unauthorized)?;
        Ok(Self {
            id: admin.id,
            username: admin.username,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Platform admins: data
// ---------------------------------------------------------------------------------------------

/// A platform administrator row.
#[derive(Debug, Clone)]
pub struct AdminRow {
    /// The admin's id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// E-mail address (may be empty).
    pub email: String,
    /// Stored password hash.
    pub password: String,
    /// Whether the admin may log in.
    pub is_active: bool,
}

fn admin_row(row: &sqlx::postgres::PgRow) -> AdminRow {
    AdminRow {
        id: row.get("id"),
        username: row.get("username"),
        email: row.get("email"),
        password: row.get("password"),
        is_active: row.get("is_active"),
    }
}

/// The admin whose username — or, failing that, e-mail address — is `login` (case-insensitive).
pub async fn find_admin(
    conn: &mut PgConnection,
    login: &str,
) -> Result<Option<AdminRow>, ApiError> {
    let row = sqlx::query(
        "SELECT id, username, email, password, is_active FROM public.leopard_platform_admins
          WHERE lower(username) = lower($1) OR (email <> '' AND lower(email) = lower($1))
          ORDER BY (lower(username) = lower($1)) DESC, id LIMIT 1",
    )
    .bind(login)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.as_ref().map(admin_row))
}

/// The admin `id` (active or not).
pub async fn find_admin_by_id(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<AdminRow>, ApiError> {
    let row = sqlx::query(
        "SELECT id, username, email, password, is_active FROM public.leopard_platform_admins
          WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.as_ref().map(admin_row))
}

/// Creates an active platform admin after checking the username, the e-mail address and the
/// password policy; the password is stored as an argon2id hash. Returns the new id.
pub async fn create_admin(
    conn: &mut PgConnection,
    username: &str,
    email: &str,
    password: &str,
) -> Result<i64, ApiError> {
    let username = username.trim();
    let email = email.trim().to_lowercase();
    let mut errors = BTreeMap::<String, Vec<String>>::new();
    if let Err(e) = identity::validate_username(username) {
        errors.entry("username".into()).or_default().push(e);
    }
    if !email.is_empty() {
        if let Err(e) = identity::validate_email(&email) {
            errors.entry("email".into()).or_default().push(e);
        }
    }
    if let Err(messages) = leopard_http::password::validate_policy(password, username, &email) {
        errors
            .entry("password".into())
            .or_default()
            .extend(messages);
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let hash = identity::hash_password(password.to_owned()).await?;
    sqlx::query_scalar(
        "INSERT INTO public.leopard_platform_admins (username, email, password)
         VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(username)
    .bind(&email)
    .bind(&hash)
    .fetch_one(&mut *conn)
    .await
    .map_err(
        |err| match err.as_database_error().and_then(|d| d.constraint()) {
            Some("leopard_platform_admins_username_ci") => ApiError::field(
                "username",
                "A platform admin with that username already exists.",
            ),
            _ => ApiError::from(err),
        },
    )
}

async fn record_login(
    conn: &mut PgConnection,
    id: i64,
    new_hash: Option<String>,
) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE public.leopard_platform_admins
            SET last_login = now(), password = coalesce($2, password)
          WHERE id = $1",
    )
    .bind(id)
    .bind(new_hash)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

async fn issue(
    state: &AppState,
    conn: &mut PgConnection,
    admin: &AdminRow,
) -> Result<TokenPair, ApiError> {
    let input = ClaimsInput {
        user_id: admin.id.to_string(),
        tid: String::new(),
        username: admin.username.clone(),
        email: admin.email.clone(),
        groups: vec![PLATFORM_GROUP.to_owned()],
    };
    issue_recorded_pair(
        &state.platform_keys,
        &input,
        (state.auth.access_ttl(), state.auth.refresh_ttl()),
        conn,
        RefreshLedger::Platform,
        admin.id,
    )
    .await
}

/// `POST /api/platform/token/`.
async fn login(
    State(state): State<AppState>,
    _base: BaseHost,
    extensions: Extensions,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<TokenPair>, ApiError> {
    let username = credential(&body, "username")?;
    let password = credential(&body, "password")?;
    let mut conn = state.pool.acquire().await?;
    let admin = check_platform_login(
        &state,
        &mut conn,
        &client_address(&extensions),
        &username,
        password,
    )
    .await?;
    Ok(Json(issue(&state, &mut conn, &admin).await?))
}

/// The platform login check shared by the API and the web interface: the per-user and
/// per-address throttles, the password verification (and its upgrade), the admin active.
/// Answers the admin, its login recorded.
pub(crate) async fn check_platform_login(
    state: &AppState,
    conn: &mut PgConnection,
    address_key: &str,
    username: &str,
    password: String,
) -> Result<AdminRow, ApiError> {
    let user_key = format!("platform:{}", username.trim().to_lowercase());
    let throttles = &state.throttles;
    if let Err(wait) = throttles
        .per_user
        .check(&user_key)
        .and(throttles.per_address.check(address_key))
    {
        return Err(ApiError::Throttled(wait));
    }
    let admin = find_admin(&mut *conn, username.trim()).await?;
    let stored = admin
        .as_ref()
        .map_or_else(|| DUMMY_HASH.to_owned(), |a| a.password.clone());
    let verification = identity::verify_password(password.clone(), stored).await?;
    let admin = match (admin, verification) {
        (Some(admin), leopard_http::Verification::Valid { needs_rehash }) if admin.is_active => {
            let new_hash = if needs_rehash {
                Some(identity::hash_password(password).await?)
            } else {
                None
            };
            record_login(&mut *conn, admin.id, new_hash).await?;
            admin
        }
        _ => {
            throttles.per_user.fail(&user_key);
            throttles.per_address.fail(address_key);
            tracing::info!("failed platform login");
            return Err(ApiError::InvalidCredentials);
        }
    };
    throttles.per_user.clear(&user_key);
    Ok(admin)
}

/// `POST /api/platform/token/refresh/`: a new pair for a valid platform refresh token whose
/// admin is still active.
async fn refresh(
    State(state): State<AppState>,
    _base: BaseHost,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<TokenPair>, ApiError> {
    let token = credential(&body, "refresh")?;
    let claims = state
        .platform_keys
        .decode(&token, TokenType::Refresh, unix_now())?;
    claims.require_tenant("")?;
    let id: i64 = claims.user_id.parse().map_err(|_| ApiError::Unauthorized)?;
    let mut tx = state.pool.begin().await?;
    let consumed: Option<i64> = sqlx::query_scalar(
        "UPDATE public.leopard_platform_refresh_tokens SET revoked_at = now()
          WHERE jti = $1 AND admin_id = $2 AND revoked_at IS NULL AND expires_at > now()
          RETURNING admin_id",
    )
    .bind(&claims.jti)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if consumed.is_none() {
        // A consumed token presented again: revoke the admin's other refresh tokens too.
        sqlx::query(
            "UPDATE public.leopard_platform_refresh_tokens SET revoked_at = now()
              WHERE admin_id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        return Err(ApiError::Unauthorized);
    }
    let admin = find_admin_by_id(&mut tx, id)
        .await?
        .filter(|a| a.is_active)
        .ok_or(ApiError::Unauthorized)?;
    let pair = issue(&state, &mut tx, &admin).await?;
    tx.commit().await?;
    Ok(Json(pair))
}

// ---------------------------------------------------------------------------------------------
// Tenants
// ---------------------------------------------------------------------------------------------

/// The first Super Admin of a new tenant.
#[derive(Debug, Clone, Deserialize)]
struct AdminInput {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
}

/// `POST /api/platform/tenants/` body.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CreateTenantInput {
    slug: Option<String>,
    name: Option<String>,
    max_users: Option<i32>,
    subscription_status: Option<String>,
    contact_email: Option<String>,
    contact_phone: Option<String>,
    #[serde(default)]
    domains: Vec<String>,
    admin: Option<AdminInput>,
}

/// `PATCH /api/platform/tenants/{slug}/` body.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct UpdateTenantInput {
    subscription_status: Option<String>,
    is_active: Option<bool>,
}

fn add_error(errors: &mut BTreeMap<String, Vec<String>>, field: &str, message: impl Into<String>) {
    errors
        .entry(field.to_owned())
        .or_default()
        .push(message.into());
}

/// Checks the whole create body, returning the tenant to provision and the admin to create;
/// every problem is reported at once, before anything is written.
fn validate_create(input: CreateTenantInput) -> Result<(NewTenant, Option<NewUser>), ApiError> {
    let mut errors = BTreeMap::<String, Vec<String>>::new();
    let slug = match input.slug.as_deref().map(str::trim) {
        None | Some("") => {
            add_error(&mut errors, "slug", "This field is required.");
            None
        }
        Some(raw) => match TenantSlug::parse(raw) {
            Ok(slug) => Some(slug),
            Err(e) => {
                add_error(&mut errors, "slug", e.to_string());
                None
            }
        },
    };
    let name = input.name.unwrap_or_default().trim().to_owned();
    if name.is_empty() {
        add_error(&mut errors, "name", "This field is required.");
    } else if name.chars().count() > 200 {
        add_error(
            &mut errors,
            "name",
            "Ensure this field has no more than 200 characters.",
        );
    }
    let status = match input.subscription_status.as_deref() {
        None => SubscriptionStatus::Trial,
        Some(raw) => SubscriptionStatus::parse(raw).unwrap_or_else(|_| {
            add_error(
                &mut errors,
                "subscription_status",
                format!("\"{raw}\" is not a valid choice: TRIAL, ACTIVE, SUSPENDED or CANCELLED."),
            );
            SubscriptionStatus::Trial
        }),
    };
    let max_users = input.max_users.unwrap_or(50);
    if max_users < 1 {
        add_error(
            &mut errors,
            "max_users",
            "Ensure this value is greater than or equal to 1.",
        );
    }
    let mut domains = Vec::new();
    for raw in &input.domains {
        match HostName::parse(raw) {
            Ok(d) => domains.push(d),
            Err(e) => add_error(&mut errors, "domains", e.to_string()),
        }
    }
    let contact_email = input
        .contact_email
        .map(|e| e.trim().to_lowercase())
        .filter(|e| !e.is_empty());
    if let Some(email) = &contact_email {
        if let Err(e) = identity::validate_email(email) {
            add_error(&mut errors, "contact_email", e);
        }
    }
    let admin = input.admin.map(|a| {
        let username = a.username.trim().to_owned();
        let email = a.email.trim().to_lowercase();
        if let Err(e) = identity::validate_username(&username) {
            add_error(&mut errors, "admin.username", e);
        }
        if !email.is_empty() {
            if let Err(e) = identity::validate_email(&email) {
                add_error(&mut errors, "admin.email", e);
            }
        }
        if let Err(messages) =
            leopard_http::password::validate_policy(&a.password, &username, &email)
        {
            for m in messages {
                add_error(&mut errors, "admin.password", m);
            }
        }
        NewUser {
            username,
            email,
            password: a.password,
            first_name: a.first_name,
            last_name: a.last_name,
            groups: vec![leopard_rbac::Role::SuperAdmin.group_name().to_owned()],
            branch_ids: Vec::new(),
            region_ids: Vec::new(),
            is_active: true,
        }
    });
    let Some(slug) = slug.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let mut new = NewTenant::new(slug, name);
    new.status = status;
    new.max_users = max_users;
    new.domains = domains;
    new.contact_email = contact_email;
    new.contact_phone = input
        .contact_phone
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty());
    Ok((new, admin))
}

/// Creates the first Super Admin of a freshly provisioned tenant in one tenant transaction.
async fn create_first_admin(
    state: &AppState,
    slug: &TenantSlug,
    admin: &NewUser,
    max_users: i32,
) -> Result<i64, ApiError> {
    state.registry.reload().await?;
    let context = state.registry.context_for(slug.as_str())?;
    let mut tx = context.begin().await?;
    let id = identity::create_user(&mut tx, admin, max_users)
        .await
        .map_err(|err| match err {
            ApiError::Validation(fields) => ApiError::Validation(
                fields
                    .into_iter()
                    .map(|(k, v)| (format!("admin.{k}"), v))
                    .collect(),
            ),
            other => other,
        })?;
    tx.commit().await?;
    Ok(id)
}

fn parse_slug(raw: &str) -> Result<TenantSlug, ApiError> {
    TenantSlug::parse(raw).map_err(|_| ApiError::TenantNotFound)
}

/// `GET /api/platform/tenants/`: every tenant by slug, paginated.
pub(crate) async fn list_tenants(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
    pagination: Pagination,
) -> Result<Response, ApiError> {
    Ok(Json(tenants_page(&state, &pagination).await?).into_response())
}

/// One page of every tenant by slug (the list of the API and of the platform pages).
pub(crate) async fn tenants_page(
    state: &AppState,
    pagination: &Pagination,
) -> Result<leopard_http::Page<Tenant>, ApiError> {
    let all = state.provisioner.list().await?;
    let count = i64::try_from(all.len()).unwrap_or(i64::MAX);
    let offset = usize::try_from(pagination.offset()).unwrap_or(usize::MAX);
    let limit = usize::try_from(pagination.limit()).unwrap_or(usize::MAX);
    let page: Vec<Tenant> = all.into_iter().skip(offset).take(limit).collect();
    pagination.page(page, count)
}

/// `POST /api/platform/tenants/`: provisions a tenant (schema, migrations, roles, domains) and,
/// with `admin`, its first Super Admin. Answers 201 with the tenant (and `admin: {id, username}`).
pub(crate) async fn create_tenant(
    State(state): State<AppState>,
    admin: PlatformAdmin,
    JsonBody(input): JsonBody<CreateTenantInput>,
) -> Result<Response, ApiError> {
    let (new, first_admin) = validate_create(input)?;
    let slug = new.slug.clone();
    let max_users = new.max_users;
    let provisioned = state.provisioner.create(new).await?;
    tracing::info!(slug = slug.as_str(), by = %admin.username, "platform admin created a tenant");
    let mut body =
        serde_json::to_value(&provisioned.tenant).map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Some(user) = first_admin {
        match create_first_admin(&state, &slug, &user, max_users).await {
            Ok(id) => body["admin"] = json!({"id": id, "username": user.username}),
            Err(err) => {
                // Creation is one step: without its admin, the tenant is not kept.
                state.provisioner.purge(&slug, slug.as_str()).await?;
                state.registry.reload().await?;
                return Err(err);
            }
        }
    } else {
        state.registry.reload().await?;
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /api/platform/tenants/{slug}/`.
pub(crate) async fn get_tenant(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
    Path(slug): Path<String>,
) -> Result<Json<Tenant>, ApiError> {
    Ok(Json(state.provisioner.get(&parse_slug(&slug)?).await?))
}

/// `PATCH /api/platform/tenants/{slug}/` `{subscription_status?, is_active?}`.
pub(crate) async fn update_tenant(
    State(state): State<AppState>,
    admin: PlatformAdmin,
    Path(slug): Path<String>,
    JsonBody(input): JsonBody<UpdateTenantInput>,
) -> Result<Json<Tenant>, ApiError> {
    let slug = parse_slug(&slug)?;
    let status = input
        .subscription_status
        .as_deref()
        .map(SubscriptionStatus::parse)
        .transpose()?;
    let mut tenant = state.provisioner.get(&slug).await?;
    if input.is_active == Some(true) {
        let target = status.unwrap_or(tenant.subscription_status);
        if !target.is_serving() {
            return Err(ApiError::field(
                "is_active",
                "A suspended or cancelled tenant is reactivated with subscription_status ACTIVE or TRIAL.",
            ));
        }
        tenant = state.provisioner.set_status(&slug, target).await?;
    } else if let Some(status) = status {
        tenant = state.provisioner.set_status(&slug, status).await?;
    }
    if input.is_active == Some(false) {
        tenant = state.provisioner.deactivate(&slug).await?;
    }
    state.registry.reload().await?;
    tracing::info!(slug = slug.as_str(), by = %admin.username, "platform admin changed a tenant");
    Ok(Json(tenant))
}

/// `DELETE /api/platform/tenants/{slug}/`: deactivates (200 with the tenant); with
/// `?purge=true` drops the schema and every row (204).
async fn delete_tenant(
    State(state): State<AppState>,
    admin: PlatformAdmin,
    Path(slug): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let slug = parse_slug(&slug)?;
    let purge = query_pairs(query.as_deref())
        .iter()
        .any(|(k, v)| k == "purge" && truthy(v));
    let response = if purge {
        state.provisioner.purge(&slug, slug.as_str()).await?;
        tracing::warn!(slug = slug.as_str(), by = %admin.username, "platform admin purged a tenant");
        StatusCode::NO_CONTENT.into_response()
    } else {
        let tenant = state.provisioner.deactivate(&slug).await?;
        tracing::info!(slug = slug.as_str(), by = %admin.username, "platform admin deactivated a tenant");
        Json(tenant).into_response()
    };
    state.registry.reload().await?;
    Ok(response)
}

/// `POST /api/platform/tenants/{slug}/domains/` body.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct DomainInput {
    domain: Option<String>,
    #[serde(default)]
    is_primary: bool,
}

/// `POST /api/platform/tenants/{slug}/domains/`: adds a domain (201 with the tenant).
pub(crate) async fn add_domain(
    State(state): State<AppState>,
    admin: PlatformAdmin,
    Path(slug): Path<String>,
    JsonBody(input): JsonBody<DomainInput>,
) -> Result<(StatusCode, Json<Tenant>), ApiError> {
    let slug = parse_slug(&slug)?;
    let raw = input.domain.unwrap_or_default();
    if raw.trim().is_empty() {
        return Err(ApiError::field("domain", "This field is required."));
    }
    let domain =
        HostName::parse(raw.trim()).map_err(|e| ApiError::field("domain", e.to_string()))?;
    state.provisioner.get(&slug).await?;
    state
        .provisioner
        .add_domain(&slug, &domain, input.is_primary)
        .await?;
    state.registry.reload().await?;
    tracing::info!(slug = slug.as_str(), domain = domain.as_str(), by = %admin.username, "platform admin added a domain");
    Ok((
        StatusCode::CREATED,
        Json(state.provisioner.get(&slug).await?),
    ))
}

/// `DELETE /api/platform/tenants/{slug}/domains/{domain}/`: removes a domain (200 with the
/// tenant); the tenant's last domain stays (400).
pub(crate) async fn remove_domain(
    State(state): State<AppState>,
    admin: PlatformAdmin,
    Path((slug, domain)): Path<(String, String)>,
) -> Result<Json<Tenant>, ApiError> {
    let slug = parse_slug(&slug)?;
    let tenant = state.provisioner.get(&slug).await?;
    let domain = HostName::parse(&domain)
        .ok()
        .filter(|d| tenant.domains.iter().any(|t| t == d.as_str()))
        .ok_or_else(|| ApiError::NotFound("Domain not found.".into()))?;
    if tenant.domains.len() <= 1 {
        return Err(ApiError::field(
            "domain",
            "A tenant keeps at least one domain.",
        ));
    }
    state.provisioner.remove_domain(&slug, &domain).await?;
    state.registry.reload().await?;
    tracing::info!(slug = slug.as_str(), domain = domain.as_str(), by = %admin.username, "platform admin removed a domain");
    Ok(Json(state.provisioner.get(&slug).await?))
}
