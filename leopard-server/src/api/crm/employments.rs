//! `/api/v1/employments/`: a client's work history (the original's Employment; the SPA calls it
//! "experience"): employer, position, start and end dates, country.
//!
//! Permissions are verb-level (`view_employment`, …); an employment follows its client's
//! branch ([`crate::api::crm::profile`]: out of scope or missing → 404, an unusable body `client_id` →
//! 400). A full body (POST, PUT) needs every field: `client_id`, `employer_name` and
//! `position` (≤ 200 characters), `start_date`, `end_date`, `country`; `end_date` may not
//! precede `start_date` (400). PATCH is merge-patch.
//!
//! Writes record `Employment.CREATE`, `Employment.UPDATE` (changed fields) and
//! `Employment.DELETE`, their state carrying `client_id`.

use std::collections::HashMap;

use chrono::NaiveDate;
use leopard_http::{ApiError, Pagination};
use leopard_rbac::{Principal, ResourceKind};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::PgConnection;

use crate::api::crm::profile::{
    day, joined, must, must_text, section_filters, section_routes, Section,
};
use crate::api::input::{country, date, nullable_id, rfc3339, FieldErrors};
use crate::api::{ApiRoute, Filters};

/// The event entity name.
const ENTITY: &str = "Employment";

/// The permission kind.
const KIND: ResourceKind = ResourceKind::Employment;

/// The table and its key, for [`scoped_record`].
const TABLE: (&str, &str) = ("employments", "id");

/// The employment routes.
pub fn routes() -> Vec<ApiRoute> {
    section_routes::<Employment>("/api/v1/employments/", "/api/v1/employments/{id}/")
}

/// An employment as the API answers it (the original's EmploymentOutput).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EmploymentOutput {
    /// Id.
    pub id: i64,
    /// The client's id.
    pub client_id: i64,
    /// Employer.
    pub employer_name: String,
    /// Position held.
    pub position: String,
    /// First day, `YYYY-MM-DD`.
    pub start_date: String,
    /// Last day, `YYYY-MM-DD`.
    pub end_date: String,
    /// Two-letter country code.
    pub country: String,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Last change, RFC 3339.
    pub updated_at: String,
}

const EMPLOYMENT_SELECT: &str = concat!(
    "SELECT m.id, m.client_id, m.employer_name, m.position,
            to_char(m.start_date, 'YYYY-MM-DD') AS start_date,
            to_char(m.end_date, 'YYYY-MM-DD') AS end_date, m.country, ",
    rfc3339!("m.created_at"),
    " AS created_at, ",
    rfc3339!("m.updated_at"),
    " AS updated_at
       FROM employments m
       JOIN clients c ON c.id = m.client_id"
);

/// A validated employment: every field known (a PATCH merged over the current row).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EmploymentInput {
    client_id: i64,
    employer_name: String,
    position: String,
    start_date: NaiveDate,
    end_date: NaiveDate,
    country: String,
}

/// Reads a full body (`base = None`) or a PATCH merged over `base`.
fn employment_input(
    body: &Map<String, Value>,
    base: Option<&EmploymentOutput>,
) -> Result<EmploymentInput, ApiError> {
    let mut errors = FieldErrors::default();
    let client_id = must(
        body,
        "client_id",
        nullable_id(body, "client_id", &mut errors),
        base.map(|b| b.client_id),
        &mut errors,
    );
    let employer_name = must_text(
        body,
        "employer_name",
        200,
        base.map(|b| b.employer_name.as_str()),
        &mut errors,
    );
    let position = must_text(
        body,
        "position",
        200,
        base.map(|b| b.position.as_str()),
        &mut errors,
    );
    let start_date = must(
        body,
        "start_date",
        date(body, "start_date", &mut errors),
        base.and_then(|b| day(Some(&b.start_date))),
        &mut errors,
    );
    let end_date = must(
        body,
        "end_date",
        date(body, "end_date", &mut errors),
        base.and_then(|b| day(Some(&b.end_date))),
        &mut errors,
    );
    let country = country(body, "country", base.is_none(), &mut errors)
        .or_else(|| base.map(|b| b.country.clone()));
    if let (Some(start), Some(end)) = (start_date, end_date) {
        if end < start {
            errors.add("end_date", "The end date cannot be before the start date.");
        }
    }
    errors.finish()?;
    match (
        client_id,
        employer_name,
        position,
        start_date,
        end_date,
        country,
    ) {
        (
            Some(client_id),
            Some(employer_name),
            Some(position),
            Some(start_date),
            Some(end_date),
            Some(country),
        ) => Ok(EmploymentInput {
            client_id,
            employer_name,
            position,
            start_date,
            end_date,
            country,
        }),
        _ => Err(ApiError::BadRequest("Incomplete employment.".into())),
    }
}

/// The section, served by [`section_routes`].
pub(crate) struct Employment;

impl Section for Employment {
    const COUNTRY_FIELDS: &'static [&'static str] = &["country"];
    const ENTITY: &'static str = ENTITY;
    const KIND: ResourceKind = KIND;
    const TABLE: &'static str = TABLE.0;
    type Output = EmploymentOutput;
    type Input = EmploymentInput;

    fn read(
        body: &Map<String, Value>,
        base: Option<&Self::Output>,
    ) -> Result<Self::Input, ApiError> {
        employment_input(body, base)
    }

    fn client_of(input: &Self::Input) -> i64 {
        input.client_id
    }

    async fn list(
        conn: &mut PgConnection,
        principal: &Principal,
        params: &HashMap<String, String>,
        pagination: &Pagination,
    ) -> Result<(Vec<Self::Output>, i64), ApiError> {
        list_employments(conn, principal, params, pagination).await
    }

    async fn fetch(conn: &mut PgConnection, id: i64) -> Result<Option<Self::Output>, ApiError> {
        fetch_employment(conn, id).await
    }

    async fn insert(
        conn: &mut PgConnection,
        input: &Self::Input,
        user: i64,
    ) -> Result<i64, ApiError> {
        insert_employment(conn, input, user).await
    }

    async fn update(
        conn: &mut PgConnection,
        id: i64,
        input: &Self::Input,
        user: i64,
    ) -> Result<(), ApiError> {
        update_employment(conn, id, input, user).await
    }
}

// ----- data --------------------------------------------------------------------------------

/// The `WHERE` clause of the list: scope and `client_id`.
fn employment_filters(
    principal: &Principal,
    params: &HashMap<String, String>,
) -> Result<Filters, ApiError> {
    Ok(joined(section_filters(principal, KIND, "m", params)?))
}

/// One page of the employments `principal` may see, latest first, and the total count.
async fn list_employments(
    conn: &mut PgConnection,
    principal: &Principal,
    params: &HashMap<String, String>,
    pagination: &Pagination,
) -> Result<(Vec<EmploymentOutput>, i64), ApiError> {
    crate::api::fetch_page(
        conn,
        EMPLOYMENT_SELECT,
        "employments m JOIN clients c ON c.id = m.client_id",
        "m.end_date DESC, m.start_date DESC, m.id",
        || employment_filters(principal, params),
        pagination,
    )
    .await
}

/// One employment by id (callers check scope first).
async fn fetch_employment(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<EmploymentOutput>, ApiError> {
    Ok(
        sqlx::query_as(&format!("{EMPLOYMENT_SELECT} WHERE m.id = $1"))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Inserts an employment recorded by `user`; returns its id.
async fn insert_employment(
    conn: &mut PgConnection,
    input: &EmploymentInput,
    user: i64,
) -> Result<i64, ApiError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO employments (client_id, employer_name, position, start_date, end_date,
                                  country, created_by_id, updated_by_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
         RETURNING id",
    )
    .bind(input.client_id)
    .bind(&input.employer_name)
    .bind(&input.position)
    .bind(input.start_date)
    .bind(input.end_date)
    .bind(&input.country)
    .bind(user)
    .fetch_one(&mut *conn)
    .await?)
}

/// Replaces an employment's fields, recording `user` as the last updater.
async fn update_employment(
    conn: &mut PgConnection,
    id: i64,
    input: &EmploymentInput,
    user: i64,
) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE employments
            SET client_id = $2, employer_name = $3, position = $4, start_date = $5,
                end_date = $6, country = $7, updated_by_id = $8, updated_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(input.client_id)
    .bind(&input.employer_name)
    .bind(&input.position)
    .bind(input.start_date)
    .bind(input.end_date)
    .bind(&input.country)
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
    fn every_field_is_required_and_the_end_may_not_precede_the_start() {
        let ok = json!({"client_id": 1, "employer_name": "ACME", "position": "Dev",
                        "start_date": "2020-01-01", "end_date": "2020-01-01", "country": "AU"});
        assert!(employment_input(&body(ok.clone()), None).is_ok());
        let mut reversed = body(ok.clone());
        reversed.insert("end_date".into(), json!("2019-12-31"));
        assert!(employment_input(&reversed, None).is_err());
        for field in [
            "client_id",
            "employer_name",
            "position",
            "start_date",
            "end_date",
            "country",
        ] {
            let mut b = body(ok.clone());
            b.remove(field);
            assert!(employment_input(&b, None).is_err(), "{field}");
        }
    }
}
