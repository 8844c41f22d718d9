//! Scale: with a thousand tenant schemas, events of ten tenants are all processed, and an idle
//! poll costs what it costs with one tenant — two statements, and the same number of
//! PostgreSQL transactions.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use common::{write, Bed};
use leopard_events::{EventBus, NewEvent};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

const TENANTS: usize = 1_000;
const IDLE_POLLS: u64 = 50;

/// The database's committed transactions, as counted by PostgreSQL, read on `pool`'s one
/// connection after flushing that connection's pending statistics.
async fn xact_commit(pool: &PgPool) -> i64 {
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(pool)
        .await
        .expect("flush");
    sqlx::query_scalar(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await
    .expect("xact_commit")
}

/// Idle polls of a bus on a one-connection pool: (statements per poll, PostgreSQL commits per
/// poll measured across the polls, including the measurement's own two).
async fn idle_cost(bed: &Bed) -> (u64, i64) {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(bed.tenancy.db.url())
        .await
        .expect("pool");
    let bus = EventBus::new(
        pool.clone(),
        Arc::clone(&bed.registry),
        write(),
        leopard_events::WorkerConfig::default(),
    );
    assert_eq!(bus.poll_once(true).await.expect("poll"), 0, "idle");
    let before = xact_commit(&pool).await;
    let polls_before = bus.stats().polls.load(Ordering::SeqCst);
    let statements_before = bus.stats().poll_statements.load(Ordering::SeqCst);
    for _ in 0..IDLE_POLLS {
        assert_eq!(bus.poll_once(true).await.expect("poll"), 0, "idle");
    }
    let after = xact_commit(&pool).await;
    let polls = bus.stats().polls.load(Ordering::SeqCst) - polls_before;
    let statements = bus.stats().poll_statements.load(Ordering::SeqCst) - statements_before;
    assert_eq!(polls, IDLE_POLLS);
    pool.close().await;
    (statements / polls, after - before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_thousand_tenants_events_are_processed_and_an_idle_poll_costs_what_it_costs_with_one(
) {
    let started = Instant::now();
    let big = Bed::with_tenants(TENANTS).await;
    eprintln!(
        "provisioned {TENANTS} tenants in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        big.count("SELECT count(*) FROM public.leopard_tenants")
            .await,
        TENANTS as i64
    );
    let small = Bed::new(&["solo"]).await;

    let (statements_small, commits_small) = idle_cost(&small).await;
    let (statements_big, commits_big) = idle_cost(&big).await;
    eprintln!(
        "idle: {statements_small}/{statements_big} statements per poll, \
         {commits_small}/{commits_big} commits for {IDLE_POLLS} polls (1 / {TENANTS} tenants)"
    );
    assert_eq!(statements_small, 2, "rescue + claim");
    assert_eq!(statements_big, statements_small);
    // Each idle poll commits its two statements; the measurement adds its own few.
    let expected = i64::try_from(2 * IDLE_POLLS).expect("small");
    for (bed, commits) in [
        ("one tenant", commits_small),
        ("1,000 tenants", commits_big),
    ] {
        assert!(
            (expected..=expected + 5).contains(&commits),
            "{bed}: {commits} commits for {IDLE_POLLS} idle polls"
        );
    }
    assert!(
        (commits_big - commits_small).abs() <= 3,
        "same idle cost: {commits_small} vs {commits_big}"
    );

    // Events in ten of the thousand tenants are all processed.
    let slugs: Vec<String> = (1..=10).map(|i| format!("t{:04}", i * 97)).collect();
    for slug in &slugs {
        big.record(
            slug,
            (0..5)
                .map(|i| NewEvent::created("Client", i, json!({ "tenant": slug })))
                .collect(),
            true,
        )
        .await;
    }
    let bus = big.bus(write(), |_| {});
    let running = Arc::clone(&bus).start().await.expect("start");
    big.wait_for(
        "SELECT count(*) FROM public.leopard_events WHERE state = 'completed'",
        50,
    )
    .await;
    running.shutdown().await;
    for slug in &slugs {
        assert_eq!(
            big.count(&format!("SELECT count(*) FROM tenant_{slug}.handled"))
                .await,
            5,
            "{slug}"
        );
        let wrong: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM tenant_{slug}.handled h
               JOIN public.leopard_events e ON e.id = h.event_id
              WHERE e.tenant_slug <> '{slug}'"
        ))
        .fetch_one(big.tenancy.db.pool())
        .await
        .expect("count");
        assert_eq!(wrong, 0, "{slug} handled only its own events");
    }
    eprintln!("whole test: {:.1} s", started.elapsed().as_secs_f64());
}
