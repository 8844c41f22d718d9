//! The bus against PostgreSQL: visibility follows the commit, retries run only failed handlers,
//! exhausted events fail with growing backoff, duplicates are refused.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use common::{registry, Bed, Write};
use leopard_events::{
    async_trait, Event, EventHandler, HandlerContext, HandlerError, HandlerRegistry, NewEvent,
};
use serde_json::json;

/// Fails its first `failures` runs, then writes like [`Write`]; counts its runs.
struct Flaky {
    name: &'static str,
    failures: u32,
    runs: Arc<AtomicU32>,
}

#[async_trait]
impl EventHandler for Flaky {
    fn name(&self) -> &'static str {
        self.name
    }
    fn event_types(&self) -> &'static [&'static str] {
        &["Client.CREATE"]
    }
    async fn handle(
        &self,
        ctx: &mut HandlerContext<'_>,
        event: &Event,
    ) -> Result<(), HandlerError> {
        let run = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        if run <= self.failures {
            return Err(HandlerError::new(format!("failure {run}")));
        }
        common::write_handled(ctx, self.name, event).await
    }
}

#[tokio::test]
async fn an_event_is_processed_only_if_its_transaction_committed() {
    let bed = Bed::new(&["acme"]).await;
    bed.record(
        "acme",
        vec![NewEvent::created("Client", 1, json!({"n": 1}))],
        false,
    )
    .await;
    bed.record(
        "acme",
        vec![NewEvent::created("Client", 2, json!({"n": 2}))],
        true,
    )
    .await;
    assert_eq!(
        bed.count("SELECT count(*) FROM public.leopard_events")
            .await,
        1
    );
    let bus = bed.bus(registry(vec![Box::new(Write("audit", &["*"]))]), |_| {});
    let running = Arc::clone(&bus).start().await.expect("start");
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
    let entity: String = sqlx::query_scalar(
        "SELECT e.entity_id FROM tenant_acme.handled h JOIN public.leopard_events e ON e.id = h.event_id",
    )
    .fetch_one(bed.tenancy.db.pool())
    .await
    .expect("row");
    assert_eq!(entity, "2");
}

#[tokio::test]
async fn a_retry_runs_only_the_failed_handler_and_an_exhausted_event_fails_with_growing_backoff() {
    let bed = Bed::new(&["acme"]).await;
    let flaky_runs = Arc::new(AtomicU32::new(0));
    let steady_runs = Arc::new(AtomicU32::new(0));
    let broken_runs = Arc::new(AtomicU32::new(0));
    let handlers = registry(vec![
        Box::new(Flaky {
            name: "flaky",
            failures: 2,
            runs: Arc::clone(&flaky_runs),
        }),
        Box::new(Flaky {
            name: "steady",
            failures: 0,
            runs: Arc::clone(&steady_runs),
        }),
    ]);
    let bus = bed.bus(handlers, |_| {});
    let running = Arc::clone(&bus).start().await.expect("start");
    bed.record(
        "acme",
        vec![NewEvent::created("Client", 1, json!({}))],
        true,
    )
    .await;
    bed.wait_for(
        "SELECT count(*) FROM public.leopard_events WHERE state = 'completed'",
        1,
    )
    .await;
    running.shutdown().await;
    assert_eq!(
        flaky_runs.load(Ordering::SeqCst),
        3,
        "fails twice, then succeeds"
    );
    assert_eq!(steady_runs.load(Ordering::SeqCst), 1, "never repeated");
    assert_eq!(
        bed.count("SELECT count(*) FROM tenant_acme.handled").await,
        2
    );

    // An always-failing handler: failed after max attempts, intervals growing.
    let handlers = registry(vec![Box::new(Flaky {
        name: "broken",
        failures: u32::MAX,
        runs: Arc::clone(&broken_runs),
    })]);
    let bus = bed.bus(handlers, |c| c.max_attempts = 5);
    let running = Arc::clone(&bus).start().await.expect("start");
    bed.record(
        "acme",
        vec![NewEvent::created("Client", 2, json!({}))],
        true,
    )
    .await;
    bed.wait_for(
        "SELECT count(*) FROM public.leopard_events WHERE state = 'failed'",
        1,
    )
    .await;
    running.shutdown().await;
    assert_eq!(broken_runs.load(Ordering::SeqCst), 5);
    let (times, error): (Vec<chrono::DateTime<chrono::Utc>>, Option<String>) = sqlx::query_as(
        "SELECT attempted_at, last_error FROM public.leopard_events WHERE state = 'failed'",
    )
    .fetch_one(bed.tenancy.db.pool())
    .await
    .expect("row");
    assert_eq!(times.len(), 5);
    let gaps: Vec<i64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).num_milliseconds())
        .collect();
    // Each attempt waited at least its scheduled delay (20 ms × attempt², no jitter: 20, 80,
    // 180, 320 ms) — a lower bound the database clock guarantees whatever the machine's load —
    // and the recorded intervals grow.
    let scheduled = [20, 80, 180, 320];
    for (gap, delay) in gaps.iter().zip(scheduled) {
        assert!(
            *gap >= delay,
            "an interval shorter than its backoff: {gaps:?}"
        );
    }
    assert!(gaps[3] > gaps[0], "backoff grows: {gaps:?}");
    assert!(error.is_some_and(|e| e.contains("broken: failure 5")));
}

#[test]
fn a_duplicate_handler_name_is_refused() {
    let result = HandlerRegistry::from_handlers([
        (
            Box::new(Write("audit", &["*"])) as Box<dyn EventHandler>,
            "a",
        ),
        (
            Box::new(Write("audit", &["Client.CREATE"])) as Box<dyn EventHandler>,
            "b",
        ),
    ]);
    assert!(
        matches!(result, Err(leopard_events::EventsError::DuplicateHandler(name)) if name == "audit")
    );
}
