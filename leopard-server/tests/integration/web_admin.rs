//! The web interface's master data, group and platform pages over HTTP against a real
//! PostgreSQL database: each page's content, inline validation errors with nothing written,
//! permissions (no button, and a forged post refused with nothing changed), CSRF, escaping,
//! and the platform pages answering only on the base host with their own sessions.

use crate::common;

use common::browser::Browser;
use common::TestApp;
use http::StatusCode;
use leopard_rbac::Role;
use leopard_server::api::platform;

const SLUG: &str = "acme";

/// An app with an admin and a consultant of branch A.
async fn setup() -> TestApp {
    let app = TestApp::new(&[SLUG]).await;
    let org = app.seed_org(SLUG).await;
    app.user(SLUG, "admin", Some(Role::SuperAdmin), &[], &[])
        .await;
    app.user(SLUG, "cons.a", Some(Role::Consultant), &[org.a], &[])
        .await;
    app
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.tenant_count(SLUG, sql).await
}

#[tokio::test]
async fn an_admin_creates_an_institute_and_its_location_through_the_master_data_pages() {
    let app = setup().await;
    let mut admin = Browser::new(&app, SLUG);
    admin.login("admin").await;

    let home = admin.get("/").await;
    assert!(home.body.contains("href=\"/master/institutes/\""), "menu");
    let form = admin.get("/master/institutes/new/").await;
    assert_eq!(form.status, StatusCode::OK);
    let created = admin
        .post(
            "/master/institutes/new/",
            &[
                ("name", "University of <b>Sydney</b>"),
                ("short_name", "USYD"),
                ("phone", ""),
                ("website", "https://sydney.edu.au"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    assert_eq!(created.location(), "/master/institutes/");
    let list = admin.get("/master/institutes/?search=sydney").await;
    assert!(list
        .body
        .contains("University of &lt;b&gt;Sydney&lt;/b&gt;"));
    assert!(!list.body.contains("<b>Sydney</b>"), "escaped");
    let id = count(&app, "SELECT id FROM institutes WHERE short_name = 'USYD'").await;

    // The institute's page: its form, and an add form for each child.
    let detail = admin.get(&format!("/master/institutes/{id}/")).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.body.contains("Locations"));
    assert!(detail
        .body
        .contains(&format!("/master/institute-locations/new/?institute={id}")));
    let id_text = id.to_string();
    let location = admin
        .post(
            "/master/institute-locations/new/",
            &[
                ("institute", id_text.as_str()),
                ("state", "NSW"),
                ("suburb", "Camperdown"),
                ("country", "AU"),
            ],
        )
        .await;
    assert_eq!(location.status, StatusCode::SEE_OTHER, "{}", location.body);
    assert_eq!(location.location(), format!("/master/institutes/{id}/"));
    let detail = admin.get(&format!("/master/institutes/{id}/")).await;
    assert!(detail.body.contains("Camperdown"));

    // Edit through the row's form.
    let saved = admin
        .post(
            &format!("/master/institutes/{id}/"),
            &[
                ("name", "University of Sydney"),
                ("short_name", "USYD"),
                ("phone", "0290000000"),
                ("website", ""),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM institutes WHERE phone = '0290000000'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_master_data_form_with_bad_input_shows_the_errors_inline_and_writes_nothing() {
    let app = setup().await;
    let mut admin = Browser::new(&app, SLUG);
    admin.login("admin").await;
    let before = count(&app, "SELECT count(*) FROM institutes").await;
    let refused = admin
        .post(
            "/master/institutes/new/",
            &[("name", ""), ("short_name", "X")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.body.contains("This field is required."));
    assert!(refused.body.contains("value=\"X\""), "values kept");
    // A course needs live references: the form shows the API's messages.
    let course = admin
        .post(
            "/master/courses/new/",
            &[
                ("name", "Bachelor of Nursing"),
                ("institute", ""),
                ("level", "999999"),
                ("total_tuition_fee", "lots"),
            ],
        )
        .await;
    assert_eq!(course.status, StatusCode::BAD_REQUEST, "{}", course.body);
    assert!(course.body.contains("class=\"field invalid\""));
    assert_eq!(count(&app, "SELECT count(*) FROM institutes").await, before);
    assert_eq!(count(&app, "SELECT count(*) FROM courses").await, 0);
}

#[tokio::test]
async fn courses_are_created_from_their_references_and_listed_with_their_names() {
    let app = setup().await;
    let mut admin = Browser::new(&app, SLUG);
    admin.login("admin").await;
    for (slug, fields) in [
        (
            "institutes",
            vec![("name", "Monash University"), ("short_name", "MON")],
        ),
        ("course-levels", vec![("name", "Bachelor")]),
        ("broad-fields", vec![("name", "Health")]),
    ] {
        let page = admin.post(&format!("/master/{slug}/new/"), &fields).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{slug}: {}", page.body);
    }
    let broad = count(&app, "SELECT id FROM broad_fields").await.to_string();
    let narrow = admin
        .post(
            "/master/narrow-fields/new/",
            &[("name", "Nursing"), ("broad_field", broad.as_str())],
        )
        .await;
    assert_eq!(narrow.status, StatusCode::SEE_OTHER, "{}", narrow.body);
    let form = admin.get("/master/courses/new/").await;
    assert!(form.body.contains("Monash University"), "institute options");
    assert!(
        form.body.contains("Health / Nursing"),
        "narrow field options"
    );
    let ids = [
        count(&app, "SELECT id FROM institutes").await.to_string(),
        count(&app, "SELECT id FROM course_levels")
            .await
            .to_string(),
        count(&app, "SELECT id FROM narrow_fields")
            .await
            .to_string(),
    ];
    let created = admin
        .post(
            "/master/courses/new/",
            &[
                ("name", "Bachelor of Nursing"),
                ("institute", ids[0].as_str()),
                ("level", ids[1].as_str()),
                ("broad_field", broad.as_str()),
                ("narrow_field", ids[2].as_str()),
                ("total_tuition_fee", "38000.00"),
                ("coe_fee", "0"),
                ("description", ""),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let list = admin.get("/master/courses/").await;
    assert!(list.body.contains("Bachelor of Nursing"));
    assert!(list.body.contains("Monash University"));
    assert!(list.body.contains("38000.00"));
}

#[tokio::test]
async fn a_consultant_reads_master_data_without_write_buttons_and_a_forged_post_changes_nothing() {
    let app = setup().await;
    let mut admin = Browser::new(&app, SLUG);
    admin.login("admin").await;
    let page = admin
        .post(
            "/master/agents/new/",
            &[
                ("agent_name", "Global Partners"),
                ("agent_type", "SUB_AGENT"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let agent = count(&app, "SELECT id FROM agents").await;

    let mut consultant = Browser::new(&app, SLUG);
    consultant.login("cons.a").await;
    let list = consultant.get("/master/agents/").await;
    if list.status == StatusCode::OK {
        assert!(list.body.contains("Global Partners"));
        assert!(!list.body.contains("New agent"), "no create button");
        assert!(!list.body.contains("/delete/"), "no delete button");
    } else {
        assert_eq!(list.status, StatusCode::FORBIDDEN);
    }
    let forged = consultant
        .post(
            "/master/agents/new/",
            &[("agent_name", "Forged"), ("agent_type", "SUB_AGENT")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    let deleted = consultant
        .post(&format!("/master/agents/{agent}/delete/"), &[])
        .await;
    assert_eq!(deleted.status, StatusCode::FORBIDDEN);
    assert_eq!(
        count(&app, "SELECT count(*) FROM agents WHERE deleted_at IS NULL").await,
        1
    );
}

#[tokio::test]
async fn master_data_forms_without_the_csrf_token_are_refused_and_unknown_resources_are_404() {
    let app = setup().await;
    let mut admin = Browser::new(&app, SLUG);
    admin.login("admin").await;
    let refused = admin
        .post_raw(
            "/master/course-levels/new/",
            &[("name", "Diploma"), ("csrf", "forged")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(count(&app, "SELECT count(*) FROM course_levels").await, 0);
    assert_eq!(
        admin.get("/master/spaceships/").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin.get("/master/institutes/424242/").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_admin_creates_a_group_with_permissions_by_checkbox_and_built_in_roles_keep_theirs() {
    let app = setup().await;
    let mut admin = Browser::new(&app, SLUG);
    admin.login("admin").await;
    let list = admin.get("/admin/groups/").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("SUPER_ADMIN"));
    assert!(admin
        .get("/")
        .await
        .body
        .contains("href=\"/admin/groups/\""));

    let form = admin.get("/admin/groups/new/").await;
    assert!(form.body.contains("Can view client"));
    let view_client = count(
        &app,
        "SELECT id::bigint FROM permissions WHERE codename = 'view_client'",
    )
    .await
    .to_string();
    let created = admin
        .post(
            "/admin/groups/new/",
            &[
                ("name", "Auditors <i>"),
                ("permission_ids", view_client.as_str()),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let detail = admin.get(created.location()).await;
    assert!(detail.body.contains("Auditors &lt;i&gt;"));
    assert!(detail
        .body
        .contains(&format!("value=\"{view_client}\" checked")));
    assert!(detail.body.contains("Delete group"));

    // A built-in role group has no delete button, and a forged delete is refused.
    let role = count(
        &app,
        "SELECT id::bigint FROM groups WHERE name = 'CONSULTANT'",
    )
    .await;
    let role_page = admin.get(&format!("/admin/groups/{role}/")).await;
    assert!(!role_page.body.contains("Delete group"));
    let forged = admin
        .post(&format!("/admin/groups/{role}/delete/"), &[])
        .await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM groups WHERE name = 'CONSULTANT'"
        )
        .await,
        1
    );
    // A name taken is shown inline.
    let taken = admin
        .post("/admin/groups/new/", &[("name", "auditors <I>")])
        .await;
    assert_eq!(taken.status, StatusCode::BAD_REQUEST, "{}", taken.body);
    assert!(taken.body.contains("class=\"field invalid\""));
}

#[tokio::test]
async fn a_consultant_has_no_groups_menu_and_is_refused_the_group_pages() {
    let app = setup().await;
    let mut consultant = Browser::new(&app, SLUG);
    consultant.login("cons.a").await;
    assert!(!consultant
        .get("/")
        .await
        .body
        .contains("href=\"/admin/groups/\""));
    assert_eq!(
        consultant.get("/admin/groups/new/").await.status,
        StatusCode::FORBIDDEN
    );
    let before = count(&app, "SELECT count(*) FROM groups").await;
    let forged = consultant
        .post("/admin/groups/new/", &[("name", "Mine")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(count(&app, "SELECT count(*) FROM groups").await, before);
}

// ----- platform ---------------------------------------------------------------------------------

const ROOT_PASSWORD: &str = "Platform-Secret-99";

async fn platform_app() -> TestApp {
    let app = TestApp::new(&[SLUG]).await;
    let mut conn = app.tenancy.db.pool().acquire().await.expect("connection");
    platform::create_admin(&mut conn, "root", "root@example.com", ROOT_PASSWORD)
        .await
        .expect("platform admin");
    app
}

fn base_browser(app: &TestApp) -> Browser<'_> {
    let mut browser = Browser::new(app, SLUG);
    browser.host = "localhost:8000".into();
    browser
}

async fn platform_login(browser: &mut Browser<'_>) {
    let form = browser.get("/platform/login/").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let page = browser
        .post(
            "/platform/login/",
            &[
                ("username", "root"),
                ("password", ROOT_PASSWORD),
                ("next", "/platform/"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), "/platform/");
    // The tenants page carries the session's CSRF token for the next forms.
    assert_eq!(browser.get("/platform/").await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_base_host_leads_to_the_platform_login_and_a_platform_admin_sees_the_tenants() {
    let app = platform_app().await;
    let mut base = base_browser(&app);
    let root = base.get("/").await;
    assert_eq!(root.status, StatusCode::SEE_OTHER);
    assert_eq!(root.location(), "/platform/");
    let tenants = base.get("/platform/").await;
    assert_eq!(tenants.status, StatusCode::SEE_OTHER);
    assert!(tenants.location().starts_with("/platform/login/"));

    let form = base.get("/platform/login/").await;
    let wrong = base
        .post(
            "/platform/login/",
            &[("username", "root"), ("password", "nope")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", form.body);
    assert!(wrong.body.contains("role=\"alert\""));
    platform_login(&mut base).await;
    let cookie = base
        .cookies
        .get("leopard_platform_session")
        .expect("a platform session cookie")
        .clone();
    assert_eq!(cookie.len(), 64);
    let list = base.get("/platform/").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("href=\"/platform/tenants/acme/\""));
    assert!(list.body.contains("acme.localhost"));

    // The same pages on a tenant host are a 404, even with the cookie.
    let mut tenant = Browser::new(&app, SLUG);
    tenant
        .cookies
        .insert("leopard_platform_session".into(), cookie);
    assert_eq!(tenant.get("/platform/").await.status, StatusCode::NOT_FOUND);

    // Logout revokes the session.
    let out = base.post("/platform/logout/", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(
        base.get("/platform/").await.status,
        StatusCode::SEE_OTHER,
        "signed out"
    );
}

#[tokio::test]
async fn a_platform_admin_creates_a_tenant_with_its_first_admin_who_can_then_log_in() {
    let app = platform_app().await;
    let mut base = base_browser(&app);
    platform_login(&mut base).await;
    let bad = base
        .post(
            "/platform/tenants/new/",
            &[
                ("slug", "Not A Slug!"),
                ("name", ""),
                ("subscription_status", "TRIAL"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert!(bad.body.contains("This field is required."));
    let created = base
        .post(
            "/platform/tenants/new/",
            &[
                ("slug", "initech"),
                ("name", "Initech <Visas>"),
                ("subscription_status", "ACTIVE"),
                ("max_users", "10"),
                ("domains", "initech.example.com"),
                ("admin.username", "boss"),
                ("admin.email", "boss@initech.example.com"),
                ("admin.password", "Initech-Boss-2026"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    assert_eq!(created.location(), "/platform/tenants/initech/");
    let detail = base.get("/platform/tenants/initech/").await;
    assert!(detail.body.contains("Initech &lt;Visas&gt;"));
    assert!(detail.body.contains("initech.example.com"));

    let mut boss = Browser::new(&app, "initech");
    let login = boss.login_with("boss", "Initech-Boss-2026").await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);
    let home = boss.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("Initech &lt;Visas&gt;"));
}

#[tokio::test]
async fn suspending_a_tenant_closes_its_pages_and_activating_it_opens_them_again() {
    let app = platform_app().await;
    app.user(SLUG, "admin", Some(Role::SuperAdmin), &[], &[])
        .await;
    let mut base = base_browser(&app);
    platform_login(&mut base).await;
    let detail = base.get("/platform/tenants/acme/").await;
    assert!(detail.body.contains("Suspend"));
    let suspended = base
        .post("/platform/tenants/acme/status/", &[("action", "suspend")])
        .await;
    assert_eq!(
        suspended.status,
        StatusCode::SEE_OTHER,
        "{}",
        suspended.body
    );
    let mut user = Browser::new(&app, SLUG);
    let closed = user.get("/login/").await;
    assert_eq!(closed.status, StatusCode::FORBIDDEN);
    assert!(closed.body.contains("inactive"));

    let detail = base.get("/platform/tenants/acme/").await;
    assert!(detail.body.contains("Activate"));
    let activated = base
        .post("/platform/tenants/acme/status/", &[("action", "activate")])
        .await;
    assert_eq!(activated.status, StatusCode::SEE_OTHER);
    user.login("admin").await;
}

#[tokio::test]
async fn platform_domains_are_added_and_removed_and_a_bad_one_is_shown_inline() {
    let app = platform_app().await;
    let mut base = base_browser(&app);
    platform_login(&mut base).await;
    let added = base
        .post(
            "/platform/tenants/acme/domains/",
            &[("domain", "crm.acme.example")],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let detail = base.get("/platform/tenants/acme/").await;
    assert!(detail.body.contains("crm.acme.example"));
    let bad = base
        .post(
            "/platform/tenants/acme/domains/",
            &[("domain", "not a host!")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert!(bad.body.contains("value=\"not a host!\""));
    let removed = base
        .post(
            "/platform/tenants/acme/domains/remove/",
            &[("domain", "crm.acme.example")],
        )
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.body);
    assert!(!base
        .get("/platform/tenants/acme/")
        .await
        .body
        .contains("crm.acme.example"));
    // A form without its token changes nothing.
    let forged = base
        .post_raw(
            "/platform/tenants/acme/status/",
            &[("action", "suspend"), ("csrf", "x")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(base
        .get("/platform/tenants/acme/")
        .await
        .body
        .contains("Suspend"));
}
