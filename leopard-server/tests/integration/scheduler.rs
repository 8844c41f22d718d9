//! The in-server scheduler (`src/scheduler.rs`) on real PostgreSQL: due reminders become one
//! `REMINDER_DUE` each, open tasks one `TASK_DUE_SOON` / `TASK_OVERDUE` per due date, whatever
//! the number of instances ticking; one leader at a time, with failover; suspended tenants
//! skipped; `leopard scheduler run-once`.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use common::{Org, TestApp};
use http::{Method, StatusCode};
use leopard_core::TenantSlug;
use leopard_rbac::Role;
use leopard_server::scheduler::{
    Counts, RunningScheduler, Scheduler, SchedulerConfig, LOCK_APPLICATION_NAME, LOCK_KEY,
};
use leopard_tenancy::{ResolveConfig, SubscriptionStatus, TenantRegistry};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;

const SLUG: &str = "acme";

/// An organisation with users: `alice` and `bob` (branch A), `carol` (branch B), `eve`
/// (branch A, deactivated), `root` (super admin).
struct World {
    app: TestApp,
    org: Org,
    alice: i64,
    bob: i64,
    carol: i64,
    eve: i64,
}

async fn world_in(slugs: &[&str]) -> World {
    let app = TestApp::new(slugs).await;
    let mut world = None;
    for slug in slugs {
        let org = app.seed_org(slug).await;
        app.user(slug, "root", Some(Role::SuperAdmin), &[], &[])
            .await;
        let alice = app
            .user(slug, "alice", Some(Role::Consultant), &[org.a], &[])
            .await;
        let bob = app
            .user(slug, "bob", Some(Role::BranchAdmin), &[org.a], &[])
            .await;
        let carol = app
            .user(slug, "carol", Some(Role::Consultant), &[org.b], &[])
            .await;
        let eve = app
            .user(slug, "eve", Some(Role::Consultant), &[org.a], &[])
            .await;
        if world.is_none() {
            world = Some((org, alice, bob, carol, eve));
        }
    }
    let (org, alice, bob, carol, eve) = world.expect("at least one tenant");
    let w = World {
        app,
        org,
        alice,
        bob,
        carol,
        eve,
    };
    for slug in slugs {
        w.exec(
            slug,
            "UPDATE users SET is_active = false WHERE username = 'eve'",
        )
        .await;
    }
    w
}

async fn world() -> World {
    world_in(&[SLUG]).await
}

/// Noon (UTC) today: the fixed "now" of the tests that pass the time in.
fn noon() -> DateTime<Utc> {
    Utc::now()
        .date_naive()
        .and_time(NaiveTime::from_hms_opt(12, 0, 0).expect("noon"))
        .and_utc()
}

fn config(window_hours: i64) -> SchedulerConfig {
    SchedulerConfig {
        interval: Duration::from_millis(100),
        due_soon_window: TimeDelta::hours(window_hours),
        concurrency: 2,
    }
}

/// A notification as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct Notice {
    notification_type: String,
    assigned_to_id: i64,
    title: String,
    message: String,
    due_date: Option<DateTime<Utc>>,
    meta_info: Value,
}

impl World {
    fn scheduler(&self, window_hours: i64) -> Scheduler {
        Scheduler::new(
            self.app.tenancy.db.pool().clone(),
            Arc::clone(&self.app.registry),
            config(window_hours),
        )
    }

    /// A scheduler with its own pool and registry, as another process would have.
    async fn other_process(&self, window_hours: i64) -> Scheduler {
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(self.app.tenancy.db.url())
            .await
            .expect("second pool");
        let registry = TenantRegistry::load(pool.clone(), ResolveConfig::default())
            .await
            .expect("second registry");
        Scheduler::new(pool, registry, config(window_hours))
    }

    async fn exec(&self, slug: &str, sql: &str) {
        let mut tx = self.app.context(slug).begin().await.expect("tx");
        sqlx::query(sql).execute(&mut *tx).await.expect(sql);
        tx.commit().await.expect("commit");
    }

    /// A client of branch A assigned to `assignee`; returns its id.
    async fn client(&self, slug: &str, assignee: Option<i64>) -> i64 {
        let mut tx = self.app.context(slug).begin().await.expect("tx");
        let id = sqlx::query_scalar(
            "INSERT INTO clients (first_name, country, branch_id, assigned_to_id)
             VALUES ('Client', 'AU', $1, $2) RETURNING id",
        )
        .bind(self.org.a)
        .bind(assignee)
        .fetch_one(&mut *tx)
        .await
        .expect("client");
        tx.commit().await.expect("commit");
        id
    }

    /// A reminder on `client`; returns its id.
    async fn reminder(
        &self,
        slug: &str,
        title: &str,
        date: Option<NaiveDate>,
        time: Option<NaiveTime>,
        created_by: Option<i64>,
        client: i64,
    ) -> i64 {
        let mut tx = self.app.context(slug).begin().await.expect("tx");
        let id = sqlx::query_scalar(
            "INSERT INTO reminders (content_type_id, object_id, title, reminder_date,
                                    reminder_time, created_by_id)
             VALUES (10, $1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(client)
        .bind(title)
        .bind(date)
        .bind(time)
        .bind(created_by)
        .fetch_one(&mut *tx)
        .await
        .expect("reminder");
        tx.commit().await.expect("commit");
        id
    }

    /// A task due at `due` with `status`, assigned to a user or a branch pool; returns its id.
    async fn task(
        &self,
        title: &str,
        due: DateTime<Utc>,
        status: &str,
        assignee: Option<i64>,
        branch: Option<i64>,
    ) -> i64 {
        let mut tx = self.app.context(SLUG).begin().await.expect("tx");
        let id = sqlx::query_scalar(
            "INSERT INTO tasks (title, detail, priority, status, due_date, assigned_to_id,
                                branch_id)
             VALUES ($1, 'detail', 'HIGH', $2, $3, $4, $5) RETURNING id",
        )
        .bind(title)
        .bind(status)
        .bind(due)
        .bind(assignee)
        .bind(branch)
        .fetch_one(&mut *tx)
        .await
        .expect("task");
        tx.commit().await.expect("commit");
        id
    }

    async fn move_task(&self, task: i64, due: DateTime<Utc>) {
        let mut tx = self.app.context(SLUG).begin().await.expect("tx");
        sqlx::query("UPDATE tasks SET due_date = $2 WHERE id = $1")
            .bind(task)
            .bind(due)
            .execute(&mut *tx)
            .await
            .expect("move");
        tx.commit().await.expect("commit");
    }

    /// The notifications of `kind` in `slug`, by recipient then id.
    async fn notices(&self, slug: &str, kind: &str) -> Vec<Notice> {
        let mut tx = self.app.context(slug).begin().await.expect("tx");
        let rows = sqlx::query_as(
            "SELECT notification_type, assigned_to_id, title, message, due_date, meta_info
               FROM notifications WHERE notification_type = $1
              ORDER BY assigned_to_id, id",
        )
        .bind(kind)
        .fetch_all(&mut *tx)
        .await
        .expect("notices");
        tx.commit().await.expect("commit");
        rows
    }

    async fn count(&self, slug: &str, sql: &str) -> i64 {
        self.app.tenant_count(slug, sql).await
    }
}

fn counts(reminders: u64, due_soon: u64, overdue: u64, notifications: u64) -> Counts {
    Counts {
        reminders_due: reminders,
        tasks_due_soon: due_soon,
        tasks_overdue: overdue,
        notifications,
    }
}

async fn total(scheduler: &Scheduler, now: DateTime<Utc>) -> Counts {
    let report = scheduler
        .run_once_at(None, now)
        .await
        .expect("scheduler pass");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    report.total
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..100 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn eventually_count(w: &World, sql: &str, expected: i64) {
    for _ in 0..100 {
        if w.count(SLUG, sql).await == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(w.count(SLUG, sql).await, expected, "{sql}");
}

// ----- reminders

#[tokio::test]
async fn a_due_reminder_becomes_one_reminder_due_notice_to_its_creator_and_again_once_moved() {
    let w = world().await;
    let client = w.client(SLUG, Some(w.bob)).await;
    let root = w.app.token(SLUG, "root").await;
    let today = noon().date_naive();
    let (status, _, created) = w
        .app
        .call(
            Method::POST,
            SLUG,
            "/api/v1/reminders/",
            Some(&root),
            Some(json!({
                "title": "Call back", "reminder_date": today.to_string(),
                "reminder_time": "09:30:00", "content_type": 10, "object_id": client,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().expect("id");
    let root_id: i64 = w
        .count(SLUG, "SELECT id FROM users WHERE username = 'root'")
        .await;

    let scheduler = w.scheduler(24);
    assert_eq!(total(&scheduler, noon()).await, counts(1, 0, 0, 1));

    let notices = w.notices(SLUG, "REMINDER_DUE").await;
    assert_eq!(
        notices,
        [Notice {
            notification_type: "REMINDER_DUE".into(),
            assigned_to_id: root_id,
            title: "Reminder: Call back".into(),
            message: "Reminder: Call back".into(),
            due_date: Some(
                today
                    .and_time(NaiveTime::from_hms_opt(9, 30, 0).expect("time"))
                    .and_utc()
            ),
            meta_info: json!({
                "reminder_id": id, "reminder_title": "Call back",
                "reminder_date": today.to_string(), "reminder_time": "09:30:00",
                "content_type": 10, "object_id": client,
            }),
        }]
    );
    let (_, _, reminder) = w
        .app
        .get(SLUG, &format!("/api/v1/reminders/{id}/"), &root)
        .await;
    assert_eq!(reminder["notification_created"], json!(true), "{reminder}");
    // Later passes find nothing more.
    assert_eq!(total(&scheduler, noon()).await, Counts::default());
    assert_eq!(
        total(&scheduler, noon() + TimeDelta::days(2)).await,
        Counts::default()
    );
    assert_eq!(w.notices(SLUG, "REMINDER_DUE").await.len(), 1);

    // Editing only the title keeps it notified; moving it to tomorrow re-arms it once.
    let tomorrow = today.succ_opt().expect("tomorrow");
    for (body, armed) in [
        (json!({"title": "Call back soon"}), true),
        (json!({"reminder_date": tomorrow.to_string()}), false),
    ] {
        let (status, _, reminder) = w
            .app
            .call(
                Method::PATCH,
                SLUG,
                &format!("/api/v1/reminders/{id}/"),
                Some(&root),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{reminder}");
        assert_eq!(reminder["notification_created"], json!(armed), "{reminder}");
    }
    assert_eq!(total(&scheduler, noon()).await, Counts::default());
    assert_eq!(
        total(&scheduler, noon() + TimeDelta::days(1)).await,
        counts(1, 0, 0, 1)
    );
    assert_eq!(w.notices(SLUG, "REMINDER_DUE").await.len(), 2);
}

#[tokio::test]
async fn reminders_due_later_completed_or_without_a_date_produce_no_notice() {
    let w = world().await;
    let client = w.client(SLUG, None).await;
    let today = noon().date_naive();
    let at = |h, m| NaiveTime::from_hms_opt(h, m, 0);
    let a = Some(w.alice);
    let cases = [
        ("earlier today", Some(today), at(11, 59), false, true),
        ("exactly now", Some(today), at(12, 0), false, true),
        ("today without a time", Some(today), None, false, true),
        (
            "yesterday evening",
            today.pred_opt(),
            at(23, 0),
            false,
            true,
        ),
        ("later today", Some(today), at(12, 1), false, false),
        ("tomorrow", today.succ_opt(), None, false, false),
        ("tomorrow morning", today.succ_opt(), at(1, 0), false, false),
        ("completed", today.pred_opt(), None, true, false),
        ("no date", None, at(8, 0), false, false),
        ("no date, no time", None, None, false, false),
    ];
    for (title, date, time, completed, _) in cases {
        let id = w.reminder(SLUG, title, date, time, a, client).await;
        if completed {
            w.exec(
                SLUG,
                &format!("UPDATE reminders SET is_completed = true WHERE id = {id}"),
            )
            .await;
        }
    }

    assert_eq!(total(&w.scheduler(24), noon()).await, counts(4, 0, 0, 4));

    let mut notified: Vec<String> = w
        .notices(SLUG, "REMINDER_DUE")
        .await
        .into_iter()
        .map(|n| n.title)
        .collect();
    notified.sort();
    let mut expected: Vec<String> = cases
        .iter()
        .filter(|c| c.4)
        .map(|c| format!("Reminder: {}", c.0))
        .collect();
    expected.sort();
    assert_eq!(notified, expected);
    assert_eq!(
        w.count(
            SLUG,
            "SELECT count(*) FROM reminders WHERE notification_created"
        )
        .await,
        4,
        "only the notified reminders are marked"
    );
}

#[tokio::test]
async fn a_reminder_without_a_creator_goes_to_the_linked_clients_assignee_and_waits_for_one() {
    let w = world().await;
    let assigned = w.client(SLUG, Some(w.carol)).await;
    let unassigned = w.client(SLUG, None).await;
    let yesterday = noon().date_naive().pred_opt();
    w.reminder(SLUG, "Assigned", yesterday, None, None, assigned)
        .await;
    let waiting = w
        .reminder(SLUG, "Unassigned", yesterday, None, None, unassigned)
        .await;
    let scheduler = w.scheduler(24);

    assert_eq!(total(&scheduler, noon()).await, counts(1, 0, 0, 1));
    let notices = w.notices(SLUG, "REMINDER_DUE").await;
    assert_eq!(notices.len(), 1);
    assert_eq!(
        (notices[0].assigned_to_id, notices[0].title.as_str()),
        (w.carol, "Reminder: Assigned")
    );
    assert_eq!(
        w.count(
            SLUG,
            &format!(
                "SELECT count(*) FROM reminders WHERE id = {waiting} AND notification_created"
            )
        )
        .await,
        0,
        "a reminder nobody can receive stays due"
    );

    // Once its client has an assignee, the waiting reminder goes out.
    w.exec(
        SLUG,
        &format!(
            "UPDATE clients SET assigned_to_id = {} WHERE id = {unassigned}",
            w.alice
        ),
    )
    .await;
    assert_eq!(total(&scheduler, noon()).await, counts(1, 0, 0, 1));
    let notices = w.notices(SLUG, "REMINDER_DUE").await;
    assert_eq!(
        notices
            .iter()
            .map(|n| (n.assigned_to_id, n.title.as_str()))
            .collect::<Vec<_>>(),
        [
            (w.alice, "Reminder: Unassigned"),
            (w.carol, "Reminder: Assigned")
        ]
    );
}

#[tokio::test]
async fn two_instances_ticking_concurrently_write_each_due_reminder_notice_exactly_once() {
    let w = world().await;
    let client = w.client(SLUG, None).await;
    let yesterday = noon().date_naive().pred_opt();
    // More than one batch (500) of due reminders.
    for i in 0..620 {
        w.reminder(
            SLUG,
            &format!("R{i}"),
            yesterday,
            None,
            Some(w.alice),
            client,
        )
        .await;
    }
    let one = w.scheduler(24);
    let two = w.other_process(24).await;

    let (a, b) = tokio::join!(one.run_once_at(None, noon()), two.run_once_at(None, noon()));
    let (a, b) = (a.expect("first"), b.expect("second"));
    assert!(a.failed.is_empty() && b.failed.is_empty());
    assert_eq!(a.total.reminders_due + b.total.reminders_due, 620);
    assert_eq!(a.total.notifications + b.total.notifications, 620);
    // And again, concurrently: nothing left.
    let (a, b) = tokio::join!(one.run_once_at(None, noon()), two.run_once_at(None, noon()));
    assert!(a.expect("first").total.is_empty() && b.expect("second").total.is_empty());

    assert_eq!(
        w.count(
            SLUG,
            "SELECT count(*) FROM notifications WHERE notification_type = 'REMINDER_DUE'"
        )
        .await,
        620
    );
    assert_eq!(
        w.count(
            SLUG,
            "SELECT count(*) FROM (SELECT meta_info->'reminder_id' FROM notifications
              GROUP BY 1 HAVING count(*) > 1) d"
        )
        .await,
        0,
        "no reminder is notified twice"
    );
}

#[tokio::test]
async fn two_run_once_processes_at_the_same_time_write_each_due_reminder_notice_exactly_once() {
    let w = world().await;
    let client = w.client(SLUG, Some(w.bob)).await;
    let yesterday = noon().date_naive().pred_opt();
    for i in 0..300 {
        w.reminder(SLUG, &format!("R{i}"), yesterday, None, None, client)
            .await;
    }
    let overdue = w
        .task(
            "Late",
            Utc::now() - TimeDelta::hours(1),
            "PENDING",
            Some(w.alice),
            None,
        )
        .await;

    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_leopard"))
            .args(["scheduler", "run-once", "--tenant", SLUG])
            .env("LEOPARD_DATABASE_URL", w.app.tenancy.db.url())
            .env("LEOPARD_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary runs")
    };
    let (first, second) = (spawn(), spawn());
    let mut totals = Vec::new();
    for child in [first, second] {
        let output = child.wait_with_output().expect("the binary ends");
        let out = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{out}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            [
                "TENANT",
                "REMINDERS",
                "DUE_SOON",
                "OVERDUE",
                "NOTIFICATIONS"
            ]
        );
        assert!(lines[1].starts_with("acme "), "{out}");
        let total: Vec<u64> = lines[2]
            .split_whitespace()
            .skip(1)
            .map(|n| n.parse().expect("a count"))
            .collect();
        assert!(lines[2].starts_with("TOTAL"), "{out}");
        totals.push(total);
    }
    let sum: Vec<u64> = (0..4).map(|i| totals[0][i] + totals[1][i]).collect();
    assert_eq!(sum, [300, 0, 1, 301], "{totals:?}");
    assert_eq!(w.notices(SLUG, "REMINDER_DUE").await.len(), 300);
    let overdue_notices = w.notices(SLUG, "TASK_OVERDUE").await;
    assert_eq!(overdue_notices.len(), 1);
    assert_eq!(overdue_notices[0].meta_info["task_id"], json!(overdue));
}

#[tokio::test]
async fn scheduler_run_once_refuses_an_unknown_tenant() {
    let w = world().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_leopard"))
        .args(["scheduler", "run-once", "--tenant", "nope"])
        .env("LEOPARD_DATABASE_URL", w.app.tenancy.db.url())
        .env("LEOPARD_LOG", "warn")
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("tenant not found: nope"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

// ----- tasks

#[tokio::test]
async fn an_overdue_task_produces_one_task_overdue_across_repeated_ticks() {
    let w = world().await;
    let due = noon() - TimeDelta::minutes(90);
    let task = w
        .task("File visa", due, "IN_PROGRESS", Some(w.alice), None)
        .await;
    let scheduler = w.scheduler(24);

    assert_eq!(total(&scheduler, noon()).await, counts(0, 0, 1, 1));
    for minutes in [0, 1, 60, 60 * 24 * 3] {
        assert_eq!(
            total(&scheduler, noon() + TimeDelta::minutes(minutes)).await,
            Counts::default()
        );
    }
    assert_eq!(
        w.notices(SLUG, "TASK_OVERDUE").await,
        [Notice {
            notification_type: "TASK_OVERDUE".into(),
            assigned_to_id: w.alice,
            title: "Task Overdue: File visa".into(),
            message: format!(
                "Task \"File visa\" was due {}.",
                due.format("on %Y-%m-%d at %H:%M UTC")
            ),
            due_date: Some(due),
            meta_info: json!({
                "task_id": task,
                "due_date": due.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
                "priority": "HIGH", "entity_type": "task", "entity_id": task,
            }),
        }]
    );
    assert!(w.notices(SLUG, "TASK_DUE_SOON").await.is_empty());
}

#[tokio::test]
async fn moving_an_overdue_tasks_due_date_later_re_arms_its_notices_once() {
    let w = world().await;
    let task = w
        .task(
            "Renew",
            noon() - TimeDelta::hours(1),
            "PENDING",
            Some(w.bob),
            None,
        )
        .await;
    let scheduler = w.scheduler(24);
    assert_eq!(total(&scheduler, noon()).await, counts(0, 0, 1, 1));

    // Moved to tomorrow morning: due soon once, then overdue once more when it passes.
    let moved = noon() + TimeDelta::hours(20);
    w.move_task(task, moved).await;
    assert_eq!(total(&scheduler, noon()).await, counts(0, 1, 0, 1));
    assert_eq!(total(&scheduler, noon()).await, Counts::default());
    let later = noon() + TimeDelta::hours(21);
    assert_eq!(total(&scheduler, later).await, counts(0, 0, 1, 1));
    assert_eq!(total(&scheduler, later).await, Counts::default());

    let overdue = w.notices(SLUG, "TASK_OVERDUE").await;
    assert_eq!(
        overdue.iter().map(|n| n.due_date).collect::<Vec<_>>(),
        [Some(noon() - TimeDelta::hours(1)), Some(moved)]
    );
    let soon = w.notices(SLUG, "TASK_DUE_SOON").await;
    assert_eq!(soon.len(), 1);
    assert_eq!(soon[0].assigned_to_id, w.bob);
    assert_eq!(soon[0].title, "Task Due Soon: Renew");
    assert_eq!(
        soon[0].message,
        format!(
            "Task \"Renew\" is due {}.",
            moved.format("on %Y-%m-%d at %H:%M UTC")
        )
    );
    assert_eq!(soon[0].due_date, Some(moved));
}

#[tokio::test]
async fn only_tasks_due_within_the_window_get_a_due_soon_notice() {
    let w = world().await;
    let now = noon();
    for (title, hours) in [
        ("in one minute", TimeDelta::minutes(1)),
        ("in five hours", TimeDelta::hours(5)),
        ("at the window's end", TimeDelta::hours(6)),
        (
            "just past the window",
            TimeDelta::hours(6) + TimeDelta::seconds(1),
        ),
        ("next week", TimeDelta::days(7)),
        ("exactly now", TimeDelta::zero()),
    ] {
        w.task(title, now + hours, "PENDING", Some(w.carol), None)
            .await;
    }
    // A 6-hour window.
    let scheduler = w.scheduler(6);
    assert_eq!(total(&scheduler, now).await, counts(0, 3, 0, 3));
    assert_eq!(total(&scheduler, now).await, Counts::default());
    let soon: Vec<String> = w
        .notices(SLUG, "TASK_DUE_SOON")
        .await
        .into_iter()
        .map(|n| n.title)
        .collect();
    assert_eq!(
        soon,
        [
            "Task Due Soon: in one minute",
            "Task Due Soon: in five hours",
            "Task Due Soon: at the window's end"
        ]
    );
    // An hour later the next one enters the window; the one due "exactly now" is overdue.
    assert_eq!(
        total(&scheduler, now + TimeDelta::hours(1)).await,
        counts(0, 1, 2, 3)
    );
    let overdue: Vec<String> = w
        .notices(SLUG, "TASK_OVERDUE")
        .await
        .into_iter()
        .map(|n| n.title)
        .collect();
    assert_eq!(
        overdue,
        ["Task Overdue: exactly now", "Task Overdue: in one minute"]
    );
}

#[tokio::test]
async fn completed_and_cancelled_tasks_are_never_notified() {
    let w = world().await;
    for (status, due) in [
        ("COMPLETED", noon() - TimeDelta::hours(2)),
        ("CANCELLED", noon() - TimeDelta::hours(2)),
        ("COMPLETED", noon() + TimeDelta::hours(2)),
        ("CANCELLED", noon() + TimeDelta::hours(2)),
    ] {
        w.task(status, due, status, Some(w.alice), None).await;
        w.task(status, due, status, None, Some(w.org.a)).await;
    }
    // A task completed after its due-soon notice gets no overdue notice.
    let done_later = w
        .task(
            "done later",
            noon() + TimeDelta::hours(1),
            "PENDING",
            Some(w.alice),
            None,
        )
        .await;
    let scheduler = w.scheduler(24);
    assert_eq!(total(&scheduler, noon()).await, counts(0, 1, 0, 1));
    w.exec(
        SLUG,
        &format!(
            "UPDATE tasks SET status = 'COMPLETED', completed_at = now() WHERE id = {done_later}"
        ),
    )
    .await;
    assert_eq!(
        total(&scheduler, noon() + TimeDelta::hours(3)).await,
        Counts::default()
    );
    assert!(w.notices(SLUG, "TASK_OVERDUE").await.is_empty());
    assert_eq!(w.notices(SLUG, "TASK_DUE_SOON").await.len(), 1);
}

#[tokio::test]
async fn a_branch_pool_task_notifies_every_active_member_of_its_branch_and_an_unassigned_one_waits()
{
    let w = world().await;
    w.task(
        "Pool",
        noon() - TimeDelta::hours(1),
        "PENDING",
        None,
        Some(w.org.a),
    )
    .await;
    let nobody = w
        .task(
            "Nobody's",
            noon() - TimeDelta::hours(1),
            "PENDING",
            None,
            None,
        )
        .await;
    let scheduler = w.scheduler(24);

    assert_eq!(total(&scheduler, noon()).await, counts(0, 0, 1, 2));
    let recipients: Vec<i64> = w
        .notices(SLUG, "TASK_OVERDUE")
        .await
        .into_iter()
        .map(|n| n.assigned_to_id)
        .collect();
    let mut expected = vec![w.alice, w.bob];
    expected.sort();
    assert_eq!(
        recipients, expected,
        "eve is inactive, carol is in branch B"
    );
    assert!(!recipients.contains(&w.eve) && !recipients.contains(&w.carol));

    // Given to carol later, the unassigned overdue task is notified to her, once.
    w.exec(
        SLUG,
        &format!(
            "UPDATE tasks SET assigned_to_id = {} WHERE id = {nobody}",
            w.carol
        ),
    )
    .await;
    assert_eq!(total(&scheduler, noon()).await, counts(0, 0, 1, 1));
    assert_eq!(total(&scheduler, noon()).await, Counts::default());
    let carol: Vec<Value> = w
        .notices(SLUG, "TASK_OVERDUE")
        .await
        .into_iter()
        .filter(|n| n.assigned_to_id == w.carol)
        .map(|n| n.meta_info["task_id"].clone())
        .collect();
    assert_eq!(carol, [json!(nobody)]);
}

// ----- tenants

#[tokio::test]
async fn suspended_tenants_are_skipped() {
    let w = world_in(&["acme", "globex"]).await;
    for slug in ["acme", "globex"] {
        let client = w.client(slug, None).await;
        w.reminder(
            slug,
            "Due",
            noon().date_naive().pred_opt(),
            None,
            Some(w.alice),
            client,
        )
        .await;
    }
    w.app
        .tenancy
        .provisioner
        .set_status(
            &TenantSlug::parse("globex").expect("slug"),
            SubscriptionStatus::Suspended,
        )
        .await
        .expect("suspend");
    w.app.registry.reload().await.expect("reload");
    let scheduler = w.scheduler(24);

    let report = scheduler.run_once_at(None, noon()).await.expect("pass");
    assert_eq!(report.tenants, [("acme".to_owned(), counts(1, 0, 0, 1))]);
    assert_eq!(w.notices("acme", "REMINDER_DUE").await.len(), 1);
    assert!(w.notices("globex", "REMINDER_DUE").await.is_empty());
    let refused = scheduler
        .run_once_at(Some("globex"), noon())
        .await
        .expect_err("a suspended tenant is refused");
    assert!(refused.to_string().contains("suspended"), "{refused}");

    // Activated again, it is processed.
    w.app
        .tenancy
        .provisioner
        .set_status(
            &TenantSlug::parse("globex").expect("slug"),
            SubscriptionStatus::Active,
        )
        .await
        .expect("activate");
    w.app.registry.reload().await.expect("reload");
    let report = scheduler.run_once_at(None, noon()).await.expect("pass");
    assert_eq!(
        report.tenants,
        [
            ("acme".to_owned(), Counts::default()),
            ("globex".to_owned(), counts(1, 0, 0, 1))
        ]
    );
}

// ----- the leader loop

/// The pid of the backend holding the scheduler lock in this database, if any.
async fn lock_holder(w: &World) -> Option<i32> {
    sqlx::query_scalar(
        "SELECT l.pid
           FROM pg_locks l
           JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
            AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND ((l.classid::bigint << 32) | l.objid::bigint) = $1
            AND a.application_name = $2",
    )
    .bind(LOCK_KEY)
    .bind(LOCK_APPLICATION_NAME)
    .fetch_optional(w.app.tenancy.db.pool())
    .await
    .expect("pg_locks")
}

/// Waits (up to 5 s) until nobody holds the scheduler lock: a closed session's backend ends
/// shortly after its client has gone.
async fn assert_lock_released(w: &World) {
    for _ in 0..100 {
        if lock_holder(w).await.is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the scheduler lock is still held: {:?}",
        lock_holder(w).await
    );
}

fn start(scheduler: Scheduler) -> RunningScheduler {
    Arc::new(scheduler).start()
}

#[tokio::test]
async fn two_running_loops_elect_one_leader_which_notifies_each_due_reminder_once() {
    let w = world().await;
    let one = start(w.scheduler(24));
    let two = start(w.other_process(24).await);
    eventually("one instance leads", || one.is_leader() || two.is_leader()).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        one.is_leader() != two.is_leader(),
        "exactly one leader: {} {}",
        one.is_leader(),
        two.is_leader()
    );
    let (leader, follower) = if one.is_leader() {
        (&one, &two)
    } else {
        (&two, &one)
    };
    assert!(leader.ticks() >= 2);
    assert_eq!(follower.ticks(), 0, "a follower never ticks");
    assert!(lock_holder(&w).await.is_some());

    let client = w.client(SLUG, None).await;
    let yesterday = Utc::now().date_naive().pred_opt();
    for i in 0..40 {
        w.reminder(SLUG, &format!("R{i}"), yesterday, None, Some(w.bob), client)
            .await;
    }
    let overdue = w
        .task(
            "Late",
            Utc::now() - TimeDelta::hours(1),
            "PENDING",
            Some(w.bob),
            None,
        )
        .await;
    eventually_count(
        &w,
        "SELECT count(*) FROM notifications WHERE notification_type = 'REMINDER_DUE'",
        40,
    )
    .await;
    eventually_count(
        &w,
        "SELECT count(*) FROM notifications WHERE notification_type = 'TASK_OVERDUE'",
        1,
    )
    .await;
    // Several more ticks change nothing.
    let ticks = leader.ticks();
    eventually("three more ticks", || leader.ticks() >= ticks + 3).await;
    assert_eq!(w.notices(SLUG, "REMINDER_DUE").await.len(), 40);
    let late = w.notices(SLUG, "TASK_OVERDUE").await;
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].meta_info["task_id"], json!(overdue));

    one.shutdown().await;
    two.shutdown().await;
    assert_lock_released(&w).await;
}

#[tokio::test]
async fn when_the_leaders_lock_connection_closes_the_other_instance_takes_over() {
    let w = world().await;
    // The first instance ticks less often, so the second one retries first after the loss.
    let first = start(Scheduler::new(
        w.app.tenancy.db.pool().clone(),
        Arc::clone(&w.app.registry),
        SchedulerConfig {
            interval: Duration::from_millis(300),
            ..config(24)
        },
    ));
    eventually("the first instance leads", || first.is_leader()).await;
    let second = start(w.other_process(24).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(first.is_leader() && !second.is_leader());
    assert_eq!(second.ticks(), 0);

    // The leader's connection dies (as when its process or network goes away).
    let pid = lock_holder(&w).await.expect("someone holds the lock");
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(w.app.tenancy.db.pool())
        .await
        .expect("terminate");
    assert!(killed);

    eventually("the second instance leads", || second.is_leader()).await;
    eventually("the first instance notices it lost the lock", || {
        !first.is_leader()
    })
    .await;
    let new_holder = lock_holder(&w).await.expect("the lock is held again");
    assert_ne!(new_holder, pid);

    // The new leader does the work, and the old one stays a follower.
    let client = w.client(SLUG, None).await;
    w.reminder(
        SLUG,
        "After failover",
        Utc::now().date_naive().pred_opt(),
        None,
        Some(w.alice),
        client,
    )
    .await;
    eventually_count(
        &w,
        "SELECT count(*) FROM notifications WHERE notification_type = 'REMINDER_DUE'",
        1,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(second.is_leader() && !first.is_leader());
    assert_eq!(w.notices(SLUG, "REMINDER_DUE").await.len(), 1);

    second.shutdown().await;
    first.shutdown().await;
}

#[tokio::test]
async fn two_server_processes_notify_a_due_reminder_and_an_overdue_task_once() {
    let w = world().await;
    let logs = tempfile::tempdir().expect("temp dir");
    let spawn = |n: usize| {
        let data_dir = logs.path().join(format!("data{n}"));
        let log = std::fs::File::create(logs.path().join(format!("serve{n}.log"))).expect("log");
        std::process::Command::new(env!("CARGO_BIN_EXE_leopard"))
            .args(["serve", "--bind", "127.0.0.1:0", "--pool-size", "4"])
            .args(["--scheduler-interval-secs", "1", "--data-dir"])
            .arg(&data_dir)
            .env("LEOPARD_DATABASE_URL", w.app.tenancy.db.url())
            .env("LEOPARD_LOG", "info,sqlx=warn,tower_http=warn")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the binary runs")
    };
    let mut servers = [spawn(1), spawn(2)];
    let client = w.client(SLUG, Some(w.carol)).await;
    w.reminder(
        SLUG,
        "Due now",
        Some(Utc::now().date_naive()),
        None,
        None,
        client,
    )
    .await;
    w.task(
        "Late",
        Utc::now() - TimeDelta::minutes(5),
        "PENDING",
        Some(w.alice),
        None,
    )
    .await;
    for kind in ["REMINDER_DUE", "TASK_OVERDUE"] {
        for _ in 0..200 {
            if !w.notices(SLUG, kind).await.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // A few more ticks of both processes.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let reminders = w.notices(SLUG, "REMINDER_DUE").await;
    let overdue = w.notices(SLUG, "TASK_OVERDUE").await;
    assert_eq!(
        reminders
            .iter()
            .map(|n| n.assigned_to_id)
            .collect::<Vec<_>>(),
        [w.carol]
    );
    assert_eq!(
        overdue.iter().map(|n| n.assigned_to_id).collect::<Vec<_>>(),
        [w.alice]
    );
    assert!(lock_holder(&w).await.is_some());

    for server in &mut servers {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }
    for server in &mut servers {
        let exit = server.wait().expect("the server stops");
        assert!(exit.success(), "{exit:?}");
    }
    assert_lock_released(&w).await;
    let leaders = (1..=2)
        .map(|n| std::fs::read_to_string(logs.path().join(format!("serve{n}.log"))).expect("log"))
        .filter(|log| log.contains("scheduler leading"))
        .count();
    assert_eq!(leaders, 1, "exactly one process led");
}
