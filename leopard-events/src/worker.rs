//! Processing: a pool of workers claims batches of ready events with `FOR UPDATE SKIP LOCKED`
//! under a lease, runs each event's handlers, and records the outcome.
//!
//! - A retry runs only the handlers that have not succeeded (per-handler result rows).
//! - Backoff is `unit × attempt^exponent` with ± jitter, capped; an event that reaches its
//!   maximum attempts (per event type, default 25) becomes `failed`, its last error kept.
//! - Expired leases (a crashed worker) are returned to `pending` by the next poll.
//! - Wake-up: [`Waker::wake`] after a commit wakes this process's workers at once and sends one
//!   debounced `NOTIFY` for other processes; every worker also polls. A poll is two statements
//!   whatever the number of tenants: the lease rescue and the claim.
//! - Pauses are read by the claim itself, so a paused tenant's events are never claimed.
//! - Shutdown stops claiming and lets in-flight batches finish.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use leopard_tenancy::{TenantContext, TenantRegistry, TenantTx};
use rand::Rng as _;
use sqlx::postgres::{PgListener, PgRow};
use sqlx::{PgPool, Row};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::control::Retention;
use crate::handler::{EventHandler, HandlerContext, HandlerRegistry};
use crate::{Action, Event, EventsError};

/// The `LISTEN`/`NOTIFY` channel that wakes workers.
pub const CHANNEL: &str = "leopard_events";

/// Retry delays: `unit × attempt^exponent`, ± `jitter` (a fraction), at most `cap`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The delay after the first attempt (with exponent ≥ 1).
    pub unit: Duration,
    /// Growth exponent (River and graphile use 4).
    pub exponent: u32,
    /// Random spread, e.g. 0.1 for ± 10 %.
    pub jitter: f64,
    /// Longest delay.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            unit: Duration::from_secs(1),
            exponent: 4,
            jitter: 0.1,
            cap: Duration::from_secs(6 * 3600),
        }
    }
}

impl Backoff {
    /// The delay before the attempt after `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = f64::from(attempt.max(1)).powi(i32::try_from(self.exponent).unwrap_or(4));
        let spread = if self.jitter > 0.0 {
            rand::thread_rng().gen_range(-self.jitter..=self.jitter)
        } else {
            0.0
        };
        let secs = (self.unit.as_secs_f64() * factor * (1.0 + spread)).max(0.0);
        Duration::from_secs_f64(secs.min(self.cap.as_secs_f64()))
    }
}

/// How the workers run.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Concurrent workers (each claims and processes its own batches).
    pub workers: usize,
    /// Events claimed at once.
    pub batch_size: i64,
    /// How long a claim holds an event before another worker may take it over.
    pub lease: Duration,
    /// Poll interval when nothing wakes the workers.
    pub poll_interval: Duration,
    /// Retry delays.
    pub backoff: Backoff,
    /// Attempts before an event fails, unless its type has its own.
    pub max_attempts: u32,
    /// Per event type maximum attempts.
    pub max_attempts_by_type: HashMap<String, u32>,
    /// Retention applied every `prune_every` by the first worker.
    pub retention: Retention,
    /// How often finished events are pruned.
    pub prune_every: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            batch_size: 100,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(500),
            backoff: Backoff::default(),
            max_attempts: 25,
            max_attempts_by_type: HashMap::new(),
            retention: Retention::default(),
            prune_every: Duration::from_secs(3600),
        }
    }
}

impl WorkerConfig {
    fn max_attempts_for(&self, event_type: &str) -> u32 {
        self.max_attempts_by_type
            .get(event_type)
            .copied()
            .unwrap_or(self.max_attempts)
            .max(1)
    }
}

/// Wakes the workers after a commit: this process's at once, other processes' through one
/// debounced `NOTIFY` (never inside the writer's transaction).
#[derive(Debug, Clone, Default)]
pub struct Waker {
    local: Arc<Notify>,
    remote: Arc<Notify>,
}

impl Waker {
    /// Wakes the workers.
    pub fn wake(&self) {
        self.local.notify_waiters();
        self.remote.notify_one();
    }
}

/// Commits `tx` and wakes the workers: the usual way to finish a transaction that recorded
/// events.
pub async fn commit(tx: TenantTx, waker: &Waker) -> Result<(), EventsError> {
    tx.commit().await?;
    waker.wake();
    Ok(())
}

/// Counters of one bus, for tests and metrics.
#[derive(Debug, Default)]
pub struct Stats {
    /// Claim attempts.
    pub polls: AtomicU64,
    /// SQL statements sent by the polling loop (rescue + claim), excluding event processing.
    pub poll_statements: AtomicU64,
    /// Events claimed.
    pub claimed: AtomicU64,
    /// Events completed.
    pub completed: AtomicU64,
    /// Events scheduled for another attempt.
    pub retried: AtomicU64,
    /// Events that ran out of attempts.
    pub failed: AtomicU64,
    /// Handler invocations.
    pub handler_runs: AtomicU64,
}

/// The event bus of one process: handlers, configuration and workers.
pub struct EventBus {
    pool: PgPool,
    registry: Arc<TenantRegistry>,
    handlers: HandlerRegistry,
    config: WorkerConfig,
    waker: Waker,
    stats: Arc<Stats>,
    worker_id: String,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("handlers", &self.handlers)
            .field("config", &self.config)
            .field("worker_id", &self.worker_id)
            .finish_non_exhaustive()
    }
}

/// A claimed event with its lease owner.
struct Claimed {
    event: Event,
}

impl EventBus {
    /// A bus over `pool` (which must reach the public schema), resolving tenants with
    /// `registry`.
    pub fn new(
        pool: PgPool,
        registry: Arc<TenantRegistry>,
        handlers: HandlerRegistry,
        config: WorkerConfig,
    ) -> Self {
        let worker_id = format!(
            "{}-{:08x}",
            std::process::id(),
            rand::thread_rng().gen::<u32>()
        );
        Self {
            pool,
            registry,
            handlers,
            config,
            waker: Waker::default(),
            stats: Arc::new(Stats::default()),
            worker_id,
        }
    }

    /// The waker to call after committing events.
    pub fn waker(&self) -> Waker {
        self.waker.clone()
    }

    /// The bus's counters.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// The handlers.
    pub fn handlers(&self) -> &HandlerRegistry {
        &self.handlers
    }

    /// Starts the workers, the `LISTEN` task and the debounced notifier.
    pub async fn start(self: Arc<Self>) -> Result<Running, EventsError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        {
            let local = Arc::clone(&self.waker.local);
            let own_id = self.worker_id.clone();
            let mut stop = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.changed() => break,
                        message = listener.recv() => match message {
                            // Our own NOTIFY: this process's workers were woken already.
                            Ok(note) if note.payload() == own_id => {}
                            Ok(_) => local.notify_waiters(),
                            Err(err) => {
                                tracing::warn!(error = %err, "event listener failed; polling only until it reconnects");
                                tokio::time::sleep(Duration::from_secs(1)).await;
                            }
                        },
                    }
                }
            }));
        }
        {
            let remote = Arc::clone(&self.waker.remote);
            let pool = self.pool.clone();
            let own_id = self.worker_id.clone();
            let mut stop = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.changed() => break,
                        () = remote.notified() => {
                            // Wakes coalesce while this NOTIFY is in flight.
                            if let Err(err) = sqlx::query("SELECT pg_notify($1, $2)")
                                .bind(CHANNEL)
                                .bind(&own_id)
                                .execute(&pool)
                                .await
                            {
                                tracing::warn!(error = %err, "could not notify other workers");
                            }
                        }
                    }
                }
            }));
        }
        for index in 0..self.config.workers.max(1) {
            let bus = Arc::clone(&self);
            let stop = stop_rx.clone();
            tasks.push(tokio::spawn(async move { bus.work(index, stop).await }));
        }
        Ok(Running {
            stop: stop_tx,
            tasks,
        })
    }

    async fn work(&self, index: usize, mut stop: watch::Receiver<bool>) {
        let mut last_prune = tokio::time::Instant::now();
        loop {
            if *stop.borrow() {
                break;
            }
            let notified = self.waker.local.notified();
            let processed = match self.poll_once(index == 0).await {
                Ok(n) => n,
                Err(err) => {
                    tracing::warn!(error = %err, "event worker poll failed");
                    0
                }
            };
            if index == 0 && last_prune.elapsed() >= self.config.prune_every {
                last_prune = tokio::time::Instant::now();
                match crate::control::prune(&self.pool, self.config.retention).await {
                    Ok((completed, failed)) if completed + failed > 0 => {
                        tracing::info!(completed, failed, "pruned finished events");
                    }
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "pruning events failed"),
                }
            }
            if processed > 0 {
                continue;
            }
            tokio::select! {
                _ = stop.changed() => break,
                () = notified => {},
                () = tokio::time::sleep(self.config.poll_interval) => {},
            }
        }
    }

    /// One poll: (optionally) return expired leases, claim a batch, process it. Returns how
    /// many events were processed.
    pub async fn poll_once(&self, rescue: bool) -> Result<usize, EventsError> {
        self.stats.polls.fetch_add(1, Ordering::Relaxed);
        if rescue {
            self.stats.poll_statements.fetch_add(1, Ordering::Relaxed);
            let rescued = sqlx::query(
                "UPDATE public.leopard_events
                    SET state = 'pending', locked_by = NULL, locked_until = NULL
                  WHERE state = 'running' AND locked_until < now()",
            )
            .execute(&self.pool)
            .await?
            .rows_affected();
            if rescued > 0 {
                tracing::warn!(rescued, "returned events whose lease expired");
            }
        }
        self.stats.poll_statements.fetch_add(1, Ordering::Relaxed);
        let claimed = self.claim().await?;
        let n = claimed.len();
        if n > 0 {
            self.stats.claimed.fetch_add(n as u64, Ordering::Relaxed);
            self.process(claimed).await?;
        }
        Ok(n)
    }

    async fn claim(&self) -> Result<Vec<Claimed>, EventsError> {
        let rows = sqlx::query(
            "WITH next AS (
                SELECT e.id FROM public.leopard_events e
                 WHERE e.state = 'pending' AND e.run_at <= now()
                   AND NOT EXISTS (SELECT 1 FROM public.leopard_event_pauses g
                                    WHERE g.tenant_id = 0)
                   AND e.tenant_id NOT IN (SELECT p.tenant_id FROM public.leopard_event_pauses p)
                 ORDER BY e.run_at, e.id
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED)
             UPDATE public.leopard_events e
                SET state = 'running', attempts = e.attempts + 1,
                    attempted_at = e.attempted_at || now(),
                    locked_by = $2, locked_until = now() + $3::float8 * interval '1 second'
               FROM next WHERE e.id = next.id
             RETURNING e.id, e.tenant_id, e.tenant_slug, e.event_type, e.entity_type,
                       e.entity_id, e.action, e.previous, e.current, e.changed_fields,
                       e.actor_id, e.occurred_at, e.attempts",
        )
        .bind(self.config.batch_size.max(1))
        .bind(&self.worker_id)
        .bind(self.config.lease.as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        let mut claimed: Vec<Claimed> = rows
            .iter()
            .map(|row| {
                Ok(Claimed {
                    event: event_from_row(row)?,
                })
            })
            .collect::<Result<_, EventsError>>()?;
        // Process in recording order (UUIDv7 order), whatever the UPDATE returned.
        claimed.sort_by_key(|c| c.event.id);
        Ok(claimed)
    }

    async fn process(&self, batch: Vec<Claimed>) -> Result<(), EventsError> {
        let retried: Vec<Uuid> = batch
            .iter()
            .filter(|c| c.event.attempt > 1)
            .map(|c| c.event.id)
            .collect();
        let mut done: HashSet<(Uuid, String)> = HashSet::new();
        if !retried.is_empty() {
            let rows = sqlx::query(
                "SELECT event_id, handler FROM public.leopard_event_handler_results
                  WHERE event_id = ANY($1)",
            )
            .bind(&retried)
            .fetch_all(&self.pool)
            .await?;
            for row in rows {
                done.insert((row.get("event_id"), row.get("handler")));
            }
        }
        let mut completed = Vec::new();
        for claimed in batch {
            let event = &claimed.event;
            let outcome = self.run_handlers(event, &done).await;
            match outcome {
                Outcome::Done => completed.push(event.id),
                Outcome::Failed {
                    error,
                    succeeded_untracked,
                } => self.reschedule(event, &error, &succeeded_untracked).await?,
            }
        }
        if !completed.is_empty() {
            let n = sqlx::query(
                "UPDATE public.leopard_events
                    SET state = 'completed', completed_at = now(), locked_by = NULL,
                        locked_until = NULL, last_error = NULL
                  WHERE id = ANY($1) AND locked_by = $2",
            )
            .bind(&completed)
            .bind(&self.worker_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
            self.stats.completed.fetch_add(n, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn run_handlers(&self, event: &Event, done: &HashSet<(Uuid, String)>) -> Outcome {
        let Some(info) = self.registry.resolve_slug(&event.tenant_slug) else {
            return Outcome::Failed {
                error: format!("tenant {:?} is not in the registry", event.tenant_slug),
                succeeded_untracked: Vec::new(),
            };
        };
        let tenant = self.registry.context(info);
        let mut errors = Vec::new();
        let mut succeeded_untracked = Vec::new();
        for handler in self.handlers.for_type(&event.event_type) {
            if done.contains(&(event.id, handler.name().to_owned())) {
                continue;
            }
            self.stats.handler_runs.fetch_add(1, Ordering::Relaxed);
            let result = run_handler(handler.as_ref(), &tenant, event, true).await;
            match result {
                Ok(()) if !handler.transactional() => succeeded_untracked.push(handler.name()),
                Ok(()) => {}
                Err(error) => {
                    tracing::warn!(
                        handler = handler.name(),
                        event = %event.id,
                        event_type = %event.event_type,
                        attempt = event.attempt,
                        %error,
                        "event handler failed"
                    );
                    errors.push(format!("{}: {error}", handler.name()));
                }
            }
        }
        if errors.is_empty() {
            Outcome::Done
        } else {
            Outcome::Failed {
                error: errors.join("; "),
                succeeded_untracked,
            }
        }
    }

    async fn reschedule(
        &self,
        event: &Event,
        error: &str,
        succeeded_untracked: &[&'static str],
    ) -> Result<(), EventsError> {
        let mut tx = self.pool.begin().await?;
        if !succeeded_untracked.is_empty() {
            sqlx::query(
                "INSERT INTO public.leopard_event_handler_results (event_id, handler)
                 SELECT $1, h FROM unnest($2::text[]) AS h ON CONFLICT DO NOTHING",
            )
            .bind(event.id)
            .bind(succeeded_untracked)
            .execute(&mut *tx)
            .await?;
        }
        let attempt = u32::try_from(event.attempt).unwrap_or(u32::MAX);
        let exhausted = attempt >= self.config.max_attempts_for(&event.event_type);
        if exhausted {
            sqlx::query(
                "UPDATE public.leopard_events
                    SET state = 'failed', completed_at = now(), last_error = $2,
                        locked_by = NULL, locked_until = NULL
                  WHERE id = $1 AND locked_by = $3",
            )
            .bind(event.id)
            .bind(error)
            .bind(&self.worker_id)
            .execute(&mut *tx)
            .await?;
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(event = %event.id, event_type = %event.event_type, attempts = attempt, error, "event failed for good");
        } else {
            let delay = self.config.backoff.delay(attempt);
            sqlx::query(
                "UPDATE public.leopard_events
                    SET state = 'pending', run_at = now() + $2::float8 * interval '1 second',
                        last_error = $3, locked_by = NULL, locked_until = NULL
                  WHERE id = $1 AND locked_by = $4",
            )
            .bind(event.id)
            .bind(delay.as_secs_f64())
            .bind(error)
            .bind(&self.worker_id)
            .execute(&mut *tx)
            .await?;
            self.stats.retried.fetch_add(1, Ordering::Relaxed);
        }
        tx.commit().await?;
        Ok(())
    }
}

enum Outcome {
    Done,
    Failed {
        error: String,
        succeeded_untracked: Vec<&'static str>,
    },
}

/// Runs one handler for `event`. A transactional handler runs inside a tenant transaction that
/// commits with its effect; with `record_success` that transaction first writes the handler's
/// success row (see below), so the effect happens exactly once. Errors and panics come back as
/// messages.
pub(crate) async fn run_handler(
    handler: &dyn EventHandler,
    tenant: &TenantContext,
    event: &Event,
    record_success: bool,
) -> Result<(), String> {
    if handler.transactional() {
        run_transactional(handler, tenant, event, record_success).await
    } else {
        let mut ctx = HandlerContext::new(tenant, None);
        guarded(handler.handle(&mut ctx, event)).await
    }
}

/// Runs a transactional handler: its work and its success row commit together.
///
/// The success row is written first, so the handler's effects happen exactly once even when
/// its lease expires mid-run: the row's foreign key locks the event (`KEY SHARE`), so no other
/// worker can claim it (`FOR UPDATE SKIP LOCKED` skips it) while this transaction is open; and
/// a run that gets here anyway waits on this row and, once it is committed, skips the handler.
/// (Written after the handler, a takeover could run the handler a second time.)
async fn run_transactional(
    handler: &dyn EventHandler,
    tenant: &TenantContext,
    event: &Event,
    record_success: bool,
) -> Result<(), String> {
    let mut tx = tenant.begin().await.map_err(|e| e.to_string())?;
    if !record_success {
        {
            let mut ctx = HandlerContext::new(tenant, Some(&mut tx));
            guarded(handler.handle(&mut ctx, event)).await?;
        }
        return tx.commit().await.map_err(|e| e.to_string());
    }
    let fresh = sqlx::query(
        "INSERT INTO public.leopard_event_handler_results (event_id, handler) VALUES ($1, $2)
         ON CONFLICT DO NOTHING",
    )
    .bind(event.id)
    .bind(handler.name())
    .execute(&mut *tx)
    .await
    .map_err(|e| e.to_string())?
    .rows_affected()
        > 0;
    if !fresh {
        // Already done by a run that committed.
        return tx.rollback().await.map_err(|e| e.to_string());
    }
    {
        let mut ctx = HandlerContext::new(tenant, Some(&mut tx));
        guarded(handler.handle(&mut ctx, event)).await?;
    }
    tx.commit().await.map_err(|e| e.to_string())
}

/// Awaits a handler, turning an error or a panic into a message.
async fn guarded(
    fut: impl std::future::Future<Output = Result<(), crate::HandlerError>>,
) -> Result<(), String> {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(panic) => Err(format!(
            "panicked: {}",
            panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown payload".to_owned())
        )),
    }
}

fn event_from_row(row: &PgRow) -> Result<Event, EventsError> {
    let action: String = row.try_get("action")?;
    Ok(Event {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        tenant_slug: row.try_get("tenant_slug")?,
        event_type: row.try_get("event_type")?,
        entity_type: row.try_get("entity_type")?,
        entity_id: row.try_get("entity_id")?,
        action: Action::parse(&action).ok_or(EventsError::Invalid {
            what: "action",
            value: action,
        })?,
        previous: row.try_get("previous")?,
        current: row.try_get("current")?,
        changed_fields: row.try_get("changed_fields")?,
        actor_id: row.try_get("actor_id")?,
        occurred_at: row.try_get("occurred_at")?,
        attempt: row.try_get("attempts")?,
    })
}

/// Running workers; [`Running::shutdown`] stops them gracefully.
#[derive(Debug)]
pub struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops claiming, lets in-flight batches finish, and waits for every task.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if let Err(err) = task.await {
                tracing::warn!(error = %err, "event task ended abnormally");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_the_attempt_and_is_capped() {
        let b = Backoff {
            unit: Duration::from_millis(10),
            exponent: 2,
            jitter: 0.0,
            cap: Duration::from_millis(500),
        };
        assert_eq!(b.delay(1), Duration::from_millis(10));
        assert_eq!(b.delay(3), Duration::from_millis(90));
        assert_eq!(b.delay(100), Duration::from_millis(500));
    }

    #[test]
    fn jitter_stays_within_its_spread() {
        let b = Backoff::default();
        for _ in 0..100 {
            let d = b.delay(2).as_secs_f64();
            assert!((14.4..=17.6).contains(&d), "{d}");
        }
    }
}
