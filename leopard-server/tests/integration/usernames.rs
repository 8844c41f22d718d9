//! The username rule over HTTP against PostgreSQL, exactly the original's (Django's
//! `UnicodeUsernameValidator` on a 150-character field): 1–150 letters, digits and `@ . + - _`.
//! Accounts imported from the original, however short their names, can be created and log in.

use crate::common;

use common::{TestApp, PASSWORD};
use http::{Method, StatusCode};
use leopard_rbac::Role;
use serde_json::{json, Value};

const SLUG: &str = "acme";

fn new_user(username: &str, branch: i64) -> Value {
    json!({
        "username": username, "email": format!("u{}@example.com", username.len()),
        "password": PASSWORD, "first_name": "New", "last_name": "User",
        "group_name": "CONSULTANT", "branch_ids": [branch],
    })
}

async fn setup() -> (TestApp, String, i64) {
    let app = TestApp::new(&[SLUG]).await;
    let org = app.seed_org(SLUG).await;
    app.user(SLUG, "root", Some(Role::SuperAdmin), &[], &[])
        .await;
    let token = app.token(SLUG, "root").await;
    (app, token, org.a)
}

#[tokio::test]
async fn usernames_of_one_to_150_allowed_characters_are_accepted_and_can_log_in() {
    let (app, token, branch) = setup().await;
    let longest = "x".repeat(150);
    for (n, username) in ["a", "ba", "a.b+c-d_e@f", "Ñandú9", longest.as_str()]
        .into_iter()
        .enumerate()
    {
        let mut body = new_user(username, branch);
        body["email"] = json!(format!("ok{n}@example.com"));
        let (status, _, json) = app
            .call(
                Method::POST,
                SLUG,
                "/api/v1/users/",
                Some(&token),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{username}: {json}");
        assert_eq!(json["username"], username);
        let (status, _, json) = app
            .call(
                Method::POST,
                SLUG,
                "/api/token/",
                None,
                Some(json!({"username": username, "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login of {username}: {json}");
    }
}

#[tokio::test]
async fn empty_overlong_or_other_characters_are_refused_with_the_originals_message_and_nothing_is_written(
) {
    let (app, token, branch) = setup().await;
    let before = app.tenant_count(SLUG, "SELECT count(*) FROM users").await;
    let overlong = "x".repeat(151);
    for (username, message) in [
        ("", "This field may not be blank."),
        (
            overlong.as_str(),
            "Ensure this field has no more than 150 characters.",
        ),
        (
            "with space",
            "Enter a valid username. This value may contain only letters, numbers, and \
             @/./+/-/_ characters.",
        ),
        (
            "semi;colon",
            "Enter a valid username. This value may contain only letters, numbers, and \
             @/./+/-/_ characters.",
        ),
        (
            "slash/x",
            "Enter a valid username. This value may contain only letters, numbers, and \
             @/./+/-/_ characters.",
        ),
    ] {
        let (status, _, json) = app
            .call(
                Method::POST,
                SLUG,
                "/api/v1/users/",
                Some(&token),
                Some(new_user(username, branch)),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{username:?}: {json}");
        assert_eq!(json["username"], json!([message]), "{username:?}");
    }
    assert_eq!(
        app.tenant_count(SLUG, "SELECT count(*) FROM users").await,
        before
    );
}
