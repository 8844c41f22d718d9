//! NUL characters, which PostgreSQL text cannot hold, are refused as input (400) before they
//! reach the database, in query parameters and in login credentials alike (found by the
//! Schemathesis run of `scripts/fuzz-api.sh` and a sweep of the list filters: each was a 500).

use crate::common;

use common::TestApp;
use http::{Method, StatusCode};
use leopard_rbac::Role;
use serde_json::json;

#[tokio::test]
async fn a_list_filter_holding_a_null_character_is_a_400_on_that_parameter() {
    let app = TestApp::new(&["acme"]).await;
    app.user("acme", "alice", Some(Role::SuperAdmin), &[], &[])
        .await;
    let token = app.token("acme", "alice").await;
    for path in [
        "/api/v1/regions/?search=%00",
        "/api/v1/clients/?stage=x%00y",
        "/api/v1/users/assignable/?search=a%00",
        "/api/v1/visa-applications/?page=1&client_name=%00",
    ] {
        let (status, _, body) = app.get("acme", path, &token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let field = path
            .rsplit(['?', '&'])
            .next()
            .and_then(|p| p.split('=').next())
            .expect("a parameter");
        assert_eq!(
            body[field],
            json!(["Null characters are not allowed."]),
            "{path}: {body}"
        );
    }
    // An encoded percent sign followed by zeros is no NUL.
    let (status, _, body) = app
        .get("acme", "/api/v1/regions/?search=%2500", &token)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_login_with_a_null_character_in_the_username_is_a_400() {
    let app = TestApp::new(&["acme"]).await;
    let (status, _, body) = app
        .call(
            Method::POST,
            "acme",
            "/api/token/",
            None,
            Some(json!({"username": "ad\u{0}min", "password": "whatever"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["username"],
        json!(["Null characters are not allowed."])
    );
}
