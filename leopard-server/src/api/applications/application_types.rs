//! `/api/v1/application-types/`: the configurable college-application workflows
//! (Undergraduate, Postgraduate, …), soft-deleted master data served by the generic handlers of
//! [`crate::api::master`] (permissions, 404s, events: see there).
//!
//! - Reading needs `view_applicationtype` or `view_collegeapplication` (the application form
//!   and the tracker need the types).
//! - The list is ordered by title; `is_active` (truthy or not) and `title` (contains, any case)
//!   filter it.
//! - `currency` is a three-letter code (default `USD`), `tax_percentage` a decimal within 0–100.
//! - A type that still has live applications cannot be deleted (400).
//! - Each row carries `stages_count` and `has_applications` (live applications only).

use std::collections::HashMap;

use leopard_http::ApiError;
use leopard_rbac::ResourceKind;
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::postgres::PgArguments;
use sqlx::PgConnection;

use crate::api::input::{
    boolean, contains_pattern, currency, decimal, param, user_name, FieldErrors, Patch,
};
use crate::api::master::{
    lifecycle, master_routes, optional, required, Fields, Lifecycle, Master, Val,
};
use crate::api::{push_arg, truthy};

/// The application type routes.
pub fn routes() -> Vec<crate::api::ApiRoute> {
    master_routes::<ApplicationType>(
        "/api/v1/application-types/",
        "/api/v1/application-types/{id}/",
        None,
    )
}

/// An application type (the original's ApplicationTypeOutput).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ApplicationTypeOutput {
    /// Id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Three-letter currency code of the fees.
    pub currency: String,
    /// Name of the tax, or blank.
    pub tax_name: String,
    /// Tax percentage, a decimal string ("10.00").
    pub tax_percentage: String,
    /// Description.
    pub description: String,
    /// Whether new applications should use it (inactive types are still accepted).
    pub is_active: bool,
    /// How many stages it has.
    pub stages_count: i64,
    /// Whether any live application uses it.
    pub has_applications: bool,
    /// The creating user's "First Last" (or username).
    pub created_by_name: Option<String>,
    /// Who created and last changed it, when, and the soft-delete time.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub lifecycle: Lifecycle,
}

/// The application types.
pub(crate) struct ApplicationType;

impl Master for ApplicationType {
    const ENTITY: &'static str = "ApplicationType";
    const KIND: ResourceKind = ResourceKind::ApplicationType;
    const TABLE: &'static str = "application_types";
    const NOT_FOUND: &'static str = "Not found.";
    const SELECT: &'static str = concat!(
        "SELECT x.id, x.title, x.currency, x.tax_name, x.tax_percentage::text AS tax_percentage,
                x.description, x.is_active,
                (SELECT count(*) FROM stages s WHERE s.application_type_id = x.id)
                    AS stages_count,
                EXISTS (SELECT 1 FROM college_applications a
                         WHERE a.application_type_id = x.id AND a.deleted_at IS NULL)
                    AS has_applications, ",
        lifecycle!(),
        ", ",
        user_name!("cu"),
        " AS created_by_name
           FROM application_types x
           LEFT JOIN users cu ON cu.id = x.created_by_id"
    );
    const ORDER: &'static str = "x.title, x.id";
    const READ_WITH: ResourceKind = ResourceKind::CollegeApplication;
    type Output = ApplicationTypeOutput;

    fn read(body: &Map<String, Value>, create: bool) -> Result<Fields, ApiError> {
        let mut errors = FieldErrors::default();
        let mut fields = Fields::new();
        required(body, "title", 255, create, &mut fields, &mut errors);
        if let Some(code) = currency(body, "currency", &mut errors) {
            fields.push(("currency", Val::Text(code)));
        }
        optional(body, "tax_name", 100, &mut fields, &mut errors);
        match decimal(body, "tax_percentage", 2, (0.0, 100.0), &mut errors) {
            Patch::Set(v) => fields.push(("tax_percentage", Val::Decimal(v))),
            Patch::Null => errors.add("tax_percentage", "This field may not be null."),
            Patch::Absent => {}
        }
        optional(body, "description", 100_000, &mut fields, &mut errors);
        if body.get("is_active") == Some(&Value::Null) {
            errors.add("is_active", "This field may not be null.");
        }
        if let Some(active) = boolean(body, "is_active", &mut errors) {
            fields.push(("is_active", Val::Bool(active)));
        }
        errors.finish()?;
        Ok(fields)
    }

    async fn check_delete(conn: &mut PgConnection, id: i64) -> Result<(), ApiError> {
        let live: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM college_applications
              WHERE application_type_id = $1 AND deleted_at IS NULL",
        )
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
        if live > 0 {
            return Err(ApiError::BadRequest(format!(
                "Cannot delete an application type that has {live} application(s)."
            )));
        }
        Ok(())
    }

    fn search(
        params: &HashMap<String, String>,
        clauses: &mut Vec<String>,
        args: &mut PgArguments,
        n: &mut usize,
    ) -> Result<(), ApiError> {
        if let Some(active) = param(params, "is_active") {
            *n += 1;
            push_arg(args, truthy(active))?;
            clauses.push(format!("x.is_active = ${n}"));
        }
        if let Some(title) = param(params, "title") {
            *n += 1;
            push_arg(args, contains_pattern(title))?;
            clauses.push(format!("x.title ILIKE ${n}"));
        }
        Ok(())
    }
}
