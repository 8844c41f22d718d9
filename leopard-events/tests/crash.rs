//! Crash safety: a worker process killed with SIGKILL in the middle of a batch loses no event,
//! and a transactional handler's effects happen exactly once — also when a lease expires while
//! its first run is still going and another bus takes the event over.
//!
//! The killed worker is this test binary run again (`--exact <worker> --ignored`) with
//! `LEOPARD_EVENTS_CRASH_WORKER=1` and the bed's `DATABASE_URL`.

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Bed;
use leopard_events::{
    async_trait, Event, EventBus, EventHandler, HandlerContext, HandlerError, HandlerRegistry,
    NewEvent, WorkerConfig,
};
use leopard_tenancy::{ResolveConfig, TenantRegistry};
use serde_json::json;
use tokio::sync::Semaphore;

/// The flag that makes [`worker_process_of_the_crash_test`] run.
const WORKER_FLAG: &str = "LEOPARD_EVENTS_CRASH_WORKER";
const EVENTS: i64 = 500;

/// Writes a `handled` row in its transaction after sleeping a little.
struct Slow;

#[async_trait]
impl EventHandler for Slow {
    fn name(&self) -> &'static str {
        "slow"
    }
    fn event_types(&self) -> &'static [&'static str] {
        &["*"]
    }
    async fn handle(
        &self,
        ctx: &mut HandlerContext<'_>,
        event: &Event,
    ) -> Result<(), HandlerError> {
        tokio::time::sleep(Duration::from_millis(10)).await;
        common::write_handled(ctx, "slow", event).await
    }
}

fn slow() -> HandlerRegistry {
    HandlerRegistry::from_handlers([(Box::new(Slow) as Box<dyn EventHandler>, "tests")])
        .expect("registry")
}

fn crash_config() -> WorkerConfig {
    WorkerConfig {
        workers: 2,
        batch_size: 50,
        lease: Duration::from_secs(2),
        poll_interval: Duration::from_millis(50),
        ..WorkerConfig::default()
    }
}

/// Not a test: the worker process that the crash test kills (skipped unless
/// `LEOPARD_EVENTS_CRASH_WORKER` is set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run only as the child of a_worker_killed_mid_batch_loses_nothing_and_handlers_take_effect_exactly_once"]
async fn worker_process_of_the_crash_test() {
    if std::env::var(WORKER_FLAG).is_err() {
        return;
    }
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(6)
        .connect(&url)
        .await
        .expect("pool");
    let registry = TenantRegistry::load(pool.clone(), ResolveConfig::default())
        .await
        .expect("registry");
    let bus = Arc::new(EventBus::new(pool, registry, slow(), crash_config()));
    let _running = Arc::clone(&bus).start().await.expect("start");
    // Runs until killed.
    std::future::pending::<()>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_batch_loses_nothing_and_handlers_take_effect_exactly_once() {
    let bed = Bed::new(&["acme"]).await;
    let events = (0..EVENTS)
        .map(|i| NewEvent::created("Client", i, json!({ "n": i })))
        .collect();
    bed.record("acme", events, true).await;

    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "worker_process_of_the_crash_test",
            "--nocapture",
            "--ignored",
            "--test-threads=1",
        ])
        .env(WORKER_FLAG, "1")
        .env("DATABASE_URL", bed.tenancy.db.url())
        .stdout(Stdio::null())
        .spawn()
        .expect("worker process");
    bed.wait_until("SELECT count(*) >= 50 FROM tenant_acme.handled")
        .await;
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("reaped");
    assert!(!status.success(), "the worker was killed: {status:?}");
    // PostgreSQL notices the dead connections and rolls their transactions back.
    bed.wait_until(
        "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity
                             WHERE datname = current_database() AND state LIKE 'idle in%')",
    )
    .await;
    let handled_at_kill = bed.count("SELECT count(*) FROM tenant_acme.handled").await;
    assert!(
        (50..EVENTS).contains(&handled_at_kill),
        "killed mid-way: {handled_at_kill}"
    );
    assert!(
        bed.count("SELECT count(*) FROM public.leopard_events WHERE state = 'running'")
            .await
            > 0,
        "the dead worker left claimed events behind"
    );

    // A new worker returns the expired leases on its polls and finishes the work.
    let bus = bed.bus(slow(), |c| *c = crash_config());
    let running = Arc::clone(&bus).start().await.expect("start");
    bed.wait_for(
        "SELECT count(*) FROM public.leopard_events WHERE state = 'completed'",
        EVENTS,
    )
    .await;
    running.shutdown().await;

    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT event_id) FROM tenant_acme.handled")
            .fetch_one(bed.tenancy.db.pool())
            .await
            .expect("counts");
    assert_eq!(
        (rows, distinct),
        (EVENTS, EVENTS),
        "every event handled once"
    );
    assert_eq!(
        bed.count("SELECT count(*) FROM public.leopard_events WHERE state <> 'completed'")
            .await,
        0
    );
    assert_eq!(
        bed.count("SELECT count(*) FROM public.leopard_event_handler_results")
            .await,
        EVENTS
    );
}

/// Writes a `handled` row; its first run then waits for the test's go-ahead before committing.
struct Held {
    runs: Arc<AtomicU32>,
    release: Arc<Semaphore>,
}

#[async_trait]
impl EventHandler for Held {
    fn name(&self) -> &'static str {
        "held"
    }
    fn event_types(&self) -> &'static [&'static str] {
        &["*"]
    }
    async fn handle(
        &self,
        ctx: &mut HandlerContext<'_>,
        event: &Event,
    ) -> Result<(), HandlerError> {
        let run = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        let tx = ctx
            .tx()
            .ok_or_else(|| HandlerError::new("no transaction"))?;
        sqlx::query("INSERT INTO handled (handler, event_id, event_type) VALUES ($1, $2, $3)")
            .bind("held")
            .bind(event.id)
            .bind(&event.event_type)
            .execute(&mut **tx)
            .await?;
        if run == 1 {
            let _permit = self.release.acquire().await.expect("semaphore");
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_handler_takes_effect_once_when_its_lease_expires_mid_run() {
    let bed = Bed::new(&["acme"]).await;
    let runs = Arc::new(AtomicU32::new(0));
    let release = Arc::new(Semaphore::new(0));
    let held = || {
        HandlerRegistry::from_handlers([(
            Box::new(Held {
                runs: Arc::clone(&runs),
                release: Arc::clone(&release),
            }) as Box<dyn EventHandler>,
            "tests",
        )])
        .expect("registry")
    };
    bed.record(
        "acme",
        vec![NewEvent::created("Client", 1, json!({}))],
        true,
    )
    .await;

    // Bus A claims with a short lease and is held inside the handler.
    let a = bed.bus(held(), |c| c.lease = Duration::from_millis(100));
    let first = tokio::spawn({
        let a = Arc::clone(&a);
        async move { a.poll_once(false).await }
    });
    bed.wait_until(
        "SELECT EXISTS (SELECT 1 FROM public.leopard_events
                         WHERE state = 'running' AND locked_until < now())",
    )
    .await;
    // Bus B returns the expired lease and polls while A's handler transaction is still open:
    // A's success row is written first, so B can neither take the event over nor run the
    // handler a second time.
    let b = bed.bus(held(), |_| {});
    assert_eq!(b.poll_once(true).await.expect("poll B"), 0);
    release.add_permits(1);
    assert_eq!(first.await.expect("bus A").expect("poll A"), 1);
    // A's completion lost its lease; the next claim finds the handler done and completes.
    while bed
        .count("SELECT count(*) FROM public.leopard_events WHERE state = 'completed'")
        .await
        == 0
    {
        b.poll_once(true).await.expect("poll B");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the handler ran once");
    assert_eq!(
        bed.count("SELECT count(*) FROM tenant_acme.handled").await,
        1,
        "the handler's effect committed once"
    );
    assert_eq!(
        bed.count("SELECT count(*) FROM public.leopard_events WHERE state = 'completed'")
            .await,
        1
    );
}
