//! Reading request input: JSON bodies field by field (with every error collected into one 400),
//! merge-patch fields, query parameters, detail-path ids, credentials, and the SQL helpers that
//! go with them (`ILIKE` patterns, unique-violation mapping, RFC 3339 timestamps).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use http::Extensions;
use leopard_http::auth::unix_now;
use leopard_http::jwt::{ClaimsInput, JwtKeys, TokenPair, TokenType};
use leopard_http::pagination::query_pairs;
use leopard_http::ApiError;
use serde_json::{Map, Value};
use sqlx::PgConnection;

/// A timestamp column rendered as RFC 3339 in UTC with microseconds, like the original.
macro_rules! rfc3339 {
    ($col:literal) => {
        concat!(
            "to_char(",
            $col,
            " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        )
    };
}
pub(crate) use rfc3339;

/// Field errors collected while reading a body, answered together as one 400.
#[derive(Debug, Default)]
pub(crate) struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    /// Records `message` against `field`.
    pub(crate) fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }

    /// `Ok` when nothing was recorded, else the 400.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}

/// One field of a merge-patch body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Patch<T> {
    /// Not in the body: unchanged.
    Absent,
    /// Explicitly `null`: cleared (for a nullable field).
    Null,
    /// A new value.
    Set(T),
}

/// The body as a JSON object, or a 400.
pub(crate) fn object(body: Value) -> Result<Map<String, Value>, ApiError> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::BadRequest("Expected a JSON object.".into())),
    }
}

/// Reads string `field` (trimmed) of at most `max` characters. A wrong type or an over-long value
/// is recorded in `errors` and read as [`Patch::Absent`].
pub(crate) fn text(
    body: &Map<String, Value>,
    field: &str,
    max: usize,
    errors: &mut FieldErrors,
) -> Patch<String> {
    match body.get(field) {
        None => Patch::Absent,
        Some(Value::Null) => Patch::Null,
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.chars().count() > max {
                errors.add(
                    field,
                    format!("Ensure this field has no more than {max} characters."),
                );
                Patch::Absent
            } else {
                Patch::Set(s.to_owned())
            }
        }
        Some(_) => {
            errors.add(field, "Not a valid string.");
            Patch::Absent
        }
    }
}

/// The required, non-blank name of a create (or, with `required = false`, of an update).
pub(crate) fn name_field(
    body: &Map<String, Value>,
    max: usize,
    required: bool,
    errors: &mut FieldErrors,
) -> Option<String> {
    required_text(body, "name", max, required, errors)
}

/// Non-blank string `field` (trimmed, at most `max` characters): required on a create; on an
/// update (`required = false`) it may be absent but not `null` or blank.
pub(crate) fn required_text(
    body: &Map<String, Value>,
    field: &str,
    max: usize,
    required: bool,
    errors: &mut FieldErrors,
) -> Option<String> {
    match text(body, field, max, errors) {
        Patch::Set(s) if s.is_empty() => {
            errors.add(field, "This field may not be blank.");
            None
        }
        Patch::Set(s) => Some(s),
        Patch::Null => {
            errors.add(
                field,
                if required {
                    "This field is required."
                } else {
                    "This field may not be null."
                },
            );
            None
        }
        Patch::Absent => {
            if required && !body.contains_key(field) {
                errors.add(field, "This field is required.");
            }
            None
        }
    }
}

/// The id of a detail path; `None` (answer 404) when it is not a positive integer.
pub(crate) fn path_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0)
}

/// The query string as a map (the last value of a repeated key wins).
pub(crate) fn list_params(query: Option<&str>) -> HashMap<String, String> {
    query_pairs(query).into_iter().collect()
}

/// A non-empty query value of `key`, trimmed.
pub(crate) fn param<'a>(params: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    params.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// A query parameter that must be an integer: `Ok(None)` when absent or empty, a 400 on
/// `field` when malformed.
pub(crate) fn int_param(
    params: &HashMap<String, String>,
    key: &str,
) -> Result<Option<i64>, ApiError> {
    param(params, key)
        .map(|raw| parse_int(key, raw))
        .transpose()
}

/// `raw` as an integer, or a 400 on `field`.
pub(crate) fn parse_int(field: &str, raw: &str) -> Result<i64, ApiError> {
    raw.trim()
        .parse()
        .map_err(|_| ApiError::field(field, format!("A valid integer is required, got {raw:?}.")))
}

/// An `ILIKE` pattern matching `value` anywhere (its wildcards escaped).
pub(crate) fn contains_pattern(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('%');
    for c in value.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// A unique violation of `constraint` mapped to a 400 on `field`; other errors pass through.
pub(crate) fn unique_conflict(
    err: sqlx::Error,
    constraint: &str,
    field: &str,
    message: &str,
) -> ApiError {
    if err
        .as_database_error()
        .is_some_and(|db| db.constraint() == Some(constraint))
    {
        ApiError::field(field, message)
    } else {
        ApiError::from(err)
    }
}

/// A list of integers `field`; `None` when absent or `null`, a field error when malformed.
pub(crate) fn id_list(
    body: &Map<String, Value>,
    field: &str,
    errors: &mut FieldErrors,
) -> Option<Vec<i64>> {
    match body.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let ids: Option<Vec<i64>> = items.iter().map(Value::as_i64).collect();
            if ids.is_none() {
                errors.add(field, "Expected a list of integers.");
            }
            ids
        }
        Some(_) => {
            errors.add(field, "Expected a list of integers.");
            None
        }
    }
}

/// A boolean `field`; `None` when absent or `null`, a field error when not a boolean.
pub(crate) fn boolean(
    body: &Map<String, Value>,
    field: &str,
    errors: &mut FieldErrors,
) -> Option<bool> {
    match body.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            errors.add(field, "Must be a valid boolean.");
            None
        }
    }
}

/// The string `field` of a credentials body (login, refresh), required and non-blank; kept
/// as sent (passwords are not trimmed).
pub(crate) fn credential(body: &Value, field: &str) -> Result<String, ApiError> {
    match body.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(ApiError::field(field, "This field may not be blank.")),
        Some(Value::Null) | None => Err(ApiError::field(field, "This field is required.")),
        Some(_) => Err(ApiError::field(field, "Not a valid string.")),
    }
}

/// The client's address for login throttling (`unknown` when the server was not started with
/// connection info, as in tests).
pub(crate) fn client_address(extensions: &Extensions) -> String {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string())
}

/// Where a refresh token's ledger row goes: the tenant's `refresh_tokens` (owner: a user) or
/// the public `leopard_platform_refresh_tokens` (owner: a platform admin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefreshLedger {
    /// `refresh_tokens (jti, user_id, …)` in the tenant schema.
    Tenant,
    /// `public.leopard_platform_refresh_tokens (jti, admin_id, …)`.
    Platform,
}

/// Issues an access/refresh pair for `input` and records the refresh token in `ledger` (owner
/// `owner_id`), so that refresh can consume it exactly once.
pub(crate) async fn issue_recorded_pair(
    keys: &JwtKeys,
    input: &ClaimsInput,
    (access_ttl, refresh_ttl): (Duration, Duration),
    conn: &mut PgConnection,
    ledger: RefreshLedger,
    owner_id: i64,
) -> Result<TokenPair, ApiError> {
    let now = unix_now();
    let pair = keys.issue_pair(input, now, access_ttl, refresh_ttl)?;
    let refresh = keys.decode(&pair.refresh, TokenType::Refresh, now)?;
    let sql = match ledger {
        RefreshLedger::Tenant => {
            "INSERT INTO refresh_tokens (jti, user_id, issued_at, expires_at)
             VALUES ($1, $2, to_timestamp($3), to_timestamp($4))"
        }
        RefreshLedger::Platform => {
            "INSERT INTO public.leopard_platform_refresh_tokens (jti, admin_id, issued_at, expires_at)
             VALUES ($1, $2, to_timestamp($3), to_timestamp($4))"
        }
    };
    sqlx::query(sql)
        .bind(&refresh.jti)
        .bind(owner_id)
        .bind(refresh.iat as f64)
        .bind(refresh.exp as f64)
        .execute(&mut *conn)
        .await?;
    Ok(pair)
}

/// A stored hash that never verifies, so an unknown username costs as much as a wrong password.
pub(crate) const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$\
    ZG9lc25vdG1hdHRlcmRvZXNub3RtYXR0ZXJkb2VzbjA";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_never_verifies_and_costs_what_a_real_hash_costs() {
        assert!(!leopard_http::password::verify("anything", DUMMY_HASH).is_valid());
        let real = leopard_http::password::hash("anything").expect("hash");
        let params = |h: &str| h.split('$').take(4).collect::<Vec<_>>().join("$");
        assert_eq!(
            params(DUMMY_HASH),
            params(&real),
            "same algorithm and cost parameters"
        );
        let segments: Vec<&str> = DUMMY_HASH.split('$').collect();
        assert_eq!(segments.len(), 6, "a complete PHC string: {DUMMY_HASH}");
        assert_eq!(
            segments[5].len(),
            43,
            "a 32-byte hash, so argon2 runs in full"
        );
    }

    #[test]
    fn credentials_must_be_non_blank_strings() {
        let body = serde_json::json!({"username": " ", "password": 5});
        assert!(matches!(
            credential(&body, "username"),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(
            credential(&body, "password"),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(
            credential(&body, "refresh"),
            Err(ApiError::Validation(_))
        ));
        let body = serde_json::json!({"password": " keep spaces "});
        assert_eq!(
            credential(&body, "password").ok().as_deref(),
            Some(" keep spaces ")
        );
    }

    #[test]
    fn contains_patterns_escape_like_wildcards() {
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
