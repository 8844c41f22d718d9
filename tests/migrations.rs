//! Tenant migrations over all schemas: resume after a failure, `skip_failing`, crash recovery,
//! the one-query pending check, checksums and progress reporting.

mod common;

use std::sync::{Arc, Mutex};

use common::{Env, MARKER};
use leopard::core::SchemaName;
use leopard::tenancy::migrate::{MigrateAllOptions, Migrator, TenantOutcome};
use leopard::tenancy::{Migration, MigrationSet, TenancyError, TenantRegistry};
use sqlx::PgPool;

const ADD_NOTES: Migration = Migration::new(2, "notes", "CREATE TABLE notes (id int PRIMARY KEY);");
const ADD_TAGS: Migration = Migration::new(3, "tags", "CREATE TABLE tags (id int PRIMARY KEY);");

fn migrator(pool: &PgPool, tenant: Vec<Migration>) -> Migrator {
    Migrator::new(
        pool.clone(),
        Arc::new(MigrationSet::new(Vec::new(), tenant).expect("valid set")),
    )
}

/// Six tenants at version 1, with a `notes` table planted in `mig3` so that migration 2 fails
/// there.
async fn six_tenants_one_booby_trapped() -> (Env, Arc<TenantRegistry>) {
    let env = Env::new().await;
    for i in 0..6 {
        env.tenant(&format!("mig{i}")).await;
    }
    let registry = env.registry().await;
    let ctx = registry.context_for("mig3").expect("tenant");
    let mut tx = ctx.begin().await.expect("tx");
    sqlx::query("CREATE TABLE notes (id int)")
        .execute(&mut *tx)
        .await
        .expect("planted");
    tx.commit().await.expect("commit");
    (env, registry)
}

async fn ledger(registry: &TenantRegistry, slug: &str) -> Vec<i64> {
    let ctx = registry.context_for(slug).expect("tenant");
    let mut tx = ctx.begin().await.expect("tx");
    sqlx::query_scalar("SELECT version FROM leopard_migrations ORDER BY version")
        .fetch_all(&mut *tx)
        .await
        .expect("ledger")
}

async fn status(pool: &PgPool, slug: &str) -> (i64, String, Option<String>) {
    sqlx::query_as(
        "SELECT s.version, s.state, s.error FROM public.leopard_tenant_migrations s
           JOIN public.leopard_tenants t ON t.id = s.tenant_id WHERE t.slug = $1",
    )
    .bind(slug)
    .fetch_one(pool)
    .await
    .expect("status row")
}

#[tokio::test]
async fn migrate_all_stops_at_a_failing_tenant_and_a_rerun_resumes_where_each_tenant_stopped() {
    let (env, registry) = six_tenants_one_booby_trapped().await;
    let pool = env.db.pool();
    let full = migrator(pool, vec![MARKER, ADD_NOTES, ADD_TAGS]);
    assert!(full.pending_anywhere().await.expect("query"));

    let first = full
        .migrate_all(MigrateAllOptions {
            jobs: 1,
            ..MigrateAllOptions::default()
        })
        .await
        .expect("run");
    assert_eq!(first.pending, 6);
    assert_eq!(first.failed.len(), 1);
    assert_eq!(first.failed[0].0.as_str(), "tenant_mig3");
    assert!(
        first.failed[0].1.contains("already exists"),
        "{}",
        first.failed[0].1
    );
    // With one job and id order, mig0..mig2 were migrated and mig4, mig5 never started.
    assert_eq!(first.migrated, 3);
    assert_eq!(first.not_started, 2);
    assert!(!first.is_success());
    let (version, state, error) = status(pool, "mig3").await;
    assert_eq!((version, state.as_str()), (1, "failed"));
    assert!(error.is_some_and(|e| e.contains("notes")));
    assert_eq!(ledger(&registry, "mig3").await, vec![1]);
    assert_eq!(ledger(&registry, "mig4").await, vec![1]);
    assert!(full.pending_anywhere().await.expect("query"));

    // Repair the tenant and rerun: only the unfinished tenants are touched.
    let ctx = registry.context_for("mig3").expect("tenant");
    let mut tx = ctx.begin().await.expect("tx");
    sqlx::query("DROP TABLE notes")
        .execute(&mut *tx)
        .await
        .expect("repaired");
    tx.commit().await.expect("commit");

    let second = full
        .migrate_all(MigrateAllOptions {
            jobs: 2,
            ..MigrateAllOptions::default()
        })
        .await
        .expect("run");
    assert_eq!(
        second.pending, 3,
        "mig0..mig2 are skipped by the status check"
    );
    assert_eq!(second.migrated, 3);
    assert!(second.is_success());
    for i in 0..6 {
        let slug = format!("mig{i}");
        assert_eq!(ledger(&registry, &slug).await, vec![1, 2, 3], "{slug}");
        let (version, state, error) = status(pool, &slug).await;
        assert_eq!((version, state.as_str(), error), (3, "ok", None), "{slug}");
    }
    assert!(!full.pending_anywhere().await.expect("query"));

    let third = full
        .migrate_all(MigrateAllOptions::default())
        .await
        .expect("run");
    assert_eq!((third.tenants, third.pending, third.migrated), (6, 0, 0));
}

#[tokio::test]
async fn skip_failing_migrates_every_other_tenant_and_reports_the_failure() {
    let (env, registry) = six_tenants_one_booby_trapped().await;
    let pool = env.db.pool();
    let full = migrator(pool, vec![MARKER, ADD_NOTES, ADD_TAGS]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let report = full
        .migrate_all(MigrateAllOptions {
            jobs: 3,
            skip_failing: true,
            progress: Some(Arc::new(move |p| {
                sink.lock()
                    .expect("lock")
                    .push((p.done, p.total, p.schema.as_str().to_owned()));
            })),
        })
        .await
        .expect("run");
    assert_eq!(report.migrated, 5);
    assert_eq!(report.not_started, 0);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0.as_str(), "tenant_mig3");
    for i in [0, 1, 2, 4, 5] {
        assert_eq!(ledger(&registry, &format!("mig{i}")).await, vec![1, 2, 3]);
    }
    assert_eq!(ledger(&registry, "mig3").await, vec![1]);
    let progress = seen.lock().expect("lock").clone();
    assert_eq!(progress.len(), 6, "one progress call per tenant");
    assert!(progress.iter().all(|(_, total, _)| *total == 6));
    let mut done: Vec<usize> = progress.iter().map(|(d, _, _)| *d).collect();
    done.sort_unstable();
    assert_eq!(done, vec![1, 2, 3, 4, 5, 6]);
}

#[tokio::test]
async fn a_run_interrupted_mid_tenant_resumes_without_repeating_applied_steps() {
    let env = Env::new().await;
    env.tenant("crash").await;
    let registry = env.registry().await;
    let pool = env.db.pool();
    // Migration 2 got applied, then the process died before the status row was finished.
    let schema = SchemaName::parse("tenant_crash").expect("schema");
    migrator(pool, vec![MARKER, ADD_NOTES])
        .migrate_schema(&schema)
        .await
        .expect("migrated");
    sqlx::query("UPDATE public.leopard_tenant_migrations SET state = 'running', version = 1")
        .execute(pool)
        .await
        .expect("simulated crash");

    let full = migrator(pool, vec![MARKER, ADD_NOTES, ADD_TAGS]);
    assert!(full.pending_anywhere().await.expect("query"));
    let outcome = full.migrate_schema(&schema).await.expect("resumed");
    assert_eq!(outcome, TenantOutcome::Migrated { applied: 1 });
    assert_eq!(ledger(&registry, "crash").await, vec![1, 2, 3]);
    assert!(!full.pending_anywhere().await.expect("query"));
    assert_eq!(
        full.migrate_schema(&schema).await.expect("noop"),
        TenantOutcome::UpToDate
    );
}

#[tokio::test]
async fn an_edited_migration_is_reported_as_a_checksum_mismatch() {
    let env = Env::new().await;
    env.tenant("edited").await;
    let edited = Migration::new(1, "marker", "CREATE TABLE something_else (id int);");
    let report = migrator(env.db.pool(), vec![edited, ADD_NOTES])
        .migrate_all(MigrateAllOptions::default())
        .await
        .expect("run");
    assert_eq!(report.failed.len(), 1);
    assert!(
        report.failed[0].1.contains("checksum"),
        "{}",
        report.failed[0].1
    );
}

#[tokio::test]
async fn a_second_concurrent_run_is_refused_while_the_first_holds_the_lock() {
    let env = Env::new().await;
    let pool = env.db.pool();
    let mut holder = pool.acquire().await.expect("connection");
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(leopard::tenancy::migrate::MIGRATE_LOCK_KEY)
        .execute(&mut *holder)
        .await
        .expect("lock");
    let err = env
        .migrator
        .migrate_all(MigrateAllOptions::default())
        .await
        .expect_err("locked");
    assert!(matches!(err, TenancyError::MigrationLocked));
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(leopard::tenancy::migrate::MIGRATE_LOCK_KEY)
        .execute(&mut *holder)
        .await
        .expect("unlock");
    drop(holder);
    env.tenant("after").await;
    let report = env
        .migrator
        .migrate_all(MigrateAllOptions::default())
        .await
        .expect("run");
    assert!(report.is_success());
    assert_eq!(
        (report.tenants, report.pending),
        (1, 0),
        "provisioning left it up to date"
    );
}

#[tokio::test]
async fn migrating_an_unknown_schema_is_an_error_not_a_silent_success() {
    let env = Env::new().await;
    let err = env
        .migrator
        .migrate_schema(&SchemaName::parse("tenant_nobody").expect("schema"))
        .await
        .expect_err("unknown");
    assert!(matches!(err, TenancyError::TenantNotFound(_)));
}

#[tokio::test]
async fn an_older_release_does_not_see_tenants_migrated_by_a_newer_one_as_pending() {
    let env = Env::new().await;
    env.tenant("ahead").await;
    let pool = env.db.pool();
    let newer = migrator(pool, vec![MARKER, ADD_NOTES]);
    assert!(newer
        .migrate_all(MigrateAllOptions::default())
        .await
        .expect("run")
        .is_success());
    // During a rolling deploy the old release (set: MARKER only) also runs `migrate --all`.
    let older = migrator(pool, vec![MARKER]);
    assert!(!older.pending_anywhere().await.expect("query"));
    let report = older
        .migrate_all(MigrateAllOptions::default())
        .await
        .expect("run");
    assert_eq!(report.pending, 0, "the older release touches nothing");
    assert_eq!(
        status(pool, "ahead").await.0,
        2,
        "the status keeps the newer version"
    );
    assert!(!newer.pending_anywhere().await.expect("query"));
}
