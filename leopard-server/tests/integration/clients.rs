//! `/api/v1/clients/` over HTTP against a real PostgreSQL database: wire fields, branch scope
//! (out of scope is a 404), branch defaulting, assignment scope, soft delete and restore, stage
//! counts, the timeline, recorded events, the `id__in` filter and validation.

use crate::common;

use std::collections::BTreeSet;

use common::{Org, TestApp};
use http::{Method, StatusCode};
use leopard_rbac::Role;
use serde_json::{json, Value};

const SLUG: &str = "acme";

/// ClientOutput's fields per original-backend.md §2.2.
const CLIENT_FIELDS: &[&str] = &[
    "id",
    "first_name",
    "middle_name",
    "last_name",
    "gender",
    "dob",
    "phone_number",
    "email",
    "referred_by",
    "street",
    "suburb",
    "state",
    "postcode",
    "country",
    "visa_category",
    "visa_category_name",
    "agent",
    "agent_name",
    "description",
    "assigned_to",
    "assigned_to_name",
    "stage",
    "active",
    "branch",
    "branch_name",
    "created_by",
    "created_by_name",
    "created_at",
    "updated_by",
    "updated_at",
];

/// An org with a super admin (`root`), a consultant of A (`cons_a`), a consultant of C
/// (`cons_c`), a region manager of North (`rm_north`) and a branch admin of A (`ba_a`).
struct World {
    app: TestApp,
    org: Org,
    root: String,
}

async fn world() -> World {
    let app = TestApp::new(&[SLUG]).await;
    let org = app.seed_org(SLUG).await;
    app.user(SLUG, "root", Some(Role::SuperAdmin), &[], &[])
        .await;
    app.user(SLUG, "cons_a", Some(Role::Consultant), &[org.a], &[])
        .await;
    app.user(SLUG, "cons_c", Some(Role::Consultant), &[org.c], &[])
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
    let root = app.token(SLUG, "root").await;
    World { app, org, root }
}

impl World {
    async fn create(&self, token: &str, body: Value) -> (StatusCode, Value) {
        let (status, _, json) = self
            .app
            .call(
                Method::POST,
                SLUG,
                "/api/v1/clients/",
                Some(token),
                Some(body),
            )
            .await;
        (status, json)
    }

    /// A client named `name` in `branch`, created by the super admin; returns its id.
    async fn client(&self, name: &str, branch: i64) -> i64 {
        let (status, json) = self
            .create(
                &self.root,
                json!({"first_name": name, "gender": "MALE", "country": "AU", "branch_id": branch}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json["id"].as_i64().expect("id")
    }

    async fn ids(&self, token: &str, query: &str) -> BTreeSet<i64> {
        let (status, _, json) = self
            .app
            .get(SLUG, &format!("/api/v1/clients/{query}"), token)
            .await;
        assert_eq!(status, StatusCode::OK, "{json}");
        json["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|c| c["id"].as_i64().expect("id"))
            .collect()
    }

    async fn events(&self) -> Vec<String> {
        sqlx::query_scalar("SELECT event_type FROM public.leopard_events ORDER BY id")
            .fetch_all(self.app.tenancy.db.pool())
            .await
            .expect("events")
    }
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().expect("object").keys().cloned().collect()
}

#[tokio::test]
async fn a_client_answers_exactly_the_spec_fields_in_list_and_retrieve() {
    let w = world().await;
    let id = w.client("Ann", w.org.a).await;
    let (status, _, one) = w
        .app
        .get(SLUG, &format!("/api/v1/clients/{id}/"), &w.root)
        .await;
    assert_eq!(status, StatusCode::OK);
    let expected: BTreeSet<String> = CLIENT_FIELDS.iter().map(|f| (*f).to_owned()).collect();
    assert_eq!(keys(&one), expected);
    let (_, _, page) = w.app.get(SLUG, "/api/v1/clients/", &w.root).await;
    assert_eq!(page["count"], 1);
    assert_eq!(page["results"][0], one, "list and retrieve agree");
    assert_eq!(one["branch"], w.org.a);
    assert_eq!(one["branch_name"], "Branch A");
    assert_eq!(one["stage"], "LEAD");
    assert_eq!(one["created_by_name"], "root Tester");
    assert_eq!(one["visa_category_name"], Value::Null);
}

#[tokio::test]
async fn a_consultant_sees_its_branch_and_gets_404_for_another_branch() {
    let w = world().await;
    let a = w.client("InA", w.org.a).await;
    let c = w.client("InC", w.org.c).await;
    let token = w.app.token(SLUG, "cons_a").await;
    assert_eq!(w.ids(&token, "").await, BTreeSet::from([a]));
    let path = format!("/api/v1/clients/{c}/");
    let (status, _, body) = w.app.get(SLUG, &path, &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], "Client not found");
    let (status, _, _) = w
        .app
        .call(
            Method::PATCH,
            SLUG,
            &path,
            Some(&token),
            Some(json!({"first_name": "X"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = w
        .app
        .get(SLUG, &format!("/api/v1/clients/{c}/timeline/"), &token)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A consultant has no delete_client at all: the permission gate answers first.
    let (status, _, _) = w
        .app
        .call(Method::DELETE, SLUG, &path, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = w
        .app
        .get(SLUG, &format!("/api/v1/clients/{a}/"), &token)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn id_in_lists_the_named_clients_within_scope_only() {
    let w = world().await;
    let a1 = w.client("A1", w.org.a).await;
    let a2 = w.client("A2", w.org.a).await;
    let c = w.client("C1", w.org.c).await;
    let token = w.app.token(SLUG, "cons_a").await;
    let list = format!("?id__in={a1},{c}");
    assert_eq!(w.ids(&w.root, &list).await, BTreeSet::from([a1, c]));
    assert_eq!(
        w.ids(&token, &list).await,
        BTreeSet::from([a1]),
        "a client out of scope is not named"
    );
    assert_eq!(
        w.ids(&token, &format!("?id__in={a2}")).await,
        BTreeSet::from([a2])
    );
    let (status, _, body) = w.app.get(SLUG, "/api/v1/clients/?id__in=1,x", &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["id__in"].is_array(), "{body}");
}

#[tokio::test]
async fn a_branch_admin_gets_404_deleting_another_branchs_client() {
    let w = world().await;
    let c = w.client("InC", w.org.c).await;
    let token = w.app.token(SLUG, "ba_a").await;
    let (status, _, _) = w
        .app
        .call(
            Method::DELETE,
            SLUG,
            &format!("/api/v1/clients/{c}/"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_region_manager_sees_its_regions_branches_and_a_super_admin_sees_all() {
    let w = world().await;
    let a = w.client("InA", w.org.a).await;
    let b = w.client("InB", w.org.b).await;
    let c = w.client("InC", w.org.c).await;
    let d = w.client("InD", w.org.d).await;
    let rm = w.app.token(SLUG, "rm_north").await;
    assert_eq!(w.ids(&rm, "").await, BTreeSet::from([a, b]));
    assert_eq!(w.ids(&w.root, "").await, BTreeSet::from([a, b, c, d]));
    let (status, _, _) = w.app.get(SLUG, &format!("/api/v1/clients/{c}/"), &rm).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, _, page) = w.app.get(SLUG, "/api/v1/clients/", &w.root).await;
    let order: Vec<i64> = page["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|c| c["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(order, vec![d, c, b, a], "newest first");
}

#[tokio::test]
async fn a_create_defaults_to_the_creators_only_branch_and_accepts_a_stage() {
    let w = world().await;
    let token = w.app.token(SLUG, "cons_a").await;
    let (status, body) = w
        .create(
            &token,
            json!({"first_name": "Zed", "gender": "OTHER", "country": "np", "stage": "FOLLOW_UP",
                   "dob": "1990-02-03", "email": "zed@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["branch"], w.org.a);
    assert_eq!(body["stage"], "FOLLOW_UP");
    assert_eq!(body["country"], "NP");
    assert_eq!(body["dob"], "1990-02-03");
    // A region manager (several branches) must name one, inside its scope.
    let rm = w.app.token(SLUG, "rm_north").await;
    let base = json!({"first_name": "Y", "gender": "MALE", "country": "AU"});
    let (status, body) = w.create(&rm, base.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["branch_id"].is_array(), "{body}");
    let mut in_c = base.clone();
    in_c["branch_id"] = json!(w.org.c);
    let (status, _) = w.create(&rm, in_c).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut in_b = base;
    in_b["branch_id"] = json!(w.org.b);
    let (status, body) = w.create(&rm, in_b).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["branch"], w.org.b);
}

#[tokio::test]
async fn assigning_a_user_outside_the_callers_scope_is_forbidden() {
    let w = world().await;
    let token = w.app.token(SLUG, "ba_a").await;
    let cons_a = w
        .app
        .user(SLUG, "cons_a2", Some(Role::Consultant), &[w.org.a], &[])
        .await;
    let cons_c: i64 = w
        .app
        .tenant_count(SLUG, "SELECT id FROM users WHERE username = 'cons_c'")
        .await;
    let body = |assignee: i64| json!({"first_name": "Q", "gender": "FEMALE", "country": "AU", "assigned_to_id": assignee});
    let (status, _) = w.create(&token, body(cons_c)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, err) = w.create(&token, body(999_999)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(err["assigned_to_id"].is_array(), "{err}");
    let (status, client) = w.create(&token, body(cons_a)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(client["assigned_to"], cons_a);
    assert_eq!(client["assigned_to_name"], "cons_a2 Tester");
    let path = format!("/api/v1/clients/{}/", client["id"]);
    let (status, _, _) = w
        .app
        .call(
            Method::PATCH,
            SLUG,
            &path,
            Some(&token),
            Some(json!({"assigned_to_id": cons_c})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, cleared) = w
        .app
        .call(
            Method::PATCH,
            SLUG,
            &path,
            Some(&token),
            Some(json!({"assigned_to_id": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cleared["assigned_to"], Value::Null);
    assert_eq!(cleared["first_name"], "Q", "absent fields unchanged");
}

#[tokio::test]
async fn soft_delete_hides_a_client_until_it_is_restored() {
    let w = world().await;
    let id = w.client("Gone", w.org.a).await;
    let path = format!("/api/v1/clients/{id}/");
    let (status, _, _) = w
        .app
        .call(Method::DELETE, SLUG, &path, Some(&w.root), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = w.app.get(SLUG, &path, &w.root).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(w.ids(&w.root, "").await.is_empty());
    assert_eq!(
        w.ids(&w.root, "?include_deleted=true").await,
        BTreeSet::from([id])
    );
    let cons = w.app.token(SLUG, "cons_a").await;
    assert!(
        w.ids(&cons, "?include_deleted=true").await.is_empty(),
        "include_deleted needs delete_client"
    );
    let restore = format!("/api/v1/clients/{id}/restore/");
    let (status, _, body) = w
        .app
        .call(Method::POST, SLUG, &restore, Some(&w.root), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], id);
    let (status, _, body) = w
        .app
        .call(Method::POST, SLUG, &restore, Some(&w.root), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], "Client not found or not soft-deleted");
    let events = w.events().await;
    assert!(events.contains(&"Client.DELETE".to_owned()), "{events:?}");
    assert_eq!(events.last().map(String::as_str), Some("Client.UPDATE"));
}

#[tokio::test]
async fn stage_counts_count_live_clients_in_scope() {
    let w = world().await;
    let a = w.client("A1", w.org.a).await;
    w.client("A2", w.org.a).await;
    let c = w.client("C1", w.org.c).await;
    let (status, _, _) = w
        .app
        .call(
            Method::PATCH,
            SLUG,
            &format!("/api/v1/clients/{a}/"),
            Some(&w.root),
            Some(json!({"stage": "CLIENT"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    w.app
        .call(
            Method::DELETE,
            SLUG,
            &format!("/api/v1/clients/{c}/"),
            Some(&w.root),
            None,
        )
        .await;
    let (status, _, counts) = w
        .app
        .get(SLUG, "/api/v1/clients/stage-counts/", &w.root)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        counts,
        json!({"LEAD": 1, "FOLLOW_UP": 0, "CLIENT": 1, "CLOSE": 0, "TOTAL": 2})
    );
    let cons_c = w.app.token(SLUG, "cons_c").await;
    let (_, _, counts) = w
        .app
        .get(SLUG, "/api/v1/clients/stage-counts/", &cons_c)
        .await;
    assert_eq!(counts["TOTAL"], 0);
}

#[tokio::test]
async fn writes_record_create_and_assignment_events() {
    let w = world().await;
    let id = w.client("Evt", w.org.a).await;
    let assignee: i64 = w
        .app
        .tenant_count(SLUG, "SELECT id FROM users WHERE username = 'cons_a'")
        .await;
    let (status, _, _) = w
        .app
        .call(
            Method::PATCH,
            SLUG,
            &format!("/api/v1/clients/{id}/"),
            Some(&w.root),
            Some(json!({"assigned_to_id": assignee, "stage": "CLOSE"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let events = w.events().await;
    assert_eq!(events[0], "Client.CREATE");
    assert!(
        events.contains(&"Client.assigned_to.UPDATE".to_owned()),
        "{events:?}"
    );
    assert!(
        events.contains(&"Client.stage.UPDATE".to_owned()),
        "{events:?}"
    );
}

#[tokio::test]
async fn the_timeline_lists_a_clients_activities_newest_first() {
    let w = world().await;
    let id = w.client("Tl", w.org.a).await;
    let mut tx = w.app.context(SLUG).begin().await.expect("tx");
    for kind in ["NOTE_ADDED", "STAGE_CHANGED"] {
        sqlx::query(
            "INSERT INTO client_activities (client_id, activity_type, description)
             VALUES ($1, $2, 'x')",
        )
        .bind(id)
        .bind(kind)
        .execute(&mut *tx)
        .await
        .expect("activity");
    }
    tx.commit().await.expect("commit");
    let path = format!("/api/v1/clients/{id}/timeline/");
    let (status, _, page) = w.app.get(SLUG, &path, &w.root).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["count"], 2);
    let first = &page["results"][0];
    let expected: BTreeSet<String> = [
        "id",
        "client",
        "activity_type",
        "activity_type_display",
        "performed_by",
        "performed_by_name",
        "description",
        "metadata",
        "created_at",
    ]
    .iter()
    .map(|f| (*f).to_owned())
    .collect();
    assert_eq!(keys(first), expected);
    assert_eq!(first["activity_type"], "STAGE_CHANGED");
    assert_eq!(first["activity_type_display"], "Stage Changed");
    let (_, _, page) = w
        .app
        .get(SLUG, &format!("{path}?activity_type=NOTE_ADDED"), &w.root)
        .await;
    assert_eq!(page["count"], 1);
}

#[tokio::test]
async fn bad_input_is_a_400_with_field_errors() {
    let w = world().await;
    let (status, body) = w
        .create(
            &w.root,
            json!({"first_name": "", "gender": "ROBOT", "country": "Australia",
                   "dob": "31/12/1999", "email": "nope", "stage": "LE",
                   "phone_number": "1234567890123456", "branch_id": w.org.a}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    for field in [
        "first_name",
        "gender",
        "country",
        "dob",
        "email",
        "stage",
        "phone_number",
    ] {
        assert!(body[field].is_array(), "{field}: {body}");
    }
    let (status, body) = w.create(&w.root, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["first_name"].is_array() && body["country"].is_array() && body["gender"].is_array()
    );
    let (status, body) = w
        .create(
            &w.root,
            json!({"first_name": "X", "gender": "MALE", "country": "AU", "branch_id": 999_999}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["branch_id"].is_array());
    let (status, _, _) = w.app.get(SLUG, "/api/v1/clients/abc/", &w.root).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn put_is_a_merge_patch_and_null_clears_nullable_fields() {
    let w = world().await;
    let (status, created) = w
        .create(
            &w.root,
            json!({"first_name": "Mia", "last_name": "Kay", "gender": "FEMALE", "country": "AU",
                   "dob": "2000-01-01", "visa_category_id": 3, "branch_id": w.org.a,
                   "active": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["visa_category"], 3);
    let path = format!("/api/v1/clients/{}/", created["id"]);
    let (status, _, updated) = w
        .app
        .call(
            Method::PUT,
            SLUG,
            &path,
            Some(&w.root),
            Some(json!({"dob": null, "visa_category_id": null, "suburb": "Carlton"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["dob"], Value::Null);
    assert_eq!(updated["visa_category"], Value::Null);
    assert_eq!(updated["suburb"], "Carlton");
    assert_eq!(updated["last_name"], "Kay", "absent fields unchanged");
    assert_eq!(updated["active"], true);
    assert_eq!(updated["updated_by"], created["created_by"]);
}

#[tokio::test]
async fn assigning_a_client_over_http_writes_one_timeline_entry_and_one_notification() {
    let (app, running) = TestApp::with_bus(&["acme"]).await;
    let org = app.seed_org("acme").await;
    app.user("acme", "boss_a", Some(Role::BranchAdmin), &[org.a], &[])
        .await;
    let jane = app
        .user("acme", "jane_a", Some(Role::Consultant), &[org.a], &[])
        .await;
    let boss = app.token("acme", "boss_a").await;
    let (status, _, client) = app
        .call(
            Method::POST,
            "acme",
            "/api/v1/clients/",
            Some(&boss),
            Some(
                json!({"first_name": "Ada", "last_name": "Lovelace", "gender": "FEMALE",
                        "country": "AU", "email": "ada@example.com"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    let id = client["id"].as_i64().expect("id");
    let (status, _, body) = app
        .call(
            Method::PATCH,
            "acme",
            &format!("/api/v1/clients/{id}/"),
            Some(&boss),
            Some(json!({"assigned_to_id": jane})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let pending = app
            .tenant_count(
                "acme",
                "SELECT count(*) FROM public.leopard_events WHERE state <> 'completed'",
            )
            .await;
        if pending == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "events were not processed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    running.shutdown().await;
    let assigned = app
        .tenant_count(
            "acme",
            &format!(
                "SELECT count(*) FROM client_activities WHERE client_id = {id} AND activity_type = 'ASSIGNED'"
            ),
        )
        .await;
    assert_eq!(assigned, 1, "exactly one timeline entry for the assignment");
    let notified = app
        .tenant_count(
            "acme",
            &format!(
                "SELECT count(*) FROM notifications WHERE assigned_to_id = {jane} AND notification_type = 'CLIENT_ASSIGNED'"
            ),
        )
        .await;
    assert_eq!(notified, 1, "exactly one notification for the assignee");
    let (_, _, timeline) = app
        .get("acme", &format!("/api/v1/clients/{id}/timeline/"), &boss)
        .await;
    assert_eq!(
        timeline["results"][0]["activity_type"], "ASSIGNED",
        "{timeline}"
    );
}
