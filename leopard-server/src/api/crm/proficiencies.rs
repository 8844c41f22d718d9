//! `/api/v1/language-proficiencies/`: a client's language-exam results (the original's
//! Proficiency): an exam of the tenant's list (`language-exams`), five band scores and a test
//! date.
//!
//! Permissions are verb-level (`view_proficiency`, …); a result follows its client's branch
//! ([`crate::api::crm::profile`]: out of scope or missing → 404, an unusable body `client_id` → 400).
//! Scores are decimals with one place in 0–9, answered as strings like DRF's decimals
//! (`"7.5"`); an unknown exam is a 400 on `test_name_id`. A full body (POST, PUT) needs
//! `client_id`, `test_name_id`, `overall_score` and `test_date`; the four band scores may be
//! omitted or `null`. PATCH is merge-patch.
//!
//! Writes record `Proficiency.CREATE`, `Proficiency.UPDATE` (changed fields) and
//! `Proficiency.DELETE`, their state carrying `client_id` and `test_name_display`.

use std::collections::HashMap;

use chrono::NaiveDate;
use leopard_http::{ApiError, Pagination};
use leopard_rbac::{Principal, ResourceKind};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::PgConnection;

use crate::api::crm::profile::{day, joined, may, must, section_filters, section_routes, Section};
use crate::api::input::{date, decimal, int_param, nullable_id, param, rfc3339, FieldErrors};
use crate::api::{push_arg, ApiRoute, Filters};

/// The event entity name.
const ENTITY: &str = "Proficiency";

/// The permission kind.
const KIND: ResourceKind = ResourceKind::Proficiency;

/// The table and its key, for [`scoped_record`].
const TABLE: (&str, &str) = ("proficiencies", "id");

/// The score fields, in column order.
const SCORES: [&str; 5] = [
    "overall_score",
    "speaking_score",
    "reading_score",
    "listening_score",
    "writing_score",
];

/// The language-proficiency routes.
pub fn routes() -> Vec<ApiRoute> {
    section_routes::<Proficiency>(
        "/api/v1/language-proficiencies/",
        "/api/v1/language-proficiencies/{id}/",
    )
}

/// A language-exam result as the API answers it (the original's ProficiencyOutput).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ProficiencyOutput {
    /// Id.
    pub id: i64,
    /// The client's id.
    pub client_id: i64,
    /// The exam's id.
    pub test_name_id: Option<i64>,
    /// The exam's name ("IELTS").
    pub test_name_display: Option<String>,
    /// Overall band, a decimal string ("7.5").
    pub overall_score: Option<String>,
    /// Speaking band.
    pub speaking_score: Option<String>,
    /// Reading band.
    pub reading_score: Option<String>,
    /// Listening band.
    pub listening_score: Option<String>,
    /// Writing band.
    pub writing_score: Option<String>,
    /// Test date, `YYYY-MM-DD`.
    pub test_date: Option<String>,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Last change, RFC 3339.
    pub updated_at: String,
}

const PROFICIENCY_SELECT: &str = concat!(
    "SELECT p.id, p.client_id, p.test_name_id, e.name AS test_name_display,
            p.overall_score::text AS overall_score, p.speaking_score::text AS speaking_score,
            p.reading_score::text AS reading_score, p.listening_score::text AS listening_score,
            p.writing_score::text AS writing_score,
            to_char(p.test_date, 'YYYY-MM-DD') AS test_date, ",
    rfc3339!("p.created_at"),
    " AS created_at, ",
    rfc3339!("p.updated_at"),
    " AS updated_at
       FROM proficiencies p
       JOIN clients c ON c.id = p.client_id
       LEFT JOIN language_exams e ON e.id = p.test_name_id"
);

/// A validated result: every field known (a PATCH merged over the current row).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProficiencyInput {
    client_id: i64,
    test_name_id: i64,
    /// In [`SCORES`] order, as decimal strings.
    scores: [Option<String>; 5],
    test_date: NaiveDate,
}

/// Reads a full body (`base = None`) or a PATCH merged over `base`.
fn proficiency_input(
    body: &Map<String, Value>,
    base: Option<&ProficiencyOutput>,
) -> Result<ProficiencyInput, ApiError> {
    let mut errors = FieldErrors::default();
    let client_id = must(
        body,
        "client_id",
        nullable_id(body, "client_id", &mut errors),
        base.map(|b| b.client_id),
        &mut errors,
    );
    let test_name_id = must(
        body,
        "test_name_id",
        nullable_id(body, "test_name_id", &mut errors),
        base.and_then(|b| b.test_name_id),
        &mut errors,
    );
    let current = |i: usize| {
        base.and_then(|b| {
            [
                &b.overall_score,
                &b.speaking_score,
                &b.reading_score,
                &b.listening_score,
                &b.writing_score,
            ][i]
                .clone()
        })
    };
    let mut scores: [Option<String>; 5] = Default::default();
    for (i, field) in SCORES.iter().enumerate() {
        let value = decimal(body, field, 1, (0.0, 9.0), &mut errors);
        scores[i] = if i == 0 {
            must(body, field, value, current(i), &mut errors)
        } else {
            may(value, current(i))
        };
    }
    let test_date = must(
        body,
        "test_date",
        date(body, "test_date", &mut errors),
        base.and_then(|b| day(b.test_date.as_deref())),
        &mut errors,
    );
    errors.finish()?;
    match (client_id, test_name_id, test_date) {
        (Some(client_id), Some(test_name_id), Some(test_date)) => Ok(ProficiencyInput {
            client_id,
            test_name_id,
            scores,
            test_date,
        }),
        _ => Err(ApiError::BadRequest(
            "Incomplete language proficiency.".into(),
        )),
    }
}

/// The section, served by [`section_routes`].
pub(crate) struct Proficiency;

impl Section for Proficiency {
    const ENTITY: &'static str = ENTITY;
    const KIND: ResourceKind = KIND;
    const TABLE: &'static str = TABLE.0;
    type Output = ProficiencyOutput;
    type Input = ProficiencyInput;

    fn read(
        body: &Map<String, Value>,
        base: Option<&Self::Output>,
    ) -> Result<Self::Input, ApiError> {
        proficiency_input(body, base)
    }

    fn client_of(input: &Self::Input) -> i64 {
        input.client_id
    }

    async fn check(conn: &mut PgConnection, input: &Self::Input) -> Result<(), ApiError> {
        ensure_exam(conn, input.test_name_id).await
    }

    async fn list(
        conn: &mut PgConnection,
        principal: &Principal,
        params: &HashMap<String, String>,
        pagination: &Pagination,
    ) -> Result<(Vec<Self::Output>, i64), ApiError> {
        list_proficiencies(conn, principal, params, pagination).await
    }

    async fn fetch(conn: &mut PgConnection, id: i64) -> Result<Option<Self::Output>, ApiError> {
        fetch_proficiency(conn, id).await
    }

    async fn insert(
        conn: &mut PgConnection,
        input: &Self::Input,
        user: i64,
    ) -> Result<i64, ApiError> {
        insert_proficiency(conn, input, user).await
    }

    async fn update(
        conn: &mut PgConnection,
        id: i64,
        input: &Self::Input,
        user: i64,
    ) -> Result<(), ApiError> {
        update_proficiency(conn, id, input, user).await
    }
}

// ----- data --------------------------------------------------------------------------------

/// The `WHERE` clause of the list: scope, `client_id`, `test_name_id`, `test_date`.
fn proficiency_filters(
    principal: &Principal,
    params: &HashMap<String, String>,
) -> Result<Filters, ApiError> {
    let (mut clauses, mut args, mut n) = section_filters(principal, KIND, "p", params)?;
    if let Some(exam) = int_param(params, "test_name_id")? {
        n += 1;
        push_arg(&mut args, exam)?;
        clauses.push(format!("p.test_name_id = ${n}"));
    }
    if let Some(raw) = param(params, "test_date") {
        let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
            ApiError::field(
                "test_date",
                "Date has wrong format. Use one of these formats instead: YYYY-MM-DD.",
            )
        })?;
        n += 1;
        push_arg(&mut args, day)?;
        clauses.push(format!("p.test_date = ${n}"));
    }
    Ok(joined((clauses, args, n)))
}

/// One page of the results `principal` may see, latest test first, and the total count.
async fn list_proficiencies(
    conn: &mut PgConnection,
    principal: &Principal,
    params: &HashMap<String, String>,
    pagination: &Pagination,
) -> Result<(Vec<ProficiencyOutput>, i64), ApiError> {
    crate::api::fetch_page(
        conn,
        PROFICIENCY_SELECT,
        "proficiencies p JOIN clients c ON c.id = p.client_id",
        "p.test_date DESC, p.client_id, p.id",
        || proficiency_filters(principal, params),
        pagination,
    )
    .await
}

/// One result by id (callers check scope first).
async fn fetch_proficiency(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<ProficiencyOutput>, ApiError> {
    Ok(
        sqlx::query_as(&format!("{PROFICIENCY_SELECT} WHERE p.id = $1"))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// A 400 on `test_name_id` unless exam `id` exists (held against a concurrent delete).
async fn ensure_exam(conn: &mut PgConnection, id: i64) -> Result<(), ApiError> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT id FROM language_exams WHERE id = $1 FOR KEY SHARE")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    match found {
        Some(_) => Ok(()),
        None => Err(ApiError::field(
            "test_name_id",
            format!("Invalid pk \"{id}\" - object does not exist."),
        )),
    }
}

/// Inserts a result recorded by `user`; returns its id.
async fn insert_proficiency(
    conn: &mut PgConnection,
    input: &ProficiencyInput,
    user: i64,
) -> Result<i64, ApiError> {
    let [overall, speaking, reading, listening, writing] = &input.scores;
    Ok(sqlx::query_scalar(
        "INSERT INTO proficiencies (client_id, test_name_id, overall_score, speaking_score,
                                    reading_score, listening_score, writing_score, test_date,
                                    created_by_id, updated_by_id)
         VALUES ($1, $2, $3::numeric, $4::numeric, $5::numeric, $6::numeric, $7::numeric, $8,
                 $9, $9)
         RETURNING id",
    )
    .bind(input.client_id)
    .bind(input.test_name_id)
    .bind(overall)
    .bind(speaking)
    .bind(reading)
    .bind(listening)
    .bind(writing)
    .bind(input.test_date)
    .bind(user)
    .fetch_one(&mut *conn)
    .await?)
}

/// Replaces a result's fields, recording `user` as the last updater.
async fn update_proficiency(
    conn: &mut PgConnection,
    id: i64,
    input: &ProficiencyInput,
    user: i64,
) -> Result<(), ApiError> {
    let [overall, speaking, reading, listening, writing] = &input.scores;
    sqlx::query(
        "UPDATE proficiencies
            SET client_id = $2, test_name_id = $3, overall_score = $4::numeric,
                speaking_score = $5::numeric, reading_score = $6::numeric,
                listening_score = $7::numeric, writing_score = $8::numeric, test_date = $9,
                updated_by_id = $10, updated_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(input.client_id)
    .bind(input.test_name_id)
    .bind(overall)
    .bind(speaking)
    .bind(reading)
    .bind(listening)
    .bind(writing)
    .bind(input.test_date)
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
    fn a_full_body_needs_client_exam_overall_score_and_date_but_not_the_bands() {
        let full = json!({"client_id": 1, "test_name_id": 2, "overall_score": "7.5",
                          "test_date": "2024-01-31"});
        let input = proficiency_input(&body(full), None).map(|i| i.scores);
        assert_eq!(
            input.ok(),
            Some([Some("7.5".into()), None, None, None, None])
        );
        for missing in ["client_id", "test_name_id", "overall_score", "test_date"] {
            let mut b = body(
                json!({"client_id": 1, "test_name_id": 2, "overall_score": 7,
                                    "test_date": "2024-01-31"}),
            );
            b.remove(missing);
            assert!(proficiency_input(&b, None).is_err(), "{missing}");
        }
        let bad = json!({"client_id": 1, "test_name_id": 2, "overall_score": 9.5,
                         "test_date": "2024-01-31"});
        assert!(proficiency_input(&body(bad), None).is_err());
    }
}
