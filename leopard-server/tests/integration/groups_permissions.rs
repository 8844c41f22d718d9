//! `/api/v1/permissions/` and `/api/v1/groups/` over real HTTP and PostgreSQL: the permission
//! catalogue, group CRUD, the role options, the verb-level gate and the no-escalation rule.

use crate::common;

use std::collections::BTreeMap;

use common::TestApp;
use http::{Method, StatusCode};
use leopard_rbac::{Permission, Role};
use serde_json::{json, Value};

const SLUG: &str = "acme";

/// Every permission's database id by codename, read through the API.
async fn permission_ids(app: &TestApp, token: &str) -> BTreeMap<String, i64> {
    let (status, _, body) = app
        .get(SLUG, "/api/v1/permissions/?page_size=1000", token)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|p| {
            (
                p["codename"].as_str().expect("codename").to_owned(),
                p["id"].as_i64().expect("id"),
            )
        })
        .collect()
}

/// The id of the group called `name`, from the list.
async fn group_id(app: &TestApp, token: &str, name: &str) -> i64 {
    let (status, _, body) = app.get(SLUG, "/api/v1/groups/?page_size=1000", token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|g| g["name"] == name)
        .and_then(|g| g["id"].as_i64())
        .unwrap_or_else(|| panic!("group {name} listed"))
}

/// A tenant with one user per role (`sauser`, `rmuser`, `bauser`, `couser`).
async fn app_with_roles() -> TestApp {
    let app = TestApp::new(&[SLUG]).await;
    let org = app.seed_org(SLUG).await;
    app.user(SLUG, "sauser", Some(Role::SuperAdmin), &[], &[])
        .await;
    app.user(SLUG, "rmuser", Some(Role::RegionManager), &[], &[org.north])
        .await;
    app.user(SLUG, "bauser", Some(Role::BranchAdmin), &[org.a], &[])
        .await;
    app.user(SLUG, "couser", Some(Role::Consultant), &[org.a], &[])
        .await;
    app
}

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> common::Reply {
    app.call(Method::POST, SLUG, path, Some(token), Some(body))
        .await
}

#[tokio::test]
async fn any_user_lists_the_whole_permission_catalogue_paginated_with_codename_and_content_type() {
    let app = app_with_roles().await;
    let token = app.token(SLUG, "couser").await;
    let total = Permission::all().count();

    let (status, _, body) = app.get(SLUG, "/api/v1/permissions/", &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], json!(total));
    assert_eq!(body["results"].as_array().expect("results").len(), 25);
    assert!(body["next"].as_str().is_some_and(|n| n.contains("page=2")));
    assert_eq!(body["previous"], Value::Null);
    let first = &body["results"][0];
    for field in [
        "id",
        "name",
        "codename",
        "content_type",
        "content_type_display",
    ] {
        assert!(first.get(field).is_some(), "{field} missing in {first}");
    }

    let (status, _, all) = app
        .get(SLUG, "/api/v1/permissions/?page_size=1000", &token)
        .await;
    assert_eq!(status, StatusCode::OK);
    let results = all["results"].as_array().expect("results");
    assert_eq!(results.len(), total);
    assert_eq!(all["next"], Value::Null);
    let keys: Vec<(String, String)> = results
        .iter()
        .map(|p| {
            (
                p["content_type"].as_str().expect("ct").to_owned(),
                p["codename"].as_str().expect("codename").to_owned(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "ordered by app label, model, codename");

    let view_client = results
        .iter()
        .find(|p| p["codename"] == "view_client")
        .expect("view_client listed");
    assert_eq!(view_client["name"], "Can view client");
    assert_eq!(view_client["content_type"], "immigration.client");
    assert_eq!(view_client["content_type_display"], "immigration.client");
    let change_group = results
        .iter()
        .find(|p| p["codename"] == "change_group")
        .expect("change_group listed");
    assert_eq!(change_group["content_type"], "auth.group");

    let id = view_client["id"].as_i64().expect("id");
    let (status, _, one) = app
        .get(SLUG, &format!("/api/v1/permissions/{id}/"), &token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&one, view_client);

    let (status, _, missing) = app.get(SLUG, "/api/v1/permissions/999999/", &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(missing["detail"].is_string(), "{missing}");
}

#[tokio::test]
async fn the_group_and_permission_endpoints_require_authentication() {
    let app = TestApp::new(&[SLUG]).await;
    for path in [
        "/api/v1/permissions/",
        "/api/v1/groups/",
        "/api/v1/groups/options/",
    ] {
        let (status, _, _) = app.call(Method::GET, SLUG, path, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test]
async fn a_super_admin_lists_creates_patches_and_deletes_a_custom_group() {
    let app = app_with_roles().await;
    let token = app.token(SLUG, "sauser").await;
    let perms = permission_ids(&app, &token).await;

    let (status, _, list) = app.get(SLUG, "/api/v1/groups/", &token).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["count"], 4);
    let names: Vec<&str> = list["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|g| g["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "BRANCH_ADMIN",
            "CONSULTANT",
            "REGION_MANAGER",
            "SUPER_ADMIN"
        ]
    );
    let super_admin = &list["results"][3];
    assert_eq!(super_admin["display_name"], "Super Admin");
    assert_eq!(
        super_admin["permissions_count"],
        json!(Permission::all().count())
    );
    assert_eq!(super_admin["users_count"], 1);
    let first_perm = &super_admin["permissions_list"][0];
    assert!(first_perm["id"].is_i64() && first_perm["name"].is_string());
    assert!(first_perm["content_type"].is_string());

    let view_client = perms["view_client"];
    let add_client = perms["add_client"];
    let (status, _, created) = post(
        &app,
        "/api/v1/groups/",
        &token,
        json!({"name": "  client_auditors ", "permission_ids": [view_client, view_client]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["name"], "client_auditors");
    assert_eq!(created["display_name"], "Client Auditors");
    assert_eq!(created["permissions_count"], 1);
    assert_eq!(created["users_count"], 0);
    assert_eq!(
        created["permissions_list"],
        json!([{"id": view_client, "name": "Can view client", "content_type": "immigration.client"}])
    );
    let id = created["id"].as_i64().expect("id");

    let (status, _, fetched) = app
        .get(SLUG, &format!("/api/v1/groups/{id}/"), &token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, created);

    let (status, _, patched) = app
        .call(
            Method::PATCH,
            SLUG,
            &format!("/api/v1/groups/{id}/"),
            Some(&token),
            Some(json!({"name": "Client Reviewers", "permission_ids": [add_client, view_client]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Client Reviewers");
    assert_eq!(patched["permissions_count"], 2);

    let (status, _, renamed_only) = app
        .call(
            Method::PUT,
            SLUG,
            &format!("/api/v1/groups/{id}/"),
            Some(&token),
            Some(json!({"name": "Client Readers"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed_only}");
    assert_eq!(renamed_only["name"], "Client Readers");
    assert_eq!(
        renamed_only["permissions_count"], 2,
        "absent permission_ids leave the set unchanged"
    );

    let (status, _, assigned) = post(
        &app,
        &format!("/api/v1/groups/{id}/assign-permissions/"),
        &token,
        json!({"permission_ids": [perms["view_task"]]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{assigned}");
    assert_eq!(assigned["permissions_count"], 1);
    assert_eq!(assigned["permissions_list"][0]["id"], perms["view_task"]);

    let (status, _, empty) = post(
        &app,
        &format!("/api/v1/groups/{id}/assign-permissions/"),
        &token,
        json!({"permission_ids": []}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(empty["permission_ids"].is_array(), "{empty}");

    let (status, _, _) = app
        .call(
            Method::DELETE,
            SLUG,
            &format!("/api/v1/groups/{id}/"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, gone) = app
        .get(SLUG, &format!("/api/v1/groups/{id}/"), &token)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(gone["detail"], "Group not found.");
}

#[tokio::test]
async fn group_names_are_unique_case_insensitively_and_validated() {
    let app = app_with_roles().await;
    let token = app.token(SLUG, "sauser").await;

    let (status, _, _) = post(&app, "/api/v1/groups/", &token, json!({"name": "Auditors"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, dup) = post(&app, "/api/v1/groups/", &token, json!({"name": "AUDITORS"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(dup["name"].is_array(), "{dup}");
    let (status, _, builtin) = post(
        &app,
        "/api/v1/groups/",
        &token,
        json!({"name": "super_admin"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(builtin["name"].is_array(), "{builtin}");

    let other = post(&app, "/api/v1/groups/", &token, json!({"name": "Other"})).await;
    let other_id = other.2["id"].as_i64().expect("id");
    let (status, _, renamed) = app
        .call(
            Method::PATCH,
            SLUG,
            &format!("/api/v1/groups/{other_id}/"),
            Some(&token),
            Some(json!({"name": "auditors"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(renamed["name"].is_array(), "{renamed}");

    for bad in [
        json!({}),
        json!({"name": "   "}),
        json!({"name": "x".repeat(151)}),
        json!({"name": 5}),
    ] {
        let (status, _, body) = post(&app, "/api/v1/groups/", &token, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(body["name"].is_array(), "{bad}: {body}");
    }
    let (status, _, body) = post(
        &app,
        "/api/v1/groups/",
        &token,
        json!({"name": "Typed", "permission_ids": "1"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["permission_ids"].is_array(), "{body}");
    let (status, _, _) = post(
        &app,
        "/api/v1/groups/",
        &token,
        json!({"name": "x".repeat(150)}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "150 characters are allowed");
}

#[tokio::test]
async fn options_list_the_built_in_roles_each_caller_may_grant() {
    let app = app_with_roles().await;
    let expected = [
        (
            "sauser",
            vec!["BRANCH_ADMIN", "CONSULTANT", "REGION_MANAGER"],
        ),
        ("rmuser", vec!["BRANCH_ADMIN", "CONSULTANT"]),
        ("bauser", vec!["CONSULTANT"]),
        ("couser", vec![]),
    ];
    for (user, names) in expected {
        let token = app.token(SLUG, user).await;
        let (status, _, body) = app.get(SLUG, "/api/v1/groups/options/", &token).await;
        assert_eq!(status, StatusCode::OK, "{user}: {body}");
        let items = body.as_array().expect("a bare array");
        let got: Vec<&str> = items
            .iter()
            .map(|g| g["name"].as_str().expect("name"))
            .collect();
        assert_eq!(got, names, "{user}");
        for item in items {
            assert!(item["id"].is_i64());
            let role = Role::from_group_name(item["name"].as_str().expect("name")).expect("role");
            assert_eq!(item["display_name"], role.display_name());
        }
    }
}

#[tokio::test]
async fn a_branch_admin_may_read_groups_but_not_create_them_or_grant_itself_change_group() {
    let app = app_with_roles().await;
    let sa = app.token(SLUG, "sauser").await;
    let ba = app.token(SLUG, "bauser").await;
    let perms = permission_ids(&app, &ba).await;
    let own_group = group_id(&app, &ba, "BRANCH_ADMIN").await;

    let (status, _, body) = app
        .get(SLUG, &format!("/api/v1/groups/{own_group}/"), &ba)
        .await;
    assert_eq!(status, StatusCode::OK, "view_group lets it read: {body}");

    let (status, _, body) = post(&app, "/api/v1/groups/", &ba, json!({"name": "Mine"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "permission_denied");

    let (status, _, _) = post(
        &app,
        &format!("/api/v1/groups/{own_group}/assign-permissions/"),
        &ba,
        json!({"permission_ids": [perms["change_group"], perms["view_group"]]}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = app
        .call(
            Method::PATCH,
            SLUG,
            &format!("/api/v1/groups/{own_group}/"),
            Some(&ba),
            Some(json!({"permission_ids": [perms["change_group"]]})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _, after) = app
        .get(SLUG, &format!("/api/v1/groups/{own_group}/"), &sa)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !after["permissions_list"]
            .as_array()
            .expect("list")
            .iter()
            .any(|p| p["id"] == perms["change_group"]),
        "the branch admin group still lacks change_group"
    );

    let co = app.token(SLUG, "couser").await;
    let (status, _, _) = app.get(SLUG, "/api/v1/groups/", &co).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a consultant lacks view_group"
    );
}

#[tokio::test]
async fn a_group_manager_cannot_grant_permissions_it_lacks_but_a_super_admin_can() {
    let app = app_with_roles().await;
    let sa = app.token(SLUG, "sauser").await;
    let perms = permission_ids(&app, &sa).await;

    // A user whose only group lets it manage groups and read clients.
    let (status, _, managers) = post(
        &app,
        "/api/v1/groups/",
        &sa,
        json!({"name": "Group Managers", "permission_ids":
            [perms["view_group"], perms["change_group"], perms["view_client"]]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{managers}");
    let managers_id = managers["id"].as_i64().expect("id");
    let gm = app.user(SLUG, "gmuser", None, &[], &[]).await;
    let mut tx = app.context(SLUG).begin().await.expect("tx");
    sqlx::query("INSERT INTO user_groups (user_id, group_id) VALUES ($1, $2)")
        .bind(gm)
        .bind(managers_id)
        .execute(&mut *tx)
        .await
        .expect("membership");
    tx.commit().await.expect("commit");
    let gm = app.token(SLUG, "gmuser").await;

    let (status, _, _) = post(
        &app,
        "/api/v1/groups/",
        &gm,
        json!({"name": "Readers", "permission_ids": [perms["view_client"]]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "it grants what it holds");

    let (status, _, body) = post(
        &app,
        "/api/v1/groups/",
        &gm,
        json!({"name": "Deleters", "permission_ids": [perms["delete_client"]]}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, _) = post(
        &app,
        &format!("/api/v1/groups/{managers_id}/assign-permissions/"),
        &gm,
        json!({"permission_ids": [perms["view_group"], perms["change_group"], perms["delete_user"]]}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "it cannot raise its own group"
    );
    let consultant = group_id(&app, &sa, "CONSULTANT").await;
    let (status, _, _) = post(
        &app,
        &format!("/api/v1/groups/{consultant}/assign-permissions/"),
        &gm,
        json!({"permission_ids": [perms["view_client"]]}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "it cannot rewrite a group stronger than itself"
    );
    let (status, _, _) = app.get(SLUG, "/api/v1/groups/?page_size=1000", &gm).await;
    assert_eq!(status, StatusCode::OK);

    let (status, _, granted) = post(
        &app,
        &format!("/api/v1/groups/{managers_id}/assign-permissions/"),
        &sa,
        json!({"permission_ids": [perms["view_group"], perms["change_group"], perms["delete_client"]]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{granted}");
    assert_eq!(granted["permissions_count"], 3);
    assert_eq!(granted["users_count"], 1);
    let (status, _, _) = post(
        &app,
        "/api/v1/groups/",
        &gm,
        json!({"name": "Deleters", "permission_ids": [perms["delete_client"]]}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "once granted, it may pass it on"
    );
}

#[tokio::test]
async fn unknown_permission_ids_are_a_400_naming_them() {
    let app = app_with_roles().await;
    let sa = app.token(SLUG, "sauser").await;
    let perms = permission_ids(&app, &sa).await;

    let (status, _, body) = post(
        &app,
        "/api/v1/groups/",
        &sa,
        json!({"name": "Ghosts", "permission_ids": [perms["view_client"], 999_999, 5_000_000_000_i64]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["permission_ids"],
        json!(["Invalid permission id(s): 999999, 5000000000"])
    );
    let (status, _, _) = app.get(SLUG, "/api/v1/groups/", &sa).await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, list) = app.get(SLUG, "/api/v1/groups/", &sa).await;
    assert_eq!(list["count"], 4, "nothing was created");

    let consultant = group_id(&app, &sa, "CONSULTANT").await;
    let (status, _, body) = post(
        &app,
        &format!("/api/v1/groups/{consultant}/assign-permissions/"),
        &sa,
        json!({"permission_ids": [0]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["permission_ids"],
        json!(["Invalid permission id(s): 0"])
    );
}

#[tokio::test]
async fn built_in_role_groups_cannot_be_deleted_or_renamed() {
    let app = app_with_roles().await;
    let sa = app.token(SLUG, "sauser").await;
    for role in Role::ALL {
        let id = group_id(&app, &sa, role.group_name()).await;
        let (status, _, body) = app
            .call(
                Method::DELETE,
                SLUG,
                &format!("/api/v1/groups/{id}/"),
                Some(&sa),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{role}: {body}");
        assert!(body["detail"].is_string());
    }
    let consultant = group_id(&app, &sa, "CONSULTANT").await;
    let (status, _, body) = app
        .call(
            Method::PATCH,
            SLUG,
            &format!("/api/v1/groups/{consultant}/"),
            Some(&sa),
            Some(json!({"name": "Advisers"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["name"].is_array(), "{body}");
    let (status, _, same) = app
        .call(
            Method::PATCH,
            SLUG,
            &format!("/api/v1/groups/{consultant}/"),
            Some(&sa),
            Some(json!({"name": "CONSULTANT"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "keeping its name is fine: {same}");
    assert_eq!(same["name"], "CONSULTANT");
    assert_eq!(same["users_count"], 1);
}

#[tokio::test]
async fn a_missing_group_answers_404_on_every_verb() {
    let app = app_with_roles().await;
    let sa = app.token(SLUG, "sauser").await;
    for (method, path, body) in [
        (Method::GET, "/api/v1/groups/999999/", None),
        (Method::GET, "/api/v1/groups/not-a-number/", None),
        (
            Method::PATCH,
            "/api/v1/groups/999999/",
            Some(json!({"name": "X"})),
        ),
        (
            Method::PUT,
            "/api/v1/groups/999999/",
            Some(json!({"name": "X"})),
        ),
        (Method::DELETE, "/api/v1/groups/999999/", None),
        (
            Method::POST,
            "/api/v1/groups/999999/assign-permissions/",
            Some(json!({"permission_ids": [1]})),
        ),
    ] {
        let (status, _, reply) = app.call(method.clone(), SLUG, path, Some(&sa), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(reply["detail"], "Group not found.", "{method} {path}");
    }
}
