//! The tenant registry held in memory: an immutable snapshot of tenants and domains, swapped
//! atomically when the public tables change (`LISTEN/NOTIFY`) and on a periodic reload.
//!
//! Resolution never queries the database: the snapshot holds every domain, so a host that is not
//! in it is unknown by construction (the snapshot doubles as the negative cache), and repeated
//! probes of unknown hosts cost one hash lookup each.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use leopard_core::{HostName, SchemaName, TenantId, TenantSlug};
use sqlx::postgres::{PgListener, PgPool};
use sqlx::Row;
use tokio::task::JoinHandle;

use crate::context::TenantContext;
use crate::model::{SubscriptionStatus, TenantInfo};
use crate::pool::TenantPool;
use crate::{TenancyError, NOTIFY_CHANNEL};

/// How hosts map to tenants besides the exact domain table.
#[derive(Debug, Clone)]
pub struct ResolveConfig {
    /// The base domain of derived host names (default `localhost`).
    pub base_domain: String,
    /// The application label of `<slug>-<app>.<base>` host names (default `immigrate`).
    pub app_subdomain: String,
    /// Whether `<slug>-<app>.<base>` and `<slug>.<base>` resolve without a domain row.
    pub patterns: bool,
}

impl Default for ResolveConfig {
    fn default() -> Self {
        Self {
            base_domain: "localhost".into(),
            app_subdomain: "immigrate".into(),
            patterns: true,
        }
    }
}

impl ResolveConfig {
    /// The two host names a new tenant gets: `<slug>-<app>.<base>` (primary) and `<slug>.<base>`.
    pub fn derived_domains(&self, slug: &TenantSlug) -> Result<[HostName; 2], TenancyError> {
        Ok([
            HostName::parse(&format!(
                "{slug}-{}.{}",
                self.app_subdomain, self.base_domain
            ))?,
            HostName::parse(&format!("{slug}.{}", self.base_domain))?,
        ])
    }
}

#[derive(Default)]
struct Snapshot {
    by_domain: HashMap<String, Arc<TenantInfo>>,
    by_slug: HashMap<String, Arc<TenantInfo>>,
}

/// The in-memory registry: resolve hosts and slugs to tenants, hand out [`TenantContext`]s.
pub struct TenantRegistry {
    pool: PgPool,
    /// The connections of tenant transactions (see [`crate::pool`]).
    tenant_pool: TenantPool,
    config: ResolveConfig,
    /// `.<base>`, precomputed for suffix matching.
    dot_base: String,
    /// `-<app>`, precomputed for suffix matching.
    dash_app: String,
    snapshot: ArcSwap<Snapshot>,
    reloads: AtomicU64,
}

impl std::fmt::Debug for TenantRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let snap = self.snapshot.load();
        f.debug_struct("TenantRegistry")
            .field("config", &self.config)
            .field("tenants", &snap.by_slug.len())
            .field("domains", &snap.by_domain.len())
            .field("reloads", &self.reloads.load(Ordering::Relaxed))
            .finish()
    }
}

impl TenantRegistry {
    /// An empty registry over `pool`; call [`TenantRegistry::reload`] or use
    /// [`TenantRegistry::load`] to fill it.
    pub fn new(pool: PgPool, config: ResolveConfig) -> Self {
        let dot_base = format!(".{}", config.base_domain.to_ascii_lowercase());
        let dash_app = format!("-{}", config.app_subdomain.to_ascii_lowercase());
        Self {
            tenant_pool: TenantPool::following(&pool),
            pool,
            config,
            dot_base,
            dash_app,
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            reloads: AtomicU64::new(0),
        }
    }

    /// A registry filled from the database (the registry tables must exist: run the shared
    /// migrations first).
    pub async fn load(pool: PgPool, config: ResolveConfig) -> Result<Arc<Self>, TenancyError> {
        let registry = Arc::new(Self::new(pool, config));
        registry.reload().await?;
        Ok(registry)
    }

    /// Builds a registry from in-memory tenants and domains, without touching the database.
    /// Meant for benchmarks and unit tests of resolution; the pool is still needed to hand out
    /// contexts.
    pub fn from_entries(
        pool: PgPool,
        config: ResolveConfig,
        entries: impl IntoIterator<Item = (TenantInfo, Vec<String>)>,
    ) -> Self {
        let registry = Self::new(pool, config);
        registry.install(entries);
        registry
    }

    /// The resolution settings.
    pub fn config(&self) -> &ResolveConfig {
        &self.config
    }

    /// How many times the snapshot has been (re)loaded.
    pub fn reload_count(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// The number of tenants in the current snapshot.
    pub fn tenant_count(&self) -> usize {
        self.snapshot.load().by_slug.len()
    }

    /// Reads every tenant and domain in one query and swaps the snapshot.
    pub async fn reload(&self) -> Result<(), TenancyError> {
        let rows = sqlx::query(
            "SELECT t.id, t.slug, t.schema_name, t.name, t.is_active, t.subscription_status,
                    t.max_users,
                    coalesce(array_agg(d.domain) FILTER (WHERE d.domain IS NOT NULL), '{}') AS domains
               FROM public.leopard_tenants t
               LEFT JOIN public.leopard_domains d ON d.tenant_id = t.id
              GROUP BY t.id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            let slug: String = row.try_get("slug")?;
            let schema: String = row.try_get("schema_name")?;
            let status: String = row.try_get("subscription_status")?;
            let parsed = (
                TenantSlug::parse(&slug),
                SchemaName::parse(&schema),
                SubscriptionStatus::parse(&status),
            );
            let (Ok(slug), Ok(schema), Ok(status)) = parsed else {
                tracing::error!(slug, schema, status, "skipping an invalid registry row");
                continue;
            };
            let info = TenantInfo {
                id: TenantId(row.try_get("id")?),
                slug,
                schema,
                name: row.try_get("name")?,
                is_active: row.try_get("is_active")?,
                status,
                max_users: row.try_get("max_users")?,
            };
            entries.push((info, row.try_get::<Vec<String>, _>("domains")?));
        }
        self.install(entries);
        Ok(())
    }

    fn install(&self, entries: impl IntoIterator<Item = (TenantInfo, Vec<String>)>) {
        let mut snap = Snapshot::default();
        for (info, domains) in entries {
            let info = Arc::new(info);
            for domain in domains {
                snap.by_domain.insert(domain, Arc::clone(&info));
            }
            snap.by_slug.insert(info.slug.as_str().to_owned(), info);
        }
        self.snapshot.store(Arc::new(snap));
        self.reloads.fetch_add(1, Ordering::Relaxed);
    }

    /// Resolves a `Host` header value: exact domain, then `<slug>-<app>.<base>`, then
    /// `<slug>.<base>`. The host is lower-cased and loses its port and a leading `www.` first.
    pub fn resolve_host(&self, raw_host: &str) -> Option<Arc<TenantInfo>> {
        let host = HostName::normalize(raw_host);
        let snap = self.snapshot.load();
        if let Some(found) = snap.by_domain.get(&host) {
            return Some(Arc::clone(found));
        }
        if !self.config.patterns {
            return None;
        }
        let label = host.strip_suffix(&self.dot_base)?;
        if label.contains('.') {
            return None;
        }
        if let Some(slug) = label.strip_suffix(&self.dash_app) {
            if let Some(found) = snap.by_slug.get(slug) {
                return Some(Arc::clone(found));
            }
        }
        snap.by_slug.get(label).cloned()
    }

    /// Finds a tenant by slug.
    pub fn resolve_slug(&self, slug: &str) -> Option<Arc<TenantInfo>> {
        self.snapshot.load().by_slug.get(slug).cloned()
    }

    /// Every tenant of the snapshot, in slug order.
    pub fn tenants(&self) -> Vec<Arc<TenantInfo>> {
        let mut all: Vec<_> = self.snapshot.load().by_slug.values().cloned().collect();
        all.sort_by(|a, b| a.slug.cmp(&b.slug));
        all
    }

    /// A tenant context for `tenant`, for work outside a request (CLI, background jobs).
    pub fn context(&self, tenant: Arc<TenantInfo>) -> TenantContext {
        TenantContext::new(tenant, self.tenant_pool.clone())
    }

    /// A tenant context by slug, whatever the tenant's status.
    pub fn context_for(&self, slug: &str) -> Result<TenantContext, TenancyError> {
        let tenant = self
            .resolve_slug(slug)
            .ok_or_else(|| TenancyError::TenantNotFound(slug.to_owned()))?;
        Ok(self.context(tenant))
    }

    /// Starts the background refresh: `LISTEN` on [`NOTIFY_CHANNEL`] (reload on every burst of
    /// notifications) plus a full reload every `period`. Returns once `LISTEN` is active, so a
    /// change committed after this returns is seen. Dropping the handle stops the task, and so
    /// does closing the pool.
    ///
    /// The listener keeps one connection of the pool for itself: size the pool accordingly.
    pub async fn start_refresh(
        self: &Arc<Self>,
        period: Duration,
    ) -> Result<RefreshTask, TenancyError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        // Anything committed before LISTEN became active is picked up by this reload.
        self.reload().await?;
        let registry = Arc::clone(self);
        let handle = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            ticker.tick().await;
            loop {
                tokio::select! {
                    received = listener.try_recv() => {
                        match received {
                            Ok(Some(_)) => {
                                // Coalesce a burst: take whatever else is already buffered.
                                while let Some(Ok(Some(_))) = listener.try_recv().now_or_never() {}
                            }
                            Ok(None) => {
                                tracing::warn!("registry listener reconnected; reloading");
                            }
                            Err(sqlx::Error::PoolClosed) => {
                                tracing::debug!("pool closed; registry refresh stops");
                                return;
                            }
                            Err(err) => {
                                tracing::warn!(error = %err, "registry listener failed; retrying");
                                tokio::time::sleep(Duration::from_millis(500)).await;
                            }
                        }
                    }
                    _ = ticker.tick() => {}
                }
                if let Err(err) = registry.reload().await {
                    tracing::warn!(error = %err, "registry reload failed");
                }
            }
        });
        Ok(RefreshTask { handle })
    }
}

use futures::FutureExt as _;

/// The running refresh task of a registry; stops when dropped.
#[derive(Debug)]
pub struct RefreshTask {
    handle: JoinHandle<()>,
}

impl Drop for RefreshTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}
