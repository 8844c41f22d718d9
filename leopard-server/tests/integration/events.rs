//! Domain events of the identity resources through HTTP: recorded in the change's transaction
//! (and only when it commits), processed by the built-in `audit.record` handler when a bus
//! runs; and the `leopard events` CLI.

use crate::common;

use std::time::Duration;

use common::{TestApp, PASSWORD};
use http::{Method, StatusCode};
use leopard_rbac::Role;
use serde_json::json;
use sqlx::Row as _;

/// `(event_type, entity_id, actor_id, changed_fields)` of every recorded event, in order.
async fn events(app: &TestApp) -> Vec<(String, String, Option<i64>, Vec<String>)> {
    sqlx::query(
        "SELECT event_type, entity_id, actor_id, changed_fields FROM public.leopard_events
          ORDER BY id",
    )
    .fetch_all(app.tenancy.db.pool())
    .await
    .expect("events")
    .iter()
    .map(|r| {
        (
            r.get("event_type"),
            r.get("entity_id"),
            r.get("actor_id"),
            r.get("changed_fields"),
        )
    })
    .collect()
}

fn new_user(username: &str, branches: &[i64]) -> serde_json::Value {
    json!({
        "username": username, "email": format!("{username}@example.com"), "password": PASSWORD,
        "first_name": "New", "last_name": "User", "group_name": "CONSULTANT",
        "branch_ids": branches,
    })
}

#[tokio::test]
async fn creating_a_user_records_user_create_with_the_actor_and_a_failed_request_records_nothing() {
    let app = TestApp::new(&["acme"]).await;
    let org = app.seed_org("acme").await;
    let admin = app
        .user("acme", "admin", Some(Role::SuperAdmin), &[], &[])
        .await;
    let token = app.token("acme", "admin").await;

    let (status, _, body) = app
        .call(
            Method::POST,
            "acme",
            "/api/v1/users/",
            Some(&token),
            Some(new_user("newbie", &[org.a])),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_i64().expect("id").to_string();
    let recorded = events(&app).await;
    assert_eq!(
        recorded,
        [("User.CREATE".to_owned(), id.clone(), Some(admin), vec![])]
    );
    let row = sqlx::query(
        "SELECT tenant_slug, action, current FROM public.leopard_events WHERE entity_id = $1",
    )
    .bind(&id)
    .fetch_one(app.tenancy.db.pool())
    .await
    .expect("event");
    assert_eq!(row.get::<String, _>("tenant_slug"), "acme");
    assert_eq!(row.get::<String, _>("action"), "CREATE");
    let current: serde_json::Value = row.get("current");
    assert_eq!(current["username"], "newbie");
    assert_eq!(current["groups"], json!(["CONSULTANT"]));
    assert_eq!(current["branch_ids"], json!([org.a]));

    // The same username again: 400, and the rolled-back transaction left no event.
    let (status, _, body) = app
        .call(
            Method::POST,
            "acme",
            "/api/v1/users/",
            Some(&token),
            Some(new_user("NEWBIE", &[org.a])),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(events(&app).await.len(), 1);
}

#[tokio::test]
async fn patching_and_deactivating_a_user_record_per_field_updates() {
    let app = TestApp::new(&["acme"]).await;
    let org = app.seed_org("acme").await;
    let admin = app
        .user("acme", "admin", Some(Role::SuperAdmin), &[], &[])
        .await;
    let target = app
        .user("acme", "casey", Some(Role::Consultant), &[org.a], &[])
        .await;
    let token = app.token("acme", "admin").await;
    let path = format!("/api/v1/users/{target}/");

    let (status, _, body) = app
        .call(
            Method::PATCH,
            "acme",
            &path,
            Some(&token),
            Some(json!({"first_name": "Casey", "branch_ids": [org.a, org.b]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Nothing tracked changes: no event.
    let (status, _, _) = app
        .call(
            Method::PATCH,
            "acme",
            &path,
            Some(&token),
            Some(json!({"first_name": "Casey"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = app
        .call(Method::DELETE, "acme", &path, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let t = target.to_string();
    let fields = |f: &[&str]| f.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        events(&app).await,
        [
            (
                "User.UPDATE".to_owned(),
                t.clone(),
                Some(admin),
                fields(&["first_name", "branch_ids"])
            ),
            (
                "User.first_name.UPDATE".to_owned(),
                t.clone(),
                Some(admin),
                fields(&["first_name"])
            ),
            (
                "User.branch_ids.UPDATE".to_owned(),
                t.clone(),
                Some(admin),
                fields(&["branch_ids"])
            ),
            (
                "User.UPDATE".to_owned(),
                t.clone(),
                Some(admin),
                fields(&["is_active"])
            ),
            (
                "User.is_active.UPDATE".to_owned(),
                t,
                Some(admin),
                fields(&["is_active"])
            ),
        ]
    );
}

#[tokio::test]
async fn branch_and_region_writes_record_create_update_delete_and_restore() {
    let app = TestApp::new(&["acme"]).await;
    let org = app.seed_org("acme").await;
    let admin = app
        .user("acme", "admin", Some(Role::SuperAdmin), &[], &[])
        .await;
    let token = app.token("acme", "admin").await;

    let (status, _, body) = app
        .call(
            Method::POST,
            "acme",
            "/api/v1/branches/",
            Some(&token),
            Some(json!({"name": "Branch E", "region_id": org.north})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let e = body["id"].as_i64().expect("id");
    let path = format!("/api/v1/branches/{e}/");
    let (status, _, _) = app
        .call(
            Method::PATCH,
            "acme",
            &path,
            Some(&token),
            Some(json!({"region_id": org.south})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = app
        .call(Method::DELETE, "acme", &path, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Deleting it again is a 404 and records nothing.
    let (status, _, _) = app
        .call(Method::DELETE, "acme", &path, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = app
        .call(
            Method::POST,
            "acme",
            &format!("{path}restore/"),
            Some(&token),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, _, body) = app
        .call(
            Method::POST,
            "acme",
            "/api/v1/regions/",
            Some(&token),
            Some(json!({"name": "West"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let west = body["id"].as_i64().expect("id");
    let region = format!("/api/v1/regions/{west}/");
    let (status, _, _) = app
        .call(
            Method::PATCH,
            "acme",
            &region,
            Some(&token),
            Some(json!({"description": "Coast"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = app
        .call(Method::DELETE, "acme", &region, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let recorded = events(&app).await;
    let types: Vec<&str> = recorded.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        types,
        [
            "Branch.CREATE",
            "Branch.UPDATE",
            "Branch.region.UPDATE",
            "Branch.DELETE",
            "Branch.UPDATE",
            "Region.CREATE",
            "Region.UPDATE",
            "Region.description.UPDATE",
            "Region.DELETE",
        ]
    );
    assert!(recorded.iter().all(|e| e.2 == Some(admin)));
    assert_eq!(recorded[3].1, e.to_string());
    assert_eq!(recorded[4].3, ["deleted_at"]);
    let previous: serde_json::Value = sqlx::query_scalar(
        "SELECT previous FROM public.leopard_events WHERE event_type = 'Branch.DELETE'",
    )
    .fetch_one(app.tenancy.db.pool())
    .await
    .expect("previous");
    assert_eq!(previous["name"], "Branch E");
    assert_eq!(previous["region"], org.south);
    assert_eq!(recorded[8].1, west.to_string());
}

#[tokio::test]
async fn with_a_running_bus_the_audit_handler_writes_one_audit_log_row_per_event() {
    let (app, bus) = TestApp::with_bus(&["acme"]).await;
    let org = app.seed_org("acme").await;
    let admin = app
        .user("acme", "admin", Some(Role::SuperAdmin), &[], &[])
        .await;
    let token = app.token("acme", "admin").await;
    let (status, _, body) = app
        .call(
            Method::POST,
            "acme",
            "/api/v1/users/",
            Some(&token),
            Some(new_user("audited", &[org.b])),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_i64().expect("id");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while app
        .tenant_count("acme", "SELECT count(*) FROM audit_log")
        .await
        == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the audit row never came"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut tx = app.context("acme").begin().await.expect("tx");
    let row = sqlx::query(
        "SELECT event_type, entity_type, entity_id, action, actor_id, changed_fields
           FROM audit_log",
    )
    .fetch_one(&mut *tx)
    .await
    .expect("audit row");
    tx.commit().await.expect("commit");
    assert_eq!(row.get::<String, _>("event_type"), "User.CREATE");
    assert_eq!(row.get::<String, _>("entity_type"), "User");
    assert_eq!(row.get::<String, _>("entity_id"), id.to_string());
    assert_eq!(row.get::<String, _>("action"), "CREATE");
    assert_eq!(row.get::<Option<i64>, _>("actor_id"), Some(admin));
    // The event completes with the handler's transaction.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let state: String = sqlx::query_scalar("SELECT state FROM public.leopard_events")
            .fetch_one(app.tenancy.db.pool())
            .await
            .expect("state");
        if state == "completed" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "state {state}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bus.shutdown().await;
}

/// Runs the `leopard` binary against the test database; (success, stdout + stderr).
fn leopard(app: &TestApp, args: &[&str]) -> (bool, String) {
    common::processes::cli(app.tenancy.db.url(), args)
}

#[tokio::test]
async fn the_events_cli_lists_handlers_pauses_resumes_retries_and_prunes() {
    let app = TestApp::new(&["acme"]).await;

    let (ok, out) = leopard(&app, &["events", "handlers"]);
    assert!(ok, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("audit.record") && l.contains("leopard-server")),
        "{out}"
    );

    let (ok, out) = leopard(&app, &["events", "status"]);
    assert!(ok, "{out}");
    assert!(out.contains("global: running"), "{out}");

    let (ok, out) = leopard(&app, &["events", "pause", "--reason", "maintenance"]);
    assert!(ok, "{out}");
    let (ok, out) = leopard(&app, &["events", "pause", "--tenant", "acme"]);
    assert!(ok, "{out}");
    let (ok, out) = leopard(&app, &["events", "status"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("global: PAUSED") && out.contains("(maintenance)"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("acme") && l.trim_end().ends_with("yes")),
        "{out}"
    );
    let (ok, out) = leopard(&app, &["events", "pause", "--tenant", "nope"]);
    assert!(!ok, "an unknown tenant is refused: {out}");

    let (ok, out) = leopard(&app, &["events", "resume"]);
    assert!(ok, "{out}");
    assert!(out.contains("resumed event processing globally"), "{out}");
    let (ok, out) = leopard(&app, &["events", "resume", "--tenant", "acme"]);
    assert!(ok, "{out}");
    let (ok, out) = leopard(&app, &["events", "status"]);
    assert!(ok && out.contains("global: running"), "{out}");
    let paused: i64 = sqlx::query_scalar("SELECT count(*) FROM public.leopard_event_pauses")
        .fetch_one(app.tenancy.db.pool())
        .await
        .expect("pauses");
    assert_eq!(paused, 0);

    let (ok, out) = leopard(&app, &["events", "retry", "--failed"]);
    assert!(ok, "{out}");
    assert!(out.contains("0 failed event(s)"), "{out}");
    let (ok, out) = leopard(&app, &["events", "retry", "--failed", "--tenant", "acme"]);
    assert!(ok, "{out}");
    let (ok, out) = leopard(&app, &["events", "retry", "not-a-uuid"]);
    assert!(!ok, "{out}");
    let (ok, out) = leopard(&app, &["events", "retry"]);
    assert!(!ok, "an id or --failed is required: {out}");

    let (ok, out) = leopard(&app, &["events", "prune", "--completed-days", "1"]);
    assert!(ok, "{out}");
    assert!(out.contains("pruned 0 completed"), "{out}");
}
