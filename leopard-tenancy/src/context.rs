//! The tenant context of one request, and the tenant-scoped transaction it hands out.
//!
//! [`TenantContext::begin`] is the only way to reach a tenant's tables. It sends
//! `BEGIN; SET LOCAL search_path TO "<schema>", public` as one simple-query message (one round
//! trip). `SET LOCAL` ends with the transaction — on commit, on rollback, and on the rollback
//! sqlx queues when a transaction is dropped — so a pooled connection never carries a tenant's
//! schema into the next checkout, and transaction-mode poolers stay safe.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{Postgres, Transaction};

use crate::model::TenantInfo;
use crate::TenancyError;

/// A request's tenant and the means to open transactions in its schema.
///
/// Cheap to clone. Handlers receive it from the request extensions ([`crate::TenancyLayer`]
/// puts it there); background work gets one from [`crate::TenantRegistry::context`].
#[derive(Clone)]
pub struct TenantContext {
    tenant: Arc<TenantInfo>,
    pool: PgPool,
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
    pub(crate) fn new(tenant: Arc<TenantInfo>, pool: PgPool) -> Self {
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
        let tx = match self.pool.begin_with(self.begin_sql.to_string()).await {
            Err(err) if is_broken_connection(&err) => {
                tracing::debug!(error = %err, "a pooled connection was broken; retrying once");
                self.pool.begin_with(self.begin_sql.to_string()).await?
            }
            other => other?,
        };
        Ok(TenantTx {
            tx,
            tenant: Arc::clone(&self.tenant),
        })
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
    tx: Transaction<'static, Postgres>,
    tenant: Arc<TenantInfo>,
}

impl TenantTx {
    /// The tenant this transaction is scoped to.
    pub fn tenant(&self) -> &TenantInfo {
        &self.tenant
    }

    /// Commits the transaction.
    pub async fn commit(self) -> Result<(), TenancyError> {
        self.tx.commit().await?;
        Ok(())
    }

    /// Rolls the transaction back.
    pub async fn rollback(self) -> Result<(), TenancyError> {
        self.tx.rollback().await?;
        Ok(())
    }
}

impl Deref for TenantTx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for TenantTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}
