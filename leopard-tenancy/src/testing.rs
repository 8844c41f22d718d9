//! [`TestDatabase`]: a fresh, empty PostgreSQL database for each test, so suites run in
//! parallel against a real server.
//!
//! Where the server comes from, in order:
//! 1. `DATABASE_URL` (any database on the server; the harness connects to it to create and drop
//!    its own databases);
//! 2. a private cluster started once per test process from the local PostgreSQL binaries, in a
//!    temporary directory that is removed when the process exits;
//! 3. a PostgreSQL container started with testcontainers (needs a Docker engine).
//!
//! Each [`TestDatabase`] is dropped (`DROP DATABASE … WITH (FORCE)`) when the value is dropped.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions as _, Connection as _};

use crate::embedded::{DataDir, EmbeddedPostgres};
use crate::TenancyError;

/// A fresh database that is dropped with this value.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
    pool: PgPool,
}

/// The server all test databases of this process live on: its admin URL, and whatever keeps it
/// alive.
struct Server {
    admin_url: String,
    _keep: Keep,
}

#[allow(dead_code)] // held only to keep the server alive for the life of the process
enum Keep {
    External,
    Embedded(Mutex<EmbeddedPostgres>),
    Container(Box<dyn std::any::Any + Send + Sync>),
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

fn server() -> Result<&'static Server, TenancyError> {
    SERVER
        .get_or_init(start_server)
        .as_ref()
        .map_err(|e| TenancyError::Embedded(e.clone()))
}

fn start_server() -> Result<Server, String> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        if !url.is_empty() {
            return Ok(Server {
                admin_url: url,
                _keep: Keep::External,
            });
        }
    }
    if EmbeddedPostgres::find_binaries().is_some() {
        let dir = std::env::temp_dir().join(format!(
            "leopard-test-pg-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let cluster = EmbeddedPostgres::start(&dir, DataDir::Remove).map_err(|e| e.to_string())?;
        return Ok(Server {
            admin_url: cluster.url("postgres"),
            _keep: Keep::Embedded(Mutex::new(cluster)),
        });
    }
    start_container()
}

#[cfg(not(feature = "testcontainers"))]
fn start_container() -> Result<Server, String> {
    Err(format!(
        "no DATABASE_URL and no local PostgreSQL binaries; enable the `testcontainers` feature of \
         leopard-tenancy to use Docker instead. {}",
        crate::embedded::NO_BINARIES_HELP
    ))
}

#[cfg(feature = "testcontainers")]
fn start_container() -> Result<Server, String> {
    use testcontainers_modules::postgres::Postgres;
    use testcontainers_modules::testcontainers::runners::SyncRunner as _;
    let container = Postgres::default().start().map_err(|e| {
        format!("no DATABASE_URL, no local PostgreSQL binaries, and Docker failed: {e}")
    })?;
    let port = container
        .get_host_port_ipv4(5432)
        .map_err(|e| format!("container port: {e}"))?;
    Ok(Server {
        admin_url: format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres"),
        _keep: Keep::Container(Box::new(container)),
    })
}

impl TestDatabase {
    /// Creates a fresh database with a pool of up to 10 connections.
    pub async fn new() -> Result<Self, TenancyError> {
        Self::with_pool_size(10).await
    }

    /// Creates a fresh database with a pool of up to `max_connections` connections.
    pub async fn with_pool_size(max_connections: u32) -> Result<Self, TenancyError> {
        let server = server()?;
        let name = format!(
            "leopard_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        let admin: PgConnectOptions = server.admin_url.parse()?;
        let mut conn = admin.connect().await?;
        sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let options = admin.clone().database(&name);
        let url = options.to_url_lossy().to_string();
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await?;
        Ok(Self {
            name,
            url,
            admin_url: server.admin_url.clone(),
            pool,
        })
    }

    /// A pool on this database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The connection URL of this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop may run inside or outside a runtime; a thread with its own runtime works in both.
        let dropper = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ =
                        sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                    let _ = conn.close().await;
                }
            });
        });
        let _ = dropper.join();
    }
}

/// A fresh database with the registry's shared migrations applied, and the migrator and
/// provisioner for an application's migration set: the usual start of a tenancy test.
#[derive(Debug)]
pub struct TestTenancy {
    /// The database (dropped with this value).
    pub db: TestDatabase,
    /// The application's migrations.
    pub set: std::sync::Arc<crate::MigrationSet>,
    /// A migrator for `set`.
    pub migrator: crate::Migrator,
    /// A provisioner for `set` with the default resolution settings.
    pub provisioner: crate::Provisioner,
}

impl TestTenancy {
    /// Creates the database (a pool of up to `max_connections`), applies the shared migrations
    /// of the registry and of `set`.
    pub async fn new(set: crate::MigrationSet, max_connections: u32) -> Result<Self, TenancyError> {
        let db = TestDatabase::with_pool_size(max_connections).await?;
        let set = std::sync::Arc::new(set);
        let migrator = crate::Migrator::new(db.pool().clone(), std::sync::Arc::clone(&set));
        migrator.migrate_shared().await?;
        let provisioner = crate::Provisioner::new(
            db.pool().clone(),
            std::sync::Arc::clone(&set),
            crate::ResolveConfig::default(),
        );
        Ok(Self {
            db,
            set,
            migrator,
            provisioner,
        })
    }
}
