//! Opening the database: the configured URL, or the embedded private cluster.

use std::time::Duration;

use anyhow::Context as _;
use leopard_tenancy::embedded::{DataDir, EmbeddedPostgres};
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::config::GlobalArgs;

/// An open database: its pool and, when embedded, the cluster (stopped on drop).
#[derive(Debug)]
pub struct Database {
    /// The connection pool.
    pub pool: PgPool,
    /// The embedded cluster, if one was started or reused.
    pub embedded: Option<EmbeddedPostgres>,
}

/// Name of the database inside the embedded cluster.
pub const EMBEDDED_DATABASE: &str = "leopard";

impl Database {
    /// Connects to the configured URL, or starts (or reuses) the embedded cluster under
    /// `<data dir>/postgres`.
    pub async fn open(global: &GlobalArgs, max_connections: u32) -> anyhow::Result<Self> {
        let (url, embedded) = match global.database_url() {
            Some(url) => (url, None),
            None => {
                let dir = global.data_dir.join("postgres");
                let cluster = tokio::task::spawn_blocking(move || {
                    EmbeddedPostgres::start(&dir, DataDir::Keep)
                })
                .await
                .context("starting the embedded PostgreSQL")??;
                cluster.ensure_database(EMBEDDED_DATABASE).await?;
                (cluster.url(EMBEDDED_DATABASE), Some(cluster))
            }
        };
        // No ping on checkout (a round trip per request): a connection that broke while idle
        // fails on its first statement, and `TenantContext::begin` then retries once on a
        // fresh one, since nothing of the request was sent yet.
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .test_before_acquire(false)
            .connect(&url)
            .await
            .with_context(|| format!("connecting to {}", redact(&url)))?;
        Ok(Self { pool, embedded })
    }

    /// One line saying where the embedded cluster keeps its data (and why, when it was
    /// relocated), for the start-up banner; `None` with a database URL.
    pub fn embedded_summary(&self) -> Option<String> {
        let cluster = self.embedded.as_ref()?;
        let mut line = format!(
            "PostgreSQL: embedded cluster on 127.0.0.1:{}, data in {}",
            cluster.port(),
            cluster.data_dir().display()
        );
        if let (true, Some(link)) = (cluster.relocated(), cluster.linked_from()) {
            line.push_str(&format!(
                "\n  ({} links there: the {} user PostgreSQL runs as cannot reach that directory)",
                link.display(),
                leopard_tenancy::embedded::CLUSTER_USER
            ));
        }
        Some(line)
    }

    /// Closes the pool and stops the embedded cluster if this process started it.
    pub async fn close(mut self) -> anyhow::Result<()> {
        self.pool.close().await;
        if let Some(mut cluster) = self.embedded.take() {
            tokio::task::spawn_blocking(move || cluster.stop()).await??;
        }
        Ok(())
    }
}

/// A URL with its password replaced, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
