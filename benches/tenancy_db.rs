//! Database-bound costs of schema-per-tenant PostgreSQL: provisioning, migration runs over many
//! tenants, and the overhead of the tenant transaction on a point read.
//!
//! Needs PostgreSQL: every group runs in its own fresh database from
//! `leopard_tenancy::testing::TestDatabase` (`DATABASE_URL`, else a private cluster started from
//! the local binaries). Run with
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench tenancy_db`.
//!
//! Every tenant gets the tenant migration [`CRM_BASE`] (4 tables, 4 indexes, 10 seed rows).
//!
//! - `provision/create`: one `Provisioner::create` of a new, unique slug per iteration (the whole
//!   call: registry rows, schema, migration, status row, read-back). Target: median ≤ 150 ms.
//! - `migrate_all_up_to_date/<n>_tenants`: `Migrator::migrate_all` over `n` = 1,000 provisioned
//!   tenants with nothing pending (advisory lock, one status query). Target: ≤ 1 s.
//! - `migrate_all_pending/jobs_<j>`: `Migrator::migrate_all` applying one trivial pending
//!   migration ([`ADD_TAGS`], a `CREATE TABLE`) to the same 1,000 tenants with `jobs` = 1 and 8;
//!   throughput is reported in tenants/s. Before each timed run (untimed) the migration is
//!   reverted in every schema (table dropped, ledger row deleted, status version set back to 1).
//! - `point_read/*`: `SELECT id, label FROM items WHERE id = $1` on one of 10,000 rows, through
//!   `TenantContext::begin` + commit (same tenant every time, or one of 20 tenants at random)
//!   versus a pool whose connections fixed `search_path` once in `after_connect` (with an
//!   explicit `BEGIN`/`COMMIT`, and in autocommit). `serial` is one client; `concurrent` is 8
//!   client tasks on 8-connection pools. Target: tenant transaction ≥ 80 % of the fixed-path
//!   throughput.
//!
//! Under `cargo test --benches` (no `--bench` flag) the tenant counts shrink to a smoke test.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use futures::StreamExt as _;
use leopard_core::TenantSlug;
use leopard_tenancy::migrate::MigrateAllOptions;
use leopard_tenancy::testing::TestTenancy;
use leopard_tenancy::{
    Migration, MigrationSet, Migrator, NewTenant, ResolveConfig, TenantContext, TenantRegistry,
};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Executor as _;
use tokio::runtime::Runtime;

/// The tenant migration every benchmark tenant is provisioned with: a small CRM schema.
const CRM_BASE: Migration = Migration::new(
    1,
    "crm_base",
    "CREATE TABLE content_types (
         id        integer PRIMARY KEY,
         app_label text NOT NULL,
         model     text NOT NULL,
         UNIQUE (app_label, model));
     INSERT INTO content_types (id, app_label, model) VALUES
         (1, 'auth', 'permission'), (2, 'auth', 'group'), (3, 'crm', 'user'),
         (4, 'crm', 'branch'), (5, 'crm', 'agent'), (6, 'crm', 'client'), (7, 'crm', 'note'),
         (8, 'crm', 'task'), (9, 'crm', 'reminder'), (10, 'crm', 'item');
     CREATE TABLE clients (
         id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
         first_name text NOT NULL,
         last_name  text NOT NULL,
         email      text,
         created_at timestamptz NOT NULL DEFAULT now());
     CREATE INDEX clients_email_idx ON clients (email);
     CREATE TABLE notes (
         id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
         client_id  bigint NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
         body       text NOT NULL,
         created_at timestamptz NOT NULL DEFAULT now());
     CREATE INDEX notes_client_idx ON notes (client_id);
     CREATE TABLE items (
         id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
         label text NOT NULL);",
);

/// The trivial pending migration of `migrate_all_pending`.
const ADD_TAGS: Migration = Migration::new(
    2,
    "add_tags",
    "CREATE TABLE tags (id bigint PRIMARY KEY, label text NOT NULL)",
);

/// Rows in each tenant's `items` table for the point reads.
const ITEMS: i64 = 10_000;
/// Client tasks of the `concurrent` point reads (and connections per pool).
const CLIENTS: u64 = 8;

/// Tenant counts and timings; smaller under `cargo test --benches`.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Tenants of the migration benchmarks.
    migrate_tenants: usize,
    /// Tenants of the point reads.
    read_tenants: usize,
    /// Measurement time of the short benchmarks.
    measure: Duration,
}

impl Plan {
    fn new() -> Self {
        let benching = std::env::args().any(|arg| arg == "--bench");
        let migrate_tenants = std::env::var("LEOPARD_BENCH_TENANTS")
            .ok()
            .and_then(|raw| raw.parse().ok())
            .unwrap_or(if benching { 1_000 } else { 10 });
        Self {
            migrate_tenants,
            read_tenants: if benching { 20 } else { 3 },
            measure: Duration::from_secs(if benching { 4 } else { 1 }),
        }
    }
}

fn slug(raw: &str) -> TenantSlug {
    TenantSlug::parse(raw).expect("valid slug")
}

/// A fresh database with the registry tables, and the tools to fill it.
struct Env(TestTenancy);

impl std::ops::Deref for Env {
    type Target = TestTenancy;
    fn deref(&self) -> &TestTenancy {
        &self.0
    }
}

impl Env {
    async fn new(pool_size: u32) -> Self {
        let set = MigrationSet::new(Vec::new(), vec![CRM_BASE]).expect("valid set");
        Self(
            TestTenancy::new(set, pool_size)
                .await
                .expect("test database (set DATABASE_URL)"),
        )
    }

    /// Provisions `count` tenants `<prefix>0000`, `<prefix>0001`, … four at a time and returns
    /// how long that took.
    async fn provision_many(&self, prefix: &str, count: usize) -> Duration {
        let started = Instant::now();
        futures::stream::iter(0..count)
            .map(|i| {
                let new = NewTenant::new(slug(&format!("{prefix}{i:04}")), format!("Tenant {i}"));
                async move { self.provisioner.create(new).await.expect("provisioned") }
            })
            .buffer_unordered(4)
            .for_each(|_| async {})
            .await;
        started.elapsed()
    }
}

/// (a) `Provisioner::create` of fresh tenants.
fn bench_provisioning(c: &mut Criterion, rt: &Runtime, plan: Plan) {
    let mut group = c.benchmark_group("provision");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(plan.measure * 2);
    let mut env: Option<Env> = None;
    let counter = AtomicU64::new(0);
    group.bench_function("create", |b| {
        let env = &*env.get_or_insert_with(|| rt.block_on(Env::new(4)));
        let counter = &counter;
        b.to_async(rt).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let new = NewTenant::new(slug(&format!("p{n:05}")), format!("Provisioned {n}"));
                let started = Instant::now();
                let done = env.provisioner.create(new).await.expect("provisioned");
                total += started.elapsed();
                assert_eq!(done.tenant.domains.len(), 2);
            }
            total
        });
    });
    group.finish();
    if let Some(env) = env {
        println!(
            "provision/create: {} tenants created in database {}",
            counter.load(Ordering::Relaxed),
            env.db.name()
        );
    }
}

/// Reverts [`ADD_TAGS`] in every tenant schema so that it is pending again (untimed).
async fn revert_add_tags(pool: &PgPool, schemas: &[String]) {
    for chunk in schemas.chunks(100) {
        let mut script = String::new();
        for schema in chunk {
            script.push_str(&format!(
                "DROP TABLE \"{schema}\".tags; \
                 DELETE FROM \"{schema}\".leopard_migrations WHERE version = 2;\n"
            ));
        }
        pool.execute(script.as_str()).await.expect("revert");
    }
    pool.execute("UPDATE public.leopard_tenant_migrations SET version = 1, state = 'ok'")
        .await
        .expect("reset status");
    pool.execute("VACUUM ANALYZE public.leopard_tenant_migrations")
        .await
        .expect("vacuum status");
}

/// (b) and (c): `Migrator::migrate_all` over many tenants, with nothing and with one migration
/// pending.
fn bench_migrations(c: &mut Criterion, rt: &Runtime, plan: Plan) {
    let n = plan.migrate_tenants;
    let mut env: Option<(Env, Vec<String>)> = None;
    let mut setup = || {
        rt.block_on(async {
            let env = Env::new(12).await;
            let took = env.provision_many("m", n).await;
            println!(
                "setup: provisioned {n} tenants in {took:.1?} ({:.1} tenants/s, 4 at a time)",
                n as f64 / took.as_secs_f64()
            );
            let schemas: Vec<String> =
                sqlx::query_scalar("SELECT schema_name FROM public.leopard_tenants")
                    .fetch_all(env.db.pool())
                    .await
                    .expect("schemas");
            assert_eq!(schemas.len(), n);
            (env, schemas)
        })
    };

    let mut group = c.benchmark_group("migrate_all_up_to_date");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(plan.measure);
    group.bench_function(format!("{n}_tenants"), |b| {
        let (env, _) = &*env.get_or_insert_with(&mut setup);
        let migrator = Migrator::new(env.db.pool().clone(), Arc::clone(&env.set));
        let migrator = &migrator;
        b.to_async(rt).iter(|| async move {
            let report = migrator
                .migrate_all(MigrateAllOptions {
                    jobs: 8,
                    ..MigrateAllOptions::default()
                })
                .await
                .expect("migrate_all");
            assert_eq!((report.tenants, report.pending), (n, 0));
            report
        });
    });
    group.finish();

    let mut group = c.benchmark_group("migrate_all_pending");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_millis(100))
        .throughput(Throughput::Elements(n as u64));
    for jobs in [1usize, 8] {
        group.bench_with_input(BenchmarkId::new("jobs", jobs), &jobs, |b, &jobs| {
            let (env, schemas) = &*env.get_or_insert_with(&mut setup);
            let set = MigrationSet::new(Vec::new(), vec![CRM_BASE, ADD_TAGS]).expect("valid set");
            let migrator = Migrator::new(env.db.pool().clone(), Arc::new(set));
            let (migrator, pool, schemas) = (&migrator, env.db.pool(), schemas.as_slice());
            b.to_async(rt).iter_custom(|iters| async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // Untimed: a fresh status row says version 1 unless a run already applied 2.
                    let applied: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM public.leopard_tenant_migrations WHERE version = 2",
                    )
                    .fetch_one(pool)
                    .await
                    .expect("status");
                    if applied > 0 {
                        revert_add_tags(pool, schemas).await;
                    }
                    let started = Instant::now();
                    let report = migrator
                        .migrate_all(MigrateAllOptions {
                            jobs,
                            ..MigrateAllOptions::default()
                        })
                        .await
                        .expect("migrate_all");
                    total += started.elapsed();
                    assert!(report.is_success(), "{report:?}");
                    assert_eq!(report.migrated, n);
                }
                total
            });
        });
    }
    group.finish();
}

/// The point read of every variant; returns the row's label.
async fn read_item<'c, E>(executor: E, id: i64) -> String
where
    E: sqlx::PgExecutor<'c>,
{
    sqlx::query_scalar("SELECT label FROM items WHERE id = $1")
        .bind(id)
        .fetch_one(executor)
        .await
        .expect("point read")
}

/// Where a point read goes.
#[derive(Clone)]
enum Target {
    /// Autocommit on a pool whose `search_path` was fixed at connect time.
    FixedAutocommit(PgPool),
    /// `BEGIN`, read, `COMMIT` on that pool.
    FixedTx(PgPool),
    /// `TenantContext::begin`, read, commit; the context is picked by the read's number.
    TenantTx(Arc<Vec<TenantContext>>),
}

impl Target {
    /// One point read; `n` picks the row (and the tenant of a multi-tenant `TenantTx`).
    async fn read(&self, n: u64) {
        // A cheap scramble of `n` so that consecutive reads hit different rows.
        let id = i64::try_from(n.wrapping_mul(0x9e37_79b9) % ITEMS as u64).expect("small") + 1;
        match self {
            Self::FixedAutocommit(pool) => {
                read_item(pool, id).await;
            }
            Self::FixedTx(pool) => {
                let mut tx = pool.begin().await.expect("begin");
                read_item(&mut *tx, id).await;
                tx.commit().await.expect("commit");
            }
            Self::TenantTx(contexts) => {
                let pick = usize::try_from(n.wrapping_mul(0x2545_f491) >> 7).expect("fits")
                    % contexts.len();
                let mut tx = contexts[pick].begin().await.expect("begin");
                read_item(&mut *tx, id).await;
                tx.commit().await.expect("commit");
            }
        }
    }
}

/// The point-read database: `tenants` tenants with [`ITEMS`] rows each, labelled `<slug>-<id>`.
struct ReadEnv {
    _env: Env,
    /// One target per entry of [`READ_VARIANTS`].
    targets: Vec<Target>,
}

async fn read_env(tenants: usize) -> ReadEnv {
    let env = Env::new(4).await;
    env.provision_many("r", tenants).await;
    let options = || PgPoolOptions::new().max_connections(CLIENTS as u32);
    let tenant_pool = options().connect(env.db.url()).await.expect("tenant pool");
    let registry = TenantRegistry::load(tenant_pool, ResolveConfig::default())
        .await
        .expect("registry");
    let contexts: Vec<TenantContext> = registry
        .tenants()
        .into_iter()
        .map(|tenant| registry.context(tenant))
        .collect();
    assert_eq!(contexts.len(), tenants);
    for ctx in &contexts {
        let mut tx = ctx.begin().await.expect("begin");
        sqlx::query(
            "INSERT INTO items (label)
             SELECT $1 || '-' || g FROM generate_series(1, $2::bigint) AS g",
        )
        .bind(ctx.tenant().slug.as_str())
        .bind(ITEMS)
        .execute(&mut *tx)
        .await
        .expect("seed items");
        tx.commit().await.expect("commit");
    }
    env.db
        .pool()
        .execute("VACUUM ANALYZE")
        .await
        .expect("vacuum");

    let first = contexts[0].tenant().schema.quoted();
    let fixed_pool = options()
        .after_connect(move |conn, _meta| {
            let sql = format!("SET search_path TO {first}, public");
            Box::pin(async move {
                conn.execute(sql.as_str()).await?;
                Ok(())
            })
        })
        .connect(env.db.url())
        .await
        .expect("fixed-path pool");

    // Every variant must read the row it asked for, from the tenant it asked for.
    let first_slug = contexts[0].tenant().slug.as_str().to_owned();
    assert_eq!(read_item(&fixed_pool, 7).await, format!("{first_slug}-7"));
    for ctx in &contexts {
        let mut tx = ctx.begin().await.expect("begin");
        let label = read_item(&mut *tx, 42).await;
        tx.commit().await.expect("commit");
        assert_eq!(label, format!("{}-42", ctx.tenant().slug));
    }

    let all = Arc::new(contexts);
    let same = Arc::new(vec![all[0].clone()]);
    ReadEnv {
        _env: env,
        targets: vec![
            Target::FixedAutocommit(fixed_pool.clone()),
            Target::FixedTx(fixed_pool),
            Target::TenantTx(same),
            Target::TenantTx(all),
        ],
    }
}

/// The point-read variants, in the order of [`ReadEnv::targets`].
const READ_VARIANTS: [&str; 4] = [
    "fixed_path_autocommit",
    "fixed_path_tx",
    "tenant_tx_same_tenant",
    "tenant_tx_random_tenant",
];

/// (d) a point read through the tenant transaction versus a fixed `search_path`.
fn bench_point_reads(c: &mut Criterion, rt: &Runtime, plan: Plan) {
    let mut env: Option<ReadEnv> = None;
    let mut group = c.benchmark_group("point_read");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(plan.measure)
        .throughput(Throughput::Elements(1));
    for (i, name) in READ_VARIANTS.iter().enumerate() {
        group.bench_function(format!("serial/{name}"), |b| {
            let env = &*env.get_or_insert_with(|| rt.block_on(read_env(plan.read_tenants)));
            let target = &env.targets[i];
            let counter = AtomicU64::new(0);
            let counter = &counter;
            b.to_async(rt)
                .iter(|| target.read(counter.fetch_add(1, Ordering::Relaxed)));
        });
    }
    for (i, name) in READ_VARIANTS.iter().enumerate() {
        group.bench_function(format!("concurrent/{name}"), |b| {
            let env = &*env.get_or_insert_with(|| rt.block_on(read_env(plan.read_tenants)));
            let target = &env.targets[i];
            b.to_async(rt).iter_custom(|iters| {
                let target = target.clone();
                async move {
                    let started = Instant::now();
                    let tasks: Vec<_> = (0..CLIENTS)
                        .map(|client| {
                            let target = target.clone();
                            // Client `k` does reads k, k + CLIENTS, k + 2 * CLIENTS, … < iters.
                            tokio::spawn(async move {
                                let mut n = client;
                                while n < iters {
                                    target.read(n).await;
                                    n += CLIENTS;
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.expect("client task");
                    }
                    started.elapsed()
                }
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
    bench_provisioning(&mut criterion, &rt, plan);
    bench_migrations(&mut criterion, &rt, plan);
    bench_point_reads(&mut criterion, &rt, plan);
    criterion.final_summary();
}
