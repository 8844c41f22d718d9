//! A private PostgreSQL cluster started from the local binaries: the embedded default of
//! `leopard serve`/`leopard demo` and the second choice of the test harness.
//!
//! The cluster listens on 127.0.0.1 only (no Unix socket), on a free port, with `trust` auth for
//! the `postgres` user. A watchdog process stops it (and removes throw-away data directories)
//! when the owning process exits, even on a crash.
//!
//! PostgreSQL refuses to run as root; as root the cluster runs as the `postgres` system user,
//! which then owns the data directory. That user must be able to traverse every parent of the
//! data directory, which it cannot under `/root` or a `mktemp -d` folder (mode 0700). Leopard
//! never loosens the permissions of such a parent: when the `postgres` user cannot reach the
//! requested directory, the cluster lives in [`RELOCATION_ROOT`]`/<requested path>-<hash>`
//! (root-owned, mode 0755, one directory per requested path) and the requested path becomes a
//! symbolic link to it, so the next start finds the same cluster. Child processes (`initdb`,
//! `pg_ctl`, `postgres`) start with `/` as their working directory, which every user may enter.
//!
//! When the cluster cannot start, [`TenancyError::EmbeddedStart`] names the cause and the fix
//! first, then the tool's own output.

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
    link: Option<PathBuf>,
    relocated: bool,
    port: u16,
    run_as: Option<String>,
    owned: bool,
    watchdog: Option<std::process::Child>,
    stopped: bool,
}

/// The system user the cluster runs as when this process runs as root.
pub const CLUSTER_USER: &str = "postgres";

/// Where clusters live, as root, whose requested data directory the [`CLUSTER_USER`] cannot
/// reach: one directory per requested path, named after it.
pub const RELOCATION_ROOT: &str = "/var/lib/leopard/postgres";

/// The message shown when no PostgreSQL binaries are found.
pub const NO_BINARIES_HELP: &str = "No PostgreSQL server binaries (initdb, pg_ctl, postgres) were \
found on PATH or under /usr/lib/postgresql/*/bin. Install them (Debian/Ubuntu: `apt-get install \
postgresql`; macOS: `brew install postgresql`), or point Leopard at an existing server with \
--database-url / LEOPARD_DATABASE_URL / DATABASE_URL (for example \
postgres://postgres@127.0.0.1:5432/leopard).";

/// How many ports `start` tries when another process takes the free one first.
const PORT_ATTEMPTS: u32 = 3;

/// Why `pg_ctl start` failed: a taken port (worth another try) or anything else.
enum StartFailure {
    PortTaken,
    Other(TenancyError),
}

/// A program that exited unsuccessfully, with what it (and the server log) said.
struct Failed {
    program: &'static str,
    output: String,
}

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
    ///
    /// As root, a `data_dir` the `postgres` user cannot reach is replaced by a symbolic link to a
    /// directory under [`RELOCATION_ROOT`] (see the module documentation);
    /// [`EmbeddedPostgres::data_dir`] is then the real directory and
    /// [`EmbeddedPostgres::linked_from`] the requested path.
    pub fn start(data_dir: &Path, on_stop: DataDir) -> Result<Self, TenancyError> {
        let bin_dir = Self::find_binaries().ok_or_else(no_binaries)?;
        let run_as = running_as_root().then(|| CLUSTER_USER.to_owned());
        if let Some(user) = &run_as {
            check_cluster_user(user)?;
        }
        let placed = place_data_dir(data_dir, run_as.as_deref())?;
        let mut this = Self {
            bin_dir,
            data_dir: placed.dir,
            link: placed.link,
            relocated: placed.relocated,
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
                .current_dir("/")
                .status()
                .map_err(|e| {
                    start_error(
                        format!("could not run chown to hand {} to the {user} user: {e}", this.data_dir.display()),
                        "install coreutils, run Leopard as an ordinary user, or pass --database-url",
                    )
                })?;
            if !status.success() {
                return Err(start_error(
                    format!("could not hand {} to the {user} user (chown failed)", this.data_dir.display()),
                    "choose a data directory on a local file system with --data-dir / LEOPARD_DATA_DIR, or pass --database-url",
                ));
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
        // The free port may be taken between finding and binding it: try a few.
        let mut attempt = 0;
        loop {
            attempt += 1;
            this.port = free_port()?;
            match this.pg_ctl_start() {
                Ok(()) => break,
                Err(StartFailure::PortTaken) if attempt < PORT_ATTEMPTS => {
                    tracing::warn!(port = this.port, "port taken before PostgreSQL bound it; trying another");
                }
                Err(StartFailure::PortTaken) => {
                    return Err(start_error(
                        format!("PostgreSQL could not bind a free 127.0.0.1 port ({PORT_ATTEMPTS} tries, last {}): another process took each one first", this.port),
                        "start again, or use a running server with --database-url",
                    ))
                }
                Err(StartFailure::Other(err)) => return Err(err),
            }
        }
        this.watchdog = Some(this.spawn_watchdog(on_stop)?);
        match &this.link {
            Some(link) if this.relocated => tracing::info!(
                port = this.port,
                dir = %this.data_dir.display(),
                link = %link.display(),
                "started embedded PostgreSQL (relocated: the {CLUSTER_USER} user cannot reach the requested directory)"
            ),
            _ => {
                tracing::info!(port = this.port, dir = %this.data_dir.display(), "started embedded PostgreSQL")
            }
        }
        Ok(this)
    }

    /// `pg_ctl start` on `self.port`; a bind failure is told apart so another port can be tried.
    fn pg_ctl_start(&self) -> Result<(), StartFailure> {
        let log = self.data_dir.join("server.log");
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off \
             -c max_connections=200 -c max_locks_per_transaction=256",
            self.port
        );
        self.run_raw(
            "pg_ctl",
            &[
                "-D",
                &self.data_dir.to_string_lossy(),
                "-l",
                &log.to_string_lossy(),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
        .map_err(|failed| {
            if is_port_taken(&failed.output) {
                StartFailure::PortTaken
            } else {
                StartFailure::Other(self.diagnose(&failed))
            }
        })
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

    /// The requested data directory when it is a symbolic link to [`EmbeddedPostgres::data_dir`]
    /// (as root, when the cluster user cannot reach the requested place).
    pub fn linked_from(&self) -> Option<&Path> {
        self.link.as_deref()
    }

    /// Whether this start moved the cluster under [`RELOCATION_ROOT`] because the cluster user
    /// cannot reach the requested directory (or a link made by an earlier start points there).
    pub fn relocated(&self) -> bool {
        self.relocated
    }

    fn command(&self, program: &str) -> Command {
        let binary = self.bin_dir.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", user, "--"]).arg(binary);
                cmd
            }
            None => Command::new(binary),
        };
        // The caller's working directory may be closed to the cluster user (initdb and pg_ctl
        // change back to it); `/` is open to everyone.
        cmd.current_dir("/");
        cmd
    }

    fn run(&self, program: &'static str, args: &[&str]) -> Result<(), TenancyError> {
        self.run_raw(program, args)
            .map_err(|failed| self.diagnose(&failed))
    }

    /// Runs a tool; on failure returns its stderr, stdout and what it added to the server log.
    fn run_raw(&self, program: &'static str, args: &[&str]) -> Result<(), Failed> {
        let log = self.data_dir.join("server.log");
        let before = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let output = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Failed {
                program,
                output: match &self.run_as {
                    Some(_) if e.kind() == std::io::ErrorKind::NotFound => {
                        format!("runuser not found: {e}")
                    }
                    _ => format!("could not run {program}: {e}"),
                },
            })?;
        if output.status.success() {
            return Ok(());
        }
        let mut text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        let logged = read_from(&log, before);
        if !logged.trim().is_empty() {
            text.push_str("server log:\n");
            text.push_str(&logged);
        }
        Err(Failed {
            program,
            output: text,
        })
    }

    /// The cause and the fix of a tool's failure, recognised from what it said.
    fn diagnose(&self, failed: &Failed) -> TenancyError {
        let who = match &self.run_as {
            Some(user) => format!("the {user} user"),
            None => "this user".to_owned(),
        };
        let (cause, fix) = diagnosis(failed, &who, &self.data_dir, self.port);
        TenancyError::EmbeddedStart {
            cause,
            fix,
            detail: indent_tail(failed.program, &failed.output),
        }
    }

    /// A `sh` process that waits until its stdin closes (this process stopped it, or died), then
    /// stops the cluster and, for throw-away clusters, removes the data directory (and the link to
    /// it).
    fn spawn_watchdog(&self, on_stop: DataDir) -> Result<std::process::Child, TenancyError> {
        let pg_ctl = self.bin_dir.join("pg_ctl");
        let as_user = match &self.run_as {
            Some(user) => format!("runuser -u {user} -- "),
            None => String::new(),
        };
        let dir = shell_quote(&self.data_dir);
        let cleanup = match (on_stop, &self.link) {
            (DataDir::Keep, _) => String::new(),
            (DataDir::Remove, None) => format!("; rm -rf {dir}"),
            (DataDir::Remove, Some(link)) => format!("; rm -rf {dir}; rm -f {}", shell_quote(link)),
        };
        let script = format!(
            "cat >/dev/null; {as_user}{} -D {dir} -m fast -w stop >/dev/null 2>&1{cleanup}",
            shell_quote(&pg_ctl)
        );
        Command::new("setsid")
            .args(["sh", "-c", &script])
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                start_error(
                    format!("could not start the cluster watchdog (setsid sh): {e}"),
                    "install util-linux (setsid), or pass --database-url",
                )
            })
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
    let taken = |e: std::io::Error| {
        start_error(
            format!("could not find a free 127.0.0.1 port: {e}"),
            "check that the loopback interface is up, or pass --database-url",
        )
    };
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(taken)?;
    let port = listener.local_addr().map_err(taken)?.port();
    Ok(port)
}

fn start_error(cause: impl Into<String>, fix: impl Into<String>) -> TenancyError {
    TenancyError::EmbeddedStart {
        cause: cause.into(),
        fix: fix.into(),
        detail: String::new(),
    }
}

fn no_binaries() -> TenancyError {
    start_error(
        "no PostgreSQL server binaries (initdb, pg_ctl, postgres) on PATH or under /usr/lib/postgresql/*/bin",
        "install them (Debian/Ubuntu: `apt-get install postgresql`; macOS: `brew install postgresql`), \
         or use a running server with --database-url / LEOPARD_DATABASE_URL / DATABASE_URL",
    )
}

/// As root the cluster runs as `user` through `runuser`: both must exist.
fn check_cluster_user(user: &str) -> Result<(), TenancyError> {
    let exists = Command::new("id")
        .args(["-u", user])
        .current_dir("/")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !exists {
        return Err(start_error(
            format!("PostgreSQL refuses to run as root and the `{user}` system user it would run as does not exist"),
            "install the server package (Debian/Ubuntu: `apt-get install postgresql` creates the user), \
             run Leopard as an ordinary user, or pass --database-url",
        ));
    }
    let has_runuser = Command::new("runuser")
        .arg("--version")
        .current_dir("/")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_runuser {
        return Err(start_error(
            format!(
                "as root the cluster runs as the `{user}` user through `runuser`, which is missing"
            ),
            "install util-linux (Debian/Ubuntu: `apt-get install util-linux`), run Leopard as an \
             ordinary user, or pass --database-url",
        ));
    }
    Ok(())
}

/// Where a cluster's files go: the directory itself, the requested path when it is a link to
/// it, and whether that directory is under [`RELOCATION_ROOT`].
struct Placement {
    dir: PathBuf,
    link: Option<PathBuf>,
    relocated: bool,
}

/// Creates (or finds) the data directory. Without `user` (not root) it is the requested path.
/// As root it is the requested path when `user` can reach it, else a directory under
/// [`RELOCATION_ROOT`] named after the requested path, which becomes a link to it. Permissions
/// of directories this function did not create are never changed.
fn place_data_dir(requested: &Path, user: Option<&str>) -> Result<Placement, TenancyError> {
    let dir_error = |what: &str, path: &Path, e: std::io::Error| {
        start_error(
            format!("could not {what} {}: {e}", path.display()),
            "choose a data directory you can write with --data-dir / LEOPARD_DATA_DIR, or pass --database-url",
        )
    };
    let absolute =
        std::path::absolute(requested).map_err(|e| dir_error("resolve", requested, e))?;
    let (Some(parent), Some(name)) = (absolute.parent(), absolute.file_name()) else {
        return Err(start_error(
            format!("{} cannot hold a PostgreSQL cluster", absolute.display()),
            "pass a data directory such as ./.leopard with --data-dir / LEOPARD_DATA_DIR",
        ));
    };
    std::fs::create_dir_all(parent).map_err(|e| dir_error("create", parent, e))?;
    let parent = parent
        .canonicalize()
        .map_err(|e| dir_error("resolve", parent, e))?;
    let requested = parent.join(name);
    let Some(user) = user else {
        std::fs::create_dir_all(&requested).map_err(|e| dir_error("create", &requested, e))?;
        let dir = requested
            .canonicalize()
            .map_err(|e| dir_error("resolve", &requested, e))?;
        return Ok(Placement {
            dir,
            link: None,
            relocated: false,
        });
    };
    if let Ok(meta) = requested.symlink_metadata() {
        if meta.file_type().is_symlink() {
            // A link an earlier start made: recreate its target when it was removed.
            if let Ok(target) = std::fs::read_link(&requested) {
                if target.starts_with(RELOCATION_ROOT) && !target.exists() {
                    prepare_relocation_root(user)?;
                    std::fs::create_dir_all(&target)
                        .map_err(|e| dir_error("create", &target, e))?;
                }
            }
        }
        let dir = requested
            .canonicalize()
            .map_err(|e| dir_error("resolve", &requested, e))?;
        let link = meta.file_type().is_symlink().then(|| requested.clone());
        if can_enter(user, dir.parent().unwrap_or(Path::new("/"))) {
            let relocated = dir.starts_with(RELOCATION_ROOT);
            return Ok(Placement {
                dir,
                link,
                relocated,
            });
        }
        // An empty directory (an earlier start that could not go on) makes way for the link.
        let empty = link.is_none()
            && std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_none());
        if !empty {
            return Err(start_error(
                format!(
                    "the {user} user (PostgreSQL refuses to run as root) cannot reach {}: a parent directory is closed to it",
                    dir.display()
                ),
                format!(
                    "move that directory under {RELOCATION_ROOT} and leave a symbolic link in its place, \
                     choose another --data-dir, or pass --database-url"
                ),
            ));
        }
        std::fs::remove_dir(&dir).map_err(|e| dir_error("remove the empty", &dir, e))?;
    } else if can_enter(user, &parent) {
        std::fs::create_dir(&requested).map_err(|e| dir_error("create", &requested, e))?;
        return Ok(Placement {
            dir: requested,
            link: None,
            relocated: false,
        });
    }
    prepare_relocation_root(user)?;
    let dir = Path::new(RELOCATION_ROOT).join(relocated_name(&requested));
    std::fs::create_dir_all(&dir).map_err(|e| dir_error("create", &dir, e))?;
    std::os::unix::fs::symlink(&dir, &requested)
        .map_err(|e| dir_error("link to the cluster from", &requested, e))?;
    Ok(Placement {
        dir,
        link: Some(requested),
        relocated: true,
    })
}

/// Creates [`RELOCATION_ROOT`] (and its parent) root-owned with mode 0755 when missing, and
/// checks that `user` can enter it. Existing directories keep their permissions.
fn prepare_relocation_root(user: &str) -> Result<(), TenancyError> {
    use std::os::unix::fs::PermissionsExt as _;
    let root = Path::new(RELOCATION_ROOT);
    for dir in [root.parent().unwrap_or(root), root] {
        if dir.exists() {
            continue;
        }
        std::fs::create_dir(dir)
            .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)))
            .map_err(|e| {
                start_error(
                    format!("could not create {}: {e}", dir.display()),
                    "make /var/lib writable, choose a --data-dir the postgres user can reach, or pass --database-url",
                )
            })?;
    }
    if !can_enter(user, root) {
        return Err(start_error(
            format!("the {user} user cannot enter {RELOCATION_ROOT}, where Leopard keeps clusters it cannot reach elsewhere"),
            format!("give it access to {RELOCATION_ROOT} (it is Leopard's own directory), choose a --data-dir it can reach, or pass --database-url"),
        ));
    }
    Ok(())
}

/// Whether `user` may enter `dir` (search permission on it and on every parent).
fn can_enter(user: &str, dir: &Path) -> bool {
    Command::new("runuser")
        .args(["-u", user, "--", "test", "-x"])
        .arg(dir)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The directory name under [`RELOCATION_ROOT`] for a requested path: the path's components
/// joined by `-` (at most its last 80 characters) and a hash of the whole path.
fn relocated_name(requested: &Path) -> String {
    let text = requested.to_string_lossy();
    let readable: String = text
        .trim_start_matches('/')
        .chars()
        .map(|c| match c {
            '/' => '-',
            c if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') => c,
            _ => '_',
        })
        .collect();
    let skip = readable.chars().count().saturating_sub(80);
    let readable: String = readable.chars().skip(skip).collect();
    // FNV-1a: stable across builds (the name must not change between versions).
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}-{hash:016x}", readable.trim_start_matches('.'))
}

/// What a file holds after its first `from` bytes (empty when it cannot be read).
fn read_from(path: &Path, from: u64) -> String {
    use std::io::{Read as _, Seek as _};
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        if file.seek(std::io::SeekFrom::Start(from)).is_ok() {
            let mut bytes = Vec::new();
            if file.read_to_end(&mut bytes).is_ok() {
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
        }
    }
    text
}

fn is_port_taken(output: &str) -> bool {
    output.contains("Address already in use") || output.contains("could not bind")
}

/// The cause and the fix of a failed tool, recognised from its output; `who` is the user the
/// cluster runs as, in words.
fn diagnosis(failed: &Failed, who: &str, data_dir: &Path, port: u16) -> (String, String) {
    let out = failed.output.as_str();
    let dir = data_dir.display();
    let program = failed.program;
    let database_url = "or use a running server with --database-url / LEOPARD_DATABASE_URL";
    if out.starts_with("runuser not found") {
        (
            "as root the cluster runs as the postgres user through `runuser`, which is missing"
                .into(),
            format!(
                "install util-linux (Debian/Ubuntu: `apt-get install util-linux`), {database_url}"
            ),
        )
    } else if out.starts_with("could not run") {
        (
            format!("{program} could not be run: {}", out.trim()),
            format!("reinstall the PostgreSQL server package (Debian/Ubuntu: `apt-get install postgresql`), {database_url}"),
        )
    } else if is_port_taken(out) {
        (
            format!("PostgreSQL could not listen on 127.0.0.1:{port}: the port is in use"),
            format!("start again (each start picks a free port), {database_url}"),
        )
    } else if out.contains("Permission denied") {
        (
            format!("{who} is denied access to the data directory {dir} or one of its parents"),
            format!("choose a data directory it can reach with --data-dir / LEOPARD_DATA_DIR, {database_url}"),
        )
    } else if out.contains("wrong ownership")
        || out.contains("invalid permissions")
        || out.contains("must be owned")
    {
        (
            format!("the data directory {dir} belongs to another user or has the wrong permissions"),
            format!("use a data directory of your own with --data-dir / LEOPARD_DATA_DIR, {database_url}"),
        )
    } else if out.contains("incompatible with this version")
        || out.contains("database files are incompatible")
    {
        (
            format!("{dir} holds a cluster of another PostgreSQL major version"),
            format!("install that version, or move {dir} away (a new, empty cluster is created), {database_url}"),
        )
    } else if out.contains("No space left on device") {
        (
            format!("the file system of {dir} is full"),
            format!("free some space or choose another --data-dir, {database_url}"),
        )
    } else if out.contains("exists but is not empty") {
        (
            format!("{dir} is not empty but holds no PostgreSQL cluster"),
            format!("empty it, choose another --data-dir, {database_url}"),
        )
    } else if out.contains("shared memory") || out.contains("semaphore") {
        (
            "PostgreSQL could not get the shared memory or semaphores it needs".into(),
            format!("raise the kernel's IPC limits (or the container's /dev/shm), {database_url}"),
        )
    } else {
        (
            format!("{program} failed for the data directory {dir}"),
            format!("see its output below, {database_url}"),
        )
    }
}

/// The last lines a tool printed, indented, after a heading naming it (empty when it printed
/// nothing).
fn indent_tail(program: &str, output: &str) -> String {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let tail = &lines[lines.len().saturating_sub(12)..];
    let mut text = format!("\n  {program} said:");
    for line in tail {
        text.push_str("\n    ");
        text.push_str(line);
    }
    text
}

/// `path` single-quoted for `sh`.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(program: &'static str, output: &str) -> Failed {
        Failed {
            program,
            output: output.to_owned(),
        }
    }

    #[test]
    fn the_relocated_name_reads_like_the_requested_path_and_tells_paths_apart() {
        let name = relocated_name(Path::new("/root/leo/.leopard/postgres"));
        assert!(name.starts_with("root-leo-.leopard-postgres-"), "{name}");
        assert_ne!(
            name,
            relocated_name(Path::new("/root/leo2/.leopard/postgres"))
        );
        assert_eq!(
            name,
            relocated_name(Path::new("/root/leo/.leopard/postgres"))
        );
        let long = relocated_name(Path::new(&format!("/{}/x y/postgres", "a".repeat(200))));
        assert!(long.len() <= 80 + 17, "{long}");
        assert!(long.contains("x_y-postgres-"), "{long}");
    }

    #[test]
    fn a_permission_denied_from_initdb_names_the_directory_and_the_data_dir_flag() {
        let (cause, fix) = diagnosis(
            &failed(
                "initdb",
                "initdb: error: could not access directory \"/root/leo/.leopard/postgres\": Permission denied",
            ),
            "the postgres user",
            Path::new("/root/leo/.leopard/postgres"),
            5555,
        );
        assert!(cause.contains("the postgres user"), "{cause}");
        assert!(cause.contains("/root/leo/.leopard/postgres"), "{cause}");
        assert!(
            fix.contains("--data-dir") && fix.contains("--database-url"),
            "{fix}"
        );
    }

    #[test]
    fn a_taken_port_is_recognised_so_another_port_is_tried() {
        let out =
            "server log:\nLOG:  could not bind IPv4 address \"127.0.0.1\": Address already in use";
        assert!(is_port_taken(out));
        let (cause, _) = diagnosis(&failed("pg_ctl", out), "this user", Path::new("/d"), 6000);
        assert!(cause.contains("127.0.0.1:6000"), "{cause}");
    }

    #[test]
    fn an_unknown_failure_still_says_what_failed_and_shows_the_output_below() {
        let (cause, fix) = diagnosis(&failed("pg_ctl", "boom"), "this user", Path::new("/d"), 1);
        assert!(cause.contains("pg_ctl failed"), "{cause}");
        assert!(fix.contains("--database-url"), "{fix}");
        let err = TenancyError::EmbeddedStart {
            cause,
            fix,
            detail: indent_tail("pg_ctl", "line one\n\nline two\n"),
        };
        let text = err.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("embedded PostgreSQL: pg_ctl failed"),
            "{text}"
        );
        assert!(lines[1].starts_with("  fix: "), "{text}");
        assert_eq!(
            &lines[2..],
            ["  pg_ctl said:", "    line one", "    line two"]
        );
    }

    #[test]
    fn missing_binaries_name_the_package_to_install_and_the_url_flag() {
        let text = no_binaries().to_string();
        assert!(text.contains("apt-get install postgresql"), "{text}");
        assert!(text.contains("--database-url"), "{text}");
        assert_eq!(text.lines().count(), 2, "{text}");
    }

    /// Real processes: as root, a cluster asked for inside a 0700 directory runs relocated, the
    /// closed directory keeps its mode, and a throw-away cluster leaves nothing behind.
    #[test]
    fn as_root_a_cluster_inside_a_directory_closed_to_postgres_runs_relocated_and_is_cleaned_up() {
        use std::os::unix::fs::PermissionsExt as _;
        if !running_as_root() {
            eprintln!("skipped: this test needs root (the cluster then runs as the postgres user)");
            return;
        }
        if EmbeddedPostgres::find_binaries().is_none() {
            panic!("{NO_BINARIES_HELP}");
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let closed =
            std::env::temp_dir().join(format!("leopard-closed-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&closed).expect("create");
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let requested = closed.join("pg");

        let mut cluster = EmbeddedPostgres::start(&requested, DataDir::Remove).expect("starts");
        assert!(cluster.relocated());
        assert!(cluster.data_dir().starts_with(RELOCATION_ROOT));
        assert_eq!(cluster.linked_from(), Some(requested.as_path()));
        assert_eq!(
            std::fs::read_link(&requested).expect("a link"),
            cluster.data_dir()
        );
        let mode = std::fs::metadata(&closed)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700, "the closed directory keeps its mode");
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", cluster.port())).is_ok(),
            "the cluster listens"
        );
        let data = cluster.data_dir().to_owned();
        cluster.stop().expect("stops");
        assert!(!data.exists(), "the relocated directory is removed");
        assert!(requested.symlink_metadata().is_err(), "the link is removed");
        std::fs::remove_dir(&closed).expect("only the closed directory is left");
    }
}
