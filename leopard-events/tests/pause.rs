//! Pauses: a global pause stops every claim, a tenant's pause stops only its events, and
//! resuming drains the backlog (a resume wakes running workers through `NOTIFY`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{write, Bed};
use leopard_events::{control, EventBus, NewEvent};
use serde_json::json;

fn events(n: i64) -> Vec<NewEvent> {
    (0..n)
        .map(|i| NewEvent::created("Client", i, json!({ "n": i })))
        .collect()
}

/// Polls until a poll processes nothing; returns how many events were processed.
async fn drain(bus: &EventBus) -> usize {
    let mut total = 0;
    loop {
        let n = bus.poll_once(true).await.expect("poll");
        if n == 0 {
            return total;
        }
        total += n;
    }
}

async fn state_count(bed: &Bed, slug: &str, state: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM public.leopard_events WHERE tenant_slug = $1 AND state = $2",
    )
    .bind(slug)
    .bind(state)
    .fetch_one(bed.tenancy.db.pool())
    .await
    .expect("count")
}

#[tokio::test]
async fn a_paused_bus_claims_nothing_and_a_paused_tenant_waits_while_others_proceed_until_resumed()
{
    let bed = Bed::new(&["alpha", "beta"]).await;
    let pool = bed.tenancy.db.pool();
    let alpha = bed.tenant_id("alpha");
    let bus = bed.bus(write(), |c| c.poll_interval = Duration::from_secs(60));

    // Global pause: nothing is claimed, however often the workers poll.
    control::pause(pool, None, Some("maintenance"))
        .await
        .expect("pause");
    bed.record("alpha", events(5), true).await;
    bed.record("beta", events(5), true).await;
    for _ in 0..5 {
        assert_eq!(bus.poll_once(true).await.expect("poll"), 0);
    }
    assert_eq!(
        bed.count("SELECT count(*) FROM tenant_alpha.handled").await,
        0
    );
    assert_eq!(
        bed.count("SELECT count(*) FROM tenant_beta.handled").await,
        0
    );
    assert_eq!(
        bed.count("SELECT count(*) FROM public.leopard_events WHERE state = 'pending'")
            .await,
        10
    );
    let pauses = control::pauses(pool).await.expect("pauses");
    assert_eq!(pauses.len(), 1);
    assert_eq!(pauses[0].tenant_id, None);
    assert_eq!(pauses[0].reason.as_deref(), Some("maintenance"));

    // Only alpha paused: beta's events complete, alpha's stay pending.
    control::pause(pool, Some(alpha), Some("migration"))
        .await
        .expect("pause alpha");
    assert!(control::resume(pool, None).await.expect("resume"));
    assert_eq!(drain(&bus).await, 5);
    assert_eq!(state_count(&bed, "beta", "completed").await, 5);
    assert_eq!(state_count(&bed, "alpha", "pending").await, 5);
    assert_eq!(
        bed.count("SELECT count(*) FROM tenant_alpha.handled").await,
        0
    );
    assert_eq!(
        bed.count("SELECT count(*) FROM tenant_beta.handled").await,
        5
    );
    let status = control::status(pool).await.expect("status");
    let of = |slug: &str| {
        status
            .iter()
            .find(|s| s.tenant_slug == slug)
            .expect("tenant status")
            .clone()
    };
    assert!(of("alpha").paused && of("alpha").pending == 5);
    assert!(!of("beta").paused && of("beta").completed == 5);

    // Resuming alpha wakes a running bus (60 s poll interval): the backlog drains.
    bed.record("alpha", events(3), true).await;
    let running = Arc::clone(&bus).start().await.expect("start");
    assert_eq!(
        bed.count("SELECT count(*) FROM public.leopard_events WHERE state = 'pending'")
            .await,
        8,
        "still paused"
    );
    assert!(control::resume(pool, Some(alpha)).await.expect("resume"));
    bed.wait_for(
        "SELECT count(*) FROM public.leopard_events WHERE state = 'completed'",
        13,
    )
    .await;
    running.shutdown().await;
    assert_eq!(
        bed.count("SELECT count(*) FROM tenant_alpha.handled").await,
        8
    );
    assert!(control::pauses(pool).await.expect("pauses").is_empty());
    assert!(
        !control::resume(pool, Some(alpha)).await.expect("resume"),
        "nothing left to lift"
    );
}
