//! Tokens are bound to their tenant on every route: the test walks the server's route table
//! (the router is built from it) and sends each tenant route, with each of its methods, a token
//! of another tenant.

use crate::common;

use common::TestApp;
use http::{Method, StatusCode};
use leopard_rbac::Role;
use leopard_server::api::{self, Access};
use serde_json::json;

/// The route's path with every `{param}` replaced by `1`.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => in_param = true,
            '}' => {
                in_param = false;
                out.push('1');
            }
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

fn body_for(method: &Method) -> Option<serde_json::Value> {
    (*method != Method::GET && *method != Method::DELETE).then(|| json!({}))
}

#[tokio::test]
async fn every_tenant_route_answers_401_to_a_token_of_another_tenant_and_to_no_token() {
    let app = TestApp::new(&["acme", "globex"]).await;
    // Same username and id 1 in both tenants: only the binding can tell them apart.
    app.user("acme", "alice", Some(Role::SuperAdmin), &[], &[])
        .await;
    app.user("globex", "alice", Some(Role::SuperAdmin), &[], &[])
        .await;
    let (acme_access, acme_refresh) = app.login("acme", "alice").await;
    let globex_access = app.token("globex", "alice").await;
    let platform_access = platform_token(&app).await;
    let mut checked = 0;
    for route in api::table() {
        let path = concrete(route.path);
        for method in &route.methods {
            match route.access {
                Access::Tenant => {
                    let (status, _, body) = app
                        .call(
                            method.clone(),
                            "globex",
                            &path,
                            Some(&acme_access),
                            body_for(method),
                        )
                        .await;
                    assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
                    assert_eq!(body["code"], "token_not_valid", "{method} {path}");
                    assert!(
                        !body.to_string().contains("acme"),
                        "{method} {path}: {body}"
                    );
                    let (status, _, body) = app
                        .call(method.clone(), "globex", &path, None, body_for(method))
                        .await;
                    assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
                    assert_eq!(body["code"], "not_authenticated", "{method} {path}");
                    // The tenant's own token passes authentication.
                    let (status, _, _) = app
                        .call(
                            method.clone(),
                            "globex",
                            &path,
                            Some(&globex_access),
                            body_for(method),
                        )
                        .await;
                    assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
                    checked += 1;
                }
                Access::TenantPublic if route.path == "/api/token/refresh/" => {
                    let (status, _, _) = app
                        .call(
                            method.clone(),
                            "globex",
                            &path,
                            None,
                            Some(json!({"refresh": acme_refresh})),
                        )
                        .await;
                    assert_eq!(status, StatusCode::UNAUTHORIZED, "refresh across tenants");
                    checked += 1;
                }
                Access::Platform if !route.path.starts_with("/api/platform/token/") => {
                    // A tenant token on the base host's platform routes.
                    let (status, _, body) = app
                        .call(
                            method.clone(),
                            "localhost",
                            &path,
                            Some(&acme_access),
                            body_for(method),
                        )
                        .await;
                    assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
                    let (status, _, _) = app
                        .call(
                            method.clone(),
                            "localhost",
                            &path,
                            Some(&platform_access),
                            body_for(method),
                        )
                        .await;
                    assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
                    checked += 1;
                }
                Access::TenantPublic | Access::Platform => {}
            }
        }
    }
    assert!(
        checked >= 38,
        "the table lists the tenant routes ({checked} checked)"
    );
}

/// Creates a platform admin and logs it in on the base host.
async fn platform_token(app: &TestApp) -> String {
    let mut conn = app.tenancy.db.pool().acquire().await.expect("connection");
    leopard_server::api::platform::create_admin(&mut conn, "root", "", common::PASSWORD)
        .await
        .expect("platform admin");
    let (status, _, body) = app
        .call(
            Method::POST,
            "localhost",
            "/api/platform/token/",
            None,
            Some(json!({"username": "root", "password": common::PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access"].as_str().expect("access").to_owned()
}

#[test]
fn the_route_table_has_no_duplicate_path_and_every_path_ends_with_a_slash() {
    let table = api::table();
    let mut paths: Vec<&str> = table.iter().map(|r| r.path).collect();
    assert!(paths.iter().all(|p| p.ends_with('/')), "{paths:?}");
    let before = paths.len();
    paths.sort_unstable();
    paths.dedup();
    assert_eq!(before, paths.len());
}
