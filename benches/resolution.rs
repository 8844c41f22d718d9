//! Host resolution in the in-memory tenant registry, with no database IO.
//!
//! The registry holds 10,000 tenants built with `TenantRegistry::from_entries`:
//! - tenants `t0` … `t9899` have the two derived domain rows `t<i>-immigrate.localhost` and
//!   `t<i>.localhost`; every tenth one also has a custom domain `crm.client<i>.example.com`;
//! - tenants `t9900` … `t9999` have no domain rows at all and resolve only through the
//!   `<slug>.<base>` / `<slug>-<app>.<base>` patterns.
//!
//! Measured, one `TenantRegistry::resolve_host` call per iteration, cycling through 4,096
//! pre-generated hosts per case so that the hash lookups do not hit the same bucket every time:
//! - `resolve/exact_*`: the normalised host is a domain row (one hash lookup);
//! - `resolve/normalised_*`: `www.` prefix, upper case, a port, or all three, then a domain hit;
//! - `resolve/pattern_*`: no domain row, resolved by stripping `.localhost` (and `-immigrate`)
//!   and looking the slug up;
//! - `resolve/miss_*`: unknown hosts under the base domain (two slug probes) and foreign hosts.
//!
//! Target: p50 ≤ 1 µs per resolution. Criterion reports the mean time per call of each sample
//! and the median over samples; after the Criterion run (`cargo bench`, not `cargo test`) the
//! bench also times 200,000 individual calls per case and prints their p50/p99 (each including
//! the ~20 ns cost of reading the clock twice).
//!
//! The registry needs a `PgPool` only to hand out contexts; a lazy pool that never connects is
//! used, created inside a Tokio runtime context.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use leopard_core::{TenantId, TenantSlug};
use leopard_tenancy::{ResolveConfig, SubscriptionStatus, TenantInfo, TenantRegistry};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

/// Tenants in the registry.
const TENANTS: usize = 10_000;
/// Tenants from this index on have no domain rows (pattern-only).
const PATTERN_ONLY_FROM: usize = 9_900;
/// Hosts per case; a power of two so the cycling index is a mask.
const HOSTS_PER_CASE: usize = 4_096;
/// Individual calls timed per case in the percentile pass.
const PERCENTILE_CALLS: usize = 200_000;

/// Builds the 10,000-tenant registry over a pool that never connects.
fn build_registry() -> TenantRegistry {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .connect_lazy("postgres://unused@127.0.0.1/unused")
        .expect("a lazy pool needs no server");
    let entries = (0..TENANTS).map(|i| {
        let slug = TenantSlug::parse(&format!("t{i}")).expect("valid slug");
        let mut domains = Vec::new();
        if i < PATTERN_ONLY_FROM {
            domains.push(format!("t{i}-immigrate.localhost"));
            domains.push(format!("t{i}.localhost"));
            if i % 10 == 0 {
                domains.push(format!("crm.client{i}.example.com"));
            }
        }
        let info = TenantInfo {
            id: TenantId(i64::try_from(i).expect("small index") + 1),
            schema: slug.schema_name(),
            name: format!("Tenant {i}"),
            slug,
            is_active: true,
            status: SubscriptionStatus::Active,
            max_users: 50,
        };
        (info, domains)
    });
    TenantRegistry::from_entries(pool, ResolveConfig::default(), entries)
}

/// One benchmark case: a name, its hosts, and the slug each host must resolve to (`None` for a
/// miss).
struct Case {
    name: &'static str,
    hosts: Vec<String>,
    expected: Vec<Option<String>>,
}

/// Generates `HOSTS_PER_CASE` hosts from random tenant indexes in `range`.
fn case(
    rng: &mut StdRng,
    name: &'static str,
    range: std::ops::Range<usize>,
    host: impl Fn(usize) -> (String, Option<String>),
) -> Case {
    let (hosts, expected) = (0..HOSTS_PER_CASE)
        .map(|_| host(rng.gen_range(range.clone())))
        .unzip();
    Case {
        name,
        hosts,
        expected,
    }
}

fn cases() -> Vec<Case> {
    let mut rng = StdRng::seed_from_u64(0x1e0_9a2d);
    let with_domains = 0..PATTERN_ONLY_FROM;
    let hit = |i: usize| Some(format!("t{i}"));
    vec![
        case(&mut rng, "exact_primary", with_domains.clone(), |i| {
            (format!("t{i}-immigrate.localhost"), hit(i))
        }),
        case(&mut rng, "exact_slug_domain", with_domains.clone(), |i| {
            (format!("t{i}.localhost"), hit(i))
        }),
        case(&mut rng, "exact_custom", 0..PATTERN_ONLY_FROM / 10, |i| {
            (format!("crm.client{}.example.com", i * 10), hit(i * 10))
        }),
        case(&mut rng, "normalised_www", with_domains.clone(), |i| {
            (format!("www.t{i}.localhost"), hit(i))
        }),
        case(
            &mut rng,
            "normalised_upper_case",
            with_domains.clone(),
            |i| (format!("T{i}-Immigrate.LocalHost"), hit(i)),
        ),
        case(&mut rng, "normalised_port", with_domains.clone(), |i| {
            (format!("t{i}.localhost:8000"), hit(i))
        }),
        case(&mut rng, "normalised_all", with_domains, |i| {
            (format!("WWW.T{i}-IMMIGRATE.localhost:443"), hit(i))
        }),
        case(&mut rng, "pattern_slug", PATTERN_ONLY_FROM..TENANTS, |i| {
            (format!("t{i}.localhost"), hit(i))
        }),
        case(
            &mut rng,
            "pattern_slug_app",
            PATTERN_ONLY_FROM..TENANTS,
            |i| (format!("t{i}-immigrate.localhost"), hit(i)),
        ),
        case(&mut rng, "miss_under_base", 0..TENANTS, |i| {
            (format!("nobody{i}-immigrate.localhost"), None)
        }),
        case(&mut rng, "miss_foreign", 0..TENANTS, |i| {
            (format!("shop{i}.example.org"), None)
        }),
    ]
}

/// Checks that every host of every case resolves as expected before anything is timed.
fn verify(registry: &TenantRegistry, cases: &[Case]) {
    assert_eq!(registry.tenant_count(), TENANTS);
    for case in cases {
        for (host, expected) in case.hosts.iter().zip(&case.expected) {
            let got = registry
                .resolve_host(host)
                .map(|t| t.slug.as_str().to_owned());
            assert_eq!(&got, expected, "{}: {host}", case.name);
        }
    }
}

fn bench_resolution(c: &mut Criterion, registry: &TenantRegistry, cases: &[Case]) {
    let mut group = c.benchmark_group("resolve");
    group.throughput(Throughput::Elements(1));
    for case in cases {
        group.bench_function(case.name, |b| {
            let mut next = 0usize;
            b.iter(|| {
                let host = &case.hosts[next & (HOSTS_PER_CASE - 1)];
                next = next.wrapping_add(1);
                black_box(registry.resolve_host(black_box(host)))
            });
        });
    }
    group.finish();
}

/// Times `PERCENTILE_CALLS` individual calls per case and prints p50/p99.
fn percentiles(registry: &TenantRegistry, cases: &[Case]) {
    println!();
    println!("per-call latency ({PERCENTILE_CALLS} timed calls per case, target p50 <= 1 us):");
    println!("{:<24} {:>10} {:>10} {:>10}", "case", "p50", "p99", "max");
    let mut samples: Vec<Duration> = Vec::with_capacity(PERCENTILE_CALLS);
    for case in cases {
        samples.clear();
        for i in 0..PERCENTILE_CALLS {
            let host = &case.hosts[i & (HOSTS_PER_CASE - 1)];
            let started = Instant::now();
            let found = registry.resolve_host(black_box(host));
            let elapsed = started.elapsed();
            black_box(found);
            samples.push(elapsed);
        }
        samples.sort_unstable();
        let at = |q: f64| {
            // Nearest-rank percentile; the index is always within bounds.
            let rank = (q * samples.len() as f64).ceil() as usize;
            samples[rank.clamp(1, samples.len()) - 1]
        };
        println!(
            "{:<24} {:>10.1?} {:>10.1?} {:>10.1?}",
            case.name,
            at(0.50),
            at(0.99),
            at(1.0)
        );
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    // `connect_lazy` spawns the pool's maintenance task, which needs a runtime context.
    let _enter = runtime.enter();
    let registry = build_registry();
    let cases = cases();
    verify(&registry, &cases);

    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    bench_resolution(&mut criterion, &registry, &cases);
    criterion.final_summary();

    // Only when benchmarking (`cargo bench` passes `--bench`), not under `cargo test --benches`.
    if std::env::args().any(|arg| arg == "--bench") {
        percentiles(&registry, &cases);
    }
}
