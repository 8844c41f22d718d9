//! Authentication through HTTP: login by username or e-mail, refresh rotation and replay,
//! generic 401s, throttling, Django hash upgrade, suspended tenants, tenant binding.

use crate::common;

use common::{TestApp, PASSWORD};
use http::{Method, StatusCode};
use leopard_core::TenantSlug;
use leopard_rbac::Role;
use leopard_tenancy::SubscriptionStatus;
use serde_json::json;

async fn post(app: &TestApp, slug: &str, path: &str, body: serde_json::Value) -> common::Reply {
    app.call(Method::POST, slug, path, None, Some(body)).await
}

#[tokio::test]
async fn login_accepts_the_username_or_the_email_and_returns_both_tokens() {
    let app = TestApp::new(&["acme"]).await;
    app.user("acme", "alice", Some(Role::Consultant), &[], &[])
        .await;
    for login in ["alice", "ALICE", "alice@example.com"] {
        let (status, _, body) = post(
            &app,
            "acme",
            "/api/token/",
            json!({"username": login, "password": PASSWORD}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{login}: {body}");
        assert!(body["access"].is_string() && body["refresh"].is_string());
    }
}

#[tokio::test]
async fn a_wrong_password_an_unknown_user_and_an_inactive_user_get_the_same_401() {
    let app = TestApp::new(&["acme"]).await;
    let id = app
        .user("acme", "alice", Some(Role::Consultant), &[], &[])
        .await;
    app.user("acme", "bob", Some(Role::Consultant), &[], &[])
        .await;
    let mut tx = app.context("acme").begin().await.expect("tx");
    sqlx::query("UPDATE users SET is_active = false WHERE username = 'bob'")
        .execute(&mut *tx)
        .await
        .expect("deactivate");
    tx.commit().await.expect("commit");
    let mut bodies = Vec::new();
    for (user, password) in [
        ("alice", "wrong-password"),
        ("nobody", PASSWORD),
        ("bob", PASSWORD),
    ] {
        let (status, _, body) = post(
            &app,
            "acme",
            "/api/token/",
            json!({"username": user, "password": password}),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        bodies.push(body);
    }
    assert!(bodies.iter().all(|b| *b == bodies[0]), "{bodies:?}");
    assert_eq!(
        bodies[0]["detail"],
        "No active account found with the given credentials"
    );
    assert!(id > 0);
    let (status, _, body) = post(&app, "acme", "/api/token/", json!({"username": "alice"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["password"][0], "This field is required.");
}

#[tokio::test]
async fn refresh_rotates_both_tokens_and_a_replayed_refresh_token_revokes_the_family() {
    let app = TestApp::new(&["acme"]).await;
    app.user("acme", "alice", Some(Role::Consultant), &[], &[])
        .await;
    let (_, refresh) = app.login("acme", "alice").await;
    let (status, _, rotated) = post(
        &app,
        "acme",
        "/api/token/refresh/",
        json!({"refresh": refresh}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_refresh = rotated["refresh"].as_str().expect("refresh").to_owned();
    assert_ne!(new_refresh, refresh);
    let access = rotated["access"].as_str().expect("access");
    let (status, _, _) = app.get("acme", "/api/v1/users/profile/", access).await;
    assert_ne!(
        status,
        StatusCode::UNAUTHORIZED,
        "the rotated access token works"
    );

    // The old refresh token was consumed: replaying it fails and revokes the new one too.
    let (status, _, body) = post(
        &app,
        "acme",
        "/api/token/refresh/",
        json!({"refresh": refresh}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "token_not_valid");
    let (status, _, _) = post(
        &app,
        "acme",
        "/api/token/refresh/",
        json!({"refresh": new_refresh}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_access_token_is_not_a_refresh_token_and_a_refresh_token_is_not_an_access_token() {
    let app = TestApp::new(&["acme"]).await;
    app.user("acme", "alice", Some(Role::Consultant), &[], &[])
        .await;
    let (access, refresh) = app.login("acme", "alice").await;
    let (status, _, _) = post(
        &app,
        "acme",
        "/api/token/refresh/",
        json!({"refresh": access}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = app.get("acme", "/api/v1/users/profile/", &refresh).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "token_not_valid");
    let (status, headers, body) = app
        .call(Method::GET, "acme", "/api/v1/users/profile/", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "not_authenticated");
    assert_eq!(headers["www-authenticate"], "Bearer realm=\"api\"");
}

#[tokio::test]
async fn a_token_of_another_tenant_is_refused_on_refresh_with_a_message_naming_no_tenant() {
    let app = TestApp::new(&["acme", "globex"]).await;
    app.user("acme", "alice", Some(Role::SuperAdmin), &[], &[])
        .await;
    app.user("globex", "alice", Some(Role::SuperAdmin), &[], &[])
        .await;
    let (access, refresh) = app.login("acme", "alice").await;
    let (status, _, body) = post(
        &app,
        "globex",
        "/api/token/refresh/",
        json!({"refresh": refresh}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let text = body.to_string();
    assert!(!text.contains("acme") && !text.contains("globex"), "{text}");
    let (status, _, _) = app.get("globex", "/api/v1/users/profile/", &access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_django_pbkdf2_hash_logs_in_and_is_replaced_by_argon2id() {
    let app = TestApp::new(&["acme"]).await;
    app.user("acme", "legacy", Some(Role::Consultant), &[], &[])
        .await;
    // Computed with Python: hashlib.pbkdf2_hmac('sha256', b'correct horse', b'salt1234', 260000).
    let django = "pbkdf2_sha256$260000$salt1234$qjh4xre6GKpwecyN6xWgddRVZv0rQnXP18CEh++p/aw=";
    let mut tx = app.context("acme").begin().await.expect("tx");
    sqlx::query("UPDATE users SET password = $1 WHERE username = 'legacy'")
        .bind(django)
        .execute(&mut *tx)
        .await
        .expect("legacy hash");
    tx.commit().await.expect("commit");
    let (status, _, body) = post(
        &app,
        "acme",
        "/api/token/",
        json!({"username": "legacy", "password": "correct horse"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut tx = app.context("acme").begin().await.expect("tx");
    let stored: String = sqlx::query_scalar("SELECT password FROM users WHERE username = 'legacy'")
        .fetch_one(&mut *tx)
        .await
        .expect("hash");
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    let (status, _, _) = post(
        &app,
        "acme",
        "/api/token/",
        json!({"username": "legacy", "password": "correct horse"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the upgraded hash verifies");
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled_with_retry_after_and_other_users_are_not() {
    let app = TestApp::with_config(&["acme"], |c| c.login_attempts_per_user = 3).await;
    app.user("acme", "alice", Some(Role::Consultant), &[], &[])
        .await;
    app.user("acme", "bob", Some(Role::Consultant), &[], &[])
        .await;
    for _ in 0..3 {
        let (status, _, _) = post(
            &app,
            "acme",
            "/api/token/",
            json!({"username": "alice", "password": "nope-nope"}),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, headers, body) = post(
        &app,
        "acme",
        "/api/token/",
        json!({"username": "alice", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let retry: u64 = headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry > 0 && retry <= 15 * 60);
    assert_eq!(body["code"], "throttled");
    app.login("acme", "bob").await;
}

#[tokio::test]
async fn a_suspended_tenant_refuses_login_and_api_calls_with_tenant_inactive() {
    let app = TestApp::new(&["acme"]).await;
    app.user("acme", "alice", Some(Role::SuperAdmin), &[], &[])
        .await;
    let access = app.token("acme", "alice").await;
    app.tenancy
        .provisioner
        .set_status(
            &TenantSlug::parse("acme").expect("slug"),
            SubscriptionStatus::Suspended,
        )
        .await
        .expect("suspend");
    app.registry.reload().await.expect("reload");
    let (status, _, body) = post(
        &app,
        "acme",
        "/api/token/",
        json!({"username": "alice", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "tenant_inactive");
    let (status, _, body) = app.get("acme", "/api/v1/users/profile/", &access).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "tenant_inactive");
}
