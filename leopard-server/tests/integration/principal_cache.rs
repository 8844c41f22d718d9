//! The principal cache is never stale past its bound: two real `leopard serve` processes on one
//! database, each caching principals; a change made through one — a membership moved, a
//! permission revoked, a user deactivated, a tenant suspended — is in force on the other within
//! a second (its database notice), and on the instance that made it at its very next request.

use crate::common;

use std::process::{Command, Stdio};

use common::pair::{ids, Pair};
use common::TestApp;
use leopard_rbac::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

const SLUG: &str = "acme";

/// An organisation with a client in branch B, a super admin and a consultant of branch A.
async fn setup() -> (TestApp, i64, i64, i64) {
    let app = TestApp::new(&[SLUG]).await;
    let org = app.seed_org(SLUG).await;
    app.user(SLUG, "root", Some(Role::SuperAdmin), &[], &[])
        .await;
    let cleo = app
        .user(SLUG, "cleo", Some(Role::Consultant), &[org.a], &[])
        .await;
    let token = app.token(SLUG, "root").await;
    let (status, _, body) = app
        .call(
            http::Method::POST,
            SLUG,
            "/api/v1/clients/",
            Some(&token),
            Some(
                json!({"first_name": "Bea", "last_name": "Branch", "branch_id": org.b,
                        "gender": "FEMALE", "country": "AU"}),
            ),
        )
        .await;
    assert_eq!(status, http::StatusCode::CREATED, "{body}");
    let client = body["id"].as_i64().expect("id");
    (app, cleo, org.b, client)
}

#[tokio::test]
async fn a_membership_moved_through_one_instance_is_in_force_on_the_other_within_a_second() {
    let (app, cleo, branch_b, client) = setup().await;
    let pair = Pair::start(&app).await;
    let root = pair.login("root").await;
    let cleo_token = pair.login("cleo").await;
    // Cleo's principal is cached by instance 1: branch A only.
    for _ in 0..3 {
        let (status, body) = pair.get(1, "/api/v1/clients/", &cleo_token).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!ids(&body).contains(&client));
    }
    let (status, body) = pair
        .call(
            0,
            reqwest::Method::PATCH,
            &format!("/api/v1/users/{cleo}/"),
            &root,
            Some(json!({"branch_ids": [branch_b]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let took = pair
        .until(
            1,
            "/api/v1/clients/",
            &cleo_token,
            "moved to branch B",
            |s, b| s == StatusCode::OK && ids(b).contains(&client),
        )
        .await;
    eprintln!("membership change seen by the other instance after {took:?}");
}

#[tokio::test]
async fn a_permission_revoked_and_a_user_deactivated_on_one_instance_are_refused_on_both() {
    let (app, cleo, _, _) = setup().await;
    let pair = Pair::start(&app).await;
    let root = pair.login("root").await;
    let cleo_token = pair.login("cleo").await;
    for instance in [0, 1] {
        let (status, _) = pair.get(instance, "/api/v1/clients/", &cleo_token).await;
        assert_eq!(status, StatusCode::OK);
    }

    // The consultants' group loses view_client: both instances refuse the list.
    let (_, groups) = pair.get(0, "/api/v1/groups/?page_size=100", &root).await;
    let group = groups["results"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["name"] == "CONSULTANT")
        .expect("the consultant group")
        .clone();
    let keep: Vec<Value> = group["permissions_list"]
        .as_array()
        .expect("permissions")
        .iter()
        .filter(|p| p["name"] != "Can view client")
        .map(|p| p["id"].clone())
        .collect();
    let (status, body) = pair
        .call(
            0,
            reqwest::Method::POST,
            &format!("/api/v1/groups/{}/assign-permissions/", group["id"]),
            &root,
            Some(json!({ "permission_ids": keep })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = pair.get(0, "/api/v1/clients/", &cleo_token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the very next request here");
    pair.until(1, "/api/v1/clients/", &cleo_token, "revoked", |s, _| {
        s == StatusCode::FORBIDDEN
    })
    .await;

    // Deactivated through instance 0: its very next request is a 401, and instance 1's soon.
    for instance in [0, 1] {
        let (status, _) = pair
            .get(instance, "/api/v1/users/profile/", &cleo_token)
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, body) = pair
        .call(
            0,
            reqwest::Method::DELETE,
            &format!("/api/v1/users/{cleo}/"),
            &root,
            None,
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    let (status, _) = pair.get(0, "/api/v1/users/profile/", &cleo_token).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the very next request here"
    );
    pair.until(
        1,
        "/api/v1/users/profile/",
        &cleo_token,
        "deactivated",
        |s, _| s == StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn a_tenant_suspended_by_another_process_is_refused_by_both_instances_within_a_second() {
    let (app, _, _, _) = setup().await;
    let pair = Pair::start(&app).await;
    let cleo_token = pair.login("cleo").await;
    for instance in [0, 1] {
        let (status, _) = pair.get(instance, "/api/v1/clients/", &cleo_token).await;
        assert_eq!(status, StatusCode::OK);
    }
    let status = Command::new(env!("CARGO_BIN_EXE_leopard"))
        .args(["tenant", "suspend", SLUG])
        .env("LEOPARD_DATABASE_URL", app.tenancy.db.url())
        .env("LEOPARD_LOG", "warn")
        .stdout(Stdio::null())
        .status()
        .expect("the CLI runs");
    assert!(status.success());
    for instance in [0, 1] {
        pair.until(
            instance,
            "/api/v1/clients/",
            &cleo_token,
            "suspended",
            |s, _| s == StatusCode::FORBIDDEN,
        )
        .await;
    }
}

#[tokio::test]
async fn a_live_cache_keeps_a_principal_after_its_first_request_and_drops_it_on_a_change() {
    let cache = std::sync::Arc::new(leopard_http::PrincipalCache::default());
    let kept = std::sync::Arc::clone(&cache);
    let app = TestApp::with_config(&[SLUG], move |config| config.principals = kept).await;
    let org = app.seed_org(SLUG).await;
    app.user(SLUG, "root", Some(Role::SuperAdmin), &[], &[])
        .await;
    let cleo = app
        .user(SLUG, "cleo", Some(Role::Consultant), &[org.a], &[])
        .await;
    let root = app.token(SLUG, "root").await;
    let cleo_token = app.token(SLUG, "cleo").await;
    // Not live (no listener): nothing is kept.
    let (status, _, _) = app.get(SLUG, "/api/v1/clients/", &cleo_token).await;
    assert_eq!(status, http::StatusCode::OK);
    assert!(cache.is_empty());
    cache.set_live(true);
    for token in [&cleo_token, &cleo_token, &root] {
        let (status, _, _) = app.get(SLUG, "/api/v1/clients/", token).await;
        assert_eq!(status, http::StatusCode::OK);
    }
    assert_eq!(cache.len(), 2, "one entry per user");
    let (status, _, body) = app
        .call(
            http::Method::PATCH,
            SLUG,
            &format!("/api/v1/users/{cleo}/"),
            Some(&root),
            Some(json!({"branch_ids": [org.b]})),
        )
        .await;
    assert_eq!(status, http::StatusCode::OK, "{body}");
    assert!(cache.is_empty(), "the tenant's principals were dropped");
}
