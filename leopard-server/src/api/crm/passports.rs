//! `/api/v1/passports/`: a client's passport (the original's Passport), one per client and
//! keyed by the client's id.
//!
//! Permissions are verb-level (`view_passport`, …); a passport follows its client's branch
//! ([`crate::api::crm::profile`]: out of scope or missing → 404, an unusable body `client_id` → 400).
//! `POST /passports/`, `POST /passports/upsert/` and `PUT`/`PATCH /passports/{client_id}/` all
//! upsert the passport of the body's `client_id` and answer 200: creating needs `add_passport`,
//! replacing an existing one `change_passport`. POST and PUT take a full body (`client_id`,
//! `passport_no` ≤ 20, `passport_country`, `country_of_birth`, `nationality` required; the
//! dates and `place_of_issue` optional); PATCH merges over the existing passport. On the
//! detail path an absent `client_id` means the URL's, a different one is a 400 (the original
//! ignored the URL). `date_of_expiry` may not precede `date_of_issue` (400). The list is not
//! paginated, as in the original.
//!
//! Writes record `Passport.CREATE`, `Passport.UPDATE` (changed fields) and `Passport.DELETE`,
//! keyed by the client id, their state carrying `client_id`.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post, put};
use axum::Json;
use chrono::NaiveDate;
use http::Method;
use leopard_http::{ApiError, AuthUser, JsonBody};
use leopard_rbac::{Action, Permission, Principal, ResourceKind};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::PgConnection;

use crate::api::crm::clients::client_in_scope;
use crate::api::crm::profile::{
    blank_or, body_client, day, joined, may, must_text, not_found, section_filters, update_event,
};
use crate::api::events;
use crate::api::input::{
    country, date, list_params, nullable_id, object, path_id, rfc3339, text, FieldErrors, Patch,
};
use crate::api::{require, route, Access, ApiRoute};
use crate::app::AppState;

/// The event entity name.
const ENTITY: &str = "Passport";

/// The permission kind.
const KIND: ResourceKind = ResourceKind::Passport;

/// A passport's country fields.
const PASSPORT_COUNTRIES: &[&str] = &["passport_country", "country_of_birth", "nationality"];

/// The passport routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        route(
            "/api/v1/passports/",
            Access::Tenant,
            [(Method::GET, get(list)), (Method::POST, post(create))],
        )
        .paginated(false)
        .statuses(Method::POST, &[200])
        .countries(PASSPORT_COUNTRIES),
        route(
            "/api/v1/passports/upsert/",
            Access::Tenant,
            [(Method::POST, post(create))],
        )
        .countries(PASSPORT_COUNTRIES),
        route(
            "/api/v1/passports/{client_id}/",
            Access::Tenant,
            [
                (Method::GET, get(retrieve)),
                (Method::PUT, put(replace)),
                (Method::PATCH, patch(modify)),
                (Method::DELETE, delete(destroy)),
            ],
        )
        .countries(PASSPORT_COUNTRIES),
    ]
}

/// A passport as the API answers it (the original's PassportOutput).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct PassportOutput {
    /// The client's id (the passport's key).
    pub client_id: i64,
    /// Passport number.
    pub passport_no: String,
    /// Issuing country, two letters.
    pub passport_country: String,
    /// Issue date, `YYYY-MM-DD`.
    pub date_of_issue: Option<String>,
    /// Expiry date, `YYYY-MM-DD`.
    pub date_of_expiry: Option<String>,
    /// Place of issue.
    pub place_of_issue: String,
    /// Country of birth, two letters.
    pub country_of_birth: String,
    /// Nationality, two letters.
    pub nationality: String,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Last change, RFC 3339.
    pub updated_at: String,
}

const PASSPORT_SELECT: &str = concat!(
    "SELECT p.client_id, p.passport_no, p.passport_country,
            to_char(p.date_of_issue, 'YYYY-MM-DD') AS date_of_issue,
            to_char(p.date_of_expiry, 'YYYY-MM-DD') AS date_of_expiry,
            p.place_of_issue, p.country_of_birth, p.nationality, ",
    rfc3339!("p.created_at"),
    " AS created_at, ",
    rfc3339!("p.updated_at"),
    " AS updated_at
       FROM passports p
       JOIN clients c ON c.id = p.client_id"
);

/// A validated passport: every field known (a PATCH merged over the current one).
#[derive(Debug, Clone, PartialEq)]
struct PassportInput {
    client_id: i64,
    passport_no: String,
    passport_country: String,
    date_of_issue: Option<NaiveDate>,
    date_of_expiry: Option<NaiveDate>,
    place_of_issue: String,
    country_of_birth: String,
    nationality: String,
}

/// The client a body names: its `client_id`, else `url` (the detail path's); 400 when both are
/// given and differ, or when neither is.
fn target_client(body: &Map<String, Value>, url: Option<i64>) -> Result<i64, ApiError> {
    let mut errors = FieldErrors::default();
    let given = nullable_id(body, "client_id", &mut errors);
    errors.finish()?;
    match (given, url) {
        (Patch::Set(id), None) => Ok(id),
        (Patch::Set(id), Some(url)) if id == url => Ok(id),
        (Patch::Set(_), Some(_)) => Err(ApiError::field(
            "client_id",
            "Does not match the client id of the URL.",
        )),
        (Patch::Absent, Some(url)) => Ok(url),
        (Patch::Null, _) => Err(ApiError::field("client_id", "This field may not be null.")),
        (Patch::Absent, None) => Err(ApiError::field("client_id", "This field is required.")),
    }
}

/// Reads the passport of client `client_id` from a full body (`base = None`) or a PATCH merged
/// over `base`.
fn passport_input(
    body: &Map<String, Value>,
    client_id: i64,
    base: Option<&PassportOutput>,
) -> Result<PassportInput, ApiError> {
    let mut errors = FieldErrors::default();
    let passport_no = must_text(
        body,
        "passport_no",
        20,
        base.map(|b| b.passport_no.as_str()),
        &mut errors,
    );
    let mut required_country = |field: &str, current: Option<&String>| {
        country(body, field, base.is_none(), &mut errors).or_else(|| current.cloned())
    };
    let passport_country = required_country("passport_country", base.map(|b| &b.passport_country));
    let country_of_birth = required_country("country_of_birth", base.map(|b| &b.country_of_birth));
    let nationality = required_country("nationality", base.map(|b| &b.nationality));
    let date_of_issue = may(
        date(body, "date_of_issue", &mut errors),
        base.and_then(|b| day(b.date_of_issue.as_deref())),
    );
    let date_of_expiry = may(
        date(body, "date_of_expiry", &mut errors),
        base.and_then(|b| day(b.date_of_expiry.as_deref())),
    );
    let place_of_issue = blank_or(
        text(body, "place_of_issue", 100, &mut errors),
        base.map(|b| b.place_of_issue.as_str()),
    );
    if let (Some(issue), Some(expiry)) = (date_of_issue, date_of_expiry) {
        if expiry < issue {
            errors.add(
                "date_of_expiry",
                "The expiry date cannot be before the issue date.",
            );
        }
    }
    errors.finish()?;
    match (passport_no, passport_country, country_of_birth, nationality) {
        (Some(passport_no), Some(passport_country), Some(country_of_birth), Some(nationality)) => {
            Ok(PassportInput {
                client_id,
                passport_no,
                passport_country,
                date_of_issue,
                date_of_expiry,
                place_of_issue,
                country_of_birth,
                nationality,
            })
        }
        _ => Err(ApiError::BadRequest("Incomplete passport.".into())),
    }
}

// ----- handlers ----------------------------------------------------------------------------

/// `GET /api/v1/passports/`: not paginated.
pub(crate) async fn list(
    auth: AuthUser,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<PassportOutput>>, ApiError> {
    require(&auth.principal, Action::View, KIND)?;
    let params = list_params(query.as_deref());
    let mut tx = auth.tenant.begin().await?;
    let rows = list_passports(&mut tx, &auth.principal, &params).await?;
    tx.commit().await?;
    Ok(Json(rows))
}

/// `POST /api/v1/passports/` and `POST /api/v1/passports/upsert/`: upsert, full body.
pub(crate) async fn create(
    state: State<AppState>,
    auth: AuthUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<PassportOutput>, ApiError> {
    upsert(state, auth, object(body)?, None, true).await
}

/// `PUT /api/v1/passports/{client_id}/`: upsert, full body.
pub(crate) async fn replace(
    state: State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<PassportOutput>, ApiError> {
    let url = path_id(&raw).ok_or_else(not_found)?;
    upsert(state, auth, object(body)?, Some(url), true).await
}

/// `PATCH /api/v1/passports/{client_id}/`: upsert, merge-patch over an existing passport.
pub(crate) async fn modify(
    state: State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<PassportOutput>, ApiError> {
    let url = path_id(&raw).ok_or_else(not_found)?;
    upsert(state, auth, object(body)?, Some(url), false).await
}

/// Creates (`add_passport`) or replaces (`change_passport`) the passport of the body's client
/// (`url`: the detail path's client id); `full` = a full body, else merge-patch.
async fn upsert(
    State(state): State<AppState>,
    auth: AuthUser,
    body: Map<String, Value>,
    url: Option<i64>,
    full: bool,
) -> Result<Json<PassportOutput>, ApiError> {
    let principal = &auth.principal;
    let may_add = principal.has(Permission::new(KIND, Action::Add));
    if !may_add && !principal.has(Permission::new(KIND, Action::Change)) {
        return Err(ApiError::permission_denied());
    }
    let client = target_client(&body, url)?;
    let mut tx = auth.tenant.begin().await?;
    let scope_action = if may_add { Action::Add } else { Action::Change };
    if url.is_some() {
        // The client named by the URL: out of scope reads as missing.
        client_in_scope(
            &mut tx,
            principal,
            scope_action,
            KIND,
            client,
            true,
            not_found,
        )
        .await?;
    } else {
        body_client(&mut tx, principal, scope_action, KIND, client).await?;
    }
    let before = fetch_passport(&mut tx, client, true).await?;
    let action = if before.is_some() {
        Action::Change
    } else {
        Action::Add
    };
    require(principal, action, KIND)?;
    let base = if full { None } else { before.as_ref() };
    let input = passport_input(&body, client, base)?;
    save_passport(&mut tx, &input, auth.user_id.get()).await?;
    let out = fetch_passport(&mut tx, client, false)
        .await?
        .ok_or_else(not_found)?;
    let actor = auth.user_id.get();
    let events = match &before {
        Some(before) => update_event(
            ENTITY,
            client,
            events::state(before)?,
            events::state(&out)?,
            actor,
        ),
        None => vec![events::created(ENTITY, client, events::state(&out)?, actor)],
    };
    events::record(&mut tx, events).await?;
    events::commit(tx, &state.waker).await?;
    Ok(Json(out))
}

/// `GET /api/v1/passports/{client_id}/`.
pub(crate) async fn retrieve(
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<PassportOutput>, ApiError> {
    require(&auth.principal, Action::View, KIND)?;
    let client = path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    client_in_scope(
        &mut tx,
        &auth.principal,
        Action::View,
        KIND,
        client,
        false,
        not_found,
    )
    .await?;
    let out = fetch_passport(&mut tx, client, false)
        .await?
        .ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(Json(out))
}

/// `DELETE /api/v1/passports/{client_id}/`.
pub(crate) async fn destroy(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    require(&auth.principal, Action::Delete, KIND)?;
    let client = path_id(&raw).ok_or_else(not_found)?;
    let mut tx = auth.tenant.begin().await?;
    client_in_scope(
        &mut tx,
        &auth.principal,
        Action::Delete,
        KIND,
        client,
        true,
        not_found,
    )
    .await?;
    let before = fetch_passport(&mut tx, client, true)
        .await?
        .ok_or_else(not_found)?;
    sqlx::query("DELETE FROM passports WHERE client_id = $1")
        .bind(client)
        .execute(&mut *tx)
        .await?;
    let event = events::deleted(ENTITY, client, events::state(&before)?, auth.user_id.get());
    events::record(&mut tx, vec![event]).await?;
    events::commit(tx, &state.waker).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- data --------------------------------------------------------------------------------

/// The passports `principal` may see (optionally of one `client_id`), by client id.
async fn list_passports(
    conn: &mut PgConnection,
    principal: &Principal,
    params: &HashMap<String, String>,
) -> Result<Vec<PassportOutput>, ApiError> {
    let (clause, args, _) = joined(section_filters(principal, KIND, "p", params)?);
    let sql = format!("{PASSPORT_SELECT} WHERE {clause} ORDER BY p.client_id");
    Ok(sqlx::query_as_with(&sql, args)
        .fetch_all(&mut *conn)
        .await?)
}

/// The passport of client `client` (callers check scope first), locked with `lock`.
async fn fetch_passport(
    conn: &mut PgConnection,
    client: i64,
    lock: bool,
) -> Result<Option<PassportOutput>, ApiError> {
    let sql = format!(
        "{PASSPORT_SELECT} WHERE p.client_id = $1{}",
        if lock { " FOR UPDATE OF p" } else { "" }
    );
    Ok(sqlx::query_as(&sql)
        .bind(client)
        .fetch_optional(&mut *conn)
        .await?)
}

/// Inserts or replaces the passport of `input.client_id`, recording `user`.
async fn save_passport(
    conn: &mut PgConnection,
    input: &PassportInput,
    user: i64,
) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO passports (client_id, passport_no, passport_country, date_of_issue,
                                date_of_expiry, place_of_issue, country_of_birth, nationality,
                                created_by_id, updated_by_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
         ON CONFLICT (client_id) DO UPDATE
            SET passport_no = EXCLUDED.passport_no,
                passport_country = EXCLUDED.passport_country,
                date_of_issue = EXCLUDED.date_of_issue,
                date_of_expiry = EXCLUDED.date_of_expiry,
                place_of_issue = EXCLUDED.place_of_issue,
                country_of_birth = EXCLUDED.country_of_birth,
                nationality = EXCLUDED.nationality,
                updated_by_id = EXCLUDED.updated_by_id,
                updated_at = now()",
    )
    .bind(input.client_id)
    .bind(&input.passport_no)
    .bind(&input.passport_country)
    .bind(input.date_of_issue)
    .bind(input.date_of_expiry)
    .bind(&input.place_of_issue)
    .bind(&input.country_of_birth)
    .bind(&input.nationality)
    .bind(user)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn the_url_client_fills_in_an_absent_body_client_and_must_match_a_given_one() {
        assert_eq!(target_client(&body(json!({})), Some(4)).ok(), Some(4));
        assert_eq!(
            target_client(&body(json!({"client_id": 4})), Some(4)).ok(),
            Some(4)
        );
        assert!(target_client(&body(json!({"client_id": 5})), Some(4)).is_err());
        assert!(target_client(&body(json!({})), None).is_err());
        assert!(target_client(&body(json!({"client_id": "x"})), None).is_err());
    }

    #[test]
    fn a_full_passport_needs_number_and_three_countries_and_ordered_dates() {
        let ok = json!({"passport_no": "N123", "passport_country": "np", "country_of_birth": "NP",
                        "nationality": "NP"});
        assert!(passport_input(&body(ok.clone()), 1, None).is_ok());
        let mut b = body(ok.clone());
        b.insert("date_of_issue".into(), json!("2020-01-02"));
        b.insert("date_of_expiry".into(), json!("2020-01-01"));
        assert!(passport_input(&b, 1, None).is_err());
        let mut b = body(ok);
        b.insert("passport_no".into(), json!("X".repeat(21)));
        assert!(passport_input(&b, 1, None).is_err());
        assert!(passport_input(&body(json!({"passport_no": "N1"})), 1, None).is_err());
    }
}
