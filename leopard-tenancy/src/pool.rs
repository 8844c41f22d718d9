//! The connections of tenant transactions: a small pool of its own, without the round trip
//! `sqlx`'s pool spends on every connection it takes back.
//!
//! `sqlx`'s pool pings each returned connection (a `Sync` and its `ReadyForQuery`) to flush a
//! rollback that a dropped transaction may have queued. A tenant transaction knows how it ended,
//! so this pool only checks a connection when there is something to check:
//!
//! - [`Return::Clean`]: the transaction ended with an awaited `COMMIT` or `ROLLBACK`; the
//!   connection is idle with no transaction open and goes straight back (its `SET LOCAL`
//!   `search_path` ended with the transaction).
//! - [`Return::Unsettled`]: the transaction was dropped while open (an error, a cancelled
//!   request). A task rolls it back and pings it; only a connection that answers is reused.
//! - [`Return::Broken`]: the connection failed; it is closed.
//!
//! The pool follows the server's [`PgPool`]: same connect options, same size and acquire
//! timeout, and it closes with it. Idle connections are reused last-in first-out, preferring
//! one that last served the same tenant (its backend has that tenant's plans and relation
//! caches warm). Connections idle for [`IDLE_TIMEOUT`] or older than [`MAX_LIFETIME`] are
//! closed instead of reused.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use leopard_core::TenantId;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgTransactionManager};
use sqlx::{ConnectOptions as _, Connection as _, TransactionManager as _};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

/// An idle connection older than this since its last use is closed rather than reused.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// A connection older than this is closed when it comes back.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// How long a dropped transaction's rollback may take before its connection is given up.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// How a connection goes back to the pool when its [`Pooled`] handle is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Return {
    /// No transaction is open and nothing is pending: reuse it as it is.
    Clean,
    /// A transaction may be open or a statement unfinished: roll back and ping first.
    Unsettled,
    /// The connection failed: close it.
    Broken,
}

/// The pool of tenant transactions' connections. Cheap to clone.
#[derive(Clone)]
pub(crate) struct TenantPool {
    inner: Arc<Inner>,
}

struct Inner {
    parent: PgPool,
    options: Arc<PgConnectOptions>,
    permits: Arc<Semaphore>,
    idle: Mutex<VecDeque<Idle>>,
    acquire_timeout: Duration,
    /// Dropped with the pool, which ends the task that waits for the parent pool to close.
    _closer: Option<oneshot::Sender<()>>,
}

struct Idle {
    conn: PgConnection,
    born: Instant,
    since: Instant,
    tenant: TenantId,
}

impl std::fmt::Debug for TenantPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantPool")
            .field("idle", &self.idle_count())
            .field("available", &self.inner.permits.available_permits())
            .finish()
    }
}

impl TenantPool {
    /// A pool with `parent`'s connect options, size and acquire timeout, closed when `parent`
    /// closes. Connections are opened on demand.
    pub(crate) fn following(parent: &PgPool) -> Self {
        let size = parent.options().get_max_connections().max(1) as usize;
        let (closer, closed) = oneshot::channel::<()>();
        let inner = Arc::new(Inner {
            parent: parent.clone(),
            options: parent.connect_options(),
            permits: Arc::new(Semaphore::new(size)),
            idle: Mutex::new(VecDeque::with_capacity(size)),
            acquire_timeout: parent.options().get_acquire_timeout(),
            _closer: Some(closer),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&inner);
            let close_event = parent.close_event();
            runtime.spawn(async move {
                tokio::select! {
                    _ = close_event => {
                        if let Some(inner) = weak.upgrade() {
                            inner.permits.close();
                            inner.discard_idle();
                        }
                    }
                    _ = closed => {}
                }
            });
        }
        Self { inner }
    }

    /// A connection for a transaction of `tenant`: an idle one (preferably one that last served
    /// `tenant`) or a new one. Waits at most the parent pool's acquire timeout.
    pub(crate) async fn acquire(&self, tenant: TenantId) -> Result<Pooled, sqlx::Error> {
        let inner = &self.inner;
        if inner.parent.is_closed() {
            return Err(sqlx::Error::PoolClosed);
        }
        let started = Instant::now();
        let permit = match tokio::time::timeout(
            inner.acquire_timeout,
            Arc::clone(&inner.permits).acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(sqlx::Error::PoolClosed),
            Err(_) => return Err(sqlx::Error::PoolTimedOut),
        };
        if let Some(idle) = inner.take_idle(tenant) {
            return Ok(Pooled {
                conn: Some(idle.conn),
                born: idle.born,
                tenant,
                permit: Some(permit),
                pool: Arc::clone(inner),
                on_drop: Return::Unsettled,
            });
        }
        let left = inner.acquire_timeout.saturating_sub(started.elapsed());
        let conn = match tokio::time::timeout(left, inner.options.connect()).await {
            Ok(conn) => conn?,
            Err(_) => return Err(sqlx::Error::PoolTimedOut),
        };
        Ok(Pooled {
            conn: Some(conn),
            born: Instant::now(),
            tenant,
            permit: Some(permit),
            pool: Arc::clone(inner),
            on_drop: Return::Unsettled,
        })
    }

    /// Closes every idle connection (after one was found broken, its siblings likely are too:
    /// the server restarted, or a proxy dropped them).
    pub(crate) fn discard_idle(&self) {
        self.inner.discard_idle();
    }

    /// How many connections are idle in the pool.
    pub(crate) fn idle_count(&self) -> usize {
        self.inner.lock_idle().len()
    }
}

impl Inner {
    fn lock_idle(&self) -> MutexGuard<'_, VecDeque<Idle>> {
        // The lock is never held across anything that can panic; a poisoned lock still holds
        // a consistent queue.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The most recently used idle connection that last served `tenant`, else the most
    /// recently used one. Expired connections are dropped on the way.
    fn take_idle(&self, tenant: TenantId) -> Option<Idle> {
        let mut expired = Vec::new();
        let found = {
            let mut idle = self.lock_idle();
            while idle.front().is_some_and(Idle::expired) {
                expired.extend(idle.pop_front());
            }
            match idle.iter().rposition(|entry| entry.tenant == tenant) {
                Some(at) => idle.remove(at),
                None => idle.pop_back(),
            }
        };
        drop(expired);
        found
    }

    fn put_back(&self, conn: PgConnection, born: Instant, tenant: TenantId) {
        if self.parent.is_closed() || born.elapsed() >= MAX_LIFETIME {
            return;
        }
        self.lock_idle().push_back(Idle {
            conn,
            born,
            since: Instant::now(),
            tenant,
        });
    }

    fn discard_idle(&self) {
        let dropped: Vec<Idle> = self.lock_idle().drain(..).collect();
        drop(dropped);
    }
}

impl Idle {
    fn expired(&self) -> bool {
        self.since.elapsed() >= IDLE_TIMEOUT || self.born.elapsed() >= MAX_LIFETIME
    }
}

/// A connection checked out of a [`TenantPool`]; goes back (or is closed) on drop, as
/// [`Pooled::on_drop`] says.
pub(crate) struct Pooled {
    /// Always `Some` until the handle is dropped.
    conn: Option<PgConnection>,
    born: Instant,
    tenant: TenantId,
    /// Held until the connection is back in the pool (or closed), so the pool never has more
    /// connections than its size.
    permit: Option<OwnedSemaphorePermit>,
    pool: Arc<Inner>,
    /// What happens on drop; [`Return::Unsettled`] until the owner knows better.
    pub(crate) on_drop: Return,
}

impl std::fmt::Debug for Pooled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pooled")
            .field("tenant", &self.tenant)
            .field("on_drop", &self.on_drop)
            .finish()
    }
}

const TAKEN: &str = "a pooled connection is only taken out when its handle is dropped";

impl std::ops::Deref for Pooled {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        self.conn.as_ref().expect(TAKEN)
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn.as_mut().expect(TAKEN)
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        match self.on_drop {
            Return::Clean => {
                self.pool.put_back(conn, self.born, self.tenant);
                // The permit is released after the connection is idle again.
                self.permit.take();
            }
            Return::Broken => {
                drop(conn);
                self.permit.take();
            }
            Return::Unsettled => {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    // No runtime to settle it on: close it.
                    return;
                };
                let pool = Arc::clone(&self.pool);
                let permit = self.permit.take();
                let (born, tenant) = (self.born, self.tenant);
                runtime.spawn(async move {
                    PgTransactionManager::start_rollback(&mut conn);
                    match tokio::time::timeout(SETTLE_TIMEOUT, conn.ping()).await {
                        Ok(Ok(())) => pool.put_back(conn, born, tenant),
                        Ok(Err(err)) => {
                            tracing::debug!(error = %err, "a dropped transaction's connection failed; closed");
                        }
                        Err(_) => {
                            tracing::warn!("a dropped transaction's rollback timed out; connection closed");
                        }
                    }
                    drop(permit);
                });
            }
        }
    }
}
