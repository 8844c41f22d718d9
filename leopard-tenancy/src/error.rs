//! The one error type of `leopard-tenancy`.

use leopard_core::CoreError;

/// Everything that can go wrong in tenancy operations.
#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    /// An input value failed validation (slug, schema name, host name, …).
    #[error(transparent)]
    Invalid(#[from] CoreError),
    /// A field of a request failed validation.
    #[error("invalid {field}: {message}")]
    InvalidField {
        /// The field at fault.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// No tenant is registered under this slug, host or schema.
    #[error("tenant not found: {0}")]
    TenantNotFound(String),
    /// The tenant exists but is inactive, suspended or cancelled.
    #[error("tenant {0} is not active")]
    TenantInactive(String),
    /// A tenant or domain with this unique key already exists.
    #[error("{what} already exists: {value}")]
    AlreadyExists {
        /// What kind of thing collided (`tenant`, `domain`, …).
        what: &'static str,
        /// The colliding value.
        value: String,
    },
    /// A destructive operation was asked for without its explicit confirmation.
    #[error("refusing to {0} without explicit confirmation")]
    NotConfirmed(&'static str),
    /// Another process holds the migration lock.
    #[error("another migration run holds the lock; try again when it has finished")]
    MigrationLocked,
    /// A migration failed in one schema.
    #[error("migration {version} ({name}) failed in {schema}: {message}")]
    MigrationFailed {
        /// The schema (or `public`) in which it failed.
        schema: String,
        /// The failing migration's version.
        version: i64,
        /// The failing migration's name.
        name: String,
        /// The database's message.
        message: String,
    },
    /// An applied migration's text differs from the embedded one.
    #[error("migration {version} in {schema} was applied with a different checksum; migrations must never be edited once released")]
    ChecksumMismatch {
        /// The schema whose ledger disagrees.
        schema: String,
        /// The migration version.
        version: i64,
    },
    /// A migration set is malformed (versions not strictly increasing, …).
    #[error("invalid migration set: {0}")]
    InvalidMigrationSet(String),
    /// The embedded PostgreSQL cluster could not be found, started or stopped.
    #[error("embedded PostgreSQL: {0}")]
    Embedded(String),
    /// The embedded PostgreSQL cluster could not start: why, and what to do about it.
    #[error("embedded PostgreSQL: {cause}\n  fix: {fix}{detail}")]
    EmbeddedStart {
        /// The cause, in one line (names the directory, port, user or binary at fault).
        cause: String,
        /// What to do, in one line (a package to install, a flag to pass).
        fix: String,
        /// The failing tool's last output lines, each on its own indented line (may be empty).
        detail: String,
    },
    /// A database operation failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl TenancyError {
    /// Maps unique-violation database errors onto [`TenancyError::AlreadyExists`].
    pub(crate) fn from_insert(err: sqlx::Error, what: &'static str, value: &str) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
                Self::AlreadyExists {
                    what,
                    value: value.to_owned(),
                }
            }
            _ => Self::Database(err),
        }
    }
}
