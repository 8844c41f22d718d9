//! `/api/v1/qualifications/`: a client's education (the original's Qualification): course,
//! institute, degree, field of study, enrolment and completion dates, country.
//!
//! Permissions are verb-level (`view_qualification`, …); a qualification follows its client's
//! branch ([`crate::api::crm::profile`]: out of scope or missing → 404, an unusable body `client_id` →
//! 400). A full body (POST, PUT) needs `client_id`, `course` and `country`; `institute`,
//! `degree`, `field_of_study` (≤ 100 characters) and the two dates are optional, as the SPA
//! sends them. `completion_date` may not precede `enroll_date` (400). PATCH is merge-patch.
//!
//! Writes record `Qualification.CREATE`, `Qualification.UPDATE` (changed fields) and
//! `Qualification.DELETE`, their state carrying `client_id`.

use std::collections::HashMap;

use chrono::NaiveDate;
use leopard_http::{ApiError, Pagination};
use leopard_rbac::{Principal, ResourceKind};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::PgConnection;

use crate::api::crm::profile::{
    blank_or, day, joined, may, must, must_text, section_filters, section_routes, Section,
};
use crate::api::input::{country, date, nullable_id, rfc3339, text, FieldErrors};
use crate::api::{ApiRoute, Filters};

/// The event entity name.
const ENTITY: &str = "Qualification";

/// The permission kind.
const KIND: ResourceKind = ResourceKind::Qualification;

/// The table and its key, for [`scoped_record`].
const TABLE: (&str, &str) = ("qualifications", "id");

/// The qualification routes.
pub fn routes() -> Vec<ApiRoute> {
    section_routes::<Qualification>("/api/v1/qualifications/", "/api/v1/qualifications/{id}/")
}

/// A qualification as the API answers it (the original's QualificationOutput).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct QualificationOutput {
    /// Id.
    pub id: i64,
    /// The client's id.
    pub client_id: i64,
    /// Course.
    pub course: String,
    /// Institute.
    pub institute: String,
    /// Degree.
    pub degree: String,
    /// Field of study.
    pub field_of_study: String,
    /// Enrolment date, `YYYY-MM-DD`.
    pub enroll_date: Option<String>,
    /// Completion date, `YYYY-MM-DD`.
    pub completion_date: Option<String>,
    /// Two-letter country code.
    pub country: String,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Last change, RFC 3339.
    pub updated_at: String,
}

const QUALIFICATION_SELECT: &str = concat!(
    "SELECT q.id, q.client_id, q.course, q.institute, q.degree, q.field_of_study,
            to_char(q.enroll_date, 'YYYY-MM-DD') AS enroll_date,
            to_char(q.completion_date, 'YYYY-MM-DD') AS completion_date, q.country, ",
    rfc3339!("q.created_at"),
    " AS created_at, ",
    rfc3339!("q.updated_at"),
    " AS updated_at
       FROM qualifications q
       JOIN clients c ON c.id = q.client_id"
);

/// A validated qualification: every field known (a PATCH merged over the current row).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QualificationInput {
    client_id: i64,
    course: String,
    institute: String,
    degree: String,
    field_of_study: String,
    enroll_date: Option<NaiveDate>,
    completion_date: Option<NaiveDate>,
    country: String,
}

/// Reads a full body (`base = None`) or a PATCH merged over `base`.
fn qualification_input(
    body: &Map<String, Value>,
    base: Option<&QualificationOutput>,
) -> Result<QualificationInput, ApiError> {
    let mut errors = FieldErrors::default();
    let client_id = must(
        body,
        "client_id",
        nullable_id(body, "client_id", &mut errors),
        base.map(|b| b.client_id),
        &mut errors,
    );
    let course = must_text(
        body,
        "course",
        100,
        base.map(|b| b.course.as_str()),
        &mut errors,
    );
    let mut optional =
        |field: &str, current: Option<&str>| blank_or(text(body, field, 100, &mut errors), current);
    let institute = optional("institute", base.map(|b| b.institute.as_str()));
    let degree = optional("degree", base.map(|b| b.degree.as_str()));
    let field_of_study = optional("field_of_study", base.map(|b| b.field_of_study.as_str()));
    let enroll_date = may(
        date(body, "enroll_date", &mut errors),
        base.and_then(|b| day(b.enroll_date.as_deref())),
    );
    let completion_date = may(
        date(body, "completion_date", &mut errors),
        base.and_then(|b| day(b.completion_date.as_deref())),
    );
    let country = country(body, "country", base.is_none(), &mut errors)
        .or_else(|| base.map(|b| b.country.clone()));
    if let (Some(start), Some(end)) = (enroll_date, completion_date) {
        if end < start {
            errors.add(
                "completion_date",
                "The completion date cannot be before the enrolment date.",
            );
        }
    }
    errors.finish()?;
    match (client_id, course, country) {
        (Some(client_id), Some(course), Some(country)) => Ok(QualificationInput {
            client_id,
            course,
            institute,
            degree,
            field_of_study,
            enroll_date,
            completion_date,
            country,
        }),
        _ => Err(ApiError::BadRequest("Incomplete qualification.".into())),
    }
}

/// The section, served by [`section_routes`].
pub(crate) struct Qualification;

impl Section for Qualification {
    const COUNTRY_FIELDS: &'static [&'static str] = &["country"];
    const ENTITY: &'static str = ENTITY;
    const KIND: ResourceKind = KIND;
    const TABLE: &'static str = TABLE.0;
    type Output = QualificationOutput;
    type Input = QualificationInput;

    fn read(
        body: &Map<String, Value>,
        base: Option<&Self::Output>,
    ) -> Result<Self::Input, ApiError> {
        qualification_input(body, base)
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
        list_qualifications(conn, principal, params, pagination).await
    }

    async fn fetch(conn: &mut PgConnection, id: i64) -> Result<Option<Self::Output>, ApiError> {
        fetch_qualification(conn, id).await
    }

    async fn insert(
        conn: &mut PgConnection,
        input: &Self::Input,
        user: i64,
    ) -> Result<i64, ApiError> {
        insert_qualification(conn, input, user).await
    }

    async fn update(
        conn: &mut PgConnection,
        id: i64,
        input: &Self::Input,
        user: i64,
    ) -> Result<(), ApiError> {
        update_qualification(conn, id, input, user).await
    }
}

// ----- data --------------------------------------------------------------------------------

/// The `WHERE` clause of the list: scope and `client_id`.
fn qualification_filters(
    principal: &Principal,
    params: &HashMap<String, String>,
) -> Result<Filters, ApiError> {
    Ok(joined(section_filters(principal, KIND, "q", params)?))
}

/// One page of the qualifications `principal` may see, latest completion first, and the total
/// count.
async fn list_qualifications(
    conn: &mut PgConnection,
    principal: &Principal,
    params: &HashMap<String, String>,
    pagination: &Pagination,
) -> Result<(Vec<QualificationOutput>, i64), ApiError> {
    crate::api::fetch_page(
        conn,
        QUALIFICATION_SELECT,
        "qualifications q JOIN clients c ON c.id = q.client_id",
        "q.completion_date DESC, q.course, q.id",
        || qualification_filters(principal, params),
        pagination,
    )
    .await
}

/// One qualification by id (callers check scope first).
async fn fetch_qualification(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<QualificationOutput>, ApiError> {
    Ok(
        sqlx::query_as(&format!("{QUALIFICATION_SELECT} WHERE q.id = $1"))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Inserts a qualification recorded by `user`; returns its id.
async fn insert_qualification(
    conn: &mut PgConnection,
    input: &QualificationInput,
    user: i64,
) -> Result<i64, ApiError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO qualifications (client_id, course, institute, degree, field_of_study,
                                     enroll_date, completion_date, country, created_by_id,
                                     updated_by_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
         RETURNING id",
    )
    .bind(input.client_id)
    .bind(&input.course)
    .bind(&input.institute)
    .bind(&input.degree)
    .bind(&input.field_of_study)
    .bind(input.enroll_date)
    .bind(input.completion_date)
    .bind(&input.country)
    .bind(user)
    .fetch_one(&mut *conn)
    .await?)
}

/// Replaces a qualification's fields, recording `user` as the last updater.
async fn update_qualification(
    conn: &mut PgConnection,
    id: i64,
    input: &QualificationInput,
    user: i64,
) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE qualifications
            SET client_id = $2, course = $3, institute = $4, degree = $5, field_of_study = $6,
                enroll_date = $7, completion_date = $8, country = $9, updated_by_id = $10,
                updated_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(input.client_id)
    .bind(&input.course)
    .bind(&input.institute)
    .bind(&input.degree)
    .bind(&input.field_of_study)
    .bind(input.enroll_date)
    .bind(input.completion_date)
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
    fn completion_may_not_precede_enrolment_and_optional_texts_default_to_blank() {
        let ok = json!({"client_id": 1, "course": "BSc", "country": "np"});
        let input = qualification_input(&body(ok), None).map(|i| (i.institute, i.country));
        assert_eq!(input.ok(), Some((String::new(), "NP".into())));
        let bad = json!({"client_id": 1, "course": "BSc", "country": "NP",
                         "enroll_date": "2020-09-01", "completion_date": "2020-08-31"});
        assert!(qualification_input(&body(bad), None).is_err());
        assert!(
            qualification_input(&body(json!({"client_id": 1, "country": "NP"})), None).is_err()
        );
    }
}
