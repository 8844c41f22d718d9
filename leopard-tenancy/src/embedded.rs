//! A private PostgreSQL cluster started from the local binaries: the embedded default of
//! `leopard serve`/`leopard demo` and the second choice of the test harness.
//!
//! The cluster listens on 127.0.0.1 only (no Unix socket), on a free port, with `trust` auth for
//! the `postgres` user. A watchdog process stops it (and removes throw-away data directories)
//! when the owning process exits, even on a crash. PostgreSQL refuses to run as root; as root the
//! cluster runs as the `postgres` system user, which then owns the data directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::TenancyError;

/// What to do with the data directory when the cluster stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataDir {
    /// Keep it for the next start (the server's data directory).
    Keep,
    /// Delete it (test clusters).
    Remove,
}

/// A running private cluster. [`EmbeddedPostgres::stop`] stops it; if the process dies first, the
/// watchdog does.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    bin_dir: PathBuf,
    data_dir: PathBuf,
    port: u16,
    run_as: Option<String>,
    owned: bool,
    watchdog: Option<std::process::Child>,
    stopped: bool,
}

/// The message shown when no PostgreSQL binaries are found.
pub const NO_BINARIES_HELP: &str = "No PostgreSQL server binaries (initdb, pg_ctl, postgres) were \
found on PATH or under /usr/lib/postgresql/*/bin. Install them (Debian/Ubuntu: `apt-get install \
postgresql`; macOS: `brew install postgresql`), or point Leopard at an existing server with \
--database-url / LEOPARD_DATABASE_URL / DATABASE_URL (for example \
postgres://postgres@127.0.0.1:5432/leopard).";

impl EmbeddedPostgres {
    /// Finds the directory holding `initdb`, `pg_ctl` and `postgres`: `PATH` first, then the
    /// newest `/usr/lib/postgresql/<major>/bin`, then a few usual prefixes.
    pub fn find_binaries() -> Option<PathBuf> {
        let has_all = |dir: &Path| {
            ["initdb", "pg_ctl", "postgres"]
                .iter()
                .all(|b| dir.join(b).is_file())
        };
        if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                if has_all(&dir) {
                    return Some(dir);
                }
            }
        }
        let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let major = e.file_name().to_str()?.parse::<u32>().ok()?;
                Some((major, e.path().join("bin")))
            })
            .collect();
        majors.sort();
        for (_, dir) in majors.into_iter().rev() {
            if has_all(&dir) {
                return Some(dir);
            }
        }
        [
            "/usr/local/pgsql/bin",
            "/opt/homebrew/bin",
            "/usr/pgsql/bin",
        ]
        .iter()
        .map(PathBuf::from)
        .find(|d| has_all(d))
    }

    /// Starts a cluster in `data_dir` (running `initdb` first when it holds none), or reuses one
    /// that is already running there (it is then left running by [`EmbeddedPostgres::stop`]).
    pub fn start(data_dir: &Path, on_stop: DataDir) -> Result<Self, TenancyError> {
        let bin_dir = Self::find_binaries()
            .ok_or_else(|| TenancyError::Embedded(NO_BINARIES_HELP.to_owned()))?;
        let run_as = running_as_root().then(|| "postgres".to_owned());
        std::fs::create_dir_all(data_dir).map_err(io_err("create the data directory"))?;
        let data_dir = data_dir
            .canonicalize()
            .map_err(io_err("resolve the data directory"))?;
        let mut this = Self {
            bin_dir,
            data_dir,
            port: 0,
            run_as,
            owned: true,
            watchdog: None,
            stopped: false,
        };
        if let Some(port) = this.running_port() {
            tracing::info!(port, dir = %this.data_dir.display(), "reusing running embedded PostgreSQL");
            this.port = port;
            this.owned = false;
            return Ok(this);
        }
        if let Some(user) = &this.run_as {
            let status = Command::new("chown")
                .args(["-R", &format!("{user}:{user}")])
                .arg(&this.data_dir)
                .status()
                .map_err(io_err("chown the data directory"))?;
            if !status.success() {
                return Err(TenancyError::Embedded(format!(
                    "could not hand {} to the {user} user",
                    this.data_dir.display()
                )));
            }
        }
        if !this.data_dir.join("PG_VERSION").exists() {
            this.run(
                "initdb",
                &[
                    "-D",
                    &this.data_dir.to_string_lossy(),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-instructions",
                ],
            )?;
        }
        this.port = free_port()?;
        let log = this.data_dir.join("server.log");
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off \
             -c max_connections=200 -c max_locks_per_transaction=256",
            this.port
        );
        this.run(
            "pg_ctl",
            &[
                "-D",
                &this.data_dir.to_string_lossy(),
                "-l",
                &log.to_string_lossy(),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )?;
        this.watchdog = Some(this.spawn_watchdog(on_stop)?);
        tracing::info!(port = this.port, dir = %this.data_dir.display(), "started embedded PostgreSQL");
        Ok(this)
    }

    /// The TCP port the cluster listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A connection URL for `database`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates `database` unless it exists.
    pub async fn ensure_database(&self, database: &str) -> Result<(), TenancyError> {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&self.url("postgres")).await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(database)
                .fetch_one(&mut conn)
                .await?;
        if !exists {
            let quoted = format!("\"{}\"", database.replace('"', "\"\""));
            sqlx::raw_sql(&format!("CREATE DATABASE {quoted}"))
                .execute(&mut conn)
                .await?;
        }
        conn.close().await?;
        Ok(())
    }

    /// Stops the cluster (fast shutdown) if this process started it. Idempotent.
    pub fn stop(&mut self) -> Result<(), TenancyError> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        if let Some(mut watchdog) = self.watchdog.take() {
            // The watchdog stops the cluster (and cleans up) as soon as it sees the pipe close.
            drop(watchdog.stdin.take());
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = watchdog.try_wait() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            return Err(TenancyError::Embedded(
                "the cluster did not stop within 60 s".into(),
            ));
        }
        Ok(())
    }

    /// The port of a cluster already running in the data directory, if any.
    fn running_port(&self) -> Option<u16> {
        let pid_file = std::fs::read_to_string(self.data_dir.join("postmaster.pid")).ok()?;
        let mut lines = pid_file.lines();
        let pid: u32 = lines.next()?.trim().parse().ok()?;
        let port: u16 = lines.nth(2)?.trim().parse().ok()?;
        let alive = Path::new(&format!("/proc/{pid}")).exists();
        let answers = std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(1),
        )
        .is_ok();
        (alive && answers).then_some(port)
    }

    fn command(&self, program: &str) -> Command {
        let binary = self.bin_dir.join(program);
        match &self.run_as {
            Some(user) => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", user, "--"]).arg(binary);
                cmd
            }
            None => Command::new(binary),
        }
    }

    fn run(&self, program: &'static str, args: &[&str]) -> Result<(), TenancyError> {
        let output = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(io_err(program))?;
        if output.status.success() {
            return Ok(());
        }
        let log = std::fs::read_to_string(self.data_dir.join("server.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        Err(TenancyError::Embedded(format!(
            "{program} failed: {}{}\n{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )))
    }

    /// A `sh` process that waits until its stdin closes (this process stopped it, or died), then
    /// stops the cluster and, for throw-away clusters, removes the data directory.
    fn spawn_watchdog(&self, on_stop: DataDir) -> Result<std::process::Child, TenancyError> {
        let pg_ctl = self.bin_dir.join("pg_ctl");
        let as_user = match &self.run_as {
            Some(user) => format!("runuser -u {user} -- "),
            None => String::new(),
        };
        let dir = self.data_dir.to_string_lossy().replace('\'', "'\\''");
        let cleanup = match on_stop {
            DataDir::Keep => String::new(),
            DataDir::Remove => format!("; rm -rf '{dir}'"),
        };
        let script = format!(
            "cat >/dev/null; {as_user}'{}' -D '{dir}' -m fast -w stop >/dev/null 2>&1{cleanup}",
            pg_ctl.to_string_lossy().replace('\'', "'\\''")
        );
        Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io_err("start the cluster watchdog"))
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            tracing::warn!(error = %err, "stopping embedded PostgreSQL");
        }
    }
}

/// Whether this process runs as root (PostgreSQL then needs another user).
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A TCP port that was free a moment ago on 127.0.0.1.
fn free_port() -> Result<u16, TenancyError> {
    let listener =
        std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(io_err("find a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io_err("find a free port"))?
        .port();
    Ok(port)
}

fn io_err(what: &'static str) -> impl Fn(std::io::Error) -> TenancyError {
    move |e| TenancyError::Embedded(format!("{what}: {e}"))
}
