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
    /// A file is not a Leopard tenant archive (it lacks the format magic).
    #[error("not a Leopard tenant archive: {0}")]
    ArchiveForeign(String),
    /// A tenant archive is damaged or truncated (a hash, a length or the compressed stream
    /// does not check out).
    #[error("corrupted tenant archive: {0}")]
    ArchiveCorrupt(String),
    /// A tenant archive's container format is not one this binary reads.
    #[error("tenant archive format version {found} is not supported (this binary reads version {supported})")]
    ArchiveFormat {
        /// The archive's format version.
        found: u32,
        /// The version this binary reads.
        supported: u32,
    },
    /// A tenant archive was taken at another tenant migration version than this binary's.
    #[error("{}", migration_mismatch(*.archive, *.binary))]
    ArchiveMigrationVersion {
        /// The tenant migration version the archive's schema had.
        archive: i64,
        /// The latest tenant migration version of this binary.
        binary: i64,
    },
    /// A tenant archive's tables or columns differ from the schema this binary provisions.
    #[error("the archive does not fit this binary's tenant schema: {0}")]
    ArchiveSchema(String),
    /// The rows loaded by a restore differ from the archive's manifest (nothing was kept).
    #[error("restored tenant {slug} does not match the archive: {message}")]
    RestoreMismatch {
        /// The tenant being restored.
        slug: String,
        /// The first differences.
        message: String,
    },
    /// Reading or writing a file (an archive, a media file) failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory at fault.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// The message of [`TenancyError::ArchiveMigrationVersion`].
fn migration_mismatch(archive: i64, binary: i64) -> String {
    if archive > binary {
        format!(
            "the archive was taken at tenant migration version {archive}, newer than this binary's {binary}: restore it with a newer leopard"
        )
    } else {
        format!(
            "the archive was taken at tenant migration version {archive}, older than this binary's {binary}: restore it with the leopard release that wrote it, then run `leopard migrate --all`"
        )
    }
}

impl TenancyError {
    /// An [`TenancyError::Io`] error about `path`.
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }

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
