//! `/api/v1/institutes/` (+ `{id}/restore/`) and the institute children
//! `/api/v1/institute-locations/`, `/api/v1/institute-intakes/`,
//! `/api/v1/institute-contact-persons/` and `/api/v1/institute-requirements/` (filter
//! `institute`), all soft-deleted master data served by the generic handlers of
//! [`crate::api::master`] (permissions, 404s, events: see there).
//!
//! An institute's name is unique case-insensitively among live institutes; its list is ordered
//! by name and searchable (`search` over name and short name, `name`, `short_name`: contains,
//! any case). A child's `institute` must be a live institute (400 otherwise). Restore works
//! (the original's was broken).

use std::collections::HashMap;

use leopard_http::ApiError;
use leopard_rbac::ResourceKind;
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::postgres::PgArguments;
use sqlx::PgConnection;

use crate::api::input::{
    choice, contains_pattern, country, date, param, user_name, FieldErrors, Patch,
};
use crate::api::master::{
    email, id_of, lifecycle, live_ref, master_routes, optional, reference, required, Fields,
    Lifecycle, Master, Val,
};
use crate::api::push_arg;

/// The requirement kinds.
pub(crate) const REQUIREMENT_TYPES: &[&str] =
    &["ACADEMIC", "LANGUAGE", "FINANCIAL", "DOCUMENT", "OTHER"];

/// The contact person genders (blank allowed).
const GENDERS: &[&str] = &["", "MALE", "FEMALE", "OTHER"];

/// The institute routes and those of its children.
pub fn routes() -> Vec<crate::api::ApiRoute> {
    [
        master_routes::<Institute>(
            "/api/v1/institutes/",
            "/api/v1/institutes/{id}/",
            Some("/api/v1/institutes/{id}/restore/"),
        ),
        master_routes::<Location>(
            "/api/v1/institute-locations/",
            "/api/v1/institute-locations/{id}/",
            None,
        ),
        master_routes::<Intake>(
            "/api/v1/institute-intakes/",
            "/api/v1/institute-intakes/{id}/",
            None,
        ),
        master_routes::<ContactPerson>(
            "/api/v1/institute-contact-persons/",
            "/api/v1/institute-contact-persons/{id}/",
            None,
        ),
        master_routes::<Requirement>(
            "/api/v1/institute-requirements/",
            "/api/v1/institute-requirements/{id}/",
            None,
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The `institute` of a child body: required on a create, a live institute.
fn institute_ref(
    body: &Map<String, Value>,
    create: bool,
    fields: &mut Fields,
    errors: &mut FieldErrors,
) {
    reference(body, "institute", "institute_id", create, fields, errors);
}

/// 400 on `institute` unless the child's institute (when given) is live.
async fn check_institute(conn: &mut PgConnection, fields: &Fields) -> Result<(), ApiError> {
    match id_of(fields, "institute_id") {
        Some(id) => live_ref(conn, "institutes", "institute", id).await,
        None => Ok(()),
    }
}

// ----- institutes --------------------------------------------------------------------------

/// An institute (the original's InstituteOutput).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct InstituteOutput {
    /// Id.
    pub id: i64,
    /// Name, unique among live institutes.
    pub name: String,
    /// Short name.
    pub short_name: String,
    /// Phone.
    pub phone: String,
    /// Web site.
    pub website: String,
    /// The creating user's "First Last" (or username).
    pub created_by_name: Option<String>,
    /// The last updating user's "First Last" (or username).
    pub updated_by_name: Option<String>,
    /// Who created and last changed it, when, and the soft-delete time.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub lifecycle: Lifecycle,
}

/// The institutes.
pub(crate) struct Institute;

impl Master for Institute {
    const ENTITY: &'static str = "Institute";
    const KIND: ResourceKind = ResourceKind::Institute;
    const TABLE: &'static str = "institutes";
    const NOT_FOUND: &'static str = "Institute not found";
    const SELECT: &'static str = concat!(
        "SELECT x.id, x.name, x.short_name, x.phone, x.website, ",
        lifecycle!(),
        ", ",
        user_name!("cu"),
        " AS created_by_name, ",
        user_name!("uu"),
        " AS updated_by_name
           FROM institutes x
           LEFT JOIN users cu ON cu.id = x.created_by_id
           LEFT JOIN users uu ON uu.id = x.updated_by_id"
    );
    const ORDER: &'static str = "lower(x.name), x.id";
    const UNIQUE: &'static [(&'static str, &'static str)] = &[("institutes_live_name", "name")];
    type Output = InstituteOutput;

    fn read(body: &Map<String, Value>, create: bool) -> Result<Fields, ApiError> {
        let mut errors = FieldErrors::default();
        let mut fields = Fields::new();
        required(body, "name", 100, create, &mut fields, &mut errors);
        required(body, "short_name", 20, create, &mut fields, &mut errors);
        optional(body, "phone", 15, &mut fields, &mut errors);
        optional(body, "website", 100, &mut fields, &mut errors);
        errors.finish()?;
        Ok(fields)
    }

    fn search(
        params: &HashMap<String, String>,
        clauses: &mut Vec<String>,
        args: &mut PgArguments,
        n: &mut usize,
    ) -> Result<(), ApiError> {
        if let Some(search) = param(params, "search") {
            *n += 1;
            push_arg(args, contains_pattern(search))?;
            clauses.push(format!("(x.name ILIKE ${n} OR x.short_name ILIKE ${n})"));
        }
        for key in ["name", "short_name"] {
            if let Some(value) = param(params, key) {
                *n += 1;
                push_arg(args, contains_pattern(value))?;
                clauses.push(format!("x.{key} ILIKE ${n}"));
            }
        }
        Ok(())
    }
}

// ----- locations ---------------------------------------------------------------------------

/// An institute location (campus).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct LocationOutput {
    /// Id.
    pub id: i64,
    /// The institute's id.
    pub institute: i64,
    /// Street.
    pub street_name: String,
    /// Suburb.
    pub suburb: String,
    /// State (required).
    pub state: String,
    /// Postcode.
    pub postcode: String,
    /// Two-letter country code.
    pub country: String,
    /// Phone.
    pub phone_number: String,
    /// E-mail (may be empty).
    pub email: String,
    /// Who created and last changed it, when, and the soft-delete time.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub lifecycle: Lifecycle,
}

/// The institute locations.
pub(crate) struct Location;

impl Master for Location {
    const COUNTRY_FIELDS: &'static [&'static str] = &["country"];
    const ENTITY: &'static str = "InstituteLocation";
    const KIND: ResourceKind = ResourceKind::InstituteLocation;
    const TABLE: &'static str = "institute_locations";
    const NOT_FOUND: &'static str = "Not found.";
    const SELECT: &'static str = concat!(
        "SELECT x.id, x.institute_id AS institute, x.street_name, x.suburb, x.state, x.postcode,
                x.country, x.phone_number, x.email, ",
        lifecycle!(),
        " FROM institute_locations x"
    );
    const ORDER: &'static str = "x.country, x.state, x.id";
    const FILTERS: &'static [(&'static str, &'static str)] = &[("institute", "x.institute_id")];
    type Output = LocationOutput;

    fn read(body: &Map<String, Value>, create: bool) -> Result<Fields, ApiError> {
        let mut errors = FieldErrors::default();
        let mut fields = Fields::new();
        institute_ref(body, create, &mut fields, &mut errors);
        optional(body, "street_name", 100, &mut fields, &mut errors);
        optional(body, "suburb", 100, &mut fields, &mut errors);
        required(body, "state", 50, create, &mut fields, &mut errors);
        optional(body, "postcode", 20, &mut fields, &mut errors);
        if let Some(code) = country(body, "country", create, &mut errors) {
            fields.push(("country", Val::Text(code)));
        }
        optional(body, "phone_number", 15, &mut fields, &mut errors);
        email(body, "email", &mut fields, &mut errors);
        errors.finish()?;
        Ok(fields)
    }

    async fn check(
        conn: &mut PgConnection,
        _id: Option<i64>,
        fields: &Fields,
    ) -> Result<(), ApiError> {
        check_institute(conn, fields).await
    }
}

// ----- intakes -----------------------------------------------------------------------------

/// An institute intake (a start date).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct IntakeOutput {
    /// Id.
    pub id: i64,
    /// The institute's id.
    pub institute: i64,
    /// The intake date, `YYYY-MM-DD`.
    pub intake_date: String,
    /// Free text.
    pub description: String,
    /// Who created and last changed it, when, and the soft-delete time.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub lifecycle: Lifecycle,
}

/// The institute intakes.
pub(crate) struct Intake;

impl Master for Intake {
    const ENTITY: &'static str = "InstituteIntake";
    const KIND: ResourceKind = ResourceKind::InstituteIntake;
    const TABLE: &'static str = "institute_intakes";
    const NOT_FOUND: &'static str = "Not found.";
    const SELECT: &'static str = concat!(
        "SELECT x.id, x.institute_id AS institute,
                to_char(x.intake_date, 'YYYY-MM-DD') AS intake_date, x.description, ",
        lifecycle!(),
        " FROM institute_intakes x"
    );
    const ORDER: &'static str = "x.intake_date DESC, x.id";
    const FILTERS: &'static [(&'static str, &'static str)] = &[("institute", "x.institute_id")];
    type Output = IntakeOutput;

    fn read(body: &Map<String, Value>, create: bool) -> Result<Fields, ApiError> {
        let mut errors = FieldErrors::default();
        let mut fields = Fields::new();
        institute_ref(body, create, &mut fields, &mut errors);
        match date(body, "intake_date", &mut errors) {
            Patch::Set(d) => fields.push(("intake_date", Val::Date(d))),
            Patch::Null => errors.add("intake_date", "This field may not be null."),
            Patch::Absent if create && !body.contains_key("intake_date") => {
                errors.add("intake_date", "This field is required.");
            }
            Patch::Absent => {}
        }
        optional(body, "description", 5000, &mut fields, &mut errors);
        errors.finish()?;
        Ok(fields)
    }

    async fn check(
        conn: &mut PgConnection,
        _id: Option<i64>,
        fields: &Fields,
    ) -> Result<(), ApiError> {
        check_institute(conn, fields).await
    }
}

// ----- contact persons ---------------------------------------------------------------------

/// An institute contact person.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ContactPersonOutput {
    /// Id.
    pub id: i64,
    /// The institute's id.
    pub institute: i64,
    /// Name.
    pub name: String,
    /// `MALE`, `FEMALE`, `OTHER` or empty.
    pub gender: String,
    /// Position.
    pub position: String,
    /// Phone.
    pub phone: String,
    /// E-mail (may be empty).
    pub email: String,
    /// Who created and last changed it, when, and the soft-delete time.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub lifecycle: Lifecycle,
}

/// The institute contact persons.
pub(crate) struct ContactPerson;

impl Master for ContactPerson {
    const ENTITY: &'static str = "InstituteContactPerson";
    const KIND: ResourceKind = ResourceKind::InstituteContactPerson;
    const TABLE: &'static str = "institute_contact_persons";
    const NOT_FOUND: &'static str = "Not found.";
    const SELECT: &'static str = concat!(
        "SELECT x.id, x.institute_id AS institute, x.name, x.gender, x.position, x.phone,
                x.email, ",
        lifecycle!(),
        " FROM institute_contact_persons x"
    );
    const ORDER: &'static str = "lower(x.name), x.id";
    const FILTERS: &'static [(&'static str, &'static str)] = &[("institute", "x.institute_id")];
    type Output = ContactPersonOutput;

    fn read(body: &Map<String, Value>, create: bool) -> Result<Fields, ApiError> {
        let mut errors = FieldErrors::default();
        let mut fields = Fields::new();
        institute_ref(body, create, &mut fields, &mut errors);
        required(body, "name", 100, create, &mut fields, &mut errors);
        if body.get("gender") == Some(&Value::Null) {
            fields.push(("gender", Val::Text(String::new())));
        } else if let Some(g) = choice(body, "gender", GENDERS, false, &mut errors) {
            fields.push(("gender", Val::Text(g)));
        }
        optional(body, "position", 100, &mut fields, &mut errors);
        optional(body, "phone", 15, &mut fields, &mut errors);
        email(body, "email", &mut fields, &mut errors);
        errors.finish()?;
        Ok(fields)
    }

    async fn check(
        conn: &mut PgConnection,
        _id: Option<i64>,
        fields: &Fields,
    ) -> Result<(), ApiError> {
        check_institute(conn, fields).await
    }
}

// ----- requirements ------------------------------------------------------------------------

/// An institute requirement.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RequirementOutput {
    /// Id.
    pub id: i64,
    /// The institute's id.
    pub institute: i64,
    /// Title.
    pub title: String,
    /// Free text.
    pub description: String,
    /// `ACADEMIC`, `LANGUAGE`, `FINANCIAL`, `DOCUMENT` or `OTHER`.
    pub requirement_type: String,
    /// Who created and last changed it, when, and the soft-delete time.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub lifecycle: Lifecycle,
}

/// The institute requirements.
pub(crate) struct Requirement;

impl Master for Requirement {
    const ENTITY: &'static str = "InstituteRequirement";
    const KIND: ResourceKind = ResourceKind::InstituteRequirement;
    const TABLE: &'static str = "institute_requirements";
    const NOT_FOUND: &'static str = "Not found.";
    const SELECT: &'static str = concat!(
        "SELECT x.id, x.institute_id AS institute, x.title, x.description, x.requirement_type, ",
        lifecycle!(),
        " FROM institute_requirements x"
    );
    const ORDER: &'static str = "x.requirement_type, lower(x.title), x.id";
    const FILTERS: &'static [(&'static str, &'static str)] = &[("institute", "x.institute_id")];
    type Output = RequirementOutput;

    fn read(body: &Map<String, Value>, create: bool) -> Result<Fields, ApiError> {
        let mut errors = FieldErrors::default();
        let mut fields = Fields::new();
        institute_ref(body, create, &mut fields, &mut errors);
        required(body, "title", 200, create, &mut fields, &mut errors);
        optional(body, "description", 5000, &mut fields, &mut errors);
        if let Some(t) = choice(
            body,
            "requirement_type",
            REQUIREMENT_TYPES,
            false,
            &mut errors,
        ) {
            fields.push(("requirement_type", Val::Text(t)));
        }
        errors.finish()?;
        Ok(fields)
    }

    async fn check(
        conn: &mut PgConnection,
        _id: Option<i64>,
        fields: &Fields,
    ) -> Result<(), ApiError> {
        check_institute(conn, fields).await
    }
}
