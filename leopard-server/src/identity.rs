//! Identity data shared by login, the user API, the CLI and the demo: creating users, finding a
//! login, and loading a user's [`Principal`]. Every function takes a tenant connection (a
//! [`leopard_tenancy::TenantTx`] dereferences to one).

use futures::future::BoxFuture;
use leopard_core::UserId;
use leopard_http::{ApiError, PrincipalSource};
use leopard_rbac::{Permission, PermissionSet, Principal};
use sqlx::{PgConnection, Row};

/// A user to create.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// Login name (3–150 characters: letters, digits and `@ . + - _`).
    pub username: String,
    /// E-mail address (may be empty).
    pub email: String,
    /// The password in clear; checked against the policy and hashed here.
    pub password: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Group (role) names; each must exist.
    pub groups: Vec<String>,
    /// Assigned branches; each must exist and be live.
    pub branch_ids: Vec<i64>,
    /// Assigned regions; each must exist.
    pub region_ids: Vec<i64>,
    /// Whether the user may log in.
    pub is_active: bool,
}

/// Checks a username exactly like the original's (Django's `UnicodeUsernameValidator` on a
/// `max_length=150` field): 1–150 characters, each a letter, a digit or one of `@ . + - _`, so
/// accounts imported from it keep working.
pub fn validate_username(username: &str) -> Result<(), String> {
    let len = username.chars().count();
    if len == 0 {
        return Err("This field may not be blank.".into());
    }
    if len > 150 {
        return Err("Ensure this field has no more than 150 characters.".into());
    }
    if !username
        .chars()
        .all(|c| c.is_alphanumeric() || "@.+-_".contains(c))
    {
        return Err(
            "Enter a valid username. This value may contain only letters, numbers, \
                    and @/./+/-/_ characters."
                .into(),
        );
    }
    Ok(())
}

/// Checks an e-mail address's shape (one `@`, a dotted domain, no spaces, ≤ 254 characters).
pub fn validate_email(email: &str) -> Result<(), String> {
    let ok = email.len() <= 254
        && !email.contains(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if ok {
        Ok(())
    } else {
        Err("Enter a valid email address.".into())
    }
}

/// Hashes `password` off the async runtime, on the fixed pool of password threads (argon2id
/// costs tens of milliseconds of CPU and 7 MiB of memory, freed after the hash).
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    leopard_http::password::hash_async(password)
        .await
        .map_err(ApiError::from)
}

/// Verifies `password` against `stored` on the password threads.
pub async fn verify_password(
    password: String,
    stored: String,
) -> Result<leopard_http::Verification, ApiError> {
    leopard_http::password::verify_async(password, stored)
        .await
        .map_err(ApiError::from)
}

/// Maps a unique violation on the users table to a field error; other errors pass through.
pub fn user_conflict(err: sqlx::Error) -> ApiError {
    if let Some(db) = err.as_database_error() {
        match db.constraint() {
            Some("users_username_ci") => {
                return ApiError::field("username", "A user with that username already exists.")
            }
            Some("users_email_ci") => {
                return ApiError::field("email", "A user with this email already exists.")
            }
            _ => {}
        }
    }
    ApiError::from(err)
}

/// Fails unless the tenant has room for one more active user (`max_users`).
pub async fn ensure_capacity(conn: &mut PgConnection, max_users: i32) -> Result<(), ApiError> {
    // Serialise concurrent creations in this tenant so two cannot both take the last seat.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':users'))")
        .execute(&mut *conn)
        .await?;
    let active: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE is_active")
        .fetch_one(&mut *conn)
        .await?;
    if active >= i64::from(max_users) {
        return Err(ApiError::Forbidden(format!(
            "This tenant has reached its limit of {max_users} active users."
        )));
    }
    Ok(())
}

/// Fails with a field error unless every id in `ids` names a live row of `table`.
pub async fn ensure_exist(
    conn: &mut PgConnection,
    table: &'static str,
    field: &str,
    ids: &[i64],
) -> Result<(), ApiError> {
    if ids.is_empty() {
        return Ok(());
    }
    let live = if table == "branches" {
        " AND deleted_at IS NULL"
    } else {
        ""
    };
    let found: i64 = sqlx::query_scalar(&format!(
        "SELECT count(DISTINCT id) FROM {table} WHERE id = ANY($1){live}"
    ))
    .bind(ids)
    .fetch_one(&mut *conn)
    .await?;
    let distinct = ids.iter().collect::<std::collections::BTreeSet<_>>().len();
    if usize::try_from(found).unwrap_or(0) != distinct {
        let what = if table == "branches" {
            "branch"
        } else {
            "region"
        };
        return Err(ApiError::field(
            field,
            format!("One or more {what} IDs are invalid."),
        ));
    }
    Ok(())
}

/// Group ids by name; every name must exist.
pub async fn group_ids(conn: &mut PgConnection, names: &[String]) -> Result<Vec<i64>, ApiError> {
    let rows = sqlx::query("SELECT id, name FROM groups WHERE name = ANY($1)")
        .bind(names)
        .fetch_all(&mut *conn)
        .await?;
    if let Some(missing) = names
        .iter()
        .find(|n| !rows.iter().any(|r| r.get::<String, _>("name") == **n))
    {
        return Err(ApiError::field(
            "group_name",
            format!("Group {missing:?} does not exist."),
        ));
    }
    Ok(rows.iter().map(|r| r.get("id")).collect())
}

/// Creates a user with its groups and assignments; checks the username, e-mail, password
/// policy, the referenced rows and `max_users`. Returns the new id.
pub async fn create_user(
    conn: &mut PgConnection,
    new: &NewUser,
    max_users: i32,
) -> Result<i64, ApiError> {
    let mut errors = std::collections::BTreeMap::<String, Vec<String>>::new();
    if let Err(e) = validate_username(new.username.trim()) {
        errors.entry("username".into()).or_default().push(e);
    }
    if !new.email.is_empty() {
        if let Err(e) = validate_email(&new.email) {
            errors.entry("email".into()).or_default().push(e);
        }
    }
    if let Err(messages) =
        leopard_http::password::validate_policy(&new.password, &new.username, &new.email)
    {
        errors
            .entry("password".into())
            .or_default()
            .extend(messages);
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    if new.is_active {
        ensure_capacity(conn, max_users).await?;
    }
    let groups = group_ids(conn, &new.groups).await?;
    ensure_exist(conn, "branches", "branch_ids", &new.branch_ids).await?;
    ensure_exist(conn, "regions", "region_ids", &new.region_ids).await?;
    let hash = hash_password(new.password.clone()).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (password, username, first_name, last_name, email, is_active)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(&hash)
    .bind(new.username.trim())
    .bind(new.first_name.trim())
    .bind(new.last_name.trim())
    .bind(new.email.trim().to_lowercase())
    .bind(new.is_active)
    .fetch_one(&mut *conn)
    .await
    .map_err(user_conflict)?;
    set_memberships(
        conn,
        id,
        Some(&groups),
        Some(&new.branch_ids),
        Some(&new.region_ids),
    )
    .await?;
    Ok(id)
}

/// Replaces a user's groups, branches and regions (each only when `Some`).
pub async fn set_memberships(
    conn: &mut PgConnection,
    user_id: i64,
    group_ids: Option<&[i64]>,
    branch_ids: Option<&[i64]>,
    region_ids: Option<&[i64]>,
) -> Result<(), ApiError> {
    for (table, column, ids) in [
        ("user_groups", "group_id", group_ids),
        ("user_branches", "branch_id", branch_ids),
        ("user_regions", "region_id", region_ids),
    ] {
        let Some(ids) = ids else { continue };
        sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
        sqlx::query(&format!(
            "INSERT INTO {table} (user_id, {column})
             SELECT $1, x FROM unnest($2::bigint[]) AS x ON CONFLICT DO NOTHING"
        ))
        .bind(user_id)
        .bind(ids)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// What login needs of a user.
#[derive(Debug, Clone)]
pub struct LoginUser {
    /// The user's id.
    pub id: i64,
    /// Stored password hash.
    pub password: String,
    /// Whether the user may log in.
    pub is_active: bool,
    /// Login name.
    pub username: String,
    /// E-mail address.
    pub email: String,
    /// Group names.
    pub groups: Vec<String>,
}

const LOGIN_COLUMNS: &str = "u.id, u.password, u.is_active, u.username, u.email,
    ARRAY(SELECT g.name::text FROM user_groups ug JOIN groups g ON g.id = ug.group_id
           WHERE ug.user_id = u.id ORDER BY g.id) AS groups";

fn login_user(row: &sqlx::postgres::PgRow) -> LoginUser {
    LoginUser {
        id: row.get("id"),
        password: row.get("password"),
        is_active: row.get("is_active"),
        username: row.get("username"),
        email: row.get("email"),
        groups: row.get("groups"),
    }
}

/// The user whose username — or, failing that, e-mail address — is `login` (case-insensitive).
pub async fn find_login(
    conn: &mut PgConnection,
    login: &str,
) -> Result<Option<LoginUser>, ApiError> {
    let row = sqlx::query(&format!(
        "SELECT {LOGIN_COLUMNS} FROM users u
          WHERE lower(u.username) = lower($1) OR (u.email <> '' AND lower(u.email) = lower($1))
          ORDER BY (lower(u.username) = lower($1)) DESC LIMIT 1"
    ))
    .bind(login)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.as_ref().map(login_user))
}

/// The user `id` (active or not).
pub async fn find_login_by_id(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<LoginUser>, ApiError> {
    let row = sqlx::query(&format!(
        "SELECT {LOGIN_COLUMNS} FROM users u WHERE u.id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.as_ref().map(login_user))
}

/// Turns database permission ids into a catalogue set (ids outside the catalogue are ignored).
pub fn permission_set(ids: &[i32]) -> PermissionSet {
    ids.iter()
        .filter_map(|id| u16::try_from(id - 1).ok().and_then(Permission::from_id))
        .collect()
}

/// The active user `user_id`'s principal: groups with their permissions, direct permissions,
/// live branches, regions, the live branches inside them and the regions of its live branches —
/// one query.
pub async fn load_principal(
    conn: &mut PgConnection,
    user_id: i64,
) -> Result<Option<Principal>, ApiError> {
    let row = sqlx::query(
        "SELECT
           COALESCE((SELECT json_agg(json_build_array(g.name,
                       ARRAY(SELECT gp.permission_id FROM group_permissions gp
                              WHERE gp.group_id = g.id)) ORDER BY g.id)
                       FROM user_groups ug JOIN groups g ON g.id = ug.group_id
                      WHERE ug.user_id = u.id), '[]'::json) AS groups,
           ARRAY(SELECT permission_id FROM user_permissions WHERE user_id = u.id) AS direct,
           ARRAY(SELECT ub.branch_id FROM user_branches ub
                   JOIN branches b ON b.id = ub.branch_id AND b.deleted_at IS NULL
                  WHERE ub.user_id = u.id) AS branch_ids,
           ARRAY(SELECT region_id FROM user_regions WHERE user_id = u.id) AS region_ids,
           ARRAY(SELECT b.id FROM user_regions ur
                   JOIN branches b ON b.region_id = ur.region_id AND b.deleted_at IS NULL
                  WHERE ur.user_id = u.id) AS region_branch_ids,
           ARRAY(SELECT DISTINCT b.region_id FROM user_branches ub
                   JOIN branches b ON b.id = ub.branch_id AND b.deleted_at IS NULL
                  WHERE ub.user_id = u.id AND b.region_id IS NOT NULL) AS branch_region_ids
         FROM users u WHERE u.id = $1 AND u.is_active",
    )
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let groups: serde_json::Value = row.get("groups");
    let groups: Vec<(String, Vec<i32>)> =
        serde_json::from_value(groups).map_err(|e| ApiError::Internal(e.to_string()))?;
    let direct: Vec<i32> = row.get("direct");
    Ok(Some(
        Principal::new(
            UserId(user_id),
            groups
                .into_iter()
                .map(|(name, ids)| (name, permission_set(&ids))),
            permission_set(&direct),
            row.get::<Vec<i64>, _>("branch_ids"),
            row.get::<Vec<i64>, _>("region_ids"),
            row.get::<Vec<i64>, _>("region_branch_ids"),
        )
        .with_branch_regions(row.get::<Vec<i64>, _>("branch_region_ids")),
    ))
}

/// The [`PrincipalSource`] over the identity tables.
#[derive(Debug, Clone, Copy, Default)]
pub struct PgPrincipals;

impl PrincipalSource for PgPrincipals {
    fn load<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        user_id: i64,
    ) -> BoxFuture<'a, Result<Option<Principal>, ApiError>> {
        Box::pin(load_principal(conn, user_id))
    }
}
