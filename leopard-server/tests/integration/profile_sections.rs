//! The client profile sections over HTTP against a real PostgreSQL database: language exams
//! (`/language-exams/`), language proficiencies, qualifications, employments and passports —
//! wire fields, CRUD status codes, merge-patch and passport upserts, scope by the client's
//! branch (out of scope is a 404, an unusable body client a 400), validation that writes
//! nothing, recorded events and the timeline entries the event bus writes.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Org, TestApp};
use http::{Method, StatusCode};
use leopard_rbac::Role;
use serde_json::{json, Value};

const SLUG: &str = "acme";

/// The LPE output of original-backend.md §2.15.
const EXAM_FIELDS: &[&str] = &[
    "id",
    "name",
    "validity_term",
    "description",
    "created_at",
    "updated_at",
];

/// The proficiency output of §2.15.
const PROFICIENCY_FIELDS: &[&str] = &[
    "id",
    "client_id",
    "test_name_id",
    "test_name_display",
    "overall_score",
    "speaking_score",
    "reading_score",
    "listening_score",
    "writing_score",
    "test_date",
    "created_at",
    "updated_at",
];

/// The qualification output of §2.15.
const QUALIFICATION_FIELDS: &[&str] = &[
    "id",
    "client_id",
    "course",
    "institute",
    "degree",
    "field_of_study",
    "enroll_date",
    "completion_date",
    "country",
    "created_at",
    "updated_at",
];

/// The employment output of §2.15.
const EMPLOYMENT_FIELDS: &[&str] = &[
    "id",
    "client_id",
    "employer_name",
    "position",
    "start_date",
    "end_date",
    "country",
    "created_at",
    "updated_at",
];

/// The passport output of §2.15.
const PASSPORT_FIELDS: &[&str] = &[
    "client_id",
    "passport_no",
    "passport_country",
    "date_of_issue",
    "date_of_expiry",
    "place_of_issue",
    "country_of_birth",
    "nationality",
    "created_at",
    "updated_at",
];

/// An org with a super admin (`root`), a consultant of A (`cons_a`), a region manager of North
/// (`rm_north`), a user without a role (`nobody`), clients in branches A, B and C, and the
/// exam IELTS.
struct World {
    app: TestApp,
    org: Org,
    root: String,
    cons_a: String,
    rm_north: String,
    /// Clients of branches A, B and C.
    client_a: i64,
    client_b: i64,
    client_c: i64,
    ielts: i64,
}

async fn world() -> World {
    world_on(TestApp::new(&[SLUG]).await).await
}

async fn world_on(app: TestApp) -> World {
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
    app.user(SLUG, "nobody", None, &[], &[]).await;
    let root = app.token(SLUG, "root").await;
    let cons_a = app.token(SLUG, "cons_a").await;
    let rm_north = app.token(SLUG, "rm_north").await;
    let mut w = World {
        app,
        org,
        root,
        cons_a,
        rm_north,
        client_a: 0,
        client_b: 0,
        client_c: 0,
        ielts: 0,
    };
    w.client_a = w.client("Ann", w.org.a).await;
    w.client_b = w.client("Ben", w.org.b).await;
    w.client_c = w.client("Cat", w.org.c).await;
    let (status, exam) = w
        .send(
            Method::POST,
            "/api/v1/language-exams/",
            &w.root.clone(),
            json!({"name": "IELTS", "validity_term": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{exam}");
    w.ielts = exam["id"].as_i64().expect("id");
    w
}

impl World {
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let (status, _, json) = self
            .app
            .call(method, SLUG, path, Some(token), Some(body))
            .await;
        (status, json)
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let (status, _, json) = self.app.get(SLUG, path, token).await;
        (status, json)
    }

    async fn delete(&self, path: &str, token: &str) -> StatusCode {
        self.app
            .call(Method::DELETE, SLUG, path, Some(token), None)
            .await
            .0
    }

    /// A client named `name` in `branch`; returns its id.
    async fn client(&self, name: &str, branch: i64) -> i64 {
        let (status, json) = self
            .send(
                Method::POST,
                "/api/v1/clients/",
                &self.root,
                json!({"first_name": name, "gender": "MALE", "country": "AU", "branch_id": branch}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json["id"].as_i64().expect("id")
    }

    fn proficiency_body(&self, client: i64) -> Value {
        json!({
            "client_id": client, "test_name_id": self.ielts, "overall_score": 7.5,
            "speaking_score": "7.0", "reading_score": 8, "listening_score": "6.5",
            "writing_score": 6.5, "test_date": "2024-03-01"
        })
    }

    /// Creates a proficiency of `client` as root; returns its id.
    async fn proficiency(&self, client: i64) -> i64 {
        let (status, json) = self
            .send(
                Method::POST,
                "/api/v1/language-proficiencies/",
                &self.root,
                self.proficiency_body(client),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json["id"].as_i64().expect("id")
    }

    /// Creates a qualification of `client` as root; returns its id.
    async fn qualification(&self, client: i64) -> i64 {
        let (status, json) = self
            .send(
                Method::POST,
                "/api/v1/qualifications/",
                &self.root,
                json!({"client_id": client, "course": "BSc Computing", "institute": "TU",
                       "enroll_date": "2015-09-01", "completion_date": "2019-06-30",
                       "country": "NP"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json["id"].as_i64().expect("id")
    }

    /// Creates an employment of `client` as root; returns its id.
    async fn employment(&self, client: i64) -> i64 {
        let (status, json) = self
            .send(
                Method::POST,
                "/api/v1/employments/",
                &self.root,
                json!({"client_id": client, "employer_name": "ACME", "position": "Engineer",
                       "start_date": "2019-07-01", "end_date": "2023-12-31", "country": "AU"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json["id"].as_i64().expect("id")
    }

    /// Upserts the passport of `client` as root.
    async fn passport(&self, client: i64) {
        let (status, json) = self
            .send(
                Method::POST,
                "/api/v1/passports/upsert/",
                &self.root,
                passport_body(client),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{json}");
    }

    /// The ids (or, for passports, client ids) of a list answer.
    async fn ids(&self, path: &str, token: &str, key: &str) -> BTreeSet<i64> {
        let (status, json) = self.get(path, token).await;
        assert_eq!(status, StatusCode::OK, "{path}: {json}");
        let rows = json
            .get("results")
            .unwrap_or(&json)
            .as_array()
            .expect("rows")
            .clone();
        rows.iter().map(|r| r[key].as_i64().expect("id")).collect()
    }

    async fn count(&self, table: &str) -> i64 {
        self.app
            .tenant_count(SLUG, &format!("SELECT count(*) FROM {table}"))
            .await
    }

    async fn events(&self) -> Vec<(String, Value)> {
        sqlx::query_as(
            "SELECT event_type, COALESCE(current, previous, 'null'::jsonb)
               FROM public.leopard_events ORDER BY id",
        )
        .fetch_all(self.app.tenancy.db.pool())
        .await
        .expect("events")
    }
}

fn passport_body(client: i64) -> Value {
    json!({
        "client_id": client, "passport_no": "PA1234567", "passport_country": "np",
        "date_of_issue": "2020-01-15", "date_of_expiry": "2030-01-14",
        "place_of_issue": "Kathmandu", "country_of_birth": "NP", "nationality": "NP"
    })
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().expect("object").keys().cloned().collect()
}

fn fields(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

// ----- wire format -------------------------------------------------------------------------

#[tokio::test]
async fn every_section_answers_exactly_the_spec_fields_in_list_and_retrieve() {
    let w = world().await;
    let p = w.proficiency(w.client_a).await;
    let q = w.qualification(w.client_a).await;
    let e = w.employment(w.client_a).await;
    w.passport(w.client_a).await;
    for (list, one, expected) in [
        (
            "/api/v1/language-exams/".to_owned(),
            format!("/api/v1/language-exams/{}/", w.ielts),
            EXAM_FIELDS,
        ),
        (
            format!("/api/v1/language-proficiencies/?client_id={}", w.client_a),
            format!("/api/v1/language-proficiencies/{p}/"),
            PROFICIENCY_FIELDS,
        ),
        (
            format!("/api/v1/qualifications/?client_id={}", w.client_a),
            format!("/api/v1/qualifications/{q}/"),
            QUALIFICATION_FIELDS,
        ),
        (
            format!("/api/v1/employments/?client_id={}", w.client_a),
            format!("/api/v1/employments/{e}/"),
            EMPLOYMENT_FIELDS,
        ),
        (
            format!("/api/v1/passports/?client_id={}", w.client_a),
            format!("/api/v1/passports/{}/", w.client_a),
            PASSPORT_FIELDS,
        ),
    ] {
        let (status, page) = w.get(&list, &w.root).await;
        assert_eq!(status, StatusCode::OK, "{list}: {page}");
        let row = page
            .get("results")
            .unwrap_or(&page)
            .get(0)
            .cloned()
            .expect("a row");
        assert_eq!(keys(&row), fields(expected), "{list}");
        let (status, item) = w.get(&one, &w.root).await;
        assert_eq!(status, StatusCode::OK, "{one}: {item}");
        assert_eq!(keys(&item), fields(expected), "{one}");
    }
}

#[tokio::test]
async fn scores_are_decimal_strings_with_one_place_and_the_exam_name_is_displayed() {
    let w = world().await;
    let p = w.proficiency(w.client_a).await;
    let (_, item) = w
        .get(&format!("/api/v1/language-proficiencies/{p}/"), &w.root)
        .await;
    assert_eq!(item["overall_score"], "7.5");
    assert_eq!(item["speaking_score"], "7.0");
    assert_eq!(item["reading_score"], "8.0");
    assert_eq!(item["listening_score"], "6.5");
    assert_eq!(item["test_name_id"], w.ielts);
    assert_eq!(item["test_name_display"], "IELTS");
    assert_eq!(item["test_date"], "2024-03-01");
    assert_eq!(item["client_id"], w.client_a);
}

#[tokio::test]
async fn the_passport_list_is_a_bare_array_and_the_others_are_paginated() {
    let w = world().await;
    w.passport(w.client_a).await;
    let (_, passports) = w.get("/api/v1/passports/", &w.root).await;
    assert!(passports.is_array(), "{passports}");
    for path in [
        "/api/v1/language-exams/",
        "/api/v1/language-proficiencies/",
        "/api/v1/qualifications/",
        "/api/v1/employments/",
    ] {
        let (_, page) = w.get(path, &w.root).await;
        for key in ["count", "next", "previous", "results"] {
            assert!(page.get(key).is_some(), "{path}: {page}");
        }
    }
}

// ----- CRUD --------------------------------------------------------------------------------

#[tokio::test]
async fn a_proficiency_goes_through_create_put_patch_and_delete() {
    let w = world().await;
    let id = w.proficiency(w.client_a).await;
    let path = format!("/api/v1/language-proficiencies/{id}/");
    // PUT validates a full body: the date is missing.
    let mut body = w.proficiency_body(w.client_a);
    body.as_object_mut().expect("object").remove("test_date");
    let (status, json) = w.send(Method::PUT, &path, &w.root, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    assert!(json["test_date"].is_array(), "{json}");
    // A full PUT without the band scores clears them.
    let (status, json) = w
        .send(
            Method::PUT,
            &path,
            &w.root,
            json!({"client_id": w.client_a, "test_name_id": w.ielts, "overall_score": "6",
                   "test_date": "2024-04-01"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["overall_score"], "6.0");
    assert_eq!(json["speaking_score"], Value::Null);
    // PATCH changes what it names only.
    let (status, json) = w
        .send(Method::PATCH, &path, &w.root, json!({"writing_score": 5.5}))
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["writing_score"], "5.5");
    assert_eq!(json["overall_score"], "6.0");
    assert_eq!(json["test_date"], "2024-04-01");
    assert_eq!(w.delete(&path, &w.root).await, StatusCode::NO_CONTENT);
    assert_eq!(w.get(&path, &w.root).await.0, StatusCode::NOT_FOUND);
    assert_eq!(w.delete(&path, &w.root).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn qualifications_and_employments_are_created_patched_and_deleted() {
    let w = world().await;
    let q = w.qualification(w.client_a).await;
    let path = format!("/api/v1/qualifications/{q}/");
    let (status, json) = w
        .send(Method::PATCH, &path, &w.root, json!({"degree": "Bachelor"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["degree"], "Bachelor");
    assert_eq!(json["course"], "BSc Computing");
    assert_eq!(json["institute"], "TU");
    let (status, json) = w
        .send(
            Method::PUT,
            &path,
            &w.root,
            json!({"client_id": w.client_a, "course": "MSc", "country": "au"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["institute"], "", "PUT replaces the whole record");
    assert_eq!(json["enroll_date"], Value::Null);
    assert_eq!(json["country"], "AU");
    assert_eq!(w.delete(&path, &w.root).await, StatusCode::NO_CONTENT);

    let e = w.employment(w.client_a).await;
    let path = format!("/api/v1/employments/{e}/");
    let (status, json) = w
        .send(Method::PATCH, &path, &w.root, json!({"position": "Lead"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["position"], "Lead");
    assert_eq!(json["employer_name"], "ACME");
    let (status, json) = w
        .send(
            Method::PUT,
            &path,
            &w.root,
            json!({"client_id": w.client_a, "position": "Lead"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "PUT needs every field: {json}"
    );
    assert_eq!(w.delete(&path, &w.root).await, StatusCode::NO_CONTENT);
    assert_eq!(w.count("employments").await, 0);
}

#[tokio::test]
async fn passports_are_upserted_by_client_from_every_write_route() {
    let w = world().await;
    let (status, json) = w
        .send(
            Method::POST,
            "/api/v1/passports/",
            &w.root,
            passport_body(w.client_a),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["passport_country"], "NP");
    let mut again = passport_body(w.client_a);
    again["passport_no"] = json!("PB7654321");
    let (status, json) = w
        .send(Method::POST, "/api/v1/passports/upsert/", &w.root, again)
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["passport_no"], "PB7654321");
    assert_eq!(w.count("passports").await, 1, "one passport per client");
    let path = format!("/api/v1/passports/{}/", w.client_a);
    // PATCH on the detail path: the URL names the client, absent fields are kept.
    let (status, json) = w
        .send(
            Method::PATCH,
            &path,
            &w.root,
            json!({"place_of_issue": "Pokhara"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["place_of_issue"], "Pokhara");
    assert_eq!(json["passport_no"], "PB7654321");
    assert_eq!(json["date_of_issue"], "2020-01-15");
    // PUT is a full body: the optional fields it omits are cleared.
    let (status, json) = w
        .send(
            Method::PUT,
            &path,
            &w.root,
            json!({"passport_no": "PC1", "passport_country": "NP", "country_of_birth": "IN",
                   "nationality": "NP"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["date_of_issue"], Value::Null);
    assert_eq!(json["place_of_issue"], "");
    assert_eq!(json["country_of_birth"], "IN");
    // A body naming another client than the URL is refused.
    let (status, json) = w
        .send(
            Method::PATCH,
            &path,
            &w.root,
            json!({"client_id": w.client_b}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    assert!(json["client_id"].is_array(), "{json}");
    // PUT on a client without a passport creates it.
    let path_b = format!("/api/v1/passports/{}/", w.client_b);
    let mut body = passport_body(w.client_b);
    body.as_object_mut().expect("object").remove("client_id");
    let (status, _) = w.send(Method::PUT, &path_b, &w.root, body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(w.count("passports").await, 2);
    assert_eq!(w.delete(&path, &w.root).await, StatusCode::NO_CONTENT);
    assert_eq!(w.get(&path, &w.root).await.0, StatusCode::NOT_FOUND);
    assert_eq!(w.delete(&path, &w.root).await, StatusCode::NOT_FOUND);
    let types: Vec<String> = w.events().await.into_iter().map(|(t, _)| t).collect();
    for expected in ["Passport.CREATE", "Passport.UPDATE", "Passport.DELETE"] {
        assert!(types.iter().any(|t| t == expected), "{expected}: {types:?}");
    }
}

// ----- language exams ----------------------------------------------------------------------

#[tokio::test]
async fn language_exams_are_listed_by_name_filtered_and_unique_case_insensitively() {
    let w = world().await;
    for name in ["PTE Academic", "TOEFL", "Duolingo"] {
        let (status, json) = w
            .send(
                Method::POST,
                "/api/v1/language-exams/",
                &w.root,
                json!({"name": name}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        assert_eq!(json["validity_term"], 0);
        assert_eq!(json["description"], "");
    }
    let (_, page) = w.get("/api/v1/language-exams/", &w.root).await;
    let names: Vec<&str> = page["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|e| e["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["Duolingo", "IELTS", "PTE Academic", "TOEFL"]);
    let (_, page) = w.get("/api/v1/language-exams/?name=te", &w.root).await;
    assert_eq!(page["count"], 1, "{page}");
    let (status, json) = w
        .send(
            Method::POST,
            "/api/v1/language-exams/",
            &w.root,
            json!({"name": "ielts"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    assert!(json["name"].is_array(), "{json}");
    let (status, json) = w
        .send(
            Method::PATCH,
            &format!("/api/v1/language-exams/{}/", w.ielts),
            &w.root,
            json!({"name": "toefl"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    for bad in [json!(101), json!(-1), json!("many"), json!(1.5)] {
        let (status, json) = w
            .send(
                Method::POST,
                "/api/v1/language-exams/",
                &w.root,
                json!({"name": "OET", "validity_term": bad}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {json}");
    }
    let (status, _) = w
        .send(
            Method::PUT,
            &format!("/api/v1/language-exams/{}/", w.ielts),
            &w.root,
            json!({"validity_term": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "PUT needs the name");
    assert_eq!(w.count("language_exams").await, 4);
}

#[tokio::test]
async fn an_exam_in_use_cannot_be_deleted_and_an_unused_one_can() {
    let w = world().await;
    w.proficiency(w.client_a).await;
    let path = format!("/api/v1/language-exams/{}/", w.ielts);
    let (status, _, json) = w
        .app
        .call(Method::DELETE, SLUG, &path, Some(&w.root), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{json}");
    assert!(
        json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("cannot be deleted")),
        "{json}"
    );
    assert_eq!(w.count("language_exams").await, 1);
    let (_, exam) = w
        .send(
            Method::POST,
            "/api/v1/language-exams/",
            &w.root,
            json!({"name": "OET"}),
        )
        .await;
    let unused = format!("/api/v1/language-exams/{}/", exam["id"]);
    assert_eq!(w.delete(&unused, &w.root).await, StatusCode::NO_CONTENT);
    assert_eq!(w.get(&unused, &w.root).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn consultants_read_the_exam_list_but_only_holders_of_the_write_permissions_change_it() {
    let w = world().await;
    let nobody = w.app.token(SLUG, "nobody").await;
    assert_eq!(
        w.get("/api/v1/language-exams/", &w.cons_a).await.0,
        StatusCode::OK
    );
    assert_eq!(
        w.get("/api/v1/language-exams/", &nobody).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, _) = w
        .send(
            Method::POST,
            "/api/v1/language-exams/",
            &w.cons_a,
            json!({"name": "OET"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let path = format!("/api/v1/language-exams/{}/", w.ielts);
    let (status, _) = w
        .send(Method::PATCH, &path, &w.cons_a, json!({"name": "X"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(w.delete(&path, &w.cons_a).await, StatusCode::FORBIDDEN);
    assert_eq!(w.count("language_exams").await, 1);
}

// ----- scope -------------------------------------------------------------------------------

#[tokio::test]
async fn a_consultant_of_branch_a_gets_404_for_the_records_of_a_branch_c_client() {
    let w = world().await;
    let p = w.proficiency(w.client_c).await;
    let q = w.qualification(w.client_c).await;
    let e = w.employment(w.client_c).await;
    w.passport(w.client_c).await;
    for path in [
        format!("/api/v1/language-proficiencies/{p}/"),
        format!("/api/v1/qualifications/{q}/"),
        format!("/api/v1/employments/{e}/"),
        format!("/api/v1/passports/{}/", w.client_c),
    ] {
        let (status, json) = w.get(&path, &w.cons_a).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(json["detail"], "Not found.", "{path}");
        let (status, _) = w.send(Method::PATCH, &path, &w.cons_a, json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "PATCH {path}");
        assert_eq!(
            w.delete(&path, &w.cons_a).await,
            StatusCode::NOT_FOUND,
            "DELETE {path}"
        );
    }
    assert_eq!(w.count("proficiencies").await, 1);
    assert_eq!(w.count("qualifications").await, 1);
    assert_eq!(w.count("employments").await, 1);
    assert_eq!(w.count("passports").await, 1);
}

#[tokio::test]
async fn lists_show_what_the_caller_may_see_by_client_branch() {
    let w = world().await;
    let mut ids = Vec::new();
    for client in [w.client_a, w.client_b, w.client_c] {
        ids.push((
            w.proficiency(client).await,
            w.qualification(client).await,
            w.employment(client).await,
        ));
        w.passport(client).await;
    }
    let pick = |which: usize, of: &[usize]| -> BTreeSet<i64> {
        of.iter()
            .map(|i| match which {
                0 => ids[*i].0,
                1 => ids[*i].1,
                _ => ids[*i].2,
            })
            .collect()
    };
    let clients = |of: &[usize]| -> BTreeSet<i64> {
        let all = [w.client_a, w.client_b, w.client_c];
        of.iter().map(|i| all[*i]).collect()
    };
    for (token, visible) in [
        (&w.root, &[0usize, 1, 2][..]),
        (&w.rm_north, &[0, 1][..]),
        (&w.cons_a, &[0][..]),
    ] {
        assert_eq!(
            w.ids("/api/v1/language-proficiencies/", token, "id").await,
            pick(0, visible)
        );
        assert_eq!(
            w.ids("/api/v1/qualifications/", token, "id").await,
            pick(1, visible)
        );
        assert_eq!(
            w.ids("/api/v1/employments/", token, "id").await,
            pick(2, visible)
        );
        assert_eq!(
            w.ids("/api/v1/passports/", token, "client_id").await,
            clients(visible)
        );
    }
    // A filter on an out-of-scope client finds nothing rather than leaking it.
    let path = format!("/api/v1/qualifications/?client_id={}", w.client_c);
    assert!(w.ids(&path, &w.cons_a, "id").await.is_empty());
    // The region manager reaches a North client's records, not a South one's.
    let (status, _) = w
        .get(&format!("/api/v1/employments/{}/", ids[1].2), &w.rm_north)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = w
        .get(&format!("/api/v1/employments/{}/", ids[2].2), &w.rm_north)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_records_of_a_soft_deleted_client_are_hidden() {
    let w = world().await;
    let p = w.proficiency(w.client_a).await;
    w.passport(w.client_a).await;
    assert_eq!(
        w.delete(&format!("/api/v1/clients/{}/", w.client_a), &w.root)
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        w.get(&format!("/api/v1/language-proficiencies/{p}/"), &w.root)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        w.get(&format!("/api/v1/passports/{}/", w.client_a), &w.root)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert!(w
        .ids("/api/v1/language-proficiencies/", &w.root, "id")
        .await
        .is_empty());
    assert!(w
        .ids("/api/v1/passports/", &w.root, "client_id")
        .await
        .is_empty());
    // Nor can records be added to it.
    let (status, json) = w
        .send(
            Method::POST,
            "/api/v1/qualifications/",
            &w.root,
            json!({"client_id": w.client_a, "course": "X", "country": "AU"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
}

#[tokio::test]
async fn an_out_of_scope_body_client_is_refused_like_an_unknown_one_and_nothing_is_written() {
    let w = world().await;
    let unknown = w.client_c + 1000;
    let mut messages = Vec::new();
    for client in [w.client_c, unknown] {
        for (path, body) in [
            (
                "/api/v1/language-proficiencies/",
                w.proficiency_body(client),
            ),
            (
                "/api/v1/qualifications/",
                json!({"client_id": client, "course": "BSc", "country": "NP"}),
            ),
            (
                "/api/v1/employments/",
                json!({"client_id": client, "employer_name": "A", "position": "B",
                       "start_date": "2020-01-01", "end_date": "2021-01-01", "country": "AU"}),
            ),
            ("/api/v1/passports/upsert/", passport_body(client)),
        ] {
            let (status, json) = w.send(Method::POST, path, &w.cons_a, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {client}: {json}");
            messages.push(
                json["client_id"][0]
                    .as_str()
                    .expect("a client_id error")
                    .replace(&client.to_string(), "N"),
            );
        }
    }
    assert!(messages.windows(2).all(|m| m[0] == m[1]), "{messages:?}");
    // Moving a record to an out-of-scope client is refused too.
    let (status, json) = w
        .send(
            Method::POST,
            "/api/v1/qualifications/",
            &w.cons_a,
            json!({"client_id": w.client_a, "course": "BSc", "country": "NP"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    let path = format!("/api/v1/qualifications/{}/", json["id"]);
    let (status, _) = w
        .send(
            Method::PATCH,
            &path,
            &w.cons_a,
            json!({"client_id": w.client_c}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, json) = w.get(&path, &w.root).await;
    assert_eq!(json["client_id"], w.client_a);
    assert_eq!(w.count("proficiencies").await, 0);
    assert_eq!(w.count("qualifications").await, 1);
    assert_eq!(w.count("employments").await, 0);
    assert_eq!(w.count("passports").await, 0);
}

#[tokio::test]
async fn a_user_without_the_section_permission_gets_403() {
    let w = world().await;
    let nobody = w.app.token(SLUG, "nobody").await;
    for path in [
        "/api/v1/language-proficiencies/",
        "/api/v1/qualifications/",
        "/api/v1/employments/",
        "/api/v1/passports/",
    ] {
        assert_eq!(
            w.get(path, &nobody).await.0,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let (status, _) = w
        .send(
            Method::POST,
            "/api/v1/passports/upsert/",
            &nobody,
            passport_body(w.client_a),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

// ----- validation --------------------------------------------------------------------------

#[tokio::test]
async fn bad_proficiency_bodies_are_400s_and_write_nothing() {
    let w = world().await;
    let id = w.proficiency(w.client_a).await;
    let base = w.proficiency_body(w.client_a);
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    let cases = [
        ("overall_score", with("overall_score", json!(9.5))),
        ("overall_score", with("overall_score", json!(-1))),
        ("speaking_score", with("speaking_score", json!("7.25"))),
        ("reading_score", with("reading_score", json!("high"))),
        ("writing_score", with("writing_score", json!([7]))),
        ("test_date", with("test_date", json!("2024-02-30"))),
        ("test_date", with("test_date", json!(20240301))),
        ("test_name_id", with("test_name_id", json!(w.ielts + 99))),
        ("test_name_id", with("test_name_id", json!("IELTS"))),
        ("client_id", with("client_id", json!("abc"))),
        ("client_id", with("client_id", json!(null))),
    ];
    for (field, body) in cases {
        let (status, json) = w
            .send(
                Method::POST,
                "/api/v1/language-proficiencies/",
                &w.root,
                body.clone(),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {json}");
        assert!(json[field].is_array(), "{field}: {json}");
        let (status, _) = w
            .send(
                Method::PATCH,
                &format!("/api/v1/language-proficiencies/{id}/"),
                &w.root,
                json!({ field: body[field].clone() }),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "PATCH {field} {}",
            body[field]
        );
    }
    let (status, _) = w
        .send(
            Method::POST,
            "/api/v1/language-proficiencies/",
            &w.root,
            json!([1]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(w.count("proficiencies").await, 1);
    let (_, item) = w
        .get(&format!("/api/v1/language-proficiencies/{id}/"), &w.root)
        .await;
    assert_eq!(item["overall_score"], "7.5", "unchanged");
}

#[tokio::test]
async fn dates_out_of_order_and_over_long_texts_are_400s_and_write_nothing() {
    let w = world().await;
    let long = "x".repeat(201);
    let cases = [
        (
            "/api/v1/employments/",
            json!({"client_id": w.client_a, "employer_name": "A", "position": "B",
                   "start_date": "2021-01-02", "end_date": "2021-01-01", "country": "AU"}),
            "end_date",
        ),
        (
            "/api/v1/employments/",
            json!({"client_id": w.client_a, "employer_name": long, "position": "B",
                   "start_date": "2021-01-01", "end_date": "2021-01-01", "country": "AU"}),
            "employer_name",
        ),
        (
            "/api/v1/employments/",
            json!({"client_id": w.client_a, "employer_name": "A", "position": "B",
                   "start_date": "2021-01-01", "end_date": "2021-01-01", "country": "Australia"}),
            "country",
        ),
        (
            "/api/v1/qualifications/",
            json!({"client_id": w.client_a, "course": "BSc", "country": "NP",
                   "enroll_date": "2020-01-01", "completion_date": "2019-12-31"}),
            "completion_date",
        ),
        (
            "/api/v1/qualifications/",
            json!({"client_id": w.client_a, "course": "x".repeat(101), "country": "NP"}),
            "course",
        ),
        (
            "/api/v1/qualifications/",
            json!({"client_id": w.client_a, "course": "  ", "country": "NP"}),
            "course",
        ),
        (
            "/api/v1/passports/",
            json!({"client_id": w.client_a, "passport_no": "x".repeat(21),
                   "passport_country": "NP", "country_of_birth": "NP", "nationality": "NP"}),
            "passport_no",
        ),
        (
            "/api/v1/passports/",
            json!({"client_id": w.client_a, "passport_no": "P1", "passport_country": "NP",
                   "country_of_birth": "NP", "nationality": "NP",
                   "date_of_issue": "2020-01-01", "date_of_expiry": "2019-01-01"}),
            "date_of_expiry",
        ),
        (
            "/api/v1/passports/",
            json!({"client_id": w.client_a, "passport_no": "P1", "passport_country": "NP",
                   "country_of_birth": "NP"}),
            "nationality",
        ),
    ];
    for (path, body, field) in cases {
        let (status, json) = w.send(Method::POST, path, &w.root, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {field}: {json}");
        assert!(json[field].is_array(), "{path} {field}: {json}");
    }
    // A PATCH that puts the end before the current start is refused as well.
    let e = w.employment(w.client_a).await;
    let (status, json) = w
        .send(
            Method::PATCH,
            &format!("/api/v1/employments/{e}/"),
            &w.root,
            json!({"end_date": "2000-01-01"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    assert_eq!(w.count("employments").await, 1);
    assert_eq!(w.count("qualifications").await, 0);
    assert_eq!(w.count("passports").await, 0);
}

#[tokio::test]
async fn bad_list_filters_are_400s_and_ids_that_are_not_numbers_are_404s() {
    let w = world().await;
    for path in [
        "/api/v1/language-proficiencies/?client_id=abc",
        "/api/v1/language-proficiencies/?test_name_id=x",
        "/api/v1/language-proficiencies/?test_date=yesterday",
        "/api/v1/passports/?client_id=1.5",
    ] {
        assert_eq!(
            w.get(path, &w.root).await.0,
            StatusCode::BAD_REQUEST,
            "{path}"
        );
    }
    for path in [
        "/api/v1/language-proficiencies/abc/",
        "/api/v1/qualifications/0/",
        "/api/v1/employments/-1/",
        "/api/v1/passports/abc/",
        "/api/v1/language-exams/99999/",
    ] {
        assert_eq!(
            w.get(path, &w.root).await.0,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    w.proficiency(w.client_a).await;
    let path = format!(
        "/api/v1/language-proficiencies/?test_name_id={}&test_date=2024-03-01",
        w.ielts
    );
    assert_eq!(w.ids(&path, &w.root, "id").await.len(), 1);
    let path = "/api/v1/language-proficiencies/?test_date=2024-03-02";
    assert!(w.ids(path, &w.root, "id").await.is_empty());
}

// ----- events and timeline -----------------------------------------------------------------

#[tokio::test]
async fn every_write_records_its_event_with_the_client_id_in_its_state() {
    let w = world().await;
    let p = w.proficiency(w.client_a).await;
    let q = w.qualification(w.client_a).await;
    let e = w.employment(w.client_a).await;
    w.passport(w.client_a).await;
    for path in [
        format!("/api/v1/language-proficiencies/{p}/"),
        format!("/api/v1/qualifications/{q}/"),
        format!("/api/v1/employments/{e}/"),
    ] {
        // A PATCH that changes nothing records nothing.
        let (status, _) = w.send(Method::PATCH, &path, &w.root, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = w
            .send(Method::PATCH, &path, &w.root, json!({"country": "NZ"}))
            .await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(w.delete(&path, &w.root).await, StatusCode::NO_CONTENT);
    }
    let (status, _) = w
        .send(
            Method::PATCH,
            &format!(
                "/api/v1/language-proficiencies/{}/",
                w.proficiency(w.client_a).await
            ),
            &w.root,
            json!({"overall_score": 8}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let events = w.events().await;
    let of = |t: &str| events.iter().filter(|(e, _)| e == t).count();
    assert_eq!(of("Proficiency.CREATE"), 2);
    assert_eq!(of("Proficiency.UPDATE"), 1);
    assert_eq!(of("Proficiency.DELETE"), 1);
    assert_eq!(of("Qualification.CREATE"), 1);
    assert_eq!(of("Qualification.UPDATE"), 1);
    assert_eq!(of("Qualification.DELETE"), 1);
    assert_eq!(of("Employment.CREATE"), 1);
    assert_eq!(of("Employment.UPDATE"), 1);
    assert_eq!(of("Employment.DELETE"), 1);
    assert_eq!(of("Passport.CREATE"), 1);
    assert_eq!(of("LanguageExam.CREATE"), 1);
    for (event_type, state) in &events {
        if !event_type.starts_with("Client.") && !event_type.starts_with("LanguageExam.") {
            assert_eq!(state["client_id"], w.client_a, "{event_type}: {state}");
        }
    }
}

/// Waits (bounded) until client `client`'s timeline has an entry of `activity_type`; returns it.
async fn timeline_entry(w: &World, client: i64, activity_type: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, page) = w
            .get(
                &format!("/api/v1/clients/{client}/timeline/?activity_type={activity_type}"),
                &w.root,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        if let Some(entry) = page["results"].get(0) {
            return entry.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {activity_type} entry appeared"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn passports_proficiencies_and_qualifications_write_timeline_entries() {
    let (app, bus) = TestApp::with_bus(&[SLUG]).await;
    let w = world_on(app).await;
    w.passport(w.client_a).await;
    w.proficiency(w.client_a).await;
    w.qualification(w.client_a).await;
    w.employment(w.client_a).await;
    let root_id = w
        .app
        .tenant_count(SLUG, "SELECT id FROM users WHERE username = 'root'")
        .await;
    for (activity_type, display, description) in [
        ("PASSPORT_UPDATED", "Passport Updated", "Passport updated"),
        (
            "PROFICIENCY_ADDED",
            "Proficiency Added",
            "IELTS result added",
        ),
        (
            "QUALIFICATION_ADDED",
            "Qualification Added",
            "Qualification added: BSc Computing",
        ),
    ] {
        let entry = timeline_entry(&w, w.client_a, activity_type).await;
        assert_eq!(entry["activity_type_display"], display, "{entry}");
        assert_eq!(entry["description"], description, "{entry}");
        assert_eq!(entry["performed_by"], root_id, "{entry}");
        assert_eq!(entry["metadata"]["client_id"], w.client_a, "{entry}");
    }
    // A passport update writes another entry; an unchanged upsert writes none.
    let mut body = passport_body(w.client_a);
    body["passport_no"] = json!("PZ1");
    let (status, _) = w
        .send(
            Method::POST,
            "/api/v1/passports/upsert/",
            &w.root,
            body.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = w
        .send(Method::POST, "/api/v1/passports/upsert/", &w.root, body)
        .await;
    assert_eq!(status, StatusCode::OK);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let pending: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM public.leopard_events WHERE state <> 'completed'",
        )
        .fetch_one(w.app.tenancy.db.pool())
        .await
        .expect("pending");
        if pending == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "events never completed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let passports = w
        .app
        .tenant_count(
            SLUG,
            "SELECT count(*) FROM client_activities WHERE activity_type = 'PASSPORT_UPDATED'",
        )
        .await;
    assert_eq!(passports, 2);
    let employments = w
        .app
        .tenant_count(
            SLUG,
            "SELECT count(*) FROM client_activities
              WHERE activity_type NOT IN ('CLIENT_CREATED', 'PASSPORT_UPDATED',
                                          'PROFICIENCY_ADDED', 'QUALIFICATION_ADDED')",
        )
        .await;
    assert_eq!(employments, 0, "employments write no timeline entry");
    bus.shutdown().await;
}
