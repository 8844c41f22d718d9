//! `/api/v1/users/` through HTTP: wire fields, scope per role, the hierarchy (escalation
//! attempts), deactivation, `max_users`, profile permissions.

use crate::common;

use common::{Org, TestApp, PASSWORD};
use http::{Method, StatusCode};
use leopard_rbac::Role;
use serde_json::{json, Value};

const USER_FIELDS: &[&str] = &[
    "id",
    "username",
    "email",
    "first_name",
    "last_name",
    "full_name",
    "groups_list",
    "groups_list_display",
    "primary_group",
    "primary_group_display",
    "tenant",
    "tenant_name",
    "branches_data",
    "regions_data",
    "user_permissions_list",
    "is_active",
    "is_staff",
    "is_superuser",
    "date_joined",
    "last_login",
];

/// acme with the seeded org and: admin (SA), rman (RM North), badmin (BA of A), cons_a
/// (consultant A), cons_c (consultant C).
async fn org() -> (TestApp, Org) {
    let app = TestApp::new(&["acme"]).await;
    let org = app.seed_org("acme").await;
    app.user("acme", "admin", Some(Role::SuperAdmin), &[], &[])
        .await;
    app.user("acme", "rman", Some(Role::RegionManager), &[], &[org.north])
        .await;
    app.user("acme", "badmin", Some(Role::BranchAdmin), &[org.a], &[])
        .await;
    app.user("acme", "cons_a", Some(Role::Consultant), &[org.a], &[])
        .await;
    app.user("acme", "cons_c", Some(Role::Consultant), &[org.c], &[])
        .await;
    (app, org)
}

fn usernames(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|u| u["username"].as_str().expect("username").to_owned())
        .collect()
}

async fn id_of(app: &TestApp, token: &str, username: &str) -> i64 {
    let (_, _, body) = app
        .get("acme", &format!("/api/v1/users/?search={username}"), token)
        .await;
    body["results"]
        .as_array()
        .and_then(|r| r.iter().find(|u| u["username"] == username))
        .and_then(|u| u["id"].as_i64())
        .expect("user id")
}

#[tokio::test]
async fn the_user_list_has_the_original_fields_and_is_scoped_per_role() {
    let (app, _) = org().await;
    let admin = app.token("acme", "admin").await;
    let (status, _, body) = app.get("acme", "/api/v1/users/", &admin).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 5);
    assert_eq!(
        usernames(&body),
        ["admin", "badmin", "cons_a", "cons_c", "rman"]
    );
    let first = body["results"][0].as_object().expect("object");
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = USER_FIELDS.to_vec();
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(first["primary_group"], "SUPER_ADMIN");
    assert_eq!(first["primary_group_display"], "Super Admin");
    assert_eq!(first["tenant"], "acme");

    let ba = app.token("acme", "badmin").await;
    let (_, _, body) = app.get("acme", "/api/v1/users/", &ba).await;
    assert_eq!(
        usernames(&body),
        ["badmin", "cons_a"],
        "a branch admin sees its branch"
    );
    let rm = app.token("acme", "rman").await;
    let (_, _, body) = app.get("acme", "/api/v1/users/", &rm).await;
    assert_eq!(
        usernames(&body),
        ["badmin", "cons_a", "rman"],
        "a region manager sees the users of its regions' branches and itself"
    );
    let cc = app.token("acme", "cons_c").await;
    let (_, _, body) = app.get("acme", "/api/v1/users/assignable/", &cc).await;
    assert_eq!(usernames(&body), ["cons_c"]);
    assert_eq!(
        body["results"][0]
            .as_object()
            .expect("object")
            .keys()
            .count(),
        6
    );
}

#[tokio::test]
async fn out_of_scope_users_are_not_found_rather_than_forbidden() {
    let (app, _) = org().await;
    let admin = app.token("acme", "admin").await;
    let cc_id = id_of(&app, &admin, "cons_c").await;
    let ba = app.token("acme", "badmin").await;
    let (status, _, body) = app
        .get("acme", &format!("/api/v1/users/{cc_id}/"), &ba)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _, _) = app.get("acme", "/api/v1/users/999999/", &ba).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Editing a user outside the branch admin's branches: 404.
    let (status, _, _) = app
        .call(
            Method::PATCH,
            "acme",
            &format!("/api/v1/users/{cc_id}/"),
            Some(&ba),
            Some(json!({"first_name": "Mallory"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn escalation_attempts_are_refused() {
    let (app, org) = org().await;
    let ba = app.token("acme", "badmin").await;
    // A branch admin creating a super admin.
    let new_user = |group: &str, branches: Vec<i64>| {
        json!({
            "username": "newbie", "email": "newbie@example.com", "password": PASSWORD,
            "first_name": "New", "last_name": "User", "group_name": group,
            "branch_ids": branches,
        })
    };
    let (status, _, body) = app
        .call(
            Method::POST,
            "acme",
            "/api/v1/users/",
            Some(&ba),
            Some(new_user("SUPER_ADMIN", vec![org.a])),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // … or a consultant in a branch outside its own.
    let (status, _, _) = app
        .call(
            Method::POST,
            "acme",
            "/api/v1/users/",
            Some(&ba),
            Some(new_user("CONSULTANT", vec![org.c])),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Within its rights it succeeds.
    let (status, _, body) = app
        .call(
            Method::POST,
            "acme",
            "/api/v1/users/",
            Some(&ba),
            Some(new_user("CONSULTANT", vec![org.a])),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["groups_list"], json!(["CONSULTANT"]));

    // A branch admin granting itself change_group, or granting a permission it lacks to others.
    let admin = app.token("acme", "admin").await;
    let ba_id = id_of(&app, &admin, "badmin").await;
    let ca_id = id_of(&app, &admin, "cons_a").await;
    let change_group =
        leopard_server::migrations::permission_db_id(leopard_rbac::Permission::CHANGE_GROUP);
    for target in [ba_id, ca_id] {
        let (status, _, body) = app
            .call(
                Method::POST,
                "acme",
                &format!("/api/v1/users/{target}/assign-permissions/"),
                Some(&ba),
                Some(json!({"permission_ids": [change_group]})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    // A branch admin promoting itself.
    let (status, _, _) = app
        .call(
            Method::PATCH,
            "acme",
            &format!("/api/v1/users/{ba_id}/"),
            Some(&ba),
            Some(json!({"group_name": "SUPER_ADMIN"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A region manager assigning a branch outside its regions.
    let rm = app.token("acme", "rman").await;
    let (status, _, body) = app
        .call(
            Method::PATCH,
            "acme",
            &format!("/api/v1/users/{ca_id}/"),
            Some(&rm),
            Some(json!({"branch_ids": [org.c]})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, body) = app
        .call(
            Method::PATCH,
            "acme",
            &format!("/api/v1/users/{ca_id}/"),
            Some(&rm),
            Some(json!({"branch_ids": [org.b]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["branches_data"][0]["name"], "Branch B");
    // Editing a user whose role is not below one's own.
    let admin_id = id_of(&app, &admin, "admin").await;
    let (status, _, _) = app
        .call(
            Method::PATCH,
            "acme",
            &format!("/api/v1/users/{admin_id}/"),
            Some(&ba),
            Some(json!({"first_name": "Pwned"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the super admin is in no branch"
    );
}

#[tokio::test]
async fn a_super_admin_grants_direct_permissions_it_holds_and_unknown_ids_are_rejected() {
    let (app, _) = org().await;
    let admin = app.token("acme", "admin").await;
    let ca_id = id_of(&app, &admin, "cons_a").await;
    let view_agent = leopard_server::migrations::permission_db_id(leopard_rbac::Permission::new(
        leopard_rbac::ResourceKind::Agent,
        leopard_rbac::Action::View,
    ));
    let (status, _, body) = app
        .call(
            Method::POST,
            "acme",
            &format!("/api/v1/users/{ca_id}/assign-permissions/"),
            Some(&admin),
            Some(json!({"permission_ids": [view_agent]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_permissions_list"][0]["name"], "Can view agent");
    assert_eq!(
        body["user_permissions_list"][0]["content_type"],
        "immigration.agent"
    );
    let ca = app.token("acme", "cons_a").await;
    let (_, _, profile) = app.get("acme", "/api/v1/users/profile/", &ca).await;
    let codenames: Vec<&str> = profile["permissions"]
        .as_array()
        .expect("permissions")
        .iter()
        .filter_map(|p| p["codename"].as_str())
        .collect();
    assert!(codenames.contains(&"view_agent") && codenames.contains(&"view_client"));
    let (status, _, body) = app
        .call(
            Method::POST,
            "acme",
            &format!("/api/v1/users/{ca_id}/assign-permissions/"),
            Some(&admin),
            Some(json!({"permission_ids": [999_999]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["permission_ids"].is_array());
}

#[tokio::test]
async fn deleting_a_user_deactivates_it_and_its_tokens_stop_working() {
    let (app, _) = org().await;
    let admin = app.token("acme", "admin").await;
    let ca_id = id_of(&app, &admin, "cons_a").await;
    let (ca_access, ca_refresh) = app.login("acme", "cons_a").await;
    let (status, _, _) = app
        .call(
            Method::DELETE,
            "acme",
            &format!("/api/v1/users/{ca_id}/"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, _, body) = app
        .get("acme", &format!("/api/v1/users/{ca_id}/"), &admin)
        .await;
    assert_eq!(body["is_active"], false);
    let (status, _, _) = app.get("acme", "/api/v1/users/profile/", &ca_access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = app
        .call(
            Method::POST,
            "acme",
            "/api/token/refresh/",
            None,
            Some(json!({"refresh": ca_refresh})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let admin_id = id_of(&app, &admin, "admin").await;
    let (status, _, _) = app
        .call(
            Method::DELETE,
            "acme",
            &format!("/api/v1/users/{admin_id}/"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "nobody deactivates themself"
    );
}

#[tokio::test]
async fn creating_users_beyond_max_users_is_refused_and_bad_input_is_a_field_error() {
    let app = TestApp::new(&["acme"]).await;
    app.user("acme", "admin", Some(Role::SuperAdmin), &[], &[])
        .await;
    let mut tx = app.context("acme").begin().await.expect("tx");
    sqlx::query("UPDATE public.leopard_tenants SET max_users = 2 WHERE slug = 'acme'")
        .execute(&mut *tx)
        .await
        .expect("limit");
    tx.commit().await.expect("commit");
    app.registry.reload().await.expect("reload");
    let admin = app.token("acme", "admin").await;
    let body = |username: &str, password: &str| {
        json!({
            "username": username, "email": format!("{username}@example.com"),
            "password": password, "first_name": "A", "last_name": "B",
            "group_name": "CONSULTANT",
        })
    };
    let (status, _, errors) = app
        .call(
            Method::POST,
            "acme",
            "/api/v1/users/",
            Some(&admin),
            Some(body("second", "12345678")),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(errors["password"].as_array().is_some_and(|m| !m.is_empty()));
    let (status, _, _) = app
        .call(
            Method::POST,
            "acme",
            "/api/v1/users/",
            Some(&admin),
            Some(body("second", PASSWORD)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, errors) = app
        .call(
            Method::POST,
            "acme",
            "/api/v1/users/",
            Some(&admin),
            Some(body("SECOND", PASSWORD)),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the limit comes first: {errors}"
    );
    let (status, _, body) = app
        .call(
            Method::POST,
            "acme",
            "/api/v1/users/",
            Some(&admin),
            Some(json!({"username": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["group_name"][0], "This field is required.");
}

#[tokio::test]
async fn usernames_and_emails_are_unique_case_insensitively() {
    let (app, org) = org().await;
    let admin = app.token("acme", "admin").await;
    for (username, email, field) in [
        ("CONS_A", "fresh@example.com", "username"),
        ("fresh", "CONS_A@EXAMPLE.COM", "email"),
    ] {
        let (status, _, body) = app
            .call(
                Method::POST,
                "acme",
                "/api/v1/users/",
                Some(&admin),
                Some(json!({
                    "username": username, "email": email, "password": PASSWORD,
                    "first_name": "A", "last_name": "B", "group_name": "CONSULTANT",
                    "branch_ids": [org.a],
                })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body[field].is_array(), "{body}");
    }
}

#[tokio::test]
async fn a_user_id_that_is_not_a_positive_integer_is_a_json_404_on_every_user_route() {
    let (app, _) = org().await;
    let token = app.token("acme", "admin").await;
    for (method, path) in [
        (Method::GET, "/api/v1/users/abc/"),
        (Method::PATCH, "/api/v1/users/99999999999999999999/"),
        (Method::DELETE, "/api/v1/users/-1/"),
        (Method::POST, "/api/v1/users/x1/assign-permissions/"),
    ] {
        let (status, _, body) = app
            .call(method.clone(), "acme", path, Some(&token), Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert!(body["detail"].is_string(), "{method} {path}: {body}");
    }
}
