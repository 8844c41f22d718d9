//! The scheduler inside the server: due reminders become `REMINDER_DUE` notifications, open
//! tasks nearing their due date `TASK_DUE_SOON`, open tasks past it `TASK_OVERDUE`. The
//! notification rows reach live streams like any other (`crate::notify::notify`).
//!
//! - **One leader.** Every `leopard serve` runs the loop, but only the process holding the
//!   session advisory lock [`LOCK_KEY`] ticks. The lock lives on a dedicated connection (outside
//!   the pool, `application_name` [`LOCK_APPLICATION_NAME`]) for as long as the process leads;
//!   the others try `pg_try_advisory_lock` again on each tick. When the leader's connection dies
//!   PostgreSQL releases the lock and the next instance to tick takes over; the old leader finds
//!   its connection dead (a ping before each tick), becomes a follower and competes again from
//!   its following tick on.
//! - **Exactly once without the lock.** Leadership only avoids duplicate work: correctness does
//!   not depend on it. Each job is one statement per tenant that claims its rows with
//!   `FOR UPDATE SKIP LOCKED` and marks them (`reminders.notification_created`,
//!   `tasks.due_soon_notified_for` / `tasks.overdue_notified_for` = the due date notified) in the
//!   transaction that writes the notifications; a concurrent claimer skips locked rows and
//!   re-checks committed ones. Every notice also carries a deterministic `event_id` (a v8 UUID
//!   from SHA-256 of kind, id and due date), so `notify()`'s unique key refuses a duplicate
//!   even if a marker were reset. `leopard scheduler run-once` therefore works with or without
//!   a running server.
//! - **Per tick**: the registry snapshot's serving tenants (suspended and inactive ones are
//!   skipped), `concurrency` tenants at a time; per tenant three jobs, each its own tenant
//!   transaction; a job claims at most [`BATCH`] rows per statement and repeats while batches
//!   come back full.
//!
//! Rules (`original-backend.md` §6.4 for reminders):
//! - a reminder is due when not completed, not yet notified, dated, and its date is before today
//!   (UTC), or today with no time or a time ≤ now. Recipient: its creator, else the linked
//!   client's assignee. A due reminder with neither stays due (and unmarked) until it has one.
//! - a task is due soon when `PENDING`/`IN_PROGRESS` and now < due ≤ now + window, overdue when
//!   `PENDING`/`IN_PROGRESS` and due < now. Recipients: its assignee; for a branch-pool task,
//!   every active member of that branch (`user_branches`: everyone who may claim it). A task
//!   assigned to nobody is not claimed, so it is notified once someone gets it (while still due).
//!   Completed and cancelled tasks never get notices.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use futures::StreamExt as _;
use leopard_tenancy::{TenancyError, TenantContext, TenantRegistry};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::Connection as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::api::crm::reminders::CLIENT_CONTENT_TYPE;
use crate::notify::{notify, NewNotification, NotificationType};

/// The session advisory lock key of the scheduler's leader (`"leopsch"` in ASCII). Advisory locks
/// are per database: every Leopard process on one database competes for it.
pub const LOCK_KEY: i64 = 0x006c_656f_7073_6368;

/// `application_name` of the leader's lock connection (find it in `pg_stat_activity`).
pub const LOCK_APPLICATION_NAME: &str = "leopard-scheduler-lock";

/// Rows a job claims per statement.
pub const BATCH: i64 = 500;

/// How long the lock connection may take to connect, answer a ping or take the lock.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The scheduler's settings.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Time between ticks (`--scheduler-interval-secs`, default 60 s).
    pub interval: Duration,
    /// How far ahead a task counts as due soon (`--task-due-soon-hours`, default 24 h).
    pub due_soon_window: TimeDelta,
    /// Tenants processed at once (`--scheduler-concurrency`, default 4).
    pub concurrency: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            due_soon_window: TimeDelta::hours(24),
            concurrency: 4,
        }
    }
}

/// What a tick did in one tenant (or in all of them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Due reminders claimed (each marked `notification_created`).
    pub reminders_due: u64,
    /// Tasks whose due-soon notice went out (per task and due date).
    pub tasks_due_soon: u64,
    /// Tasks whose overdue notice went out (per task and due date).
    pub tasks_overdue: u64,
    /// Notification rows written.
    pub notifications: u64,
}

impl Counts {
    /// Adds `other` to these counts.
    pub fn add(&mut self, other: Counts) {
        self.reminders_due += other.reminders_due;
        self.tasks_due_soon += other.tasks_due_soon;
        self.tasks_overdue += other.tasks_overdue;
        self.notifications += other.notifications;
    }

    /// Nothing was done.
    pub fn is_empty(&self) -> bool {
        *self == Counts::default()
    }
}

/// What one pass over the tenants did.
#[derive(Debug, Clone, Default)]
pub struct TickReport {
    /// Per tenant (slug order) that was processed without error.
    pub tenants: Vec<(String, Counts)>,
    /// Tenants whose jobs failed (slug, error); their other jobs' work may have committed.
    pub failed: Vec<(String, String)>,
    /// The sum over `tenants`.
    pub total: Counts,
}

/// The scheduler: [`Scheduler::run_once`] for one pass, [`Scheduler::start`] for the leader loop.
#[derive(Debug)]
pub struct Scheduler {
    pool: PgPool,
    registry: Arc<TenantRegistry>,
    config: SchedulerConfig,
}

impl Scheduler {
    /// A scheduler over `pool` (tenant transactions and the lock connection's settings) and the
    /// tenants of `registry`.
    pub fn new(pool: PgPool, registry: Arc<TenantRegistry>, config: SchedulerConfig) -> Self {
        Self {
            pool,
            registry,
            config,
        }
    }

    /// The settings.
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// One pass now over every serving tenant, or only `tenant` (a slug). Takes no lock: safe
    /// to run alongside a leader. Fails for an unknown or non-serving `tenant`.
    pub async fn run_once(&self, tenant: Option<&str>) -> anyhow::Result<TickReport> {
        self.run_once_at(tenant, Utc::now()).await
    }

    /// [`Scheduler::run_once`] as if the time were `now` (tests move the clock this way).
    pub async fn run_once_at(
        &self,
        tenant: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<TickReport> {
        let tenants = match tenant {
            Some(slug) => {
                let Some(info) = self.registry.resolve_slug(slug) else {
                    bail!("tenant not found: {slug}");
                };
                if !info.is_serving() {
                    bail!("tenant {slug} is suspended or inactive: the scheduler skips it");
                }
                vec![info]
            }
            None => self
                .registry
                .tenants()
                .into_iter()
                .filter(|t| t.is_serving())
                .collect(),
        };
        let mut results: Vec<(String, Result<Counts, TenancyError>)> =
            futures::stream::iter(tenants)
                .map(|info| {
                    let context = self.registry.context(info);
                    async move {
                        let slug = context.tenant().slug.as_str().to_owned();
                        (slug, self.tick_tenant(&context, now).await)
                    }
                })
                .buffer_unordered(self.config.concurrency.max(1))
                .collect()
                .await;
        results.sort_by(|a, b| a.0.cmp(&b.0));
        let mut report = TickReport::default();
        for (slug, result) in results {
            match result {
                Ok(counts) => {
                    report.total.add(counts);
                    report.tenants.push((slug, counts));
                }
                Err(err) => report.failed.push((slug, err.to_string())),
            }
        }
        Ok(report)
    }

    /// The three jobs in one tenant, each in its own transaction(s).
    pub async fn tick_tenant(
        &self,
        context: &TenantContext,
        now: DateTime<Utc>,
    ) -> Result<Counts, TenancyError> {
        let mut counts = Counts::default();
        loop {
            let (claimed, written) = reminders_job(context, now).await?;
            counts.reminders_due += claimed;
            counts.notifications += written;
            if claimed < BATCH as u64 {
                break;
            }
        }
        for kind in [TaskNotice::Overdue, TaskNotice::DueSoon] {
            loop {
                let (claimed, written) =
                    task_job(context, kind, now, self.config.due_soon_window).await?;
                match kind {
                    TaskNotice::Overdue => counts.tasks_overdue += claimed,
                    TaskNotice::DueSoon => counts.tasks_due_soon += claimed,
                }
                counts.notifications += written;
                if claimed < BATCH as u64 {
                    break;
                }
            }
        }
        Ok(counts)
    }

    /// Starts the leader loop: tick every `interval` while holding [`LOCK_KEY`], else try to
    /// take it each interval. The first attempt is immediate.
    pub fn start(self: Arc<Self>) -> RunningScheduler {
        let (stop_tx, stop_rx) = watch::channel(false);
        let state = Arc::new(LoopState::default());
        let task = tokio::spawn(Arc::clone(&self).run_loop(stop_rx, Arc::clone(&state)));
        RunningScheduler {
            stop: stop_tx,
            task,
            state,
        }
    }

    async fn run_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>, state: Arc<LoopState>) {
        let mut ticker = tokio::time::interval(self.config.interval.max(Duration::from_millis(10)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut lock: Option<PgConnection> = None;
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = ticker.tick() => {}
            }
            lock = self.lead(lock, &state).await;
            if lock.is_none() {
                continue;
            }
            match self.run_once(None).await {
                Ok(report) => log_report(&report),
                Err(err) => tracing::warn!(error = %err, "scheduler tick failed"),
            }
            state.ticks.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(conn) = lock {
            // Closing the session releases the lock at once.
            if let Err(err) = conn.close().await {
                tracing::debug!(error = %err, "closing the scheduler lock connection");
            }
            tracing::info!("scheduler stopped leading");
        }
        state.leading.store(false, Ordering::Relaxed);
    }

    /// Keeps leadership if `held` still answers, else tries to take it; returns the lock
    /// connection while leading.
    async fn lead(&self, held: Option<PgConnection>, state: &LoopState) -> Option<PgConnection> {
        if let Some(mut conn) = held {
            let ping = tokio::time::timeout(LOCK_TIMEOUT, conn.ping()).await;
            if matches!(ping, Ok(Ok(()))) {
                return Some(conn);
            }
            state.leading.store(false, Ordering::Relaxed);
            tracing::warn!("the scheduler's lock connection is gone; no longer leading");
            // Retry from the next tick on, so a waiting instance gets the first chance.
            return None;
        }
        let options = self
            .pool
            .connect_options()
            .as_ref()
            .clone()
            .application_name(LOCK_APPLICATION_NAME);
        let attempt = async {
            let mut conn = PgConnection::connect_with(&options).await?;
            let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(LOCK_KEY)
                .fetch_one(&mut conn)
                .await?;
            if locked {
                Ok(Some(conn))
            } else {
                conn.close().await?;
                Ok::<_, sqlx::Error>(None)
            }
        };
        match tokio::time::timeout(LOCK_TIMEOUT, attempt).await {
            Ok(Ok(Some(conn))) => {
                state.leading.store(true, Ordering::Relaxed);
                tracing::info!("scheduler leading: this process runs the scheduled jobs");
                Some(conn)
            }
            Ok(Ok(None)) => {
                tracing::debug!("another process leads the scheduler");
                None
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "could not try the scheduler lock");
                None
            }
            Err(_) => {
                tracing::warn!("trying the scheduler lock timed out");
                None
            }
        }
    }
}

/// Counts at debug per tenant, totals at info when something happened (debug otherwise),
/// failures at warn.
fn log_report(report: &TickReport) {
    for (tenant, c) in &report.tenants {
        tracing::debug!(
            tenant,
            reminders_due = c.reminders_due,
            tasks_due_soon = c.tasks_due_soon,
            tasks_overdue = c.tasks_overdue,
            notifications = c.notifications,
            "scheduler tick in tenant"
        );
    }
    for (tenant, error) in &report.failed {
        tracing::warn!(tenant, error, "scheduler jobs failed in tenant");
    }
    let t = report.total;
    if t.is_empty() && report.failed.is_empty() {
        tracing::debug!(
            tenants = report.tenants.len(),
            "scheduler tick: nothing due"
        );
    } else {
        tracing::info!(
            tenants = report.tenants.len(),
            failed = report.failed.len(),
            reminders_due = t.reminders_due,
            tasks_due_soon = t.tasks_due_soon,
            tasks_overdue = t.tasks_overdue,
            notifications = t.notifications,
            "scheduler tick"
        );
    }
}

#[derive(Debug, Default)]
struct LoopState {
    leading: AtomicBool,
    ticks: AtomicU64,
}

/// The running leader loop of [`Scheduler::start`].
#[derive(Debug)]
pub struct RunningScheduler {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    state: Arc<LoopState>,
}

impl RunningScheduler {
    /// Whether this instance currently holds the lock.
    pub fn is_leader(&self) -> bool {
        self.state.leading.load(Ordering::Relaxed)
    }

    /// Ticks this instance ran as leader.
    pub fn ticks(&self) -> u64 {
        self.state.ticks.load(Ordering::Relaxed)
    }

    /// Stops the loop (a tick in progress finishes first) and releases the lock.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(err) = self.task.await {
            tracing::warn!(error = %err, "the scheduler task ended abnormally");
        }
    }
}

// ----- jobs

/// A reminder claimed by [`reminders_job`].
#[derive(Debug, sqlx::FromRow)]
struct DueReminder {
    id: i64,
    title: String,
    reminder_date: NaiveDate,
    reminder_time: Option<NaiveTime>,
    content_type_id: i32,
    object_id: i64,
    recipient_id: i64,
}

/// Claims up to [`BATCH`] due reminders that have a recipient, marks them notified and writes
/// their `REMINDER_DUE` notices, in one transaction. Returns (claimed, written).
async fn reminders_job(
    context: &TenantContext,
    now: DateTime<Utc>,
) -> Result<(u64, u64), TenancyError> {
    let mut tx = context.begin().await?;
    let due: Vec<DueReminder> = sqlx::query_as(
        "WITH due AS (
             SELECT r.id, coalesce(r.created_by_id, c.assigned_to_id) AS recipient_id
               FROM reminders r
               LEFT JOIN clients c ON r.content_type_id = $4 AND c.id = r.object_id
              WHERE NOT r.notification_created
                AND NOT r.is_completed
                AND r.reminder_date IS NOT NULL
                AND (r.reminder_date < $1
                     OR (r.reminder_date = $1 AND (r.reminder_time IS NULL OR r.reminder_time <= $2)))
                AND coalesce(r.created_by_id, c.assigned_to_id) IS NOT NULL
              ORDER BY r.reminder_date, r.reminder_time NULLS FIRST, r.id
              LIMIT $3
                FOR UPDATE OF r SKIP LOCKED
         )
         UPDATE reminders r
            SET notification_created = true
           FROM due
          WHERE r.id = due.id
         RETURNING r.id, r.title, r.reminder_date, r.reminder_time, r.content_type_id,
                   r.object_id, due.recipient_id",
    )
    .bind(now.date_naive())
    .bind(now.time())
    .bind(BATCH)
    .bind(CLIENT_CONTENT_TYPE)
    .fetch_all(&mut *tx)
    .await?;
    let mut written = 0;
    for r in &due {
        let title = format!("Reminder: {}", r.title);
        let mut notice = NewNotification::new(
            NotificationType::ReminderDue,
            r.recipient_id,
            title.clone(),
            title,
        );
        let time = r.reminder_time.unwrap_or(NaiveTime::MIN);
        notice.due_date = Some(r.reminder_date.and_time(time).and_utc());
        let date = r.reminder_date.format("%Y-%m-%d").to_string();
        let time_text = r.reminder_time.map(|t| t.format("%H:%M:%S").to_string());
        notice.meta_info = json!({
            "reminder_id": r.id,
            "reminder_title": r.title,
            "reminder_date": date,
            "reminder_time": time_text,
            "content_type": r.content_type_id,
            "object_id": r.object_id,
        });
        notice.event_id = Some(notice_key(
            "reminder",
            r.id,
            &format!("{date}T{}", time_text.as_deref().unwrap_or("")),
        ));
        if notify(&mut tx, notice).await?.is_some() {
            written += 1;
        }
    }
    tx.commit().await?;
    Ok((due.len() as u64, written))
}

/// The two task notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaskNotice {
    DueSoon,
    Overdue,
}

/// A (task, recipient) row claimed by [`task_job`]; `recipient_id` is `None` for a pool task
/// whose branch has no active member.
#[derive(Debug, sqlx::FromRow)]
struct ClaimedTask {
    id: i64,
    title: String,
    due_date: DateTime<Utc>,
    priority: String,
    recipient_id: Option<i64>,
}

/// Claims up to [`BATCH`] open tasks due soon (or overdue) whose current due date was not
/// notified yet, sets their marker and notifies their recipients, in one transaction. Returns
/// (tasks claimed, notifications written).
async fn task_job(
    context: &TenantContext,
    kind: TaskNotice,
    now: DateTime<Utc>,
    window: TimeDelta,
) -> Result<(u64, u64), TenancyError> {
    // $1 = now, $2 = batch, $3 = end of the due-soon window. The predicate repeats the partial
    // index's (`0010_scheduler.sql`) so the index serves it.
    let (marker, due) = match kind {
        TaskNotice::DueSoon => (
            "due_soon_notified_for",
            "o.due_date > $1 AND o.due_date <= $3",
        ),
        TaskNotice::Overdue => ("overdue_notified_for", "o.due_date < $1"),
    };
    let sql = format!(
        "WITH claimed AS (
             UPDATE tasks t
                SET {marker} = t.due_date
              WHERE t.id IN (
                    SELECT o.id
                      FROM tasks o
                     WHERE o.status IN ('PENDING', 'IN_PROGRESS')
                       AND (o.assigned_to_id IS NOT NULL OR o.branch_id IS NOT NULL)
                       AND o.{marker} IS DISTINCT FROM o.due_date
                       AND {due}
                     ORDER BY o.due_date, o.id
                     LIMIT $2
                       FOR UPDATE SKIP LOCKED)
             RETURNING t.id, t.title, t.due_date, t.priority, t.assigned_to_id, t.branch_id
         )
         SELECT c.id, c.title, c.due_date, c.priority, r.user_id AS recipient_id
           FROM claimed c
           LEFT JOIN LATERAL (
                SELECT c.assigned_to_id AS user_id
                 WHERE c.assigned_to_id IS NOT NULL
                UNION
                SELECT ub.user_id
                  FROM user_branches ub
                  JOIN users u ON u.id = ub.user_id AND u.is_active
                 WHERE c.assigned_to_id IS NULL AND ub.branch_id = c.branch_id
           ) r ON true
          ORDER BY c.due_date, c.id, r.user_id"
    );
    let mut tx = context.begin().await?;
    let rows: Vec<ClaimedTask> = sqlx::query_as(&sql)
        .bind(now)
        .bind(BATCH)
        .bind(now + window)
        .fetch_all(&mut *tx)
        .await?;
    let mut tasks = 0;
    let mut written = 0;
    let mut previous = None;
    for row in &rows {
        if previous != Some(row.id) {
            tasks += 1;
            previous = Some(row.id);
        }
        let Some(recipient) = row.recipient_id else {
            continue;
        };
        let when = row.due_date.format("on %Y-%m-%d at %H:%M UTC");
        let (notification_type, title, message, key) = match kind {
            TaskNotice::DueSoon => (
                NotificationType::TaskDueSoon,
                format!("Task Due Soon: {}", row.title),
                format!("Task \"{}\" is due {when}.", row.title),
                "task_due_soon",
            ),
            TaskNotice::Overdue => (
                NotificationType::TaskOverdue,
                format!("Task Overdue: {}", row.title),
                format!("Task \"{}\" was due {when}.", row.title),
                "task_overdue",
            ),
        };
        let due_text = row.due_date.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        let mut notice = NewNotification::new(notification_type, recipient, title, message);
        notice.due_date = Some(row.due_date);
        notice.meta_info = json!({
            "task_id": row.id,
            "due_date": due_text,
            "priority": row.priority,
            "entity_type": "task",
            "entity_id": row.id,
        });
        notice.event_id = Some(notice_key(key, row.id, &due_text));
        if notify(&mut tx, notice).await?.is_some() {
            written += 1;
        }
    }
    tx.commit().await?;
    Ok((tasks, written))
}

/// The deterministic `event_id` of a scheduled notice: a version-8 UUID from the first 16 bytes
/// of SHA-256(`leopard.scheduler/<kind>/<id>/<due>`). With `notify()`'s unique
/// (event_id, recipient, type) key, one (kind, record, due date) notifies a recipient at most
/// once. These ids name no row of the event log.
pub fn notice_key(kind: &str, id: i64, due: &str) -> Uuid {
    let digest = Sha256::digest(format!("leopard.scheduler/{kind}/{id}/{due}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notice_keys_are_stable_version_8_uuids_that_change_with_the_due_date() {
        let a = notice_key("task_overdue", 7, "2026-01-01T00:00:00.000000Z");
        assert_eq!(
            a,
            notice_key("task_overdue", 7, "2026-01-01T00:00:00.000000Z")
        );
        assert_eq!(a.get_version_num(), 8);
        assert_ne!(
            a,
            notice_key("task_overdue", 7, "2026-01-02T00:00:00.000000Z")
        );
        assert_ne!(
            a,
            notice_key("task_due_soon", 7, "2026-01-01T00:00:00.000000Z")
        );
        assert_ne!(
            a,
            notice_key("task_overdue", 8, "2026-01-01T00:00:00.000000Z")
        );
    }

    #[test]
    fn the_lock_key_spells_leopsch_and_differs_from_the_migration_lock() {
        assert_eq!(&LOCK_KEY.to_be_bytes()[1..], b"leopsch");
        assert_ne!(LOCK_KEY, leopard_tenancy::migrate::MIGRATE_LOCK_KEY);
    }
}
