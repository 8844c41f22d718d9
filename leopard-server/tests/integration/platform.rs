//! The platform API: platform admins log in on the base host and manage tenants; platform and
//! tenant tokens never cross over.

use crate::common;

use std::process::Command;

use common::{TestApp, PASSWORD, SECRET};
use http::{Method, StatusCode};
use leopard_http::jwt::{JwtKeys, TokenType};
use leopard_rbac::Role;
use leopard_server::api::platform;
use serde_json::{json, Value};

/// The base host: resolves to no tenant.
const BASE: &str = "localhost:8000";

const ADMIN_PASSWORD: &str = "Platform-Secret-99";

async fn app_with_admin(slugs: &[&str]) -> TestApp {
    let app = TestApp::new(slugs).await;
    let mut conn = app.tenancy.db.pool().acquire().await.expect("connection");
    platform::create_admin(&mut conn, "root", "root@example.com", ADMIN_PASSWORD)
        .await
        .expect("platform admin");
    app
}

async fn platform_login(app: &TestApp) -> (String, String) {
    let (status, _, body) = app
        .call(
            Method::POST,
            BASE,
            "/api/platform/token/",
            None,
            Some(json!({"username": "root", "password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        body["access"].as_str().expect("access").to_owned(),
        body["refresh"].as_str().expect("refresh").to_owned(),
    )
}

async fn platform_call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (status, _, body) = app.call(method, BASE, path, Some(token), body).await;
    (status, body)
}

#[tokio::test]
async fn a_platform_admin_logs_in_on_the_base_host_with_a_tenantless_platform_token() {
    let app = app_with_admin(&["acme"]).await;
    let (access, refresh) = platform_login(&app).await;

    let keys = JwtKeys::derived(SECRET, "leopard platform tokens").expect("keys");
    let claims = keys
        .decode(&access, TokenType::Access, leopard_http::auth::unix_now())
        .expect("a platform access token");
    assert_eq!(claims.tid, "");
    assert_eq!(claims.username, "root");
    assert_eq!(claims.groups, vec!["PLATFORM_ADMIN".to_owned()]);
    assert!(keys
        .decode(&refresh, TokenType::Refresh, leopard_http::auth::unix_now())
        .is_ok());

    // Logging in by e-mail works too; the refresh endpoint issues a new pair.
    let (status, _, body) = app
        .call(
            Method::POST,
            BASE,
            "/api/platform/token/",
            None,
            Some(json!({"username": "ROOT@example.com", "password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = app
        .call(
            Method::POST,
            BASE,
            "/api/platform/token/refresh/",
            None,
            Some(json!({"refresh": refresh})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access"].is_string());
    // The used refresh token was consumed: replaying it fails.
    let (status, _, _) = app
        .call(
            Method::POST,
            BASE,
            "/api/platform/token/refresh/",
            None,
            Some(json!({"refresh": refresh})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a replayed refresh token is refused"
    );

    let (status, _, body) = app
        .call(
            Method::POST,
            BASE,
            "/api/platform/token/",
            None,
            Some(json!({"username": "root", "password": "Wrong-Password-1"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "no_active_account");
}

#[tokio::test]
async fn platform_routes_answer_404_on_a_tenant_host() {
    let app = app_with_admin(&["acme"]).await;
    let (status, _, body) = app
        .call(
            Method::POST,
            "acme",
            "/api/platform/token/",
            None,
            Some(json!({"username": "root", "password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");

    let (access, _) = platform_login(&app).await;
    let (status, _, _) = app
        .call(
            Method::GET,
            "acme-immigrate.localhost:8000",
            "/api/platform/tenants/",
            Some(&access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn creating_a_tenant_with_an_admin_provisions_it_and_the_admin_logs_in_on_its_host() {
    let app = app_with_admin(&["acme"]).await;
    let (access, _) = platform_login(&app).await;

    let (status, body) = platform_call(
        &app,
        Method::POST,
        "/api/platform/tenants/",
        &access,
        Some(json!({
            "slug": "initech",
            "name": "Initech",
            "max_users": 10,
            "subscription_status": "ACTIVE",
            "contact_email": "Ops@Initech.example",
            "domains": ["crm.initech.example"],
            "admin": {
                "username": "bill",
                "email": "bill@initech.example",
                "password": PASSWORD,
                "first_name": "Bill",
                "last_name": "Lumbergh",
            },
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["slug"], "initech");
    assert_eq!(body["name"], "Initech");
    assert_eq!(body["schema_name"], "tenant_initech");
    assert_eq!(body["subscription_status"], "ACTIVE");
    assert_eq!(body["max_users"], 10);
    assert_eq!(body["contact_email"], "ops@initech.example");
    assert_eq!(body["is_active"], true);
    assert!(body["domains"]
        .as_array()
        .expect("domains")
        .iter()
        .any(|d| d == "crm.initech.example"));
    assert_eq!(body["admin"]["username"], "bill");

    // The registry of the router sees the new tenant at once; its admin is a Super Admin.
    let (status, _, info) = app
        .call(
            Method::GET,
            "initech",
            "/api/public/tenant-info/",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["tenant_name"], "Initech");
    let (_, refresh) = app.login("initech", "bill").await;
    let keys = JwtKeys::new(SECRET).expect("keys");
    let claims = keys
        .decode(&refresh, TokenType::Refresh, leopard_http::auth::unix_now())
        .expect("a tenant token");
    assert_eq!(claims.tid, "initech");
    assert_eq!(
        claims.groups,
        vec![Role::SuperAdmin.group_name().to_owned()]
    );

    // A second tenant with the same slug conflicts.
    let (status, body) = platform_call(
        &app,
        Method::POST,
        "/api/platform/tenants/",
        &access,
        Some(json!({"slug": "initech", "name": "Again"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[tokio::test]
async fn the_admin_lists_gets_suspends_and_reactivates_tenants() {
    let app = app_with_admin(&["acme", "globex"]).await;
    let (access, _) = platform_login(&app).await;

    let (status, body) =
        platform_call(&app, Method::GET, "/api/platform/tenants/", &access, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 2);
    let slugs: Vec<&str> = body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|t| t["slug"].as_str().expect("slug"))
        .collect();
    assert_eq!(slugs, ["acme", "globex"]);

    let (status, body) = platform_call(
        &app,
        Method::GET,
        "/api/platform/tenants/acme/",
        &access,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "ACME");
    let (status, _) = platform_call(
        &app,
        Method::GET,
        "/api/platform/tenants/nobody/",
        &access,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = platform_call(
        &app,
        Method::PATCH,
        "/api/platform/tenants/acme/",
        &access,
        Some(json!({"subscription_status": "SUSPENDED"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["subscription_status"], "SUSPENDED");
    let (status, _, body) = app
        .call(Method::GET, "acme", "/api/public/tenant-info/", None, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "tenant_inactive");

    // Reactivating needs a serving status.
    let (status, body) = platform_call(
        &app,
        Method::PATCH,
        "/api/platform/tenants/acme/",
        &access,
        Some(json!({"is_active": true})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["is_active"].is_array(), "{body}");
    let (status, body) = platform_call(
        &app,
        Method::PATCH,
        "/api/platform/tenants/acme/",
        &access,
        Some(json!({"subscription_status": "ACTIVE", "is_active": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["subscription_status"], "ACTIVE");
    let (status, _, _) = app
        .call(Method::GET, "acme", "/api/public/tenant-info/", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = platform_call(
        &app,
        Method::PATCH,
        "/api/platform/tenants/acme/",
        &access,
        Some(json!({"subscription_status": "BOGUS"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["subscription_status"].is_array(), "{body}");
}

#[tokio::test]
async fn delete_deactivates_a_tenant_and_purge_drops_it() {
    let app = app_with_admin(&["acme", "globex"]).await;
    let (access, _) = platform_login(&app).await;

    let (status, body) = platform_call(
        &app,
        Method::DELETE,
        "/api/platform/tenants/acme/",
        &access,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["is_active"], false);
    let (status, _, _) = app
        .call(Method::GET, "acme", "/api/public/tenant-info/", None, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = platform_call(
        &app,
        Method::DELETE,
        "/api/platform/tenants/globex/?purge=true",
        &access,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = platform_call(
        &app,
        Method::GET,
        "/api/platform/tenants/globex/",
        &access,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let schemas: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'tenant_globex'",
    )
    .fetch_one(app.tenancy.db.pool())
    .await
    .expect("query");
    assert_eq!(schemas, 0);
    let (status, _, _) = app
        .call(
            Method::GET,
            "globex",
            "/api/public/tenant-info/",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _) = platform_call(
        &app,
        Method::DELETE,
        "/api/platform/tenants/globex/?purge=true",
        &access,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tenant_and_platform_tokens_are_refused_on_each_others_routes() {
    let app = app_with_admin(&["acme"]).await;
    app.user("acme", "alice", Some(Role::SuperAdmin), &[], &[])
        .await;
    let tenant_access = app.token("acme", "alice").await;
    let (platform_access, platform_refresh) = platform_login(&app).await;

    let (status, body) = platform_call(
        &app,
        Method::GET,
        "/api/platform/tenants/",
        &tenant_access,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "token_not_valid");

    let (status, _, body) = app
        .call(Method::GET, BASE, "/api/platform/tenants/", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "not_authenticated");

    // A platform refresh token is not a refresh token of any tenant.
    let (status, _, body) = app
        .call(
            Method::POST,
            "acme",
            "/api/token/refresh/",
            None,
            Some(json!({"refresh": platform_refresh})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "token_not_valid");

    // The refresh token is not an access token either.
    let (status, _) = platform_call(
        &app,
        Method::GET,
        "/api/platform/tenants/",
        &platform_refresh,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A deactivated admin's token stops working.
    sqlx::query("UPDATE public.leopard_platform_admins SET is_active = false")
        .execute(app.tenancy.db.pool())
        .await
        .expect("update");
    let (status, _) = platform_call(
        &app,
        Method::GET,
        "/api/platform/tenants/",
        &platform_access,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_input_is_a_400_and_a_weak_admin_password_creates_nothing() {
    let app = app_with_admin(&[]).await;
    let (access, _) = platform_login(&app).await;

    let (status, body) = platform_call(
        &app,
        Method::POST,
        "/api/platform/tenants/",
        &access,
        Some(json!({"slug": "Not A Slug!", "name": ""})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["slug"].is_array(), "{body}");
    assert!(body["name"].is_array(), "{body}");

    let (status, body) = platform_call(
        &app,
        Method::POST,
        "/api/platform/tenants/",
        &access,
        Some(json!({
            "slug": "weak",
            "name": "Weak Co",
            "admin": {"username": "boss", "email": "boss@weak.example", "password": "123"},
        })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["admin.password"].is_array(), "{body}");
    let (status, _) = platform_call(
        &app,
        Method::GET,
        "/api/platform/tenants/weak/",
        &access,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = platform_call(&app, Method::GET, "/api/platform/tenants/", &access, None).await;
    assert_eq!(body["count"], 0);
}

#[tokio::test]
async fn the_cli_creates_a_platform_admin_who_then_logs_in_over_http() {
    let app = TestApp::new(&["acme"]).await;
    let run = |password: &str| {
        Command::new(env!("CARGO_BIN_EXE_leopard"))
            .args([
                "--database-url",
                app.tenancy.db.url(),
                "platform-admin",
                "create",
                "--username",
                "ops",
                "--email",
                "ops@example.com",
            ])
            .env("LEOPARD_PLATFORM_ADMIN_PASSWORD", password)
            .env("LEOPARD_LOG", "warn")
            .output()
            .expect("the binary runs")
    };
    let weak = run("short");
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("password"));

    let output = run(ADMIN_PASSWORD);
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let again = run(ADMIN_PASSWORD);
    assert!(!again.status.success(), "a duplicate username is refused");

    let (status, _, body) = app
        .call(
            Method::POST,
            BASE,
            "/api/platform/token/",
            None,
            Some(json!({"username": "ops", "password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access"].is_string());
}

#[tokio::test]
async fn a_platform_admin_adds_and_removes_domains_and_a_tenant_keeps_its_last_one() {
    let app = app_with_admin(&["acme"]).await;
    let (access, _) = platform_login(&app).await;
    let path = "/api/platform/tenants/acme/domains/";
    let (status, body) = platform_call(
        &app,
        Method::POST,
        path,
        &access,
        Some(json!({"domain": "crm.acme.example"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["domains"]
        .as_array()
        .expect("domains")
        .contains(&json!("crm.acme.example")));
    // The new domain resolves to the tenant at once.
    let (status, _, info) = app
        .call(
            Method::GET,
            "crm.acme.example",
            "/api/public/tenant-info/",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{info}");
    let (status, body) = platform_call(
        &app,
        Method::POST,
        path,
        &access,
        Some(json!({"domain": ""})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["domain"].is_array(), "{body}");

    let (status, body) = platform_call(
        &app,
        Method::DELETE,
        "/api/platform/tenants/acme/domains/crm.acme.example/",
        &access,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let remaining = body["domains"].as_array().expect("domains").clone();
    for domain in &remaining[1..] {
        let path = format!(
            "/api/platform/tenants/acme/domains/{}/",
            domain.as_str().expect("text")
        );
        let (status, _) = platform_call(&app, Method::DELETE, &path, &access, None).await;
        assert_eq!(status, StatusCode::OK);
    }
    let last = format!(
        "/api/platform/tenants/acme/domains/{}/",
        remaining[0].as_str().expect("text")
    );
    let (status, body) = platform_call(&app, Method::DELETE, &last, &access, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = platform_call(
        &app,
        Method::DELETE,
        "/api/platform/tenants/acme/domains/unknown.example/",
        &access,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
