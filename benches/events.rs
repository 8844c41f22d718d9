//! The event bus against PostgreSQL: processing throughput, pickup latency and the cost of
//! `record` in a business transaction (issue 4 acceptance figures).
//!
//! Needs PostgreSQL: everything runs in one fresh database from
//! `leopard_tenancy::testing::TestTenancy` (`DATABASE_URL`, else a private cluster). Run with
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench events`.
//!
//! - **Throughput** (custom loop, printed): [`EVENTS`] events are recorded beforehand (untimed)
//!   across [`TENANTS`] tenants; a bus with one trivial non-transactional handler then starts and
//!   the time until `stats().completed` reaches the count gives events/s. Every (workers, batch
//!   size) pair of [`CONFIGS`] runs [`THROUGHPUT_RUNS`] times; the median is reported.
//!   Target: ≥ 5,000 events/s.
//! - **Pickup latency** (custom loop, printed): an idle bus (default 500 ms poll interval); one
//!   event at a time is recorded and committed with `leopard_events::commit` (which wakes the
//!   workers); the `Instant` after the commit is compared with the `Instant` the handler starts
//!   (sent back through a channel with the event id). p50/p99 over [`LATENCY_SAMPLES`] samples.
//!   Targets: p50 ≤ 5 ms, p99 ≤ 50 ms. The same without the wake (poll only) is reported for
//!   context, with random spacing over the poll interval.
//! - **`record` overhead** (interleaved loop with percentiles, plus Criterion): a tenant
//!   transaction inserting one business row (`deals`) versus the same plus `record` of one event
//!   (begin → insert → [record] → commit, timed as a whole). Target: ≤ 0.2 ms extra (median).
//!
//! Under `cargo test --benches` (no `--bench` flag) every count shrinks to a smoke test.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use leopard_core::TenantSlug;
use leopard_events::{
    async_trait, Event, EventBus, EventHandler, HandlerContext, HandlerError, HandlerRegistry,
    NewEvent, WorkerConfig,
};
use leopard_tenancy::testing::TestTenancy;
use leopard_tenancy::{
    Migration, MigrationSet, NewTenant, ResolveConfig, TenantContext, TenantRegistry,
};
use rand::Rng as _;
use serde_json::json;
use sqlx::Executor as _;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

/// The tenant migration: one business table.
const DEALS: Migration = Migration::new(
    1,
    "deals",
    "CREATE TABLE deals (
         id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
         title      text NOT NULL,
         amount     numeric(12, 2) NOT NULL,
         owner_id   bigint,
         created_at timestamptz NOT NULL DEFAULT now())",
);

/// Tenants the events are spread over.
const TENANTS: usize = 4;
/// Events of one throughput run (bench mode).
const EVENTS: usize = 20_000;
/// (workers, batch size) pairs of the throughput runs; (4, 100) is the default configuration.
const CONFIGS: [(usize, i64); 6] = [(1, 100), (2, 100), (4, 100), (1, 500), (2, 500), (4, 500)];
/// Runs of each throughput configuration.
const THROUGHPUT_RUNS: usize = 3;
/// Woken pickup samples (bench mode).
const LATENCY_SAMPLES: usize = 1_000;
/// Poll-only pickup samples (bench mode; each waits up to a poll interval).
const POLL_SAMPLES: usize = 100;
/// Iterations of each variant of the interleaved `record` overhead loop (bench mode).
const OVERHEAD_ITERS: usize = 3_000;

/// Counts; smaller under `cargo test --benches`.
#[derive(Debug, Clone, Copy)]
struct Plan {
    events: usize,
    runs: usize,
    latency_samples: usize,
    poll_samples: usize,
    overhead_iters: usize,
    measure: Duration,
}

impl Plan {
    fn new() -> Self {
        let benching = std::env::args().any(|arg| arg == "--bench");
        if benching {
            Self {
                events: EVENTS,
                runs: THROUGHPUT_RUNS,
                latency_samples: LATENCY_SAMPLES,
                poll_samples: POLL_SAMPLES,
                overhead_iters: OVERHEAD_ITERS,
                measure: Duration::from_secs(5),
            }
        } else {
            Self {
                events: 500,
                runs: 1,
                latency_samples: 10,
                poll_samples: 2,
                overhead_iters: 20,
                measure: Duration::from_millis(200),
            }
        }
    }
}

/// The load average (1, 5, 15 min) as printed by `/proc/loadavg`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

/// The `q`-quantile (0..=1) of sorted `values`.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// `p50 / p90 / p99 / max` of `samples` in milliseconds.
fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "n={} p50={:.3} ms p90={:.3} ms p99={:.3} ms max={:.3} ms",
        samples.len(),
        ms(quantile(samples, 0.5)),
        ms(quantile(samples, 0.9)),
        ms(quantile(samples, 0.99)),
        ms(quantile(samples, 1.0)),
    )
}

/// Does nothing, outside any transaction.
struct Noop;

#[async_trait]
impl EventHandler for Noop {
    fn name(&self) -> &'static str {
        "bench.noop"
    }
    fn event_types(&self) -> &'static [&'static str] {
        &["*"]
    }
    fn transactional(&self) -> bool {
        false
    }
    async fn handle(
        &self,
        _ctx: &mut HandlerContext<'_>,
        _event: &Event,
    ) -> Result<(), HandlerError> {
        Ok(())
    }
}

/// Sends the event id and the `Instant` it started, outside any transaction.
struct Stamp(mpsc::UnboundedSender<(u128, Instant)>);

#[async_trait]
impl EventHandler for Stamp {
    fn name(&self) -> &'static str {
        "bench.stamp"
    }
    fn event_types(&self) -> &'static [&'static str] {
        &["*"]
    }
    fn transactional(&self) -> bool {
        false
    }
    async fn handle(
        &self,
        _ctx: &mut HandlerContext<'_>,
        event: &Event,
    ) -> Result<(), HandlerError> {
        let started = Instant::now();
        let _ = self.0.send((event.id.as_u128(), started));
        Ok(())
    }
}

fn handlers(handler: Box<dyn EventHandler>) -> HandlerRegistry {
    HandlerRegistry::from_handlers([(handler, "bench")]).expect("registry")
}

/// The database: bus tables, [`TENANTS`] tenants with a `deals` table, a registry.
struct Env {
    tenancy: TestTenancy,
    registry: Arc<TenantRegistry>,
    contexts: Vec<TenantContext>,
}

impl Env {
    async fn new() -> Self {
        let set = MigrationSet::new(
            vec![Migration::new(1, "events", leopard_events::MIGRATION)],
            vec![DEALS],
        )
        .expect("set");
        let tenancy = TestTenancy::new(set, 20)
            .await
            .expect("test database (set DATABASE_URL)");
        for i in 0..TENANTS {
            let slug = format!("t{i}");
            tenancy
                .provisioner
                .create(NewTenant::new(
                    TenantSlug::parse(&slug).expect("slug"),
                    slug.clone(),
                ))
                .await
                .expect("tenant");
        }
        let registry = TenantRegistry::load(tenancy.db.pool().clone(), ResolveConfig::default())
            .await
            .expect("registry");
        let contexts = registry
            .tenants()
            .into_iter()
            .map(|t| registry.context(t))
            .collect::<Vec<_>>();
        assert_eq!(contexts.len(), TENANTS);
        Self {
            tenancy,
            registry,
            contexts,
        }
    }

    fn bus(&self, handlers: HandlerRegistry, config: WorkerConfig) -> Arc<EventBus> {
        Arc::new(EventBus::new(
            self.tenancy.db.pool().clone(),
            Arc::clone(&self.registry),
            handlers,
            config,
        ))
    }

    /// Empties the outbox (untimed).
    async fn reset(&self) {
        self.tenancy
            .db
            .pool()
            .execute("TRUNCATE public.leopard_events CASCADE")
            .await
            .expect("truncate");
    }

    /// Records `n` events round-robin over the tenants, 1,000 per transaction (untimed).
    async fn prerecord(&self, n: usize) {
        let mut next = 0usize;
        while next < n {
            let chunk = (n - next).min(1_000);
            let ctx = &self.contexts[(next / 1_000) % self.contexts.len()];
            let events = (next..next + chunk)
                .map(|i| {
                    NewEvent::created(
                        "Deal",
                        i,
                        json!({"id": i, "title": "Deal", "amount": "10.00"}),
                    )
                    .by(1)
                })
                .collect();
            let mut tx = ctx.begin().await.expect("begin");
            leopard_events::record_all(&mut tx, events)
                .await
                .expect("record");
            tx.commit().await.expect("commit");
            next += chunk;
        }
        self.tenancy
            .db
            .pool()
            .execute("VACUUM ANALYZE public.leopard_events")
            .await
            .expect("vacuum");
    }
}

/// Events/s of the trivial handler for each (workers, batch size).
fn bench_throughput(rt: &Runtime, env: &Env, plan: Plan) {
    println!(
        "\n== throughput: {} events over {TENANTS} tenants, trivial non-transactional handler",
        plan.events
    );
    for (workers, batch_size) in CONFIGS {
        let mut rates = Vec::new();
        for run in 0..plan.runs {
            let rate = rt.block_on(async {
                env.reset().await;
                env.prerecord(plan.events).await;
                let bus = env.bus(
                    handlers(Box::new(Noop)),
                    WorkerConfig {
                        workers,
                        batch_size,
                        ..WorkerConfig::default()
                    },
                );
                let stats = bus.stats();
                let load = load_average();
                let started = Instant::now();
                let running = Arc::clone(&bus).start().await.expect("start");
                let target = plan.events as u64;
                let deadline = started + Duration::from_secs(120);
                while stats.completed.load(Ordering::Relaxed) < target {
                    assert!(Instant::now() < deadline, "throughput run timed out");
                    tokio::time::sleep(Duration::from_micros(500)).await;
                }
                let took = started.elapsed();
                running.shutdown().await;
                let polls = stats.polls.load(Ordering::Relaxed);
                let rate = plan.events as f64 / took.as_secs_f64();
                println!(
                    "throughput workers={workers} batch={batch_size} run={run}: {} events in {took:.1?} \
                     = {rate:.0} events/s ({polls} polls; load {load})",
                    plan.events
                );
                rate
            });
            rates.push(rate);
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "throughput workers={workers} batch={batch_size}: median {:.0} events/s (min {:.0}, max {:.0})",
            rates[rates.len() / 2],
            rates[0],
            rates[rates.len() - 1]
        );
    }
}

/// Commit → handler start, with and without the wake.
fn bench_latency(rt: &Runtime, env: &Env, plan: Plan) {
    rt.block_on(async {
        env.reset().await;
        let (send, mut recv) = mpsc::unbounded_channel();
        let bus = env.bus(handlers(Box::new(Stamp(send))), WorkerConfig::default());
        let waker = bus.waker();
        let running = Arc::clone(&bus).start().await.expect("start");
        // Let the workers settle into their idle wait.
        tokio::time::sleep(Duration::from_millis(600)).await;

        for woken in [true, false] {
            let (samples_wanted, label) = if woken {
                (plan.latency_samples, "commit + wake")
            } else {
                (plan.poll_samples, "commit only (poll)")
            };
            let load = load_average();
            let stats = bus.stats();
            let polls_before = stats.polls.load(Ordering::Relaxed);
            let mut samples = Vec::with_capacity(samples_wanted);
            for i in 0..samples_wanted {
                let ctx = &env.contexts[i % env.contexts.len()];
                let mut tx = ctx.begin().await.expect("begin");
                let id = leopard_events::record(
                    &mut tx,
                    NewEvent::created("Deal", i, json!({"id": i})).by(1),
                )
                .await
                .expect("record")
                .as_u128();
                let committed = if woken {
                    leopard_events::commit(tx, &waker).await.expect("commit");
                    Instant::now()
                } else {
                    tx.commit().await.expect("commit");
                    Instant::now()
                };
                let started = loop {
                    let (got, at) = tokio::time::timeout(Duration::from_secs(5), recv.recv())
                        .await
                        .expect("handler ran within 5 s")
                        .expect("channel open");
                    if got == id {
                        break at;
                    }
                };
                samples.push(started.saturating_duration_since(committed));
                let pause = if woken {
                    Duration::from_millis(rand::thread_rng().gen_range(2..=6))
                } else {
                    // Spread the commits uniformly over the poll interval.
                    Duration::from_millis(rand::thread_rng().gen_range(0..=500))
                };
                tokio::time::sleep(pause).await;
            }
            let polls = stats.polls.load(Ordering::Relaxed) - polls_before;
            println!(
                "\n== pickup latency, {label}: {} ({:.1} claims per event; load before {load}, after {})",
                summary(&mut samples),
                polls as f64 / samples.len().max(1) as f64,
                load_average()
            );
        }
        running.shutdown().await;
    });
}

/// One business transaction: begin, insert a deal, optionally record its event, commit.
/// Returns the whole transaction's time and the time of the `record` call alone.
async fn business_tx(ctx: &TenantContext, n: usize, with_event: bool) -> (Duration, Duration) {
    let started = Instant::now();
    let mut tx = ctx.begin().await.expect("begin");
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO deals (title, amount, owner_id) VALUES ($1, $2::numeric, $3) RETURNING id",
    )
    .bind(format!("Deal {n}"))
    .bind("1250.00")
    .bind(1_i64)
    .fetch_one(&mut *tx)
    .await
    .expect("insert");
    let mut record_took = Duration::ZERO;
    if with_event {
        let before = Instant::now();
        leopard_events::record(
            &mut tx,
            NewEvent::created(
                "Deal",
                id,
                json!({"id": id, "title": format!("Deal {n}"), "amount": "1250.00", "owner_id": 1}),
            )
            .by(1),
        )
        .await
        .expect("record");
        record_took = before.elapsed();
    }
    tx.commit().await.expect("commit");
    (started.elapsed(), record_took)
}

/// The extra time `record` adds to a business transaction.
fn bench_record_overhead(c: &mut Criterion, rt: &Runtime, env: &Env, plan: Plan) {
    let ctx = &env.contexts[0];
    rt.block_on(async {
        env.reset().await;
        // Warm up both paths (prepared statements, caches).
        for n in 0..50 {
            business_tx(ctx, n, n % 2 == 0).await;
        }
        let load = load_average();
        let mut plain = Vec::with_capacity(plan.overhead_iters);
        let mut with_event = Vec::with_capacity(plan.overhead_iters);
        let mut record_calls = Vec::with_capacity(plan.overhead_iters);
        for n in 0..plan.overhead_iters {
            // Interleaved so that load drift hits both variants alike.
            plain.push(business_tx(ctx, 2 * n, false).await.0);
            let (total, record) = business_tx(ctx, 2 * n + 1, true).await;
            with_event.push(total);
            record_calls.push(record);
        }
        plain.sort();
        with_event.sort();
        let extra = quantile(&with_event, 0.5).as_secs_f64() - quantile(&plain, 0.5).as_secs_f64();
        println!(
            "\n== record overhead (load before {load}, after {})",
            load_average()
        );
        println!("tx insert only:          {}", summary(&mut plain));
        println!("tx insert + record:      {}", summary(&mut with_event));
        println!("record call alone:       {}", summary(&mut record_calls));
        println!("median difference:       {:.3} ms", extra * 1e3);
    });

    let mut group = c.benchmark_group("record_overhead");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(plan.measure)
        .throughput(Throughput::Elements(1));
    for (name, with_event) in [("insert_only", false), ("insert_and_record", true)] {
        group.bench_function(name, |b| {
            b.to_async(rt).iter_custom(|iters| async move {
                let mut total = Duration::ZERO;
                for n in 0..iters {
                    total += business_tx(ctx, n as usize, with_event).await.0;
                }
                total
            });
        });
    }
    group.finish();
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let plan = Plan::new();
    let mut criterion = Criterion::default().configure_from_args();
    let env = rt.block_on(Env::new());
    println!(
        "events bench: database {}, load {}",
        env.tenancy.db.name(),
        load_average()
    );
    let only = std::env::var("LEOPARD_EVENTS_BENCH").unwrap_or_default();
    if only.is_empty() || only.contains("throughput") {
        bench_throughput(&rt, &env, plan);
    }
    if only.is_empty() || only.contains("latency") {
        bench_latency(&rt, &env, plan);
    }
    if only.is_empty() || only.contains("record") {
        bench_record_overhead(&mut criterion, &rt, &env, plan);
    }
    criterion.final_summary();
    drop(env);
}
