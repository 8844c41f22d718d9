//! The CLI commands: `serve`, `demo`, `migrate`, `tenant …` (with `backup`, `restore`, `clone`
//! and `verify`; docs/operations.md), `user …`, `platform-admin …`, `seed …`, `events …`,
//! `scheduler …`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use indicatif::{ProgressBar, ProgressStyle};
use leopard_core::{HostName, SchemaName, TenantSlug};
use leopard_tenancy::backup::{Archive, Restored};
use leopard_tenancy::migrate::{MigrateAllOptions, MigrateReport};
use leopard_tenancy::provision::Provisioner;
use leopard_tenancy::{Migrator, NewTenant, SubscriptionStatus, TenantRegistry};

use leopard_events::{control, EventBus, WorkerConfig};

use crate::config::{
    AuthArgs, Cli, Command, DomainCommand, EventsCommand, GlobalArgs, MigrateArgs, Mode,
    SchedulerCommand, SchedulerRunOnceArgs, SeedCommand, SeedCrmArgs, SeedUsersArgs, ServeArgs,
    TenantCommand, TenantCreateArgs, UserCommand, UserCreateArgs,
};
use crate::db::Database;
use crate::identity::{self, NewUser};
use crate::scheduler::{Scheduler, SchedulerConfig};
use crate::{app, migrations, seed};

/// The tenants `leopard demo` creates when missing: (slug, name).
pub const DEMO_TENANTS: &[(&str, &str)] =
    &[("acme", "Acme Corp"), ("globex", "Globex Corporation")];

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(&cli.global, &args, false).await,
        Command::Demo(args) => serve(&cli.global, &args, true).await,
        Command::Migrate(args) => migrate(&cli.global, &args).await,
        Command::Tenant(cmd) => tenant(&cli.global, cmd).await,
        Command::User(UserCommand::Create(args)) => user_create(&cli.global, &args).await,
        Command::PlatformAdmin(cmd) => platform_admin(&cli.global, cmd).await,
        Command::Seed(SeedCommand::Users(args)) => seed_users(&cli.global, &args).await,
        Command::Seed(SeedCommand::Crm(args)) => seed_crm(&cli.global, &args).await,
        Command::Events(cmd) => events(&cli.global, cmd).await,
        Command::Scheduler(SchedulerCommand::RunOnce(args)) => {
            scheduler_run_once(&cli.global, &args).await
        }
    }
}

async fn serve(global: &GlobalArgs, args: &ServeArgs, demo: bool) -> anyhow::Result<()> {
    let db = Database::open(global, args.pool_size.max(4)).await?;
    let result = serve_on(global, args, demo, &db).await;
    db.close().await?;
    result
}

async fn serve_on(
    global: &GlobalArgs,
    args: &ServeArgs,
    demo: bool,
    db: &Database,
) -> anyhow::Result<()> {
    let set = migrations::set();
    let migrator = Migrator::new(db.pool.clone(), Arc::clone(&set));
    migrator.migrate_shared().await?;
    if demo {
        let provisioner =
            Provisioner::new(db.pool.clone(), Arc::clone(&set), global.resolve_config());
        let existing: Vec<String> = provisioner
            .list()
            .await?
            .into_iter()
            .map(|t| t.slug.to_string())
            .collect();
        for (slug, name) in DEMO_TENANTS {
            if !existing.iter().any(|s| s == slug) {
                let provisioned = provisioner
                    .create(NewTenant::new(TenantSlug::parse(slug)?, *name))
                    .await?;
                tracing::info!(
                    slug,
                    ms = provisioned.duration.as_millis() as u64,
                    "created demo tenant"
                );
            }
        }
        let report = migrator.migrate_all(MigrateAllOptions::default()).await?;
        if !report.is_success() {
            bail!("demo tenants failed to migrate: {:?}", report.failed);
        }
        if seed::seed_demo_platform_admin(&mut *db.pool.acquire().await?).await? {
            tracing::info!(
                username = seed::DEMO_PLATFORM_ADMIN,
                "created the demo platform admin"
            );
        }
        let registry = TenantRegistry::load(db.pool.clone(), global.resolve_config()).await?;
        for (slug, _) in DEMO_TENANTS {
            let context = registry.context_for(slug)?;
            let mut tx = context.begin().await?;
            if seed::seed_demo_org(&mut tx, context.tenant().max_users).await? {
                seed::seed_demo_crm(&mut tx).await?;
                tracing::info!(slug, "seeded demo organisation, users and CRM data");
            }
            tx.commit().await?;
        }
    } else if migrator.pending_anywhere().await? {
        tracing::warn!("some tenant schemas have pending migrations: run `leopard migrate --all`");
    }
    // Duplicate handler names refuse to start.
    let handlers = crate::handlers::registry()?;
    let registry = TenantRegistry::load(db.pool.clone(), global.resolve_config()).await?;
    let _refresh = registry
        .start_refresh(Duration::from_secs(args.registry_reload_secs.max(1)))
        .await?;
    let bus = Arc::new(EventBus::new(
        db.pool.clone(),
        Arc::clone(&registry),
        handlers,
        worker_config(args),
    ));
    let waker = bus.waker();
    let running = Arc::clone(&bus).start().await?;
    tracing::info!(
        handlers = bus.handlers().len(),
        workers = args.event_workers.max(1),
        "event bus started"
    );
    let scheduler = if args.scheduler.no_scheduler {
        tracing::info!("scheduler disabled (--no-scheduler)");
        None
    } else {
        let config = args.scheduler.config();
        tracing::info!(
            interval_secs = config.interval.as_secs(),
            due_soon_hours = args.scheduler.task_due_soon_hours,
            "scheduler started (it runs the jobs while it holds the leader lock)"
        );
        Some(
            Arc::new(Scheduler::new(
                db.pool.clone(),
                Arc::clone(&registry),
                config,
            ))
            .start(),
        )
    };
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    let addr = listener.local_addr()?;
    if demo {
        print_demo_banner(global, addr.port(), &registry, db);
    }
    tracing::info!(%addr, tenants = registry.tenant_count(), "serving");
    let secret = load_secret(global, &args.auth)?;
    let provisioner = Arc::new(Provisioner::new(
        db.pool.clone(),
        Arc::clone(&set),
        global.resolve_config(),
    ));
    let mut config =
        app::AppConfig::new(db.pool.clone(), Arc::clone(&registry), provisioner, secret);
    config.access_ttl = Duration::from_secs(args.auth.access_token_ttl_secs.max(1));
    config.refresh_ttl = Duration::from_secs(args.auth.refresh_token_ttl_secs.max(1));
    config.login_attempts_per_user = args.auth.login_attempts_per_user;
    config.login_attempts_per_address = args.auth.login_attempts_per_address;
    config.login_window = Duration::from_secs(args.auth.login_window_secs.max(1));
    config.waker = waker;
    config.media_dir = global.data_dir.join("media");
    config.cors_origins = args.cors_origins();
    config.body_limits = args.limits.body_limits();
    config.web_idle_timeout = Duration::from_secs(args.web_idle_timeout_secs.max(1));
    config.secure_cookies = args.auth.mode == Mode::Production;
    let realtime = Arc::new(crate::realtime::Realtime::new(
        args.sse_buffer,
        Duration::from_secs(args.sse_heartbeat_secs.max(1)),
    ));
    config.realtime = Arc::clone(&realtime);
    // Notifications written by any process reach this process's streams; on the same
    // connection, principal changes keep the principal cache correct (src/principals.rs).
    let principal_cache = if args.no_principal_cache {
        tracing::info!("principal cache disabled (--no-principal-cache)");
        None
    } else {
        Some(Arc::clone(&config.principals))
    };
    let count_cache = if args.no_count_cache {
        tracing::info!("list-count cache disabled (--no-count-cache)");
        None
    } else {
        Some(Arc::clone(&config.counts))
    };
    let notices = crate::realtime::Listener::start_with_caches(
        &db.pool,
        Arc::clone(&registry),
        Arc::clone(&realtime),
        crate::principals::Notices::new(principal_cache, count_cache),
    )
    .await
    .context("listening for notifications")?;
    let router = app::router(config)?;
    let closing = Arc::clone(&realtime);
    crate::listener::serve(listener, router, args.limits.listener(), async move {
        shutdown_signal().await;
        // Open notification streams end (with a `retry:` hint) so the graceful shutdown can
        // complete; clients reconnect (to another instance) and resume with Last-Event-ID.
        closing.close_all();
    })
    .await;
    notices.stop();
    // A tick in progress and in-flight batches finish before the pool closes.
    if let Some(scheduler) = scheduler {
        scheduler.shutdown().await;
    }
    running.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// The event workers' settings from `serve`'s flags.
fn worker_config(args: &ServeArgs) -> WorkerConfig {
    WorkerConfig {
        workers: args.event_workers.max(1),
        poll_interval: Duration::from_millis(args.event_poll_ms.max(10)),
        max_attempts: args.event_max_attempts.max(1),
        lease: Duration::from_secs(args.event_lease_secs.max(1)),
        ..WorkerConfig::default()
    }
}

/// The token secret: configured, or (dev mode only) generated once into
/// `<data-dir>/jwt-secret` with owner-only permissions and reused on later starts.
pub fn load_secret(global: &GlobalArgs, auth: &AuthArgs) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = auth.jwt_secret.as_deref().filter(|s| !s.is_empty()) {
        if secret.len() < leopard_http::jwt::MIN_SECRET_LEN {
            bail!(
                "LEOPARD_JWT_SECRET must be at least {} bytes long",
                leopard_http::jwt::MIN_SECRET_LEN
            );
        }
        return Ok(secret.as_bytes().to_vec());
    }
    if auth.mode == Mode::Production {
        bail!("refusing to start in production mode without a JWT secret: set LEOPARD_JWT_SECRET (at least 32 bytes)");
    }
    let path = global.data_dir.join("jwt-secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if existing.len() >= leopard_http::jwt::MIN_SECRET_LEN {
            return Ok(existing.as_bytes().to_vec());
        }
    }
    std::fs::create_dir_all(&global.data_dir)
        .with_context(|| format!("creating {}", global.data_dir.display()))?;
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        file.write_all(secret.as_bytes())?;
    }
    tracing::info!(path = %path.display(), "generated a development JWT secret");
    Ok(secret.into_bytes())
}

async fn scheduler_run_once(
    global: &GlobalArgs,
    args: &SchedulerRunOnceArgs,
) -> anyhow::Result<()> {
    let jobs = args.scheduler_concurrency.max(1);
    let db = Database::open(global, u32::try_from(jobs + 1).unwrap_or(u32::MAX)).await?;
    let result = async {
        let registry = TenantRegistry::load(db.pool.clone(), global.resolve_config()).await?;
        let config = SchedulerConfig {
            due_soon_window: chrono::TimeDelta::hours(i64::from(args.task_due_soon_hours)),
            concurrency: jobs,
            ..SchedulerConfig::default()
        };
        let scheduler = Scheduler::new(db.pool.clone(), registry, config);
        let report = scheduler.run_once(args.tenant.as_deref()).await?;
        println!(
            "{:<20} {:>9} {:>8} {:>7} {:>13}",
            "TENANT", "REMINDERS", "DUE_SOON", "OVERDUE", "NOTIFICATIONS"
        );
        let rows = report
            .tenants
            .iter()
            .map(|(slug, c)| (slug.as_str(), *c))
            .chain([("TOTAL", report.total)]);
        for (slug, c) in rows {
            println!(
                "{slug:<20} {:>9} {:>8} {:>7} {:>13}",
                c.reminders_due, c.tasks_due_soon, c.tasks_overdue, c.notifications
            );
        }
        for (slug, error) in &report.failed {
            println!("FAILED {slug}: {error}");
        }
        if !report.failed.is_empty() {
            bail!(
                "the scheduled jobs failed in {} tenant(s)",
                report.failed.len()
            );
        }
        anyhow::Ok(())
    }
    .await;
    db.close().await?;
    result
}

fn print_demo_banner(global: &GlobalArgs, port: u16, registry: &TenantRegistry, db: &Database) {
    let base = &global.base_domain;
    if let Some(summary) = db.embedded_summary() {
        println!("\n{summary}");
    }
    println!("\nLeopard demo is running. Try:");
    println!("  curl http://{base}:{port}/health/");
    for tenant in registry.tenants() {
        let slug = &tenant.slug;
        println!("  curl http://{slug}.{base}:{port}/api/public/tenant-info/");
        println!(
            "  curl http://{slug}-{}.{base}:{port}/api/public/tenant-info/",
            global.app_subdomain
        );
    }
    println!(
        "Demo users in every tenant (password {}):",
        seed::DEMO_PASSWORD
    );
    for (username, role, _, _) in seed::DEMO_USERS {
        println!("  {username:<16} {}", role.group_name());
    }
    println!(
        "Web interface: http://acme.{base}:{port}/ (each tenant's host); platform admin \
         `{}` at http://{base}:{port}/",
        seed::DEMO_PLATFORM_ADMIN
    );
    println!(
        "Log in:\n  curl -X POST http://acme.{base}:{port}/api/token/ -H 'content-type: application/json' \\\n       -d '{{\"username\": \"admin\", \"password\": \"{}\"}}'",
        seed::DEMO_PASSWORD
    );
    println!("Stop with Ctrl-C.\n");
}

/// Resolves when SIGINT or SIGTERM arrives.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            futures::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}

async fn migrate(global: &GlobalArgs, args: &MigrateArgs) -> anyhow::Result<()> {
    let jobs = args.jobs.max(1);
    let db = Database::open(global, u32::try_from(jobs + 2).unwrap_or(u32::MAX)).await?;
    let result = migrate_on(&db, args, jobs).await;
    db.close().await?;
    result
}

async fn migrate_on(db: &Database, args: &MigrateArgs, jobs: usize) -> anyhow::Result<()> {
    let migrator = Migrator::new(db.pool.clone(), migrations::set());
    let applied = migrator.migrate_shared().await?;
    println!("shared: {applied} migration(s) applied");
    if let Some(schema) = &args.schema {
        let schema = SchemaName::parse(schema)?;
        let outcome = migrator.migrate_schema(&schema).await?;
        println!("{}: {outcome:?}", schema.as_str());
        if let leopard_tenancy::migrate::TenantOutcome::Failed { error } = outcome {
            bail!("{} failed: {error}", schema.as_str());
        }
        return Ok(());
    }
    if !args.all {
        return Ok(());
    }
    let bar = ProgressBar::hidden();
    let progress_bar = bar.clone();
    let options = MigrateAllOptions {
        jobs,
        skip_failing: args.skip_failing,
        progress: Some(Arc::new(move |p: &leopard_tenancy::migrate::Progress| {
            if progress_bar.is_hidden() {
                progress_bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                progress_bar.set_length(p.total as u64);
                progress_bar.set_style(
                    ProgressStyle::with_template("{bar:40} {pos}/{len} tenants {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
            }
            progress_bar.set_position(p.done as u64);
            progress_bar.set_message(p.schema.as_str().to_owned());
        })),
    };
    let report = migrator.migrate_all(options).await?;
    bar.finish_and_clear();
    print_report(&report);
    if !report.failed.is_empty() && !args.skip_failing {
        bail!(
            "stopped at a failing tenant; {} tenant(s) not started. Fix it and rerun (completed steps are kept), or pass --skip-failing",
            report.not_started
        );
    }
    Ok(())
}

fn print_report(report: &MigrateReport) {
    println!(
        "tenants: {} total, {} pending, {} migrated, {} already up to date, {} failed, {} not started ({:.2?})",
        report.tenants,
        report.pending,
        report.migrated,
        report.up_to_date,
        report.failed.len(),
        report.not_started,
        report.elapsed
    );
    for (schema, error) in &report.failed {
        println!("  FAILED {}: {error}", schema.as_str());
    }
}

async fn tenant(global: &GlobalArgs, cmd: TenantCommand) -> anyhow::Result<()> {
    let db = Database::open(global, 4).await?;
    let result = tenant_on(global, &db, cmd).await;
    db.close().await?;
    result
}

async fn tenant_on(global: &GlobalArgs, db: &Database, cmd: TenantCommand) -> anyhow::Result<()> {
    let set = migrations::set();
    Migrator::new(db.pool.clone(), Arc::clone(&set))
        .migrate_shared()
        .await?;
    let provisioner = Provisioner::new(db.pool.clone(), set, global.resolve_config());
    match cmd {
        TenantCommand::Create(args) => {
            let admin = first_admin(&args)?;
            let provisioned = provisioner.create(new_tenant(&args)?).await?;
            let t = &provisioned.tenant;
            println!(
                "created tenant {} ({}) in schema {} in {} ms; domains: {}",
                t.slug,
                t.name,
                t.schema_name.as_str(),
                provisioned.duration.as_millis(),
                t.domains.join(", ")
            );
            if let Some(admin) = admin {
                let registry =
                    TenantRegistry::load(db.pool.clone(), global.resolve_config()).await?;
                let context = registry.context_for(t.slug.as_str())?;
                let mut tx = context.begin().await?;
                identity::create_user(&mut tx, &admin, t.max_users).await?;
                tx.commit().await?;
                println!("created Super Admin {} in {}", admin.username, t.slug);
            }
        }
        TenantCommand::List => {
            println!(
                "{:<20} {:<28} {:<10} {:<7} DOMAINS",
                "SLUG", "NAME", "STATUS", "ACTIVE"
            );
            for t in provisioner.list().await? {
                println!(
                    "{:<20} {:<28} {:<10} {:<7} {}",
                    t.slug.as_str(),
                    t.name,
                    t.subscription_status.as_str(),
                    t.is_active,
                    t.domains.join(", ")
                );
            }
        }
        TenantCommand::Suspend { slug } => {
            let t = provisioner
                .set_status(&TenantSlug::parse(&slug)?, SubscriptionStatus::Suspended)
                .await?;
            println!("suspended {}", t.slug);
        }
        TenantCommand::Activate { slug } => {
            let t = provisioner
                .set_status(&TenantSlug::parse(&slug)?, SubscriptionStatus::Active)
                .await?;
            println!("activated {}", t.slug);
        }
        TenantCommand::Deactivate { slug } => {
            let t = provisioner.deactivate(&TenantSlug::parse(&slug)?).await?;
            println!("deactivated {} (data kept)", t.slug);
        }
        TenantCommand::Delete { slug, yes } => {
            let slug = TenantSlug::parse(&slug)?;
            if !yes {
                bail!(
                    "`tenant delete` drops schema {} and all its data; rerun with --yes to confirm, or use `tenant deactivate {slug}` to keep the data",
                    slug.schema_name().as_str()
                );
            }
            provisioner.purge(&slug, slug.as_str()).await?;
            println!("deleted tenant {slug} and dropped its schema");
        }
        TenantCommand::Domain(DomainCommand::Add {
            slug,
            domain,
            primary,
        }) => {
            let domain = HostName::parse(&domain)?;
            provisioner
                .add_domain(&TenantSlug::parse(&slug)?, &domain, primary)
                .await?;
            println!("added {domain} to {slug}");
        }
        TenantCommand::Domain(DomainCommand::Remove { slug, domain }) => {
            let domain = HostName::parse(&domain)?;
            provisioner
                .remove_domain(&TenantSlug::parse(&slug)?, &domain)
                .await?;
            println!("removed {domain} from {slug}");
        }
        TenantCommand::Backup { slug, out } => {
            let slug = TenantSlug::parse(&slug)?;
            let archive = provisioner
                .backup(&slug, Some(&global.data_dir.join("media")))
                .await?;
            let size = archive.write_to(&out)?;
            let m = archive.manifest();
            println!(
                "wrote {} ({size} bytes): tenant {slug} (schema {}, migration version {}), {} table(s), {} row(s), {} media file(s)",
                out.display(),
                m.source.schema,
                m.migration_version,
                m.tables.len(),
                m.tables.iter().map(|t| t.rows).sum::<u64>(),
                m.media.len()
            );
        }
        TenantCommand::Restore { file, slug } => {
            let slug = TenantSlug::parse(&slug)?;
            let archive = Archive::read_from(&file)?;
            let restored = provisioner
                .restore(&archive, &slug, Some(&global.data_dir.join("media")))
                .await?;
            print_restored(&restored, &archive);
        }
        TenantCommand::Clone { source, target } => {
            let source = TenantSlug::parse(&source)?;
            let target = TenantSlug::parse(&target)?;
            let media = global.data_dir.join("media");
            let archive = provisioner.backup(&source, Some(&media)).await?;
            let restored = provisioner.restore(&archive, &target, Some(&media)).await?;
            print_restored(&restored, &archive);
        }
        TenantCommand::Verify { slug, file } => {
            let slug = TenantSlug::parse(&slug)?;
            let archive = Archive::read_from(&file)?;
            let verification = provisioner
                .verify(&slug, &archive, Some(&global.data_dir.join("media")))
                .await?;
            let differences = verification.differences();
            if !differences.is_empty() {
                for line in &differences {
                    println!("DIFFERS {line}");
                }
                bail!(
                    "tenant {slug} differs from {} in {} place(s)",
                    file.display(),
                    differences.len()
                );
            }
            println!(
                "tenant {slug} matches {}: {} table(s) with equal row counts and content hashes, {} media file(s) equal",
                file.display(),
                verification.tables.len(),
                verification.media.len()
            );
        }
    }
    Ok(())
}

/// What `tenant restore` and `tenant clone` print: the new tenant and its verification.
fn print_restored(restored: &Restored, archive: &Archive) {
    let t = &restored.tenant;
    let m = archive.manifest();
    println!(
        "restored tenant {} ({}) in schema {} from a backup of {} taken {} in {} ms; domains: {}",
        t.slug,
        t.name,
        t.schema_name.as_str(),
        m.source.slug,
        m.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        restored.duration.as_millis(),
        t.domains.join(", ")
    );
    println!(
        "verified: {} table(s), {} row(s), each table's row count and content hash equal to the archive's; {} media file(s) written",
        restored.tables.len(),
        m.tables.iter().map(|t| t.rows).sum::<u64>(),
        restored.media_files
    );
}

/// The first Super Admin requested with `tenant create --admin-*`, checked before anything is
/// provisioned so a weak password leaves no half-made tenant.
fn first_admin(args: &TenantCreateArgs) -> anyhow::Result<Option<NewUser>> {
    let (Some(username), Some(password)) = (&args.admin_username, &args.admin_password) else {
        return Ok(None);
    };
    let email = args.admin_email.clone().unwrap_or_default();
    identity::validate_username(username).map_err(|e| anyhow::anyhow!("admin username: {e}"))?;
    if !email.is_empty() {
        identity::validate_email(&email).map_err(|e| anyhow::anyhow!("admin email: {e}"))?;
    }
    if let Err(messages) = leopard_http::password::validate_policy(password, username, &email) {
        bail!("admin password: {}", messages.join(" "));
    }
    Ok(Some(NewUser {
        username: username.clone(),
        email,
        password: password.clone(),
        groups: vec![leopard_rbac::Role::SuperAdmin.group_name().to_owned()],
        is_active: true,
        ..NewUser::default()
    }))
}

async fn user_create(global: &GlobalArgs, args: &UserCreateArgs) -> anyhow::Result<()> {
    let role = leopard_rbac::Role::from_group_name(&args.role.to_uppercase()).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown role {:?}: SUPER_ADMIN, REGION_MANAGER, BRANCH_ADMIN or CONSULTANT",
            args.role
        )
    })?;
    let db = Database::open(global, 2).await?;
    let result = async {
        let registry = TenantRegistry::load(db.pool.clone(), global.resolve_config()).await?;
        let context = registry.context_for(&args.tenant)?;
        let max_users = context.tenant().max_users;
        let mut tx = context.begin().await?;
        let branch_ids = seed::ids_by_name(&mut tx, "branches", &args.branches).await?;
        let region_ids = seed::ids_by_name(&mut tx, "regions", &args.regions).await?;
        let id = identity::create_user(
            &mut tx,
            &NewUser {
                username: args.username.clone(),
                email: args.email.clone(),
                password: args.password.clone(),
                first_name: args.first_name.clone(),
                last_name: args.last_name.clone(),
                groups: vec![role.group_name().to_owned()],
                branch_ids,
                region_ids,
                is_active: true,
            },
            max_users,
        )
        .await?;
        tx.commit().await?;
        println!(
            "created user {} (id {id}, {}) in {}",
            args.username,
            role.group_name(),
            args.tenant
        );
        anyhow::Ok(())
    }
    .await;
    db.close().await?;
    result
}

fn new_tenant(args: &TenantCreateArgs) -> anyhow::Result<NewTenant> {
    let mut new = NewTenant::new(TenantSlug::parse(&args.slug)?, args.name.clone());
    new.status = SubscriptionStatus::parse(&args.status)?;
    new.domains = args
        .domains
        .iter()
        .map(|d| HostName::parse(d))
        .collect::<Result<_, _>>()?;
    new.max_users = args.max_users;
    new.contact_email = args.contact_email.clone();
    new.contact_phone = args.contact_phone.clone();
    Ok(new)
}

async fn platform_admin(
    global: &GlobalArgs,
    cmd: crate::config::PlatformAdminCommand,
) -> anyhow::Result<()> {
    let db = Database::open(global, 2).await?;
    let result = platform_admin_on(&db, cmd).await;
    db.close().await?;
    result
}

async fn platform_admin_on(
    db: &Database,
    cmd: crate::config::PlatformAdminCommand,
) -> anyhow::Result<()> {
    Migrator::new(db.pool.clone(), migrations::set())
        .migrate_shared()
        .await?;
    match cmd {
        crate::config::PlatformAdminCommand::Create(args) => {
            let mut conn = db.pool.acquire().await?;
            let created = crate::api::platform::create_admin(
                &mut conn,
                &args.username,
                &args.email,
                &args.password,
            )
            .await;
            match created {
                Ok(id) => println!("created platform admin {} (id {id})", args.username.trim()),
                Err(leopard_http::ApiError::Validation(fields)) => {
                    let messages: Vec<String> = fields
                        .iter()
                        .map(|(field, msgs)| format!("{field}: {}", msgs.join(" ")))
                        .collect();
                    bail!("cannot create the platform admin: {}", messages.join("; "));
                }
                Err(err) => return Err(err.into()),
            }
        }
    }
    Ok(())
}

async fn seed_users(global: &GlobalArgs, args: &SeedUsersArgs) -> anyhow::Result<()> {
    let role = leopard_rbac::Role::from_group_name(&args.role.to_uppercase()).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown role {:?}: SUPER_ADMIN, REGION_MANAGER, BRANCH_ADMIN or CONSULTANT",
            args.role
        )
    })?;
    let db = Database::open(global, 2).await?;
    let result = async {
        let started = std::time::Instant::now();
        let registry = TenantRegistry::load(db.pool.clone(), global.resolve_config()).await?;
        let context = registry.context_for(&args.tenant)?;
        let max_users = context.tenant().max_users;
        let mut tx = context.begin().await?;
        let branch_id = match &args.branch {
            Some(name) => seed::ids_by_name(&mut tx, "branches", std::slice::from_ref(name))
                .await?
                .first()
                .copied(),
            None => None,
        };
        let spec = seed::SeedUsers {
            count: args.count,
            prefix: args.prefix.trim().to_owned(),
            group: role.group_name().to_owned(),
            branch_id,
            password: args.password.clone(),
        };
        let outcome = seed::seed_users(&mut tx, &spec, max_users).await?;
        tx.commit().await?;
        let last = format!("{}{:04}", spec.prefix, spec.count);
        println!(
            "seeded {} user(s) {}0001..{last} ({}) in {} in {:.2?}; {} already existed; password {}",
            outcome.created,
            spec.prefix,
            spec.group,
            args.tenant,
            started.elapsed(),
            outcome.skipped,
            args.password
        );
        anyhow::Ok(())
    }
    .await;
    db.close().await?;
    result
}

async fn seed_crm(global: &GlobalArgs, args: &SeedCrmArgs) -> anyhow::Result<()> {
    if args.clients < 0 || args.tasks < 0 {
        bail!("--clients and --tasks must not be negative");
    }
    let db = Database::open(global, 2).await?;
    let result = async {
        let started = std::time::Instant::now();
        let registry = TenantRegistry::load(db.pool.clone(), global.resolve_config()).await?;
        let context = registry.context_for(&args.tenant)?;
        let mut tx = context.begin().await?;
        // Nothing is kept unless both succeed: a refusal leaves the tenant as it was.
        let seeded = async {
            let clients = seed::seed_bulk_clients(&mut tx, args.clients).await?;
            let tasks = seed::seed_bulk_tasks(&mut tx, args.tasks).await?;
            Ok::<_, leopard_http::ApiError>((clients, tasks))
        }
        .await;
        let (clients, tasks) =
            seeded.map_err(|e| anyhow::anyhow!("seed crm {}: {e}", args.tenant))?;
        tx.commit().await?;
        println!(
            "seeded {clients} client(s) and {tasks} task(s) in {} in {:.2?}",
            args.tenant,
            started.elapsed()
        );
        anyhow::Ok(())
    }
    .await;
    db.close().await?;
    result
}

async fn events(global: &GlobalArgs, cmd: EventsCommand) -> anyhow::Result<()> {
    if matches!(cmd, EventsCommand::Handlers) {
        print_handlers()?;
        return Ok(());
    }
    let db = Database::open(global, 2).await?;
    let result = events_on(global, &db, cmd).await;
    db.close().await?;
    result
}

fn print_handlers() -> anyhow::Result<()> {
    let handlers = crate::handlers::registry()?.describe();
    println!(
        "{:<32} {:<14} {:<24} EVENT TYPES",
        "NAME", "TRANSACTIONAL", "CRATE"
    );
    for h in &handlers {
        println!(
            "{:<32} {:<14} {:<24} {}",
            h.name,
            if h.transactional { "yes" } else { "no" },
            h.crate_name,
            h.event_types.join(", ")
        );
    }
    println!("{} handler(s)", handlers.len());
    Ok(())
}

/// The registry id of tenant `slug` (`None` for `None`).
async fn tenant_id(provisioner: &Provisioner, slug: Option<&str>) -> anyhow::Result<Option<i64>> {
    match slug {
        Some(slug) => Ok(Some(provisioner.get(&TenantSlug::parse(slug)?).await?.id.0)),
        None => Ok(None),
    }
}

fn days(n: u64) -> Duration {
    Duration::from_secs(n.saturating_mul(24 * 3600))
}

async fn events_on(global: &GlobalArgs, db: &Database, cmd: EventsCommand) -> anyhow::Result<()> {
    let set = migrations::set();
    Migrator::new(db.pool.clone(), Arc::clone(&set))
        .migrate_shared()
        .await?;
    let provisioner = Provisioner::new(db.pool.clone(), set, global.resolve_config());
    let pool = &db.pool;
    match cmd {
        EventsCommand::Status => print_status(pool, &provisioner).await?,
        EventsCommand::Pause { tenant, reason } => {
            let id = tenant_id(&provisioner, tenant.as_deref()).await?;
            control::pause(pool, id, reason.as_deref()).await?;
            match tenant {
                Some(slug) => println!("paused event processing for tenant {slug}"),
                None => println!("paused event processing globally"),
            }
        }
        EventsCommand::Resume { tenant } => {
            let id = tenant_id(&provisioner, tenant.as_deref()).await?;
            let lifted = control::resume(pool, id).await?;
            let what = tenant.map_or_else(|| "globally".to_owned(), |s| format!("for tenant {s}"));
            if lifted {
                println!("resumed event processing {what}");
            } else {
                println!("event processing was not paused {what}");
            }
        }
        EventsCommand::Retry { id, failed, tenant } => {
            if failed {
                let tenant_id = tenant_id(&provisioner, tenant.as_deref()).await?;
                let n = control::retry_failed(pool, tenant_id).await?;
                println!("{n} failed event(s) made pending again");
            } else if let Some(id) = id {
                let uuid = uuid::Uuid::parse_str(id.trim())
                    .with_context(|| format!("invalid event id {id:?}"))?;
                if control::retry(pool, uuid).await? {
                    println!("event {uuid} made pending again");
                } else {
                    println!("event {uuid} has not failed; nothing to retry");
                }
            } else {
                bail!("give an event id or --failed");
            }
        }
        EventsCommand::Prune {
            completed_days,
            failed_days,
        } => {
            let (completed, failed) = control::prune(
                pool,
                control::Retention {
                    completed: days(completed_days),
                    failed: days(failed_days),
                },
            )
            .await?;
            println!(
                "pruned {completed} completed (older than {completed_days} days) and {failed} failed (older than {failed_days} days) event(s)"
            );
        }
        EventsCommand::Handlers => print_handlers()?,
    }
    Ok(())
}

async fn print_status(pool: &sqlx::PgPool, provisioner: &Provisioner) -> anyhow::Result<()> {
    let pauses = control::pauses(pool).await?;
    match pauses.iter().find(|p| p.tenant_id.is_none()) {
        Some(p) => println!(
            "global: PAUSED since {}{}",
            p.paused_at.format("%Y-%m-%d %H:%M:%S UTC"),
            p.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
        None => println!("global: running"),
    }
    let mut rows = control::status(pool).await?;
    // Paused tenants without events are listed too.
    let slugs: std::collections::HashMap<i64, String> = provisioner
        .list()
        .await?
        .into_iter()
        .map(|t| (t.id.0, t.slug.to_string()))
        .collect();
    for p in pauses.iter().filter_map(|p| p.tenant_id) {
        if !rows.iter().any(|r| r.tenant_id == p) {
            rows.push(control::TenantStatus {
                tenant_id: p,
                tenant_slug: slugs.get(&p).cloned().unwrap_or_else(|| format!("#{p}")),
                pending: 0,
                running: 0,
                completed: 0,
                failed: 0,
                oldest_pending: None,
                paused: true,
            });
        }
    }
    println!(
        "{:<20} {:>9} {:>9} {:>10} {:>8} {:>14} PAUSED",
        "TENANT", "PENDING", "RUNNING", "COMPLETED", "FAILED", "OLDEST PENDING"
    );
    for r in &rows {
        println!(
            "{:<20} {:>9} {:>9} {:>10} {:>8} {:>14} {}",
            r.tenant_slug,
            r.pending,
            r.running,
            r.completed,
            r.failed,
            r.oldest_pending
                .map_or_else(|| "-".to_owned(), |d| format!("{:.1}s", d.as_secs_f64())),
            if r.paused { "yes" } else { "no" }
        );
    }
    if rows.is_empty() {
        println!("(no events)");
    }
    Ok(())
}
