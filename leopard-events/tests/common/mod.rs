//! Shared set-up of the event-bus tests: a private database with the bus's tables, tenants with
//! a `handled` table for handler side effects, a registry, and helpers to record events and
//! wait for conditions (polling the database, never asserting on time).
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use leopard_core::TenantSlug;
use leopard_events::{Backoff, EventBus, HandlerRegistry, NewEvent, WorkerConfig};
use leopard_tenancy::testing::TestTenancy;
use leopard_tenancy::{Migration, MigrationSet, NewTenant, ResolveConfig, TenantRegistry};

/// The tenant migration of the tests: a table handlers write into.
pub const HANDLED: Migration = Migration::new(
    1,
    "handled",
    "CREATE TABLE handled (id bigserial PRIMARY KEY, handler text NOT NULL,
                           event_id uuid NOT NULL, event_type text NOT NULL)",
);

/// A database with the bus's tables and `slugs` provisioned.
pub struct Bed {
    /// Database, migrator, provisioner.
    pub tenancy: TestTenancy,
    /// Registry over the tenants.
    pub registry: Arc<TenantRegistry>,
}

impl Bed {
    /// Provisions `slugs`.
    pub async fn new(slugs: &[&str]) -> Self {
        let set = MigrationSet::new(
            vec![Migration::new(1, "events", leopard_events::MIGRATION)],
            vec![HANDLED],
        )
        .expect("set");
        let tenancy = TestTenancy::new(set, 20).await.expect("database");
        for slug in slugs {
            tenancy
                .provisioner
                .create(NewTenant::new(
                    TenantSlug::parse(slug).expect("slug"),
                    *slug,
                ))
                .await
                .expect("tenant");
        }
        let registry = TenantRegistry::load(tenancy.db.pool().clone(), ResolveConfig::default())
            .await
            .expect("registry");
        Self { tenancy, registry }
    }

    /// Provisions `n` tenants `t0001`, `t0002`, … eight at a time (each provisioning is its own
    /// transaction), for scale tests.
    pub async fn with_tenants(n: usize) -> Self {
        use futures::StreamExt as _;
        let tenancy = TestTenancy::new(Self::set(), 20).await.expect("database");
        let provisioner = &tenancy.provisioner;
        futures::stream::iter((1..=n).map(|i| format!("t{i:04}")))
            .map(|slug| async move {
                provisioner
                    .create(NewTenant::new(
                        TenantSlug::parse(&slug).expect("slug"),
                        slug.as_str(),
                    ))
                    .await
                    .expect("tenant");
            })
            .buffer_unordered(8)
            .collect::<Vec<()>>()
            .await;
        let registry = TenantRegistry::load(tenancy.db.pool().clone(), ResolveConfig::default())
            .await
            .expect("registry");
        Self { tenancy, registry }
    }

    /// The migration set of the tests: the bus's tables, and [`HANDLED`] in every tenant.
    pub fn set() -> MigrationSet {
        MigrationSet::new(
            vec![Migration::new(1, "events", leopard_events::MIGRATION)],
            vec![HANDLED],
        )
        .expect("set")
    }

    /// The registry id of tenant `slug`.
    pub fn tenant_id(&self, slug: &str) -> i64 {
        self.registry.resolve_slug(slug).expect("tenant").id.0
    }

    /// A bus with `handlers` and fast test timings (backoff unit 20 ms, exponent 2, no jitter).
    pub fn bus(
        &self,
        handlers: HandlerRegistry,
        adjust: impl FnOnce(&mut WorkerConfig),
    ) -> Arc<EventBus> {
        let mut config = WorkerConfig {
            workers: 2,
            poll_interval: Duration::from_millis(50),
            backoff: Backoff {
                unit: Duration::from_millis(20),
                exponent: 2,
                jitter: 0.0,
                cap: Duration::from_secs(2),
            },
            ..WorkerConfig::default()
        };
        adjust(&mut config);
        Arc::new(EventBus::new(
            self.tenancy.db.pool().clone(),
            Arc::clone(&self.registry),
            handlers,
            config,
        ))
    }

    /// Records `events` in one transaction of `slug` and commits (or rolls back).
    pub async fn record(&self, slug: &str, events: Vec<NewEvent>, commit: bool) {
        let ctx = self.registry.context_for(slug).expect("tenant");
        let mut tx = ctx.begin().await.expect("tx");
        leopard_events::record_all(&mut tx, events)
            .await
            .expect("record");
        if commit {
            tx.commit().await.expect("commit");
        } else {
            tx.rollback().await.expect("rollback");
        }
    }

    /// `SELECT count(*)` of `sql` on the pool.
    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.tenancy.db.pool())
            .await
            .expect("count")
    }

    /// Waits (up to 60 s) until the boolean query `sql` is true.
    pub async fn wait_until(&self, sql: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let yes: bool = sqlx::query_scalar(sql)
                .fetch_one(self.tenancy.db.pool())
                .await
                .expect("condition");
            if yes {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {sql}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (up to 30 s) until `sql` counts `expected`.
    pub async fn wait_for(&self, sql: &str, expected: i64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.count(sql).await;
            if got == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {sql} = {expected} (last {got})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Writes a `handled` row (handler name, event id, event type) in the handler's transaction.
pub async fn write_handled(
    ctx: &mut leopard_events::HandlerContext<'_>,
    handler: &str,
    event: &leopard_events::Event,
) -> Result<(), leopard_events::HandlerError> {
    let tx = ctx
        .tx()
        .ok_or_else(|| leopard_events::HandlerError::new("no transaction"))?;
    sqlx::query("INSERT INTO handled (handler, event_id, event_type) VALUES ($1, $2, $3)")
        .bind(handler)
        .bind(event.id)
        .bind(&event.event_type)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A transactional handler named `.0` for the event types `.1` that writes a `handled` row.
pub struct Write(pub &'static str, pub &'static [&'static str]);

#[leopard_events::async_trait]
impl leopard_events::EventHandler for Write {
    fn name(&self) -> &'static str {
        self.0
    }
    fn event_types(&self) -> &'static [&'static str] {
        self.1
    }
    async fn handle(
        &self,
        ctx: &mut leopard_events::HandlerContext<'_>,
        event: &leopard_events::Event,
    ) -> Result<(), leopard_events::HandlerError> {
        write_handled(ctx, self.0, event).await
    }
}

/// A registry of `handlers` (registered by the "tests" crate).
pub fn registry(handlers: Vec<Box<dyn leopard_events::EventHandler>>) -> HandlerRegistry {
    HandlerRegistry::from_handlers(handlers.into_iter().map(|h| (h, "tests"))).expect("registry")
}

/// A registry holding only `Write("write", &["*"])`.
pub fn write() -> HandlerRegistry {
    registry(vec![Box::new(Write("write", &["*"]))])
}
