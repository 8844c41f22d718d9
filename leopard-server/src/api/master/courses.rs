//! The course taxonomy and the courses: `/api/v1/course-levels/`, `/api/v1/broad-fields/` (+
//! `{id}/narrow-fields/`, a bare array of the live narrow fields `{id, name}`),
//! `/api/v1/narrow-fields/` (filter `broad_field`) and `/api/v1/courses/` (filters
//! `institute`, `level`, `broad_field`, `narrow_field`), soft-deleted master data served by the
//! generic handlers of [`crate::api::master`] (permissions, 404s, events: see there).
//!
//! Names are unique case-insensitively among live rows: course levels and broad fields
//! tenant-wide, a narrow field within its broad field, a course within its institute. A
//! course's institute, level, broad and narrow field must be live, and its narrow field must
//! belong to its broad field (400 on `narrow_field`, also when a PATCH changes only one of the
//! two); the database enforces the pair too. Fees are decimal strings.

use axum::extract::Path;
use axum::Json;
use leopard_http::{ApiError, AuthUser};
use leopard_rbac::ResourceKind;
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::PgConnection;

use crate::api::input::{decimal, path_id, FieldErrors, Patch};
use crate::api::master::{
    id_of, lifecycle, live_ref, master_routes, optional, reference, require_read, required, Fields,
    Lifecycle, Master, Val,
};

/// The course taxonomy and course routes.
pub fn routes() -> Vec<crate::api::ApiRoute> {
    use axum::routing::get;
    use http::Method;
    [
        master_routes::<CourseLevel>(
            "/api/v1/course-levels/",
            "/api/v1/course-levels/{id}/",
            None,
        ),
        master_routes::<BroadField>("/api/v1/broad-fields/", "/api/v1/broad-fields/{id}/", None),
        vec![crate::api::route(
            "/api/v1/broad-fields/{id}/narrow-fields/",
            crate::api::Access::Tenant,
            [(Method::GET, get(narrow_fields_of))],
        )],
        master_routes::<NarrowField>(
            "/api/v1/narrow-fields/",
            "/api/v1/narrow-fields/{id}/",
            None,
        ),
        master_routes::<Course>("/api/v1/courses/", "/api/v1/courses/{id}/", None),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A course level or a broad field.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct NamedOutput {
    /// Id.
    pub id: i64,
    /// Name, unique among live rows.
    pub name: String,
    /// Who created and last changed it, when, and the soft-delete time.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub lifecycle: Lifecycle,
}

/// Reads the body of a course level or broad field.
fn read_name(body: &Map<String, Value>, create: bool) -> Result<Fields, ApiError> {
    let mut errors = FieldErrors::default();
    let mut fields = Fields::new();
    required(body, "name", 100, create, &mut fields, &mut errors);
    errors.finish()?;
    Ok(fields)
}

/// The course levels.
pub(crate) struct CourseLevel;

impl Master for CourseLevel {
    const ENTITY: &'static str = "CourseLevel";
    const KIND: ResourceKind = ResourceKind::CourseLevel;
    const TABLE: &'static str = "course_levels";
    const NOT_FOUND: &'static str = "Not found.";
    const SELECT: &'static str = concat!(
        "SELECT x.id, x.name, ",
        lifecycle!(),
        " FROM course_levels x"
    );
    const ORDER: &'static str = "lower(x.name), x.id";
    const UNIQUE: &'static [(&'static str, &'static str)] = &[("course_levels_live_name", "name")];
    type Output = NamedOutput;

    fn read(body: &Map<String, Value>, create: bool) -> Result<Fields, ApiError> {
        read_name(body, create)
    }
}

/// The broad fields of study.
pub(crate) struct BroadField;

impl Master for BroadField {
    const ENTITY: &'static str = "BroadField";
    const KIND: ResourceKind = ResourceKind::BroadField;
    const TABLE: &'static str = "broad_fields";
    const NOT_FOUND: &'static str = "Not found.";
    const SELECT: &'static str = concat!(
        "SELECT x.id, x.name, ",
        lifecycle!(),
        " FROM broad_fields x"
    );
    const ORDER: &'static str = "lower(x.name), x.id";
    const UNIQUE: &'static [(&'static str, &'static str)] = &[("broad_fields_live_name", "name")];
    type Output = NamedOutput;

    fn read(body: &Map<String, Value>, create: bool) -> Result<Fields, ApiError> {
        read_name(body, create)
    }
}

/// A narrow field as `GET /broad-fields/{id}/narrow-fields/` lists it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct NarrowFieldItem {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
}

/// `GET /api/v1/broad-fields/{id}/narrow-fields/`: the live narrow fields of a live broad field
/// (404 for a missing or soft-deleted one), ordered by name.
pub(crate) async fn narrow_fields_of(
    auth: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<Vec<NarrowFieldItem>>, ApiError> {
    require_read::<NarrowField>(&auth.principal)?;
    let missing = || ApiError::NotFound("Not found.".into());
    let id = path_id(&raw).ok_or_else(missing)?;
    let mut tx = auth.tenant.begin().await?;
    let broad: Option<i64> =
        sqlx::query_scalar("SELECT id FROM broad_fields WHERE id = $1 AND deleted_at IS NULL")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    broad.ok_or_else(missing)?;
    let rows = sqlx::query_as(
        "SELECT id, name FROM narrow_fields
          WHERE broad_field_id = $1 AND deleted_at IS NULL
          ORDER BY lower(name), id",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(rows))
}

/// A narrow field of study.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct NarrowFieldOutput {
    /// Id.
    pub id: i64,
    /// Name, unique among the live narrow fields of its broad field.
    pub name: String,
    /// The broad field's id.
    pub broad_field: i64,
    /// The broad field's name.
    pub broad_field_name: String,
    /// Who created and last changed it, when, and the soft-delete time.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub lifecycle: Lifecycle,
}

/// The narrow fields of study.
pub(crate) struct NarrowField;

impl Master for NarrowField {
    const ENTITY: &'static str = "NarrowField";
    const KIND: ResourceKind = ResourceKind::NarrowField;
    const TABLE: &'static str = "narrow_fields";
    const NOT_FOUND: &'static str = "Not found.";
    const SELECT: &'static str = concat!(
        "SELECT x.id, x.name, x.broad_field_id AS broad_field, b.name AS broad_field_name, ",
        lifecycle!(),
        " FROM narrow_fields x JOIN broad_fields b ON b.id = x.broad_field_id"
    );
    const ORDER: &'static str = "lower(b.name), lower(x.name), x.id";
    const FILTERS: &'static [(&'static str, &'static str)] = &[("broad_field", "x.broad_field_id")];
    const UNIQUE: &'static [(&'static str, &'static str)] = &[("narrow_fields_live_name", "name")];
    type Output = NarrowFieldOutput;

    fn read(body: &Map<String, Value>, create: bool) -> Result<Fields, ApiError> {
        let mut errors = FieldErrors::default();
        let mut fields = Fields::new();
        required(body, "name", 100, create, &mut fields, &mut errors);
        reference(
            body,
            "broad_field",
            "broad_field_id",
            create,
            &mut fields,
            &mut errors,
        );
        errors.finish()?;
        Ok(fields)
    }

    async fn check(
        conn: &mut PgConnection,
        _id: Option<i64>,
        fields: &Fields,
    ) -> Result<(), ApiError> {
        match id_of(fields, "broad_field_id") {
            Some(id) => live_ref(conn, "broad_fields", "broad_field", id).await,
            None => Ok(()),
        }
    }
}

/// A course an institute offers.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct CourseOutput {
    /// Id.
    pub id: i64,
    /// Name, unique among the institute's live courses.
    pub name: String,
    /// The institute's id.
    pub institute: i64,
    /// The institute's name.
    pub institute_name: String,
    /// The course level's id.
    pub level: i64,
    /// The course level's name.
    pub level_name: String,
    /// The broad field's id.
    pub broad_field: i64,
    /// The broad field's name.
    pub broad_field_name: String,
    /// The narrow field's id (within the broad field).
    pub narrow_field: i64,
    /// The narrow field's name.
    pub narrow_field_name: String,
    /// Total tuition fee, a decimal string.
    pub total_tuition_fee: String,
    /// CoE fee, a decimal string.
    pub coe_fee: String,
    /// Free text.
    pub description: String,
    /// Who created and last changed it, when, and the soft-delete time.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub lifecycle: Lifecycle,
}

/// The courses.
pub(crate) struct Course;

/// A required decimal fee `field` (two places, not negative).
fn fee(
    body: &Map<String, Value>,
    field: &'static str,
    create: bool,
    fields: &mut Fields,
    errors: &mut FieldErrors,
) {
    match decimal(body, field, 2, (0.0, 1e12), errors) {
        Patch::Set(v) => fields.push((field, Val::Decimal(v))),
        Patch::Null => errors.add(field, "This field may not be null."),
        Patch::Absent if create && !body.contains_key(field) => {
            errors.add(field, "This field is required.");
        }
        Patch::Absent => {}
    }
}

impl Master for Course {
    const ENTITY: &'static str = "Course";
    const KIND: ResourceKind = ResourceKind::Course;
    const TABLE: &'static str = "courses";
    const NOT_FOUND: &'static str = "Not found.";
    const SELECT: &'static str = concat!(
        "SELECT x.id, x.name, x.institute_id AS institute, i.name AS institute_name,
                x.level_id AS level, l.name AS level_name,
                x.broad_field_id AS broad_field, b.name AS broad_field_name,
                x.narrow_field_id AS narrow_field, n.name AS narrow_field_name,
                x.total_tuition_fee::text AS total_tuition_fee, x.coe_fee::text AS coe_fee,
                x.description, ",
        lifecycle!(),
        " FROM courses x
           JOIN institutes i ON i.id = x.institute_id
           JOIN course_levels l ON l.id = x.level_id
           JOIN broad_fields b ON b.id = x.broad_field_id
           JOIN narrow_fields n ON n.id = x.narrow_field_id"
    );
    const ORDER: &'static str = "lower(i.name), x.institute_id, lower(x.name), x.id";
    const FILTERS: &'static [(&'static str, &'static str)] = &[
        ("institute", "x.institute_id"),
        ("level", "x.level_id"),
        ("broad_field", "x.broad_field_id"),
        ("narrow_field", "x.narrow_field_id"),
    ];
    const UNIQUE: &'static [(&'static str, &'static str)] = &[("courses_live_name", "name")];
    type Output = CourseOutput;

    fn read(body: &Map<String, Value>, create: bool) -> Result<Fields, ApiError> {
        let mut errors = FieldErrors::default();
        let mut fields = Fields::new();
        required(body, "name", 100, create, &mut fields, &mut errors);
        for (field, column) in [
            ("institute", "institute_id"),
            ("level", "level_id"),
            ("broad_field", "broad_field_id"),
            ("narrow_field", "narrow_field_id"),
        ] {
            reference(body, field, column, create, &mut fields, &mut errors);
        }
        fee(body, "total_tuition_fee", create, &mut fields, &mut errors);
        fee(body, "coe_fee", create, &mut fields, &mut errors);
        optional(body, "description", 5000, &mut fields, &mut errors);
        errors.finish()?;
        Ok(fields)
    }

    async fn check(
        conn: &mut PgConnection,
        id: Option<i64>,
        fields: &Fields,
    ) -> Result<(), ApiError> {
        for (column, table, field) in [
            ("institute_id", "institutes", "institute"),
            ("level_id", "course_levels", "level"),
            ("broad_field_id", "broad_fields", "broad_field"),
            ("narrow_field_id", "narrow_fields", "narrow_field"),
        ] {
            if let Some(target) = id_of(fields, column) {
                live_ref(conn, table, field, target).await?;
            }
        }
        let (mut broad, mut narrow) = (
            id_of(fields, "broad_field_id"),
            id_of(fields, "narrow_field_id"),
        );
        if broad.is_none() && narrow.is_none() {
            return Ok(());
        }
        if let Some(id) = id {
            let (b, n): (i64, i64) =
                sqlx::query_as("SELECT broad_field_id, narrow_field_id FROM courses WHERE id = $1")
                    .bind(id)
                    .fetch_one(&mut *conn)
                    .await?;
            broad = broad.or(Some(b));
            narrow = narrow.or(Some(n));
        }
        let (Some(broad), Some(narrow)) = (broad, narrow) else {
            return Ok(());
        };
        let within: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM narrow_fields WHERE id = $1 AND broad_field_id = $2",
        )
        .bind(narrow)
        .bind(broad)
        .fetch_optional(&mut *conn)
        .await?;
        match within {
            Some(_) => Ok(()),
            None => Err(ApiError::field(
                "narrow_field",
                format!("Narrow field {narrow} does not belong to broad field {broad}."),
            )),
        }
    }
}
