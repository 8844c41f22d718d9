//! The visa and college application screens of the web interface over HTTP against a real
//! PostgreSQL database: the pages and their key content, the API's scope (a user of branch A
//! sees no application of a branch-B client and gets 404 for its URL) and permissions (no
//! button without the permission, forged posts refused with nothing changed), CSRF, escaping,
//! inline validation errors with nothing changed, the document checklist, the stage board's
//! move (the stage changes and the client's timeline shows it; a move to a stage of another
//! type is refused), and the application types' stages (add, reorder, delete by the API's
//! rules).

use crate::common;

use std::time::Duration;

use common::browser::Browser;
use common::{Org, TestApp};
use http::{header, Method, StatusCode};
use leopard_rbac::Role;
use serde_json::{json, Value};

const SLUG: &str = "acme";

// ----- a browser (the approach of tests/web.rs) ----------------------------------------------

// ----- the world -----------------------------------------------------------------------------

/// An institute's parts.
#[derive(Debug, Clone, Copy)]
struct Inst {
    id: i64,
    course: i64,
    location: i64,
    intake: i64,
}

/// An organisation with a super admin (`admin`), consultants of branches A and B (`cons.a`,
/// `cons.b`), a branch admin of A (`ba.a`); a visa type "Employer Sponsored" (checklist
/// Passport, Skills assessment); clients Ana (A) and Bo (B) with a visa application each; an
/// institute; application types "Undergraduate" (stages Applied, Offer, Enrolled) and
/// "Postgraduate" (stage Interview); a college application of Ana and one of Bo, both in
/// Applied.
struct World {
    app: TestApp,
    org: Org,
    root: String,
    visa_type: i64,
    client_a: i64,
    client_b: i64,
    visa_a: i64,
    visa_b: i64,
    inst: Inst,
    app_type: i64,
    stages: Vec<i64>,
    other_type: i64,
    other_stage: i64,
    college_a: i64,
    college_b: i64,
}

async fn one(conn: &mut sqlx::PgConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(conn)
        .await
        .expect("seed row")
}

async fn seed_institute(app: &TestApp) -> Inst {
    let mut tx = app.context(SLUG).begin().await.expect("tx");
    let id = one(
        &mut tx,
        "INSERT INTO institutes (name, short_name) VALUES ('Harbour College', 'HC') RETURNING id",
    )
    .await;
    let level = one(
        &mut tx,
        "INSERT INTO course_levels (name) VALUES ('Bachelor') RETURNING id",
    )
    .await;
    let broad = one(
        &mut tx,
        "INSERT INTO broad_fields (name) VALUES ('Engineering') RETURNING id",
    )
    .await;
    let narrow = one(
        &mut tx,
        &format!(
            "INSERT INTO narrow_fields (name, broad_field_id) VALUES ('Civil', {broad}) RETURNING id"
        ),
    )
    .await;
    let course = one(
        &mut tx,
        &format!(
            "INSERT INTO courses (institute_id, name, level_id, broad_field_id, narrow_field_id,
                                  total_tuition_fee, coe_fee)
             VALUES ({id}, 'Civil Engineering', {level}, {broad}, {narrow}, 30000, 250)
             RETURNING id"
        ),
    )
    .await;
    let location = one(
        &mut tx,
        &format!(
            "INSERT INTO institute_locations (institute_id, state, country)
             VALUES ({id}, 'NSW', 'AU') RETURNING id"
        ),
    )
    .await;
    let intake = one(
        &mut tx,
        &format!(
            "INSERT INTO institute_intakes (institute_id, intake_date)
             VALUES ({id}, '2030-02-01') RETURNING id"
        ),
    )
    .await;
    tx.commit().await.expect("commit");
    Inst {
        id,
        course,
        location,
        intake,
    }
}

async fn api_post(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let (status, _, out) = app
        .call(Method::POST, SLUG, path, Some(token), Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{path}: {out}");
    out
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().expect("id")
}

async fn build(app: TestApp) -> World {
    let org = app.seed_org(SLUG).await;
    app.user(SLUG, "admin", Some(Role::SuperAdmin), &[], &[])
        .await;
    app.user(SLUG, "cons.a", Some(Role::Consultant), &[org.a], &[])
        .await;
    app.user(SLUG, "cons.b", Some(Role::Consultant), &[org.b], &[])
        .await;
    app.user(SLUG, "ba.a", Some(Role::BranchAdmin), &[org.a], &[])
        .await;
    let root = app.token(SLUG, "admin").await;
    let visa_type = id(&api_post(
        &app,
        &root,
        "/api/v1/visa-types/",
        json!({"visa_category_id": 1, "name": "Employer Sponsored", "code": "482",
                "checklist": ["Passport", "Skills assessment"]}),
    )
    .await);
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
    let mut visas = Vec::new();
    for client in &clients {
        visas.push(id(&api_post(
            &app,
            &root,
            "/api/v1/visa-applications/",
            json!({"client_id": client, "visa_type_id": visa_type,
                    "immigration_fee": "1200", "service_fee": "300"}),
        )
        .await));
    }
    let inst = seed_institute(&app).await;
    let app_type = id(&api_post(
        &app,
        &root,
        "/api/v1/application-types/",
        json!({"title": "Undergraduate", "currency": "AUD"}),
    )
    .await);
    let mut stages = Vec::new();
    for name in ["Applied", "Offer", "Enrolled"] {
        stages.push(id(&api_post(
            &app,
            &root,
            "/api/v1/stages/",
            json!({"application_type_id": app_type, "stage_name": name}),
        )
        .await));
    }
    let other_type = id(&api_post(
        &app,
        &root,
        "/api/v1/application-types/",
        json!({"title": "Postgraduate"}),
    )
    .await);
    let other_stage = id(&api_post(
        &app,
        &root,
        "/api/v1/stages/",
        json!({"application_type_id": other_type, "stage_name": "Interview"}),
    )
    .await);
    let mut colleges = Vec::new();
    for client in &clients {
        colleges.push(id(&api_post(
            &app,
            &root,
            "/api/v1/college-applications/",
            json!({"application_type_id": app_type, "client_id": client,
                    "institute_id": inst.id, "course_id": inst.course,
                    "location_id": inst.location, "start_date_id": inst.intake,
                    "total_tuition_fee": "32000"}),
        )
        .await));
    }
    World {
        app,
        org,
        root,
        visa_type,
        client_a: clients[0],
        client_b: clients[1],
        visa_a: visas[0],
        visa_b: visas[1],
        inst,
        app_type,
        stages,
        other_type,
        other_stage,
        college_a: colleges[0],
        college_b: colleges[1],
    }
}

async fn world() -> World {
    build(TestApp::new(&[SLUG]).await).await
}

impl World {
    async fn count(&self, sql: &str) -> i64 {
        self.app.tenant_count(SLUG, sql).await
    }

    async fn stage_of(&self, college: i64) -> i64 {
        self.count(&format!(
            "SELECT stage_id FROM college_applications WHERE id = {college}"
        ))
        .await
    }

    async fn visa_status(&self, visa: i64) -> String {
        let mut tx = self.app.context(SLUG).begin().await.expect("tx");
        let status: String =
            sqlx::query_scalar("SELECT status FROM visa_applications WHERE id = $1")
                .bind(visa)
                .fetch_one(&mut *tx)
                .await
                .expect("status");
        tx.commit().await.expect("commit");
        status
    }

    async fn stage_names(&self, of_type: i64) -> Vec<String> {
        let mut tx = self.app.context(SLUG).begin().await.expect("tx");
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT stage_name FROM stages WHERE application_type_id = $1 ORDER BY position",
        )
        .bind(of_type)
        .fetch_all(&mut *tx)
        .await
        .expect("stages");
        tx.commit().await.expect("commit");
        names
    }

    async fn documents(&self, visa: i64) -> Value {
        let mut tx = self.app.context(SLUG).begin().await.expect("tx");
        let docs: Value =
            sqlx::query_scalar("SELECT required_documents FROM visa_applications WHERE id = $1")
                .bind(visa)
                .fetch_one(&mut *tx)
                .await
                .expect("documents");
        tx.commit().await.expect("commit");
        docs
    }
}

/// The position of `needle` in `body` (panics when absent).
fn at(body: &str, needle: &str) -> usize {
    body.find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in the page"))
}

// ----- visa applications ---------------------------------------------------------------------

#[tokio::test]
async fn the_visa_list_filters_by_status_sorts_and_pages_with_the_api() {
    let w = world().await;
    let mut admin = Browser::signed_in(&w.app, SLUG, "admin").await;
    let page = admin.get("/visa-applications/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Ana Client") && page.body.contains("Bo Client"));
    assert!(page.body.contains("Employer Sponsored"));
    assert!(page.body.contains("0 / 2"), "the checklist summary");
    assert!(page.body.contains("New visa application"));
    assert!(
        page.body.contains("href=\"/visa-applications/\""),
        "NAV entry"
    );

    // Status filter: Bo's becomes GRANTED through the API.
    let (status, _, _) = w
        .app
        .call(
            Method::PATCH,
            SLUG,
            &format!("/api/v1/visa-applications/{}/", w.visa_b),
            Some(&w.root),
            Some(json!({"status": "GRANTED"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let page = admin.get("/visa-applications/?status=GRANTED").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Bo Client") && !page.body.contains("Ana Client"));
    let page = admin.get("/visa-applications/?status=TO_BE_APPLIED").await;
    assert!(page.body.contains("Ana Client") && !page.body.contains("Bo Client"));

    // Sorting by client name both ways.
    let page = admin.get("/visa-applications/?ordering=client_name").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(at(&page.body, "Ana Client") < at(&page.body, "Bo Client"));
    assert!(page.body.contains("aria-sort=\"ascending\""));
    let page = admin.get("/visa-applications/?ordering=-client_name").await;
    assert!(at(&page.body, "Bo Client") < at(&page.body, "Ana Client"));
    // An unknown ordering is the API's 400, never a 500.
    let page = admin.get("/visa-applications/?ordering=secret").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);

    // Pages of one row.
    let page = admin
        .get("/visa-applications/?ordering=client_name&page_size=1")
        .await;
    assert!(page.body.contains("1–1 of 2"));
    assert!(page.body.contains("Ana Client") && !page.body.contains("Bo Client"));
    assert!(page.body.contains("rel=\"next\""));
    let page = admin
        .get("/visa-applications/?ordering=client_name&page_size=1&page=2")
        .await;
    assert!(page.body.contains("Bo Client") && !page.body.contains("Ana Client"));
}

#[tokio::test]
async fn the_visa_application_page_shows_the_checklist_and_ticking_saves_it() {
    let w = world().await;
    let mut cons = Browser::signed_in(&w.app, SLUG, "cons.a").await;
    let path = format!("/visa-applications/{}/", w.visa_a);
    let page = cons.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Passport") && page.body.contains("Skills assessment"));
    assert!(page.body.contains("0 / 2"));
    assert!(
        page.body.contains("Save checklist"),
        "a consultant may change"
    );
    assert!(page.body.contains("1200.00 USD"));

    // Tick the passport and add a document.
    let page = cons
        .post(
            &format!("{path}documents/"),
            &[("received", "0"), ("add", "Police check")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        w.documents(w.visa_a).await,
        json!([{"name": "Passport", "received": true},
               {"name": "Skills assessment", "received": false},
               {"name": "Police check", "received": false}])
    );
    let page = cons.get(&path).await;
    assert!(page.body.contains("1 / 3") && page.body.contains("Police check"));

    // Untick everything.
    let page = cons.post(&format!("{path}documents/"), &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let docs = w.documents(w.visa_a).await;
    assert!(docs
        .as_array()
        .expect("list")
        .iter()
        .all(|d| d["received"] == false));
}

#[tokio::test]
async fn creating_and_editing_a_visa_application_goes_through_the_api() {
    let w = world().await;
    let mut cons = Browser::signed_in(&w.app, SLUG, "cons.a").await;
    let form = cons.get("/visa-applications/new/").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("Ana Client"));
    assert!(
        !form.body.contains("Bo Client"),
        "the client choice is the API's scoped list"
    );
    let visa_type = w.visa_type.to_string();
    let client = w.client_a.to_string();
    let page = cons
        .post(
            "/visa-applications/new/",
            &[
                ("client_id", &client),
                ("visa_type_id", &visa_type),
                ("status", "VISA_APPLIED"),
                ("immigration_fee", "950.50"),
                ("immigration_fee_currency", "AUD"),
                ("service_fee", "100"),
                ("service_fee_currency", "AUD"),
                ("date_applied", "2030-01-15"),
                ("dependent", "true"),
                ("notes", "First try"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let new_id: i64 = page
        .location()
        .trim_start_matches("/visa-applications/")
        .trim_end_matches('/')
        .parse()
        .expect("redirect to the new application");
    assert_eq!(w.visa_status(new_id).await, "VISA_APPLIED");
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM visa_applications WHERE id = {new_id} AND dependent
                AND immigration_fee = 950.50 AND immigration_fee_currency = 'AUD'
                AND date_applied = '2030-01-15' AND client_id = {client}"
        ))
        .await,
        1
    );
    // The checklist was copied from the type.
    assert_eq!(
        w.documents(new_id).await,
        json!([{"name": "Passport", "received": false},
               {"name": "Skills assessment", "received": false}])
    );

    // Edit: the form is filled with the stored values, the change is saved.
    let edit = format!("/visa-applications/{new_id}/edit/");
    let form = cons.get(&edit).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("value=\"950.50\""));
    assert!(form.body.contains("First try"));
    let page = cons
        .post(
            &edit,
            &[
                ("visa_type_id", &visa_type),
                ("status", "GRANTED"),
                ("immigration_fee", "950.50"),
                ("immigration_fee_currency", "AUD"),
                ("service_fee", "100"),
                ("service_fee_currency", "AUD"),
                ("date_applied", "2030-01-15"),
                ("date_granted", "2030-03-01"),
                ("notes", ""),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(w.visa_status(new_id).await, "GRANTED");
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM visa_applications WHERE id = {new_id} AND NOT dependent
                AND notes IS NULL AND date_granted = '2030-03-01'"
        ))
        .await,
        1,
        "an unticked box and an emptied field are saved"
    );
}

#[tokio::test]
async fn bad_visa_input_is_shown_inline_with_the_values_kept_and_nothing_saved() {
    let w = world().await;
    let mut cons = Browser::signed_in(&w.app, SLUG, "cons.a").await;
    cons.get("/visa-applications/new/").await;
    let before = w.count("SELECT count(*) FROM visa_applications").await;
    let client = w.client_a.to_string();
    let page = cons
        .post(
            "/visa-applications/new/",
            &[
                ("client_id", &client),
                ("immigration_fee", "twelve"),
                ("service_fee", "100"),
                ("date_applied", "15/01/2030"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("class=\"field invalid\""));
    assert!(page.body.contains("value=\"twelve\""), "the value is kept");
    assert!(page.body.contains("This field is required."), "visa type");
    assert!(page
        .body
        .contains("A valid number with at most 2 decimal places is required."));
    assert_eq!(
        w.count("SELECT count(*) FROM visa_applications").await,
        before
    );

    // On edit too: a bad currency and a bad date, nothing changed.
    let edit = format!("/visa-applications/{}/edit/", w.visa_a);
    cons.get(&edit).await;
    let page = cons
        .post(
            &edit,
            &[
                ("status", "GRANTED"),
                ("immigration_fee", "1200"),
                ("immigration_fee_currency", "DOLLARS"),
                ("service_fee", "300"),
                ("date_granted", "yesterday"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("value=\"DOLLARS\""));
    assert!(
        page.body.contains("Ana Client"),
        "the client is still named"
    );
    assert_eq!(w.visa_status(w.visa_a).await, "TO_BE_APPLIED");

    // A document name too long for the checklist: inline on the application page.
    let long = "x".repeat(201);
    let page = cons
        .post(
            &format!("/visa-applications/{}/documents/", w.visa_a),
            &[("add", &long)],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("1 to 200 characters"));
    assert_eq!(
        w.documents(w.visa_a).await.as_array().map(Vec::len),
        Some(2)
    );
}

#[tokio::test]
async fn a_consultant_of_branch_a_sees_no_branch_b_visa_application_and_gets_404_for_it() {
    let w = world().await;
    let mut cons = Browser::signed_in(&w.app, SLUG, "cons.a").await;
    let page = cons.get("/visa-applications/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Ana Client"));
    assert!(!page.body.contains("Bo Client"));
    for path in [
        format!("/visa-applications/{}/", w.visa_b),
        format!("/visa-applications/{}/edit/", w.visa_b),
    ] {
        let page = cons.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!page.body.contains("Bo Client"));
    }
    // Forged writes on B's application are the API's 404, nothing changed.
    let page = cons
        .post(
            &format!("/visa-applications/{}/documents/", w.visa_b),
            &[("received", "0"), ("received", "1")],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let page = cons
        .post(
            &format!("/visa-applications/{}/edit/", w.visa_b),
            &[("status", "GRANTED")],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(w.visa_status(w.visa_b).await, "TO_BE_APPLIED");
    assert!(w
        .documents(w.visa_b)
        .await
        .as_array()
        .expect("list")
        .iter()
        .all(|d| d["received"] == false));
    // Creating one for B's client is refused too.
    let before = w.count("SELECT count(*) FROM visa_applications").await;
    let (client, visa_type) = (w.client_b.to_string(), w.visa_type.to_string());
    let page = cons
        .post(
            "/visa-applications/new/",
            &[
                ("client_id", &client),
                ("visa_type_id", &visa_type),
                ("immigration_fee", "1"),
                ("service_fee", "1"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(
        w.count("SELECT count(*) FROM visa_applications").await,
        before
    );
    // The consultant of B sees B's.
    let mut cons_b = Browser::signed_in(&w.app, SLUG, "cons.b").await;
    let page = cons_b
        .get(&format!("/visa-applications/{}/", w.visa_b))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Bo Client"));
}

#[tokio::test]
async fn without_a_permission_there_is_no_button_and_a_forged_visa_post_changes_nothing() {
    let w = world().await;
    let mut cons = Browser::signed_in(&w.app, SLUG, "cons.a").await;
    // A consultant may not delete applications nor add visa types.
    let page = cons.get(&format!("/visa-applications/{}/", w.visa_a)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("/delete/"));
    let page = cons
        .post(&format!("/visa-applications/{}/delete/", w.visa_a), &[])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM visa_applications WHERE id = {}",
            w.visa_a
        ))
        .await,
        1
    );
    let page = cons.get("/visa-types/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Employer Sponsored"));
    assert!(!page.body.contains("New visa type"));
    let page = cons
        .post(
            "/visa-types/",
            &[("visa_category_id", "1"), ("name", "Forged")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(
        w.count("SELECT count(*) FROM visa_types WHERE name = 'Forged'")
            .await,
        0
    );

    // The admin has the buttons, and the delete works.
    let mut admin = Browser::signed_in(&w.app, SLUG, "admin").await;
    let page = admin.get("/visa-types/").await;
    assert!(page.body.contains("New visa type"));
    let page = admin
        .get(&format!("/visa-applications/{}/", w.visa_a))
        .await;
    assert!(page.body.contains(&format!(
        "action=\"/visa-applications/{}/delete/\"",
        w.visa_a
    )));
    let page = admin
        .post(&format!("/visa-applications/{}/delete/", w.visa_a), &[])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM visa_applications WHERE id = {}",
            w.visa_a
        ))
        .await,
        0
    );
}

#[tokio::test]
async fn visa_types_are_listed_and_created_with_inline_errors_and_categories_are_listed() {
    let w = world().await;
    let mut admin = Browser::signed_in(&w.app, SLUG, "admin").await;
    let page = admin.get("/visa-categories/").await;
    assert_eq!(page.status, StatusCode::OK);
    let categories = w.count("SELECT count(*) FROM visa_categories").await;
    assert!(categories > 0);
    assert_eq!(
        page.body.matches("<tr><td>").count(),
        usize::try_from(categories).expect("count"),
        "one row per seeded category"
    );

    admin.get("/visa-types/").await;
    let page = admin
        .post(
            "/visa-types/",
            &[("visa_category_id", "1"), ("name", ""), ("code", "999")],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("class=\"field invalid\""));
    assert!(page.body.contains("value=\"999\""));
    assert_eq!(
        w.count("SELECT count(*) FROM visa_types WHERE code = '999'")
            .await,
        0
    );
    let page = admin
        .post(
            "/visa-types/",
            &[
                ("visa_category_id", "1"),
                ("name", "Graduate <Temporary>"),
                ("code", "485"),
                ("checklist", "Passport\r\n\r\nDegree certificate\r\n"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(
        w.count(
            "SELECT count(*) FROM visa_types WHERE code = '485'
                AND checklist = '[\"Passport\", \"Degree certificate\"]'::jsonb"
        )
        .await,
        1
    );
    let page = admin.get("/visa-types/?search=485").await;
    assert!(page.body.contains("Graduate &lt;Temporary&gt;"));
    assert!(page.body.contains("Passport, Degree certificate"));
    assert!(!page.body.contains("Employer Sponsored"));
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_are_refused_and_change_nothing() {
    let w = world().await;
    let mut admin = Browser::signed_in(&w.app, SLUG, "admin").await;
    let before = w.count("SELECT count(*) FROM visa_applications").await;
    let (client, visa_type) = (w.client_a.to_string(), w.visa_type.to_string());
    let stage = w.stages[1].to_string();
    let fields = [
        ("client_id", client.as_str()),
        ("visa_type_id", visa_type.as_str()),
        ("immigration_fee", "1"),
        ("service_fee", "1"),
    ];
    let page = admin.post_raw("/visa-applications/new/", &fields).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let mut forged = vec![("csrf", "0123abcd")];
    forged.extend_from_slice(&fields);
    let page = admin.post_raw("/visa-applications/new/", &forged).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(
        w.count("SELECT count(*) FROM visa_applications").await,
        before
    );
    let page = admin
        .post_raw(
            &format!("/visa-applications/{}/documents/", w.visa_a),
            &[("received", "0")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(w.documents(w.visa_a).await[0]["received"], false);
    for csrf in ["", "wrong"] {
        let page = admin
            .post_raw(
                &format!("/college-applications/{}/stage/", w.college_a),
                &[("csrf", csrf), ("stage_id", &stage), ("board", "1")],
            )
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(w.stage_of(w.college_a).await, w.stages[0]);
    let page = admin
        .post_raw(
            &format!("/application-types/{}/stages/", w.app_type),
            &[("stage_name", "Forged")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(
        w.count("SELECT count(*) FROM stages WHERE stage_name = 'Forged'")
            .await,
        0
    );
}

#[tokio::test]
async fn user_strings_are_escaped_in_the_application_pages() {
    let w = world().await;
    let evil = "<script>alert(1)</script>";
    let client = id(&api_post(
        &w.app,
        &w.root,
        "/api/v1/clients/",
        json!({"first_name": evil, "last_name": "X", "gender": "MALE", "country": "AU",
                "branch_id": w.org.a}),
    )
    .await);
    let visa = id(&api_post(
        &w.app,
        &w.root,
        "/api/v1/visa-applications/",
        json!({"client_id": client, "visa_type_id": w.visa_type, "immigration_fee": "1",
                "service_fee": "1", "notes": evil,
                "required_documents": [evil]}),
    )
    .await);
    let college = id(&api_post(
        &w.app,
        &w.root,
        "/api/v1/college-applications/",
        json!({"application_type_id": w.app_type, "client_id": client,
                "institute_id": w.inst.id, "course_id": w.inst.course,
                "location_id": w.inst.location, "start_date_id": w.inst.intake,
                "total_tuition_fee": "1", "notes": evil}),
    )
    .await);
    let mut admin = Browser::signed_in(&w.app, SLUG, "admin").await;
    for path in [
        "/visa-applications/".to_owned(),
        format!("/visa-applications/{visa}/"),
        "/college-applications/".to_owned(),
        format!("/college-applications/{college}/"),
        format!("/college-applications/board/?type={}", w.app_type),
    ] {
        let page = admin.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(!page.body.contains(evil), "{path} echoes the script");
        assert!(
            page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path} shows the text"
        );
    }
}

// ----- college applications ------------------------------------------------------------------

#[tokio::test]
async fn the_college_list_and_application_page_show_the_api_rows_with_filters_and_sorting() {
    let w = world().await;
    let mut admin = Browser::signed_in(&w.app, SLUG, "admin").await;
    let page = admin.get("/college-applications/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Ana Client") && page.body.contains("Bo Client"));
    assert!(page.body.contains("Harbour College") && page.body.contains("Civil Engineering"));
    assert!(page.body.contains("1. Applied"));
    assert!(page.body.contains("href=\"/college-applications/board/\""));
    let page = admin
        .get("/college-applications/?ordering=-client_name")
        .await;
    assert!(at(&page.body, "Bo Client") < at(&page.body, "Ana Client"));
    let page = admin
        .get(&format!(
            "/college-applications/?application_type_id={}",
            w.other_type
        ))
        .await;
    assert!(!page.body.contains("Ana Client"));
    assert!(page.body.contains("No college applications match."));
    let page = admin
        .get(&format!(
            "/college-applications/?application_type_id={}&client_name=ana",
            w.app_type
        ))
        .await;
    assert!(page.body.contains("Ana Client") && !page.body.contains("Bo Client"));
    assert!(page.body.contains("2. Offer"), "the type's stages filter");

    let page = admin
        .get(&format!("/college-applications/{}/", w.college_a))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Undergraduate") && page.body.contains("NSW"));
    assert!(page.body.contains("Move to stage"));
    // The page's own move form.
    let stage = w.stages[2].to_string();
    let page = admin
        .post(
            &format!("/college-applications/{}/stage/", w.college_a),
            &[("stage_id", &stage)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.location(),
        format!("/college-applications/{}/", w.college_a)
    );
    assert_eq!(w.stage_of(w.college_a).await, w.stages[2]);
}

#[tokio::test]
async fn the_stage_board_moves_a_card_and_the_client_timeline_shows_the_move() {
    let (app, bus) = TestApp::with_bus(&[SLUG]).await;
    let w = build(app).await;
    let mut admin = Browser::signed_in(&w.app, SLUG, "admin").await;
    let page = admin
        .get(&format!("/college-applications/board/?type={}", w.app_type))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    // The columns are the type's stages in order; the cards sit in their stage.
    let columns: Vec<usize> = w
        .stages
        .iter()
        .map(|s| at(&page.body, &format!("data-stage=\"{s}\"")))
        .collect();
    assert!(columns.windows(2).all(|p| p[0] < p[1]), "stages in order");
    let card = at(&page.body, &format!("data-card=\"{}\"", w.college_a));
    assert!(card > columns[0] && card < columns[1]);
    assert!(page.body.contains("data-board"));
    assert!(page.body.contains("draggable=\"true\""));
    assert!(!page.body.contains(
        "data-stage=\"{}\""
            .replace("{}", &w.other_stage.to_string())
            .as_str()
    ));

    // The script's drop: form-encoded, with the CSRF token, `board=1`.
    let stage = w.stages[1].to_string();
    let page = admin
        .post(
            &format!("/college-applications/{}/stage/", w.college_a),
            &[("stage_id", &stage), ("board", "1")],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let answer: Value = serde_json::from_str(&page.body).expect("JSON");
    assert_eq!(answer["stage"], w.stages[1]);
    assert_eq!(answer["stage_name"], "Offer");
    assert_eq!(w.stage_of(w.college_a).await, w.stages[1]);

    // The move is in the client's timeline (written by the event's handler).
    let timeline = format!("/clients/{}/?tab=timeline", w.client_a);
    let mut shown = false;
    for _ in 0..100 {
        let page = admin.get(&timeline).await;
        if page
            .body
            .contains("College Application moved from Applied to Offer")
        {
            shown = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(shown, "the timeline shows the move");

    // Without the script: the card's form, back to the board.
    admin
        .get(&format!("/college-applications/board/?type={}", w.app_type))
        .await;
    let stage = w.stages[2].to_string();
    let page = admin
        .post(
            &format!("/college-applications/{}/stage/", w.college_a),
            &[("stage_id", &stage), ("_return", "board")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.location(),
        format!("/college-applications/board/?type={}", w.app_type)
    );
    assert_eq!(w.stage_of(w.college_a).await, w.stages[2]);
    bus.shutdown().await;
}

#[tokio::test]
async fn a_move_to_a_stage_of_another_type_is_refused_and_changes_nothing() {
    let w = world().await;
    let mut admin = Browser::signed_in(&w.app, SLUG, "admin").await;
    admin.get("/college-applications/board/").await;
    let path = format!("/college-applications/{}/stage/", w.college_a);
    let other = w.other_stage.to_string();
    let page = admin
        .post(&path, &[("stage_id", &other), ("board", "1")])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/plain")));
    assert!(!page.body.is_empty(), "the refusal says why");
    assert_eq!(w.stage_of(w.college_a).await, w.stages[0]);
    // From the form: the application page with the message, 400.
    let page = admin.post(&path, &[("stage_id", &other)]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("role=\"alert\"") || page.body.contains("class=\"error\""));
    // Garbage and a missing stage are 400s too, never 500.
    for value in ["abc", "", "-3"] {
        let page = admin.post(&path, &[("stage_id", value)]).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "stage_id={value:?}");
    }
    assert_eq!(w.stage_of(w.college_a).await, w.stages[0]);
    // An unknown type on the board is a 404 page.
    let page = admin.get("/college-applications/board/?type=999999").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_branch_a_admin_sees_no_branch_b_college_application_and_gets_404_for_it() {
    let w = world().await;
    let mut ba = Browser::signed_in(&w.app, SLUG, "ba.a").await;
    for path in [
        "/college-applications/".to_owned(),
        format!("/college-applications/board/?type={}", w.app_type),
    ] {
        let page = ba.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(page.body.contains("Ana Client"), "{path}");
        assert!(!page.body.contains("Bo Client"), "{path}");
    }
    let page = ba
        .get(&format!("/college-applications/{}/", w.college_b))
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let stage = w.stages[1].to_string();
    let page = ba
        .post(
            &format!("/college-applications/{}/stage/", w.college_b),
            &[("stage_id", &stage), ("board", "1")],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(w.stage_of(w.college_b).await, w.stages[0]);
}

#[tokio::test]
async fn a_consultant_without_college_permissions_gets_no_menu_and_no_move() {
    let w = world().await;
    let mut cons = Browser::signed_in(&w.app, SLUG, "cons.a").await;
    let home = cons.get("/").await;
    assert!(home.body.contains("href=\"/visa-applications/\""));
    assert!(!home.body.contains("href=\"/college-applications/\""));
    assert!(!home.body.contains("href=\"/application-types/\""));
    for path in [
        "/college-applications/".to_owned(),
        "/college-applications/board/".to_owned(),
        format!("/college-applications/{}/", w.college_a),
        "/application-types/".to_owned(),
    ] {
        let page = cons.get(&path).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
    }
    let stage = w.stages[1].to_string();
    let page = cons
        .post(
            &format!("/college-applications/{}/stage/", w.college_a),
            &[("stage_id", &stage), ("board", "1")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(w.stage_of(w.college_a).await, w.stages[0]);
    for (path, fields) in [
        (
            format!("/application-types/{}/stages/", w.app_type),
            vec![("stage_name", "Forged")],
        ),
        (
            format!(
                "/application-types/{}/stages/{}/delete/",
                w.app_type, w.stages[2]
            ),
            vec![],
        ),
        ("/application-types/".to_owned(), vec![("title", "Forged")]),
    ] {
        let page = cons.post(&path, &fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM stages WHERE application_type_id = {}",
            w.app_type
        ))
        .await,
        3
    );
    assert_eq!(
        w.count("SELECT count(*) FROM application_types WHERE title = 'Forged'")
            .await,
        0
    );
}

#[tokio::test]
async fn application_types_and_stages_are_added_reordered_and_deleted_by_the_api_rules() {
    let w = world().await;
    let mut admin = Browser::signed_in(&w.app, SLUG, "admin").await;
    let page = admin.get("/application-types/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Undergraduate") && page.body.contains("Postgraduate"));
    assert!(page.body.contains("New application type"));

    // A type: bad input inline, then created.
    let page = admin
        .post(
            "/application-types/",
            &[("title", ""), ("tax_percentage", "150")],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("value=\"150\""));
    let before = w.count("SELECT count(*) FROM application_types").await;
    let page = admin
        .post(
            "/application-types/",
            &[("title", "Diploma"), ("currency", "AUD")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(
        w.count("SELECT count(*) FROM application_types").await,
        before + 1
    );

    // Stages of Undergraduate: the page lists them in order.
    let type_page = format!("/application-types/{}/", w.app_type);
    let page = admin.get(&type_page).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(at(&page.body, "Applied") < at(&page.body, "Offer"));
    assert!(at(&page.body, "Offer") < at(&page.body, "Enrolled"));

    // Add one at position 2; an empty name is an inline error.
    let add = format!("/application-types/{}/stages/", w.app_type);
    let page = admin.post(&add, &[("stage_name", "")]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let page = admin
        .post(&add, &[("stage_name", "Interview"), ("position", "2")])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(
        w.stage_names(w.app_type).await,
        ["Applied", "Interview", "Offer", "Enrolled"]
    );

    // Move Enrolled up: the API's reorder.
    let page = admin
        .post(
            &format!(
                "/application-types/{}/stages/{}/move/",
                w.app_type, w.stages[2]
            ),
            &[("direction", "up")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        w.stage_names(w.app_type).await,
        ["Applied", "Interview", "Enrolled", "Offer"]
    );

    // A stage of another type under this type's URL is not found, nothing deleted.
    let page = admin
        .post(
            &format!(
                "/application-types/{}/stages/{}/delete/",
                w.app_type, w.other_stage
            ),
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(w.stage_names(w.other_type).await, ["Interview"]);

    // Applied holds live applications: its delete is refused inline, nothing changed.
    let page = admin
        .post(
            &format!(
                "/application-types/{}/stages/{}/delete/",
                w.app_type, w.stages[0]
            ),
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("role=\"alert\""));
    assert_eq!(w.stage_names(w.app_type).await.len(), 4);
    // Offer holds none: deleted, the gap closed.
    let page = admin
        .post(
            &format!(
                "/application-types/{}/stages/{}/delete/",
                w.app_type, w.stages[1]
            ),
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        w.stage_names(w.app_type).await,
        ["Applied", "Interview", "Enrolled"]
    );
    assert_eq!(
        w.count(&format!(
            "SELECT max(position)::bigint FROM stages WHERE application_type_id = {}",
            w.app_type
        ))
        .await,
        3
    );

    // A type with live applications cannot be deleted; an unused one can.
    let page = admin
        .post(&format!("/application-types/{}/delete/", w.app_type), &[])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM application_types WHERE id = {} AND deleted_at IS NULL",
            w.app_type
        ))
        .await,
        1
    );
    let page = admin
        .post(&format!("/application-types/{}/delete/", w.other_type), &[])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM application_types WHERE id = {} AND deleted_at IS NOT NULL",
            w.other_type
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn moving_a_stage_up_uses_its_place_in_the_order_even_when_positions_have_a_gap() {
    let w = world().await;
    // Positions 1, 2, 5 (as the demo's Diploma type has them).
    let mut tx = w.app.context(SLUG).begin().await.expect("tx");
    sqlx::query("UPDATE stages SET position = 5 WHERE id = $1")
        .bind(w.stages[2])
        .execute(&mut *tx)
        .await
        .expect("gap");
    tx.commit().await.expect("commit");
    let mut admin = Browser::signed_in(&w.app, SLUG, "admin").await;
    admin
        .get(&format!("/application-types/{}/", w.app_type))
        .await;
    let page = admin
        .post(
            &format!(
                "/application-types/{}/stages/{}/move/",
                w.app_type, w.stages[2]
            ),
            &[("direction", "up")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(
        w.stage_names(w.app_type).await,
        ["Applied", "Enrolled", "Offer"]
    );
    // An unknown direction is an inline 400, nothing changed.
    let page = admin
        .post(
            &format!(
                "/application-types/{}/stages/{}/move/",
                w.app_type, w.stages[2]
            ),
            &[("direction", "sideways")],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        w.stage_names(w.app_type).await,
        ["Applied", "Enrolled", "Offer"]
    );
}
