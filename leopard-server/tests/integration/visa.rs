//! `/api/v1/visa-categories/`, `/api/v1/visa-types/` and `/api/v1/visa-applications/` over
//! HTTP against a real PostgreSQL database: wire fields, the checklist copied on create, money
//! as decimal strings, scope through the client's branch, validation writing nothing, status
//! counts and dashboard numbers against independently computed counts, and the events' timeline
//! entries and notifications.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Org, TestApp};
use http::{Method, StatusCode};
use leopard_rbac::Role;
use serde_json::{json, Value};

const SLUG: &str = "acme";

/// VisaApplicationOutput's fields per original-backend.md §2.6.
const APPLICATION_FIELDS: &[&str] = &[
    "id",
    "client",
    "client_name",
    "visa_type",
    "visa_type_name",
    "visa_category_name",
    "transaction_reference_no",
    "immigration_fee",
    "immigration_fee_currency",
    "service_fee",
    "service_fee_currency",
    "dependent",
    "notes",
    "assigned_to",
    "assigned_to_name",
    "required_documents",
    "expiry_date",
    "date_applied",
    "date_opened",
    "final_date",
    "date_granted",
    "date_rejected",
    "date_withdrawn",
    "status",
    "created_by",
    "created_by_name",
    "created_at",
    "updated_by",
    "updated_at",
];

/// VisaTypeOutput's fields per original-backend.md §2.7.
const TYPE_FIELDS: &[&str] = &[
    "id",
    "visa_category",
    "visa_category_name",
    "name",
    "code",
    "description",
    "checklist",
];

const STATUSES: &[&str] = &[
    "TO_BE_APPLIED",
    "VISA_APPLIED",
    "CASE_OPENED",
    "GRANTED",
    "REJECTED",
    "WITHDRAWN",
];

/// An org with a super admin (`root`), consultants of A (`cons_a`, `cons_a2`) and C
/// (`cons_c`), a visa type "Employer Sponsored (482)" with a two-document checklist, and a
/// client in A and one in C.
struct World {
    app: TestApp,
    org: Org,
    root: String,
    visa_type: i64,
    client_a: i64,
    client_c: i64,
    cons_a2: i64,
}

async fn build(app: TestApp) -> World {
    let org = app.seed_org(SLUG).await;
    app.user(SLUG, "root", Some(Role::SuperAdmin), &[], &[])
        .await;
    app.user(SLUG, "cons_a", Some(Role::Consultant), &[org.a], &[])
        .await;
    let cons_a2 = app
        .user(SLUG, "cons_a2", Some(Role::Consultant), &[org.a], &[])
        .await;
    app.user(SLUG, "cons_c", Some(Role::Consultant), &[org.c], &[])
        .await;
    let root = app.token(SLUG, "root").await;
    let (status, _, vt) = app
        .call(
            Method::POST,
            SLUG,
            "/api/v1/visa-types/",
            Some(&root),
            Some(
                json!({"visa_category_id": 1, "name": "Employer Sponsored", "code": "482",
                        "checklist": ["Passport", "Skills assessment"]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{vt}");
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
        visa_type: vt["id"].as_i64().unwrap_or_default(),
        client_a: clients[0],
        client_c: clients[1],
        cons_a2,
    }
}

async fn world() -> World {
    build(TestApp::new(&[SLUG]).await).await
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn set(fields: &[&str]) -> BTreeSet<String> {
    fields.iter().map(|f| (*f).to_owned()).collect()
}

impl World {
    fn body(&self, client: i64) -> Value {
        json!({"client_id": client, "visa_type_id": self.visa_type,
               "immigration_fee": "1200.5", "service_fee": 300})
    }

    async fn create(&self, token: &str, body: Value) -> (StatusCode, Value) {
        let (status, _, reply) = self
            .app
            .call(
                Method::POST,
                SLUG,
                "/api/v1/visa-applications/",
                Some(token),
                Some(body),
            )
            .await;
        (status, reply)
    }

    async fn patch(&self, token: &str, id: &Value, body: Value) -> (StatusCode, Value) {
        let (status, _, reply) = self
            .app
            .call(
                Method::PATCH,
                SLUG,
                &format!("/api/v1/visa-applications/{id}/"),
                Some(token),
                Some(body),
            )
            .await;
        (status, reply)
    }

    async fn count(&self, sql: &str) -> i64 {
        self.app.tenant_count(SLUG, sql).await
    }
}

#[tokio::test]
async fn visa_categories_are_a_bare_array_of_the_six_seeded_categories() {
    let w = world().await;
    let token = w.app.token(SLUG, "cons_a").await;
    let (status, _, body) = w.app.get(SLUG, "/api/v1/visa-categories/", &token).await;
    assert_eq!(status, StatusCode::OK);
    let items = body.as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 6, "{body}");
    assert_eq!(keys(&items[0]), set(&["id", "name", "code", "description"]));
    let names: Vec<&str> = items.iter().filter_map(|c| c["name"].as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "ordered by name");
    assert!(names.contains(&"Work Visa"));
}

#[tokio::test]
async fn visa_types_have_the_original_fields_and_patch_replaces_the_checklist() {
    let w = world().await;
    let path = format!("/api/v1/visa-types/{}/", w.visa_type);
    let (status, _, one) = w.app.get(SLUG, &path, &w.root).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys(&one), set(TYPE_FIELDS));
    assert_eq!(
        keys(&one["visa_category"]),
        set(&["id", "name", "code", "description"])
    );
    assert_eq!(one["visa_category_name"], "Work Visa");
    assert_eq!(one["code"], "482");
    let (_, _, page) = w.app.get(SLUG, "/api/v1/visa-types/", &w.root).await;
    assert_eq!(page["count"], 1);
    assert_eq!(page["results"][0], one);
    let (status, _, patched) = w
        .app
        .call(
            Method::PATCH,
            SLUG,
            &path,
            Some(&w.root),
            Some(json!({"checklist": ["Passport"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["checklist"], json!(["Passport"]));
    assert_eq!(patched["name"], "Employer Sponsored");

    let (status, _, reply) = w
        .app
        .call(
            Method::POST,
            SLUG,
            "/api/v1/visa-types/",
            Some(&w.root),
            Some(json!({"visa_category_id": 999, "name": "Nope"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    let token = w.app.token(SLUG, "cons_a").await;
    let (status, _, _) = w
        .app
        .call(
            Method::POST,
            SLUG,
            "/api/v1/visa-types/",
            Some(&token),
            Some(json!({"visa_category_id": 1, "name": "Mine"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "writes need add_visatype");
    assert_eq!(w.count("SELECT count(*) FROM visa_types").await, 1);
}

#[tokio::test]
async fn a_visa_type_in_use_cannot_be_deleted_but_an_unused_one_can() {
    let w = world().await;
    let (status, _) = w.create(&w.root, w.body(w.client_a)).await;
    assert_eq!(status, StatusCode::CREATED);
    let path = format!("/api/v1/visa-types/{}/", w.visa_type);
    let (status, _, _) = w
        .app
        .call(Method::DELETE, SLUG, &path, Some(&w.root), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, _, spare) = w
        .app
        .call(
            Method::POST,
            SLUG,
            "/api/v1/visa-types/",
            Some(&w.root),
            Some(json!({"visa_category_id": 2, "name": "Student"})),
        )
        .await;
    let (status, _, _) = w
        .app
        .call(
            Method::DELETE,
            SLUG,
            &format!("/api/v1/visa-types/{}/", spare["id"]),
            Some(&w.root),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(w.count("SELECT count(*) FROM visa_types").await, 1);
}

#[tokio::test]
async fn an_application_copies_the_type_checklist_and_answers_money_as_decimal_strings() {
    let w = world().await;
    let token = w.app.token(SLUG, "cons_a").await;
    let (status, created) = w.create(&token, w.body(w.client_a)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(keys(&created), set(APPLICATION_FIELDS));
    assert_eq!(
        created["required_documents"],
        json!([{"name": "Passport", "received": false},
               {"name": "Skills assessment", "received": false}])
    );
    assert_eq!(created["immigration_fee"], "1200.50");
    assert_eq!(created["service_fee"], "300.00");
    assert_eq!(created["immigration_fee_currency"], "USD");
    assert_eq!(created["status"], "TO_BE_APPLIED");
    assert_eq!(created["client_name"], "Ana Client");
    assert_eq!(created["visa_type_name"], "Employer Sponsored");
    assert_eq!(created["visa_category_name"], "Work Visa");
    assert_eq!(created["created_by_name"], "cons_a Tester");
    let path = format!("/api/v1/visa-applications/{}/", created["id"]);
    let (status, _, one) = w.app.get(SLUG, &path, &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, created);
    let (_, _, page) = w.app.get(SLUG, "/api/v1/visa-applications/", &token).await;
    assert_eq!(page["count"], 1);
    assert_eq!(page["results"][0], created, "list and retrieve agree");

    // Documents are toggled by PATCH; a currency is upper-cased; null clears a date.
    let (status, patched) = w
        .patch(
            &token,
            &created["id"],
            json!({"required_documents": [{"name": "Passport", "received": true}],
                   "service_fee_currency": "aud", "date_applied": "2026-01-02",
                   "status": "VISA_APPLIED"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        patched["required_documents"],
        json!([{"name": "Passport", "received": true}])
    );
    assert_eq!(patched["service_fee_currency"], "AUD");
    assert_eq!(patched["date_applied"], "2026-01-02");
    assert_eq!(patched["status"], "VISA_APPLIED");
    let (_, cleared) = w
        .patch(&token, &created["id"], json!({"date_applied": null}))
        .await;
    assert_eq!(cleared["date_applied"], Value::Null);
    assert_eq!(cleared["status"], "VISA_APPLIED", "absent fields unchanged");
}

#[tokio::test]
async fn invalid_application_bodies_are_400_and_write_nothing() {
    let w = world().await;
    let base = w.body(w.client_a);
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = base.clone();
        b.as_object_mut().map(|o| o.remove(k));
        b
    };
    for body in [
        without("immigration_fee"),
        without("service_fee"),
        without("visa_type_id"),
        with("immigration_fee", json!("-1")),
        with("service_fee", json!("12.345")),
        with("service_fee", json!("100000000")),
        with("immigration_fee_currency", json!("DOLLARS")),
        with("visa_type_id", json!(999_999)),
        with("status", json!("APPROVED")),
        with("date_applied", json!("02/01/2026")),
        with("required_documents", json!("Passport")),
        with("required_documents", json!([{"received": true}])),
        with("transaction_reference_no", json!("r".repeat(151))),
        with("assigned_to_id", json!(999_999)),
        with("dependent", json!("yes")),
    ] {
        let (status, reply) = w.create(&w.root, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {reply}");
    }
    assert_eq!(w.count("SELECT count(*) FROM visa_applications").await, 0);

    let (_, created) = w.create(&w.root, base.clone()).await;
    for body in [
        json!({"status": "NOPE"}),
        json!({"immigration_fee": null}),
        json!({"client_id": w.client_c}),
        json!({"visa_type_id": 999_999}),
    ] {
        let (status, reply) = w.patch(&w.root, &created["id"], body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {reply}");
    }
    let path = format!("/api/v1/visa-applications/{}/", created["id"]);
    let (_, _, unchanged) = w.app.get(SLUG, &path, &w.root).await;
    assert_eq!(unchanged, created);
}

#[tokio::test]
async fn a_consultant_of_branch_a_gets_404_for_an_application_of_branch_c() {
    let w = world().await;
    let (_, in_c) = w.create(&w.root, w.body(w.client_c)).await;
    let (_, in_a) = w.create(&w.root, w.body(w.client_a)).await;
    let token = w.app.token(SLUG, "cons_a").await;
    let path = format!("/api/v1/visa-applications/{}/", in_c["id"]);
    let (status, _, body) = w.app.get(SLUG, &path, &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["detail"], "Application not found");
    let (status, _) = w
        .patch(&token, &in_c["id"], json!({"status": "GRANTED"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, _, page) = w.app.get(SLUG, "/api/v1/visa-applications/", &token).await;
    assert_eq!(page["count"], 1);
    assert_eq!(page["results"][0]["id"], in_a["id"]);

    // Creating one for an out-of-scope client is a 404 too, and writes nothing.
    let (status, _) = w.create(&token, w.body(w.client_c)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(w.count("SELECT count(*) FROM visa_applications").await, 2);
    let (_, _, original) = w.app.get(SLUG, &path, &w.root).await;
    assert_eq!(original["status"], "TO_BE_APPLIED");
}

#[tokio::test]
async fn applications_of_a_soft_deleted_client_disappear() {
    let w = world().await;
    let (_, app) = w.create(&w.root, w.body(w.client_a)).await;
    w.app
        .call(
            Method::DELETE,
            SLUG,
            &format!("/api/v1/clients/{}/", w.client_a),
            Some(&w.root),
            None,
        )
        .await;
    let (status, _, _) = w
        .app
        .get(
            SLUG,
            &format!("/api/v1/visa-applications/{}/", app["id"]),
            &w.root,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, _, counts) = w
        .app
        .get(SLUG, "/api/v1/visa-applications/status-counts/", &w.root)
        .await;
    assert_eq!(counts["TOTAL"], 0);
}

#[tokio::test]
async fn delete_removes_an_application_and_needs_delete_permission() {
    let w = world().await;
    let (_, created) = w.create(&w.root, w.body(w.client_a)).await;
    let path = format!("/api/v1/visa-applications/{}/", created["id"]);
    let token = w.app.token(SLUG, "cons_a").await;
    let (status, _, _) = w
        .app
        .call(Method::DELETE, SLUG, &path, Some(&token), None)
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "consultants hold no delete_visaapplication"
    );
    let (status, _, _) = w
        .app
        .call(Method::DELETE, SLUG, &path, Some(&w.root), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = w.app.get(SLUG, &path, &w.root).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(w.count("SELECT count(*) FROM visa_applications").await, 0);
    let (status, _, _) = w
        .app
        .call(Method::PUT, SLUG, &path, Some(&w.root), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn status_counts_and_dashboard_numbers_equal_independent_counts_per_scope() {
    let w = world().await;
    let today = chrono::Utc::now().date_naive().to_string();
    // (client, status, granted today, assigned)
    let plan: Vec<(i64, &str, bool, bool)> = vec![
        (w.client_a, "TO_BE_APPLIED", false, false),
        (w.client_a, "TO_BE_APPLIED", false, true),
        (w.client_a, "GRANTED", true, false),
        (w.client_a, "GRANTED", false, true),
        (w.client_a, "REJECTED", false, false),
        (w.client_c, "GRANTED", true, true),
        (w.client_c, "CASE_OPENED", false, false),
        (w.client_c, "WITHDRAWN", false, false),
    ];
    let (_, _, other_type) = w
        .app
        .call(
            Method::POST,
            SLUG,
            "/api/v1/visa-types/",
            Some(&w.root),
            Some(json!({"visa_category_id": 2, "name": "Student", "code": "500"})),
        )
        .await;
    for (i, (client, status, granted_today, assigned)) in plan.iter().enumerate() {
        let mut body = w.body(*client);
        body["status"] = json!(status);
        if *granted_today {
            body["date_granted"] = json!(today);
        } else if *status == "GRANTED" {
            body["date_granted"] = json!("2001-01-01");
        }
        if *assigned {
            body["assigned_to_id"] = json!(w.cons_a2);
        }
        if i % 3 == 0 {
            body["visa_type_id"] = other_type["id"].clone();
        }
        let (code, reply) = w.create(&w.root, body).await;
        assert_eq!(code, StatusCode::CREATED, "{reply}");
    }

    for (who, clients) in [
        ("root", vec![w.client_a, w.client_c]),
        ("cons_a", vec![w.client_a]),
    ] {
        let token = w.app.token(SLUG, who).await;
        let mine: Vec<_> = plan
            .iter()
            .enumerate()
            .filter(|(_, p)| clients.contains(&p.0))
            .collect();
        let (status, _, counts) = w
            .app
            .get(SLUG, "/api/v1/visa-applications/status-counts/", &token)
            .await;
        assert_eq!(status, StatusCode::OK);
        let mut expected_keys = set(STATUSES);
        expected_keys.insert("TOTAL".into());
        assert_eq!(keys(&counts), expected_keys);
        for s in STATUSES {
            let n = mine.iter().filter(|(_, p)| p.1 == *s).count();
            assert_eq!(counts[*s], json!(n), "{who} {s}");
        }
        assert_eq!(counts["TOTAL"], json!(mine.len()), "{who}");

        let (status, _, dash) = w
            .app
            .get(
                SLUG,
                "/api/v1/visa-applications/dashboard-statistics/",
                &token,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{dash}");
        assert_eq!(
            keys(&dash),
            set(&[
                "total_applications",
                "status_breakdown",
                "time_based_counts",
                "granted_counts",
                "visa_type_breakdown",
                "recent_applications",
                "pending_assignments",
            ])
        );
        assert_eq!(dash["total_applications"], json!(mine.len()));
        for s in STATUSES {
            assert_eq!(dash["status_breakdown"][*s], counts[*s], "{who} {s}");
        }
        let all = json!(mine.len());
        assert_eq!(
            dash["time_based_counts"],
            json!({"today": all, "this_week": all, "this_month": all}),
            "everything was created now"
        );
        let granted_today = mine.iter().filter(|(_, p)| p.2).count();
        assert_eq!(
            dash["granted_counts"]["today"],
            json!(granted_today),
            "{who}"
        );
        assert_eq!(dash["granted_counts"]["this_month"], json!(granted_today));
        let pending = mine.iter().filter(|(_, p)| !p.3).count();
        assert_eq!(dash["pending_assignments"], json!(pending), "{who}");
        let student = mine.iter().filter(|(i, _)| i % 3 == 0).count();
        let breakdown = dash["visa_type_breakdown"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let total: i64 = breakdown.iter().filter_map(|b| b["count"].as_i64()).sum();
        assert_eq!(total, mine.len() as i64);
        let student_row = breakdown
            .iter()
            .find(|b| b["visa_type__name"] == "Student")
            .cloned()
            .unwrap_or(Value::Null);
        assert_eq!(student_row["count"], json!(student), "{who}");
        assert_eq!(
            keys(&breakdown[0]),
            set(&["visa_type__id", "visa_type__name", "count"])
        );
        let recent = dash["recent_applications"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(recent.len(), mine.len().min(5));
        assert_eq!(
            keys(&recent[0]),
            set(&[
                "id",
                "client__first_name",
                "client__last_name",
                "visa_type__name",
                "status",
                "created_at",
            ])
        );
        let newest = mine.len() - 1;
        let (_, _, page) = w
            .app
            .get(SLUG, "/api/v1/visa-applications/?page_size=1", &token)
            .await;
        assert_eq!(
            recent[0]["id"], page["results"][0]["id"],
            "{who} newest {newest}"
        );
    }
}

#[tokio::test]
async fn list_filters_by_status_client_name_type_and_applied_dates() {
    let w = world().await;
    let mut b1 = w.body(w.client_a);
    b1["status"] = json!("VISA_APPLIED");
    b1["date_applied"] = json!("2026-03-10");
    w.create(&w.root, b1).await;
    let mut b2 = w.body(w.client_c);
    b2["date_applied"] = json!("2026-05-01");
    w.create(&w.root, b2).await;
    for (query, n) in [
        ("status=VISA_APPLIED", 1),
        ("client_name=cy", 1),
        ("client_name=client", 2),
        ("date_applied_from=2026-04-01", 1),
        ("date_applied_to=2026-03-10", 1),
        (&*format!("client_id={}", w.client_a), 1),
        (&*format!("visa_type_id={}", w.visa_type), 2),
    ] {
        let (status, _, page) = w
            .app
            .get(
                SLUG,
                &format!("/api/v1/visa-applications/?{query}"),
                &w.root,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert_eq!(page["count"], n, "{query}");
    }
    let (status, _, _) = w
        .app
        .get(
            SLUG,
            "/api/v1/visa-applications/?date_applied_from=yesterday",
            &w.root,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Bounded polling of client `client`'s timeline until `pred` holds (10 s).
async fn timeline_until(w: &World, client: i64, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let path = format!("/api/v1/clients/{client}/timeline/");
    let mut entries = Vec::new();
    for _ in 0..100 {
        let (_, _, page) = w.app.get(SLUG, &path, &w.root).await;
        entries = page["results"].as_array().cloned().unwrap_or_default();
        if pred(&entries) {
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
    let kinds = |e: &[Value]| -> Vec<String> {
        e.iter()
            .filter_map(|x| x["activity_type"].as_str().map(str::to_owned))
            .collect()
    };
    let entries = timeline_until(&w, w.client_a, |e| {
        kinds(e).contains(&"VISA_APPLICATION_CREATED".to_owned())
    })
    .await;
    let entry = entries
        .iter()
        .find(|e| e["activity_type"] == "VISA_APPLICATION_CREATED")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        entry["description"],
        "Visa Application created for Employer Sponsored (482)"
    );
    assert_eq!(entry["metadata"]["visa_application_id"], created["id"]);

    let (status, _) = w
        .patch(
            &w.root,
            &created["id"],
            json!({"assigned_to_id": w.cons_a2, "status": "VISA_APPLIED"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let entries = timeline_until(&w, w.client_a, |e| {
        let k = kinds(e);
        k.contains(&"ASSIGNED".to_owned()) && k.contains(&"VISA_STATUS_CHANGED".to_owned())
    })
    .await;
    let assigned = entries
        .iter()
        .find(|e| e["activity_type"] == "ASSIGNED")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        assigned["description"],
        "Visa Application assigned to cons_a2 Tester"
    );
    let moved = entries
        .iter()
        .find(|e| e["activity_type"] == "VISA_STATUS_CHANGED")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        moved["description"],
        "Visa Application status changed from To Be Applied to Visa Applied"
    );
    let mut notices = 0;
    for _ in 0..100 {
        notices = w
            .count(
                "SELECT count(*) FROM notifications
                  WHERE notification_type = 'VISA_APPLICATION_ASSIGNED'
                    AND title = 'Visa Application Assigned: Ana Client'
                    AND message = 'A visa application for Ana Client (Employer Sponsored (482)) \
                                   has been assigned to you.'",
            )
            .await;
        if notices > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(notices, 1);

    // Assigning to oneself writes the timeline entry but notifies nobody.
    let token = w.app.token(SLUG, "cons_a").await;
    let me: i64 = w
        .count("SELECT id FROM users WHERE username = 'cons_a'")
        .await;
    let (status, _) = w
        .patch(&token, &created["id"], json!({"assigned_to_id": me}))
        .await;
    assert_eq!(status, StatusCode::OK);
    timeline_until(&w, w.client_a, |e| {
        e.iter()
            .filter(|x| x["activity_type"] == "ASSIGNED")
            .count()
            == 2
    })
    .await;
    for _ in 0..100 {
        if w.count("SELECT count(*) FROM public.leopard_events WHERE state <> 'completed'")
            .await
            == 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM notifications WHERE assigned_to_id = {me}"
        ))
        .await,
        0
    );
    assert_eq!(
        w.count("SELECT count(*) FROM client_activities WHERE activity_type = 'ASSIGNED'")
            .await,
        2
    );
    let _ = w.org;
    bus.shutdown().await;
}

#[tokio::test]
async fn a_task_links_to_a_visa_application_only_within_the_callers_scope() {
    let w = world().await;
    let (_, in_a) = w.create(&w.root, w.body(w.client_a)).await;
    let (_, in_c) = w.create(&w.root, w.body(w.client_c)).await;
    let token = w.app.token(SLUG, "cons_a").await;
    let due = (chrono::Utc::now() + chrono::Duration::hours(24)).to_rfc3339();
    let task = |id: &Value| {
        json!({"title": "Lodge", "detail": "Lodge the visa", "due_date": due,
               "linked_entity_type": "visaapplication", "linked_entity_id": id})
    };
    let (status, _, reply) = w
        .app
        .call(
            Method::POST,
            SLUG,
            "/api/v1/tasks/",
            Some(&token),
            Some(task(&in_c["id"])),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(reply["linked_entity_id"].is_array(), "{reply}");
    let (status, _, reply) = w
        .app
        .call(
            Method::POST,
            SLUG,
            "/api/v1/tasks/",
            Some(&token),
            Some(task(&in_a["id"])),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["linked_entity_type"], "visaapplication");
    assert_eq!(reply["linked_entity_name"], "Visa Application");
}

#[tokio::test]
async fn a_create_racing_the_delete_of_its_visa_type_is_a_409_never_a_500() {
    let w = world().await;
    // The delete's transaction, as `DELETE /visa-types/{id}/` runs it, committed while the
    // create (which already checked the type) waits on the type's row.
    let mut delete = w.app.context(SLUG).begin().await.expect("tx");
    sqlx::query("SELECT 1 FROM visa_types WHERE id = $1 FOR UPDATE")
        .bind(w.visa_type)
        .execute(&mut *delete)
        .await
        .expect("lock");
    sqlx::query("DELETE FROM visa_types WHERE id = $1")
        .bind(w.visa_type)
        .execute(&mut *delete)
        .await
        .expect("delete");
    let commit_later = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        delete.commit().await.expect("commit");
    };
    let ((status, reply), ()) = tokio::join!(w.create(&w.root, w.body(w.client_a)), commit_later);
    // Arriving after the commit instead, the create finds no such type: a 400.
    assert!(
        status == StatusCode::CONFLICT || status == StatusCode::BAD_REQUEST,
        "{status} {reply}"
    );
    assert!(
        reply["detail"].is_string() || reply["visa_type_id"].is_array(),
        "{reply}"
    );
    assert_eq!(w.count("SELECT count(*) FROM visa_applications").await, 0);
}
