//! The policy engine's hot paths: `check` (target p50 ≤ 1 µs, p99 ≤ 5 µs with 1,000
//! groups/grants) and `filter` (target ≤ 20 µs).
//!
//! The tenant has 1,000 custom groups with random permission sets; the benchmarked principals
//! belong to a built-in role plus 50 of those groups and are assigned 20 branches (region
//! managers: 5 regions holding 100 branches). After Criterion's medians, 200,000 single calls per
//! case are timed to print p50/p99.

use std::hint::black_box;
use std::time::Instant;

use criterion::Criterion;
use leopard::core::UserId;
use leopard::rbac::{
    check, filter, Action, Permission, PermissionSet, Principal, Resource, ResourceKind, Role,
    ScopeColumns,
};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

fn random_set(rng: &mut StdRng) -> PermissionSet {
    let all: Vec<Permission> = Permission::all().collect();
    let mut set = PermissionSet::default();
    for _ in 0..rng.gen_range(5..40) {
        set.insert(all[rng.gen_range(0..all.len())]);
    }
    set
}

fn principals(rng: &mut StdRng) -> Vec<(&'static str, Principal)> {
    let groups: Vec<(String, PermissionSet)> = (0..1000)
        .map(|i| (format!("custom-{i}"), random_set(rng)))
        .collect();
    let pick = |rng: &mut StdRng| -> Vec<(String, PermissionSet)> {
        (0..50)
            .map(|_| groups[rng.gen_range(0..groups.len())].clone())
            .collect()
    };
    let mut out = Vec::new();
    for (label, role) in [
        ("consultant", Role::Consultant),
        ("branch_admin", Role::BranchAdmin),
        ("region_manager", Role::RegionManager),
        ("super_admin", Role::SuperAdmin),
    ] {
        let mut member = pick(rng);
        member.push((role.group_name().to_owned(), role.default_permissions()));
        let (branches, regions, region_branches): (Vec<i64>, Vec<i64>, Vec<i64>) =
            if role == Role::RegionManager {
                (Vec::new(), (1..=5).collect(), (1..=100).collect())
            } else {
                ((1..=20).collect(), Vec::new(), Vec::new())
            };
        out.push((
            label,
            Principal::new(
                UserId(7),
                member,
                PermissionSet::default(),
                branches,
                regions,
                region_branches,
            ),
        ));
    }
    out
}

fn resources(rng: &mut StdRng) -> Vec<(Action, Resource)> {
    let kinds = [
        ResourceKind::Client,
        ResourceKind::Task,
        ResourceKind::Note,
        ResourceKind::Branch,
        ResourceKind::Institute,
        ResourceKind::Notification,
    ];
    let actions = [Action::View, Action::Add, Action::Change, Action::Delete];
    (0..4096)
        .map(|_| {
            let kind = kinds[rng.gen_range(0..kinds.len())];
            let branch = rng.gen_bool(0.9).then(|| rng.gen_range(1..=200));
            let resource = Resource::new(kind, branch).owned_by([rng.gen_range(1..=20)]);
            (actions[rng.gen_range(0..actions.len())], resource)
        })
        .collect()
}

fn percentiles(mut samples: Vec<u64>) -> (u64, u64) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    (at(0.50), at(0.99))
}

fn bench(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(42);
    let principals = principals(&mut rng);
    let resources = resources(&mut rng);
    let columns = ScopeColumns {
        branch: "c.branch_id",
        owners: &["c.assigned_to_id", "c.created_by_id"],
        region: "NULL",
    };

    let mut group = c.benchmark_group("rbac");
    for (label, principal) in &principals {
        let mut i = 0;
        group.bench_function(format!("check/{label}"), |b| {
            b.iter(|| {
                i = (i + 1) % resources.len();
                let (action, resource) = &resources[i];
                black_box(check(principal, *action, resource))
            })
        });
        group.bench_function(format!("filter/{label}"), |b| {
            b.iter(|| {
                black_box(filter(
                    principal,
                    Action::View,
                    ResourceKind::Client,
                    &columns,
                    1,
                ))
            })
        });
    }
    group.finish();

    // Only when benchmarking (`cargo bench` passes `--bench`), not under `cargo test --benches`.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    println!("\nsingle-call percentiles (200,000 calls each, ns):");
    for (label, principal) in &principals {
        let mut checks = Vec::with_capacity(200_000);
        let mut filters = Vec::with_capacity(200_000);
        for i in 0..200_000 {
            let (action, resource) = &resources[i % resources.len()];
            let started = Instant::now();
            black_box(check(principal, *action, resource));
            checks.push(started.elapsed().as_nanos() as u64);
            let started = Instant::now();
            black_box(filter(
                principal,
                Action::View,
                ResourceKind::Client,
                &columns,
                1,
            ));
            filters.push(started.elapsed().as_nanos() as u64);
        }
        let (c50, c99) = percentiles(checks);
        let (f50, f99) = percentiles(filters);
        println!(
            "  {label:<15} check p50 {c50:>5} p99 {c99:>5}   filter p50 {f50:>5} p99 {f99:>5}"
        );
    }
}

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(30)
        .measurement_time(std::time::Duration::from_secs(2))
        .warm_up_time(std::time::Duration::from_millis(500))
        .configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}
