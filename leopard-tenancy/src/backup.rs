//! Tenant backup, restore, clone and verification.
//!
//! - [`Provisioner::backup`] reads every table of a tenant schema (except the migrations ledger)
//!   in ONE `REPEATABLE READ, READ ONLY` transaction, so the archive is one consistent snapshot
//!   even while the server keeps writing; then it reads the tenant's media files.
//! - [`Provisioner::restore`] provisions a NEW tenant and loads the archive into it in the SAME
//!   transaction (provisioning, `session_replication_role = replica`, `TRUNCATE` of the rows the
//!   migrations seeded, `COPY … FROM STDIN`, `setval` of every serial/identity sequence, then a
//!   recount and rehash of every table). Any refusal rolls everything back: no registry row, no
//!   schema, no media directory is left behind.
//! - [`Provisioner::verify`] compares a tenant with an archive's manifest: per table the row
//!   count and the SHA-256 of its rows, per media file the size and SHA-256.
//!
//! # The content hash of a table
//!
//! `COPY (SELECT <columns> FROM <table> ORDER BY <primary key>) TO STDOUT` in text format, with
//! fixed output settings ([`SESSION_SETTINGS`]); tables without a primary key are ordered by
//! their whole row's text. Stored generated columns are left out (PostgreSQL recomputes them).
//! The archive stores exactly these bytes, so the hash of the archived data, of the source
//! tenant and of the restored tenant are computed the same way.
//!
//! # Archive format, version 1
//!
//! ```text
//! file     = magic "LEOPBAK\n" (8 bytes) | format version (u32 BE) | gzip(body)
//!            | SHA-256 of every byte before it (32 bytes)
//! body     = manifest length (u64 BE) | manifest (JSON, see Manifest) | payload
//! payload  = one entry per table (manifest order), then one per media file (manifest order)
//! entry    = kind (1 byte: 'T' table, 'M' media) | name length (u32 BE) | name
//!            | data length (u64 BE) | data
//! ```
//!
//! The manifest holds the payload's SHA-256 too, and each entry's own SHA-256 and size. The
//! whole archive is held in memory while it is written or read.

use std::io::{Read as _, Write as _};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;
use leopard_core::{SchemaName, TenantSlug};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use sqlx::postgres::PgConnection;
use sqlx::Row as _;

use crate::migrate::execute_script;
use crate::model::{NewTenant, SubscriptionStatus, Tenant};
use crate::provision::Provisioner;
use crate::TenancyError;

/// The first 8 bytes of every tenant archive.
pub const MAGIC: &[u8; 8] = b"LEOPBAK\n";

/// The archive container version this binary writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The `format` string of every [`Manifest`].
pub const FORMAT_NAME: &str = "leopard-tenant-backup";

/// The tenant migrations ledger: not archived (the restore's provisioning writes it).
const LEDGER_TABLE: &str = "leopard_migrations";

/// Output settings that make `COPY … TO STDOUT` text the same on every session.
pub const SESSION_SETTINGS: &str = "SET LOCAL DateStyle = 'ISO, YMD';
SET LOCAL IntervalStyle = 'postgres';
SET LOCAL TimeZone = 'UTC';
SET LOCAL extra_float_digits = 1;
SET LOCAL bytea_output = 'hex'";

/// Size of the `COPY … FROM STDIN` messages a restore sends.
const COPY_CHUNK: usize = 1 << 20;

/// What an archive records about its tenant, its tables and its media files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// Always [`FORMAT_VERSION`] (also in the file header).
    pub format_version: u32,
    /// When the backup was taken.
    pub created_at: DateTime<Utc>,
    /// The tenant the archive was taken from.
    pub source: SourceTenant,
    /// The highest tenant migration applied to the source schema.
    pub migration_version: i64,
    /// Every archived table, by name.
    pub tables: Vec<TableEntry>,
    /// Every archived media file, by path.
    pub media: Vec<MediaEntry>,
    /// Hex SHA-256 of the payload (every entry, in order).
    pub payload_sha256: String,
}

/// The source tenant's registry row, as far as a restore reuses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceTenant {
    /// Slug of the source tenant.
    pub slug: String,
    /// Schema of the source tenant.
    pub schema: String,
    /// Display name (the restored tenant gets it too).
    pub name: String,
    /// Subscription status (the restored tenant gets it too).
    pub status: String,
    /// Most users (the restored tenant gets it too).
    pub max_users: i32,
    /// Free-form settings (the restored tenant gets them too).
    pub settings: serde_json::Value,
    /// Contact e-mail address.
    pub contact_email: Option<String>,
    /// Contact phone number.
    pub contact_phone: Option<String>,
}

/// One archived table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEntry {
    /// Table name (in the tenant schema).
    pub name: String,
    /// The archived columns, in order (stored generated columns left out).
    pub columns: Vec<String>,
    /// The primary key's columns the rows are ordered by (empty: ordered by the whole row).
    pub order_by: Vec<String>,
    /// Number of rows.
    pub rows: u64,
    /// Size of the `COPY` text.
    pub bytes: u64,
    /// Hex SHA-256 of the `COPY` text: the table's content hash.
    pub sha256: String,
}

/// One archived media file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaEntry {
    /// Path below the tenant's media directory, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
}

/// A tenant archive in memory: its manifest, each table's `COPY` text and each media file.
#[derive(Debug, Clone)]
pub struct Archive {
    manifest: Manifest,
    tables: Vec<Vec<u8>>,
    media: Vec<Vec<u8>>,
}

/// One table's (or media file's) recorded and found state: rows or size, and hex SHA-256.
pub type Content = Option<(u64, String)>;

/// A table compared with the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCheck {
    /// Table name.
    pub name: String,
    /// Rows and hash in the archive (`None`: not in the archive).
    pub expected: Content,
    /// Rows and hash in the tenant (`None`: no such table).
    pub actual: Content,
}

impl TableCheck {
    /// Whether the table is in both and equal.
    pub fn matches(&self) -> bool {
        self.expected.is_some() && self.expected == self.actual
    }
}

/// A media file compared with the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaCheck {
    /// Path below the tenant's media directory.
    pub path: String,
    /// Size and hash in the archive (`None`: not in the archive).
    pub expected: Content,
    /// Size and hash on disk (`None`: missing).
    pub actual: Content,
}

impl MediaCheck {
    /// Whether the file is in both and equal.
    pub fn matches(&self) -> bool {
        self.expected.is_some() && self.expected == self.actual
    }
}

/// A tenant compared with an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Every table of the archive or of the tenant, by name.
    pub tables: Vec<TableCheck>,
    /// Every media file of the archive or of the tenant's media directory (empty when no media
    /// directory was given), by path.
    pub media: Vec<MediaCheck>,
}

impl Verification {
    /// Whether every table and media file matches.
    pub fn is_match(&self) -> bool {
        self.tables.iter().all(TableCheck::matches) && self.media.iter().all(MediaCheck::matches)
    }

    /// The differences, one line each (empty when it matches).
    pub fn differences(&self) -> Vec<String> {
        let show = |c: &Content| {
            c.as_ref()
                .map_or_else(|| "missing".to_owned(), |(n, h)| format!("{n} / {h}"))
        };
        let tables = self.tables.iter().filter(|c| !c.matches()).map(|c| {
            format!(
                "table {}: archive {}, tenant {}",
                c.name,
                show(&c.expected),
                show(&c.actual)
            )
        });
        let media = self.media.iter().filter(|c| !c.matches()).map(|c| {
            format!(
                "media {}: archive {}, disk {}",
                c.path,
                show(&c.expected),
                show(&c.actual)
            )
        });
        tables.chain(media).collect()
    }
}

/// A restored tenant.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The new registry row.
    pub tenant: Tenant,
    /// The loaded tables, checked against the manifest inside the restore's transaction.
    pub tables: Vec<TableCheck>,
    /// Media files written (none without a media root).
    pub media_files: usize,
    /// Wall time of the restore.
    pub duration: Duration,
}

impl Archive {
    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The archived `COPY` text of table `name`.
    pub fn table_data(&self, name: &str) -> Option<&[u8]> {
        let i = self.manifest.tables.iter().position(|t| t.name == name)?;
        self.tables.get(i).map(Vec::as_slice)
    }

    /// The archived content of media file `path`.
    pub fn media_data(&self, path: &str) -> Option<&[u8]> {
        let i = self.manifest.media.iter().position(|m| m.path == path)?;
        self.media.get(i).map(Vec::as_slice)
    }

    /// The archive as a file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, TenancyError> {
        let manifest = serde_json::to_vec(&self.manifest)
            .map_err(|e| TenancyError::ArchiveCorrupt(format!("manifest: {e}")))?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let io = |e| TenancyError::io(Path::new("<archive in memory>"), e);
        gz.write_all(&(manifest.len() as u64).to_be_bytes())
            .map_err(io)?;
        gz.write_all(&manifest).map_err(io)?;
        gz.write_all(&self.payload()).map_err(io)?;
        let compressed = gz.finish().map_err(io)?;
        let mut out = Vec::with_capacity(compressed.len() + 44);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        out.extend_from_slice(&compressed);
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        Ok(out)
    }

    /// Reads and checks an archive: magic ([`TenancyError::ArchiveForeign`]), whole-file hash,
    /// compressed stream, manifest, payload hash, and every entry's name, size, hash and row
    /// count ([`TenancyError::ArchiveCorrupt`]), container version
    /// ([`TenancyError::ArchiveFormat`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TenancyError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(TenancyError::ArchiveForeign(
                "it does not start with the tenant archive magic".into(),
            ));
        }
        let corrupt = |m: &str| TenancyError::ArchiveCorrupt(m.to_owned());
        if bytes.len() < MAGIC.len() + 4 + 32 {
            return Err(corrupt("truncated (shorter than its header)"));
        }
        let (signed, digest) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(signed).as_slice() != digest {
            return Err(corrupt(
                "its SHA-256 does not match its content (damaged or truncated)",
            ));
        }
        let mut version = [0u8; 4];
        version.copy_from_slice(&signed[MAGIC.len()..MAGIC.len() + 4]);
        let version = u32::from_be_bytes(version);
        if version != FORMAT_VERSION {
            return Err(TenancyError::ArchiveFormat {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let mut decoder = flate2::bufread::GzDecoder::new(&signed[MAGIC.len() + 4..]);
        let mut body = Vec::new();
        decoder
            .read_to_end(&mut body)
            .map_err(|e| TenancyError::ArchiveCorrupt(format!("compressed stream: {e}")))?;
        if !decoder.into_inner().is_empty() {
            return Err(corrupt("bytes after the compressed stream"));
        }
        let mut reader = Reader(&body);
        let manifest_len = reader.u64()?;
        let manifest: Manifest = serde_json::from_slice(reader.take(manifest_len)?)
            .map_err(|e| TenancyError::ArchiveCorrupt(format!("manifest: {e}")))?;
        if manifest.format != FORMAT_NAME || manifest.format_version != FORMAT_VERSION {
            return Err(TenancyError::ArchiveForeign(format!(
                "its manifest is of format {:?} version {}",
                manifest.format, manifest.format_version
            )));
        }
        if hex(&Sha256::digest(reader.0)) != manifest.payload_sha256 {
            return Err(corrupt("the payload's SHA-256 differs from the manifest's"));
        }
        let mut tables = Vec::with_capacity(manifest.tables.len());
        for t in &manifest.tables {
            let data = reader.entry(b'T', &t.name)?;
            check_entry(&t.name, data, t.bytes, &t.sha256)?;
            if count_rows(data) != t.rows {
                return Err(TenancyError::ArchiveCorrupt(format!(
                    "table {} holds {} rows, the manifest says {}",
                    t.name,
                    count_rows(data),
                    t.rows
                )));
            }
            tables.push(data.to_vec());
        }
        let mut media = Vec::with_capacity(manifest.media.len());
        for m in &manifest.media {
            relative_path(&m.path)?;
            let data = reader.entry(b'M', &m.path)?;
            check_entry(&m.path, data, m.size, &m.sha256)?;
            media.push(data.to_vec());
        }
        if !reader.0.is_empty() {
            return Err(corrupt("entries after the last one the manifest lists"));
        }
        Ok(Self {
            manifest,
            tables,
            media,
        })
    }

    /// Writes the archive to `path` (through `<path>.partial` and a rename, so `path` is
    /// either absent or complete); returns its size.
    pub fn write_to(&self, path: &Path) -> Result<u64, TenancyError> {
        let bytes = self.to_bytes()?;
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let written = (|| {
            let mut file = std::fs::File::create(&partial)?;
            file.write_all(&bytes)?;
            file.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&partial);
            return Err(TenancyError::io(&partial, e));
        }
        std::fs::rename(&partial, path).map_err(|e| TenancyError::io(path, e))?;
        Ok(bytes.len() as u64)
    }

    /// Reads and checks the archive in file `path` (see [`Archive::from_bytes`]).
    pub fn read_from(path: &Path) -> Result<Self, TenancyError> {
        let bytes = std::fs::read(path).map_err(|e| TenancyError::io(path, e))?;
        Self::from_bytes(&bytes)
    }

    /// Every entry, in order.
    fn payload(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (t, data) in self.manifest.tables.iter().zip(&self.tables) {
            push_entry(&mut out, b'T', &t.name, data);
        }
        for (m, data) in self.manifest.media.iter().zip(&self.media) {
            push_entry(&mut out, b'M', &m.path, data);
        }
        out
    }
}

fn push_entry(out: &mut Vec<u8>, kind: u8, name: &str, data: &[u8]) {
    out.push(kind);
    out.extend_from_slice(&(name.len() as u32).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&(data.len() as u64).to_be_bytes());
    out.extend_from_slice(data);
}

fn check_entry(name: &str, data: &[u8], size: u64, sha256: &str) -> Result<(), TenancyError> {
    if data.len() as u64 != size || hex(&Sha256::digest(data)) != sha256 {
        return Err(TenancyError::ArchiveCorrupt(format!(
            "entry {name}: its size or SHA-256 differs from the manifest's"
        )));
    }
    Ok(())
}

/// A cursor over an archive body; running out is truncation.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], TenancyError> {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n > self.0.len() {
            return Err(TenancyError::ArchiveCorrupt(
                "truncated (an entry runs past the end)".into(),
            ));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, TenancyError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(b))
    }

    fn entry(&mut self, kind: u8, name: &str) -> Result<&'a [u8], TenancyError> {
        let header = self.take(1)?;
        let mut len = [0u8; 4];
        len.copy_from_slice(self.take(4)?);
        let found = self.take(u64::from(u32::from_be_bytes(len)))?;
        if header != [kind] || found != name.as_bytes() {
            return Err(TenancyError::ArchiveCorrupt(format!(
                "expected entry {name}, found {:?}",
                String::from_utf8_lossy(found)
            )));
        }
        let size = self.u64()?;
        self.take(size)
    }
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Rows of `COPY` text output: one line each (newlines inside values are escaped).
fn count_rows(data: &[u8]) -> u64 {
    data.iter().filter(|&&b| b == b'\n').count() as u64
}

/// `path` checked to be relative and to stay below its directory.
fn relative_path(path: &str) -> Result<&Path, TenancyError> {
    let p = Path::new(path);
    let fine = !path.is_empty()
        && !path.contains('\0')
        && p.components().all(|c| matches!(c, Component::Normal(_)));
    if fine {
        Ok(p)
    } else {
        Err(TenancyError::ArchiveCorrupt(format!(
            "media path {path:?} leaves the tenant's directory"
        )))
    }
}

/// `"name"`, quotes doubled.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A table of a tenant schema as backup and restore see it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Table {
    name: String,
    columns: Vec<String>,
    order_by: Vec<String>,
}

impl Table {
    fn qualified(&self, schema: &SchemaName) -> String {
        format!("{}.{}", schema.quoted(), quote_ident(&self.name))
    }

    fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The deterministic `COPY … TO STDOUT` of the table's rows.
    fn copy_out_sql(&self, schema: &SchemaName) -> String {
        let order = if self.order_by.is_empty() {
            "(leopard_row.*)::text".to_owned()
        } else {
            self.order_by
                .iter()
                .map(|c| format!("leopard_row.{}", quote_ident(c)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "COPY (SELECT {} FROM {} AS leopard_row ORDER BY {order}) TO STDOUT",
            self.column_list(),
            self.qualified(schema)
        )
    }
}

/// The ordinary tables of `schema` but the ledger, by name, with their stored (non-generated)
/// columns and primary keys.
async fn list_tables(
    conn: &mut PgConnection,
    schema: &SchemaName,
) -> Result<Vec<Table>, TenancyError> {
    let rows = sqlx::query(
        "SELECT c.relname::text AS name,
                array(SELECT a.attname::text FROM pg_attribute a
                       WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                         AND a.attgenerated = ''
                       ORDER BY a.attnum) AS columns,
                coalesce((SELECT array_agg(a.attname::text ORDER BY k.ord)
                            FROM pg_index i
                            CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
                           WHERE i.indrelid = c.oid AND i.indisprimary), '{}') AS order_by
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname <> $2
          ORDER BY c.relname",
    )
    .bind(schema.as_str())
    .bind(LEDGER_TABLE)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Table {
                name: r.try_get("name")?,
                columns: r.try_get("columns")?,
                order_by: r.try_get("order_by")?,
            })
        })
        .collect()
}

/// The deterministic `COPY` text of `table`.
async fn copy_out(
    conn: &mut PgConnection,
    schema: &SchemaName,
    table: &Table,
) -> Result<Vec<u8>, TenancyError> {
    let mut stream = conn.copy_out_raw(&table.copy_out_sql(schema)).await?;
    let mut data = Vec::new();
    while let Some(chunk) = stream.try_next().await? {
        data.extend_from_slice(&chunk);
    }
    Ok(data)
}

/// Rows and hash of every table of `schema`, read on `conn` (whose transaction decides the
/// snapshot; [`SESSION_SETTINGS`] must be set).
async fn table_contents(
    conn: &mut PgConnection,
    schema: &SchemaName,
) -> Result<Vec<(String, u64, String)>, TenancyError> {
    let mut out = Vec::new();
    for table in list_tables(conn, schema).await? {
        let data = copy_out(conn, schema, &table).await?;
        out.push((table.name, count_rows(&data), hex(&Sha256::digest(&data))));
    }
    Ok(out)
}

/// Compares the manifest's tables with `actual` (name, rows, hash), by name.
fn compare_tables(manifest: &Manifest, actual: &[(String, u64, String)]) -> Vec<TableCheck> {
    let mut names: Vec<&str> = manifest
        .tables
        .iter()
        .map(|t| t.name.as_str())
        .chain(actual.iter().map(|(n, _, _)| n.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| TableCheck {
            name: name.to_owned(),
            expected: manifest
                .tables
                .iter()
                .find(|t| t.name == name)
                .map(|t| (t.rows, t.sha256.clone())),
            actual: actual
                .iter()
                .find(|(n, _, _)| n == name)
                .map(|(_, rows, hash)| (*rows, hash.clone())),
        })
        .collect()
}

/// Every regular file below `dir` (recursively), by `/`-separated relative path; none when
/// `dir` does not exist. Symbolic links and non-UTF-8 names are skipped with a warning.
fn read_media(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, TenancyError> {
    fn walk(
        dir: &Path,
        prefix: &str,
        out: &mut Vec<(String, Vec<u8>)>,
    ) -> Result<(), TenancyError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && prefix.is_empty() => {
                return Ok(())
            }
            Err(e) => return Err(TenancyError::io(dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| TenancyError::io(dir, e))?;
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                tracing::warn!(path = %path.display(), "media file with a non-UTF-8 name skipped");
                continue;
            };
            let relative = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let kind = entry.file_type().map_err(|e| TenancyError::io(&path, e))?;
            if kind.is_dir() {
                walk(&path, &relative, out)?;
            } else if kind.is_file() {
                let data = std::fs::read(&path).map_err(|e| TenancyError::io(&path, e))?;
                out.push((relative, data));
            } else {
                tracing::warn!(path = %path.display(), "media entry that is not a file skipped");
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out)?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// A directory name unique to this process and moment.
fn unique_name(prefix: &str, schema: &SchemaName) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        ".{prefix}-{}-{}-{nanos}",
        schema.as_str(),
        std::process::id()
    )
}

/// Writes the archive's media files into a new hidden directory below `root`.
fn stage_media(
    root: &Path,
    schema: &SchemaName,
    archive: &Archive,
) -> Result<PathBuf, TenancyError> {
    let staging = root.join(unique_name("restore", schema));
    let written = (|| {
        std::fs::create_dir_all(&staging).map_err(|e| TenancyError::io(&staging, e))?;
        for (m, data) in archive.manifest.media.iter().zip(&archive.media) {
            let path = staging.join(relative_path(&m.path)?);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| TenancyError::io(parent, e))?;
            }
            std::fs::write(&path, data).map_err(|e| TenancyError::io(&path, e))?;
        }
        Ok(())
    })();
    match written {
        Ok(()) => Ok(staging),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

/// Moves the staged directory to `<root>/<schema>`, replacing what a deleted tenant of that
/// schema left there.
fn place_media(root: &Path, schema: &SchemaName, staging: &Path) -> Result<(), TenancyError> {
    let target = root.join(schema.as_str());
    if target.exists() {
        let replaced = root.join(unique_name("replaced", schema));
        std::fs::rename(&target, &replaced).map_err(|e| TenancyError::io(&target, e))?;
        tracing::warn!(
            dir = %target.display(),
            "replaced the media directory a deleted tenant left behind"
        );
        std::fs::remove_dir_all(&replaced).map_err(|e| TenancyError::io(&replaced, e))?;
    }
    std::fs::rename(staging, &target).map_err(|e| TenancyError::io(&target, e))
}

/// A `REPEATABLE READ, READ ONLY` transaction with [`SESSION_SETTINGS`]: one snapshot whose
/// `COPY` output hashes the same on every server.
async fn snapshot(
    pool: &sqlx::PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, TenancyError> {
    let mut tx = pool.begin().await?;
    execute_script(
        &mut tx,
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    )
    .await?;
    execute_script(&mut tx, SESSION_SETTINGS).await?;
    Ok(tx)
}

impl Provisioner {
    /// Takes a backup of tenant `slug`: every table of its schema (but the migrations ledger)
    /// read in one `REPEATABLE READ, READ ONLY` transaction, and, with `media_root` (the
    /// directory holding one directory per tenant schema), the files of `<media_root>/<schema>`.
    /// Safe while servers write to the tenant.
    pub async fn backup(
        &self,
        slug: &TenantSlug,
        media_root: Option<&Path>,
    ) -> Result<Archive, TenancyError> {
        let mut tx = snapshot(self.pool()).await?;
        let tenant = crate::provision::tenant_by_slug(&mut *tx, slug).await?;
        let schema = tenant.schema_name;
        let source = SourceTenant {
            slug: slug.to_string(),
            schema: schema.as_str().to_owned(),
            name: tenant.name,
            status: tenant.subscription_status.as_str().to_owned(),
            max_users: tenant.max_users,
            settings: tenant.settings,
            contact_email: tenant.contact_email,
            contact_phone: tenant.contact_phone,
        };
        let migration_version: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT max(version) FROM {}.{LEDGER_TABLE}",
            schema.quoted()
        ))
        .fetch_one(&mut *tx)
        .await?;
        let mut entries = Vec::new();
        let mut tables = Vec::new();
        for table in list_tables(&mut tx, &schema).await? {
            let data = copy_out(&mut tx, &schema, &table).await?;
            entries.push(TableEntry {
                rows: count_rows(&data),
                bytes: data.len() as u64,
                sha256: hex(&Sha256::digest(&data)),
                name: table.name,
                columns: table.columns,
                order_by: table.order_by,
            });
            tables.push(data);
        }
        // Read while the snapshot is held; files are not transactional (docs/operations.md).
        let files = match media_root {
            Some(root) => read_media(&root.join(schema.as_str()))?,
            None => Vec::new(),
        };
        tx.commit().await?;
        let (media_entries, media): (Vec<_>, Vec<_>) = files
            .into_iter()
            .map(|(path, data)| {
                let entry = MediaEntry {
                    path,
                    size: data.len() as u64,
                    sha256: hex(&Sha256::digest(&data)),
                };
                (entry, data)
            })
            .unzip();
        let mut archive = Archive {
            manifest: Manifest {
                format: FORMAT_NAME.to_owned(),
                format_version: FORMAT_VERSION,
                created_at: Utc::now(),
                source,
                migration_version: migration_version.unwrap_or(0),
                tables: entries,
                media: media_entries,
                payload_sha256: String::new(),
            },
            tables,
            media,
        };
        archive.manifest.payload_sha256 = hex(&Sha256::digest(archive.payload()));
        tracing::info!(
            slug = slug.as_str(),
            tables = archive.manifest.tables.len(),
            media = archive.manifest.media.len(),
            "took a tenant backup"
        );
        Ok(archive)
    }

    /// Restores `archive` as the NEW tenant `slug` (its schema `<slug's schema>`): refused when
    /// the archive's migration version is not this binary's, or the slug, its domains or its
    /// schema are taken. Provisioning and loading are one transaction, checked against the
    /// manifest before commit, so a refusal leaves nothing behind. With `media_root`, the media
    /// files are written to a hidden staging directory first and moved to
    /// `<media_root>/<schema>` after the commit (replacing what a deleted tenant left there).
    ///
    /// Needs a role that may set `session_replication_role` (a superuser, or on PostgreSQL 15+
    /// one granted `SET` on it).
    pub async fn restore(
        &self,
        archive: &Archive,
        slug: &TenantSlug,
        media_root: Option<&Path>,
    ) -> Result<Restored, TenancyError> {
        let started = Instant::now();
        let manifest = &archive.manifest;
        let binary = self.migration_set().latest_tenant_version();
        if manifest.migration_version != binary {
            return Err(TenancyError::ArchiveMigrationVersion {
                archive: manifest.migration_version,
                binary,
            });
        }
        let mut new = NewTenant::new(slug.clone(), manifest.source.name.clone());
        new.status = SubscriptionStatus::parse(&manifest.source.status)?;
        new.max_users = manifest.source.max_users;
        new.settings = manifest.source.settings.clone();
        new.contact_email = manifest.source.contact_email.clone();
        new.contact_phone = manifest.source.contact_phone.clone();
        let schema = slug.schema_name();
        let staging = match media_root {
            Some(root) => Some(stage_media(root, &schema, archive)?),
            None => None,
        };
        let loaded = self.load(archive, &new, &schema, started).await;
        let tables = match loaded {
            Ok(tables) => tables,
            Err(e) => {
                if let Some(staging) = &staging {
                    let _ = std::fs::remove_dir_all(staging);
                }
                return Err(e);
            }
        };
        if let (Some(root), Some(staging)) = (media_root, &staging) {
            if let Err(e) = place_media(root, &schema, staging) {
                // The rows are committed; take them back so nothing half-restored stays.
                let _ = std::fs::remove_dir_all(staging);
                if let Err(purge) = self.purge(slug, slug.as_str()).await {
                    tracing::error!(slug = slug.as_str(), %purge, "could not remove a half-restored tenant");
                }
                return Err(e);
            }
        }
        let tenant = self.get(slug).await?;
        let duration = started.elapsed();
        tracing::info!(
            slug = slug.as_str(),
            source = manifest.source.slug.as_str(),
            ms = duration.as_millis() as u64,
            "restored tenant"
        );
        Ok(Restored {
            tenant,
            tables,
            media_files: if media_root.is_some() {
                manifest.media.len()
            } else {
                0
            },
            duration,
        })
    }

    /// Provisions `new` and loads the archive's rows, in one transaction.
    async fn load(
        &self,
        archive: &Archive,
        new: &NewTenant,
        schema: &SchemaName,
        started: Instant,
    ) -> Result<Vec<TableCheck>, TenancyError> {
        let manifest = &archive.manifest;
        let mut tx = self.pool().begin().await?;
        self.create_in(&mut tx, new, started).await?;
        // Foreign keys and triggers off while loading: rows arrive table by table.
        execute_script(&mut tx, "SET LOCAL session_replication_role = replica").await?;
        execute_script(&mut tx, SESSION_SETTINGS).await?;
        let tables = list_tables(&mut tx, schema).await?;
        let fits = tables.len() == manifest.tables.len()
            && tables
                .iter()
                .zip(&manifest.tables)
                .all(|(t, m)| t.name == m.name && t.columns == m.columns);
        if !fits {
            let ours: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
            let theirs: Vec<&str> = manifest.tables.iter().map(|t| t.name.as_str()).collect();
            return Err(TenancyError::ArchiveSchema(format!(
                "tables or columns differ (archive: {}; this binary: {})",
                theirs.join(", "),
                ours.join(", ")
            )));
        }
        if !tables.is_empty() {
            let list: Vec<String> = tables.iter().map(|t| t.qualified(schema)).collect();
            execute_script(&mut tx, &format!("TRUNCATE TABLE {}", list.join(", "))).await?;
        }
        for (table, data) in tables.iter().zip(&archive.tables) {
            if data.is_empty() {
                continue;
            }
            let mut copy = tx
                .copy_in_raw(&format!(
                    "COPY {} ({}) FROM STDIN",
                    table.qualified(schema),
                    table.column_list()
                ))
                .await?;
            for chunk in data.chunks(COPY_CHUNK) {
                if let Err(e) = copy.send(chunk).await {
                    let _ = copy.abort("restore failed").await;
                    return Err(e.into());
                }
            }
            copy.finish().await?;
        }
        reset_sequences(&mut tx, schema).await?;
        let actual = table_contents(&mut tx, schema).await?;
        let checks = compare_tables(manifest, &actual);
        let differences: Vec<String> = checks
            .iter()
            .filter(|c| !c.matches())
            .map(|c| c.name.clone())
            .collect();
        if !differences.is_empty() {
            return Err(TenancyError::RestoreMismatch {
                slug: new.slug.to_string(),
                message: format!("tables {} differ", differences.join(", ")),
            });
        }
        tx.commit().await?;
        Ok(checks)
    }

    /// Backs tenant `source` up in memory and restores it as the new tenant `target`
    /// (staging copies). Media files are copied when `media_root` is given.
    pub async fn clone_tenant(
        &self,
        source: &TenantSlug,
        target: &TenantSlug,
        media_root: Option<&Path>,
    ) -> Result<Restored, TenancyError> {
        let archive = self.backup(source, media_root).await?;
        self.restore(&archive, target, media_root).await
    }

    /// Compares tenant `slug` with `archive`: every table's rows and content hash (read in one
    /// snapshot), and with `media_root` every media file's size and hash.
    pub async fn verify(
        &self,
        slug: &TenantSlug,
        archive: &Archive,
        media_root: Option<&Path>,
    ) -> Result<Verification, TenancyError> {
        let schema = self.get(slug).await?.schema_name;
        let mut tx = snapshot(self.pool()).await?;
        let actual = table_contents(&mut tx, &schema).await?;
        tx.commit().await?;
        let tables = compare_tables(&archive.manifest, &actual);
        let media = match media_root {
            None => Vec::new(),
            Some(root) => {
                let files = read_media(&root.join(schema.as_str()))?;
                let mut paths: Vec<&str> = archive
                    .manifest
                    .media
                    .iter()
                    .map(|m| m.path.as_str())
                    .chain(files.iter().map(|(p, _)| p.as_str()))
                    .collect();
                paths.sort_unstable();
                paths.dedup();
                paths
                    .into_iter()
                    .map(|path| MediaCheck {
                        path: path.to_owned(),
                        expected: archive
                            .manifest
                            .media
                            .iter()
                            .find(|m| m.path == path)
                            .map(|m| (m.size, m.sha256.clone())),
                        actual: files
                            .iter()
                            .find(|(p, _)| p == path)
                            .map(|(_, data)| (data.len() as u64, hex(&Sha256::digest(data)))),
                    })
                    .collect()
            }
        };
        Ok(Verification { tables, media })
    }
}

/// Sets every serial and identity sequence of `schema`'s tables to continue after the
/// column's highest value (at 1 for an empty table).
async fn reset_sequences(conn: &mut PgConnection, schema: &SchemaName) -> Result<(), TenancyError> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.relname::text, a.attname::text, s.seq
           FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
           CROSS JOIN LATERAL (SELECT pg_get_serial_sequence(
                   format('%I.%I', n.nspname, c.relname), a.attname) AS seq) s
          WHERE n.nspname = $1 AND c.relkind = 'r' AND s.seq IS NOT NULL
          ORDER BY 1, 2",
    )
    .bind(schema.as_str())
    .fetch_all(&mut *conn)
    .await?;
    for (table, column, sequence) in rows {
        sqlx::query(&format!(
            "SELECT setval($1::regclass, coalesce((SELECT max({}) FROM {}.{}), 0) + 1, false)",
            quote_ident(&column),
            schema.quoted(),
            quote_ident(&table)
        ))
        .bind(&sequence)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Archive {
        let tables = vec![b"1\tone\n2\ttwo\n".to_vec()];
        let media = vec![b"picture".to_vec()];
        let mut archive = Archive {
            manifest: Manifest {
                format: FORMAT_NAME.into(),
                format_version: FORMAT_VERSION,
                created_at: Utc::now(),
                source: SourceTenant {
                    slug: "acme".into(),
                    schema: "tenant_acme".into(),
                    name: "Acme".into(),
                    status: "TRIAL".into(),
                    max_users: 5,
                    settings: serde_json::json!({}),
                    contact_email: None,
                    contact_phone: None,
                },
                migration_version: 3,
                tables: vec![TableEntry {
                    name: "things".into(),
                    columns: vec!["id".into(), "name".into()],
                    order_by: vec!["id".into()],
                    rows: 2,
                    bytes: tables[0].len() as u64,
                    sha256: hex(&Sha256::digest(&tables[0])),
                }],
                media: vec![MediaEntry {
                    path: "pictures/a.png".into(),
                    size: 7,
                    sha256: hex(&Sha256::digest(&media[0])),
                }],
                payload_sha256: String::new(),
            },
            tables,
            media,
        };
        archive.manifest.payload_sha256 = hex(&Sha256::digest(archive.payload()));
        archive
    }

    #[test]
    fn an_archive_reads_back_as_it_was_written() {
        let archive = sample();
        let back = Archive::from_bytes(&archive.to_bytes().expect("encodes")).expect("decodes");
        assert_eq!(back.manifest(), archive.manifest());
        assert_eq!(back.table_data("things"), Some(&b"1\tone\n2\ttwo\n"[..]));
        assert_eq!(back.media_data("pictures/a.png"), Some(&b"picture"[..]));
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_refused() {
        let bytes = sample().to_bytes().expect("encodes");
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0xff;
            assert!(Archive::from_bytes(&flipped).is_err(), "byte {i} flipped");
        }
        for len in 0..bytes.len() {
            assert!(Archive::from_bytes(&bytes[..len]).is_err(), "cut at {len}");
        }
    }

    #[test]
    fn a_file_without_the_magic_is_foreign() {
        let err = Archive::from_bytes(b"PK\x03\x04 a zip file, not ours").expect_err("refused");
        assert!(matches!(err, TenancyError::ArchiveForeign(_)), "{err}");
    }

    #[test]
    fn media_paths_that_leave_the_directory_are_refused() {
        for bad in ["", "../x", "/etc/passwd", "a/../../b", "./a"] {
            assert!(relative_path(bad).is_err(), "{bad:?}");
        }
        assert!(relative_path("profile_pictures/client_1/x.png").is_ok());
    }
}
