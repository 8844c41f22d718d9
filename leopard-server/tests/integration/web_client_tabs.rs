//! The client page's tabs over HTTP against a real PostgreSQL database: passport, language
//! proficiencies, qualifications, employments, notes (edit and delete by the API's rule),
//! reminders, visa and college applications — each tab's key content, the API's scope (a
//! consultant of branch A gets 404 for a branch-B client's tabs and forms), hidden buttons and
//! refused forged posts with nothing changed, CSRF, bad input shown inline with nothing
//! changed, and escaping.

use crate::common;

use common::browser::Browser;
use common::{Org, TestApp};
use http::{Method, StatusCode};
use leopard_rbac::Role;
use serde_json::{json, Value};

const SLUG: &str = "acme";
const SCRIPT: &str = "<script>alert(1)</script>";

/// An organisation with `admin` (super admin), consultants `cons.a` (branch A) and `cons.b`
/// (branch B), and `viewer` (branch A, only view permissions of clients, passports, the
/// profile sections, notes and reminders); clients Ana (A) and Bo (B); Ana's passport,
/// qualification, employment, language proficiency (exam IELTS) and a note of `admin`, all
/// carrying a `<script>` string; Bo's qualification; a reminder of Ana (its title carries one too).
struct World {
    app: TestApp,
    _org: Org,
    client_a: i64,
    client_b: i64,
    qualification_a: i64,
    qualification_b: i64,
    employment_a: i64,
    proficiency_a: i64,
    note_a: i64,
    exam: i64,
}

async fn api_post(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let (status, _, out) = app
        .call(Method::POST, SLUG, path, Some(token), Some(body))
        .await;
    assert!(status.is_success(), "{path}: {status} {out}");
    out
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().expect("id")
}

async fn grant(app: &TestApp, user: i64, codenames: &[&str]) {
    let mut tx = app.context(SLUG).begin().await.expect("tx");
    for codename in codenames {
        sqlx::query(
            "INSERT INTO user_permissions (user_id, permission_id)
             SELECT $1, id FROM permissions WHERE codename = $2",
        )
        .bind(user)
        .bind(codename)
        .execute(&mut *tx)
        .await
        .expect("grant");
    }
    tx.commit().await.expect("commit");
}

async fn world() -> World {
    let app = TestApp::new(&[SLUG]).await;
    let org = app.seed_org(SLUG).await;
    app.user(SLUG, "admin", Some(Role::SuperAdmin), &[], &[])
        .await;
    app.user(SLUG, "cons.a", Some(Role::Consultant), &[org.a], &[])
        .await;
    app.user(SLUG, "cons.b", Some(Role::Consultant), &[org.b], &[])
        .await;
    let viewer = app.user(SLUG, "viewer", None, &[org.a], &[]).await;
    grant(
        &app,
        viewer,
        &[
            "view_client",
            "view_passport",
            "view_qualification",
            "view_employment",
            "view_proficiency",
            "view_note",
            "view_reminder",
        ],
    )
    .await;
    let root = app.token(SLUG, "admin").await;
    let mut clients = Vec::new();
    for (name, branch) in [("Ana", org.a), ("Bo", org.b)] {
        clients.push(id(&api_post(
            &app,
            &root,
            "/api/v1/clients/",
            json!({"first_name": name, "last_name": "Client", "gender": "FEMALE",
                    "country": "AU", "branch_id": branch}),
        )
        .await));
    }
    let (client_a, client_b) = (clients[0], clients[1]);
    api_post(
        &app,
        &root,
        "/api/v1/passports/",
        json!({"client_id": client_a, "passport_no": "PA123456", "passport_country": "AU",
                "country_of_birth": "AU", "nationality": "AU", "place_of_issue": SCRIPT}),
    )
    .await;
    let qualification = |client: i64, course: &'static str| {
        let (app, root) = (&app, &root);
        async move {
            id(&api_post(
                app,
                root,
                "/api/v1/qualifications/",
                json!({"client_id": client, "course": course, "country": "AU",
                        "institute": SCRIPT}),
            )
            .await)
        }
    };
    let qualification_a = qualification(client_a, "Bachelor of Nursing").await;
    let qualification_b = qualification(client_b, "Master of Bo").await;
    let employment_a = id(&api_post(
        &app,
        &root,
        "/api/v1/employments/",
        json!({"client_id": client_a, "employer_name": "Ana Hospital", "position": format!("Nurse {SCRIPT}"),
                "start_date": "2020-01-01", "end_date": "2022-12-31", "country": "AU"}),
    )
    .await);
    let exam = id(&api_post(
        &app,
        &root,
        "/api/v1/language-exams/",
        json!({"name": format!("IELTS {SCRIPT}"), "validity_term": 2}),
    )
    .await);
    let proficiency_a = id(&api_post(
        &app,
        &root,
        "/api/v1/language-proficiencies/",
        json!({"client_id": client_a, "test_name_id": exam, "overall_score": "7.5",
                "test_date": "2024-03-01"}),
    )
    .await);
    let note_a = id(&api_post(
        &app,
        &root,
        "/api/v1/notes/",
        json!({"client": client_a, "content": format!("Admin says {SCRIPT}")}),
    )
    .await);
    api_post(
        &app,
        &root,
        "/api/v1/reminders/",
        json!({"title": format!("Call Ana about the visa {SCRIPT}"), "content_type": 10, "object_id": client_a,
                "reminder_date": "2031-05-20", "reminder_time": "09:30"}),
    )
    .await;
    World {
        app,
        _org: org,
        client_a,
        client_b,
        qualification_a,
        qualification_b,
        employment_a,
        proficiency_a,
        note_a,
        exam,
    }
}

impl World {
    async fn count(&self, sql: &str) -> i64 {
        self.app.tenant_count(SLUG, sql).await
    }

    /// Asserts that `sql` (a `count(*)`) answers `expected` in the tenant.
    async fn expect_rows(&self, sql: &str, expected: i64) {
        assert_eq!(self.count(sql).await, expected, "{sql}");
    }

    async fn browser(&self, username: &str) -> Browser<'_> {
        Browser::signed_in(&self.app, SLUG, username).await
    }

    async fn tab(&self, browser: &mut Browser<'_>, client: i64, tab: &str) -> String {
        let page = browser.get(&format!("/clients/{client}/?tab={tab}")).await;
        assert_eq!(page.status, StatusCode::OK, "{tab}: {}", page.body);
        page.body
    }
}

#[tokio::test]
async fn every_tab_renders_its_rows_and_escapes_user_strings() {
    let w = world().await;
    let mut admin = w.browser("admin").await;
    let a = w.client_a;
    let passport = w.tab(&mut admin, a, "passport").await;
    assert!(passport.contains("PA123456"), "{passport}");
    assert!(passport.contains("Save passport"));
    let qualifications = w.tab(&mut admin, a, "qualifications").await;
    assert!(qualifications.contains("Bachelor of Nursing"));
    assert!(!qualifications.contains("Master of Bo"));
    let employments = w.tab(&mut admin, a, "employments").await;
    assert!(employments.contains("Ana Hospital") && employments.contains("2022-12-31"));
    let languages = w.tab(&mut admin, a, "proficiencies").await;
    assert!(languages.contains("IELTS") && languages.contains("7.5"));
    let notes = w.tab(&mut admin, a, "notes").await;
    assert!(notes.contains(&format!("/clients/{a}/notes/{}/delete/", w.note_a)));
    let reminders = w.tab(&mut admin, a, "reminders").await;
    assert!(reminders.contains("Call Ana about the visa"));
    assert!(reminders.contains(&format!("/reminders/new/?client={a}")));
    assert!(reminders.contains(&format!("/tasks/new/?client={a}")));
    let visa = w.tab(&mut admin, a, "visa").await;
    assert!(visa.contains("No visa applications."));
    let college = w.tab(&mut admin, a, "college").await;
    assert!(college.contains("No college applications."));
    for body in [
        &passport,
        &qualifications,
        &employments,
        &languages,
        &notes,
        &reminders,
    ] {
        assert!(!body.contains(SCRIPT));
        assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }
}

#[tokio::test]
async fn a_consultant_of_branch_a_gets_404_for_every_tab_and_form_of_a_branch_b_client() {
    let w = world().await;
    let mut cons = w.browser("cons.a").await;
    let b = w.client_b;
    for tab in [
        "passport",
        "proficiencies",
        "qualifications",
        "employments",
        "notes",
        "reminders",
        "visa",
        "college",
    ] {
        let page = cons.get(&format!("/clients/{b}/?tab={tab}")).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{tab}");
        assert!(!page.body.contains("Master of Bo"));
    }
    // cons.a's session token for the forms.
    w.tab(&mut cons, w.client_a, "overview").await;
    let posts = [
        (
            format!("/clients/{b}/passport/"),
            vec![("passport_no", "X1"), ("passport_country", "AU")],
        ),
        (
            format!("/clients/{b}/qualifications/new/"),
            vec![("course", "Sneaky"), ("country", "AU")],
        ),
        (
            format!("/clients/{b}/qualifications/{}/delete/", w.qualification_b),
            vec![],
        ),
        (
            format!("/clients/{b}/qualifications/{}/edit/", w.qualification_b),
            vec![("course", "Sneaky"), ("country", "AU")],
        ),
        // Ana's URL with Bo's row: still refused.
        (
            format!(
                "/clients/{}/qualifications/{}/delete/",
                w.client_a, w.qualification_b
            ),
            vec![],
        ),
    ];
    for (path, fields) in &posts {
        let page = cons.post(path, fields).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
    }
    w.expect_rows(
        &format!("SELECT count(*) FROM passports WHERE client_id = {b}"),
        0,
    )
    .await;
    w.expect_rows(
        &format!(
            "SELECT count(*) FROM qualifications WHERE client_id = {b} AND course = 'Master of Bo'"
        ),
        1,
    )
    .await;
    w.expect_rows(
        "SELECT count(*) FROM qualifications WHERE course = 'Sneaky'",
        0,
    )
    .await;
}

#[tokio::test]
async fn a_viewer_sees_no_edit_button_and_forged_posts_change_nothing() {
    let w = world().await;
    let mut viewer = w.browser("viewer").await;
    let a = w.client_a;
    let passport = w.tab(&mut viewer, a, "passport").await;
    assert!(passport.contains("PA123456"));
    assert!(!passport.contains("Save passport"));
    for tab in ["qualifications", "employments", "proficiencies"] {
        let body = w.tab(&mut viewer, a, tab).await;
        assert!(!body.contains("/delete/"), "{tab}");
        assert!(!body.contains("&amp;edit="), "{tab}");
        assert!(!body.contains("Save"), "{tab}");
    }
    let notes = w.tab(&mut viewer, a, "notes").await;
    assert!(notes.contains("Admin says"));
    assert!(!notes.contains(&format!("/notes/{}/delete/", w.note_a)));
    let forged = [
        (
            format!("/clients/{a}/passport/"),
            vec![
                ("passport_no", "FORGED"),
                ("passport_country", "AU"),
                ("country_of_birth", "AU"),
                ("nationality", "AU"),
            ],
        ),
        (
            format!("/clients/{a}/qualifications/new/"),
            vec![("course", "Forged"), ("country", "AU")],
        ),
        (
            format!("/clients/{a}/qualifications/{}/edit/", w.qualification_a),
            vec![("course", "Forged"), ("country", "AU")],
        ),
        (
            format!("/clients/{a}/employments/{}/delete/", w.employment_a),
            vec![],
        ),
        (
            format!("/clients/{a}/proficiencies/{}/delete/", w.proficiency_a),
            vec![],
        ),
        (
            format!("/clients/{a}/notes/{}/edit/", w.note_a),
            vec![("content", "Forged")],
        ),
        (format!("/clients/{a}/notes/{}/delete/", w.note_a), vec![]),
    ];
    for (path, fields) in &forged {
        let page = viewer.post(path, fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}: {}", page.body);
    }
    w.expect_rows(
        "SELECT count(*) FROM passports WHERE passport_no = 'PA123456'",
        1,
    )
    .await;
    w.expect_rows(
        "SELECT count(*) FROM qualifications WHERE course = 'Forged'",
        0,
    )
    .await;
    w.expect_rows(
        &format!(
            "SELECT count(*) FROM employments WHERE id = {}",
            w.employment_a
        ),
        1,
    )
    .await;
    w.expect_rows(
        &format!(
            "SELECT count(*) FROM proficiencies WHERE id = {}",
            w.proficiency_a
        ),
        1,
    )
    .await;
    w.expect_rows(
        &format!(
            "SELECT count(*) FROM notes WHERE id = {} AND content LIKE 'Admin says%'",
            w.note_a
        ),
        1,
    )
    .await;
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused_and_change_nothing() {
    let w = world().await;
    let mut admin = w.browser("admin").await;
    let a = w.client_a;
    let posts = [
        (
            format!("/clients/{a}/passport/"),
            vec![
                ("passport_no", "NOCSRF"),
                ("passport_country", "AU"),
                ("country_of_birth", "AU"),
                ("nationality", "AU"),
            ],
        ),
        (
            format!("/clients/{a}/qualifications/new/"),
            vec![("course", "NOCSRF"), ("country", "AU")],
        ),
        (
            format!("/clients/{a}/employments/{}/delete/", w.employment_a),
            vec![],
        ),
        (
            format!("/clients/{a}/notes/{}/edit/", w.note_a),
            vec![("content", "NOCSRF")],
        ),
        (format!("/clients/{a}/notes/{}/delete/", w.note_a), vec![]),
    ];
    for (path, fields) in &posts {
        let page = admin.post_raw(path, fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        let mut wrong = vec![("csrf", "0000")];
        wrong.extend(fields.iter().copied());
        let page = admin.post_raw(path, &wrong).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
    }
    w.expect_rows(
        "SELECT count(*) FROM passports WHERE passport_no = 'NOCSRF'",
        0,
    )
    .await;
    w.expect_rows(
        "SELECT count(*) FROM qualifications WHERE course = 'NOCSRF'",
        0,
    )
    .await;
    w.expect_rows(
        &format!(
            "SELECT count(*) FROM employments WHERE id = {}",
            w.employment_a
        ),
        1,
    )
    .await;
    w.expect_rows("SELECT count(*) FROM notes WHERE content = 'NOCSRF'", 0)
        .await;
    w.expect_rows(
        &format!("SELECT count(*) FROM notes WHERE id = {}", w.note_a),
        1,
    )
    .await;
}

#[tokio::test]
async fn bad_input_re_renders_the_tab_with_inline_errors_and_changes_nothing() {
    let w = world().await;
    let mut admin = w.browser("admin").await;
    let a = w.client_a;
    w.tab(&mut admin, a, "passport").await;
    let page = admin
        .post(
            &format!("/clients/{a}/passport/"),
            &[
                ("passport_no", "PB999"),
                ("passport_country", "ZZ"),
                ("country_of_birth", "AU"),
                ("nationality", "AU"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("class=\"error\""), "{}", page.body);
    assert!(page.body.contains("value=\"PB999\""));
    let page = admin
        .post(
            &format!("/clients/{a}/qualifications/new/"),
            &[
                ("course", SCRIPT),
                ("country", "AU"),
                ("enroll_date", "soon"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("class=\"error\""));
    assert!(!page.body.contains(SCRIPT));
    let page = admin
        .post(
            &format!("/clients/{a}/employments/{}/edit/", w.employment_a),
            &[
                ("employer_name", "Ana Hospital"),
                ("position", "Nurse"),
                ("start_date", "2022-01-01"),
                ("end_date", "2020-01-01"),
                ("country", "AU"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("Edit employment"));
    let page = admin
        .post(
            &format!("/clients/{a}/notes/{}/edit/", w.note_a),
            &[("content", "   ")],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("Save note"));
    w.expect_rows(
        "SELECT count(*) FROM passports WHERE passport_no = 'PB999'",
        0,
    )
    .await;
    w.expect_rows(
        &format!("SELECT count(*) FROM qualifications WHERE client_id = {a}"),
        1,
    )
    .await;
    w.expect_rows(
        &format!(
            "SELECT count(*) FROM employments WHERE id = {} AND start_date = '2020-01-01'",
            w.employment_a
        ),
        1,
    )
    .await;
    w.expect_rows(
        &format!(
            "SELECT count(*) FROM notes WHERE id = {} AND content LIKE 'Admin says%'",
            w.note_a
        ),
        1,
    )
    .await;
}

#[tokio::test]
async fn an_admin_creates_edits_and_deletes_profile_rows_through_the_tabs() {
    let w = world().await;
    let mut admin = w.browser("admin").await;
    let b = w.client_b;
    w.tab(&mut admin, b, "passport").await;
    let page = admin
        .post(
            &format!("/clients/{b}/passport/"),
            &[
                ("passport_no", "PBO1"),
                ("passport_country", "NZ"),
                ("country_of_birth", "NZ"),
                ("nationality", "NZ"),
                ("date_of_issue", "2020-01-01"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), format!("/clients/{b}/?tab=passport"));
    assert!(w.tab(&mut admin, b, "passport").await.contains("PBO1"));
    let page = admin
        .post(
            &format!("/clients/{b}/passport/"),
            &[
                ("passport_no", "PBO2"),
                ("passport_country", "NZ"),
                ("country_of_birth", "NZ"),
                ("nationality", "NZ"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    w.expect_rows(
        &format!("SELECT count(*) FROM passports WHERE client_id = {b} AND passport_no = 'PBO2'"),
        1,
    )
    .await;
    let exam = w.exam.to_string();
    let page = admin
        .post(
            &format!("/clients/{b}/proficiencies/new/"),
            &[
                ("test_name_id", exam.as_str()),
                ("overall_score", "6.5"),
                ("test_date", "2024-05-01"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = admin
        .post(
            &format!("/clients/{b}/employments/new/"),
            &[
                ("employer_name", "Bo Works"),
                ("position", "Chef"),
                ("start_date", "2019-01-01"),
                ("end_date", "2021-01-01"),
                ("country", "NZ"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let edit_form = admin
        .get(&format!(
            "/clients/{b}/?tab=qualifications&edit={}",
            w.qualification_b
        ))
        .await;
    assert!(edit_form.body.contains("value=\"Master of Bo\""));
    let page = admin
        .post(
            &format!("/clients/{b}/qualifications/{}/edit/", w.qualification_b),
            &[("course", "Master of Cooking"), ("country", "NZ")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = admin
        .post(
            &format!(
                "/clients/{}/proficiencies/{}/delete/",
                w.client_a, w.proficiency_a
            ),
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    w.expect_rows(
        &format!(
            "SELECT count(*) FROM proficiencies WHERE client_id = {b} AND overall_score = 6.5"
        ),
        1,
    )
    .await;
    w.expect_rows(
        &format!(
            "SELECT count(*) FROM employments WHERE client_id = {b} AND employer_name = 'Bo Works'"
        ),
        1,
    )
    .await;
    w.expect_rows(
        "SELECT count(*) FROM qualifications WHERE course = 'Master of Cooking'",
        1,
    )
    .await;
    w.expect_rows(
        &format!(
            "SELECT count(*) FROM proficiencies WHERE id = {}",
            w.proficiency_a
        ),
        0,
    )
    .await;
}

#[tokio::test]
async fn a_note_author_edits_and_deletes_their_note_but_not_another_users() {
    let w = world().await;
    let mut cons = w.browser("cons.a").await;
    let a = w.client_a;
    w.tab(&mut cons, a, "notes").await;
    let page = cons
        .post(
            &format!("/clients/{a}/notes/"),
            &[("content", "Mine first")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let mine = w
        .count("SELECT id FROM notes WHERE content = 'Mine first'")
        .await;
    let notes = w.tab(&mut cons, a, "notes").await;
    assert!(notes.contains(&format!("/notes/{mine}/delete/")));
    let page = cons
        .post(
            &format!("/clients/{a}/notes/{mine}/edit/"),
            &[("content", "Mine edited")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    w.expect_rows(
        &format!("SELECT count(*) FROM notes WHERE id = {mine} AND content = 'Mine edited'"),
        1,
    )
    .await;
    let page = cons
        .post(&format!("/clients/{a}/notes/{mine}/delete/"), &[])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    w.expect_rows(&format!("SELECT count(*) FROM notes WHERE id = {mine}"), 0)
        .await;
    // The admin's note: consultants hold `change_note` but not `delete_note`, so no delete
    // button, and a forged delete is the API's 403.
    let notes = w.tab(&mut cons, a, "notes").await;
    assert!(notes.contains(&format!("?tab=notes&amp;edit={}", w.note_a)));
    assert!(!notes.contains(&format!("/notes/{}/delete/", w.note_a)));
    let page = cons
        .post(&format!("/clients/{a}/notes/{}/delete/", w.note_a), &[])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    // A note of Ana's under Bo's URL is not Bo's: 404 for the admin too.
    let mut admin = w.browser("admin").await;
    w.tab(&mut admin, a, "notes").await;
    let page = admin
        .post(
            &format!("/clients/{}/notes/{}/delete/", w.client_b, w.note_a),
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    w.expect_rows(
        &format!("SELECT count(*) FROM notes WHERE id = {}", w.note_a),
        1,
    )
    .await;
}

const PNG: &[u8] = include_bytes!("fixtures/pixel.png");

#[tokio::test]
async fn the_overview_uploads_shows_and_removes_a_profile_picture_by_the_apis_rules() {
    let w = world().await;
    let a = w.client_a;
    let pictures = format!("SELECT count(*) FROM profile_pictures WHERE client_id = {a}");
    let mut admin = w.browser("admin").await;
    let overview = w.tab(&mut admin, a, "overview").await;
    assert!(overview.contains("enctype=\"multipart/form-data\""));
    assert!(overview.contains("No picture."));
    // No token, or a wrong one, in the query: 403 before the body is read, nothing stored.
    for path in [
        format!("/clients/{a}/picture/"),
        format!("/clients/{a}/picture/?csrf=00ff"),
    ] {
        let page = admin
            .post_multipart(&path, "file", "me.png", "image/png", PNG)
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
    }
    w.expect_rows(&pictures, 0).await;
    let upload = format!("/clients/{a}/picture/?csrf={}", admin.csrf);
    // A text file named .png: the API's 400, shown on the overview's file field.
    let page = admin
        .post_multipart(&upload, "file", "me.png", "image/png", b"not an image")
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("class=\"error\""), "{}", page.body);
    w.expect_rows(&pictures, 0).await;
    // Over 5 MiB: the API's size limit, shown on the file field too.
    let mut big = PNG.to_vec();
    big.resize(5 * 1024 * 1024 + 1, 0);
    let page = admin
        .post_multipart(&upload, "file", "big.png", "image/png", &big)
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("class=\"error\""), "{}", page.body);
    w.expect_rows(&pictures, 0).await;
    let page = admin
        .post_multipart(&upload, "file", "me.png", "image/png", PNG)
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    w.expect_rows(&pictures, 1).await;
    let overview = w.tab(&mut admin, a, "overview").await;
    assert!(overview.contains(&format!("src=\"/clients/{a}/picture/?v=")));
    assert!(overview.contains("Remove picture"));
    let file = admin.get(&format!("/clients/{a}/picture/")).await;
    assert_eq!(file.status, StatusCode::SEE_OTHER);
    assert!(file.location().contains("sig="), "{}", file.location());
    // A consultant of branch B: 404 for the picture and the upload, nothing changed.
    let mut cons_b = w.browser("cons.b").await;
    assert_eq!(
        cons_b.get(&format!("/clients/{a}/picture/")).await.status,
        StatusCode::NOT_FOUND
    );
    let page = cons_b
        .post_multipart(
            &format!("/clients/{a}/picture/?csrf={}", cons_b.csrf),
            "file",
            "me.png",
            "image/png",
            PNG,
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let page = cons_b
        .post(&format!("/clients/{a}/picture/delete/"), &[])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    // A consultant of branch A may upload but not delete: no button, a forged post is a 403.
    let mut cons_a = w.browser("cons.a").await;
    let overview = w.tab(&mut cons_a, a, "overview").await;
    assert!(overview.contains("Upload"));
    assert!(!overview.contains("Remove picture"));
    let page = cons_a
        .post(&format!("/clients/{a}/picture/delete/"), &[])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    // The viewer may not upload: no form, and a forged upload is the API's 403.
    let mut viewer = w.browser("viewer").await;
    let overview = w.tab(&mut viewer, a, "overview").await;
    assert!(!overview.contains("multipart/form-data"));
    let page = viewer
        .post_multipart(
            &format!("/clients/{a}/picture/?csrf={}", viewer.csrf),
            "file",
            "me.png",
            "image/png",
            PNG,
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    w.expect_rows(&pictures, 1).await;
    // The admin removes it.
    w.tab(&mut admin, a, "overview").await;
    let page = admin
        .post(&format!("/clients/{a}/picture/delete/"), &[])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    w.expect_rows(&pictures, 0).await;
}

/// Adds `n` notes `Bulk note #1#` … `#n#` of `admin` to `client`, older than any other note and
/// each older than the next (the API lists the newest first).
async fn bulk_notes(w: &World, client: i64, n: i64) {
    let mut tx = w.app.context(SLUG).begin().await.expect("tx");
    sqlx::query(
        "INSERT INTO notes (client_id, author_id, content, created_at)
         SELECT $1, (SELECT id FROM users WHERE username = 'admin'), 'Bulk note #' || i || '#',
                timestamptz '2020-01-01' + i * interval '1 minute'
         FROM generate_series(1, $2::bigint) AS i",
    )
    .bind(client)
    .bind(n)
    .execute(&mut *tx)
    .await
    .expect("notes");
    tx.commit().await.expect("commit");
}

fn bulk(i: i64) -> String {
    format!("Bulk note #{i}#")
}

#[tokio::test]
async fn a_client_with_more_notes_than_one_page_shows_a_pager_and_page_two_shows_only_the_rest() {
    let w = world().await;
    let a = w.client_a;
    // 104 bulk notes and admin's own note: 105, one page of 100 and one of 5.
    bulk_notes(&w, a, 104).await;
    let mut admin = w.browser("admin").await;
    let first = w.tab(&mut admin, a, "notes").await;
    assert!(first.contains("class=\"pager\""), "{first}");
    assert!(first.contains("1–100 of 105"), "{first}");
    assert!(first.contains("href=\"?tab=notes&amp;page=2\" rel=\"next\""));
    assert!(!first.contains("rel=\"prev\""));
    assert!(first.contains("Admin says"));
    let page = admin.get(&format!("/clients/{a}/?tab=notes&page=2")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let second = page.body;
    assert!(second.contains("101–105 of 105"), "{second}");
    assert!(second.contains("href=\"?tab=notes&amp;page=1\" rel=\"prev\""));
    assert!(!second.contains("rel=\"next\""));
    assert!(!second.contains("Admin says"));
    for i in 1..=104 {
        let on_second = i <= 5;
        assert_eq!(second.contains(&bulk(i)), on_second, "page 2, note {i}");
        assert_eq!(first.contains(&bulk(i)), !on_second, "page 1, note {i}");
    }
    // Editing a row of page 2 stays on page 2.
    assert!(
        second.contains("?tab=notes&amp;page=2&amp;edit="),
        "{second}"
    );
}

#[tokio::test]
async fn a_chosen_page_size_pages_every_list_tab_and_is_kept_by_the_pagers_links() {
    let w = world().await;
    let a = w.client_a;
    bulk_notes(&w, a, 29).await;
    let mut admin = w.browser("admin").await;
    let page = admin
        .get(&format!("/clients/{a}/?tab=notes&page_size=25&page=2"))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("26–30 of 30"), "{}", page.body);
    assert!(page.body.contains("<option value=\"25\" selected>"));
    assert!(page
        .body
        .contains("href=\"?tab=notes&amp;page_size=25&amp;page=1\" rel=\"prev\""));
    assert!(page.body.contains("name=\"tab\" value=\"notes\""));
    // A section tab: three qualifications, two a page.
    let root = w.app.token(SLUG, "admin").await;
    for course in ["Second course", "Third course"] {
        api_post(
            &w.app,
            &root,
            "/api/v1/qualifications/",
            json!({"client_id": a, "course": course, "country": "AU"}),
        )
        .await;
    }
    let first = w.tab(&mut admin, a, "qualifications&page_size=2").await;
    assert!(
        first.contains("1–2 of 3") && first.contains("rel=\"next\""),
        "{first}"
    );
    let second = w
        .tab(&mut admin, a, "qualifications&page_size=2&page=2")
        .await;
    assert!(second.contains("3–3 of 3"), "{second}");
    let courses = ["Bachelor of Nursing", "Second course", "Third course"];
    let on = |body: &str| courses.iter().filter(|c| body.contains(**c)).count();
    assert_eq!((on(&first), on(&second)), (2, 1));
    // A single page shows no pager unless a size was chosen.
    let employments = w.tab(&mut admin, a, "employments").await;
    assert!(!employments.contains("class=\"pager\""));
    // The reminders tab is capped where the API caps reminder pages.
    let reminders = w.tab(&mut admin, a, "reminders&page_size=500").await;
    assert!(reminders.contains("1–1 of 1"), "{reminders}");
    assert!(!reminders.contains("<option value=\"100\""));
    for tab in ["timeline", "tasks", "visa", "college"] {
        let body = w.tab(&mut admin, a, &format!("{tab}&page_size=10")).await;
        assert!(body.contains("class=\"pager\""), "{tab}: {body}");
    }
}

#[tokio::test]
async fn a_malformed_or_past_the_end_page_is_the_apis_4xx_as_an_error_page() {
    let w = world().await;
    let a = w.client_a;
    let mut admin = w.browser("admin").await;
    for tab in [
        "notes",
        "proficiencies",
        "qualifications",
        "employments",
        "timeline",
        "tasks",
        "reminders",
        "visa",
        "college",
    ] {
        for (query, status) in [
            ("page=abc", StatusCode::BAD_REQUEST),
            ("page=0", StatusCode::BAD_REQUEST),
            ("page=-1", StatusCode::BAD_REQUEST),
            ("page=99999999999999999999", StatusCode::BAD_REQUEST),
            ("page_size=x", StatusCode::BAD_REQUEST),
            ("page=99", StatusCode::NOT_FOUND),
        ] {
            let page = admin.get(&format!("/clients/{a}/?tab={tab}&{query}")).await;
            assert_eq!(page.status, status, "{tab}&{query}: {}", page.body);
            assert!(page.body.contains("class=\"shell\""), "{tab}&{query}");
            if status == StatusCode::NOT_FOUND {
                assert!(page.body.contains("Invalid page."), "{tab}&{query}");
            }
        }
    }
}
