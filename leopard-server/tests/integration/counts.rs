//! The list-count cache (`leopard_server::counts`) is never stale past a notice: two real
//! `leopard serve` processes on one database, each caching list counts; a client created,
//! moved or deleted through one is counted at once by that instance and within a second by
//! the other. The cache is really used (a row inserted without firing triggers stays
//! uncounted until a change notice), and every tenant table has its change trigger unless it
//! is listed as untracked.

use crate::common;

use std::collections::BTreeSet;

use common::pair::Pair;
use common::TestApp;
use leopard_rbac::Role;
use leopard_server::counts;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const SLUG: &str = "acme";
const CLIENTS: &str = "/api/v1/clients/";

/// The organisation, a super admin `root` and a consultant `cleo` of branch A, and two clients
/// in branch A and one in branch B.
async fn setup() -> (TestApp, common::Org) {
    let app = TestApp::new(&[SLUG]).await;
    let org = app.seed_org(SLUG).await;
    app.user(SLUG, "root", Some(Role::SuperAdmin), &[], &[])
        .await;
    app.user(SLUG, "cleo", Some(Role::Consultant), &[org.a], &[])
        .await;
    let token = app.token(SLUG, "root").await;
    for (name, branch) in [("Ada", org.a), ("Abe", org.a), ("Bea", org.b)] {
        let (status, _, body) = app
            .call(
                http::Method::POST,
                SLUG,
                CLIENTS,
                Some(&token),
                Some(
                    json!({"first_name": name, "branch_id": branch, "gender": "FEMALE",
                            "country": "AU"}),
                ),
            )
            .await;
        assert_eq!(status, http::StatusCode::CREATED, "{body}");
    }
    (app, org)
}

async fn count(pair: &Pair, instance: usize, token: &str) -> i64 {
    let (status, body) = pair.get(instance, CLIENTS, token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["count"].as_i64().expect("count")
}

/// Polls the clients list's count on `instance` until it is `wanted` (at most a second).
async fn until_count(pair: &Pair, instance: usize, token: &str, wanted: i64, what: &str) {
    pair.until(instance, CLIENTS, token, what, |s, b: &Value| {
        s == StatusCode::OK && b["count"].as_i64() == Some(wanted)
    })
    .await;
}

#[tokio::test]
async fn a_client_created_moved_or_deleted_through_one_instance_is_counted_at_once_there_and_within_a_second_on_the_other(
) {
    let (app, org) = setup().await;
    let pair = Pair::start(&app).await;
    let root = pair.login("root").await;
    let cleo = pair.login("cleo").await;
    // Both instances cache both counts.
    for instance in [0, 1] {
        for _ in 0..3 {
            assert_eq!(count(&pair, instance, &root).await, 3);
            assert_eq!(count(&pair, instance, &cleo).await, 2);
        }
    }

    // Created through instance 0: its very next request counts it.
    let (status, created) = pair
        .call(
            0,
            Method::POST,
            CLIENTS,
            &root,
            Some(
                json!({"first_name": "Cy", "branch_id": org.b, "gender": "MALE",
                        "country": "NZ"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().expect("id");
    assert_eq!(count(&pair, 0, &root).await, 4);
    until_count(&pair, 1, &root, 4, "created on the other instance").await;
    assert_eq!(count(&pair, 1, &cleo).await, 2, "branch B is not Cleo's");

    // Moved into branch A through instance 1: Cleo's scoped count follows on both.
    let (status, body) = pair
        .call(
            1,
            Method::PATCH,
            &format!("{CLIENTS}{id}/"),
            &root,
            Some(json!({"branch_id": org.a})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(count(&pair, 1, &cleo).await, 3);
    until_count(&pair, 0, &cleo, 3, "moved, on the other instance").await;

    // Deleted (soft) through instance 1.
    let (status, body) = pair
        .call(1, Method::DELETE, &format!("{CLIENTS}{id}/"), &root, None)
        .await;
    assert!(status.is_success(), "{status} {body}");
    assert_eq!(count(&pair, 1, &root).await, 3);
    until_count(&pair, 0, &root, 3, "deleted, on the other instance").await;
    until_count(&pair, 0, &cleo, 2, "deleted, Cleo on the other instance").await;
}

#[tokio::test]
async fn a_count_is_served_from_the_cache_until_a_change_notice_arrives() {
    let (app, org) = setup().await;
    let pair = Pair::start(&app).await;
    let root = pair.login("root").await;
    assert_eq!(count(&pair, 0, &root).await, 3);
    // A row written with triggers off (as a restore does) sends no notice: the cached count
    // stays, while the page's rows, never cached, show the row.
    let mut tx = app.context(SLUG).begin().await.expect("tx");
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .expect("replica role");
    sqlx::query(
        "INSERT INTO clients (first_name, branch_id, gender, country) VALUES ('Quiet', $1, 'MALE', 'AU')",
    )
    .bind(org.a)
    .execute(&mut *tx)
    .await
    .expect("insert");
    tx.commit().await.expect("commit");
    let (status, body) = pair.get(0, CLIENTS, &root).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["count"], 3, "served from the cache: {body}");
    assert_eq!(body["results"].as_array().map(Vec::len), Some(4));
    // Any change of the table (here an update of nothing but a timestamp) brings it up to date.
    let mut tx = app.context(SLUG).begin().await.expect("tx");
    sqlx::query("UPDATE clients SET updated_at = now() WHERE first_name = 'Ada'")
        .execute(&mut *tx)
        .await
        .expect("update");
    tx.commit().await.expect("commit");
    until_count(&pair, 0, &root, 4, "after the notice").await;
}

#[tokio::test]
async fn every_tenant_table_has_a_change_trigger_unless_it_is_listed_as_untracked() {
    let app = TestApp::new(&[SLUG]).await;
    let mut tx = app.context(SLUG).begin().await.expect("tx");
    let tables: BTreeSet<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
          WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut *tx)
    .await
    .expect("tables")
    .into_iter()
    .collect();
    let listed: BTreeSet<String> = counts::tables().map(str::to_owned).collect();
    assert_eq!(tables, listed, "counts::TRACKED + counts::UNTRACKED");
    let triggered: BTreeSet<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          WHERE c.relnamespace = current_schema()::regnamespace
            AND t.tgname = c.relname || '_count_changed'",
    )
    .fetch_all(&mut *tx)
    .await
    .expect("triggers")
    .into_iter()
    .collect();
    let tracked: BTreeSet<String> = counts::TRACKED.iter().map(|t| (*t).to_owned()).collect();
    assert_eq!(triggered, tracked);
}
