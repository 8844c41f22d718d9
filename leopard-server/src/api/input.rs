//! Reading request input: JSON bodies field by field (with every error collected into one 400),
//! merge-patch fields, query parameters, detail-path ids, credentials, and the SQL helpers that
//! go with them (`ILIKE` patterns, unique-violation mapping, RFC 3339 timestamps).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
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

/// "First Last" of a joined user alias, else its username, else null.
macro_rules! user_name {
    ($alias:literal) => {
        concat!(
            "CASE WHEN ",
            $alias,
            ".id IS NULL THEN NULL ELSE COALESCE(NULLIF(btrim(",
            $alias,
            ".first_name || ' ' || ",
            $alias,
            ".last_name), ''), ",
            $alias,
            ".username) END"
        )
    };
}
pub(crate) use user_name;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Patch<T> {
    /// Not in the body: unchanged.
    #[default]
    Absent,
    /// Explicitly `null`: cleared (for a nullable field).
    Null,
    /// A new value.
    Set(T),
}

/// The body as a JSON object, or a 400; also a 400 on the first field holding a NUL character
/// anywhere in it (PostgreSQL stores none, in text or in JSON, so it would otherwise fail late).
pub(crate) fn object(body: Value) -> Result<Map<String, Value>, ApiError> {
    fn has_nul(value: &Value) -> bool {
        match value {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().any(has_nul),
            Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    let Value::Object(map) = body else {
        return Err(ApiError::BadRequest("Expected a JSON object.".into()));
    };
    match map.iter().find(|(k, v)| k.contains('\0') || has_nul(v)) {
        Some((field, _)) => Err(ApiError::field(
            &field.replace('\0', ""),
            "Null characters are not allowed.",
        )),
        None => Ok(map),
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

/// A nullable id `field`: a positive integer (or its decimal string); `null` or `""` clears it.
pub(crate) fn nullable_id(
    body: &Map<String, Value>,
    field: &str,
    errors: &mut FieldErrors,
) -> Patch<i64> {
    match body.get(field) {
        None => Patch::Absent,
        Some(Value::Null) => Patch::Null,
        Some(Value::String(s)) if s.trim().is_empty() => Patch::Null,
        Some(v) => match v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|id| *id > 0)
        {
            Some(id) => Patch::Set(id),
            None => {
                errors.add(field, "A valid integer is required.");
                Patch::Absent
            }
        },
    }
}

/// A required id `field` (create) or one that may be absent but not `null` (update).
pub(crate) fn required_id(
    body: &Map<String, Value>,
    field: &str,
    required: bool,
    errors: &mut FieldErrors,
) -> Option<i64> {
    match nullable_id(body, field, errors) {
        Patch::Set(id) => Some(id),
        Patch::Null => {
            errors.add(field, "This field may not be null.");
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

/// A choice `field` among `choices`; `null` is an error, and so is absence when `required`.
pub(crate) fn choice(
    body: &Map<String, Value>,
    field: &str,
    choices: &[&str],
    required: bool,
    errors: &mut FieldErrors,
) -> Option<String> {
    match text(body, field, 30, errors) {
        Patch::Set(s) if choices.contains(&s.as_str()) => Some(s),
        Patch::Set(s) => {
            errors.add(field, format!("\"{s}\" is not a valid choice."));
            None
        }
        Patch::Null => {
            errors.add(field, "This field may not be null.");
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

/// A country `field`: an assigned ISO 3166-1 alpha-2 code in any case, answered upper-case
/// ([`leopard_core::Country`], the one list); required on a create, never `null`. Anything
/// else records `"\"ZZ\" is not a valid choice."`, as the original's django-countries field.
pub(crate) fn country(
    body: &Map<String, Value>,
    field: &str,
    required: bool,
    errors: &mut FieldErrors,
) -> Option<String> {
    let value = required_text(body, field, 64, required, errors)?;
    match leopard_core::Country::parse(&value) {
        Ok(code) => Some(code.code().to_owned()),
        Err(e) => {
            errors.add(field, e.to_string());
            None
        }
    }
}

/// An optional country `field`: absent leaves it, `null` or a blank string clears it, anything
/// else is checked like [`country`].
pub(crate) fn optional_country(
    body: &Map<String, Value>,
    field: &str,
    errors: &mut FieldErrors,
) -> Patch<String> {
    match body.get(field) {
        None => Patch::Absent,
        Some(Value::Null) => Patch::Null,
        Some(Value::String(s)) if s.trim().is_empty() => Patch::Null,
        Some(_) => country(body, field, false, errors).map_or(Patch::Absent, Patch::Set),
    }
}

/// Reads a nullable `field` holding a string parsed by `parse`; `null` or `""` clears it, a
/// wrong type or an unparsable value records `message`.
fn parsed<T>(
    body: &Map<String, Value>,
    field: &str,
    errors: &mut FieldErrors,
    message: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Patch<T> {
    match body.get(field) {
        None => Patch::Absent,
        Some(Value::Null) => Patch::Null,
        Some(Value::String(s)) if s.trim().is_empty() => Patch::Null,
        Some(Value::String(s)) => match parse(s.trim()) {
            Some(v) => Patch::Set(v),
            None => {
                errors.add(field, message);
                Patch::Absent
            }
        },
        Some(_) => {
            errors.add(field, message);
            Patch::Absent
        }
    }
}

/// A nullable date `field` (`YYYY-MM-DD`).
pub(crate) fn date(
    body: &Map<String, Value>,
    field: &str,
    errors: &mut FieldErrors,
) -> Patch<NaiveDate> {
    parsed(
        body,
        field,
        errors,
        "Date has wrong format. Use one of these formats instead: YYYY-MM-DD.",
        |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok(),
    )
}

/// A nullable time `field` (`hh:mm[:ss[.uuuuuu]]`).
pub(crate) fn time(
    body: &Map<String, Value>,
    field: &str,
    errors: &mut FieldErrors,
) -> Patch<NaiveTime> {
    parsed(
        body,
        field,
        errors,
        "Time has wrong format. Use one of these formats instead: hh:mm[:ss[.uuuuuu]].",
        |s| {
            NaiveTime::parse_from_str(s, "%H:%M:%S%.f")
                .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M"))
                .ok()
        },
    )
}

/// A nullable date-time `field`: RFC 3339 (`2026-11-27T09:30:00Z`, an offset, or a naive
/// `YYYY-MM-DDThh:mm[:ss]` read as UTC, as Django does with `USE_TZ` and UTC).
pub(crate) fn datetime(
    body: &Map<String, Value>,
    field: &str,
    errors: &mut FieldErrors,
) -> Patch<DateTime<Utc>> {
    parsed(
        body,
        field,
        errors,
        "Datetime has wrong format. Use one of these formats instead: \
         YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].",
        parse_datetime,
    )
}

/// Parses an RFC 3339 date-time, or a naive one as UTC.
pub(crate) fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%dT%H:%M",
                "%Y-%m-%d %H:%M:%S%.f",
            ]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
            .map(|n| n.and_utc())
        })
}

/// A nullable decimal `field` with at most `places` decimals within `min..=max`, given as a
/// JSON number or a decimal string; returned as its canonical string (bound as `::numeric`).
pub(crate) fn decimal(
    body: &Map<String, Value>,
    field: &str,
    places: usize,
    (min, max): (f64, f64),
    errors: &mut FieldErrors,
) -> Patch<String> {
    let raw = match body.get(field) {
        None => return Patch::Absent,
        Some(Value::Null) => return Patch::Null,
        Some(Value::String(s)) if s.trim().is_empty() => return Patch::Null,
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            errors.add(field, "A valid number is required.");
            return Patch::Absent;
        }
    };
    let well_formed = {
        let digits = raw.strip_prefix('-').unwrap_or(&raw);
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        !int.is_empty()
            && int.len() <= 12
            && int.chars().all(|c| c.is_ascii_digit())
            && frac.chars().all(|c| c.is_ascii_digit())
            && (frac.len() <= places || frac[places..].chars().all(|c| c == '0'))
    };
    match raw.parse::<f64>() {
        Ok(v) if well_formed && (min..=max).contains(&v) => Patch::Set(raw),
        Ok(_) if well_formed => {
            errors.add(
                field,
                format!("Ensure this value is between {min} and {max}."),
            );
            Patch::Absent
        }
        _ => {
            errors.add(
                field,
                format!("A valid number with at most {places} decimal places is required."),
            );
            Patch::Absent
        }
    }
}

/// A three-letter currency code (upper-cased); never null.
pub(crate) fn currency(
    body: &Map<String, Value>,
    field: &str,
    errors: &mut FieldErrors,
) -> Option<String> {
    match text(body, field, 3, errors) {
        Patch::Set(s) if s.len() == 3 && s.chars().all(|c| c.is_ascii_alphabetic()) => {
            Some(s.to_ascii_uppercase())
        }
        Patch::Set(s) => {
            errors.add(field, format!("\"{s}\" is not a valid currency code."));
            None
        }
        Patch::Null => {
            errors.add(field, "This field may not be null.");
            None
        }
        Patch::Absent => None,
    }
}

/// A nullable list of strings `field` (each trimmed, at most `max` characters).
pub(crate) fn string_list(
    body: &Map<String, Value>,
    field: &str,
    max: usize,
    errors: &mut FieldErrors,
) -> Patch<Vec<String>> {
    match body.get(field) {
        None => Patch::Absent,
        Some(Value::Null) => Patch::Null,
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item.as_str().map(str::trim) {
                    Some(s) if s.chars().count() <= max => out.push(s.to_owned()),
                    Some(_) => {
                        errors.add(
                            field,
                            format!("Ensure each item has no more than {max} characters."),
                        );
                        return Patch::Absent;
                    }
                    None => {
                        errors.add(field, "Expected a list of strings.");
                        return Patch::Absent;
                    }
                }
            }
            Patch::Set(out)
        }
        Some(_) => {
            errors.add(field, "Expected a list of strings.");
            Patch::Absent
        }
    }
}

/// The string `field` of a credentials body (login, refresh), required and non-blank; kept
/// as sent (passwords are not trimmed).
pub(crate) fn credential(body: &Value, field: &str) -> Result<String, ApiError> {
    match body.get(field) {
        // PostgreSQL text cannot hold NUL: such a credential would fail the lookup with a 500.
        Some(Value::String(s)) if s.contains('\0') => {
            Err(ApiError::field(field, "Null characters are not allowed."))
        }
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
pub(crate) const DUMMY_HASH: &str = "$argon2id$v=19$m=7168,t=5,p=1$c29tZXNhbHRzb21lc2FsdA$\
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
    fn a_credential_holding_a_null_character_is_a_400_not_a_database_error() {
        let body = serde_json::json!({"username": "ad\u{0}min"});
        match credential(&body, "username") {
            Err(ApiError::Validation(fields)) => {
                assert_eq!(fields["username"], ["Null characters are not allowed."])
            }
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn contains_patterns_escape_like_wildcards() {
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}

#[cfg(test)]
mod parser_tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("test bodies are objects"),
        }
    }

    #[test]
    fn decimals_keep_their_text_and_refuse_extra_places_or_out_of_range_values() {
        let mut errors = FieldErrors::default();
        let b = body(json!({"a": 7.5, "b": "6.0", "c": "6.25", "d": 9.5, "e": "x", "f": null}));
        assert_eq!(
            decimal(&b, "a", 1, (0.0, 9.0), &mut errors),
            Patch::Set("7.5".into())
        );
        assert_eq!(
            decimal(&b, "b", 1, (0.0, 9.0), &mut errors),
            Patch::Set("6.0".into())
        );
        assert_eq!(decimal(&b, "f", 1, (0.0, 9.0), &mut errors), Patch::Null);
        assert!(errors.finish().is_ok());
        for field in ["c", "d", "e"] {
            let mut errors = FieldErrors::default();
            assert_eq!(
                decimal(&b, field, 1, (0.0, 9.0), &mut errors),
                Patch::Absent
            );
            assert!(errors.finish().is_err(), "{field}");
        }
    }

    #[test]
    fn datetimes_accept_rfc3339_offsets_and_naive_utc_and_refuse_garbage() {
        let utc = parse_datetime("2026-11-27T09:30:00Z").expect("utc");
        assert_eq!(parse_datetime("2026-11-27T10:30:00+01:00"), Some(utc));
        assert_eq!(parse_datetime("2026-11-27T09:30"), Some(utc));
        assert_eq!(parse_datetime("2026-02-30T09:30:00Z"), None);
        let mut errors = FieldErrors::default();
        let b = body(json!({"at": 5}));
        assert_eq!(datetime(&b, "at", &mut errors), Patch::Absent);
        assert!(errors.finish().is_err());
    }

    #[test]
    fn dates_times_countries_and_ids_are_read_or_reported() {
        let mut errors = FieldErrors::default();
        let b = body(json!({
            "d": "2026-01-31", "t": "09:15", "c": "np", "i": "12", "l": ["a", " b "]
        }));
        assert_eq!(
            date(&b, "d", &mut errors),
            Patch::Set(NaiveDate::from_ymd_opt(2026, 1, 31).expect("date"))
        );
        assert_eq!(
            time(&b, "t", &mut errors),
            Patch::Set(NaiveTime::from_hms_opt(9, 15, 0).expect("time"))
        );
        assert_eq!(country(&b, "c", true, &mut errors), Some("NP".into()));
        assert_eq!(required_id(&b, "i", true, &mut errors), Some(12));
        assert_eq!(
            string_list(&b, "l", 10, &mut errors),
            Patch::Set(vec!["a".into(), "b".into()])
        );
        assert!(errors.finish().is_ok());
        let mut errors = FieldErrors::default();
        let bad = body(json!({"d": "31/01/2026", "c": "Nepal", "l": [1]}));
        assert_eq!(date(&bad, "d", &mut errors), Patch::Absent);
        assert_eq!(country(&bad, "c", true, &mut errors), None);
        assert_eq!(required_id(&bad, "i", true, &mut errors), None);
        assert_eq!(string_list(&bad, "l", 10, &mut errors), Patch::Absent);
        match errors.finish() {
            Err(ApiError::Validation(fields)) => assert_eq!(fields.len(), 4),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }
}
