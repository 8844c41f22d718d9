//! `/api/v1/application-types/`, `/api/v1/stages/` and `/api/v1/college-applications/` over
//! HTTP against a real PostgreSQL database: wire fields, stage positions kept 1..n under
//! concurrent inserts, deletes and reorders, create validation (institute parts, agent kinds)
//! writing nothing, scope through the client's branch, stage moves, stage counts and dashboard
//! numbers against independently computed counts, and the events' timeline entries and
//! notifications.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Org, TestApp};
use http::{Method, StatusCode};
use leopard_rbac::Role;
use serde_json::{json, Value};

const SLUG: &str = "acme";

/// CollegeApplicationOutput's fields per original-backend.md §2.17.
const APPLICATION_FIELDS: &[&str] = &[
    "id",
    "application_type",
    "application_type_title",
    "stage",
    "stage_name",
    "stage_position",
    "is_final_stage",
    "client",
    "client_name",
    "institute",
    "institute_name",
    "course",
    "course_name",
    "start_date",
    "intake_date",
    "location",
    "location_display",
    "finish_date",
    "total_tuition_fee",
    "student_id",
    "super_agent",
    "super_agent_name",
    "sub_agent",
    "sub_agent_name",
    "assigned_to",
    "assigned_to_name",
    "notes",
    "created_by",
    "created_at",
    "updated_by",
    "updated_at",
];

/// StageOutput's fields per §2.17.
const STAGE_FIELDS: &[&str] = &[
    "id",
    "application_type",
    "application_type_title",
    "stage_name",
    "position",
    "description",
    "is_final_stage",
    "created_by",
    "created_at",
    "updated_by",
    "updated_at",
];

/// ApplicationTypeOutput's fields per §2.17 (plus `deleted_at`).
const TYPE_FIELDS: &[&str] = &[
    "id",
    "title",
    "currency",
    "tax_name",
    "tax_percentage",
    "description",
    "is_active",
    "stages_count",
    "has_applications",
    "created_by",
    "created_by_name",
    "created_at",
    "updated_by",
    "updated_at",
    "deleted_at",
];

/// One institute's parts.
#[derive(Debug, Clone, Copy)]
struct Inst {
    id: i64,
    course: i64,
    location: i64,
    intake: i64,
}

/// An org with a super admin (`root`), branch admins of A (`ba_a`) and C (`ba_c`), a
/// consultant of A (`cons_a`), institutes X and Y with a course, campus and intake each, a
/// super and a sub agent, an application type "Undergraduate" with stages Applied, Offer,
/// Enrolled, and a client in A and one in C.
struct World {
    app: TestApp,
    org: Org,
    root: String,
    ba_a: i64,
    x: Inst,
    y: Inst,
    super_agent: i64,
    sub_agent: i64,
    app_type: i64,
    stages: Vec<i64>,
    client_a: i64,
    client_c: i64,
}

/// Runs `sql` (returning one id) and returns the id.
async fn one(conn: &mut sqlx::PgConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(conn)
        .await
        .expect("seed row")
}

async fn seed_institute(app: &TestApp, name: &str, intake: &str) -> Inst {
    let mut tx = app.context(SLUG).begin().await.expect("tx");
    let id = one(
        &mut tx,
        &format!(
            "INSERT INTO institutes (name, short_name) VALUES ('{name}', '{name}') RETURNING id"
        ),
    )
    .await;
    let level = one(
        &mut tx,
        &format!("INSERT INTO course_levels (name) VALUES ('Level {name}') RETURNING id"),
    )
    .await;
    let broad = one(
        &mut tx,
        &format!("INSERT INTO broad_fields (name) VALUES ('Broad {name}') RETURNING id"),
    )
    .await;
    let narrow = one(
        &mut tx,
        &format!(
            "INSERT INTO narrow_fields (name, broad_field_id) VALUES ('Narrow {name}', {broad})
         RETURNING id"
        ),
    )
    .await;
    let course = one(
        &mut tx,
        &format!(
            "INSERT INTO courses (institute_id, name, level_id, broad_field_id, narrow_field_id,
                              total_tuition_fee, coe_fee)
         VALUES ({id}, 'Course {name}', {level}, {broad}, {narrow}, 30000, 250) RETURNING id"
        ),
    )
    .await;
    let location = one(
        &mut tx,
        &format!(
            "INSERT INTO institute_locations (institute_id, state, country)
         VALUES ({id}, 'NSW', 'AU') RETURNING id"
        ),
    )
    .await;
    let intake = one(
        &mut tx,
        &format!(
            "INSERT INTO institute_intakes (institute_id, intake_date) VALUES ({id}, '{intake}')
         RETURNING id"
        ),
    )
    .await;
    tx.commit().await.expect("commit");
    Inst {
        id,
        course,
        location,
        intake,
    }
}

async fn build(app: TestApp) -> World {
    let org = app.seed_org(SLUG).await;
    app.user(SLUG, "root", Some(Role::SuperAdmin), &[], &[])
        .await;
    let ba_a = app
        .user(SLUG, "ba_a", Some(Role::BranchAdmin), &[org.a], &[])
        .await;
    app.user(SLUG, "ba_c", Some(Role::BranchAdmin), &[org.c], &[])
        .await;
    app.user(SLUG, "cons_a", Some(Role::Consultant), &[org.a], &[])
        .await;
    let root = app.token(SLUG, "root").await;
    let x = seed_institute(&app, "X", "2030-02-01").await;
    let y = seed_institute(&app, "Y", "2030-07-01").await;
    let mut agents = Vec::new();
    for (name, kind) in [("Globe", "SUPER_AGENT"), ("Local", "SUB_AGENT")] {
        let (status, _, a) = app
            .call(
                Method::POST,
                SLUG,
                "/api/v1/agents/",
                Some(&root),
                Some(json!({"agent_name": name, "agent_type": kind})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{a}");
        agents.push(a["id"].as_i64().unwrap_or_default());
    }
    let (status, _, t) = app
        .call(
            Method::POST,
            SLUG,
            "/api/v1/application-types/",
            Some(&root),
            Some(
                json!({"title": "Undergraduate", "currency": "aud", "tax_name": "GST",
                        "tax_percentage": "10"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let app_type = t["id"].as_i64().unwrap_or_default();
    let mut stages = Vec::new();
    for name in ["Applied", "Offer", "Enrolled"] {
        let (status, _, s) = app
            .call(
                Method::POST,
                SLUG,
                "/api/v1/stages/",
                Some(&root),
                Some(json!({"application_type_id": app_type, "stage_name": name})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{s}");
        stages.push(s["id"].as_i64().unwrap_or_default());
    }
    let mut clients = Vec::new();
    for (name, branch) in [("Ana", org.a), ("Cy", org.c)] {
        let (status, _, c) = app
            .call(
                Method::POST,
                SLUG,
                "/api/v1/clients/",
                Some(&root),
                Some(
                    json!({"first_name": name, "last_name": "Client", "gender": "FEMALE",
                            "country": "AU", "branch_id": branch}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{c}");
        clients.push(c["id"].as_i64().unwrap_or_default());
    }
    World {
        app,
        org,
        root,
        ba_a,
        x,
        y,
        super_agent: agents[0],
        sub_agent: agents[1],
        app_type,
        stages,
        client_a: clients[0],
        client_c: clients[1],
    }
}

async fn world() -> World {
    build(TestApp::new(&[SLUG]).await).await
}

impl World {
    /// A valid create body for `client` at institute X.
    fn body(&self, client: i64) -> Value {
        json!({
            "application_type_id": self.app_type,
            "client_id": client,
            "institute_id": self.x.id,
            "course_id": self.x.course,
            "location_id": self.x.location,
            "start_date_id": self.x.intake,
            "total_tuition_fee": "32000.50",
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, json) = self.app.call(method, SLUG, path, Some(token), body).await;
        (status, json)
    }

    async fn create(&self, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            "/api/v1/college-applications/",
            token,
            Some(body),
        )
        .await
    }

    async fn patch(&self, token: &str, id: &Value, body: Value) -> (StatusCode, Value) {
        self.call(
            Method::PATCH,
            &format!("/api/v1/college-applications/{id}/"),
            token,
            Some(body),
        )
        .await
    }

    async fn count(&self, sql: &str) -> i64 {
        self.app.tenant_count(SLUG, sql).await
    }

    /// The positions of type `of_type`'s stages, by position.
    async fn positions(&self, of_type: i64) -> Vec<i64> {
        let (status, list) = self
            .call(
                Method::GET,
                &format!("/api/v1/stages/?application_type_id={of_type}"),
                &self.root,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        list.as_array()
            .map(|a| a.iter().filter_map(|s| s["position"].as_i64()).collect())
            .unwrap_or_default()
    }
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn set(fields: &[&str]) -> BTreeSet<String> {
    fields.iter().map(|f| (*f).to_owned()).collect()
}

#[tokio::test]
async fn an_application_type_has_the_original_fields_filters_and_cannot_be_deleted_while_used() {
    let w = world().await;
    let (status, page) = w
        .call(Method::GET, "/api/v1/application-types/", &w.root, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let row = &page["results"][0];
    assert_eq!(keys(row), set(TYPE_FIELDS));
    assert_eq!(row["currency"], "AUD");
    assert_eq!(row["tax_percentage"], "10.00");
    assert_eq!(row["stages_count"], 3);
    assert_eq!(row["has_applications"], false);

    let (status, _) = w
        .call(
            Method::PATCH,
            &format!("/api/v1/application-types/{}/", w.app_type),
            &w.root,
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, active) = w
        .call(
            Method::GET,
            "/api/v1/application-types/?is_active=true",
            &w.root,
            None,
        )
        .await;
    assert_eq!(active["count"], 0);
    let (_, titled) = w
        .call(
            Method::GET,
            "/api/v1/application-types/?title=graduate",
            &w.root,
            None,
        )
        .await;
    assert_eq!(titled["count"], 1);

    for bad in [
        json!({"title": ""}),
        json!({"title": "T", "tax_percentage": "100.5"}),
        json!({"title": "T", "currency": "DOLLAR"}),
        json!({"title": "T", "is_active": "maybe"}),
    ] {
        let (status, reply) = w
            .call(
                Method::POST,
                "/api/v1/application-types/",
                &w.root,
                Some(bad.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad} → {reply}");
    }

    // Inactive types still take applications; a type with one cannot be deleted.
    let (status, created) = w.create(&w.root, w.body(w.client_a)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let path = format!("/api/v1/application-types/{}/", w.app_type);
    let (status, reply) = w.call(Method::DELETE, &path, &w.root, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    let (status, _) = w
        .call(
            Method::DELETE,
            &format!("/api/v1/college-applications/{}/", created["id"]),
            &w.root,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = w.call(Method::DELETE, &path, &w.root, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = w.call(Method::GET, &path, &w.root, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn stages_are_a_bare_array_and_insert_delete_and_reorder_keep_positions_one_to_n() {
    let w = world().await;
    let (status, list) = w.call(Method::GET, "/api/v1/stages/", &w.root, None).await;
    assert_eq!(status, StatusCode::OK);
    let items = list.as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 3);
    assert_eq!(keys(&items[0]), set(STAGE_FIELDS));
    assert_eq!(items[2]["is_final_stage"], true);
    assert_eq!(items[0]["is_final_stage"], false);

    // Insert at position 2 shifts Offer and Enrolled down.
    let (status, visa) = w
        .call(
            Method::POST,
            "/api/v1/stages/",
            &w.root,
            Some(
                json!({"application_type_id": w.app_type, "stage_name": "Visa",
                        "position": 2}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{visa}");
    assert_eq!(visa["position"], 2);
    assert_eq!(w.positions(w.app_type).await, vec![1, 2, 3, 4]);
    // A position beyond the end appends.
    let (_, last) = w
        .call(
            Method::POST,
            "/api/v1/stages/",
            &w.root,
            Some(
                json!({"application_type_id": w.app_type, "stage_name": "Alumni",
                        "position": 99}),
            ),
        )
        .await;
    assert_eq!(last["position"], 5);
    assert_eq!(last["is_final_stage"], true);

    // Reorder: Enrolled first; the others keep their relative order.
    let (status, ordered) = w
        .call(
            Method::POST,
            "/api/v1/stages/reorder/",
            &w.root,
            Some(json!({"application_type_id": w.app_type,
                        "stages": [{"stage_id": w.stages[2], "new_position": 1}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ordered}");
    let names: Vec<&str> = ordered
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["stage_name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["Enrolled", "Applied", "Visa", "Offer", "Alumni"]);

    // A foreign stage, a duplicate position or a position out of range is a 400, nothing moves.
    let (status, other) = w
        .call(
            Method::POST,
            "/api/v1/application-types/",
            &w.root,
            Some(json!({"title": "Diploma"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, foreign) = w
        .call(
            Method::POST,
            "/api/v1/stages/",
            &w.root,
            Some(json!({"application_type_id": other["id"], "stage_name": "Start"})),
        )
        .await;
    for stages in [
        json!([{"stage_id": foreign["id"], "new_position": 1}]),
        json!([{"stage_id": w.stages[0], "new_position": 1},
               {"stage_id": w.stages[1], "new_position": 1}]),
        json!([{"stage_id": w.stages[0], "new_position": 6}]),
        json!("nope"),
    ] {
        let (status, reply) = w
            .call(
                Method::POST,
                "/api/v1/stages/reorder/",
                &w.root,
                Some(json!({"application_type_id": w.app_type, "stages": stages})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    }
    let (_, again) = w
        .call(
            Method::GET,
            &format!("/api/v1/stages/?application_type_id={}", w.app_type),
            &w.root,
            None,
        )
        .await;
    assert_eq!(again, ordered);

    // Delete closes the gap; a stage holding a live application cannot be deleted.
    let (status, _) = w
        .call(
            Method::DELETE,
            &format!("/api/v1/stages/{}/", visa["id"]),
            &w.root,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(w.positions(w.app_type).await, vec![1, 2, 3, 4]);
    let (status, created) = w.create(&w.root, w.body(w.client_a)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["stage"], w.stages[2], "Enrolled is now first");
    let (status, reply) = w
        .call(
            Method::DELETE,
            &format!("/api/v1/stages/{}/", w.stages[2]),
            &w.root,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(w.positions(w.app_type).await, vec![1, 2, 3, 4]);

    // PATCH renames and moves one stage.
    let (status, moved) = w
        .call(
            Method::PATCH,
            &format!("/api/v1/stages/{}/", w.stages[0]),
            &w.root,
            Some(json!({"stage_name": "Lodged", "position": 4})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["stage_name"], "Lodged");
    assert_eq!(moved["position"], 4);
    assert_eq!(moved["is_final_stage"], true);
    assert_eq!(w.positions(w.app_type).await, vec![1, 2, 3, 4]);
}

#[tokio::test]
async fn concurrent_stage_inserts_deletes_and_reorders_keep_positions_unique_and_all_succeed() {
    let w = world().await;
    let mut ids = w.stages.clone();
    for i in 0..5 {
        let (_, s) = w
            .call(
                Method::POST,
                "/api/v1/stages/",
                &w.root,
                Some(json!({"application_type_id": w.app_type, "stage_name": format!("S{i}")})),
            )
            .await;
        ids.push(s["id"].as_i64().unwrap_or_default());
    }
    // 8 stages; run 24 writes at once: inserts at the front, deletes of the extras, reorders.
    let mut calls = Vec::new();
    for i in 0..8_i64 {
        let (method, path, body) = match i % 3 {
            0 => (
                Method::POST,
                "/api/v1/stages/".to_owned(),
                Some(json!({"application_type_id": w.app_type,
                            "stage_name": format!("New{i}"), "position": 1})),
            ),
            1 => (
                Method::DELETE,
                format!("/api/v1/stages/{}/", ids[3 + (i as usize % 5)]),
                None,
            ),
            _ => (
                Method::POST,
                "/api/v1/stages/reorder/".to_owned(),
                Some(json!({"application_type_id": w.app_type,
                            "stages": [{"stage_id": ids[0], "new_position": 2},
                                       {"stage_id": ids[1], "new_position": 1}]})),
            ),
        };
        calls.push((method, path, body));
    }
    let mut handles = Vec::new();
    for round in 0..3 {
        for (method, path, body) in calls.clone() {
            let app_router = w.app.router.clone();
            let token = w.root.clone();
            let _ = round;
            handles.push(tokio::spawn(async move {
                let mut builder = http::Request::builder()
                    .method(method)
                    .uri(path)
                    .header("host", format!("{SLUG}.localhost"))
                    .header("authorization", format!("Bearer {token}"));
                let body = match body {
                    Some(b) => {
                        builder = builder.header("content-type", "application/json");
                        axum::body::Body::from(b.to_string())
                    }
                    None => axum::body::Body::empty(),
                };
                let request = builder.body(body).expect("request");
                let response = tower::ServiceExt::oneshot(app_router, request)
                    .await
                    .expect("response");
                response.status()
            }));
        }
    }
    for handle in handles {
        let status = handle.await.expect("joined");
        // A delete of a stage another request already deleted is a 404; nothing else fails.
        assert!(
            matches!(
                status,
                StatusCode::OK
                    | StatusCode::CREATED
                    | StatusCode::NO_CONTENT
                    | StatusCode::NOT_FOUND
            ),
            "{status}"
        );
    }
    let positions = w.positions(w.app_type).await;
    let n = positions.len() as i64;
    assert_eq!(positions, (1..=n).collect::<Vec<_>>());
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM stages WHERE application_type_id = {}",
            w.app_type
        ))
        .await,
        n
    );
    // 3 original + 5 added + 9 inserts − 3 distinct deletes.
    assert_eq!(n, 3 + 5 + 9 - 3);
}

#[tokio::test]
async fn a_new_application_starts_in_the_first_stage_with_the_original_fields() {
    let w = world().await;
    let mut body = w.body(w.client_a);
    body["super_agent_id"] = json!(w.super_agent);
    body["sub_agent_id"] = json!(w.sub_agent);
    body["assigned_to_id"] = json!(w.ba_a);
    body["finish_date"] = json!("2033-12-01");
    body["student_id"] = json!("S-1");
    let (status, created) = w.create(&w.root, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(keys(&created), set(APPLICATION_FIELDS));
    assert_eq!(created["stage"], w.stages[0]);
    assert_eq!(created["stage_name"], "Applied");
    assert_eq!(created["stage_position"], 1);
    assert_eq!(created["is_final_stage"], false);
    assert_eq!(created["client_name"], "Ana Client");
    assert_eq!(created["institute_name"], "X");
    assert_eq!(created["course_name"], "Course X");
    assert_eq!(created["start_date"], w.x.intake);
    assert_eq!(created["intake_date"], "2030-02-01");
    assert_eq!(created["location_display"], "NSW, Australia");
    assert_eq!(created["total_tuition_fee"], "32000.50");
    assert_eq!(created["super_agent_name"], "Globe");
    assert_eq!(created["sub_agent_name"], "Local");
    assert_eq!(created["assigned_to_name"], "ba_a Tester");
    assert_eq!(created["finish_date"], "2033-12-01");
    let (status, got) = w
        .call(
            Method::GET,
            &format!("/api/v1/college-applications/{}/", created["id"]),
            &w.root,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, created);
    // A type without stages cannot take applications.
    let (_, empty) = w
        .call(
            Method::POST,
            "/api/v1/application-types/",
            &w.root,
            Some(json!({"title": "Empty"})),
        )
        .await;
    let mut body = w.body(w.client_a);
    body["application_type_id"] = empty["id"].clone();
    let (status, reply) = w.create(&w.root, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(reply["application_type_id"].is_array(), "{reply}");
}

#[tokio::test]
async fn parts_of_another_institute_or_an_agent_of_the_wrong_kind_are_a_400_and_write_nothing() {
    let w = world().await;
    let cases = [
        ("course_id", json!(w.y.course)),
        ("location_id", json!(w.y.location)),
        ("start_date_id", json!(w.y.intake)),
        ("super_agent_id", json!(w.sub_agent)),
        ("sub_agent_id", json!(w.super_agent)),
        ("course_id", json!(999_999)),
        ("institute_id", json!(999_999)),
        ("total_tuition_fee", json!("-1")),
        ("total_tuition_fee", json!("abc")),
        ("finish_date", json!("soon")),
        ("application_type_id", json!(999_999)),
    ];
    for (field, value) in cases {
        let mut body = w.body(w.client_a);
        body[field] = value.clone();
        let (status, reply) = w.create(&w.root, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}={value} → {reply}");
        assert!(reply[field][0].is_string(), "{field}: {reply}");
    }
    let mut body = w.body(w.client_a);
    body["course_id"] = json!(w.y.course);
    let (_, reply) = w.create(&w.root, body).await;
    assert_eq!(
        reply["course_id"][0],
        format!(
            "The course {} does not belong to institute {}.",
            w.y.course, w.x.id
        )
    );
    assert_eq!(
        w.count("SELECT count(*) FROM college_applications").await,
        0
    );
    assert_eq!(
        w.count(
            "SELECT count(*) FROM public.leopard_events WHERE entity_type = 'CollegeApplication'"
        )
        .await,
        0
    );
    // PATCH: switching the institute alone leaves the course of the old one: a 400.
    let (_, created) = w.create(&w.root, w.body(w.client_a)).await;
    let (status, reply) = w
        .patch(&w.root, &created["id"], json!({"institute_id": w.y.id}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    let (status, moved) = w
        .patch(
            &w.root,
            &created["id"],
            json!({"institute_id": w.y.id, "course_id": w.y.course,
                   "location_id": w.y.location, "start_date_id": w.y.intake}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["institute_name"], "Y");
}

#[tokio::test]
async fn an_out_of_scope_client_is_a_404_and_branch_admins_see_only_their_branch() {
    let w = world().await;
    let ba_a = w.app.token(SLUG, "ba_a").await;
    let ba_c = w.app.token(SLUG, "ba_c").await;
    let cons = w.app.token(SLUG, "cons_a").await;
    let (status, reply) = w.create(&ba_a, w.body(w.client_c)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
    let (status, in_a) = w.create(&ba_a, w.body(w.client_a)).await;
    assert_eq!(status, StatusCode::CREATED, "{in_a}");
    let (status, in_c) = w.create(&w.root, w.body(w.client_c)).await;
    assert_eq!(status, StatusCode::CREATED, "{in_c}");

    let ids = |page: &Value| -> Vec<i64> {
        page["results"]
            .as_array()
            .map(|a| a.iter().filter_map(|r| r["id"].as_i64()).collect())
            .unwrap_or_default()
    };
    let (_, page) = w
        .call(Method::GET, "/api/v1/college-applications/", &ba_a, None)
        .await;
    assert_eq!(ids(&page), vec![in_a["id"].as_i64().unwrap_or_default()]);
    let (_, page) = w
        .call(Method::GET, "/api/v1/college-applications/", &ba_c, None)
        .await;
    assert_eq!(ids(&page), vec![in_c["id"].as_i64().unwrap_or_default()]);
    let (_, page) = w
        .call(Method::GET, "/api/v1/college-applications/", &w.root, None)
        .await;
    assert_eq!(page["count"], 2);
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"notes": "x"}))),
        (Method::DELETE, None),
    ] {
        let (status, _) = w
            .call(
                method,
                &format!("/api/v1/college-applications/{}/", in_c["id"]),
                &ba_a,
                body,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    // Consultants hold no college-application permission by default (as in the original).
    let (status, _) = w
        .call(Method::GET, "/api/v1/college-applications/", &cons, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A soft-deleted client's applications disappear from lists.
    let (status, _) = w
        .call(
            Method::DELETE,
            &format!("/api/v1/clients/{}/", w.client_c),
            &w.root,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, page) = w
        .call(Method::GET, "/api/v1/college-applications/", &w.root, None)
        .await;
    assert_eq!(page["count"], 1);
    let _ = w.org;
}

#[tokio::test]
async fn a_stage_move_stays_within_the_type_and_zero_or_null_clears_links() {
    let w = world().await;
    let mut body = w.body(w.client_a);
    body["super_agent_id"] = json!(w.super_agent);
    body["assigned_to_id"] = json!(w.ba_a);
    let (_, created) = w.create(&w.root, body).await;
    let id = &created["id"];
    let (status, moved) = w.patch(&w.root, id, json!({"stage_id": w.stages[2]})).await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["stage_name"], "Enrolled");
    assert_eq!(moved["is_final_stage"], true);
    let (_, other) = w
        .call(
            Method::POST,
            "/api/v1/application-types/",
            &w.root,
            Some(json!({"title": "Diploma"})),
        )
        .await;
    let (_, foreign) = w
        .call(
            Method::POST,
            "/api/v1/stages/",
            &w.root,
            Some(json!({"application_type_id": other["id"], "stage_name": "Start"})),
        )
        .await;
    for bad in [
        json!({"stage_id": foreign["id"]}),
        json!({"application_type_id": other["id"]}),
        json!({"client_id": w.client_c}),
        json!({"total_tuition_fee": null}),
    ] {
        let (status, reply) = w.patch(&w.root, id, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad} → {reply}");
    }
    let (status, cleared) = w
        .patch(
            &w.root,
            id,
            json!({"super_agent_id": 0, "assigned_to_id": null, "finish_date": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cleared}");
    assert_eq!(cleared["super_agent"], Value::Null);
    assert_eq!(cleared["assigned_to"], Value::Null);
    assert_eq!(cleared["stage"], w.stages[2]);
    // PUT is not served.
    let (status, _) = w
        .call(
            Method::PUT,
            &format!("/api/v1/college-applications/{id}/"),
            &w.root,
            Some(w.body(w.client_a)),
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn stage_counts_and_dashboard_statistics_equal_independent_counts() {
    let w = world().await;
    // Seven applications: stages 1,1,2,3,3 in A, 3 and 2 in C; one of C's in Y.
    let mut made = Vec::new();
    for (client, stage, inst) in [
        (w.client_a, 0, w.x),
        (w.client_a, 0, w.x),
        (w.client_a, 1, w.x),
        (w.client_a, 2, w.x),
        (w.client_a, 2, w.x),
        (w.client_c, 2, w.y),
        (w.client_c, 1, w.x),
    ] {
        let mut body = w.body(client);
        body["institute_id"] = json!(inst.id);
        body["course_id"] = json!(inst.course);
        body["location_id"] = json!(inst.location);
        body["start_date_id"] = json!(inst.intake);
        let (status, created) = w.create(&w.root, body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        if stage > 0 {
            let (status, _) = w
                .patch(
                    &w.root,
                    &created["id"],
                    json!({"stage_id": w.stages[stage]}),
                )
                .await;
            assert_eq!(status, StatusCode::OK);
        }
        made.push(created);
    }
    // One soft-deleted application is never counted.
    let (status, _) = w
        .call(
            Method::DELETE,
            &format!("/api/v1/college-applications/{}/", made[0]["id"]),
            &w.root,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    for (user, branch_clause) in [
        ("root", "TRUE".to_owned()),
        ("ba_a", format!("c.branch_id = {}", w.org.a)),
        ("ba_c", format!("c.branch_id = {}", w.org.c)),
    ] {
        let token = w.app.token(SLUG, user).await;
        let (status, counts) = w
            .call(
                Method::GET,
                &format!(
                    "/api/v1/college-applications/stage-counts/?application_type_id={}",
                    w.app_type
                ),
                &token,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{counts}");
        let live = format!(
            "FROM college_applications ca JOIN clients c ON c.id = ca.client_id
              WHERE ca.deleted_at IS NULL AND c.deleted_at IS NULL AND {branch_clause}"
        );
        assert_eq!(
            counts["total"],
            w.count(&format!("SELECT count(*) {live}")).await,
            "{user}"
        );
        for item in counts["by_stage"].as_array().cloned().unwrap_or_default() {
            let expected = w
                .count(&format!(
                    "SELECT count(*) {live} AND ca.stage_id = {}",
                    item["stage_id"]
                ))
                .await;
            assert_eq!(item["count"], expected, "{user}: {item}");
            assert!(expected > 0);
        }
        let stages_with_any = w
            .count(&format!("SELECT count(DISTINCT ca.stage_id) {live}"))
            .await;
        assert_eq!(
            counts["by_stage"]
                .as_array()
                .map(Vec::len)
                .unwrap_or_default() as i64,
            stages_with_any
        );

        for filter in ["all", "today", "this_month"] {
            let (status, stats) = w
                .call(
                    Method::GET,
                    &format!(
                        "/api/v1/college-applications/dashboard-statistics/?time_filter={filter}"
                    ),
                    &token,
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{stats}");
            assert_eq!(stats["time_filter"], filter);
            assert_eq!(
                stats["total_applications"],
                w.count(&format!("SELECT count(*) {live}")).await
            );
            // The intakes (2030) are after every period start, so the filters keep them all.
            let final_count = w
                .count(&format!(
                    "SELECT count(*) {live}
                       AND ca.stage_id = (SELECT id FROM stages
                                           WHERE application_type_id = ca.application_type_id
                                           ORDER BY position DESC LIMIT 1)"
                ))
                .await;
            assert_eq!(stats["final_stage_count"], final_count, "{user} {filter}");
            let intake_sum: i64 = stats["intake_breakdown"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x["count"].as_i64()).sum())
                .unwrap_or_default();
            assert_eq!(intake_sum, final_count);
            assert_eq!(
                stats["pending_assignments"],
                w.count(&format!(
                    "SELECT count(*) {live} AND ca.assigned_to_id IS NULL"
                ))
                .await
            );
            let institute_sum: i64 = stats["institute_breakdown"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x["count"].as_i64()).sum())
                .unwrap_or_default();
            assert_eq!(
                institute_sum,
                w.count(&format!("SELECT count(*) {live}")).await
            );
            assert_eq!(
                stats["recent_applications"].as_array().map(Vec::len),
                Some(w.count(&format!("SELECT count(*) {live}")).await.min(10) as usize)
            );
        }
    }
    // An unknown time filter is a 400.
    let (status, _) = w
        .call(
            Method::GET,
            "/api/v1/college-applications/dashboard-statistics/?time_filter=yesterday",
            &w.root,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// The timeline of `client` once `done` holds for its entries (the bus runs asynchronously).
async fn timeline_until(w: &World, client: i64, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut entries = Vec::new();
    for _ in 0..100 {
        let (_, page) = w
            .call(
                Method::GET,
                &format!("/api/v1/clients/{client}/timeline/"),
                &w.root,
                None,
            )
            .await;
        entries = page["results"].as_array().cloned().unwrap_or_default();
        if done(&entries) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    entries
}

#[tokio::test]
async fn creating_assigning_and_moving_an_application_writes_timeline_entries_and_notifies() {
    let (app, bus) = TestApp::with_bus(&[SLUG]).await;
    let w = build(app).await;
    let (_, created) = w.create(&w.root, w.body(w.client_a)).await;
    let kind = |e: &Value, k: &str| e["activity_type"] == k;
    let entries = timeline_until(&w, w.client_a, |e| {
        e.iter().any(|x| kind(x, "COLLEGE_APPLICATION_CREATED"))
    })
    .await;
    let entry = entries
        .iter()
        .find(|e| kind(e, "COLLEGE_APPLICATION_CREATED"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        entry["description"],
        "College Application created for Course X at X"
    );
    assert_eq!(entry["metadata"]["application_id"], created["id"]);

    let (status, _) = w
        .patch(
            &w.root,
            &created["id"],
            json!({"assigned_to_id": w.ba_a, "stage_id": w.stages[1]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let entries = timeline_until(&w, w.client_a, |e| {
        e.iter().any(|x| kind(x, "ASSIGNED"))
            && e.iter().any(|x| kind(x, "APPLICATION_STAGE_CHANGED"))
    })
    .await;
    let find = |k: &str| {
        entries
            .iter()
            .find(|e| kind(e, k))
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        find("ASSIGNED")["description"],
        "College Application assigned to ba_a Tester"
    );
    assert_eq!(
        find("APPLICATION_STAGE_CHANGED")["description"],
        "College Application moved from Applied to Offer"
    );
    let mut notices = 0;
    for _ in 0..100 {
        notices = w
            .count(&format!(
                "SELECT count(*) FROM notifications
                  WHERE notification_type = 'APPLICATION_ASSIGNED' AND assigned_to_id = {}
                    AND title = 'Application Assigned: Ana Client'
                    AND message = 'A college application for Ana Client (Course X at X) \
                                   has been assigned to you.'",
                w.ba_a
            ))
            .await;
        if notices > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(notices, 1);
    bus.shutdown().await;
}

#[tokio::test]
async fn a_task_links_to_a_college_application_only_within_the_callers_scope() {
    let w = world().await;
    let (_, in_a) = w.create(&w.root, w.body(w.client_a)).await;
    let (_, in_c) = w.create(&w.root, w.body(w.client_c)).await;
    let token = w.app.token(SLUG, "ba_a").await;
    let due = (chrono::Utc::now() + chrono::Duration::hours(24)).to_rfc3339();
    let task = |id: &Value| {
        json!({"title": "Offer", "detail": "Chase the offer", "due_date": due,
               "linked_entity_type": "collegeapplication", "linked_entity_id": id})
    };
    let (status, reply) = w
        .call(
            Method::POST,
            "/api/v1/tasks/",
            &token,
            Some(task(&in_c["id"])),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(reply["linked_entity_id"].is_array(), "{reply}");
    let (status, reply) = w
        .call(
            Method::POST,
            "/api/v1/tasks/",
            &token,
            Some(task(&in_a["id"])),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["linked_entity_name"], "College Application");
}

#[tokio::test]
async fn a_create_racing_the_delete_of_its_type_never_lands_on_a_deleted_type() {
    let w = world().await;
    // The delete's transaction, as `DELETE /application-types/{id}/` runs it: the row locked,
    // then soft-deleted, committed while the create is waiting.
    let mut delete = w.app.context(SLUG).begin().await.expect("tx");
    sqlx::query("SELECT id FROM application_types WHERE id = $1 FOR UPDATE")
        .bind(w.app_type)
        .execute(&mut *delete)
        .await
        .expect("lock");
    sqlx::query("UPDATE application_types SET deleted_at = now() WHERE id = $1")
        .bind(w.app_type)
        .execute(&mut *delete)
        .await
        .expect("soft delete");
    let commit_later = async {
        // Give the create time to reach the type's row lock (the outcome does not depend on
        // it: a create arriving after the commit finds the type gone as well).
        tokio::time::sleep(Duration::from_millis(300)).await;
        delete.commit().await.expect("commit");
    };
    let ((status, reply), ()) = tokio::join!(w.create(&w.root, w.body(w.client_a)), commit_later);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(reply["application_type_id"].is_array(), "{reply}");
    assert_eq!(
        w.count("SELECT count(*) FROM college_applications").await,
        0
    );
}

#[tokio::test]
async fn a_stage_move_racing_the_delete_of_that_stage_is_a_400_and_the_application_stays() {
    let w = world().await;
    let (_, created) = w.create(&w.root, w.body(w.client_a)).await;
    // The delete's transaction, as `DELETE /stages/{id}/` runs it: the stage locked, deleted,
    // the later positions closed up, committed while the move is waiting.
    let mut delete = w.app.context(SLUG).begin().await.expect("tx");
    sqlx::query("SELECT 1 FROM stages WHERE id = $1 FOR UPDATE")
        .bind(w.stages[1])
        .execute(&mut *delete)
        .await
        .expect("lock");
    sqlx::query("DELETE FROM stages WHERE id = $1")
        .bind(w.stages[1])
        .execute(&mut *delete)
        .await
        .expect("delete");
    sqlx::query("UPDATE stages SET position = position - 1 WHERE id = $1")
        .bind(w.stages[2])
        .execute(&mut *delete)
        .await
        .expect("close the gap");
    let commit_later = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        delete.commit().await.expect("commit");
    };
    let ((status, reply), ()) = tokio::join!(
        w.patch(&w.root, &created["id"], json!({"stage_id": w.stages[1]})),
        commit_later
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    let (_, now) = w
        .call(
            Method::GET,
            &format!("/api/v1/college-applications/{}/", created["id"]),
            &w.root,
            None,
        )
        .await;
    assert_eq!(now["stage"], w.stages[0]);
}
