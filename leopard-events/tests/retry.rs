//! Operating failures: retention prunes only old finished events, a failed event retried by
//! hand completes once its handler works again, and a panicking handler is an error that is
//! retried while its worker lives on.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Bed;
use leopard_events::{
    async_trait, control, Event, EventHandler, HandlerContext, HandlerError, HandlerRegistry,
    NewEvent,
};
use serde_json::json;
use uuid::Uuid;

/// Writes a `handled` row in its transaction; fails (`fail`) or panics (`panic`) while told to.
struct Switchable {
    fail: Arc<AtomicBool>,
    panic: Arc<AtomicBool>,
    runs: Arc<AtomicU32>,
}

#[async_trait]
impl EventHandler for Switchable {
    fn name(&self) -> &'static str {
        "switchable"
    }
    fn event_types(&self) -> &'static [&'static str] {
        &["*"]
    }
    async fn handle(
        &self,
        ctx: &mut HandlerContext<'_>,
        event: &Event,
    ) -> Result<(), HandlerError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        if self.panic.load(Ordering::SeqCst) {
            panic!("handler exploded on {}", event.entity_id);
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(HandlerError::new("downstream unavailable"));
        }
        let tx = ctx
            .tx()
            .ok_or_else(|| HandlerError::new("no transaction"))?;
        sqlx::query("INSERT INTO handled (handler, event_id, event_type) VALUES ($1, $2, $3)")
            .bind("switchable")
            .bind(event.id)
            .bind(&event.event_type)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

struct Switches {
    fail: Arc<AtomicBool>,
    panic: Arc<AtomicBool>,
    runs: Arc<AtomicU32>,
}

impl Switches {
    fn new() -> Self {
        Self {
            fail: Arc::new(AtomicBool::new(false)),
            panic: Arc::new(AtomicBool::new(false)),
            runs: Arc::new(AtomicU32::new(0)),
        }
    }

    fn registry(&self) -> HandlerRegistry {
        HandlerRegistry::from_handlers([(
            Box::new(Switchable {
                fail: Arc::clone(&self.fail),
                panic: Arc::clone(&self.panic),
                runs: Arc::clone(&self.runs),
            }) as Box<dyn EventHandler>,
            "tests",
        )])
        .expect("registry")
    }
}

#[tokio::test]
async fn pruning_deletes_finished_events_older_than_their_retention_and_keeps_the_rest() {
    let bed = Bed::new(&["acme"]).await;
    let pool = bed.tenancy.db.pool();
    bed.record(
        "acme",
        (0..6)
            .map(|i| NewEvent::created("Client", i, json!({})))
            .collect(),
        true,
    )
    .await;
    // Two completed 10 days ago, one completed now, one failed 10 days ago, one failed 40
    // days ago, one still pending from long ago.
    sqlx::query(
        "WITH n AS (SELECT id, row_number() OVER (ORDER BY id) AS i FROM public.leopard_events)
         UPDATE public.leopard_events e
            SET state = CASE WHEN n.i <= 3 THEN 'completed' WHEN n.i <= 5 THEN 'failed'
                             ELSE 'pending' END,
                completed_at = CASE n.i WHEN 1 THEN now() - interval '10 days'
                                        WHEN 2 THEN now() - interval '10 days'
                                        WHEN 3 THEN now()
                                        WHEN 4 THEN now() - interval '10 days'
                                        WHEN 5 THEN now() - interval '40 days' END,
                occurred_at = now() - interval '50 days'
           FROM n WHERE n.id = e.id",
    )
    .execute(pool)
    .await
    .expect("age events");
    let (completed, failed) = control::prune(pool, control::Retention::default())
        .await
        .expect("prune");
    assert_eq!((completed, failed), (2, 1));
    let left: Vec<(String, i64)> = sqlx::query_as(
        "SELECT state, count(*) FROM public.leopard_events GROUP BY state ORDER BY state",
    )
    .fetch_all(pool)
    .await
    .expect("left");
    assert_eq!(
        left,
        vec![
            ("completed".to_owned(), 1),
            ("failed".to_owned(), 1),
            ("pending".to_owned(), 1)
        ]
    );
    // A shorter retention takes the rest of the finished ones; pending events are never pruned.
    let (completed, failed) = control::prune(
        pool,
        control::Retention {
            completed: Duration::ZERO,
            failed: Duration::from_secs(24 * 3600),
        },
    )
    .await
    .expect("prune");
    assert_eq!((completed, failed), (1, 1));
    assert_eq!(
        bed.count("SELECT count(*) FROM public.leopard_events WHERE state = 'pending'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_failed_event_retried_by_hand_completes_once_its_handler_works_again() {
    let bed = Bed::new(&["acme"]).await;
    let pool = bed.tenancy.db.pool();
    let switches = Switches::new();
    switches.fail.store(true, Ordering::SeqCst);
    let bus = bed.bus(switches.registry(), |c| c.max_attempts = 2);
    let running = Arc::clone(&bus).start().await.expect("start");
    bed.record(
        "acme",
        vec![NewEvent::created("Client", 1, json!({}))],
        true,
    )
    .await;
    bed.wait_for(
        "SELECT count(*) FROM public.leopard_events WHERE state = 'failed'",
        1,
    )
    .await;
    let id: Uuid = sqlx::query_scalar("SELECT id FROM public.leopard_events")
        .fetch_one(pool)
        .await
        .expect("id");
    let error: Option<String> =
        sqlx::query_scalar("SELECT last_error FROM public.leopard_events WHERE id = $1")
            .bind(id)
            .fetch_one(pool)
            .await
            .expect("error");
    assert_eq!(error.as_deref(), Some("switchable: downstream unavailable"));
    assert_eq!(switches.runs.load(Ordering::SeqCst), 2);
    assert_eq!(
        bed.count("SELECT count(*) FROM tenant_acme.handled").await,
        0
    );

    // Retry while still broken: pending again with a fresh budget, fails again.
    assert!(control::retry(pool, id).await.expect("retry"));
    bed.wait_for(
        "SELECT count(*) FROM public.leopard_events WHERE state = 'failed'",
        1,
    )
    .await;
    bed.wait_for(
        "SELECT count(*) FROM public.leopard_events WHERE state = 'failed' AND attempts = 2",
        1,
    )
    .await;
    assert_eq!(switches.runs.load(Ordering::SeqCst), 4);

    // Fixed, then retried: completes, handled once.
    switches.fail.store(false, Ordering::SeqCst);
    assert!(control::retry(pool, id).await.expect("retry"));
    bed.wait_for(
        "SELECT count(*) FROM public.leopard_events WHERE state = 'completed'",
        1,
    )
    .await;
    running.shutdown().await;
    assert_eq!(
        bed.count("SELECT count(*) FROM tenant_acme.handled").await,
        1
    );
    assert!(
        !control::retry(pool, id).await.expect("retry"),
        "a completed event is not retried"
    );
    assert!(matches!(
        control::retry(pool, Uuid::now_v7()).await,
        Err(leopard_events::EventsError::UnknownEvent(_))
    ));
}

#[tokio::test]
async fn a_panicking_handler_is_recorded_as_an_error_and_retried_while_the_worker_survives() {
    let bed = Bed::new(&["acme"]).await;
    let switches = Switches::new();
    switches.panic.store(true, Ordering::SeqCst);
    let bus = bed.bus(switches.registry(), |c| c.workers = 1);
    let running = Arc::clone(&bus).start().await.expect("start");
    bed.record(
        "acme",
        vec![NewEvent::created("Client", 7, json!({}))],
        true,
    )
    .await;
    // The panic becomes the event's error and a retry is scheduled.
    bed.wait_until(
        "SELECT EXISTS (SELECT 1 FROM public.leopard_events
                         WHERE state = 'pending' AND attempts >= 2
                           AND last_error = 'switchable: panicked: handler exploded on 7')",
    )
    .await;
    assert_eq!(
        bed.count("SELECT count(*) FROM tenant_acme.handled").await,
        0
    );

    // The same (only) worker handles the next attempt once the handler stops panicking, and
    // a new event too.
    switches.panic.store(false, Ordering::SeqCst);
    bed.record(
        "acme",
        vec![NewEvent::created("Client", 8, json!({}))],
        true,
    )
    .await;
    bed.wait_for(
        "SELECT count(*) FROM public.leopard_events WHERE state = 'completed'",
        2,
    )
    .await;
    running.shutdown().await;
    assert_eq!(
        bed.count("SELECT count(*) FROM tenant_acme.handled").await,
        2
    );
    assert!(bus.stats().retried.load(Ordering::SeqCst) >= 2);
    assert_eq!(bus.stats().failed.load(Ordering::SeqCst), 0);
}
