//! Runs the notes service: migrates, provisions the demo tenants `alpha` and `beta`, loads the
//! tenant registry and serves until Ctrl-C (or SIGTERM).
//!
//! Environment:
//! - `DATABASE_URL` (required): the PostgreSQL database holding the registry and tenant schemas;
//! - `BIND` (default `127.0.0.1:3000`): the address to listen on;
//! - `RUST_LOG` (default `info`): the log filter.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use leopard_core::TenantSlug;
use leopard_tenancy::migrate::MigrateAllOptions;
use leopard_tenancy::provision::Provisioner;
use leopard_tenancy::{Migrator, NewTenant, ResolveConfig, TenancyError, TenantRegistry};
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// The tenants this demo makes sure exist: slug and display name.
const DEMO_TENANTS: &[(&str, &str)] = &[("alpha", "Alpha Ltd"), ("beta", "Beta GmbH")];

/// Where the service listens unless `BIND` says otherwise.
const DEFAULT_BIND: &str = "127.0.0.1:3000";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let url = std::env::var("DATABASE_URL").context(
        "DATABASE_URL is not set: point it at a PostgreSQL database the service may create \
         schemas in, e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres",
    )?;
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url)
        .await
        .context("cannot connect to DATABASE_URL")?;

    // 1. Migrations: the registry tables (and the app's shared migrations, none here), then any
    //    tenant schema that is behind the embedded tenant migrations.
    let set = Arc::new(tenant_aware_service::migration_set()?);
    let migrator = Migrator::new(pool.clone(), Arc::clone(&set));
    let applied = migrator
        .migrate_shared()
        .await
        .context("shared migrations")?;
    tracing::info!(applied, "shared migrations done");
    match migrator.migrate_all(MigrateAllOptions::default()).await {
        Ok(report) if report.is_success() => {
            tracing::info!(
                tenants = report.tenants,
                migrated = report.migrated,
                "tenant migrations done"
            );
        }
        Ok(report) => bail!("tenant migrations failed: {:?}", report.failed),
        Err(TenancyError::MigrationLocked) => {
            tracing::warn!("another process is migrating tenants; starting without waiting");
        }
        Err(err) => return Err(err).context("tenant migrations"),
    }

    // 2. Provisioning: each demo tenant gets a schema with every tenant migration applied and
    //    the domains `<slug>.localhost` and `<slug>-immigrate.localhost`.
    let config = ResolveConfig::default();
    let provisioner = Provisioner::new(pool.clone(), Arc::clone(&set), config.clone());
    for (slug, name) in DEMO_TENANTS {
        ensure_tenant(&provisioner, TenantSlug::parse(slug)?, name).await?;
    }

    // 3. The registry: loaded once, then refreshed on every registry change (LISTEN/NOTIFY) and
    //    every 30 s. Dropping `refresh` stops the refresh task.
    let registry = TenantRegistry::load(pool.clone(), config).await?;
    let refresh = registry.start_refresh(Duration::from_secs(30)).await?;

    // 4. Serve.
    let bind = std::env::var("BIND").unwrap_or_else(|_| DEFAULT_BIND.to_owned());
    let listener = TcpListener::bind(&bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    tracing::info!(
        address = %listener.local_addr()?,
        tenants = registry.tenant_count(),
        "serving; try curl -H 'Host: alpha.localhost' http://{bind}/notes/"
    );
    axum::serve(listener, tenant_aware_service::app(registry))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server error")?;
    // Stop the refresh task before closing the pool it listens on.
    drop(refresh);
    pool.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Provisions the tenant unless it exists already (also when another process wins the race).
async fn ensure_tenant(
    provisioner: &Provisioner,
    slug: TenantSlug,
    name: &str,
) -> anyhow::Result<()> {
    match provisioner.get(&slug).await {
        Ok(_) => {
            tracing::info!(slug = slug.as_str(), "tenant exists");
            return Ok(());
        }
        Err(TenancyError::TenantNotFound(_)) => {}
        Err(err) => return Err(err).context("reading the tenant registry"),
    }
    match provisioner.create(NewTenant::new(slug.clone(), name)).await {
        Ok(done) => {
            tracing::info!(
                slug = slug.as_str(),
                ms = u64::try_from(done.duration.as_millis()).unwrap_or(u64::MAX),
                domains = ?done.tenant.domains,
                "tenant provisioned"
            );
            Ok(())
        }
        Err(TenancyError::AlreadyExists { .. }) => Ok(()),
        Err(err) => Err(err).with_context(|| format!("provisioning tenant {slug}")),
    }
}

/// Resolves on Ctrl-C, or on SIGTERM on Unix; in-flight requests then finish before exit.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
