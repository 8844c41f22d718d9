//! No N+1: every list endpoint issues a bounded number of SQL statements, the same for a page of
//! one row as for a page of a hundred.
//!
//! Statements are counted from sqlx's own per-statement `tracing` events (target
//! `sqlx::query`). One global subscriber (installed once, always interested in them) adds each
//! to the counter of the task-local scope the request's future runs in, so tests running in
//! parallel do not see each other's queries. (A subscriber scoped to the future lost events:
//! tracing caches each callsite's interest globally, and a cache built while no interested
//! subscriber was alive kept the callsite silent.)

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::TestApp;
use http::{Method, StatusCode};
use leopard_rbac::Role;
use serde_json::{json, Value};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::Layer;

const SLUG: &str = "acme";

tokio::task_local! {
    /// The statement counter of the request being counted.
    static STATEMENTS: Arc<AtomicUsize>;
}

/// Adds sqlx's per-statement events to the current [`STATEMENTS`] scope, if any.
struct StatementCounter;

impl<S: tracing::Subscriber> Layer<S> for StatementCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            let _ = STATEMENTS.try_with(|count| count.fetch_add(1, Ordering::Relaxed));
        }
    }
}

/// Sends `GET path` and returns the status, the body and the number of SQL statements run.
async fn counted_get(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value, usize) {
    static INSTALLED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    INSTALLED.get_or_init(|| {
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(StatementCounter),
        )
        .expect("no other global subscriber in the test binary");
    });
    let count = Arc::new(AtomicUsize::new(0));
    let (status, _, body) = STATEMENTS
        .scope(Arc::clone(&count), app.get(SLUG, path, token))
        .await;
    (status, body, count.load(Ordering::Relaxed))
}

/// The number of rows of a list answer (paginated or bare array).
fn rows(body: &Value) -> usize {
    body.get("results")
        .and_then(Value::as_array)
        .or_else(|| body.as_array())
        .map_or(0, Vec::len)
}

/// Asserts that `path` (with `?page_size=` appended) answers `small` and `large` rows with the
/// same, bounded number of statements.
async fn assert_bounded(app: &TestApp, token: &str, path: &str, small: usize, large: usize) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let (s1, b1, few) = counted_get(app, &format!("{path}{sep}page_size={small}"), token).await;
    let (s2, b2, many) = counted_get(app, &format!("{path}{sep}page_size={large}"), token).await;
    assert_eq!(s1, StatusCode::OK, "{path}: {b1}");
    assert_eq!(s2, StatusCode::OK, "{path}: {b2}");
    assert_eq!(rows(&b1), small, "{path}: page of {small}");
    assert_eq!(rows(&b2), large, "{path}: page of {large}");
    assert!(few > 0, "{path}: statements were counted");
    assert_eq!(
        few, many,
        "{path}: {few} statements for {small} rows but {many} for {large}"
    );
    assert!(many <= 8, "{path}: {many} statements for one list");
}

/// Seeds `n` rows of every client-owned resource (one per client) and of the tenant-wide ones
/// directly in SQL, for the user `owner` (assignee, author, creator).
async fn seed_rows(app: &TestApp, owner: i64) {
    let mut tx = app.context(SLUG).begin().await.expect("tx");
    sqlx::raw_sql(&format!(
        "INSERT INTO notes (client_id, author_id, content)
              SELECT id, {owner}, 'Note ' || id FROM clients;
         INSERT INTO tasks (title, detail, due_date, assigned_to_id, created_by_id,
                            content_type_id, object_id)
              SELECT 'Task ' || id, 'd', now() - interval '1 hour', {owner}, {owner}, 10, id
                FROM clients;
         INSERT INTO reminders (content_type_id, object_id, title, created_by_id)
              SELECT 10, id, 'Reminder ' || id, {owner} FROM clients;
         INSERT INTO calendar_events (title, start_at, end_at, assigned_to_id, created_by_id)
              SELECT 'Event ' || id, now(), now() + interval '1 hour', {owner}, {owner}
                FROM clients;
         INSERT INTO language_exams (name) SELECT 'Exam ' || id FROM clients;
         INSERT INTO proficiencies (client_id, test_name_id, overall_score, test_date)
              SELECT c.id, e.id, 7.5, current_date
                FROM clients c JOIN language_exams e ON e.name = 'Exam ' || c.id;
         INSERT INTO qualifications (client_id, course, country)
              SELECT id, 'Course ' || id, 'NP' FROM clients;
         INSERT INTO employments (client_id, employer_name, position, start_date, end_date,
                                  country)
              SELECT id, 'Employer', 'Clerk', DATE '2020-01-01', DATE '2021-01-01', 'NP'
                FROM clients;
         INSERT INTO passports (client_id, passport_no, passport_country, country_of_birth,
                                nationality)
              SELECT id, 'P' || id, 'NP', 'NP', 'NP' FROM clients;
         INSERT INTO course_levels (name) VALUES ('Bachelor');
         INSERT INTO broad_fields (name) VALUES ('IT');
         INSERT INTO narrow_fields (name, broad_field_id) SELECT 'Software', id FROM broad_fields;
         INSERT INTO institutes (name, short_name) SELECT 'Institute ' || id, 'I' || id FROM clients;
         INSERT INTO courses (name, institute_id, level_id, broad_field_id, narrow_field_id,
                              total_tuition_fee, coe_fee)
              SELECT 'Course ' || i.id, i.id, l.id, n.broad_field_id, n.id, 30000, 500
                FROM institutes i, course_levels l, narrow_fields n;
         INSERT INTO institute_locations (institute_id, state, country)
              SELECT id, 'NSW', 'AU' FROM institutes;
         INSERT INTO institute_intakes (institute_id, intake_date)
              SELECT id, DATE '2031-02-01' FROM institutes;
         INSERT INTO application_types (title) SELECT 'Type ' || id FROM clients;
         INSERT INTO stages (application_type_id, stage_name, position)
              SELECT id, 'Applied', 1 FROM application_types;
         INSERT INTO college_applications (application_type_id, stage_id, client_id,
                                           institute_id, course_id, start_date_id, location_id,
                                           total_tuition_fee, assigned_to_id, super_agent_id)
              SELECT s.application_type_id, s.id, c.id, i.id, co.id, it.id, l.id, 30000, {owner},
                     NULL
                FROM clients c
                JOIN institutes i ON i.name = 'Institute ' || c.id
                JOIN courses co ON co.institute_id = i.id
                JOIN institute_intakes it ON it.institute_id = i.id
                JOIN institute_locations l ON l.institute_id = i.id
                JOIN application_types t ON t.title = 'Type ' || c.id
                JOIN stages s ON s.application_type_id = t.id;"
    ))
    .execute(&mut *tx)
    .await
    .expect("fixture rows");
    tx.commit().await.expect("commit");
}

#[tokio::test]
async fn list_endpoints_run_the_same_few_statements_for_one_row_as_for_sixty() {
    let app = TestApp::new(&[SLUG]).await;
    let org = app.seed_org(SLUG).await;
    let root = app
        .user(SLUG, "root", Some(Role::SuperAdmin), &[], &[])
        .await;
    let token = app.token(SLUG, "root").await;
    for i in 0..60 {
        let username = format!("consultant{i:02}");
        let user = app
            .user(SLUG, &username, Some(Role::Consultant), &[org.a], &[])
            .await;
        let (status, _, body) = app
            .call(
                Method::POST,
                SLUG,
                "/api/v1/clients/",
                Some(&token),
                Some(json!({
                    "first_name": format!("Client{i}"), "last_name": "Bulk", "gender": "OTHER",
                    "country": "NP", "branch_id": org.a, "assigned_to_id": user,
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    seed_rows(&app, root).await;
    for path in [
        "/api/v1/clients/",
        "/api/v1/users/",
        "/api/v1/notes/",
        "/api/v1/tasks/",
        "/api/v1/reminders/?ordering=id",
        "/api/v1/events/",
        "/api/v1/events/today/",
        "/api/v1/language-exams/",
        "/api/v1/language-proficiencies/",
        "/api/v1/qualifications/",
        "/api/v1/employments/",
        "/api/v1/institutes/",
        "/api/v1/courses/",
        "/api/v1/application-types/",
        "/api/v1/college-applications/",
    ] {
        // Reminders cap their pages at 50.
        let large = if path.starts_with("/api/v1/reminders/") {
            50
        } else {
            60
        };
        assert_bounded(&app, &token, path, 1, large).await;
    }
    // Unpaginated lists: all sixty rows cost what one row costs.
    let first_client: i64 = app.tenant_count(SLUG, "SELECT min(id) FROM clients").await;
    for (all, one) in [
        (
            "/api/v1/passports/".to_owned(),
            format!("/api/v1/passports/?client_id={first_client}"),
        ),
        (
            "/api/v1/tasks/overdue/".to_owned(),
            "/api/v1/tasks/overdue/?page_size=1".to_owned(),
        ),
    ] {
        let (s1, b1, few) = counted_get(&app, &one, &token).await;
        let (s2, b2, many) = counted_get(&app, &all, &token).await;
        assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{b1} {b2}");
        assert_eq!(rows(&b2), 60, "{all}");
        assert!(few > 0 && many <= 8, "{all}: {many} statements");
        if rows(&b1) == 1 {
            assert_eq!(
                few, many,
                "{all}: {few} statements for one row, {many} for 60"
            );
        }
    }
}
