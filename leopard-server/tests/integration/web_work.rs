//! The calendar, reminders and task pages of the web interface over HTTP against a real
//! PostgreSQL database: each page's status and key content (the month and week grids with their
//! links, the event page, the reminder list, a task's comments and `@mentions`), the API's scope
//! (a consultant of branch A sees no event, reminder or task of branch B and gets 404 for its
//! URLs), permissions (no button without the permission; forged posts refused with nothing
//! changed), CSRF, escaping, and bad input shown inline with nothing changed.

use crate::common;

use common::browser::Browser;
use common::{Org, TestApp};
use http::{Method, StatusCode};
use leopard_rbac::Role;
use serde_json::{json, Value};

const SLUG: &str = "acme";

/// An organisation with a super admin (`admin`), consultants of branch A (`cons.a`,
/// `cons.a2`) and B (`cons.b`), `viewer` (branch A, no role, only the view permissions of
/// events — the team's too —, reminders, tasks and clients) and `tasker` (branch A, only
/// `view_task`); clients Ana (A) and Bo (B); events "Intake Ana" (cons.a's, branch A, 14 May
/// 2031 10:00–11:00) and "Visa Bo" (cons.b's, branch B, 15 May 2031); reminders "Call Ana" and
/// "Call Bo"; tasks "Passport Ana" (cons.a's, linked to Ana) and "Passport Bo" (cons.b's,
/// linked to Bo).
struct World {
    app: TestApp,
    org: Org,
    client_a: i64,
    client_b: i64,
    event_a: i64,
    event_b: i64,
    reminder_a: i64,
    reminder_b: i64,
    task_a: i64,
    task_b: i64,
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
    let cons_a = app
        .user(SLUG, "cons.a", Some(Role::Consultant), &[org.a], &[])
        .await;
    app.user(SLUG, "cons.a2", Some(Role::Consultant), &[org.a], &[])
        .await;
    let cons_b = app
        .user(SLUG, "cons.b", Some(Role::Consultant), &[org.b], &[])
        .await;
    let viewer = app.user(SLUG, "viewer", None, &[org.a], &[]).await;
    grant(
        &app,
        viewer,
        &[
            "view_calendarevent",
            "view_team_events",
            "view_reminder",
            "view_task",
            "view_client",
        ],
    )
    .await;
    let tasker = app.user(SLUG, "tasker", None, &[org.a], &[]).await;
    grant(&app, tasker, &["view_task"]).await;
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
    let token_a = app.token(SLUG, "cons.a").await;
    let token_b = app.token(SLUG, "cons.b").await;
    let event_a = id(&api_post(
        &app,
        &token_a,
        "/api/v1/events/",
        json!({"title": "Intake Ana", "start": "2031-05-14T10:00:00Z",
                "end": "2031-05-14T11:00:00Z", "assigned_to_id": cons_a,
                "branch_id": org.a, "location": "Room 4", "hex_color": "#2e7d32"}),
    )
    .await);
    let event_b = id(&api_post(
        &app,
        &token_b,
        "/api/v1/events/",
        json!({"title": "Visa Bo", "start": "2031-05-15T10:00:00Z",
                "end": "2031-05-15T11:00:00Z", "assigned_to_id": cons_b,
                "branch_id": org.b}),
    )
    .await);
    let reminder = |token: String, client: i64, title: &'static str| {
        let app = &app;
        async move {
            id(&api_post(
                app,
                &token,
                "/api/v1/reminders/",
                json!({"title": title, "content_type": 10, "object_id": client,
                        "reminder_date": "2031-05-20", "reminder_time": "09:30",
                        "meta_info": {"note_content": "Bring the forms", "client_id": client}}),
            )
            .await)
        }
    };
    let reminder_a = reminder(token_a.clone(), client_a, "Call Ana").await;
    let reminder_b = reminder(token_b.clone(), client_b, "Call Bo").await;
    let task = |token: String, assignee: i64, client: i64, title: &'static str| {
        let app = &app;
        async move {
            id(&api_post(
                app,
                &token,
                "/api/v1/tasks/",
                json!({"title": title, "detail": "Collect the passport copy.",
                        "due_date": "2031-05-21T09:00:00Z", "priority": "HIGH",
                        "assigned_to": assignee, "linked_entity_type": "client",
                        "linked_entity_id": client}),
            )
            .await)
        }
    };
    let task_a = task(token_a, cons_a, client_a, "Passport Ana").await;
    let task_b = task(token_b, cons_b, client_b, "Passport Bo").await;
    World {
        app,
        org,
        client_a,
        client_b,
        event_a,
        event_b,
        reminder_a,
        reminder_b,
        task_a,
        task_b,
    }
}

impl World {
    async fn count(&self, sql: &str) -> i64 {
        self.app.tenant_count(SLUG, sql).await
    }

    async fn text(&self, sql: &str) -> String {
        let mut tx = self.app.context(SLUG).begin().await.expect("tx");
        let text: String = sqlx::query_scalar(sql)
            .fetch_one(&mut *tx)
            .await
            .expect("text");
        tx.commit().await.expect("commit");
        text
    }

    async fn user_id(&self, username: &str) -> i64 {
        self.count(&format!(
            "SELECT id FROM users WHERE username = '{username}'"
        ))
        .await
    }

    async fn browser(&self, username: &str) -> Browser<'_> {
        Browser::signed_in(&self.app, SLUG, username).await
    }
}

/// The position of `needle` in `body` (panics when absent).
fn at(body: &str, needle: &str) -> usize {
    body.find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in the page"))
}

/// The day cell's number link of `day` in a month grid.
fn day_cell(day: u32) -> String {
    format!("title=\"This week\">{day}</a>")
}

const MAY: &str = "/calendar/?month=2031-05";

// ----- calendar ------------------------------------------------------------------------------

#[tokio::test]
async fn the_month_view_shows_the_users_events_on_their_days_with_previous_next_and_today() {
    let w = world().await;
    let mut cons = w.browser("cons.a").await;
    let home = cons.get("/").await;
    assert!(
        home.body.contains("href=\"/calendar/\""),
        "the Calendar entry"
    );
    assert!(
        home.body.contains("href=\"/reminders/\""),
        "the Reminders entry"
    );
    let page = cons.get(MAY).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Calendar · May 2031"));
    let event = format!("href=\"/calendar/{}/\"", w.event_a);
    assert!(page.body.contains(&event));
    assert!(page.body.contains("data-color=\"#2e7d32\""));
    // On the 14th: after its number, before the 15th's.
    let place = at(&page.body, &event);
    assert!(at(&page.body, &day_cell(14)) < place && place < at(&page.body, &day_cell(15)));
    assert!(page.body.contains("<time>10:00</time>"));
    // The grid is whole weeks: Monday 28 April to Sunday 1 June.
    assert!(page
        .body
        .contains("href=\"/calendar/?view=week&amp;week=2031-04-28\""));
    assert!(page
        .body
        .contains("href=\"/calendar/?view=week&amp;week=2031-05-26\""));
    assert!(page
        .body
        .contains("href=\"/calendar/?month=2031-04\" rel=\"prev\""));
    assert!(page
        .body
        .contains("href=\"/calendar/?month=2031-06\" rel=\"next\""));
    assert!(page.body.contains(">Today</a>"));
    assert!(page.body.contains("href=\"/calendar/new/\""), "New event");
    assert!(page
        .body
        .contains("href=\"/calendar/new/?date=2031-05-14\""));
    assert!(page.body.contains("1 event in this period."));
    // Another month does not show it; the default is this month.
    let june = cons.get("/calendar/?month=2031-06").await;
    assert_eq!(june.status, StatusCode::OK);
    assert!(!june.body.contains(&event));
    let now = cons.get("/calendar/").await;
    assert_eq!(now.status, StatusCode::OK);
    let this_month = chrono::Utc::now().format("%B %Y").to_string();
    assert!(now.body.contains(&this_month));
    assert!(
        now.body.contains("class=\"cal-day today"),
        "today is marked"
    );
    // The dashboard's upcoming events link to the calendar.
    assert!(home.body.contains("href=\"/calendar/\">Upcoming events"));
}

#[tokio::test]
async fn the_week_view_shows_the_days_of_the_week_holding_the_given_day() {
    let w = world().await;
    let mut cons = w.browser("cons.a").await;
    let page = cons.get("/calendar/?view=week&week=2031-05-14").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("12 May – 18 May 2031"));
    assert!(page
        .body
        .contains(&format!("href=\"/calendar/{}/\"", w.event_a)));
    assert!(page.body.contains("10:00–11:00"));
    assert!(page.body.contains("<small>Room 4</small>"));
    assert!(page.body.contains("Wed 14 May"));
    assert!(page
        .body
        .contains("href=\"/calendar/?view=week&amp;week=2031-05-05\" rel=\"prev\""));
    assert!(page
        .body
        .contains("href=\"/calendar/?view=week&amp;week=2031-05-19\" rel=\"next\""));
    assert!(
        page.body
            .contains("href=\"/calendar/?month=2031-05\">Month</a>"),
        "the month of this week"
    );
    let next = cons.get("/calendar/?view=week&week=2031-05-19").await;
    assert_eq!(next.status, StatusCode::OK);
    assert!(!next.body.contains("Intake Ana"));
}

#[tokio::test]
async fn malformed_calendar_queries_are_a_400_never_a_500() {
    let w = world().await;
    let mut cons = w.browser("cons.a").await;
    for query in [
        "month=2031-13",
        "month=May",
        "month=2031-5",
        "month=0000-01",
        "view=year",
        "view=week&week=2031-02-30",
        "view=week&week=tomorrow",
    ] {
        let page = cons.get(&format!("/calendar/?{query}")).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(page.body.contains("nav"), "an error page in the shell");
    }
}

#[tokio::test]
async fn creating_an_event_goes_through_the_api_and_shows_it_in_its_month() {
    let w = world().await;
    let mut cons = w.browser("cons.a").await;
    let form = cons.get("/calendar/new/?date=2031-05-20").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains("value=\"2031-05-20T09:00\""));
    assert!(form.body.contains("value=\"2031-05-20T10:00\""));
    // A consultant may not assign others: only themselves.
    assert!(form.body.contains("cons.a Tester (me)"));
    assert!(!form.body.contains("cons.a2 Tester"));
    let branch = w.org.a.to_string();
    let page = cons
        .post(
            "/calendar/new/",
            &[
                ("title", "Board meeting"),
                ("start", "2031-05-20T13:00"),
                ("end", "2031-05-20T14:30"),
                ("location", "Main hall"),
                ("hex_color", "#ff0000"),
                ("assigned_to_id", ""),
                ("branch_id", &branch),
                ("description", "Quarterly numbers"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), MAY);
    let me = w.user_id("cons.a").await;
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM calendar_events WHERE title = 'Board meeting'
                AND start_at = '2031-05-20T13:00:00Z' AND end_at = '2031-05-20T14:30:00Z'
                AND location = 'Main hall' AND hex_color = '#ff0000' AND NOT all_day
                AND assigned_to_id IS NULL AND branch_id = {branch} AND created_by_id = {me}
                AND description = 'Quarterly numbers'"
        ))
        .await,
        1
    );
    let month = cons.get(MAY).await;
    let place = at(&month.body, "Board meeting");
    assert!(at(&month.body, &day_cell(20)) < place && place < at(&month.body, &day_cell(21)));
    assert!(month.body.contains("2 events in this period."));

    // The super admin may assign anyone in scope.
    let mut admin = w.browser("admin").await;
    let form = admin.get("/calendar/new/").await;
    assert!(form.body.contains("cons.a2 Tester") && form.body.contains("cons.b Tester"));
}

#[tokio::test]
async fn bad_event_input_shows_inline_errors_keeps_the_values_and_saves_nothing() {
    let w = world().await;
    let mut cons = w.browser("cons.a").await;
    cons.get("/calendar/new/").await;
    let before = w.count("SELECT count(*) FROM calendar_events").await;
    let page = cons
        .post(
            "/calendar/new/",
            &[
                ("title", ""),
                ("start", "yesterday"),
                ("end", "2031-05-20T10:00"),
                ("location", "Kept place"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("class=\"field invalid\""));
    assert!(page.body.contains("This field is required."), "the title");
    assert!(page.body.contains("Datetime has wrong format"), "the start");
    assert!(page.body.contains("value=\"Kept place\""));
    assert!(page.body.contains("value=\"yesterday\""));
    let page = cons
        .post(
            "/calendar/new/",
            &[
                ("title", "Backwards"),
                ("start", "2031-05-20T10:00"),
                ("end", "2031-05-20T09:00"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("End time must be after start time."));
    assert!(page.body.contains("value=\"Backwards\""));
    let page = cons
        .post(
            "/calendar/new/",
            &[
                ("title", "Bad colour"),
                ("start", "2031-05-20T10:00"),
                ("end", "2031-05-20T11:00"),
                ("hex_color", "red"),
                ("branch_id", "abc"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("Enter a valid hex colour"));
    // A consultant assigning someone else (a forged choice) is the API's 403.
    let other = w.user_id("cons.a2").await.to_string();
    let page = cons
        .post(
            "/calendar/new/",
            &[
                ("title", "Delegated"),
                ("start", "2031-05-20T10:00"),
                ("end", "2031-05-20T11:00"),
                ("assigned_to_id", &other),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(
        w.count("SELECT count(*) FROM calendar_events").await,
        before
    );

    // On edit: a refused change leaves the event as it was.
    let edit = format!("/calendar/{}/edit/", w.event_a);
    cons.get(&edit).await;
    let page = cons
        .post(
            &edit,
            &[
                ("title", "Moved"),
                ("start", "2031-05-14T12:00"),
                ("end", "2031-05-14T11:00"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("End time must be after start time."));
    assert!(page.body.contains("value=\"Moved\""));
    assert_eq!(
        w.text(&format!(
            "SELECT title FROM calendar_events WHERE id = {}",
            w.event_a
        ))
        .await,
        "Intake Ana"
    );
}

#[tokio::test]
async fn an_event_is_shown_edited_and_deleted_through_the_api() {
    let w = world().await;
    let mut cons = w.browser("cons.a").await;
    let path = format!("/calendar/{}/", w.event_a);
    let page = cons.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Intake Ana") && page.body.contains("Room 4"));
    assert!(page.body.contains("2031-05-14 10:00") && page.body.contains("1 h"));
    assert!(page.body.contains("Branch A"));
    assert!(page.body.contains(&format!("href=\"{path}edit/\"")));
    assert!(page.body.contains(&format!("action=\"{path}delete/\"")));

    let form = cons.get(&format!("{path}edit/")).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("value=\"Intake Ana\""));
    assert!(form.body.contains("value=\"2031-05-14T10:00\""));
    assert!(form.body.contains("value=\"#2e7d32\""));
    let cons_a = w.user_id("cons.a").await.to_string();
    let branch = w.org.a.to_string();
    let page = cons
        .post(
            &format!("{path}edit/"),
            &[
                ("title", "Intake Ana (moved)"),
                ("start", "2031-05-16T08:00"),
                ("end", "2031-05-16T08:45"),
                ("all_day", "true"),
                ("location", ""),
                ("hex_color", "#3788d8"),
                ("assigned_to_id", &cons_a),
                ("branch_id", &branch),
                ("description", "Bring the offer letter"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), path);
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM calendar_events WHERE id = {} AND title = 'Intake Ana (moved)'
                AND start_at = '2031-05-16T08:00:00Z' AND all_day AND location = ''
                AND description = 'Bring the offer letter'",
            w.event_a
        ))
        .await,
        1
    );
    let page = cons.post(&format!("{path}delete/"), &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), MAY);
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM calendar_events WHERE id = {}",
            w.event_a
        ))
        .await,
        0
    );
    assert_eq!(cons.get(&path).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_consultant_of_branch_a_sees_no_branch_b_event_and_gets_404_for_its_pages() {
    let w = world().await;
    let mut cons = w.browser("cons.a").await;
    let month = cons.get(MAY).await;
    assert!(month.body.contains("Intake Ana"));
    assert!(!month.body.contains("Visa Bo"));
    let week = cons.get("/calendar/?view=week&week=2031-05-15").await;
    assert!(!week.body.contains("Visa Bo"));
    let path = format!("/calendar/{}/", w.event_b);
    for page_path in [path.clone(), format!("{path}edit/")] {
        let page = cons.get(&page_path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{page_path}");
        assert!(!page.body.contains("Visa Bo"));
    }
    let page = cons
        .post(
            &format!("{path}edit/"),
            &[
                ("title", "Hijacked"),
                ("start", "2031-05-15T10:00"),
                ("end", "2031-05-15T11:00"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let page = cons.post(&format!("{path}delete/"), &[]).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(
        w.text(&format!(
            "SELECT title FROM calendar_events WHERE id = {}",
            w.event_b
        ))
        .await,
        "Visa Bo"
    );
}

#[tokio::test]
async fn without_calendar_write_permissions_no_button_is_shown_and_forged_posts_are_refused() {
    let w = world().await;
    let mut viewer = w.browser("viewer").await;
    let month = viewer.get(MAY).await;
    assert_eq!(month.status, StatusCode::OK);
    assert!(
        month.body.contains("Intake Ana"),
        "a team event of branch A"
    );
    assert!(!month.body.contains("Visa Bo"));
    assert!(!month.body.contains("/calendar/new/"), "no New event, no +");
    let path = format!("/calendar/{}/", w.event_a);
    let page = viewer.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("/edit/") && !page.body.contains("/delete/"));
    assert_eq!(
        viewer.get("/calendar/new/").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        viewer.get(&format!("{path}edit/")).await.status,
        StatusCode::FORBIDDEN
    );
    let before = w.count("SELECT count(*) FROM calendar_events").await;
    let page = viewer
        .post(
            "/calendar/new/",
            &[
                ("title", "Forged"),
                ("start", "2031-05-20T10:00"),
                ("end", "2031-05-20T11:00"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = viewer
        .post(&format!("{path}edit/"), &[("title", "Forged")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = viewer.post(&format!("{path}delete/"), &[]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(
        w.count("SELECT count(*) FROM calendar_events").await,
        before
    );
    assert_eq!(
        w.text(&format!(
            "SELECT title FROM calendar_events WHERE id = {}",
            w.event_a
        ))
        .await,
        "Intake Ana"
    );

    // Without view_calendarevent there is no Calendar entry and no calendar.
    let mut tasker = w.browser("tasker").await;
    let home = tasker.get("/").await;
    assert!(!home.body.contains("href=\"/calendar/\""));
    assert!(!home.body.contains("href=\"/reminders/\""));
    assert!(home.body.contains("href=\"/tasks/\""));
    assert_eq!(tasker.get(MAY).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        tasker.get("/reminders/").await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn calendar_forms_without_the_csrf_token_are_refused_and_change_nothing() {
    let w = world().await;
    let mut cons = w.browser("cons.a").await;
    let before = w.count("SELECT count(*) FROM calendar_events").await;
    let page = cons
        .post_raw(
            "/calendar/new/",
            &[
                ("title", "No token"),
                ("start", "2031-05-20T10:00"),
                ("end", "2031-05-20T11:00"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let path = format!("/calendar/{}/", w.event_a);
    let page = cons
        .post_raw(
            &format!("{path}edit/"),
            &[("csrf", "00"), ("title", "Wrong token")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = cons.post_raw(&format!("{path}delete/"), &[]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(
        w.count("SELECT count(*) FROM calendar_events").await,
        before
    );
    assert_eq!(
        w.text(&format!(
            "SELECT title FROM calendar_events WHERE id = {}",
            w.event_a
        ))
        .await,
        "Intake Ana"
    );
}

#[tokio::test]
async fn an_event_titled_with_markup_shows_as_text() {
    let w = world().await;
    let mut cons = w.browser("cons.a").await;
    cons.get("/calendar/new/").await;
    let page = cons
        .post(
            "/calendar/new/",
            &[
                ("title", "<script>alert(1)</script>"),
                ("start", "2031-05-22T10:00"),
                ("end", "2031-05-22T11:00"),
                ("location", "\"><img src=x onerror=alert(2)>"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let id = w
        .count("SELECT id FROM calendar_events WHERE title LIKE '<script>%'")
        .await;
    for path in [
        MAY.to_owned(),
        "/calendar/?view=week&week=2031-05-22".to_owned(),
        format!("/calendar/{id}/"),
        format!("/calendar/{id}/edit/"),
    ] {
        let page = cons.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(
            page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}"
        );
        assert!(!page.body.contains("<script>alert(1)"), "{path}");
        assert!(!page.body.contains("<img src=x"), "{path}");
    }
}

// ----- reminders -----------------------------------------------------------------------------

#[tokio::test]
async fn the_reminders_list_shows_the_users_reminders_and_marks_one_done() {
    let w = world().await;
    let mut cons = w.browser("cons.a").await;
    let page = cons.get("/reminders/").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Call Ana"));
    assert!(!page.body.contains("Call Bo"));
    assert!(
        page.body
            .contains(&format!("href=\"/clients/{}/\">Ana Client</a>", w.client_a)),
        "the client named in one query"
    );
    assert!(page.body.contains("2031-05-20 09:30"));
    assert!(page.body.contains("Bring the forms"));
    assert!(page.body.contains("href=\"/reminders/new/\""));
    let done = format!("/reminders/{}/done/", w.reminder_a);
    assert!(page.body.contains(&format!("action=\"{done}\"")));
    assert!(page
        .body
        .contains(&format!("href=\"/reminders/{}/edit/\"", w.reminder_a)));
    assert!(page
        .body
        .contains(&format!("action=\"/reminders/{}/delete/\"", w.reminder_a)));

    let page = cons.post(&done, &[("_return", "/reminders/")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/reminders/");
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM reminders WHERE id = {} AND is_completed",
            w.reminder_a
        ))
        .await,
        1
    );
    let open = cons.get("/reminders/").await;
    assert!(!open.body.contains("Call Ana"), "open ones only by default");
    let finished = cons.get("/reminders/?status=done").await;
    assert!(finished.body.contains("Call Ana") && finished.body.contains(">Done</span>"));
    assert!(!finished.body.contains(&format!("action=\"{done}\"")));
    let all = cons
        .get(&format!("/reminders/?status=all&object_id={}", w.client_a))
        .await;
    assert!(all.body.contains("Call Ana"));
    // Bad list queries are the API's (or the page's) 400.
    for query in ["status=later", "ordering=password", "object_id=x"] {
        let page = cons.get(&format!("/reminders/?{query}")).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{query}");
    }
}

#[tokio::test]
async fn a_reminder_is_created_edited_and_deleted_through_the_api() {
    let w = world().await;
    let mut cons = w.browser("cons.a").await;
    let form = cons
        .get(&format!("/reminders/new/?client={}", w.client_a))
        .await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains(&format!(
        "<option value=\"{}\" selected>Ana Client</option>",
        w.client_a
    )));
    assert!(!form.body.contains("Bo Client"), "clients in scope only");
    let client = w.client_a.to_string();
    let page = cons
        .post(
            "/reminders/new/",
            &[
                ("object_id", &client),
                ("title", "Send the offer"),
                ("reminder_date", "2031-06-01"),
                ("reminder_time", "14:15"),
                ("note", "Use the new template"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let id = w
        .count("SELECT id FROM reminders WHERE title = 'Send the offer'")
        .await;
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM reminders WHERE id = {id} AND object_id = {client}
                AND content_type_id = 10 AND reminder_date = '2031-06-01'
                AND reminder_time = '14:15' AND meta_info->>'note_content' = 'Use the new template'"
        ))
        .await,
        1
    );

    // Edit the seeded one: the note changes, the other keys of meta_info stay.
    let edit = format!("/reminders/{}/edit/", w.reminder_a);
    let form = cons.get(&edit).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("value=\"Call Ana\""));
    assert!(form.body.contains("value=\"09:30\""));
    assert!(form.body.contains("Bring the forms"));
    let page = cons
        .post(
            &edit,
            &[
                ("object_id", &client),
                ("title", "Call Ana again"),
                ("reminder_date", "2031-05-21"),
                ("reminder_time", ""),
                ("note", "Ask about the bank letter"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM reminders WHERE id = {} AND title = 'Call Ana again'
                AND reminder_date = '2031-05-21' AND reminder_time IS NULL
                AND meta_info = jsonb_build_object('note_content', 'Ask about the bank letter',
                                                   'client_id', {client})",
            w.reminder_a
        ))
        .await,
        1
    );
    let page = cons.post(&format!("/reminders/{id}/delete/"), &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        w.count(&format!("SELECT count(*) FROM reminders WHERE id = {id}"))
            .await,
        0
    );
}

#[tokio::test]
async fn bad_reminder_input_shows_inline_errors_and_saves_nothing() {
    let w = world().await;
    let mut cons = w.browser("cons.a").await;
    cons.get("/reminders/new/").await;
    let before = w.count("SELECT count(*) FROM reminders").await;
    let page = cons
        .post(
            "/reminders/new/",
            &[
                ("object_id", ""),
                ("title", ""),
                ("reminder_date", "20/05/2031"),
                ("reminder_time", "noon"),
                ("note", "kept note"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("class=\"field invalid\""));
    assert!(page.body.contains("Date has wrong format"));
    assert!(page.body.contains("Time has wrong format"));
    assert!(page.body.contains("This field is required."));
    assert!(page.body.contains("kept note"));
    // A client out of scope (a forged choice) is the API's 400 on the client, inline.
    let other = w.client_b.to_string();
    let page = cons
        .post(
            "/reminders/new/",
            &[("object_id", &other), ("title", "Sneaky")],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("object does not exist"));
    assert!(page.body.contains("value=\"Sneaky\""));
    assert_eq!(w.count("SELECT count(*) FROM reminders").await, before);
    // On edit too.
    let edit = format!("/reminders/{}/edit/", w.reminder_a);
    let page = cons
        .post(
            &edit,
            &[("object_id", &other), ("title", ""), ("reminder_date", "x")],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        w.text(&format!(
            "SELECT title FROM reminders WHERE id = {}",
            w.reminder_a
        ))
        .await,
        "Call Ana"
    );
}

#[tokio::test]
async fn a_consultant_of_branch_a_gets_404_for_a_branch_b_reminder_and_changes_nothing() {
    let w = world().await;
    let mut cons = w.browser("cons.a").await;
    let list = cons.get("/reminders/?status=all").await;
    assert!(!list.body.contains("Call Bo"));
    let base = format!("/reminders/{}/", w.reminder_b);
    let page = cons.get(&format!("{base}edit/")).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(!page.body.contains("Call Bo"));
    for (path, fields) in [
        (format!("{base}edit/"), vec![("title", "Hijacked")]),
        (format!("{base}done/"), vec![]),
        (format!("{base}delete/"), vec![]),
    ] {
        let page = cons.post(&path, &fields).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM reminders WHERE id = {} AND title = 'Call Bo'
                AND NOT is_completed",
            w.reminder_b
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn without_reminder_write_permissions_no_button_is_shown_and_forged_posts_are_refused() {
    let w = world().await;
    let mut viewer = w.browser("viewer").await;
    let page = viewer.get("/reminders/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Call Ana") && !page.body.contains("Call Bo"));
    assert!(!page.body.contains("/reminders/new/"));
    assert!(!page.body.contains("/done/") && !page.body.contains("/edit/"));
    assert!(!page.body.contains("/delete/"));
    assert_eq!(
        viewer.get("/reminders/new/").await.status,
        StatusCode::FORBIDDEN
    );
    let base = format!("/reminders/{}/", w.reminder_a);
    assert_eq!(
        viewer.get(&format!("{base}edit/")).await.status,
        StatusCode::FORBIDDEN
    );
    let client = w.client_a.to_string();
    let before = w.count("SELECT count(*) FROM reminders").await;
    for (path, fields) in [
        (
            "/reminders/new/".to_owned(),
            vec![("object_id", client.as_str()), ("title", "Forged")],
        ),
        (format!("{base}edit/"), vec![("title", "Forged")]),
        (format!("{base}done/"), vec![]),
        (format!("{base}delete/"), vec![]),
    ] {
        let page = viewer.post(&path, &fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(w.count("SELECT count(*) FROM reminders").await, before);
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM reminders WHERE id = {} AND title = 'Call Ana'
                AND NOT is_completed",
            w.reminder_a
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn reminder_forms_without_the_csrf_token_are_refused_and_markup_shows_as_text() {
    let w = world().await;
    let mut cons = w.browser("cons.a").await;
    let client = w.client_a.to_string();
    let before = w.count("SELECT count(*) FROM reminders").await;
    let page = cons
        .post_raw(
            "/reminders/new/",
            &[("object_id", &client), ("title", "No token")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = cons
        .post_raw(&format!("/reminders/{}/done/", w.reminder_a), &[])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(w.count("SELECT count(*) FROM reminders").await, before);
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM reminders WHERE id = {} AND NOT is_completed",
            w.reminder_a
        ))
        .await,
        1
    );

    cons.get("/reminders/new/").await;
    let page = cons
        .post(
            "/reminders/new/",
            &[
                ("object_id", &client),
                ("title", "<script>alert(1)</script>"),
                ("note", "<b>bold</b>"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = cons.get("/reminders/").await;
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.body.contains("&lt;b&gt;bold&lt;/b&gt;"));
    assert!(!page.body.contains("<script>alert(1)") && !page.body.contains("<b>bold"));
}

// ----- tasks ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_task_page_shows_its_details_and_a_comment_mentioning_a_colleague_notifies_them() {
    let w = world().await;
    let mut cons = w.browser("cons.a").await;
    let list = cons.get("/tasks/?view=all").await;
    let path = format!("/tasks/{}/", w.task_a);
    assert!(list
        .body
        .contains(&format!("href=\"{path}\">Passport Ana</a>")));
    assert!(list.body.contains("href=\"/tasks/new/\""));
    let page = cons.get(&path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Passport Ana") && page.body.contains("Collect the passport copy."));
    assert!(page
        .body
        .contains(&format!("href=\"/clients/{}/\">Ana Client</a>", w.client_a)));
    assert!(page.body.contains("2031-05-21 09:00"));
    assert!(page.body.contains("No comments yet."));
    assert!(page.body.contains(&format!("action=\"{path}complete/\"")));
    assert!(page.body.contains(&format!("action=\"{path}comments/\"")));

    let mentioned = w.user_id("cons.a2").await;
    let page = cons
        .post(
            &format!("{path}comments/"),
            &[("comment", "@cons.a2 please check the copy, thanks.")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), format!("{path}#comments"));
    assert_eq!(
        w.count(&format!(
            "SELECT jsonb_array_length(comments)::bigint FROM tasks WHERE id = {}",
            w.task_a
        ))
        .await,
        1
    );
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM notifications WHERE assigned_to_id = {mentioned}
                AND notification_type = 'TASK_MENTIONED'
                AND (meta_info->>'task_id')::bigint = {}",
            w.task_a
        ))
        .await,
        1,
        "the API's mention notice"
    );
    let page = cons.get(&path).await;
    assert!(page
        .body
        .contains("<b class=\"mention\">@cons.a2</b> please check the copy"));
    assert!(page.body.contains("@cons.a ·"), "the author");
    // The mentioned colleague sees it in the bell.
    let mut other = w.browser("cons.a2").await;
    let menu = other.get("/notifications/").await;
    assert!(menu.body.contains("You were mentioned in a task comment"));

    // Completing from the task page returns to it.
    let page = cons
        .post(&format!("{path}complete/"), &[("_return", &path)])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), path);
    assert_eq!(
        w.text(&format!("SELECT status FROM tasks WHERE id = {}", w.task_a))
            .await,
        "COMPLETED"
    );
}

#[tokio::test]
async fn a_new_task_is_created_through_the_api_with_its_client_preselected() {
    let w = world().await;
    let mut cons = w.browser("cons.a").await;
    let form = cons
        .get(&format!("/tasks/new/?client={}", w.client_a))
        .await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains(&format!(
        "<option value=\"{}\" selected>Ana Client</option>",
        w.client_a
    )));
    assert!(!form.body.contains("Bo Client"));
    assert!(form.body.contains("<option value=\"MEDIUM\" selected>"));
    let client = w.client_a.to_string();
    let assignee = w.user_id("cons.a2").await.to_string();
    let page = cons
        .post(
            "/tasks/new/",
            &[
                ("title", "Book the medical"),
                ("priority", "URGENT"),
                ("due_date", "2031-06-02T16:00"),
                ("assigned_to", &assignee),
                ("branch_id", ""),
                ("linked_entity_id", &client),
                ("tags", "health, visa"),
                ("detail", "Panel physician in town."),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let id = w
        .count("SELECT id FROM tasks WHERE title = 'Book the medical'")
        .await;
    assert_eq!(page.location(), format!("/tasks/{id}/"));
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM tasks WHERE id = {id} AND priority = 'URGENT'
                AND status = 'PENDING' AND due_date = '2031-06-02T16:00:00Z'
                AND assigned_to_id = {assignee} AND content_type_id = 10
                AND object_id = {client} AND tags = '[\"health\", \"visa\"]'::jsonb"
        ))
        .await,
        1
    );
    // A pool task.
    let branch = w.org.a.to_string();
    let page = cons
        .post(
            "/tasks/new/",
            &[
                ("title", "Pool work"),
                ("due_date", "2031-06-03T09:00"),
                ("branch_id", &branch),
                ("detail", "Anyone of A."),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM tasks WHERE title = 'Pool work' AND branch_id = {branch}
                AND assigned_to_id IS NULL"
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn bad_task_input_shows_inline_errors_and_saves_nothing() {
    let w = world().await;
    let mut cons = w.browser("cons.a").await;
    cons.get("/tasks/new/").await;
    let before = w.count("SELECT count(*) FROM tasks").await;
    let page = cons
        .post(
            "/tasks/new/",
            &[
                ("title", "Kept title"),
                ("due_date", "soon"),
                ("priority", "WHENEVER"),
                ("detail", ""),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("class=\"field invalid\""));
    assert!(page.body.contains("This field is required."), "the detail");
    assert!(page.body.contains("Datetime has wrong format"));
    assert!(page.body.contains("value=\"Kept title\""));
    let assignee = w.user_id("cons.a2").await.to_string();
    let branch = w.org.a.to_string();
    let page = cons
        .post(
            "/tasks/new/",
            &[
                ("title", "Both"),
                ("due_date", "2031-06-02T16:00"),
                ("assigned_to", &assignee),
                ("branch_id", &branch),
                ("detail", "x"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page
        .body
        .contains("Task cannot be assigned to both a user and a branch."));
    // A client out of scope (forged) is the API's 400 on the link.
    let other = w.client_b.to_string();
    let page = cons
        .post(
            "/tasks/new/",
            &[
                ("title", "Sneaky"),
                ("due_date", "2031-06-02T16:00"),
                ("linked_entity_id", &other),
                ("detail", "x"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("does not exist"));
    assert_eq!(w.count("SELECT count(*) FROM tasks").await, before);
    // An empty comment is shown inline on the task page.
    let path = format!("/tasks/{}/", w.task_a);
    let page = cons
        .post(&format!("{path}comments/"), &[("comment", "   ")])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("This field may not be blank."));
    let long = "x".repeat(5001);
    let page = cons
        .post(&format!("{path}comments/"), &[("comment", &long)])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("no more than 5000 characters"));
    assert_eq!(
        w.count(&format!(
            "SELECT jsonb_array_length(comments)::bigint FROM tasks WHERE id = {}",
            w.task_a
        ))
        .await,
        0
    );
}

#[tokio::test]
async fn a_consultant_of_branch_a_gets_404_for_a_branch_b_task_and_its_comment_form() {
    let w = world().await;
    let mut cons = w.browser("cons.a").await;
    let list = cons.get("/tasks/?view=all").await;
    assert!(list.body.contains("Passport Ana") && !list.body.contains("Passport Bo"));
    let path = format!("/tasks/{}/", w.task_b);
    let page = cons.get(&path).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(!page.body.contains("Passport Bo"));
    let page = cons
        .post(&format!("{path}comments/"), &[("comment", "hello")])
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let page = cons.post(&format!("{path}complete/"), &[]).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM tasks WHERE id = {} AND comments = '[]'::jsonb
                AND status = 'PENDING'",
            w.task_b
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn without_task_write_permissions_no_form_is_shown_and_forged_posts_are_refused() {
    let w = world().await;
    let mut viewer = w.browser("viewer").await;
    let list = viewer.get("/tasks/?view=all").await;
    assert!(
        list.body.contains("Passport Ana"),
        "a task of a branch-A client"
    );
    assert!(!list.body.contains("/tasks/new/"));
    let path = format!("/tasks/{}/", w.task_a);
    let page = viewer.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("/comments/"), "no comment form");
    assert!(!page.body.contains("/complete/") && !page.body.contains("/cancel/"));
    assert_eq!(
        viewer.get("/tasks/new/").await.status,
        StatusCode::FORBIDDEN
    );
    let before = w.count("SELECT count(*) FROM tasks").await;
    let page = viewer
        .post(
            "/tasks/new/",
            &[
                ("title", "Forged"),
                ("due_date", "2031-06-02T16:00"),
                ("detail", "x"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = viewer
        .post(&format!("{path}comments/"), &[("comment", "forged")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(w.count("SELECT count(*) FROM tasks").await, before);
    assert_eq!(
        w.count(&format!(
            "SELECT jsonb_array_length(comments)::bigint FROM tasks WHERE id = {}",
            w.task_a
        ))
        .await,
        0
    );
}

#[tokio::test]
async fn task_forms_without_the_csrf_token_are_refused_and_comments_with_markup_show_as_text() {
    let w = world().await;
    let mut cons = w.browser("cons.a").await;
    let path = format!("/tasks/{}/", w.task_a);
    let before = w.count("SELECT count(*) FROM tasks").await;
    let page = cons
        .post_raw(
            "/tasks/new/",
            &[
                ("title", "No token"),
                ("due_date", "2031-06-02T16:00"),
                ("detail", "x"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = cons
        .post_raw(&format!("{path}comments/"), &[("comment", "No token")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(w.count("SELECT count(*) FROM tasks").await, before);
    assert_eq!(
        w.count(&format!(
            "SELECT jsonb_array_length(comments)::bigint FROM tasks WHERE id = {}",
            w.task_a
        ))
        .await,
        0
    );

    cons.get(&path).await;
    let page = cons
        .post(
            &format!("{path}comments/"),
            &[("comment", "<script>alert(1)</script> @cons.a2")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let page = cons.get(&path).await;
    assert!(page
        .body
        .contains("&lt;script&gt;alert(1)&lt;/script&gt; <b class=\"mention\">@cons.a2</b>"));
    assert!(!page.body.contains("<script>alert(1)"));
    // A task titled with markup, created through the form.
    let page = cons
        .post(
            "/tasks/new/",
            &[
                ("title", "<img src=x onerror=alert(1)>"),
                ("due_date", "2031-06-02T16:00"),
                ("detail", "<i>x</i>"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = cons.get(page.location()).await;
    assert!(page.body.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(page.body.contains("&lt;i&gt;x&lt;/i&gt;"));
    assert!(!page.body.contains("<img src=x") && !page.body.contains("<i>x</i>"));
}
