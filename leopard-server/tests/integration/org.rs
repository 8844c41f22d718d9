//! `/api/v1/regions/` and `/api/v1/branches/` over HTTP against a real PostgreSQL database:
//! wire fields, CRUD, verb-level permissions, row scope (out of scope is a 404), soft delete
//! and restore, and validation.

use crate::common;

use std::collections::BTreeSet;

use common::{Org, TestApp};
use http::{Method, StatusCode};
use leopard_rbac::Role;
use serde_json::{json, Value};

const SLUG: &str = "acme";

async fn app_with_org() -> (TestApp, Org) {
    let app = TestApp::new(&[SLUG]).await;
    let org = app.seed_org(SLUG).await;
    (app, org)
}

async fn super_admin(app: &TestApp) -> String {
    app.user(SLUG, "root", Some(Role::SuperAdmin), &[], &[])
        .await;
    app.token(SLUG, "root").await
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect()
}

fn field_set(fields: &[&str]) -> BTreeSet<String> {
    fields.iter().map(|f| (*f).to_owned()).collect()
}

fn names(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|b| b["name"].as_str().expect("name").to_owned())
        .collect()
}

#[tokio::test]
async fn region_and_branch_outputs_carry_exactly_the_original_fields() {
    let (app, org) = app_with_org().await;
    let token = super_admin(&app).await;
    let (status, _, region) = app
        .get(SLUG, &format!("/api/v1/regions/{}/", org.north), &token)
        .await;
    assert_eq!(status, StatusCode::OK, "{region}");
    assert_eq!(
        keys(&region),
        field_set(&[
            "id",
            "name",
            "description",
            "branch_count",
            "created_at",
            "updated_at"
        ])
    );
    assert_eq!(region["branch_count"], 2);
    let (status, _, branch) = app
        .get(SLUG, &format!("/api/v1/branches/{}/", org.a), &token)
        .await;
    assert_eq!(status, StatusCode::OK, "{branch}");
    assert_eq!(
        keys(&branch),
        field_set(&[
            "id",
            "name",
            "region",
            "region_name",
            "phone",
            "website",
            "street",
            "suburb",
            "state",
            "postcode",
            "country",
            "created_by",
            "created_by_name",
            "created_at",
            "updated_by",
            "updated_by_name",
            "updated_at"
        ])
    );
    assert_eq!(branch["region"], org.north);
    assert_eq!(branch["region_name"], "North");
    assert_eq!(branch["created_by_name"], Value::Null);
    let created = branch["created_at"].as_str().expect("timestamp");
    assert!(
        created.len() >= 20 && created.as_bytes()[10] == b'T' && created.ends_with('Z'),
        "RFC 3339: {created}"
    );
}

#[tokio::test]
async fn a_super_admin_creates_reads_updates_and_deletes_a_region() {
    let (app, _) = app_with_org().await;
    let token = super_admin(&app).await;
    let (status, _, created) = app
        .call(
            Method::POST,
            SLUG,
            "/api/v1/regions/",
            Some(&token),
            Some(json!({"name": "East", "description": "Coast"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["name"], "East");
    assert_eq!(created["branch_count"], 0);
    let path = format!("/api/v1/regions/{}/", created["id"]);

    let (status, _, page) = app.get(SLUG, "/api/v1/regions/", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&page), ["East", "North", "South"]);
    let (_, _, page) = app.get(SLUG, "/api/v1/regions/?search=coa", &token).await;
    assert_eq!(names(&page), ["East"]);

    let (status, _, patched) = app
        .call(
            Method::PATCH,
            SLUG,
            &path,
            Some(&token),
            Some(json!({"name": "Far East"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Far East");
    assert_eq!(patched["description"], "Coast", "absent field unchanged");

    let (status, _, _) = app
        .call(Method::DELETE, SLUG, &path, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, body) = app.get(SLUG, &path, &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], "Region not found");
}

#[tokio::test]
async fn a_region_with_live_branches_cannot_be_deleted() {
    let (app, org) = app_with_org().await;
    let token = super_admin(&app).await;
    let path = format!("/api/v1/regions/{}/", org.south);
    let (status, _, body) = app
        .call(Method::DELETE, SLUG, &path, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .starts_with("Cannot delete region with assigned branches"),
        "{body}"
    );
    // Once its only branch is soft-deleted, the region may go.
    let (status, _, _) = app
        .call(
            Method::DELETE,
            SLUG,
            &format!("/api/v1/branches/{}/", org.c),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = app
        .call(Method::DELETE, SLUG, &path, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_super_admin_creates_reads_updates_and_deletes_a_branch() {
    let (app, org) = app_with_org().await;
    let token = super_admin(&app).await;
    let (status, _, created) = app
        .call(
            Method::POST,
            SLUG,
            "/api/v1/branches/",
            Some(&token),
            Some(json!({
                "name": "Branch E", "region_id": org.south, "phone": "0123",
                "state": "NSW", "country": "AU"
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["region_name"], "South");
    assert_eq!(created["created_by_name"], "root Tester");
    assert_eq!(created["updated_by"], created["created_by"]);
    let path = format!("/api/v1/branches/{}/", created["id"]);

    let (_, _, page) = app
        .get(
            SLUG,
            &format!("/api/v1/branches/?region_id={}", org.south),
            &token,
        )
        .await;
    assert_eq!(names(&page), ["Branch C", "Branch E"]);
    let (_, _, page) = app
        .get(SLUG, "/api/v1/branches/?country=AU&state=ns", &token)
        .await;
    assert_eq!(names(&page), ["Branch E"]);

    let (status, _, patched) = app
        .call(
            Method::PATCH,
            SLUG,
            &path,
            Some(&token),
            Some(json!({"phone": "999"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["phone"], "999");
    assert_eq!(patched["region"], org.south, "absent region unchanged");
    let (_, _, cleared) = app
        .call(
            Method::PATCH,
            SLUG,
            &path,
            Some(&token),
            Some(json!({"region_id": null})),
        )
        .await;
    assert_eq!(cleared["region"], Value::Null, "null clears the region");
    let (_, _, moved) = app
        .call(
            Method::PUT,
            SLUG,
            &path,
            Some(&token),
            Some(json!({"region_id": org.north})),
        )
        .await;
    assert_eq!(moved["region_name"], "North");
    let (_, _, cleared) = app
        .call(
            Method::PATCH,
            SLUG,
            &path,
            Some(&token),
            Some(json!({"region_id": 0})),
        )
        .await;
    assert_eq!(cleared["region"], Value::Null, "0 also clears the region");

    let (status, _, _) = app
        .call(Method::DELETE, SLUG, &path, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, body) = app.get(SLUG, &path, &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], "Branch not found");
}

#[tokio::test]
async fn a_soft_deleted_branch_is_hidden_shown_with_include_deleted_and_restorable() {
    let (app, org) = app_with_org().await;
    let token = super_admin(&app).await;
    let path = format!("/api/v1/branches/{}/", org.b);
    let (status, _, _) = app
        .call(Method::DELETE, SLUG, &path, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (_, _, page) = app.get(SLUG, "/api/v1/branches/", &token).await;
    assert_eq!(names(&page), ["Branch A", "Branch C", "Branch D"]);
    let (_, _, options) = app.get(SLUG, "/api/v1/branches/options/", &token).await;
    assert_eq!(options.as_array().expect("array").len(), 3);
    let (_, _, page) = app
        .get(SLUG, "/api/v1/branches/?include_deleted=true", &token)
        .await;
    assert_eq!(
        names(&page),
        ["Branch A", "Branch B", "Branch C", "Branch D"]
    );
    let (_, _, region) = app
        .get(SLUG, &format!("/api/v1/regions/{}/", org.north), &token)
        .await;
    assert_eq!(region["branch_count"], 1);

    let restore = format!("{path}restore/");
    let (status, _, restored) = app
        .call(Method::POST, SLUG, &restore, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{restored}");
    assert_eq!(restored["name"], "Branch B");
    let (status, _, _) = app.get(SLUG, &path, &token).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = app
        .call(Method::POST, SLUG, &restore, Some(&token), None)
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a live branch has nothing to restore"
    );
}

#[tokio::test]
async fn restoring_a_branch_whose_name_was_taken_meanwhile_is_a_400() {
    let (app, org) = app_with_org().await;
    let token = super_admin(&app).await;
    let path = format!("/api/v1/branches/{}/", org.d);
    app.call(Method::DELETE, SLUG, &path, Some(&token), None)
        .await;
    let (status, _, _) = app
        .call(
            Method::POST,
            SLUG,
            "/api/v1/branches/",
            Some(&token),
            Some(json!({"name": "branch d"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "a deleted name is free again");
    let (status, _, body) = app
        .call(
            Method::POST,
            SLUG,
            &format!("{path}restore/"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["name"].is_array(), "{body}");
}

#[tokio::test]
async fn branch_options_is_a_bare_array_of_id_and_name() {
    let (app, _) = app_with_org().await;
    let token = super_admin(&app).await;
    let (status, _, options) = app.get(SLUG, "/api/v1/branches/options/", &token).await;
    assert_eq!(status, StatusCode::OK);
    let options = options.as_array().expect("a bare array");
    assert_eq!(options.len(), 4);
    assert_eq!(keys(&options[0]), field_set(&["id", "name"]));
    assert_eq!(options[0]["name"], "Branch A");
}

#[tokio::test]
async fn a_consultant_without_view_branch_is_refused_and_with_it_sees_only_their_branch() {
    let (app, org) = app_with_org().await;
    let id = app
        .user(SLUG, "cora", Some(Role::Consultant), &[org.a], &[])
        .await;
    let token = app.token(SLUG, "cora").await;
    let (status, _, _) = app.get(SLUG, "/api/v1/branches/", &token).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "consultants lack view_branch"
    );

    let mut tx = app.context(SLUG).begin().await.expect("tx");
    sqlx::query(
        "INSERT INTO user_permissions (user_id, permission_id)
         SELECT $1, id FROM permissions WHERE codename = 'view_branch'",
    )
    .bind(id)
    .execute(&mut *tx)
    .await
    .expect("grant");
    tx.commit().await.expect("commit");

    let (status, _, page) = app.get(SLUG, "/api/v1/branches/", &token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(names(&page), ["Branch A"]);
    assert_eq!(page["count"], 1);
    let (status, _, body) = app
        .get(SLUG, &format!("/api/v1/branches/{}/", org.c), &token)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], "Branch not found");
    let (_, _, options) = app.get(SLUG, "/api/v1/branches/options/", &token).await;
    assert_eq!(options, json!([{"id": org.a, "name": "Branch A"}]));
}

#[tokio::test]
async fn a_branch_admin_sees_only_their_branch_and_may_not_create_or_write_regions() {
    let (app, org) = app_with_org().await;
    app.user(SLUG, "bea", Some(Role::BranchAdmin), &[org.a], &[])
        .await;
    let token = app.token(SLUG, "bea").await;
    let (_, _, page) = app.get(SLUG, "/api/v1/branches/", &token).await;
    assert_eq!(names(&page), ["Branch A"]);
    let (status, _, _) = app
        .get(SLUG, &format!("/api/v1/branches/{}/", org.c), &token)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = app
        .call(
            Method::POST,
            SLUG,
            "/api/v1/branches/",
            Some(&token),
            Some(json!({"name": "Mine"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no add_branch");

    // Regions: the regions of their branches to read, tenant scope to write.
    let (_, _, regions) = app.get(SLUG, "/api/v1/regions/", &token).await;
    assert_eq!(names(&regions), ["North"]);
    let (status, _, _) = app
        .call(
            Method::PATCH,
            SLUG,
            &format!("/api/v1/regions/{}/", org.north),
            Some(&token),
            Some(json!({"name": "Up"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = app
        .call(
            Method::POST,
            SLUG,
            "/api/v1/regions/",
            Some(&token),
            Some(json!({"name": "Mine"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_region_manager_reaches_the_branches_of_their_region_only() {
    let (app, org) = app_with_org().await;
    app.user(SLUG, "rita", Some(Role::RegionManager), &[], &[org.north])
        .await;
    let token = app.token(SLUG, "rita").await;
    let (_, _, page) = app.get(SLUG, "/api/v1/branches/", &token).await;
    assert_eq!(names(&page), ["Branch A", "Branch B"]);
    for other in [org.c, org.d] {
        let (status, _, _) = app
            .get(SLUG, &format!("/api/v1/branches/{other}/"), &token)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, _, _) = app
        .call(
            Method::POST,
            SLUG,
            "/api/v1/branches/",
            Some(&token),
            Some(json!({"name": "Southern", "region_id": org.south})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, created) = app
        .call(
            Method::POST,
            SLUG,
            "/api/v1/branches/",
            Some(&token),
            Some(json!({"name": "Northern", "region_id": org.north})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, _, _) = app
        .call(
            Method::PATCH,
            SLUG,
            &format!("/api/v1/branches/{}/", org.a),
            Some(&token),
            Some(json!({"region_id": org.south})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "moving out of their regions");
    let (status, _, _) = app
        .call(
            Method::DELETE,
            SLUG,
            &format!("/api/v1/branches/{}/", org.a),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no delete_branch");

    // include_deleted is ignored without delete_branch.
    let admin = super_admin(&app).await;
    let path = format!("/api/v1/branches/{}/", org.b);
    app.call(Method::DELETE, SLUG, &path, Some(&admin), None)
        .await;
    let (_, _, page) = app
        .get(SLUG, "/api/v1/branches/?include_deleted=true", &token)
        .await;
    assert_eq!(names(&page), ["Branch A", "Northern"]);
}

#[tokio::test]
async fn duplicate_overlong_and_dangling_input_is_a_field_error() {
    let (app, _) = app_with_org().await;
    let token = super_admin(&app).await;
    let post = |path: &'static str, body: Value| {
        let token = token.clone();
        let app = &app;
        async move {
            app.call(Method::POST, SLUG, path, Some(&token), Some(body))
                .await
        }
    };
    let (status, _, body) = post("/api/v1/regions/", json!({"name": "north"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["name"].is_array(), "{body}");
    let (status, _, body) = post("/api/v1/branches/", json!({"name": "BRANCH A"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["name"].is_array(), "{body}");
    let long = "x".repeat(101);
    let (status, _, body) = post("/api/v1/regions/", json!({"name": long})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["name"].is_array(), "{body}");
    let (status, _, body) = post(
        "/api/v1/branches/",
        json!({"name": long, "phone": "1234567890123456", "country": "AUS"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(keys(&body), field_set(&["country", "name", "phone"]));
    let (status, _, body) = post(
        "/api/v1/branches/",
        json!({"name": "Nowhere", "region_id": 999_999}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["region_id"].is_array(), "{body}");
    let (status, _, body) = post("/api/v1/branches/", json!({"phone": "1"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["name"].is_array(), "{body}");
}

#[tokio::test]
async fn a_malformed_id_or_filter_is_a_json_4xx_and_no_token_is_a_401() {
    let (app, org) = app_with_org().await;
    let token = super_admin(&app).await;
    let (status, _, body) = app.get(SLUG, "/api/v1/branches/abc/", &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], "Branch not found");
    let (status, _, body) = app.get(SLUG, "/api/v1/regions/-1/", &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], "Region not found");
    let (status, _, body) = app
        .get(SLUG, "/api/v1/branches/?region_id=north", &token)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["region_id"].is_array(), "{body}");
    let (status, _, body) = app
        .call(
            Method::PATCH,
            SLUG,
            &format!("/api/v1/branches/{}/", org.a),
            Some(&token),
            Some(json!({"postcode": "x".repeat(21), "name": null})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(keys(&body), field_set(&["name", "postcode"]));
    let (status, _, _) = app
        .call(Method::GET, SLUG, "/api/v1/regions/", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
