//! Wake-up: an event committed with [`leopard_events::commit`] is handled at once even when the
//! poll interval is a minute — by the same bus, and by another bus through `LISTEN`/`NOTIFY`.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::{registry, Bed, Write};
use leopard_events::{async_trait, Event, EventHandler, HandlerContext, HandlerError, NewEvent};
use serde_json::json;
use tokio::sync::Semaphore;

/// Holds its worker until released (non-transactional), so a bus cannot claim anything else.
struct Blocker(Arc<Semaphore>);

#[async_trait]
impl EventHandler for Blocker {
    fn name(&self) -> &'static str {
        "blocker"
    }
    fn event_types(&self) -> &'static [&'static str] {
        &["Block.CREATE"]
    }
    fn transactional(&self) -> bool {
        false
    }
    async fn handle(&self, _: &mut HandlerContext<'_>, _: &Event) -> Result<(), HandlerError> {
        let _permit = self.0.acquire().await.expect("semaphore");
        Ok(())
    }
}

/// Records one event in `acme` and commits it with `waker`.
async fn commit_one(bed: &Bed, id: i64, waker: &leopard_events::Waker) {
    let ctx = bed.registry.context_for("acme").expect("tenant");
    let mut tx = ctx.begin().await.expect("tx");
    leopard_events::record(&mut tx, NewEvent::created("Client", id, json!({})))
        .await
        .expect("record");
    leopard_events::commit(tx, waker).await.expect("commit");
}

/// Waits until every worker of a just-started bus has polled once and gone to sleep.
async fn settled(bus: &leopard_events::EventBus, workers: u64) {
    while bus.stats().polls.load(Ordering::SeqCst) < workers {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_committed_event_wakes_the_sleeping_workers_of_its_bus() {
    let bed = Bed::new(&["acme"]).await;
    let bus = bed.bus(registry(vec![Box::new(Write("write", &["*"]))]), |c| {
        c.poll_interval = Duration::from_secs(60)
    });
    let running = Arc::clone(&bus).start().await.expect("start");
    settled(&bus, 2).await;
    commit_one(&bed, 1, &bus.waker()).await;
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
}

#[tokio::test]
async fn a_commit_in_one_bus_wakes_another_bus_through_notify() {
    let bed = Bed::new(&["acme"]).await;
    // Bus A's only worker is kept busy by a blocking event, so only B can handle what follows.
    bed.record("acme", vec![NewEvent::created("Block", 0, json!({}))], true)
        .await;
    let gate = Arc::new(Semaphore::new(0));
    let a = bed.bus(registry(vec![Box::new(Blocker(Arc::clone(&gate)))]), |c| {
        c.workers = 1;
        c.batch_size = 1;
        c.poll_interval = Duration::from_secs(60);
    });
    let running_a = Arc::clone(&a).start().await.expect("start A");
    bed.wait_for(
        "SELECT count(*) FROM public.leopard_events WHERE state = 'running'",
        1,
    )
    .await;
    // Bus B handles clients and polls once a minute; its first polls find nothing.
    let b = bed.bus(
        registry(vec![Box::new(Write("write", &["Client.CREATE"]))]),
        |c| {
            c.poll_interval = Duration::from_secs(60);
        },
    );
    let running_b = Arc::clone(&b).start().await.expect("start B");
    settled(&b, 2).await;

    // A commits with its waker: A's NOTIFY wakes B.
    commit_one(&bed, 1, &a.waker()).await;
    bed.wait_for("SELECT count(*) FROM tenant_acme.handled", 1)
        .await;
    bed.wait_for(
        "SELECT count(*) FROM public.leopard_events
          WHERE state = 'completed' AND event_type = 'Client.CREATE'",
        1,
    )
    .await;
    gate.add_permits(1);
    running_a.shutdown().await;
    running_b.shutdown().await;
    assert_eq!(b.stats().completed.load(Ordering::SeqCst), 1);
    assert_eq!(
        a.stats().claimed.load(Ordering::SeqCst),
        1,
        "only the blocker"
    );
    assert_eq!(
        bed.count("SELECT count(*) FROM public.leopard_events WHERE state = 'completed'")
            .await,
        2
    );
}
