//! Institutes, their children (locations, intakes, contact persons, requirements) and the
//! course taxonomy (levels, broad and narrow fields, courses) over HTTP against a real
//! PostgreSQL database: wire fields, status codes, soft delete and restore, case-insensitive
//! unique live names, validation (4xx and nothing written), narrow-within-broad, and the
//! permissions of each role.

use crate::common;

use std::collections::BTreeSet;

use common::TestApp;
use http::{Method, StatusCode};
use leopard_rbac::Role;
use serde_json::{json, Value};

const SLUG: &str = "acme";

/// The lifecycle fields every row of this slice answers.
const LIFECYCLE: &[&str] = &[
    "created_by",
    "created_at",
    "updated_by",
    "updated_at",
    "deleted_at",
];

/// InstituteOutput per original-backend.md §2.16.
const INSTITUTE_FIELDS: &[&str] = &[
    "id",
    "name",
    "short_name",
    "phone",
    "website",
    "created_by",
    "created_by_name",
    "created_at",
    "updated_by",
    "updated_by_name",
    "updated_at",
    "deleted_at",
];

/// The model columns of the children (§1.2), besides `id`, `institute` and the lifecycle.
const LOCATION_FIELDS: &[&str] = &[
    "street_name",
    "suburb",
    "state",
    "postcode",
    "country",
    "phone_number",
    "email",
];
const INTAKE_FIELDS: &[&str] = &["intake_date", "description"];
const CONTACT_FIELDS: &[&str] = &["name", "gender", "position", "phone", "email"];
const REQUIREMENT_FIELDS: &[&str] = &["title", "description", "requirement_type"];

/// Course columns plus the §2.16 extras.
const COURSE_FIELDS: &[&str] = &[
    "id",
    "name",
    "institute",
    "level",
    "broad_field",
    "narrow_field",
    "total_tuition_fee",
    "coe_fee",
    "description",
    "level_name",
    "broad_field_name",
    "narrow_field_name",
    "institute_name",
];

struct World {
    app: TestApp,
    root: String,
}

async fn world() -> World {
    let app = TestApp::new(&[SLUG]).await;
    let org = app.seed_org(SLUG).await;
    app.user(SLUG, "root", Some(Role::SuperAdmin), &[], &[])
        .await;
    app.user(SLUG, "cons_a", Some(Role::Consultant), &[org.a], &[])
        .await;
    app.user(
        SLUG,
        "rm_north",
        Some(Role::RegionManager),
        &[],
        &[org.north],
    )
    .await;
    app.user(SLUG, "ba_a", Some(Role::BranchAdmin), &[org.a], &[])
        .await;
    app.user(SLUG, "nobody", None, &[org.a], &[]).await;
    let root = app.token(SLUG, "root").await;
    World { app, root }
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn set(fields: &[&[&str]]) -> BTreeSet<String> {
    fields
        .iter()
        .flat_map(|f| f.iter().map(|s| (*s).to_owned()))
        .collect()
}

impl World {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, body) = self.app.call(method, SLUG, path, Some(token), body).await;
        (status, body)
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Creates as root, asserting 201; returns the row.
    async fn made(&self, path: &str, body: Value) -> Value {
        let (status, row) = self.post(path, &self.root, body).await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {row}");
        row
    }

    async fn institute(&self, name: &str) -> i64 {
        self.made(
            "/api/v1/institutes/",
            json!({"name": name, "short_name": "I"}),
        )
        .await["id"]
            .as_i64()
            .expect("id")
    }

    /// A level, a broad field with one narrow field, and another broad field with one.
    async fn taxonomy(&self) -> (i64, i64, i64, i64, i64) {
        let level = self
            .made("/api/v1/course-levels/", json!({"name": "Bachelor"}))
            .await["id"]
            .as_i64()
            .expect("id");
        let it = self
            .made("/api/v1/broad-fields/", json!({"name": "IT"}))
            .await["id"]
            .as_i64()
            .expect("id");
        let health = self
            .made("/api/v1/broad-fields/", json!({"name": "Health"}))
            .await["id"]
            .as_i64()
            .expect("id");
        let software = self
            .made(
                "/api/v1/narrow-fields/",
                json!({"name": "Software", "broad_field": it}),
            )
            .await["id"]
            .as_i64()
            .expect("id");
        let nursing = self
            .made(
                "/api/v1/narrow-fields/",
                json!({"name": "Nursing", "broad_field": health}),
            )
            .await["id"]
            .as_i64()
            .expect("id");
        (level, it, software, health, nursing)
    }

    async fn count(&self, sql: &str) -> i64 {
        self.app.tenant_count(SLUG, sql).await
    }
}

#[tokio::test]
async fn an_institute_is_created_with_the_original_fields_and_read_back_identically() {
    let w = world().await;
    let (status, created) = w
        .post(
            "/api/v1/institutes/",
            &w.root,
            json!({"name": "Sydney Tech", "short_name": "ST", "phone": "0299990000",
                   "website": "https://st.example.edu"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(keys(&created), set(&[INSTITUTE_FIELDS]));
    assert_eq!(created["created_by_name"], "root Tester");
    assert_eq!(created["deleted_at"], Value::Null);
    let path = format!("/api/v1/institutes/{}/", created["id"]);
    let (status, one) = w.call(Method::GET, &path, &w.root, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, created);
    let (_, page) = w
        .call(
            Method::GET,
            "/api/v1/institutes/?search=tech",
            &w.root,
            None,
        )
        .await;
    assert_eq!(page["count"], 1);
    assert_eq!(page["results"][0], created, "list and retrieve agree");
    let (_, page) = w
        .call(
            Method::GET,
            "/api/v1/institutes/?short_name=zz",
            &w.root,
            None,
        )
        .await;
    assert_eq!(page["count"], 0);
    assert_eq!(
        w.count("SELECT count(*) FROM public.leopard_events WHERE event_type = 'Institute.CREATE'")
            .await,
        1
    );
}

#[tokio::test]
async fn institute_names_are_unique_among_live_rows_and_a_deleted_institute_is_restorable() {
    let w = world().await;
    let id = w.institute("Melbourne Uni").await;
    let (status, body) = w
        .post(
            "/api/v1/institutes/",
            &w.root,
            json!({"name": "MELBOURNE uni", "short_name": "MU"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["name"].is_array(), "{body}");
    let path = format!("/api/v1/institutes/{id}/");
    let (status, _) = w.call(Method::DELETE, &path, &w.root, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = w.call(Method::GET, &path, &w.root, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], "Institute not found");
    let (_, page) = w
        .call(
            Method::GET,
            "/api/v1/institutes/?include_deleted=true",
            &w.root,
            None,
        )
        .await;
    assert_eq!(page["count"], 1, "the deleted one is listed on request");
    let restore = format!("/api/v1/institutes/{id}/restore/");
    let (status, restored) = w.call(Method::POST, &restore, &w.root, None).await;
    assert_eq!(status, StatusCode::OK, "{restored}");
    assert_eq!(restored["deleted_at"], Value::Null);
    let (status, _) = w.call(Method::POST, &restore, &w.root, None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a live institute is not restorable"
    );
    // A restore colliding with a live name is a 400 and leaves the row deleted.
    w.call(Method::DELETE, &path, &w.root, None).await;
    w.institute("melbourne UNI").await;
    let (status, body) = w.call(Method::POST, &restore, &w.root, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM institutes WHERE id = {id} AND deleted_at IS NOT NULL"
        ))
        .await,
        1
    );
    assert_eq!(
        w.count("SELECT count(*) FROM public.leopard_events WHERE entity_type = 'Institute'")
            .await,
        5,
        "create, delete, restore, delete, create"
    );
}

#[tokio::test]
async fn institute_children_answer_the_model_columns_and_filter_by_institute() {
    let w = world().await;
    let one = w.institute("One").await;
    let two = w.institute("Two").await;
    let cases = [
        (
            "/api/v1/institute-locations/",
            json!({"street_name": "1 Main St", "state": "NSW", "country": "au",
                   "email": "campus@one.example.edu"}),
            LOCATION_FIELDS,
        ),
        (
            "/api/v1/institute-intakes/",
            json!({"intake_date": "2027-02-01", "description": "Feb"}),
            INTAKE_FIELDS,
        ),
        (
            "/api/v1/institute-contact-persons/",
            json!({"name": "Ann", "gender": "FEMALE", "position": "Admissions"}),
            CONTACT_FIELDS,
        ),
        (
            "/api/v1/institute-requirements/",
            json!({"title": "IELTS 6.5", "requirement_type": "LANGUAGE"}),
            REQUIREMENT_FIELDS,
        ),
    ];
    for (path, body, fields) in cases {
        let mut first = body.clone();
        first["institute"] = json!(one);
        let row = w.made(path, first).await;
        assert_eq!(
            keys(&row),
            set(&[&["id", "institute"], fields, LIFECYCLE]),
            "{path}"
        );
        assert_eq!(row["institute"], one);
        let mut second = body.clone();
        second["institute"] = json!(two);
        w.made(path, second).await;
        let (status, page) = w
            .call(
                Method::GET,
                &format!("{path}?institute={one}"),
                &w.root,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["count"], 1, "{path}");
        assert_eq!(page["results"][0], row, "{path}");
        let detail = format!("{path}{}/", row["id"]);
        let (status, patched) = w
            .call(
                Method::PATCH,
                &detail,
                &w.root,
                Some(json!({"institute": two})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{patched}");
        assert_eq!(patched["institute"], two);
        let (status, _) = w.call(Method::DELETE, &detail, &w.root, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = w.call(Method::GET, &detail, &w.root, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, page) = w.call(Method::GET, path, &w.root, None).await;
        assert_eq!(
            page["count"], 1,
            "{path}: the deleted row is gone from the list"
        );
        let (status, _) = w
            .call(Method::GET, &format!("{path}?institute=x"), &w.root, None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "a malformed filter");
    }
    let (_, location) = w
        .call(Method::GET, "/api/v1/institute-locations/", &w.root, None)
        .await;
    assert_eq!(location["results"][0]["country"], "AU");
    assert_eq!(
        w.count(
            "SELECT count(*) FROM public.leopard_events WHERE event_type IN \
             ('InstituteLocation.UPDATE', 'InstituteIntake.UPDATE', \
              'InstituteContactPerson.UPDATE', 'InstituteRequirement.UPDATE')"
        )
        .await,
        4
    );
}

#[tokio::test]
async fn invalid_bodies_are_400_and_write_nothing() {
    let w = world().await;
    let live = w.institute("Live").await;
    let gone = w.institute("Gone").await;
    w.call(
        Method::DELETE,
        &format!("/api/v1/institutes/{gone}/"),
        &w.root,
        None,
    )
    .await;
    let before = w.count("SELECT count(*) FROM public.leopard_events").await;
    let cases = [
        ("/api/v1/institutes/", json!({"short_name": "X"})),
        (
            "/api/v1/institutes/",
            json!({"name": "X", "short_name": "X".repeat(21)}),
        ),
        ("/api/v1/institutes/", json!({"name": 5, "short_name": "X"})),
        ("/api/v1/institutes/", json!([1, 2])),
        (
            "/api/v1/institute-locations/",
            json!({"institute": live, "country": "AU"}),
        ),
        (
            "/api/v1/institute-locations/",
            json!({"institute": live, "state": "NSW", "country": "Australia"}),
        ),
        (
            "/api/v1/institute-locations/",
            json!({"institute": live, "state": "NSW", "country": "AU", "email": "nope"}),
        ),
        (
            "/api/v1/institute-locations/",
            json!({"institute": gone, "state": "NSW", "country": "AU"}),
        ),
        (
            "/api/v1/institute-locations/",
            json!({"institute": 999_999, "state": "NSW", "country": "AU"}),
        ),
        (
            "/api/v1/institute-locations/",
            json!({"institute": "abc", "state": "NSW", "country": "AU"}),
        ),
        (
            "/api/v1/institute-intakes/",
            json!({"institute": live, "intake_date": "2027-13-01"}),
        ),
        ("/api/v1/institute-intakes/", json!({"institute": live})),
        (
            "/api/v1/institute-contact-persons/",
            json!({"institute": live, "name": "A", "gender": "X"}),
        ),
        (
            "/api/v1/institute-requirements/",
            json!({"institute": live, "title": "T", "requirement_type": "VISA"}),
        ),
        ("/api/v1/institute-requirements/", json!({"title": "T"})),
        ("/api/v1/course-levels/", json!({"name": ""})),
        (
            "/api/v1/narrow-fields/",
            json!({"name": "N", "broad_field": 999_999}),
        ),
    ];
    for (path, body) in cases {
        let (status, answer) = w.post(path, &w.root, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
    }
    let detail = format!("/api/v1/institutes/{live}/");
    let (status, _) = w
        .call(Method::PATCH, &detail, &w.root, Some(json!({"name": null})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for path in [
        "/api/v1/institutes/abc/",
        "/api/v1/institutes/0/",
        "/api/v1/institute-intakes/99999999999999999999/",
        "/api/v1/courses/42/",
    ] {
        let (status, _) = w.call(Method::GET, path, &w.root, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    for table in [
        "institute_locations",
        "institute_intakes",
        "institute_contact_persons",
        "institute_requirements",
        "course_levels",
        "narrow_fields",
    ] {
        assert_eq!(
            w.count(&format!("SELECT count(*) FROM {table}")).await,
            0,
            "{table}"
        );
    }
    assert_eq!(w.count("SELECT count(*) FROM institutes").await, 2);
    assert_eq!(
        w.count("SELECT count(*) FROM institutes WHERE name = 'Live'")
            .await,
        1
    );
    assert_eq!(
        w.count("SELECT count(*) FROM public.leopard_events").await,
        before,
        "no event for a refused write"
    );
}

#[tokio::test]
async fn a_course_answers_the_taxonomy_names_and_decimal_fees_and_filters_by_each_link() {
    let w = world().await;
    let inst = w.institute("Uni").await;
    let (level, it, software, _, _) = w.taxonomy().await;
    let course = w
        .made(
            "/api/v1/courses/",
            json!({"name": "BSc Computing", "institute": inst, "level": level,
                   "broad_field": it, "narrow_field": software,
                   "total_tuition_fee": "45000.50", "coe_fee": 250}),
        )
        .await;
    assert_eq!(keys(&course), set(&[COURSE_FIELDS, LIFECYCLE]));
    assert_eq!(course["total_tuition_fee"], "45000.50");
    assert_eq!(course["coe_fee"], "250.00");
    assert_eq!(course["institute_name"], "Uni");
    assert_eq!(course["level_name"], "Bachelor");
    assert_eq!(course["broad_field_name"], "IT");
    assert_eq!(course["narrow_field_name"], "Software");
    for filter in [
        format!("institute={inst}"),
        format!("level={level}"),
        format!("broad_field={it}"),
        format!("narrow_field={software}"),
    ] {
        let (_, page) = w
            .call(
                Method::GET,
                &format!("/api/v1/courses/?{filter}"),
                &w.root,
                None,
            )
            .await;
        assert_eq!(page["count"], 1, "{filter}");
        assert_eq!(page["results"][0], course);
    }
    let (_, page) = w
        .call(Method::GET, "/api/v1/courses/?level=999", &w.root, None)
        .await;
    assert_eq!(page["count"], 0);
    let (status, body) = w
        .post(
            "/api/v1/courses/",
            &w.root,
            json!({"name": "bsc computing", "institute": inst, "level": level,
                   "broad_field": it, "narrow_field": software,
                   "total_tuition_fee": "1", "coe_fee": "1"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "same name in the institute: {body}"
    );
    let (_, narrow) = w
        .call(Method::GET, "/api/v1/narrow-fields/", &w.root, None)
        .await;
    assert_eq!(narrow["count"], 2);
    assert_eq!(
        keys(&narrow["results"][0]),
        set(&[
            &["id", "name", "broad_field", "broad_field_name"],
            LIFECYCLE
        ])
    );
}

#[tokio::test]
async fn a_course_whose_narrow_field_is_outside_its_broad_field_is_a_400_and_writes_nothing() {
    let w = world().await;
    let inst = w.institute("Uni").await;
    let (level, it, software, health, nursing) = w.taxonomy().await;
    let body = json!({"name": "Mixed", "institute": inst, "level": level,
                      "broad_field": it, "narrow_field": nursing,
                      "total_tuition_fee": "1000", "coe_fee": "0"});
    let (status, answer) = w.post("/api/v1/courses/", &w.root, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["narrow_field"][0]
            .as_str()
            .is_some_and(|m| m.contains("does not belong")),
        "{answer}"
    );
    assert_eq!(w.count("SELECT count(*) FROM courses").await, 0);
    let course = w
        .made(
            "/api/v1/courses/",
            json!({"name": "Good", "institute": inst, "level": level,
                   "broad_field": it, "narrow_field": software,
                   "total_tuition_fee": "1000", "coe_fee": "0"}),
        )
        .await;
    let detail = format!("/api/v1/courses/{}/", course["id"]);
    for patch in [
        json!({"broad_field": health}),
        json!({"narrow_field": nursing}),
        json!({"total_tuition_fee": "-5"}),
        json!({"level": 999_999}),
    ] {
        let (status, answer) = w
            .call(Method::PATCH, &detail, &w.root, Some(patch.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{patch}: {answer}");
    }
    let (_, after) = w.call(Method::GET, &detail, &w.root, None).await;
    assert_eq!(after, course, "nothing changed");
    let (status, moved) = w
        .call(
            Method::PATCH,
            &detail,
            &w.root,
            Some(json!({"broad_field": health, "narrow_field": nursing})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["narrow_field_name"], "Nursing");
    // Moving a narrow field in use to another broad field is refused by the database: a 400.
    let (status, answer) = w
        .call(
            Method::PATCH,
            &format!("/api/v1/narrow-fields/{nursing}/"),
            &w.root,
            Some(json!({"broad_field": it})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
}

#[tokio::test]
async fn taxonomy_names_are_unique_ignoring_case_and_narrow_fields_of_a_broad_field_are_a_bare_array(
) {
    let w = world().await;
    let (_, it, software, _, _) = w.taxonomy().await;
    for (path, body) in [
        ("/api/v1/course-levels/", json!({"name": "BACHELOR"})),
        ("/api/v1/broad-fields/", json!({"name": "it"})),
        (
            "/api/v1/narrow-fields/",
            json!({"name": "software", "broad_field": it}),
        ),
    ] {
        let (status, answer) = w.post(path, &w.root, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert!(answer["name"].is_array(), "{answer}");
    }
    let (_, level) = w
        .call(Method::GET, "/api/v1/course-levels/", &w.root, None)
        .await;
    assert_eq!(
        keys(&level["results"][0]),
        set(&[&["id", "name"], LIFECYCLE])
    );
    w.made(
        "/api/v1/narrow-fields/",
        json!({"name": "Networks", "broad_field": it}),
    )
    .await;
    w.call(
        Method::DELETE,
        &format!("/api/v1/narrow-fields/{software}/"),
        &w.root,
        None,
    )
    .await;
    let (status, list) = w
        .call(
            Method::GET,
            &format!("/api/v1/broad-fields/{it}/narrow-fields/"),
            &w.root,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!([{"id": list[0]["id"], "name": "Networks"}]));
    let (status, _) = w
        .call(
            Method::GET,
            "/api/v1/broad-fields/999/narrow-fields/",
            &w.root,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_consultant_reads_everything_of_the_slice_but_every_write_is_403_and_changes_nothing() {
    let w = world().await;
    let inst = w.institute("Uni").await;
    let (level, it, software, _, _) = w.taxonomy().await;
    w.made(
        "/api/v1/institute-intakes/",
        json!({"institute": inst, "intake_date": "2027-07-01"}),
    )
    .await;
    let before = w.count("SELECT count(*) FROM public.leopard_events").await;
    let cons = w.app.token(SLUG, "cons_a").await;
    for path in [
        "/api/v1/institutes/".to_owned(),
        format!("/api/v1/institutes/{inst}/"),
        "/api/v1/institute-locations/".to_owned(),
        "/api/v1/institute-intakes/".to_owned(),
        "/api/v1/institute-contact-persons/".to_owned(),
        "/api/v1/institute-requirements/".to_owned(),
        "/api/v1/course-levels/".to_owned(),
        "/api/v1/broad-fields/".to_owned(),
        format!("/api/v1/broad-fields/{it}/narrow-fields/"),
        "/api/v1/narrow-fields/".to_owned(),
        "/api/v1/courses/".to_owned(),
    ] {
        let (status, _) = w.call(Method::GET, &path, &cons, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let writes = [
        (
            Method::POST,
            "/api/v1/institutes/".to_owned(),
            json!({"name": "N", "short_name": "N"}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/institutes/{inst}/"),
            json!({"name": "N"}),
        ),
        (
            Method::DELETE,
            format!("/api/v1/institutes/{inst}/"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/api/v1/institutes/{inst}/restore/"),
            json!({}),
        ),
        (
            Method::POST,
            "/api/v1/institute-intakes/".to_owned(),
            json!({"institute": inst, "intake_date": "2027-01-01"}),
        ),
        (
            Method::POST,
            "/api/v1/course-levels/".to_owned(),
            json!({"name": "Master"}),
        ),
        (
            Method::POST,
            "/api/v1/courses/".to_owned(),
            json!({"name": "C", "institute": inst, "level": level, "broad_field": it,
                "narrow_field": software, "total_tuition_fee": "1", "coe_fee": "1"}),
        ),
    ];
    for (method, path, body) in writes {
        let (status, _) = w.call(method.clone(), &path, &cons, Some(body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
    }
    assert_eq!(
        w.count("SELECT count(*) FROM institutes WHERE name = 'Uni' AND deleted_at IS NULL")
            .await,
        1
    );
    assert_eq!(w.count("SELECT count(*) FROM courses").await, 0);
    assert_eq!(
        w.count("SELECT count(*) FROM public.leopard_events").await,
        before
    );
}

#[tokio::test]
async fn a_region_manager_writes_institutes_but_not_their_children_and_a_branch_admin_writes_both()
{
    let w = world().await;
    let rm = w.app.token(SLUG, "rm_north").await;
    let (status, inst) = w
        .post(
            "/api/v1/institutes/",
            &rm,
            json!({"name": "RM Uni", "short_name": "R"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{inst}");
    let id = inst["id"].as_i64().expect("id");
    let (status, _) = w
        .post(
            "/api/v1/institute-locations/",
            &rm,
            json!({"institute": id, "state": "VIC", "country": "AU"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "no add_institutelocation by default"
    );
    let (status, _) = w
        .call(Method::GET, "/api/v1/institute-locations/", &rm, None)
        .await;
    assert_eq!(status, StatusCode::OK, "reading follows view_institute");
    let ba = w.app.token(SLUG, "ba_a").await;
    let (status, body) = w
        .post(
            "/api/v1/institute-locations/",
            &ba,
            json!({"institute": id, "state": "VIC", "country": "AU"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = w
        .call(
            Method::DELETE,
            &format!("/api/v1/institutes/{id}/"),
            &rm,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_user_without_a_role_gets_403_on_every_read() {
    let w = world().await;
    let inst = w.institute("Uni").await;
    let nobody = w.app.token(SLUG, "nobody").await;
    for path in [
        "/api/v1/institutes/".to_owned(),
        format!("/api/v1/institutes/{inst}/"),
        "/api/v1/institute-locations/".to_owned(),
        "/api/v1/courses/".to_owned(),
        "/api/v1/broad-fields/".to_owned(),
    ] {
        let (status, _) = w.call(Method::GET, &path, &nobody, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
}
