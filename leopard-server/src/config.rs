//! Command-line and environment configuration. Every flag can also be set from a `LEOPARD_*`
//! environment variable (listed by `--help`); the database URL also from `DATABASE_URL`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `leopard`: the Leopard CRM server and its administration commands.
#[derive(Debug, Parser)]
#[command(name = "leopard", version, about, propagate_version = true)]
pub struct Cli {
    /// Settings shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Settings shared by every command.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// PostgreSQL URL. Without one (here, LEOPARD_DATABASE_URL or DATABASE_URL) a private
    /// cluster is started under the data directory from the local PostgreSQL binaries.
    #[arg(
        long,
        env = "LEOPARD_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Base domain of tenant host names.
    #[arg(
        long,
        env = "LEOPARD_BASE_DOMAIN",
        default_value = "localhost",
        global = true
    )]
    pub base_domain: String,
    /// Application label of `<slug>-<app>.<base>` host names.
    #[arg(
        long,
        env = "LEOPARD_APP_SUBDOMAIN",
        default_value = "immigrate",
        global = true
    )]
    pub app_subdomain: String,
    /// Where the embedded database and other local state live.
    #[arg(
        long,
        env = "LEOPARD_DATA_DIR",
        default_value = "./.leopard",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Log output format.
    #[arg(long, env = "LEOPARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

impl GlobalArgs {
    /// The configured database URL: the flag or `LEOPARD_DATABASE_URL`, else `DATABASE_URL`.
    pub fn database_url(&self) -> Option<String> {
        self.database_url
            .clone()
            .or_else(|| std::env::var("DATABASE_URL").ok())
            .filter(|u| !u.trim().is_empty())
    }

    /// Host-resolution settings.
    pub fn resolve_config(&self) -> leopard_tenancy::ResolveConfig {
        leopard_tenancy::ResolveConfig {
            base_domain: self.base_domain.to_ascii_lowercase(),
            app_subdomain: self.app_subdomain.to_ascii_lowercase(),
            patterns: true,
        }
    }
}

/// Log output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API.
    Serve(ServeArgs),
    /// Start with demo data: embedded database, migrations, tenants `acme` and `globex`; then serve.
    Demo(ServeArgs),
    /// Apply migrations.
    Migrate(MigrateArgs),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage a tenant's users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage platform administrators (they manage tenants through `/api/platform/`).
    #[command(subcommand)]
    PlatformAdmin(PlatformAdminCommand),
    /// Bulk test data (benchmarks, demos).
    #[command(subcommand)]
    Seed(SeedCommand),
    /// Operate the event bus: status, pause/resume, retry, prune, handlers.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Operate the in-server scheduler (due reminders, due-soon and overdue tasks).
    #[command(subcommand)]
    Scheduler(SchedulerCommand),
}

/// `scheduler` subcommands.
#[derive(Debug, Subcommand)]
pub enum SchedulerCommand {
    /// Run the scheduled jobs once now, in every serving tenant or only --tenant, and print what
    /// they did. Takes no leader lock: safe while servers run (nothing is notified twice).
    RunOnce(SchedulerRunOnceArgs),
}

/// Options of `scheduler run-once`.
#[derive(Debug, Clone, Args)]
pub struct SchedulerRunOnceArgs {
    /// Only this tenant (its slug); it must be serving (not suspended or inactive).
    #[arg(long)]
    pub tenant: Option<String>,
    /// A task counts as due soon when its due date is at most this many hours ahead.
    #[arg(long, env = "LEOPARD_TASK_DUE_SOON_HOURS", default_value_t = 24)]
    pub task_due_soon_hours: u32,
    /// Tenants processed at once.
    #[arg(long, env = "LEOPARD_SCHEDULER_CONCURRENCY", default_value_t = 4)]
    pub scheduler_concurrency: usize,
}

/// `events` subcommands.
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Event counts per tenant (pending, running, completed, failed), the oldest pending
    /// event's age, and pauses.
    Status,
    /// Pause processing globally, or for one tenant with --tenant.
    Pause {
        /// The tenant's slug (omit for the global pause).
        #[arg(long)]
        tenant: Option<String>,
        /// Why (shown by `events status`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume processing globally, or for one tenant with --tenant.
    Resume {
        /// The tenant's slug (omit for the global pause).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Make a failed event pending again (by id), or every failed event with --failed.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["id", "failed"])))]
    Retry {
        /// The event's id (a UUID).
        id: Option<String>,
        /// Retry every failed event (of --tenant, or of all tenants).
        #[arg(long, conflicts_with = "id")]
        failed: bool,
        /// With --failed: only this tenant's events.
        #[arg(long, requires = "failed")]
        tenant: Option<String>,
    },
    /// Delete finished events older than the retention periods.
    Prune {
        /// Keep completed events this many days.
        #[arg(long, default_value_t = 7)]
        completed_days: u64,
        /// Keep failed events this many days.
        #[arg(long, default_value_t = 30)]
        failed_days: u64,
    },
    /// List the registered event handlers.
    Handlers,
}

/// `seed` subcommands.
#[derive(Debug, Subcommand)]
pub enum SeedCommand {
    /// Create many users at once, all with one password: `<prefix>0001`, `<prefix>0002`, …
    /// (existing usernames are skipped; refused if the tenant's max_users would be exceeded).
    Users(SeedUsersArgs),
    /// Create many synthetic CRM rows at once for load tests: clients spread over the branches
    /// and stages, assigned to the branches' users, and tasks linked to them (no events are
    /// recorded).
    Crm(SeedCrmArgs),
}

/// Options of `seed crm`.
#[derive(Debug, Clone, Args)]
pub struct SeedCrmArgs {
    /// The tenant's slug.
    #[arg(long, env = "LEOPARD_SEED_TENANT")]
    pub tenant: String,
    /// How many clients.
    #[arg(long, default_value_t = 5000)]
    pub clients: i32,
    /// How many tasks (linked to the most recent clients, after the clients are created).
    #[arg(long, default_value_t = 0)]
    pub tasks: i32,
}

/// Options of `seed users`.
#[derive(Debug, Clone, Args)]
pub struct SeedUsersArgs {
    /// The tenant's slug.
    #[arg(long, env = "LEOPARD_SEED_TENANT")]
    pub tenant: String,
    /// How many users.
    #[arg(long, env = "LEOPARD_SEED_COUNT", default_value_t = 1000)]
    pub count: i32,
    /// Role: SUPER_ADMIN, REGION_MANAGER, BRANCH_ADMIN or CONSULTANT.
    #[arg(long, env = "LEOPARD_SEED_ROLE", default_value = "CONSULTANT")]
    pub role: String,
    /// Name of a branch every user joins.
    #[arg(long, env = "LEOPARD_SEED_BRANCH")]
    pub branch: Option<String>,
    /// Username prefix.
    #[arg(long, env = "LEOPARD_SEED_PREFIX", default_value = "user")]
    pub prefix: String,
    /// The shared password (checked against the password policy).
    #[arg(
        long,
        env = "LEOPARD_SEED_PASSWORD",
        default_value = "Leopard-Demo-2026",
        hide_env_values = true
    )]
    pub password: String,
}

/// `user` subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user in a tenant.
    Create(UserCreateArgs),
}

/// Options of `user create`.
#[derive(Debug, Clone, Args)]
pub struct UserCreateArgs {
    /// The tenant's slug.
    #[arg(long, env = "LEOPARD_USER_TENANT")]
    pub tenant: String,
    /// Login name.
    #[arg(long, env = "LEOPARD_USER_USERNAME")]
    pub username: String,
    /// E-mail address.
    #[arg(long, env = "LEOPARD_USER_EMAIL", default_value = "")]
    pub email: String,
    /// Password (checked against the password policy).
    #[arg(long, env = "LEOPARD_USER_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// Role: SUPER_ADMIN, REGION_MANAGER, BRANCH_ADMIN or CONSULTANT.
    #[arg(long, env = "LEOPARD_USER_ROLE")]
    pub role: String,
    /// Branch names to assign (repeatable).
    #[arg(long = "branch", env = "LEOPARD_USER_BRANCHES", value_delimiter = ',')]
    pub branches: Vec<String>,
    /// Region names to assign (repeatable).
    #[arg(long = "region", env = "LEOPARD_USER_REGIONS", value_delimiter = ',')]
    pub regions: Vec<String>,
    /// Given name.
    #[arg(long, env = "LEOPARD_USER_FIRST_NAME", default_value = "")]
    pub first_name: String,
    /// Family name.
    #[arg(long, env = "LEOPARD_USER_LAST_NAME", default_value = "")]
    pub last_name: String,
}

/// Options of `serve` and `demo`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LEOPARD_BIND", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,
    /// Maximum database connections of each of the two pools: tenant transactions, and the
    /// rest (registry, listeners, event bookkeeping, the platform API).
    #[arg(long, env = "LEOPARD_POOL_SIZE", default_value_t = 16)]
    pub pool_size: u32,
    /// Seconds between full registry reloads (changes also arrive by LISTEN/NOTIFY).
    #[arg(long, env = "LEOPARD_REGISTRY_RELOAD_SECS", default_value_t = 30)]
    pub registry_reload_secs: u64,
    /// Concurrent event-bus workers.
    #[arg(long, env = "LEOPARD_EVENT_WORKERS", default_value_t = 4)]
    pub event_workers: usize,
    /// Event-bus poll interval in milliseconds, when no commit wakes the workers.
    #[arg(long, env = "LEOPARD_EVENT_POLL_MS", default_value_t = 500)]
    pub event_poll_ms: u64,
    /// Attempts before an event is marked failed.
    #[arg(long, env = "LEOPARD_EVENT_MAX_ATTEMPTS", default_value_t = 25)]
    pub event_max_attempts: u32,
    /// Seconds a worker's claim on an event lasts: an event claimed by a process that dies is
    /// taken by another instance after this long.
    #[arg(long, env = "LEOPARD_EVENT_LEASE_SECS", default_value_t = 30)]
    pub event_lease_secs: u64,
    /// Origins allowed to call the API from a browser (CORS), e.g. `https://crm.example.com`;
    /// repeatable, or a comma-separated list. `*` allows any origin. Default: any origin in dev
    /// mode, none in production mode.
    #[arg(
        long = "cors-origin",
        env = "LEOPARD_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// Seconds between heartbeat frames on notification streams (keep proxy read timeouts
    /// above this).
    #[arg(long, env = "LEOPARD_SSE_HEARTBEAT_SECS", default_value_t = 30)]
    pub sse_heartbeat_secs: u64,
    /// Frames a notification stream may have waiting before it is closed as too slow (the
    /// client reconnects and resumes with Last-Event-ID).
    #[arg(long, env = "LEOPARD_SSE_BUFFER", default_value_t = 256)]
    pub sse_buffer: usize,
    /// Seconds without a request after which a web-interface session ends.
    #[arg(long, env = "LEOPARD_WEB_IDLE_TIMEOUT_SECS", default_value_t = 1800)]
    pub web_idle_timeout_secs: u64,
    /// Load every request's principal from the database instead of the principal cache (the
    /// cache is invalidated by database notices; see docs/performance.md).
    #[arg(long, env = "LEOPARD_NO_PRINCIPAL_CACHE")]
    pub no_principal_cache: bool,
    /// Count every list page's total in the database instead of the list-count cache (the
    /// cache is invalidated by database notices; see docs/performance.md).
    #[arg(long, env = "LEOPARD_NO_COUNT_CACHE")]
    pub no_count_cache: bool,
    /// Token and login settings.
    #[command(flatten)]
    pub auth: AuthArgs,
    /// Scheduler settings.
    #[command(flatten)]
    pub scheduler: SchedulerArgs,
    /// Connection and request limits (slow and oversized clients, shutdown).
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Limits that protect the server from slow, silent and oversized clients, and bound its
/// shutdown (`serve`, `demo`).
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// The largest request body a JSON or form request may carry, in bytes (a larger one is a
    /// 413 `request_too_large`). Profile-picture uploads have their own limit (5 MiB).
    #[arg(long, env = "LEOPARD_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Seconds a connection may take to send a request's headers, and to send its first byte
    /// (a connection that stays silent longer is closed).
    #[arg(long, env = "LEOPARD_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Seconds a client may take to send a whole request body (then 408 `request_timeout`).
    #[arg(long, env = "LEOPARD_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub body_timeout_secs: u64,
    /// Seconds in-flight requests get to finish after SIGTERM/Ctrl-C before their connections
    /// are dropped.
    #[arg(long, env = "LEOPARD_SHUTDOWN_TIMEOUT_SECS", default_value_t = 20)]
    pub shutdown_timeout_secs: u64,
}

impl LimitArgs {
    /// The body limits the application applies.
    pub fn body_limits(&self) -> leopard_http::BodyLimits {
        leopard_http::BodyLimits {
            max_body_bytes: self.max_body_bytes.max(1),
            body_timeout: Duration::from_secs(self.body_timeout_secs.max(1)),
        }
    }

    /// The listener's settings.
    pub fn listener(&self) -> crate::listener::ListenerConfig {
        crate::listener::ListenerConfig {
            header_timeout: Duration::from_secs(self.header_timeout_secs.max(1)),
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout_secs.max(1)),
        }
    }
}

/// The in-server scheduler's settings (`serve`, `demo`).
#[derive(Debug, Clone, Args)]
pub struct SchedulerArgs {
    /// Do not run the scheduler in this process (another process, or nobody, produces reminder
    /// and task-due notices).
    #[arg(long, env = "LEOPARD_NO_SCHEDULER")]
    pub no_scheduler: bool,
    /// Seconds between scheduler ticks (the leader's; followers retry the lock as often).
    #[arg(long, env = "LEOPARD_SCHEDULER_INTERVAL_SECS", default_value_t = 60)]
    pub scheduler_interval_secs: u64,
    /// A task counts as due soon when its due date is at most this many hours ahead.
    #[arg(long, env = "LEOPARD_TASK_DUE_SOON_HOURS", default_value_t = 24)]
    pub task_due_soon_hours: u32,
    /// Tenants the scheduler processes at once.
    #[arg(long, env = "LEOPARD_SCHEDULER_CONCURRENCY", default_value_t = 4)]
    pub scheduler_concurrency: usize,
}

impl SchedulerArgs {
    /// The scheduler configuration these flags describe.
    pub fn config(&self) -> crate::scheduler::SchedulerConfig {
        crate::scheduler::SchedulerConfig {
            interval: Duration::from_secs(self.scheduler_interval_secs.max(1)),
            due_soon_window: chrono::TimeDelta::hours(i64::from(self.task_due_soon_hours)),
            concurrency: self.scheduler_concurrency.max(1),
        }
    }
}

impl ServeArgs {
    /// The allowed CORS origins: as configured, else any in dev mode and none in production.
    pub fn cors_origins(&self) -> crate::app::CorsOrigins {
        let listed: Vec<String> = self
            .cors_origins
            .iter()
            .map(|o| o.trim().to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        let any = listed.iter().any(|o| o == "*");
        if any || (listed.is_empty() && self.auth.mode == Mode::Dev) {
            crate::app::CorsOrigins::Any
        } else {
            crate::app::CorsOrigins::List(listed)
        }
    }
}

/// Run mode: `dev` generates a JWT secret in the data directory when none is configured;
/// `production` refuses to start without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Development: a missing JWT secret is generated once and kept in the data directory.
    Dev,
    /// Production: LEOPARD_JWT_SECRET is required.
    Production,
}

/// Token and login settings.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// Run mode.
    #[arg(long, env = "LEOPARD_MODE", value_enum, default_value_t = Mode::Dev)]
    pub mode: Mode,
    /// HS256 signing secret for tokens (at least 32 bytes). Required in production mode.
    #[arg(long, env = "LEOPARD_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "LEOPARD_ACCESS_TOKEN_TTL_SECS", default_value_t = 30 * 60)]
    pub access_token_ttl_secs: u64,
    /// Lifetime of refresh tokens, in seconds.
    #[arg(long, env = "LEOPARD_REFRESH_TOKEN_TTL_SECS", default_value_t = 24 * 60 * 60)]
    pub refresh_token_ttl_secs: u64,
    /// Failed logins allowed per (tenant, username) per window before 429.
    #[arg(long, env = "LEOPARD_LOGIN_ATTEMPTS_PER_USER", default_value_t = 5)]
    pub login_attempts_per_user: u32,
    /// Failed logins allowed per client address per window before 429.
    #[arg(long, env = "LEOPARD_LOGIN_ATTEMPTS_PER_ADDRESS", default_value_t = 50)]
    pub login_attempts_per_address: u32,
    /// Length of the login-throttling window, in seconds.
    #[arg(long, env = "LEOPARD_LOGIN_WINDOW_SECS", default_value_t = 15 * 60)]
    pub login_window_secs: u64,
}

/// Options of `migrate`.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["shared", "schema", "all"])))]
pub struct MigrateArgs {
    /// Apply the shared (public-schema) migrations.
    #[arg(long, env = "LEOPARD_MIGRATE_SHARED")]
    pub shared: bool,
    /// Migrate one tenant schema, e.g. tenant_acme.
    #[arg(long, env = "LEOPARD_MIGRATE_SCHEMA")]
    pub schema: Option<String>,
    /// Migrate every tenant schema that is behind (shared migrations first).
    #[arg(long, env = "LEOPARD_MIGRATE_ALL")]
    pub all: bool,
    /// Tenants migrated at once with --all.
    #[arg(long, env = "LEOPARD_MIGRATE_JOBS", default_value_t = 4)]
    pub jobs: usize,
    /// With --all: keep going past failing tenants and report them.
    #[arg(long, env = "LEOPARD_MIGRATE_SKIP_FAILING")]
    pub skip_failing: bool,
}

/// `tenant` subcommands.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Provision a tenant: schema, migrations and domains `<slug>-<app>.<base>`, `<slug>.<base>`.
    Create(TenantCreateArgs),
    /// List tenants.
    List,
    /// Suspend a tenant (its requests get 403 tenant_inactive).
    Suspend {
        /// The tenant's slug.
        slug: String,
    },
    /// Activate a tenant (status ACTIVE, is_active true).
    Activate {
        /// The tenant's slug.
        slug: String,
    },
    /// Deactivate a tenant, keeping its data.
    Deactivate {
        /// The tenant's slug.
        slug: String,
    },
    /// Drop a tenant's schema and registry rows (irreversible; needs --yes).
    Delete {
        /// The tenant's slug.
        slug: String,
        /// Confirm the irreversible drop.
        #[arg(long, env = "LEOPARD_CONFIRM_DELETE")]
        yes: bool,
    },
    /// Manage a tenant's domains.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Write one archive of a tenant: its schema's rows (one consistent snapshot, safe while
    /// servers run), its media files (`<data-dir>/media/<schema>`) and a manifest of hashes.
    Backup {
        /// The tenant's slug.
        slug: String,
        /// The archive file to write (written as `<FILE>.partial`, then renamed).
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore an archive as a NEW tenant (refused for a damaged or foreign archive, another
    /// migration version, or a slug in use; a refusal leaves nothing behind).
    Restore {
        /// The archive file.
        file: PathBuf,
        /// The new tenant's slug (may be the slug of a deleted tenant).
        #[arg(long)]
        slug: String,
    },
    /// Copy a tenant into a new one (backup and restore in memory), e.g. for staging.
    Clone {
        /// The tenant to copy.
        source: String,
        /// The new tenant's slug.
        target: String,
    },
    /// Compare a tenant with an archive: per table row count and content hash, per media file
    /// size and hash. Exits non-zero when anything differs.
    Verify {
        /// The tenant's slug.
        slug: String,
        /// The archive file.
        file: PathBuf,
    },
}

/// Options of `tenant create`.
#[derive(Debug, Clone, Args)]
pub struct TenantCreateArgs {
    /// Short name: lower-case letters, digits and '-'.
    #[arg(long, env = "LEOPARD_TENANT_SLUG")]
    pub slug: String,
    /// Display name.
    #[arg(long, env = "LEOPARD_TENANT_NAME")]
    pub name: String,
    /// Extra domains (repeatable; comma-separated in the environment).
    #[arg(long = "domain", env = "LEOPARD_TENANT_DOMAINS", value_delimiter = ',')]
    pub domains: Vec<String>,
    /// Initial subscription status: TRIAL, ACTIVE, SUSPENDED or CANCELLED.
    #[arg(long, env = "LEOPARD_TENANT_STATUS", default_value = "TRIAL")]
    pub status: String,
    /// Maximum number of users.
    #[arg(long, env = "LEOPARD_TENANT_MAX_USERS", default_value_t = 50)]
    pub max_users: i32,
    /// Contact e-mail address.
    #[arg(long, env = "LEOPARD_TENANT_CONTACT_EMAIL")]
    pub contact_email: Option<String>,
    /// Contact phone number.
    #[arg(long, env = "LEOPARD_TENANT_CONTACT_PHONE")]
    pub contact_phone: Option<String>,
    /// Username of the first Super Admin to create with the tenant.
    #[arg(
        long,
        env = "LEOPARD_TENANT_ADMIN_USERNAME",
        requires = "admin_password"
    )]
    pub admin_username: Option<String>,
    /// E-mail address of the first Super Admin.
    #[arg(long, env = "LEOPARD_TENANT_ADMIN_EMAIL", requires = "admin_username")]
    pub admin_email: Option<String>,
    /// Password of the first Super Admin (checked against the password policy before anything
    /// is created).
    #[arg(
        long,
        env = "LEOPARD_TENANT_ADMIN_PASSWORD",
        hide_env_values = true,
        requires = "admin_username"
    )]
    pub admin_password: Option<String>,
}

/// `tenant domain` subcommands.
#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    /// Add a domain to a tenant.
    Add {
        /// The tenant's slug.
        slug: String,
        /// The host name.
        domain: String,
        /// Make it the tenant's primary domain.
        #[arg(long, env = "LEOPARD_DOMAIN_PRIMARY")]
        primary: bool,
    },
    /// Remove a domain from a tenant.
    Remove {
        /// The tenant's slug.
        slug: String,
        /// The host name.
        domain: String,
    },
}

/// `platform-admin` subcommands.
#[derive(Debug, Subcommand)]
pub enum PlatformAdminCommand {
    /// Create a platform administrator (public schema; belongs to no tenant).
    Create(PlatformAdminCreateArgs),
}

/// Options of `platform-admin create`.
#[derive(Debug, Clone, Args)]
pub struct PlatformAdminCreateArgs {
    /// Login name (3–150 characters: letters, digits and `@ . + - _`).
    #[arg(long, env = "LEOPARD_PLATFORM_ADMIN_USERNAME")]
    pub username: String,
    /// E-mail address.
    #[arg(long, env = "LEOPARD_PLATFORM_ADMIN_EMAIL", default_value = "")]
    pub email: String,
    /// Password (checked against the password policy).
    #[arg(long, env = "LEOPARD_PLATFORM_ADMIN_PASSWORD", hide_env_values = true)]
    pub password: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::CorsOrigins;

    fn serve_args(args: &[&str]) -> ServeArgs {
        let mut argv = vec!["leopard", "serve"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).expect("parses").command {
            Command::Serve(args) => args,
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn cors_allows_any_origin_in_dev_mode_and_none_in_production_unless_configured() {
        assert_eq!(serve_args(&[]).cors_origins(), CorsOrigins::Any);
        assert_eq!(
            serve_args(&["--mode", "production"]).cors_origins(),
            CorsOrigins::List(vec![])
        );
        assert_eq!(
            serve_args(&[
                "--mode",
                "production",
                "--cors-origin",
                "https://a.example",
                "--cors-origin",
                "https://b.example,https://c.example",
            ])
            .cors_origins(),
            CorsOrigins::List(vec![
                "https://a.example".into(),
                "https://b.example".into(),
                "https://c.example".into(),
            ])
        );
        assert_eq!(
            serve_args(&["--mode", "production", "--cors-origin", "*"]).cors_origins(),
            CorsOrigins::Any
        );
    }

    #[test]
    fn stream_settings_default_to_a_30_second_heartbeat_and_256_frames() {
        let args = serve_args(&[]);
        assert_eq!(args.sse_heartbeat_secs, 30);
        assert_eq!(args.sse_buffer, 256);
        let args = serve_args(&["--sse-heartbeat-secs", "5", "--sse-buffer", "16"]);
        assert_eq!((args.sse_heartbeat_secs, args.sse_buffer), (5, 16));
    }
}
