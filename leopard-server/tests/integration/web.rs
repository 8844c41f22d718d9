//! The web interface over HTTP against a real PostgreSQL database: sessions (login, logout,
//! idle expiry, cookie attributes, a cookie of one tenant refused on another, the login
//! throttle), CSRF on every form, security headers, escaping, the scope and permissions of the
//! API in every page, inline validation errors, and the screens' main actions.

use crate::common;

use std::time::Duration;

use common::browser::Browser;
use common::{Org, TestApp};
use http::{header, Method, StatusCode};
use leopard_rbac::Role;
use serde_json::json;

const SLUG: &str = "acme";

/// An app with an organisation, an admin, a consultant of branch A and one of branch B.
async fn setup() -> (TestApp, Org) {
    let app = TestApp::new(&[SLUG, "globex"]).await;
    let org = app.seed_org(SLUG).await;
    app.user(SLUG, "admin", Some(Role::SuperAdmin), &[], &[])
        .await;
    app.user(SLUG, "cons.a", Some(Role::Consultant), &[org.a], &[])
        .await;
    app.user(SLUG, "cons.b", Some(Role::Consultant), &[org.b], &[])
        .await;
    (app, org)
}

async fn create_client(app: &TestApp, token: &str, first: &str, branch: i64) -> i64 {
    let (status, _, body) = app
        .call(
            Method::POST,
            SLUG,
            "/api/v1/clients/",
            Some(token),
            Some(
                json!({"first_name": first, "last_name": "Client", "branch_id": branch,
                        "gender": "FEMALE", "country": "AU"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_i64().expect("id")
}

#[tokio::test]
async fn the_login_page_names_the_tenant_and_a_login_sets_an_http_only_lax_session_cookie() {
    let (app, _) = setup().await;
    let mut browser = Browser::new(&app, SLUG);
    let anonymous = browser.get("/clients/").await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(anonymous.location(), "/login/?next=%2Fclients%2F");
    let form = browser.get("/login/").await;
    assert!(form.body.contains("<h1>ACME</h1>"), "{}", form.body);
    let page = browser
        .post(
            "/login/",
            &[
                ("username", "admin"),
                ("password", common::PASSWORD),
                ("next", "/clients/"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/clients/");
    let cookie = page
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("leopard_session="))
        .expect("a session cookie")
        .to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "dev mode: {cookie}");
    assert!(!cookie.contains("Domain"), "host-only: {cookie}");
    let list = browser.get("/clients/").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("<h1 class=\"grow\">Clients</h1>"));
}

#[tokio::test]
async fn production_mode_cookies_are_secure() {
    let app = TestApp::with_config(&[SLUG], |config| config.secure_cookies = true).await;
    app.user(SLUG, "admin", Some(Role::SuperAdmin), &[], &[])
        .await;
    let mut browser = Browser::new(&app, SLUG);
    let page = browser.login_with("admin", common::PASSWORD).await;
    let cookie = page
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("leopard_session="))
        .expect("a session cookie")
        .to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test]
async fn a_wrong_password_re_renders_the_form_with_a_401_and_the_throttle_of_the_api_applies() {
    let (app, _) = setup().await;
    let mut browser = Browser::new(&app, SLUG);
    let page = browser.login_with("admin", "wrong-password").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(
        page.body.contains("No active account found"),
        "{}",
        page.body
    );
    assert!(!browser.cookies.contains_key("leopard_session"));
    for _ in 0..4 {
        browser.login_with("admin", "wrong-password").await;
    }
    let throttled = browser.login_with("admin", common::PASSWORD).await;
    assert_eq!(
        throttled.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        throttled.body
    );
    assert!(throttled.headers.contains_key(header::RETRY_AFTER));
    // The API's login counts the same failures.
    let (status, _, _) = app
        .call(
            Method::POST,
            SLUG,
            "/api/token/",
            None,
            Some(json!({"username": "admin", "password": common::PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_login_post_without_the_login_csrf_cookie_is_refused_and_signs_nobody_in() {
    let (app, _) = setup().await;
    let mut browser = Browser::new(&app, SLUG);
    let page = browser
        .post_raw(
            "/login/",
            &[
                ("csrf", "0".repeat(64).as_str()),
                ("username", "admin"),
                ("password", common::PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(!browser.cookies.contains_key("leopard_session"));
}

#[tokio::test]
async fn a_session_cookie_of_one_tenant_is_refused_on_another() {
    let (app, _) = setup().await;
    app.user("globex", "admin", Some(Role::SuperAdmin), &[], &[])
        .await;
    let mut acme = Browser::new(&app, SLUG);
    acme.login("admin").await;
    let mut globex = Browser::new(&app, "globex");
    globex.cookies = acme.cookies.clone();
    let page = globex.get("/clients/").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.location().starts_with("/login/"));
}

#[tokio::test]
async fn logout_ends_the_session_so_the_old_cookie_no_longer_works() {
    let (app, _) = setup().await;
    let mut browser = Browser::new(&app, SLUG);
    browser.login("admin").await;
    let stolen = browser.cookies.clone();
    let page = browser.post("/logout/", &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/login/");
    assert!(!browser.cookies.contains_key("leopard_session"));
    let mut replay = Browser::new(&app, SLUG);
    replay.cookies = stolen;
    assert_eq!(replay.get("/").await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.tenant_count(SLUG, "SELECT count(*) FROM web_sessions")
            .await,
        0
    );
}

#[tokio::test]
async fn an_idle_session_expires() {
    let app = TestApp::with_config(&[SLUG], |config| {
        config.web_idle_timeout = Duration::from_secs(1);
    })
    .await;
    app.user(SLUG, "admin", Some(Role::SuperAdmin), &[], &[])
        .await;
    let mut browser = Browser::new(&app, SLUG);
    browser.login("admin").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let page = browser.get("/").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.location().starts_with("/login/"));
}

#[tokio::test]
async fn a_session_in_use_outlives_its_idle_timeout() {
    // Its idle clock is written at most every hundredth of the timeout (here 10 ms), so
    // requests closer together than the timeout keep it alive past it.
    let app = TestApp::with_config(&[SLUG], |config| {
        config.web_idle_timeout = Duration::from_secs(1);
    })
    .await;
    app.user(SLUG, "admin", Some(Role::SuperAdmin), &[], &[])
        .await;
    let mut browser = Browser::new(&app, SLUG);
    browser.login("admin").await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(browser.get("/").await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn a_deactivated_user_loses_the_session_on_the_next_request() {
    let (app, _) = setup().await;
    let mut browser = Browser::new(&app, SLUG);
    browser.login("cons.a").await;
    let mut tx = app.context(SLUG).begin().await.expect("tx");
    sqlx::query("UPDATE users SET is_active = false WHERE username = 'cons.a'")
        .execute(&mut *tx)
        .await
        .expect("deactivate");
    tx.commit().await.expect("commit");
    assert_eq!(browser.get("/").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn forms_without_or_with_a_wrong_csrf_token_are_refused_and_change_nothing() {
    let (app, org) = setup().await;
    let mut browser = Browser::new(&app, SLUG);
    browser.login("admin").await;
    let branch = org.a.to_string();
    let fields = [
        ("first_name", "Mallory"),
        ("last_name", "Forged"),
        ("stage", "LEAD"),
        ("gender", "OTHER"),
        ("country", "AU"),
        ("branch_id", branch.as_str()),
    ];
    let missing = browser.post_raw("/clients/new/", &fields).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let mut wrong: Vec<(&str, &str)> = vec![("csrf", "deadbeef")];
    wrong.extend_from_slice(&fields);
    let wrong = browser.post_raw("/clients/new/", &wrong).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let logout = browser.post_raw("/logout/", &[]).await;
    assert_eq!(logout.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.tenant_count(SLUG, "SELECT count(*) FROM clients").await,
        0
    );
    // The same form with the page's token goes through.
    browser.get("/clients/new/").await;
    let ok = browser.post("/clients/new/", &fields).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(
        app.tenant_count(SLUG, "SELECT count(*) FROM clients").await,
        1
    );
}

#[tokio::test]
async fn every_page_carries_a_strict_content_security_policy_and_framing_and_referrer_headers() {
    let (app, _) = setup().await;
    let mut browser = Browser::new(&app, SLUG);
    let login = browser.get("/login/").await;
    browser.login("admin").await;
    let dashboard = browser.get("/").await;
    let missing = browser.get("/no-such-page/").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("Not found"), "{}", missing.body);
    for page in [&login, &dashboard, &missing] {
        let csp = page.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("ascii");
        assert!(csp.starts_with("default-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(page.headers[header::REFERRER_POLICY], "same-origin");
        assert!(!page.body.contains("<script>"), "no inline script");
        assert!(
            !page.body.contains("http://") && !page.body.contains("https://"),
            "nothing from another host"
        );
    }
}

#[tokio::test]
async fn user_provided_strings_are_escaped_in_every_page() {
    let (app, org) = setup().await;
    let token = app.token(SLUG, "admin").await;
    let id = create_client(&app, &token, "<script>alert(1)</script>", org.a).await;
    let mut browser = Browser::new(&app, SLUG);
    browser.login("admin").await;
    for path in [
        "/clients/".to_owned(),
        format!("/clients/{id}/"),
        format!("/clients/{id}/edit/"),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(!page.body.contains("<script>alert(1)</script>"), "{path}");
        assert!(
            page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_consultant_sees_no_client_of_another_branch_and_gets_a_404_for_its_page() {
    let (app, org) = setup().await;
    let token = app.token(SLUG, "admin").await;
    let mine = create_client(&app, &token, "Alice", org.a).await;
    let theirs = create_client(&app, &token, "Bob", org.b).await;
    let mut browser = Browser::new(&app, SLUG);
    browser.login("cons.a").await;
    let list = browser.get("/clients/").await;
    assert!(list.body.contains(&format!("/clients/{mine}/")));
    assert!(!list.body.contains(&format!("/clients/{theirs}/")));
    assert!(!list.body.contains("Bob"));
    let search = browser.get("/clients/?search=Bob").await;
    assert!(search.body.contains("No clients match."));
    for path in [
        format!("/clients/{theirs}/"),
        format!("/clients/{theirs}/edit/"),
        format!("/clients/{theirs}/?tab=timeline"),
    ] {
        assert_eq!(
            browser.get(&path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let dashboard = browser.get("/").await;
    assert!(
        dashboard.body.contains("<b>1</b><span>Total</span>"),
        "{}",
        dashboard.body
    );
}

#[tokio::test]
async fn buttons_a_user_may_not_use_are_not_rendered_and_forged_posts_are_refused() {
    let (app, org) = setup().await;
    let token = app.token(SLUG, "admin").await;
    let id = create_client(&app, &token, "Alice", org.a).await;
    let mut browser = Browser::new(&app, SLUG);
    browser.login("cons.a").await;
    let page = browser.get(&format!("/clients/{id}/")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.body.contains(&format!("/clients/{id}/delete/")),
        "consultants may not delete"
    );
    let forged = browser.post(&format!("/clients/{id}/delete/"), &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.tenant_count(
            SLUG,
            "SELECT count(*) FROM clients WHERE deleted_at IS NULL"
        )
        .await,
        1
    );
    // A user without a role sees no client menu and is refused the page and the form.
    app.user(SLUG, "nobody", None, &[org.a], &[]).await;
    let mut nobody = Browser::new(&app, SLUG);
    nobody.login("nobody").await;
    let home = nobody.get("/").await;
    assert!(!home.body.contains("href=\"/clients/\""));
    assert_eq!(nobody.get("/clients/").await.status, StatusCode::FORBIDDEN);
    let forged = nobody
        .post("/clients/new/", &[("first_name", "X"), ("last_name", "Y")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    assert_eq!(
        app.tenant_count(SLUG, "SELECT count(*) FROM clients").await,
        1
    );
}

#[tokio::test]
async fn bad_form_input_shows_inline_errors_keeps_the_values_and_changes_nothing() {
    let (app, org) = setup().await;
    let mut browser = Browser::new(&app, SLUG);
    browser.login("admin").await;
    browser.get("/clients/new/").await;
    let branch = org.a.to_string();
    let page = browser
        .post(
            "/clients/new/",
            &[
                ("first_name", ""),
                ("last_name", "Kept"),
                ("email", "not-an-email"),
                ("dob", "31/31/2020"),
                ("stage", "NOPE"),
                ("branch_id", branch.as_str()),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(
        page.body.contains("class=\"field invalid\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("value=\"Kept\""));
    assert!(page.body.contains("role=\"alert\""));
    assert_eq!(
        app.tenant_count(SLUG, "SELECT count(*) FROM clients").await,
        0
    );
    // Fixed, it saves and lands on the client page.
    let fixed = browser
        .post(
            "/clients/new/",
            &[
                ("first_name", "Fixed"),
                ("last_name", "Kept"),
                ("stage", "LEAD"),
                ("gender", "MALE"),
                ("country", "NP"),
                ("branch_id", branch.as_str()),
            ],
        )
        .await;
    assert_eq!(fixed.status, StatusCode::SEE_OTHER, "{}", fixed.body);
    let client = browser.get(fixed.location()).await;
    assert!(client.body.contains("Fixed Kept"));
}

#[tokio::test]
async fn assign_change_stage_note_delete_and_restore_go_through_the_api_with_their_events() {
    let (app, org) = setup().await;
    let token = app.token(SLUG, "admin").await;
    let id = create_client(&app, &token, "Alice", org.a).await;
    let consultant: i64 = app
        .tenant_count(SLUG, "SELECT id FROM users WHERE username = 'cons.a'")
        .await;
    let mut browser = Browser::new(&app, SLUG);
    browser.login("admin").await;
    browser.get(&format!("/clients/{id}/")).await;
    let edit = format!("/clients/{id}/edit/");
    let assignee = consultant.to_string();
    let assigned = browser
        .post(
            &edit,
            &[("_return", "detail"), ("assigned_to_id", assignee.as_str())],
        )
        .await;
    assert_eq!(assigned.status, StatusCode::SEE_OTHER, "{}", assigned.body);
    let staged = browser
        .post(&edit, &[("_return", "detail"), ("stage", "CLIENT")])
        .await;
    assert_eq!(staged.status, StatusCode::SEE_OTHER);
    let bad_stage = browser
        .post(&edit, &[("_return", "detail"), ("stage", "BOGUS")])
        .await;
    assert_eq!(bad_stage.status, StatusCode::BAD_REQUEST);
    assert!(bad_stage.body.contains("role=\"alert\""));
    let note = browser
        .post(
            &format!("/clients/{id}/notes/"),
            &[("content", "Called about the visa")],
        )
        .await;
    assert_eq!(note.status, StatusCode::SEE_OTHER);
    let notes = browser.get(&format!("/clients/{id}/?tab=notes")).await;
    assert!(notes.body.contains("Called about the visa"));
    let row: (Option<i64>, String) = {
        let mut tx = app.context(SLUG).begin().await.expect("tx");
        let row = sqlx::query_as("SELECT assigned_to_id, stage FROM clients WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .expect("client");
        tx.commit().await.expect("commit");
        row
    };
    assert_eq!(row, (Some(consultant), "CLIENT".to_owned()));
    let events: i64 = {
        let mut conn = app.tenancy.db.pool().acquire().await.expect("conn");
        sqlx::query_scalar(
            "SELECT count(*) FROM public.leopard_events
              WHERE event_type IN ('Client.assigned_to.UPDATE', 'Client.stage.UPDATE', 'Note.CREATE')",
        )
        .fetch_one(&mut *conn)
        .await
        .expect("events")
    };
    assert_eq!(events, 3, "the API's events were recorded");
    let deleted = browser.post(&format!("/clients/{id}/delete/"), &[]).await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert_eq!(
        browser.get(&format!("/clients/{id}/")).await.status,
        StatusCode::NOT_FOUND
    );
    let with_deleted = browser.get("/clients/?include_deleted=true").await;
    assert!(with_deleted
        .body
        .contains(&format!("/clients/{id}/restore/")));
    let restored = browser.post(&format!("/clients/{id}/restore/"), &[]).await;
    assert_eq!(restored.status, StatusCode::SEE_OTHER);
    assert_eq!(
        browser.get(&format!("/clients/{id}/")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_clients_list_sorts_filters_and_pages() {
    let (app, org) = setup().await;
    let token = app.token(SLUG, "admin").await;
    for name in ["Carol", "Alice", "Bob"] {
        create_client(&app, &token, name, org.a).await;
    }
    create_client(&app, &token, "Dora", org.c).await;
    let mut browser = Browser::new(&app, SLUG);
    browser.login("admin").await;
    let sorted = browser.get("/clients/?ordering=first_name").await;
    let positions: Vec<usize> = ["Alice", "Bob", "Carol"]
        .iter()
        .map(|n| sorted.body.find(&format!(">{n} Client<")).expect(n))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert!(sorted.body.contains("aria-sort=\"ascending\""));
    let branch = browser.get(&format!("/clients/?branch={}", org.c)).await;
    assert!(branch.body.contains("Dora") && !branch.body.contains("Alice"));
    let paged = browser
        .get("/clients/?ordering=first_name&page_size=2&page=2")
        .await;
    assert!(paged.body.contains("Carol") && !paged.body.contains("Alice"));
    assert!(paged.body.contains("3–4 of 4"), "{}", paged.body);
    let bad = browser.get("/clients/?ordering=password").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let search = browser.get("/search/?q=Dor").await;
    assert_eq!(search.location(), "/clients/?search=Dor");
}

#[tokio::test]
async fn a_consultant_claims_a_branch_pool_task_and_completes_it() {
    let (app, org) = setup().await;
    let token = app.token(SLUG, "admin").await;
    let (status, _, task) = app
        .call(
            Method::POST,
            SLUG,
            "/api/v1/tasks/",
            Some(&token),
            Some(json!({"title": "Call the embassy", "detail": "Ask about the appointment", "due_date": "2030-01-01T10:00:00Z", "branch_id": org.a})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    let id = task["id"].as_i64().expect("id");
    let mut other = Browser::new(&app, SLUG);
    other.login("cons.b").await;
    let their_list = other.get("/tasks/").await;
    assert!(
        !their_list.body.contains("Call the embassy"),
        "another branch's pool"
    );
    let mut browser = Browser::new(&app, SLUG);
    browser.login("cons.a").await;
    let list = browser.get("/tasks/").await;
    assert!(list.body.contains("Call the embassy"));
    assert!(list.body.contains(&format!("/tasks/{id}/claim/")));
    let forged = other.post(&format!("/tasks/{id}/claim/"), &[]).await;
    assert!(
        forged.status == StatusCode::NOT_FOUND || forged.status == StatusCode::BAD_REQUEST,
        "{}",
        forged.status
    );
    let claimed = browser.post(&format!("/tasks/{id}/claim/"), &[]).await;
    assert_eq!(claimed.status, StatusCode::SEE_OTHER, "{}", claimed.body);
    let consultant = app
        .tenant_count(SLUG, "SELECT id FROM users WHERE username = 'cons.a'")
        .await;
    assert_eq!(
        app.tenant_count(
            SLUG,
            &format!("SELECT assigned_to_id FROM tasks WHERE id = {id}")
        )
        .await,
        consultant
    );
    let completed = browser.post(&format!("/tasks/{id}/complete/"), &[]).await;
    assert_eq!(completed.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.tenant_count(
            SLUG,
            &format!("SELECT count(*) FROM tasks WHERE id = {id} AND status = 'COMPLETED'")
        )
        .await,
        1
    );
}

#[tokio::test]
async fn notifications_show_their_unread_count_and_are_marked_read() {
    let (app, _) = setup().await;
    let user = app
        .tenant_count(SLUG, "SELECT id FROM users WHERE username = 'cons.a'")
        .await;
    let mut tx = app.context(SLUG).begin().await.expect("tx");
    for title in ["First notice", "Second notice"] {
        sqlx::query(
            "INSERT INTO notifications (notification_type, assigned_to_id, title, message)
             VALUES ('SYSTEM_ALERT', $1, $2, 'Body')",
        )
        .bind(user)
        .bind(title)
        .execute(&mut *tx)
        .await
        .expect("notification");
    }
    tx.commit().await.expect("commit");
    let mut browser = Browser::new(&app, SLUG);
    browser.login("cons.a").await;
    let page = browser.get("/notifications/").await;
    assert!(page.body.contains("First notice") && page.body.contains("Second notice"));
    assert!(
        page.body.contains("data-zero=\"false\">2<"),
        "the bell shows 2"
    );
    let menu = browser.get("/notifications/menu/").await;
    assert!(menu.body.contains("Second notice"));
    let read_all = browser
        .post("/notifications/read-all/", &[("id", "1"), ("id", "2")])
        .await;
    assert_eq!(read_all.status, StatusCode::SEE_OTHER);
    let after = browser.get("/notifications/").await;
    assert!(
        after.body.contains("data-zero=\"true\">0<"),
        "{}",
        after.body
    );
    // Another user's notifications are not theirs to read.
    let mut other = Browser::new(&app, SLUG);
    other.login("cons.b").await;
    assert!(!other
        .get("/notifications/")
        .await
        .body
        .contains("First notice"));
}

#[tokio::test]
async fn static_files_are_served_with_content_hashes_and_long_cache_headers() {
    let (app, _) = setup().await;
    let mut browser = Browser::new(&app, SLUG);
    let login = browser.get("/login/").await;
    let href = login
        .body
        .split("href=\"/static/app.")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(|rest| format!("/static/app.{rest}"))
        .expect("the stylesheet link");
    let css = browser.get(&href).await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(
        css.headers[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert!(css.headers[header::CONTENT_TYPE]
        .to_str()
        .expect("ascii")
        .starts_with("text/css"));
    assert_eq!(
        browser.get("/static/app.000000000000.css").await.status,
        StatusCode::NOT_FOUND
    );
    // Files are served on every host, the base host included.
    let mut base = Browser::new(&app, SLUG);
    base.host = "localhost".into();
    assert_eq!(base.get(&href).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_unknown_or_inactive_tenant_gets_an_html_page_in_a_browser_and_json_in_the_api() {
    let (app, _) = setup().await;
    let mut browser = Browser::new(&app, "nobody");
    let page = browser.get("/").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("No agency here"), "{}", page.body);
    assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
    let (status, _, body) = app
        .call(
            Method::GET,
            "nobody",
            "/api/public/tenant-info/",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "tenant_not_found");
    app.tenancy
        .provisioner
        .set_status(
            &leopard_core::TenantSlug::parse("globex").expect("slug"),
            leopard_tenancy::SubscriptionStatus::Suspended,
        )
        .await
        .expect("suspend");
    app.registry.reload().await.expect("reload");
    let mut suspended = Browser::new(&app, "globex");
    let page = suspended.get("/login/").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        page.body.contains("This agency is inactive"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn administration_is_offered_to_admins_only_and_creates_users_under_the_hierarchy() {
    let (app, org) = setup().await;
    app.user(SLUG, "badmin", Some(Role::BranchAdmin), &[org.a], &[])
        .await;
    let mut consultant = Browser::new(&app, SLUG);
    consultant.login("cons.a").await;
    let home = consultant.get("/").await;
    assert!(!home.body.contains("Administration"));
    assert!(!home.body.contains("/admin/users/"));
    assert_eq!(
        consultant.get("/admin/users/new/").await.status,
        StatusCode::FORBIDDEN
    );

    let mut admin = Browser::new(&app, SLUG);
    admin.login("admin").await;
    let home = admin.get("/").await;
    assert!(home.body.contains("href=\"/admin/users/\""));
    let users = admin.get("/admin/users/?search=cons").await;
    assert!(users.body.contains("cons.a") && !users.body.contains(">admin<"));
    assert!(admin
        .get("/admin/branches/")
        .await
        .body
        .contains("Branch C"));
    assert!(admin.get("/admin/regions/").await.body.contains("South"));

    let form = admin.get("/admin/users/new/").await;
    assert!(
        form.body.contains("value=\"REGION_MANAGER\""),
        "{}",
        form.body
    );
    let branch = org.a.to_string();
    let bad = admin
        .post(
            "/admin/users/new/",
            &[
                ("username", "has space"),
                ("email", "new@example.com"),
                ("first_name", "New"),
                ("last_name", "User"),
                ("password", "Another-Horse-77"),
                ("group_name", "CONSULTANT"),
                ("branch_ids", branch.as_str()),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert!(bad.body.contains("class=\"field invalid\""));
    assert!(
        !bad.body.contains("Another-Horse-77"),
        "the password is never echoed"
    );
    let created = admin
        .post(
            "/admin/users/new/",
            &[
                ("username", "new.user"),
                ("email", "new@example.com"),
                ("first_name", "New"),
                ("last_name", "User"),
                ("password", "Another-Horse-77"),
                ("group_name", "CONSULTANT"),
                ("branch_ids", branch.as_str()),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let id = app
        .tenant_count(SLUG, "SELECT id FROM users WHERE username = 'new.user'")
        .await;

    // A branch admin is offered only the roles below its own, and a forged grant is refused.
    let mut badmin = Browser::new(&app, SLUG);
    badmin.login("badmin").await;
    let form = badmin.get("/admin/users/new/").await;
    assert!(form.body.contains("value=\"CONSULTANT\""));
    assert!(!form.body.contains("value=\"REGION_MANAGER\""));
    let forged = badmin
        .post(
            "/admin/users/new/",
            &[
                ("username", "sneaky"),
                ("email", "sneaky@example.com"),
                ("first_name", "S"),
                ("last_name", "N"),
                ("password", "Another-Horse-77"),
                ("group_name", "REGION_MANAGER"),
                ("branch_ids", branch.as_str()),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    assert_eq!(
        app.tenant_count(SLUG, "SELECT count(*) FROM users WHERE username = 'sneaky'")
            .await,
        0
    );

    let deactivated = admin
        .post(&format!("/admin/users/{id}/deactivate/"), &[])
        .await;
    assert_eq!(deactivated.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.tenant_count(
            SLUG,
            &format!("SELECT count(*) FROM users WHERE id = {id} AND NOT is_active")
        )
        .await,
        1
    );
}

#[tokio::test]
async fn the_assignee_choices_of_the_client_and_visa_forms_offer_every_assignable_user_not_a_first_page(
) {
    let (app, org) = setup().await;
    // More assignable users than one default API page (25).
    let mut tx = app.context(SLUG).begin().await.expect("tx");
    let ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO users (password, username, first_name, last_name)
         SELECT '!', 'bulk' || g, 'Bulk', 'User ' || lpad(g::text, 2, '0')
           FROM generate_series(1, 30) AS g RETURNING id",
    )
    .fetch_all(&mut *tx)
    .await
    .expect("users");
    for id in &ids {
        sqlx::query("INSERT INTO user_branches (user_id, branch_id) VALUES ($1, $2)")
            .bind(id)
            .bind(org.a)
            .execute(&mut *tx)
            .await
            .expect("membership");
    }
    tx.commit().await.expect("commit");
    let mut browser = Browser::signed_in(&app, SLUG, "admin").await;
    for path in ["/clients/new/", "/visa-applications/new/"] {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        for n in 1..=30 {
            let name = format!("Bulk User {n:02}");
            assert!(page.body.contains(&name), "{path} does not offer {name}");
        }
    }
}

#[tokio::test]
async fn the_clients_filter_options_are_cached_per_user_until_a_principal_notice() {
    let cache = std::sync::Arc::new(leopard_http::PrincipalCache::default());
    let kept = std::sync::Arc::clone(&cache);
    let app = TestApp::with_config(&[SLUG], move |config| config.principals = kept).await;
    let org = app.seed_org(SLUG).await;
    app.user(SLUG, "admin", Some(Role::SuperAdmin), &[], &[])
        .await;
    let mut browser = Browser::new(&app, SLUG);
    browser.login("admin").await;
    let rename = |name: &'static str| {
        let app = &app;
        async move {
            let mut tx = app.context(SLUG).begin().await.expect("tx");
            sqlx::query("UPDATE branches SET name = $1 WHERE id = $2")
                .bind(name)
                .bind(org.a)
                .execute(&mut *tx)
                .await
                .expect("rename");
            tx.commit().await.expect("commit");
        }
    };
    // Not live (no listener): every page reads the lists.
    rename("Branch Alpha").await;
    assert!(browser.get("/clients/").await.body.contains("Branch Alpha"));
    cache.set_live(true);
    assert!(browser.get("/clients/").await.body.contains("Branch Alpha"));
    // A rename sends the tenant's notice (tenant migration 16)...
    let mut listener = sqlx::postgres::PgListener::connect_with(app.tenancy.db.pool())
        .await
        .expect("listener");
    listener
        .listen(leopard_server::principals::CHANNEL)
        .await
        .expect("listen");
    rename("Branch Aleph").await;
    let notice = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("a notice within 5 s")
        .expect("notice");
    // ...until it arrives the cached list is shown; the listener's handling drops it.
    assert!(browser.get("/clients/").await.body.contains("Branch Alpha"));
    cache.invalidate_schema(notice.payload());
    let page = browser.get("/clients/").await;
    assert!(page.body.contains("Branch Aleph"), "{}", page.body);
    assert!(!page.body.contains("Branch Alpha"));
}
