//! Embedded migrations in two scopes: shared (the `public` schema) and tenant (every tenant
//! schema).
//!
//! - Shared migrations are recorded in `public.leopard_shared_migrations`, per component
//!   (`leopard` for the registry itself, `app` for the embedding application).
//! - Each tenant schema records its own ledger in `leopard_migrations`, written in the same
//!   transaction as the migration it records, so a crash never leaves a step half-recorded.
//! - `public.leopard_tenant_migrations` keeps one status row per tenant (version, state, error,
//!   timings). "Is anything pending anywhere?" is one query over it, and `migrate --all` only
//!   touches tenants whose status is behind, failed or interrupted.
//! - A run over all tenants takes a session advisory lock, runs `jobs` tenants at a time, one
//!   transaction per migration per tenant, and resumes after a crash at the first step a tenant's
//!   ledger lacks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use leopard_core::{SchemaName, TenantId};
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::Connection as _;

use crate::context::begin_statement;
use crate::TenancyError;

/// One embedded migration: a version (strictly increasing within its set), a name and SQL text
/// (several statements allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Version, strictly increasing within its set; never reused.
    pub version: i64,
    /// Short name, for reports.
    pub name: &'static str,
    /// The SQL it runs.
    pub sql: &'static str,
}

impl Migration {
    /// A migration; use with `include_str!`.
    pub const fn new(version: i64, name: &'static str, sql: &'static str) -> Self {
        Self { version, name, sql }
    }

    /// FNV-1a of the SQL text, stored in the ledger to catch edited migrations.
    pub fn checksum(&self) -> i64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.sql.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        i64::from_ne_bytes(hash.to_ne_bytes())
    }
}

/// The registry's own shared migrations (component `leopard`).
pub const REGISTRY_MIGRATIONS: &[Migration] = &[Migration::new(
    1,
    "registry",
    include_str!("../migrations/0001_registry.sql"),
)];

/// An application's migrations: shared ones for `public` (component `app`) and tenant ones for
/// every tenant schema.
#[derive(Debug, Clone, Default)]
pub struct MigrationSet {
    shared: Vec<Migration>,
    tenant: Vec<Migration>,
}

impl MigrationSet {
    /// Validates that versions are positive and strictly increasing in both lists.
    pub fn new(shared: Vec<Migration>, tenant: Vec<Migration>) -> Result<Self, TenancyError> {
        for (scope, list) in [("shared", &shared), ("tenant", &tenant)] {
            let mut last = 0;
            for m in list {
                if m.version <= last {
                    return Err(TenancyError::InvalidMigrationSet(format!(
                        "{scope} migration {} ({}) must have a version greater than {last}",
                        m.version, m.name
                    )));
                }
                last = m.version;
            }
        }
        Ok(Self { shared, tenant })
    }

    /// The shared (public-schema) migrations of the application.
    pub fn shared(&self) -> &[Migration] {
        &self.shared
    }

    /// The tenant migrations.
    pub fn tenant(&self) -> &[Migration] {
        &self.tenant
    }

    /// The version every tenant schema reaches when fully migrated (0 with no migrations).
    pub fn latest_tenant_version(&self) -> i64 {
        self.tenant.last().map_or(0, |m| m.version)
    }
}

/// What happened to one tenant in a migration run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantOutcome {
    /// Every pending migration was applied.
    Migrated {
        /// How many migrations were applied.
        applied: usize,
    },
    /// Nothing was pending.
    UpToDate,
    /// A migration failed; earlier ones in the run stay applied.
    Failed {
        /// The database's message.
        error: String,
    },
    /// Not started because the run stopped at an earlier failure.
    NotStarted,
}

/// One progress notification of [`Migrator::migrate_all`].
#[derive(Debug, Clone)]
pub struct Progress {
    /// The tenant schema just finished.
    pub schema: SchemaName,
    /// How it ended.
    pub outcome: TenantOutcome,
    /// Tenants finished so far in this run.
    pub done: usize,
    /// Tenants this run has to look at.
    pub total: usize,
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Options of [`Migrator::migrate_all`].
#[derive(Clone)]
pub struct MigrateAllOptions {
    /// How many tenants migrate at once (≥ 1); the pool needs `jobs + 1` connections.
    pub jobs: usize,
    /// Keep going past failing tenants and report them, instead of stopping at the first.
    pub skip_failing: bool,
    /// Called after each tenant.
    pub progress: Option<ProgressFn>,
}

impl Default for MigrateAllOptions {
    fn default() -> Self {
        Self {
            jobs: 4,
            skip_failing: false,
            progress: None,
        }
    }
}

impl std::fmt::Debug for MigrateAllOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MigrateAllOptions")
            .field("jobs", &self.jobs)
            .field("skip_failing", &self.skip_failing)
            .finish_non_exhaustive()
    }
}

/// The result of [`Migrator::migrate_all`].
#[derive(Debug, Clone, Default)]
pub struct MigrateReport {
    /// Tenants in the registry.
    pub tenants: usize,
    /// Tenants whose status said something was pending (the rest were skipped with no query).
    pub pending: usize,
    /// Tenants that applied at least one migration.
    pub migrated: usize,
    /// Tenants that turned out to be up to date.
    pub up_to_date: usize,
    /// Tenants that failed, with the error.
    pub failed: Vec<(SchemaName, String)>,
    /// Tenants not started because the run stopped at a failure.
    pub not_started: usize,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl MigrateReport {
    /// Whether every tenant ended fully migrated.
    pub fn is_success(&self) -> bool {
        self.failed.is_empty() && self.not_started == 0
    }
}

/// A tenant whose status says it may need migrating.
#[derive(Debug, Clone)]
struct PendingTenant {
    id: TenantId,
    schema: SchemaName,
}

/// Session advisory lock key held by a migration run over all tenants (`"leopmig"` in ASCII).
pub const MIGRATE_LOCK_KEY: i64 = 0x006c_656f_706d_6967;

/// Applies shared and tenant migrations.
#[derive(Debug, Clone)]
pub struct Migrator {
    pool: PgPool,
    set: Arc<MigrationSet>,
}

impl Migrator {
    /// A migrator for `set` over `pool`.
    pub fn new(pool: PgPool, set: Arc<MigrationSet>) -> Self {
        Self { pool, set }
    }

    /// The migration set.
    pub fn set(&self) -> &MigrationSet {
        &self.set
    }

    /// Applies the registry's and the application's shared migrations to `public`, each in its
    /// own transaction under a transaction advisory lock. Returns how many were applied.
    pub async fn migrate_shared(&self) -> Result<usize, TenancyError> {
        let mut conn = self.pool.acquire().await?;
        let mut applied = 0;
        for (component, list) in [
            ("leopard", REGISTRY_MIGRATIONS),
            ("app", self.set.shared.as_slice()),
        ] {
            for migration in list {
                let mut tx = conn.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(MIGRATE_LOCK_KEY)
                    .execute(&mut *tx)
                    .await?;
                execute_script(
                    &mut tx,
                    "SET LOCAL client_min_messages = warning;
                     CREATE TABLE IF NOT EXISTS public.leopard_shared_migrations (
                        component   text NOT NULL,
                        version     bigint NOT NULL,
                        name        text NOT NULL,
                        checksum    bigint NOT NULL,
                        applied_at  timestamptz NOT NULL DEFAULT now(),
                        duration_ms integer NOT NULL,
                        PRIMARY KEY (component, version))",
                )
                .await?;
                let existing: Option<i64> = sqlx::query_scalar(
                    "SELECT checksum FROM public.leopard_shared_migrations
                      WHERE component = $1 AND version = $2",
                )
                .bind(component)
                .bind(migration.version)
                .fetch_optional(&mut *tx)
                .await?;
                match existing {
                    Some(sum) if sum == migration.checksum() => continue,
                    Some(_) => {
                        return Err(TenancyError::ChecksumMismatch {
                            schema: "public".into(),
                            version: migration.version,
                        })
                    }
                    None => {}
                }
                let started = Instant::now();
                execute_script(&mut tx, migration.sql)
                    .await
                    .map_err(|e| failed("public", migration, &e))?;
                sqlx::query(
                    "INSERT INTO public.leopard_shared_migrations
                        (component, version, name, checksum, duration_ms)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(component)
                .bind(migration.version)
                .bind(migration.name)
                .bind(migration.checksum())
                .bind(millis(started.elapsed()))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                applied += 1;
                tracing::info!(
                    component,
                    version = migration.version,
                    name = migration.name,
                    "applied shared migration"
                );
            }
        }
        Ok(applied)
    }

    /// Whether any tenant lacks a status row, is behind the latest tenant version, or failed or
    /// was interrupted: one query, whatever the number of tenants. A tenant *ahead* of this set
    /// (migrated by a newer release during a rolling deploy) is not pending.
    pub async fn pending_anywhere(&self) -> Result<bool, TenancyError> {
        let pending: bool = sqlx::query_scalar(
            "SELECT EXISTS (
                SELECT 1 FROM public.leopard_tenants t
                  LEFT JOIN public.leopard_tenant_migrations s ON s.tenant_id = t.id
                 WHERE s.tenant_id IS NULL OR s.version < $1 OR s.state <> 'ok')",
        )
        .bind(self.set.latest_tenant_version())
        .fetch_one(&self.pool)
        .await?;
        Ok(pending)
    }

    /// The number of tenants, and those whose status says they may need migrating. Up-to-date
    /// tenants are filtered out by the database, so a run with nothing pending reads no rows.
    async fn pending_tenants(&self) -> Result<(usize, Vec<PendingTenant>), TenancyError> {
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM public.leopard_tenants")
            .fetch_one(&self.pool)
            .await?;
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT t.id, t.schema_name
               FROM public.leopard_tenants t
               LEFT JOIN public.leopard_tenant_migrations s ON s.tenant_id = t.id
              WHERE s.tenant_id IS NULL OR s.version < $1 OR s.state <> 'ok'
              ORDER BY t.id",
        )
        .bind(self.set.latest_tenant_version())
        .fetch_all(&self.pool)
        .await?;
        let pending = rows
            .into_iter()
            .map(|(id, schema)| {
                Ok(PendingTenant {
                    id: TenantId(id),
                    schema: SchemaName::parse(&schema)?,
                })
            })
            .collect::<Result<Vec<_>, TenancyError>>()?;
        Ok((usize::try_from(total).unwrap_or_default(), pending))
    }

    /// Migrates one tenant schema (which must belong to a registered tenant).
    pub async fn migrate_schema(&self, schema: &SchemaName) -> Result<TenantOutcome, TenancyError> {
        let id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM public.leopard_tenants WHERE schema_name = $1")
                .bind(schema.as_str())
                .fetch_optional(&self.pool)
                .await?;
        let id = id.ok_or_else(|| TenancyError::TenantNotFound(schema.as_str().to_owned()))?;
        let tenant = PendingTenant {
            id: TenantId(id),
            schema: schema.clone(),
        };
        self.migrate_tenant(&tenant).await
    }

    /// Migrates every tenant whose status is not up to date, `jobs` at a time. Fails only when
    /// the run cannot start (lock held, database down); per-tenant failures are in the report.
    pub async fn migrate_all(
        &self,
        options: MigrateAllOptions,
    ) -> Result<MigrateReport, TenancyError> {
        let started = Instant::now();
        let mut lock_conn = self.pool.acquire().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(MIGRATE_LOCK_KEY)
            .fetch_one(&mut *lock_conn)
            .await?;
        if !locked {
            return Err(TenancyError::MigrationLocked);
        }
        let result = self.migrate_all_locked(&options).await;
        let unlock = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATE_LOCK_KEY)
            .execute(&mut *lock_conn)
            .await;
        if let Err(err) = unlock {
            // The lock dies with the session; make sure the session dies too.
            tracing::warn!(error = %err, "could not release the migration lock; closing its connection");
            lock_conn.detach();
        }
        let mut report = result?;
        report.elapsed = started.elapsed();
        Ok(report)
    }

    async fn migrate_all_locked(
        &self,
        options: &MigrateAllOptions,
    ) -> Result<MigrateReport, TenancyError> {
        let (tenants, pending) = self.pending_tenants().await?;
        let total = pending.len();
        let stop = AtomicBool::new(false);
        let done = AtomicUsize::new(0);
        let outcomes: Vec<(SchemaName, TenantOutcome)> = futures::stream::iter(pending)
            .map(|tenant| {
                let stop = &stop;
                let done = &done;
                async move {
                    let outcome = if stop.load(Ordering::SeqCst) {
                        TenantOutcome::NotStarted
                    } else {
                        match self.migrate_tenant(&tenant).await {
                            Ok(outcome) => outcome,
                            Err(err) => TenantOutcome::Failed {
                                error: err.to_string(),
                            },
                        }
                    };
                    if matches!(outcome, TenantOutcome::Failed { .. }) && !options.skip_failing {
                        stop.store(true, Ordering::SeqCst);
                    }
                    let done = done.fetch_add(1, Ordering::SeqCst) + 1;
                    if let Some(progress) = &options.progress {
                        progress(&Progress {
                            schema: tenant.schema.clone(),
                            outcome: outcome.clone(),
                            done,
                            total,
                        });
                    }
                    (tenant.schema, outcome)
                }
            })
            .buffer_unordered(options.jobs.max(1))
            .collect()
            .await;
        let mut report = MigrateReport {
            tenants,
            pending: total,
            ..MigrateReport::default()
        };
        for (schema, outcome) in outcomes {
            match outcome {
                TenantOutcome::Migrated { .. } => report.migrated += 1,
                TenantOutcome::UpToDate => report.up_to_date += 1,
                TenantOutcome::Failed { error } => report.failed.push((schema, error)),
                TenantOutcome::NotStarted => report.not_started += 1,
            }
        }
        report.failed.sort();
        Ok(report)
    }

    async fn migrate_tenant(&self, tenant: &PendingTenant) -> Result<TenantOutcome, TenancyError> {
        let started = Instant::now();
        sqlx::query(
            "INSERT INTO public.leopard_tenant_migrations (tenant_id, state, started_at, error)
             VALUES ($1, 'running', now(), NULL)
             ON CONFLICT (tenant_id) DO UPDATE
                SET state = 'running', started_at = now(), error = NULL, updated_at = now()",
        )
        .bind(tenant.id.get())
        .execute(&self.pool)
        .await?;
        let result = self.apply_pending(tenant).await;
        let (state, version, error) = match &result {
            Ok((_, version)) => ("ok", *version, None),
            Err((version, err)) => ("failed", *version, Some(err.to_string())),
        };
        sqlx::query(
            "UPDATE public.leopard_tenant_migrations
                SET state = $2, version = $3, error = $4, finished_at = now(),
                    duration_ms = $5, updated_at = now()
              WHERE tenant_id = $1",
        )
        .bind(tenant.id.get())
        .bind(state)
        .bind(version)
        .bind(&error)
        .bind(millis(started.elapsed()))
        .execute(&self.pool)
        .await?;
        match result {
            Ok((0, _)) => Ok(TenantOutcome::UpToDate),
            Ok((applied, _)) => Ok(TenantOutcome::Migrated { applied }),
            Err((_, err)) => {
                tracing::warn!(schema = tenant.schema.as_str(), error = %err, "tenant migration failed");
                Ok(TenantOutcome::Failed {
                    error: err.to_string(),
                })
            }
        }
    }

    /// Applies what the tenant's ledger lacks, one transaction per migration. Returns the number
    /// applied and the version reached, or the version reached and the error.
    async fn apply_pending(
        &self,
        tenant: &PendingTenant,
    ) -> Result<(usize, i64), (i64, TenancyError)> {
        let mut conn = self.pool.acquire().await.map_err(|e| (0, e.into()))?;
        let begin = format!(
            "{}; SET LOCAL lock_timeout = '10s'",
            begin_statement(&tenant.schema)
        );
        let applied = {
            let mut tx = conn
                .begin_with(begin.clone())
                .await
                .map_err(|e| (0, e.into()))?;
            let applied = read_ledger(&mut tx, true).await.map_err(|e| (0, e))?;
            tx.commit().await.map_err(|e| (0, e.into()))?;
            applied
        };
        let mut version = verify_ledger(&tenant.schema, &self.set.tenant, &applied)
            .map_err(|e| (applied.keys().max().copied().unwrap_or(0), e))?;
        let mut count = 0;
        for migration in self
            .set
            .tenant
            .iter()
            .filter(|m| !applied.contains_key(&m.version))
        {
            let step = async {
                let mut tx = conn.begin_with(begin.clone()).await?;
                apply_one(&mut tx, &tenant.schema, migration).await?;
                tx.commit().await?;
                Ok::<_, TenancyError>(())
            };
            step.await.map_err(|e| (version, e))?;
            version = migration.version;
            count += 1;
        }
        Ok((count, version))
    }
}

/// Creates the tenant ledger when asked and reads it: version → checksum. Runs on a connection
/// whose `search_path` is the tenant's.
async fn read_ledger(
    conn: &mut PgConnection,
    create: bool,
) -> Result<HashMap<i64, i64>, TenancyError> {
    if create {
        execute_script(conn, LEDGER_DDL).await?;
    }
    let rows: Vec<(i64, i64)> = sqlx::query_as("SELECT version, checksum FROM leopard_migrations")
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// The tenant ledger, created in each tenant schema (unqualified: `search_path` decides where);
/// the "already exists, skipping" notice is silenced.
pub(crate) const LEDGER_DDL: &str = "SET LOCAL client_min_messages = warning;
CREATE TABLE IF NOT EXISTS leopard_migrations (
    version     bigint PRIMARY KEY,
    name        text NOT NULL,
    checksum    bigint NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms integer NOT NULL)";

/// Checks applied checksums against the set; returns the highest applied version of the set.
fn verify_ledger(
    schema: &SchemaName,
    set: &[Migration],
    applied: &HashMap<i64, i64>,
) -> Result<i64, TenancyError> {
    let mut version = 0;
    for migration in set {
        if let Some(sum) = applied.get(&migration.version) {
            if *sum != migration.checksum() {
                return Err(TenancyError::ChecksumMismatch {
                    schema: schema.as_str().to_owned(),
                    version: migration.version,
                });
            }
            version = migration.version;
        }
    }
    Ok(version)
}

/// Runs one migration and records it in the tenant ledger, on a connection inside a
/// transaction whose `search_path` is the tenant's.
pub(crate) async fn apply_one(
    conn: &mut PgConnection,
    schema: &SchemaName,
    migration: &Migration,
) -> Result<(), TenancyError> {
    let started = Instant::now();
    execute_script(conn, migration.sql)
        .await
        .map_err(|e| failed(schema.as_str(), migration, &e))?;
    sqlx::query(
        "INSERT INTO leopard_migrations (version, name, checksum, duration_ms)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(migration.version)
    .bind(migration.name)
    .bind(migration.checksum())
    .bind(millis(started.elapsed()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Runs SQL text, several statements allowed, with the simple-query protocol.
///
/// Unlike `sqlx::raw_sql`, whose future is not `Send` for every lifetime, this can run inside
/// axum handlers and spawned tasks.
pub(crate) async fn execute_script(conn: &mut PgConnection, sql: &str) -> Result<(), sqlx::Error> {
    use sqlx::Executor as _;
    conn.execute(sql).await.map(|_| ())
}

fn failed(schema: &str, migration: &Migration, err: &sqlx::Error) -> TenancyError {
    let message = match err {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    };
    TenancyError::MigrationFailed {
        schema: schema.to_owned(),
        version: migration.version,
        name: migration.name.to_owned(),
        message,
    }
}

/// Milliseconds as the `integer` columns store them (saturating).
pub(crate) fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_with_non_increasing_versions_is_refused() {
        let a = Migration::new(1, "a", "SELECT 1");
        let b = Migration::new(1, "b", "SELECT 2");
        assert!(MigrationSet::new(vec![], vec![a, b]).is_err());
        assert!(MigrationSet::new(vec![b, a], vec![]).is_err());
        let ok =
            MigrationSet::new(vec![], vec![a, Migration::new(5, "c", "SELECT 3")]).expect("valid");
        assert_eq!(ok.latest_tenant_version(), 5);
    }

    #[test]
    fn checksums_change_with_the_sql_text() {
        let a = Migration::new(1, "a", "SELECT 1");
        let b = Migration::new(1, "a", "SELECT 2");
        assert_ne!(a.checksum(), b.checksum());
        assert_eq!(a.checksum(), Migration::new(9, "z", "SELECT 1").checksum());
    }
}
