//! `/api/v1/tasks/` over HTTP against a real PostgreSQL database: wire fields, scope (owners,
//! branch pool, linked client; out of scope is a 404), assignment rules, claim, complete,
//! cancel, comments with mentions, overdue and due-soon lists, validation, recorded events and
//! (with the event bus) the notifications and timeline entries they produce.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{Duration as Span, Utc};
use common::{Org, TestApp};
use http::{Method, StatusCode};
use leopard_rbac::Role;
use serde_json::{json, Map, Value};

const SLUG: &str = "acme";

/// TaskOutput's fields per original-backend.md §2.11.
const TASK_FIELDS: &[&str] = &[
    "id",
    "title",
    "detail",
    "priority",
    "priority_display",
    "status",
    "status_display",
    "due_date",
    "assigned_to",
    "assigned_to_name",
    "assigned_to_full_name",
    "branch_id",
    "branch_name",
    "assigned_to_branch",
    "assigned_by",
    "assigned_by_name",
    "assigned_by_full_name",
    "created_by",
    "created_by_name",
    "created_by_full_name",
    "updated_by",
    "updated_by_name",
    "updated_by_full_name",
    "tags",
    "comments",
    "content_type",
    "object_id",
    "linked_entity_type",
    "linked_entity_id",
    "linked_entity_name",
    "completed_at",
    "created_at",
    "updated_at",
];

/// A comment's fields per original-backend.md §8.9.
const COMMENT_FIELDS: &[&str] = &[
    "user_id",
    "username",
    "full_name",
    "text",
    "mentions",
    "created_at",
];

/// A mention's fields per original-backend.md §8.9.
const MENTION_FIELDS: &[&str] = &["user_id", "username", "full_name", "start_pos", "end_pos"];

/// An org with a super admin (`root`), consultants `cons_a`, `cons_a2` (branch A), `cons_b`
/// (B), `cons_c` (C), a region manager of North (`rm_north`), a branch admin of A (`ba_a`),
/// and one client in each of A, B and C.
struct World {
    app: TestApp,
    org: Org,
    root: String,
    ids: std::collections::HashMap<&'static str, i64>,
    client_a: i64,
    client_b: i64,
    client_c: i64,
}

async fn world_on(app: TestApp) -> World {
    let org = app.seed_org(SLUG).await;
    let mut ids = std::collections::HashMap::new();
    for (name, role, branches, regions) in [
        ("root", Role::SuperAdmin, vec![], vec![]),
        ("cons_a", Role::Consultant, vec![org.a], vec![]),
        ("cons_a2", Role::Consultant, vec![org.a], vec![]),
        ("cons_b", Role::Consultant, vec![org.b], vec![]),
        ("cons_c", Role::Consultant, vec![org.c], vec![]),
        ("rm_north", Role::RegionManager, vec![], vec![org.north]),
        ("ba_a", Role::BranchAdmin, vec![org.a], vec![]),
    ] {
        let id = app.user(SLUG, name, Some(role), &branches, &regions).await;
        ids.insert(name, id);
    }
    let root = app.token(SLUG, "root").await;
    let mut w = World {
        app,
        org,
        root,
        ids,
        client_a: 0,
        client_b: 0,
        client_c: 0,
    };
    w.client_a = w.client("Ann", "Able", w.org.a).await;
    w.client_b = w.client("Bob", "Baker", w.org.b).await;
    w.client_c = w.client("Cid", "Cole", w.org.c).await;
    w
}

async fn world() -> World {
    world_on(TestApp::new(&[SLUG]).await).await
}

/// An RFC 3339 instant `hours` from now.
fn in_hours(hours: i64) -> String {
    (Utc::now() + Span::hours(hours)).to_rfc3339()
}

impl World {
    fn id(&self, user: &str) -> i64 {
        self.ids[user]
    }

    async fn token(&self, user: &str) -> String {
        self.app.token(SLUG, user).await
    }

    async fn client(&self, first: &str, last: &str, branch: i64) -> i64 {
        let (status, _, json) = self
            .app
            .call(
                Method::POST,
                SLUG,
                "/api/v1/clients/",
                Some(&self.root),
                Some(
                    json!({"first_name": first, "last_name": last, "gender": "MALE",
                            "country": "AU", "branch_id": branch}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json["id"].as_i64().expect("id")
    }

    async fn call(
        &self,
        method: Method,
        token: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, json) = self.app.call(method, SLUG, path, Some(token), body).await;
        (status, json)
    }

    /// `POST /api/v1/tasks/` with a title, detail and due date (tomorrow) unless `extra`
    /// overrides them.
    async fn try_task(&self, token: &str, extra: Value) -> (StatusCode, Value) {
        let mut body = json!({"title": "Call back", "detail": "About the visa",
                              "due_date": in_hours(24)});
        if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
            b.extend(extra);
        }
        self.call(Method::POST, token, "/api/v1/tasks/", Some(body))
            .await
    }

    /// A task created by `token` with `extra`; returns it.
    async fn task(&self, token: &str, extra: Value) -> Value {
        let (status, json) = self.try_task(token, extra).await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json
    }

    /// The task ids a list answers.
    async fn list(&self, token: &str, query: &str) -> Vec<i64> {
        let (status, json) = self
            .call(Method::GET, token, &format!("/api/v1/tasks/{query}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{json}");
        json["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|t| t["id"].as_i64().expect("id"))
            .collect()
    }

    async fn count(&self, sql: &str) -> i64 {
        self.app.tenant_count(SLUG, sql).await
    }

    async fn tasks(&self) -> i64 {
        self.count("SELECT count(*) FROM tasks").await
    }

    async fn events(&self) -> Vec<(String, Value)> {
        sqlx::query_as(
            "SELECT event_type, COALESCE(current, previous) FROM public.leopard_events ORDER BY id",
        )
        .fetch_all(self.app.tenancy.db.pool())
        .await
        .expect("events")
    }
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().expect("object").keys().cloned().collect()
}

fn set(fields: &[&str]) -> BTreeSet<String> {
    fields.iter().map(|f| (*f).to_owned()).collect()
}

fn id(task: &Value) -> i64 {
    task["id"].as_i64().expect("id")
}

/// Waits until every recorded event is completed (bounded, polling the database).
async fn all_completed(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let pending: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM public.leopard_events WHERE state <> 'completed'",
        )
        .fetch_one(app.tenancy.db.pool())
        .await
        .expect("pending");
        if pending == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{pending} events never completed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_task_answers_exactly_the_spec_fields_with_display_values_and_the_linked_client() {
    let w = world().await;
    let created = w
        .task(
            &w.root,
            json!({"priority": "HIGH", "assigned_to": w.id("cons_a"), "tags": ["visa", "urgent"],
                   "linked_entity_type": "client", "linked_entity_id": w.client_a}),
        )
        .await;
    assert_eq!(keys(&created), set(TASK_FIELDS));
    let (status, one) = w
        .call(
            Method::GET,
            &w.root,
            &format!("/api/v1/tasks/{}/", id(&created)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, created);
    let (_, page) = w.call(Method::GET, &w.root, "/api/v1/tasks/", None).await;
    assert_eq!(keys(&page), set(&["count", "next", "previous", "results"]));
    assert_eq!(keys(&page["results"][0]), set(TASK_FIELDS));
    assert_eq!(created["priority_display"], "High");
    assert_eq!(created["status"], "PENDING");
    assert_eq!(created["status_display"], "Pending");
    assert_eq!(created["assigned_to_name"], "cons_a");
    assert_eq!(created["assigned_to_full_name"], "cons_a Tester");
    assert_eq!(created["assigned_to_branch"], false);
    assert_eq!(
        created["assigned_by"],
        w.id("root"),
        "defaults to the creator"
    );
    assert_eq!(created["created_by_name"], "root");
    assert_eq!(created["content_type"], 10);
    assert_eq!(created["object_id"], w.client_a);
    assert_eq!(created["linked_entity_type"], "client");
    assert_eq!(created["linked_entity_id"], w.client_a);
    assert_eq!(created["linked_entity_name"], "Ann Able");
    assert_eq!(created["tags"], json!(["visa", "urgent"]));
    assert_eq!(created["comments"], json!([]));
    assert_eq!(created["completed_at"], Value::Null);
    let pool = w.task(&w.root, json!({"branch_id": w.org.b})).await;
    assert_eq!(pool["assigned_to_branch"], true);
    assert_eq!(pool["branch_name"], "Branch B");
    assert_eq!(pool["priority_display"], "Medium", "MEDIUM by default");
    assert_eq!(pool["linked_entity_name"], Value::Null);
    let (_, patched) = w
        .call(
            Method::PATCH,
            &w.root,
            &format!("/api/v1/tasks/{}/", id(&pool)),
            Some(json!({"status": "IN_PROGRESS"})),
        )
        .await;
    assert_eq!(patched["status_display"], "In Progress");
}

#[tokio::test]
async fn every_route_answers_its_status_code() {
    let w = world().await;
    let cons_a = w.token("cons_a").await;
    let task = w
        .task(&w.root, json!({"assigned_to": w.id("cons_a")}))
        .await;
    let path = format!("/api/v1/tasks/{}/", id(&task));
    let (status, _) = w.call(Method::GET, &w.root, "/api/v1/tasks/", None).await;
    assert_eq!(status, StatusCode::OK);
    for (method, body) in [
        (Method::GET, None),
        (Method::PUT, Some(json!({"title": "Put"}))),
        (Method::PATCH, Some(json!({"title": "Patch"}))),
    ] {
        let (status, json) = w.call(method.clone(), &w.root, &path, body).await;
        assert_eq!(status, StatusCode::OK, "{method} {json}");
    }
    for action in ["complete", "cancel"] {
        let (status, json) = w
            .call(Method::POST, &cons_a, &format!("{path}{action}/"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{action} {json}");
        assert_eq!(keys(&json), set(TASK_FIELDS));
    }
    let (status, json) = w
        .call(
            Method::POST,
            &cons_a,
            &format!("{path}add_comment/"),
            Some(json!({"comment": "done"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let pool = w.task(&w.root, json!({"branch_id": w.org.a})).await;
    let (status, json) = w
        .call(
            Method::POST,
            &cons_a,
            &format!("/api/v1/tasks/{}/claim/", id(&pool)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    for list in ["overdue", "due_soon"] {
        let (status, json) = w
            .call(
                Method::GET,
                &cons_a,
                &format!("/api/v1/tasks/{list}/"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert!(json.is_array(), "{list} is unpaginated: {json}");
    }
    let (status, json) = w.call(Method::DELETE, &w.root, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{json}");
    let (status, _) = w.call(Method::GET, &w.root, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for missing in [
        "/api/v1/tasks/999999/",
        "/api/v1/tasks/abc/",
        "/api/v1/tasks/0/",
    ] {
        let (status, _) = w.call(Method::GET, &w.root, missing, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    }
    let (status, _) = w
        .call(
            Method::POST,
            &w.root,
            "/api/v1/tasks/999999/complete/",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = w
        .call(
            Method::POST,
            &w.root,
            &format!("/api/v1/tasks/{}/", id(&pool)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _, _) = w
        .app
        .call(Method::GET, SLUG, "/api/v1/tasks/", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_task_cannot_be_assigned_to_both_a_user_and_a_branch() {
    let w = world().await;
    let (status, json) = w
        .try_task(
            &w.root,
            json!({"assigned_to": w.id("cons_a"), "branch_id": w.org.a}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        json,
        json!({"non_field_errors": ["Task cannot be assigned to both a user and a branch."]})
    );
    assert_eq!(w.tasks().await, 0);
    let task = w.task(&w.root, json!({"branch_id": w.org.a})).await;
    let path = format!("/api/v1/tasks/{}/", id(&task));
    let (status, json) = w
        .call(
            Method::PATCH,
            &w.root,
            &path,
            Some(json!({"assigned_to": w.id("cons_a"), "branch_id": w.org.b})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(json["non_field_errors"].is_array(), "{json}");
    // On a patch, assigning a user clears the pool and assigning a pool clears the user.
    let (_, to_user) = w
        .call(
            Method::PATCH,
            &w.root,
            &path,
            Some(json!({"assigned_to": w.id("cons_a")})),
        )
        .await;
    assert_eq!(
        (to_user["assigned_to"].clone(), to_user["branch_id"].clone()),
        (json!(w.id("cons_a")), Value::Null)
    );
    let (_, to_pool) = w
        .call(
            Method::PATCH,
            &w.root,
            &path,
            Some(json!({"branch_id": w.org.b})),
        )
        .await;
    assert_eq!(
        (to_pool["assigned_to"].clone(), to_pool["branch_id"].clone()),
        (Value::Null, json!(w.org.b))
    );
    let (_, nobody) = w
        .call(
            Method::PATCH,
            &w.root,
            &path,
            Some(json!({"branch_id": null})),
        )
        .await;
    assert_eq!(
        (nobody["assigned_to"].clone(), nobody["branch_id"].clone()),
        (Value::Null, Value::Null)
    );
}

#[tokio::test]
async fn linked_entities_must_be_of_a_known_type_exist_and_be_in_scope() {
    let w = world().await;
    let cons_a = w.token("cons_a").await;
    let (status, json) = w
        .try_task(
            &w.root,
            json!({"linked_entity_type": "spaceship", "linked_entity_id": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        json,
        json!({"linked_entity_type": ["Invalid entity type: spaceship"]})
    );
    let (status, json) = w
        .try_task(
            &w.root,
            json!({"linked_entity_type": "client", "linked_entity_id": 999_999}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(json["linked_entity_id"].is_array(), "{json}");
    let (status, json) = w
        .try_task(
            &w.root,
            json!({"linked_entity_type": "collegeapplication", "linked_entity_id": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        json["linked_entity_id"][0]
            .as_str()
            .is_some_and(|m| m.contains("does not exist")),
        "{json}"
    );
    let (status, json) = w
        .try_task(&w.root, json!({"linked_entity_type": "client"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(json["linked_entity_id"].is_array(), "{json}");
    // A client out of the caller's scope reads as a missing one.
    let (status, json) = w
        .try_task(
            &cons_a,
            json!({"linked_entity_type": "client", "linked_entity_id": w.client_c}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(json["linked_entity_id"].is_array(), "{json}");
    assert_eq!(w.tasks().await, 0);
    // Types are case-insensitive; users and branches can be linked too.
    let linked = w
        .task(
            &cons_a,
            json!({"linked_entity_type": "Client", "linked_entity_id": w.client_a}),
        )
        .await;
    assert_eq!(linked["linked_entity_type"], "client");
    let user = w
        .task(
            &w.root,
            json!({"linked_entity_type": "user", "linked_entity_id": w.id("cons_b")}),
        )
        .await;
    assert_eq!(user["content_type"], 6);
    assert_eq!(user["linked_entity_name"], Value::Null);
    // A patch can move the link to another record of the same type, or clear it.
    let path = format!("/api/v1/tasks/{}/", id(&linked));
    let (status, moved) = w
        .call(
            Method::PATCH,
            &w.root,
            &path,
            Some(json!({"linked_entity_id": w.client_b})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["linked_entity_name"], "Bob Baker");
    let (_, cleared) = w
        .call(
            Method::PATCH,
            &w.root,
            &path,
            Some(json!({"linked_entity_type": null})),
        )
        .await;
    assert_eq!(
        (
            cleared["content_type"].clone(),
            cleared["object_id"].clone()
        ),
        (Value::Null, Value::Null)
    );
}

#[tokio::test]
async fn bad_input_is_a_4xx_and_changes_nothing() {
    let w = world().await;
    let cons_a = w.token("cons_a").await;
    let task = w
        .task(&w.root, json!({"assigned_to": w.id("cons_a")}))
        .await;
    let path = format!("/api/v1/tasks/{}/", id(&task));
    let long = "x".repeat(201);
    for (body, field) in [
        (json!({"due_date": "tomorrow"}), "due_date"),
        (json!({"due_date": "2030-02-31T10:00:00Z"}), "due_date"),
        (json!({"due_date": null}), "due_date"),
        (json!({"title": long}), "title"),
        (json!({"title": 5}), "title"),
        (json!({"title": "nul\u{0}here"}), "title"),
        (json!({"tags": ["a\u{0}"]}), "tags"),
        (json!({"title": "  "}), "title"),
        (json!({"detail": ""}), "detail"),
        (json!({"priority": "SOMEDAY"}), "priority"),
        (json!({"tags": "visa"}), "tags"),
        (json!({"tags": [1, 2]}), "tags"),
        (json!({"assigned_to": "x"}), "assigned_to"),
        (json!({"assigned_to": 999_999}), "assigned_to"),
        (json!({"branch_id": 999_999}), "branch_id"),
        (json!({"assigned_by": 999_999}), "assigned_by"),
        (
            json!({"linked_entity_id": 1.5, "linked_entity_type": "client"}),
            "linked_entity_id",
        ),
    ] {
        let (status, json) = w.try_task(&w.root, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "create {body}: {json}");
        assert!(json[field].is_array(), "create {body}: {json}");
        if field != "title" && field != "detail" {
            let (status, json) = w
                .call(Method::PATCH, &w.root, &path, Some(body.clone()))
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "patch {body}: {json}");
        }
    }
    let (status, _) = w
        .call(
            Method::PATCH,
            &w.root,
            &path,
            Some(json!({"status": "DONE"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = w
        .call(Method::POST, &w.root, "/api/v1/tasks/", Some(json!([1, 2])))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = w
        .app
        .call(
            Method::PATCH,
            SLUG,
            &path,
            Some(&w.root),
            Some(json!("text")),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for comment in [
        json!({}),
        json!({"comment": " "}),
        json!({"comment": 7}),
        json!({"comment": "a\u{0}b"}),
        json!({"comment": "y".repeat(5_001)}),
    ] {
        let (status, json) = w
            .call(
                Method::POST,
                &cons_a,
                &format!("{path}add_comment/"),
                Some(comment.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{comment}: {json}");
        assert!(json["comment"].is_array(), "{json}");
    }
    for query in [
        "due_soon/?days=-1",
        "due_soon/?days=366",
        "due_soon/?days=abc",
        "?content_type=10",
        "?object_id=3",
        "?content_type=x&object_id=1",
        "?client=abc",
        "?status=DONE",
        "?priority[]=SOMEDAY",
        "?page=abc",
    ] {
        let (status, json) = w
            .call(
                Method::GET,
                &w.root,
                &format!("/api/v1/tasks/{query}"),
                None,
            )
            .await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
            "{query}: {status} {json}"
        );
    }
    assert_eq!(w.tasks().await, 1, "no task was created");
    let (_, now) = w.call(Method::GET, &w.root, &path, None).await;
    assert_eq!(now, task, "the task is unchanged");
    assert_eq!(
        w.events()
            .await
            .iter()
            .filter(|(t, _)| t.starts_with("Task."))
            .count(),
        1,
        "only the creation was recorded"
    );
}

#[tokio::test]
async fn a_consultant_of_branch_a_gets_404_for_a_task_of_branch_bs_pool_linked_to_a_branch_b_client(
) {
    let w = world().await;
    let cons_a = w.token("cons_a").await;
    let task = w
        .task(
            &w.root,
            json!({"branch_id": w.org.b, "linked_entity_type": "client",
                   "linked_entity_id": w.client_b}),
        )
        .await;
    let path = format!("/api/v1/tasks/{}/", id(&task));
    for (method, suffix, body) in [
        (Method::GET, "", None),
        (Method::PATCH, "", Some(json!({"title": "Mine now"}))),
        (Method::PUT, "", Some(json!({"title": "Mine now"}))),
        (Method::DELETE, "", None),
        (Method::POST, "complete/", None),
        (Method::POST, "cancel/", None),
        (Method::POST, "claim/", None),
        (Method::POST, "add_comment/", Some(json!({"comment": "hi"}))),
    ] {
        let (status, json) = w
            .call(method.clone(), &cons_a, &format!("{path}{suffix}"), body)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {suffix}: {json}");
    }
    assert!(!w.list(&cons_a, "").await.contains(&id(&task)));
    let cons_b = w.token("cons_b").await;
    assert_eq!(w.list(&cons_b, "").await, vec![id(&task)]);
    let (_, now) = w.call(Method::GET, &w.root, &path, None).await;
    assert_eq!(now["title"], "Call back", "nothing changed");
}

#[tokio::test]
async fn lists_and_object_access_agree_for_owners_pools_linked_clients_regions_and_super_admins() {
    let w = world().await;
    let cons_c = w.token("cons_c").await;
    // Assigned to cons_a across branches: a C client, nobody's pool.
    let assigned = w
        .task(
            &w.root,
            json!({"assigned_to": w.id("cons_a"), "linked_entity_type": "client",
                   "linked_entity_id": w.client_c}),
        )
        .await;
    // Created by cons_c, linked to nothing, assigned to nobody.
    let created = w.task(&cons_c, json!({})).await;
    let pool_a = w.task(&w.root, json!({"branch_id": w.org.a})).await;
    let pool_b = w.task(&w.root, json!({"branch_id": w.org.b})).await;
    let pool_c = w.task(&w.root, json!({"branch_id": w.org.c})).await;
    let pool_d = w.task(&w.root, json!({"branch_id": w.org.d})).await;
    // Linked to an A client, assigned to cons_c.
    let client_a = w
        .task(
            &w.root,
            json!({"assigned_to": w.id("cons_c"), "linked_entity_type": "client",
                   "linked_entity_id": w.client_a}),
        )
        .await;
    // Root's own, linked to nothing.
    let orphan = w.task(&w.root, json!({})).await;
    let all = [
        &assigned, &created, &pool_a, &pool_b, &pool_c, &pool_d, &client_a, &orphan,
    ];
    let expect = |tasks: &[&Value]| -> BTreeSet<i64> { tasks.iter().map(|t| id(t)).collect() };
    for (user, visible) in [
        ("cons_a", expect(&[&assigned, &pool_a, &client_a])),
        ("cons_a2", expect(&[&pool_a, &client_a])),
        ("cons_b", expect(&[&pool_b])),
        ("cons_c", expect(&[&assigned, &created, &pool_c, &client_a])),
        ("ba_a", expect(&[&pool_a, &client_a])),
        ("rm_north", expect(&[&pool_a, &pool_b, &client_a])),
        ("root", expect(&all)),
    ] {
        let token = w.token(user).await;
        let listed: BTreeSet<i64> = w.list(&token, "?page_size=100").await.into_iter().collect();
        assert_eq!(listed, visible, "{user}'s list");
        for task in all {
            let (status, _) = w
                .call(
                    Method::GET,
                    &token,
                    &format!("/api/v1/tasks/{}/", id(task)),
                    None,
                )
                .await;
            let expected = if visible.contains(&id(task)) {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            assert_eq!(status, expected, "{user} GET task {}", task["title"]);
        }
    }
}

#[tokio::test]
async fn assignees_and_pools_outside_the_callers_scope_are_forbidden() {
    let w = world().await;
    let cons_a = w.token("cons_a").await;
    let (status, json) = w
        .try_task(&cons_a, json!({"assigned_to": w.id("cons_c")}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{json}");
    let (status, json) = w.try_task(&cons_a, json!({"branch_id": w.org.c})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{json}");
    assert_eq!(w.tasks().await, 0);
    let ok = w
        .task(&cons_a, json!({"assigned_to": w.id("cons_a2")}))
        .await;
    let (status, _) = w
        .call(
            Method::PATCH,
            &cons_a,
            &format!("/api/v1/tasks/{}/", id(&ok)),
            Some(json!({"branch_id": w.org.b})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn claiming_needs_a_pool_the_caller_belongs_to() {
    let w = world().await;
    let cons_a = w.token("cons_a").await;
    let rm = w.token("rm_north").await;
    let pool = w
        .task(&w.root, json!({"branch_id": w.org.a, "assigned_by": null}))
        .await;
    let path = format!("/api/v1/tasks/{}/claim/", id(&pool));
    // The region manager sees the pool but is no member of branch A.
    let (status, json) = w.call(Method::POST, &rm, &path, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    assert!(json["detail"].is_string(), "{json}");
    let (status, claimed) = w.call(Method::POST, &cons_a, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{claimed}");
    assert_eq!(claimed["assigned_to"], w.id("cons_a"));
    assert_eq!(claimed["branch_id"], Value::Null);
    assert_eq!(claimed["assigned_to_branch"], false);
    assert_eq!(claimed["assigned_by"], w.id("root"), "kept");
    // No longer in a pool: nothing to claim.
    let (status, json) = w.call(Method::POST, &cons_a, &path, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    let unassigned = w.task(&w.root, json!({})).await;
    let (status, _) = w
        .call(
            Method::POST,
            &w.root,
            &format!("/api/v1/tasks/{}/claim/", id(&unassigned)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn only_the_assignee_or_the_assigner_completes_or_cancels() {
    let w = world().await;
    let cons_a = w.token("cons_a").await;
    let cons_a2 = w.token("cons_a2").await;
    let task = w
        .task(
            &w.root,
            json!({"assigned_to": w.id("cons_a"), "linked_entity_type": "client",
                   "linked_entity_id": w.client_a}),
        )
        .await;
    let path = format!("/api/v1/tasks/{}/", id(&task));
    for action in ["complete", "cancel"] {
        // cons_a2 sees the task through the A client, but is neither assignee nor assigner.
        let (status, json) = w
            .call(Method::POST, &cons_a2, &format!("{path}{action}/"), None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{action}: {json}");
        assert!(json["detail"].is_string());
    }
    let (_, still) = w.call(Method::GET, &w.root, &path, None).await;
    assert_eq!(still["status"], "PENDING");
    let (status, done) = w
        .call(Method::POST, &cons_a, &format!("{path}complete/"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(done["status"], "COMPLETED");
    assert!(done["completed_at"].is_string(), "{done}");
    let (status, cancelled) = w
        .call(Method::POST, &w.root, &format!("{path}cancel/"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "the assigner may cancel");
    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(cancelled["completed_at"], Value::Null);
}

#[tokio::test]
async fn completing_by_patch_sets_completed_at_and_leaving_completed_clears_it() {
    let w = world().await;
    let task = w.task(&w.root, json!({})).await;
    let path = format!("/api/v1/tasks/{}/", id(&task));
    let (_, done) = w
        .call(
            Method::PATCH,
            &w.root,
            &path,
            Some(json!({"status": "COMPLETED"})),
        )
        .await;
    assert!(done["completed_at"].is_string(), "{done}");
    let (_, again) = w
        .call(
            Method::PATCH,
            &w.root,
            &path,
            Some(json!({"title": "Renamed"})),
        )
        .await;
    assert_eq!(again["completed_at"], done["completed_at"], "kept");
    let (_, reopened) = w
        .call(
            Method::PUT,
            &w.root,
            &path,
            Some(json!({"status": "IN_PROGRESS"})),
        )
        .await;
    assert_eq!(reopened["completed_at"], Value::Null);
    assert_eq!(reopened["title"], "Renamed", "absent fields unchanged");
}

#[tokio::test]
async fn the_creator_or_a_holder_of_delete_task_deletes() {
    let w = world().await;
    let cons_a = w.token("cons_a").await;
    let ba_a = w.token("ba_a").await;
    let own = w.task(&cons_a, json!({})).await;
    let (status, _) = w
        .call(
            Method::DELETE,
            &cons_a,
            &format!("/api/v1/tasks/{}/", id(&own)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let theirs = w
        .task(&w.root, json!({"assigned_to": w.id("cons_a")}))
        .await;
    let path = format!("/api/v1/tasks/{}/", id(&theirs));
    let (status, _) = w.call(Method::DELETE, &cons_a, &path, None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a consultant lacks delete_task"
    );
    let pool = w.task(&w.root, json!({"branch_id": w.org.a})).await;
    let (status, _) = w
        .call(
            Method::DELETE,
            &ba_a,
            &format!("/api/v1/tasks/{}/", id(&pool)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "the branch admin of A");
    let (status, _) = w.call(Method::DELETE, &ba_a, &path, None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "out of the branch admin's scope"
    );
    assert_eq!(w.tasks().await, 1);
}

#[tokio::test]
async fn a_comment_records_its_mentions_and_notifies_each_mentioned_user_once() {
    let w = world().await;
    let cons_a = w.token("cons_a").await;
    let cons_b = w.token("cons_b").await;
    let task = w
        .task(
            &w.root,
            json!({"assigned_to": w.id("cons_a"), "title": "Docs"}),
        )
        .await;
    let path = format!("/api/v1/tasks/{}/add_comment/", id(&task));
    let text = "@cons_a2 and @CONS_B, again @cons_a2. me: @cons_a, @ghost, mail@cons_c";
    let (status, out) = w
        .call(Method::POST, &cons_a, &path, Some(json!({"comment": text})))
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(keys(&out), set(TASK_FIELDS));
    let comments = out["comments"].as_array().expect("comments");
    assert_eq!(comments.len(), 1);
    let comment = &comments[0];
    assert_eq!(keys(comment), set(COMMENT_FIELDS));
    assert_eq!(comment["user_id"], w.id("cons_a"));
    assert_eq!(comment["username"], "cons_a");
    assert_eq!(comment["full_name"], "cons_a Tester");
    assert_eq!(comment["text"], text);
    let mentions = comment["mentions"].as_array().expect("mentions");
    let spans: Vec<(String, i64, i64)> = mentions
        .iter()
        .map(|m| {
            assert_eq!(keys(m), set(MENTION_FIELDS));
            (
                m["username"].as_str().expect("username").to_owned(),
                m["start_pos"].as_i64().expect("start"),
                m["end_pos"].as_i64().expect("end"),
            )
        })
        .collect();
    assert_eq!(
        spans,
        vec![
            ("cons_a2".to_owned(), 0, 8),
            ("cons_b".to_owned(), 13, 20),
            ("cons_a2".to_owned(), 28, 36),
            ("cons_a".to_owned(), 42, 49),
        ]
    );
    let mentioned = |user: &str| {
        format!(
            "SELECT count(*) FROM notifications WHERE assigned_to_id = {} \
             AND notification_type = 'TASK_MENTIONED'",
            w.id(user)
        )
    };
    assert_eq!(w.count(&mentioned("cons_a2")).await, 1);
    assert_eq!(w.count(&mentioned("cons_b")).await, 1);
    assert_eq!(w.count(&mentioned("cons_a")).await, 0, "not the author");
    assert_eq!(
        w.count(&mentioned("cons_c")).await,
        0,
        "an e-mail is no mention"
    );
    let message: String = {
        let mut tx = w.app.context(SLUG).begin().await.expect("tx");
        let m = sqlx::query_scalar(
            "SELECT message FROM notifications WHERE notification_type = 'TASK_MENTIONED' LIMIT 1",
        )
        .fetch_one(&mut *tx)
        .await
        .expect("message");
        tx.commit().await.expect("commit");
        m
    };
    assert_eq!(message, "cons_a mentioned you in a comment on task: Docs");
    // A second comment appends; cons_b (branch B) cannot see the task at all.
    let (_, out) = w
        .call(
            Method::POST,
            &cons_a,
            &path,
            Some(json!({"comment": "second"})),
        )
        .await;
    assert_eq!(out["comments"].as_array().map(Vec::len), Some(2));
    assert_eq!(out["comments"][1]["mentions"], json!([]));
    let (status, _) = w
        .call(
            Method::POST,
            &cons_b,
            &path,
            Some(json!({"comment": "me too"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn overdue_and_due_soon_list_the_callers_own_open_tasks() {
    let w = world().await;
    let cons_a = w.token("cons_a").await;
    let me = w.id("cons_a");
    let mine = |hours: i64| json!({"assigned_to": me, "due_date": in_hours(hours)});
    let late = w.task(&w.root, mine(-48)).await;
    let later = w.task(&w.root, mine(-2)).await;
    let late_done = w.task(&w.root, mine(-3)).await;
    let (status, _) = w
        .call(
            Method::PATCH,
            &w.root,
            &format!("/api/v1/tasks/{}/", id(&late_done)),
            Some(json!({"status": "COMPLETED"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let soon = w.task(&w.root, mine(30)).await;
    let next_week = w.task(&w.root, mine(24 * 5)).await;
    let _others = w
        .task(
            &w.root,
            json!({"assigned_to": w.id("cons_a2"), "due_date": in_hours(-5)}),
        )
        .await;
    let _pool = w
        .task(
            &w.root,
            json!({"branch_id": w.org.a, "due_date": in_hours(-5)}),
        )
        .await;
    let ids =
        |json: &Value| -> Vec<i64> { json.as_array().expect("array").iter().map(id).collect() };
    let (_, overdue) = w
        .call(Method::GET, &cons_a, "/api/v1/tasks/overdue/", None)
        .await;
    assert_eq!(ids(&overdue), vec![id(&late), id(&later)], "oldest first");
    let (_, soon_list) = w
        .call(Method::GET, &cons_a, "/api/v1/tasks/due_soon/", None)
        .await;
    assert_eq!(ids(&soon_list), vec![id(&soon)]);
    let (_, week) = w
        .call(Method::GET, &cons_a, "/api/v1/tasks/due_soon/?days=7", None)
        .await;
    assert_eq!(ids(&week), vec![id(&soon), id(&next_week)]);
    let (_, today) = w
        .call(Method::GET, &cons_a, "/api/v1/tasks/due_soon/?days=0", None)
        .await;
    assert_eq!(ids(&today), Vec::<i64>::new());
    // The list hides overdue open tasks only when asked to.
    let shown = w.list(&cons_a, "?assigned_to_me=true").await;
    assert!(shown.contains(&id(&late)));
    let hidden = w
        .list(&cons_a, "?assigned_to_me=true&include_overdue=false")
        .await;
    assert!(!hidden.contains(&id(&late)));
    assert!(hidden.contains(&id(&late_done)), "completed ones stay");
    assert!(hidden.contains(&id(&soon)));
}

#[tokio::test]
async fn list_filters_select_and_order_the_tasks() {
    let w = world().await;
    let cons_a = w.token("cons_a").await;
    let ba_a = w.token("ba_a").await;
    let mine = w
        .task(
            &w.root,
            json!({"assigned_to": w.id("cons_a"), "priority": "HIGH",
                   "due_date": in_hours(10), "linked_entity_type": "client",
                   "linked_entity_id": w.client_a}),
        )
        .await;
    let pool = w
        .task(
            &w.root,
            json!({"branch_id": w.org.a, "priority": "LOW", "due_date": in_hours(20)}),
        )
        .await;
    let other = w
        .task(
            &w.root,
            json!({"assigned_to": w.id("cons_a2"), "priority": "URGENT",
                   "due_date": in_hours(30), "linked_entity_type": "client",
                   "linked_entity_id": w.client_a}),
        )
        .await;
    let (_, _) = w
        .call(
            Method::PATCH,
            &w.root,
            &format!("/api/v1/tasks/{}/", id(&other)),
            Some(json!({"status": "IN_PROGRESS"})),
        )
        .await;
    assert_eq!(
        w.list(&cons_a, "").await,
        vec![id(&other), id(&pool), id(&mine)],
        "latest due first"
    );
    assert_eq!(
        w.list(&cons_a, "?assigned_to_me=true&all_tasks=true").await,
        vec![id(&pool), id(&mine)],
        "mine and my branches' pools"
    );
    assert_eq!(
        w.list(&ba_a, "?assigned_to_me=true").await,
        vec![id(&pool)],
        "the branch admin's pool"
    );
    assert_eq!(
        w.list(&cons_a, "?status=IN_PROGRESS").await,
        vec![id(&other)]
    );
    assert_eq!(
        w.list(&cons_a, "?status[]=PENDING&status[]=IN_PROGRESS")
            .await
            .len(),
        3
    );
    assert_eq!(
        w.list(&cons_a, "?priority=low,high").await,
        vec![id(&pool), id(&mine)]
    );
    assert_eq!(
        w.list(&cons_a, &format!("?client={}", w.client_a)).await,
        vec![id(&other), id(&mine)]
    );
    assert_eq!(
        w.list(
            &cons_a,
            &format!("?content_type=10&object_id={}", w.client_a)
        )
        .await,
        vec![id(&other), id(&mine)]
    );
    assert_eq!(
        w.list(&cons_a, &format!("?assigned_to={}", w.id("cons_a2")))
            .await,
        vec![id(&other)]
    );
}

#[tokio::test]
async fn writes_record_task_events_with_the_assignment_and_link_in_their_state() {
    let w = world().await;
    let task = w
        .task(
            &w.root,
            json!({"assigned_to": w.id("cons_a"), "linked_entity_type": "client",
                   "linked_entity_id": w.client_a}),
        )
        .await;
    let path = format!("/api/v1/tasks/{}/", id(&task));
    w.call(
        Method::PATCH,
        &w.root,
        &path,
        Some(json!({"branch_id": w.org.a, "status": "IN_PROGRESS"})),
    )
    .await;
    w.call(Method::DELETE, &w.root, &path, None).await;
    let events = w.events().await;
    let types: Vec<&str> = events
        .iter()
        .map(|(t, _)| t.as_str())
        .filter(|t| t.starts_with("Task."))
        .collect();
    assert_eq!(
        types,
        vec![
            "Task.CREATE",
            "Task.UPDATE",
            "Task.status.UPDATE",
            "Task.assigned_to.UPDATE",
            "Task.branch_id.UPDATE",
            "Task.DELETE",
        ]
    );
    let (_, created) = events
        .iter()
        .find(|(t, _)| t == "Task.CREATE")
        .expect("create");
    let state: &Map<String, Value> = created.as_object().expect("state");
    for key in [
        "assigned_to",
        "branch_id",
        "title",
        "content_type",
        "object_id",
        "client_id",
    ] {
        assert!(state.contains_key(key), "{key} in {created}");
    }
    assert_eq!(state["client_id"], w.client_a);
    assert_eq!(state["assigned_to"], w.id("cons_a"));
}

#[tokio::test]
async fn with_the_bus_assignment_claim_and_reassignment_notify_exactly_once() {
    let (app, running) = TestApp::with_bus(&[SLUG]).await;
    let w = world_on(app).await;
    let cons_a = w.token("cons_a").await;
    // Created with an assignee: one "New Task Assigned".
    let assigned = w
        .task(
            &w.root,
            json!({"title": "Passport", "priority": "HIGH", "assigned_to": w.id("cons_a")}),
        )
        .await;
    // Assigned to oneself: nothing.
    w.task(
        &cons_a,
        json!({"title": "Self", "assigned_to": w.id("cons_a")}),
    )
    .await;
    // Claimed from the pool: one "Task Claimed".
    let pool = w
        .task(&w.root, json!({"title": "Pool job", "branch_id": w.org.a}))
        .await;
    let (status, _) = w
        .call(
            Method::POST,
            &cons_a,
            &format!("/api/v1/tasks/{}/claim/", id(&pool)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Reassigned by patch: one "Task Reassigned" to the new assignee.
    let (status, _) = w
        .call(
            Method::PATCH,
            &w.root,
            &format!("/api/v1/tasks/{}/", id(&assigned)),
            Some(json!({"assigned_to": w.id("cons_a2")})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    all_completed(&w.app).await;
    running.shutdown().await;
    let rows: Vec<(i64, String, String, Value)> = {
        let mut tx = w.app.context(SLUG).begin().await.expect("tx");
        let rows = sqlx::query_as(
            "SELECT assigned_to_id, title, message, meta_info FROM notifications
              WHERE notification_type = 'TASK_ASSIGNED' ORDER BY id",
        )
        .fetch_all(&mut *tx)
        .await
        .expect("notifications");
        tx.commit().await.expect("commit");
        rows
    };
    // Two workers may handle the events in any order.
    let mut summary: Vec<(i64, &str, &str)> = rows
        .iter()
        .map(|(to, title, message, _)| (*to, title.as_str(), message.as_str()))
        .collect();
    summary.sort_unstable();
    assert_eq!(
        summary,
        vec![
            (
                w.id("cons_a"),
                "New Task Assigned: Passport",
                "A new high priority task has been assigned to you."
            ),
            (
                w.id("cons_a"),
                "Task Claimed: Pool job",
                "You have claimed a task from Branch A."
            ),
            (
                w.id("cons_a2"),
                "Task Reassigned: Passport",
                "Task \"Passport\" has been assigned to you."
            ),
        ]
    );
    let (_, _, _, meta) = rows
        .iter()
        .find(|(_, title, _, _)| title.starts_with("New Task"))
        .expect("the creation notice");
    assert_eq!(meta["task_id"], id(&assigned));
    assert_eq!(meta["priority"], "HIGH");
}

#[tokio::test]
async fn with_the_bus_a_client_linked_task_writes_created_and_completed_timeline_entries() {
    let (app, running) = TestApp::with_bus(&[SLUG]).await;
    let w = world_on(app).await;
    let cons_a = w.token("cons_a").await;
    let task = w
        .task(
            &w.root,
            json!({"title": "Collect docs", "assigned_to": w.id("cons_a"),
                   "linked_entity_type": "client", "linked_entity_id": w.client_a}),
        )
        .await;
    // Not linked to a client: no timeline entry anywhere.
    w.task(&w.root, json!({"title": "Unlinked"})).await;
    let (status, _) = w
        .call(
            Method::POST,
            &cons_a,
            &format!("/api/v1/tasks/{}/complete/", id(&task)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    all_completed(&w.app).await;
    running.shutdown().await;
    let (status, timeline) = w
        .call(
            Method::GET,
            &w.root,
            &format!("/api/v1/clients/{}/timeline/", w.client_a),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let entries: Vec<(String, String)> = timeline["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|e| {
            e["activity_type"]
                .as_str()
                .is_some_and(|t| t.starts_with("TASK_"))
        })
        .map(|e| {
            (
                e["activity_type"].as_str().unwrap_or_default().to_owned(),
                e["description"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        vec![
            (
                "TASK_COMPLETED".to_owned(),
                "Task \"Collect docs\" completed".to_owned()
            ),
            (
                "TASK_CREATED".to_owned(),
                "Task \"Collect docs\" created".to_owned()
            ),
        ]
    );
    assert_eq!(
        w.count("SELECT count(*) FROM client_activities WHERE activity_type LIKE 'TASK_%'")
            .await,
        2
    );
}
