//! The demo CRM data of `leopard demo`, seen through the API by the demo users: clients across
//! branches and stages, profile records, notes, tasks (own and branch pools, overdue and due
//! soon), reminders and calendar events, each visible to exactly the users whose scope covers it.

use crate::common;

use common::TestApp;
use leopard_server::seed;
use serde_json::Value;

const SLUG: &str = "acme";

async fn demo() -> TestApp {
    let app = TestApp::new(&[SLUG]).await;
    let mut tx = app.context(SLUG).begin().await.expect("tx");
    assert!(seed::seed_demo_org(&mut tx, 100).await.expect("org"));
    seed::seed_demo_crm(&mut tx).await.expect("crm");
    tx.commit().await.expect("commit");
    app
}

/// Logs a demo user in (they share the demo password).
async fn token(app: &TestApp, username: &str) -> String {
    let (status, _, body) = app
        .call(
            http::Method::POST,
            SLUG,
            "/api/token/",
            None,
            Some(serde_json::json!({"username": username, "password": seed::DEMO_PASSWORD})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["access"].as_str().expect("access").to_owned()
}

async fn get(app: &TestApp, token: &str, path: &str) -> Value {
    let (status, _, body) = app.get(SLUG, path, token).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

fn count(page: &Value) -> u64 {
    page["count"].as_u64().expect("count")
}

#[tokio::test]
async fn the_demo_tenant_has_clients_in_every_stage_and_both_branches_scoped_per_role() {
    let app = demo().await;
    let admin = token(&app, "admin").await;
    let manager = token(&app, "region.manager").await;
    let consultant = token(&app, "consultant").await;
    let clients = get(&app, &admin, "/api/v1/clients/?page_size=100").await;
    assert_eq!(count(&clients), 14);
    let branches: std::collections::BTreeSet<&str> = clients["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|c| c["branch_name"].as_str())
        .collect();
    assert_eq!(branches.len(), 2, "{branches:?}");
    let stages = get(&app, &admin, "/api/v1/clients/stage-counts/").await;
    for stage in ["LEAD", "FOLLOW_UP", "CLIENT", "CLOSE"] {
        assert!(
            stages[stage].as_i64().unwrap_or(0) >= 2,
            "{stage}: {stages}"
        );
    }
    assert_eq!(stages["TOTAL"], 14);
    assert_eq!(
        count(&get(&app, &manager, "/api/v1/clients/").await),
        14,
        "the region manager runs both branches"
    );
    assert_eq!(
        count(&get(&app, &consultant, "/api/v1/clients/").await),
        8,
        "the consultant sees Head Office only"
    );
}

#[tokio::test]
async fn the_demo_consultant_has_work_today_and_a_timeline_to_read() {
    let app = demo().await;
    let consultant = token(&app, "consultant").await;
    let overdue = get(&app, &consultant, "/api/v1/tasks/overdue/").await;
    assert_eq!(overdue.as_array().map_or(0, Vec::len), 2, "{overdue}");
    let soon = get(&app, &consultant, "/api/v1/tasks/due_soon/").await;
    assert!(soon.as_array().map_or(0, Vec::len) >= 2, "{soon}");
    let mine = get(&app, &consultant, "/api/v1/tasks/?assigned_to_me=true").await;
    let pools = mine["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|t| t["assigned_to_branch"] == true)
        .count();
    assert_eq!(pools, 1, "Head Office's pool task: {mine}");
    let upcoming = get(&app, &consultant, "/api/v1/events/upcoming/").await;
    assert_eq!(
        count(&upcoming),
        2,
        "the consultant's own meetings: {upcoming}"
    );
    assert!(count(&get(&app, &consultant, "/api/v1/reminders/").await) >= 4);
    assert!(count(&get(&app, &consultant, "/api/v1/notes/").await) >= 5);
    let clients = get(&app, &consultant, "/api/v1/clients/?search=Patel").await;
    let priya = clients["results"][0]["id"].as_i64().expect("Priya Patel");
    let timeline = get(
        &app,
        &consultant,
        &format!("/api/v1/clients/{priya}/timeline/"),
    )
    .await;
    let types: Vec<&str> = timeline["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|a| a["activity_type"].as_str())
        .collect();
    for expected in ["CLIENT_CREATED", "ASSIGNED", "NOTE_ADDED", "TASK_CREATED"] {
        assert!(types.contains(&expected), "{expected}: {types:?}");
    }
    let passport = get(&app, &consultant, &format!("/api/v1/passports/{priya}/")).await;
    assert_eq!(passport["passport_country"], "IN");
    let results = get(
        &app,
        &consultant,
        &format!("/api/v1/language-proficiencies/?client_id={priya}"),
    )
    .await;
    assert_eq!(results["results"][0]["overall_score"], "7.0");
    assert!(count(&get(&app, &consultant, "/api/v1/language-exams/").await) >= 3);
    for section in ["qualifications", "employments"] {
        let rows = get(
            &app,
            &consultant,
            &format!("/api/v1/{section}/?client_id={priya}"),
        )
        .await;
        assert_eq!(count(&rows), 1, "{section}");
    }
}

#[tokio::test]
async fn the_demo_branch_admin_sees_the_team_meeting_and_the_city_pool_stays_out_of_reach() {
    let app = demo().await;
    let branch_admin = token(&app, "branch.admin").await;
    let events = get(&app, &branch_admin, "/api/v1/events/?page_size=100").await;
    let titles: Vec<&str> = events["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|e| e["title"].as_str())
        .collect();
    assert!(titles.contains(&"Weekly team meeting"), "{titles:?}");
    assert!(
        titles.iter().any(|t| t.starts_with("Counselling")),
        "team visibility covers the consultant's meetings: {titles:?}"
    );
    assert!(!titles.contains(&"Regional pipeline review"), "{titles:?}");
    let tasks = get(&app, &branch_admin, "/api/v1/tasks/?page_size=100").await;
    assert!(
        tasks["results"]
            .as_array()
            .expect("results")
            .iter()
            .all(|t| t["branch_name"] != "City Branch"),
        "{tasks}"
    );
}

#[tokio::test]
async fn the_demo_dashboards_show_visa_and_college_applications_across_statuses_and_stages() {
    let app = demo().await;
    let admin = token(&app, "admin").await;
    let branch_admin = token(&app, "branch.admin").await;

    let visa = get(
        &app,
        &admin,
        "/api/v1/visa-applications/dashboard-statistics/",
    )
    .await;
    assert_eq!(visa["total_applications"], 9, "{visa}");
    for status in [
        "TO_BE_APPLIED",
        "VISA_APPLIED",
        "CASE_OPENED",
        "GRANTED",
        "REJECTED",
    ] {
        assert!(
            visa["status_breakdown"][status].as_i64().unwrap_or(0) >= 1,
            "{status}: {visa}"
        );
    }
    assert!(visa["pending_assignments"].as_i64().unwrap_or(0) >= 1);

    let college = get(
        &app,
        &admin,
        "/api/v1/college-applications/dashboard-statistics/?time_filter=all",
    )
    .await;
    assert_eq!(college["total_applications"], 12, "{college}");
    // Three applications sit in their type's final stage (Enrolled).
    assert_eq!(college["final_stage_count"], 3, "{college}");
    assert_eq!(
        college["application_type_breakdown"]
            .as_array()
            .map_or(0, Vec::len),
        3
    );
    assert_eq!(
        college["institute_breakdown"]
            .as_array()
            .map_or(0, Vec::len),
        4
    );
    let counts = get(&app, &admin, "/api/v1/college-applications/stage-counts/").await;
    assert_eq!(counts["total"], 12);
    assert!(
        counts["by_stage"].as_array().map_or(0, Vec::len) >= 6,
        "{counts}"
    );

    // The branch admin of Head Office sees Head Office's applications only.
    let own = get(&app, &branch_admin, "/api/v1/college-applications/").await;
    let all = get(&app, &admin, "/api/v1/college-applications/").await;
    assert!(count(&own) > 0 && count(&own) < count(&all), "{own}");

    // The master data the forms need is there.
    for (path, at_least) in [
        ("/api/v1/agents/", 5),
        ("/api/v1/institutes/", 4),
        ("/api/v1/courses/", 7),
        ("/api/v1/institute-intakes/", 24),
        ("/api/v1/application-types/", 3),
        ("/api/v1/visa-types/", 5),
    ] {
        let page = get(&app, &admin, path).await;
        assert!(count(&page) >= at_least, "{path}: {page}");
    }
    let stages = get(&app, &admin, "/api/v1/stages/").await;
    assert_eq!(stages.as_array().map_or(0, Vec::len), 13);
}

#[tokio::test]
async fn every_demo_application_type_numbers_its_stages_one_to_n() {
    let app = demo().await;
    let gaps = app
        .tenant_count(
            "acme",
            "SELECT count(*) FROM (
               SELECT application_type_id, max(position) AS top, count(*) AS n
                 FROM stages GROUP BY application_type_id) t
              WHERE top <> n",
        )
        .await;
    assert_eq!(gaps, 0, "a type's stage positions are 1..n");
    let types = app
        .tenant_count(
            "acme",
            "SELECT count(DISTINCT application_type_id) FROM stages",
        )
        .await;
    assert!(types >= 3, "the demo has its application types");
}
