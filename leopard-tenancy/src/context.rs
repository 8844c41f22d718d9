//! The tenant context of one request, and the tenant-scoped transaction it hands out.
//!
//! [`TenantContext::begin`] is the only way to reach a tenant's tables. It sends
//! `BEGIN; SET LOCAL search_path TO "<schema>", public` as one simple-query message (one round
//! trip). `SET LOCAL` ends with the transaction — on commit, on rollback, and on the rollback
//! run when a transaction is dropped open — so a pooled connection never carries a tenant's
//! schema into the next checkout, and transaction-mode poolers stay safe.
//!
//! The connections come from the tenant pool ([`crate::pool`]): one that ended with an awaited
//! `COMMIT` or `ROLLBACK` goes back without a ping; one dropped open is rolled back and checked
//! before reuse.

use std::borrow::Cow;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use sqlx::postgres::{PgConnection, PgTransactionManager};
use sqlx::TransactionManager as _;

use crate::model::TenantInfo;
use crate::pool::{Pooled, Return, TenantPool};
use crate::TenancyError;

/// A request's tenant and the means to open transactions in its schema.
///
/// Cheap to clone. Handlers receive it from the request extensions ([`crate::TenancyLayer`]
/// puts it there); background work gets one from [`crate::TenantRegistry::context`].
#[derive(Clone)]
pub struct TenantContext {
    tenant: Arc<TenantInfo>,
    pool: TenantPool,
    begin_sql: Arc<str>,
}

impl std::fmt::Debug for TenantContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantContext")
            .field("tenant", &self.tenant.slug)
            .field("schema", &self.tenant.schema.as_str())
            .finish()
    }
}

impl TenantContext {
    pub(crate) fn new(tenant: Arc<TenantInfo>, pool: TenantPool) -> Self {
        let begin_sql = begin_statement(&tenant.schema).into();
        Self {
            tenant,
            pool,
            begin_sql,
        }
    }

    /// The tenant this context belongs to.
    pub fn tenant(&self) -> &TenantInfo {
        &self.tenant
    }

    /// The tenant, shared.
    pub fn tenant_arc(&self) -> Arc<TenantInfo> {
        Arc::clone(&self.tenant)
    }

    /// Opens a transaction whose `search_path` is the tenant's schema (then `public`).
    ///
    /// Dropping the returned [`TenantTx`] without [`TenantTx::commit`] rolls it back.
    ///
    /// Pooled connections are not pinged on checkout; when the first statement fails because
    /// the connection broke while idle (the server restarted, a proxy dropped it), the broken
    /// connection is discarded and the transaction is opened once more on a fresh one: nothing
    /// of the caller's work was sent yet.
    pub async fn begin(&self) -> Result<TenantTx, TenancyError> {
        let conn = match self.open().await {
            Err(err) if is_broken_connection(&err) => {
                tracing::debug!(error = %err, "a pooled connection was broken; retrying once");
                self.pool.discard_idle();
                self.open().await?
            }
            other => other?,
        };
        Ok(TenantTx {
            conn,
            tenant: Arc::clone(&self.tenant),
        })
    }

    /// Checks a connection out and sends the tenant's `BEGIN`.
    async fn open(&self) -> Result<Pooled, sqlx::Error> {
        let mut conn = self.pool.acquire(self.tenant.id).await?;
        let statement = Cow::Owned(self.begin_sql.to_string());
        if let Err(err) = PgTransactionManager::begin(&mut conn, Some(statement)).await {
            // Whatever state the connection is in, it is not worth finding out.
            conn.on_drop = Return::Broken;
            return Err(err);
        }
        Ok(conn)
    }
}

/// Whether `err` says the connection itself failed (so a retry on another one may succeed).
fn is_broken_connection(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Io(_) | sqlx::Error::Protocol(_))
        || matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("57P01"))
}

/// The statement that opens a tenant transaction; the schema name is validated and quoted.
pub(crate) fn begin_statement(schema: &leopard_core::SchemaName) -> String {
    format!(
        "BEGIN; SET LOCAL search_path TO {}, public",
        schema.quoted()
    )
}

/// A transaction scoped to one tenant's schema. Dereferences to a [`PgConnection`], so
/// `&mut *tx` is an executor for `sqlx` queries.
#[derive(Debug)]
pub struct TenantTx {
    conn: Pooled,
    tenant: Arc<TenantInfo>,
}

impl TenantTx {
    /// The tenant this transaction is scoped to.
    pub fn tenant(&self) -> &TenantInfo {
        &self.tenant
    }

    /// Commits the transaction.
    pub async fn commit(mut self) -> Result<(), TenancyError> {
        let done = PgTransactionManager::commit(&mut self.conn).await;
        self.settle(done)
    }

    /// Rolls the transaction back.
    pub async fn rollback(mut self) -> Result<(), TenancyError> {
        let done = PgTransactionManager::rollback(&mut self.conn).await;
        self.settle(done)
    }

    /// Records how the transaction ended, which decides how its connection goes back.
    fn settle(&mut self, done: Result<(), sqlx::Error>) -> Result<(), TenancyError> {
        self.conn.on_drop = match &done {
            Ok(()) if PgTransactionManager::get_transaction_depth(&self.conn) == 0 => Return::Clean,
            Ok(()) => Return::Unsettled,
            Err(err) if is_broken_connection(err) => Return::Broken,
            Err(_) => Return::Unsettled,
        };
        Ok(done?)
    }
}

impl Deref for TenantTx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl DerefMut for TenantTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}
