//! `leopard tenant backup / restore / clone / verify` against real PostgreSQL: a round trip of a
//! tenant seeded with the demo CRM data and an uploaded profile picture (equal row counts and
//! content hashes per table, equal media files, a restored tenant that serves), clone, restore
//! over a deleted tenant's slug, the refused archives (flipped byte, truncated, foreign, taken
//! slug, other migration version, other schema) each leaving nothing behind, a backup taken
//! while writes happen, and the CLI.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use common::{multipart, TestApp};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use leopard_core::TenantSlug;
use leopard_rbac::Role;
use leopard_server::{migrations, seed};
use leopard_tenancy::backup::Archive;
use leopard_tenancy::{
    Migration, MigrationSet, NewTenant, Provisioner, ResolveConfig, TenancyError,
};
use serde_json::json;
use tower::ServiceExt as _;

const SLUG: &str = "acme";
const PNG: &[u8] = include_bytes!("fixtures/pixel.png");

fn slug(s: &str) -> TenantSlug {
    TenantSlug::parse(s).expect("slug")
}

fn schema(s: &str) -> String {
    slug(s).schema_name().quoted()
}

/// A tenant `acme` with the demo organisation and CRM data, a Super Admin `root`, and a PNG
/// profile picture uploaded through the API for its first client (whose id is returned).
async fn seeded() -> (TestApp, i64) {
    let app = TestApp::new(&[SLUG]).await;
    let mut tx = app.context(SLUG).begin().await.expect("tx");
    seed::seed_demo_org(&mut tx, 50).await.expect("org");
    seed::seed_demo_crm(&mut tx).await.expect("crm");
    tx.commit().await.expect("commit");
    app.user(SLUG, "root", Some(Role::SuperAdmin), &[], &[])
        .await;
    let client = app
        .tenant_count(SLUG, "SELECT min(id) FROM clients WHERE deleted_at IS NULL")
        .await;
    let token = app.token(SLUG, "root").await;
    let (content_type, body) = multipart("file", "me.png", "image/png", PNG);
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/v1/clients/{client}/profile-picture/"))
        .header("host", format!("{SLUG}.localhost"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", content_type)
        .body(Body::from(body))
        .expect("request");
    let response = app
        .router
        .clone()
        .oneshot(request)
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::CREATED);
    (app, client)
}

fn media(app: &TestApp) -> &Path {
    app.media.path()
}

fn provisioner(app: &TestApp) -> &Provisioner {
    &app.tenancy.provisioner
}

/// `count(*)` of `table` in tenant `s`'s schema.
async fn count(app: &TestApp, s: &str, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {}.{table}", schema(s)))
        .fetch_one(app.tenancy.db.pool())
        .await
        .expect("count")
}

/// No registry row, no schema and no media directory of tenant `s`, and no restore staging
/// directory in the media root.
async fn assert_nothing_left(app: &TestApp, s: &str) {
    let pool = app.tenancy.db.pool();
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM public.leopard_tenants WHERE slug = $1")
            .bind(s)
            .fetch_one(pool)
            .await
            .expect("registry");
    assert_eq!(rows, 0, "a registry row of {s} was left behind");
    let schemas: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname = $1")
        .bind(slug(s).schema_name().as_str())
        .fetch_one(pool)
        .await
        .expect("schemas");
    assert_eq!(schemas, 0, "the schema of {s} was left behind");
    assert!(
        !media(app).join(slug(s).schema_name().as_str()).exists(),
        "a media directory of {s} was left behind"
    );
    let hidden: Vec<String> = std::fs::read_dir(media(app))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    assert!(hidden.is_empty(), "staging directories left: {hidden:?}");
}

#[tokio::test]
async fn a_backup_restores_into_a_new_tenant_with_equal_rows_content_hashes_and_media_files() {
    let (app, client) = seeded().await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("acme.leopard");
    let archive = provisioner(&app)
        .backup(&slug(SLUG), Some(media(&app)))
        .await
        .expect("backup");
    archive.write_to(&file).expect("written");
    let archive = Archive::read_from(&file).expect("read back");
    let m = archive.manifest();
    assert_eq!(m.source.slug, SLUG);
    assert_eq!(m.source.schema, "tenant_acme");
    assert_eq!(
        m.migration_version,
        migrations::set().latest_tenant_version()
    );
    assert_eq!(m.media.len(), 1, "the profile picture: {:?}", m.media);
    assert!(
        !m.tables.iter().any(|t| t.name == "leopard_migrations"),
        "the ledger is the provisioner's"
    );
    for table in [
        "clients",
        "notes",
        "profile_pictures",
        "users",
        "tasks",
        "permissions",
    ] {
        let entry = m.tables.iter().find(|t| t.name == table).expect(table);
        let rows = count(&app, SLUG, table).await;
        assert!(rows > 0, "{table} is seeded");
        assert_eq!(entry.rows, u64::try_from(rows).expect("rows"), "{table}");
    }

    let restored = provisioner(&app)
        .restore(&archive, &slug("acme-restored"), Some(media(&app)))
        .await
        .expect("restore");
    assert_eq!(restored.tenant.name, "ACME");
    assert_eq!(restored.tables.len(), m.tables.len());
    assert!(
        restored.tables.iter().all(|c| c.matches()),
        "{:?}",
        restored.tables
    );
    assert_eq!(restored.media_files, 1);

    for s in ["acme-restored", SLUG] {
        let verification = provisioner(&app)
            .verify(&slug(s), &archive, Some(media(&app)))
            .await
            .expect("verify");
        assert!(
            verification.is_match(),
            "{s}: {:?}",
            verification.differences()
        );
        assert_eq!(verification.media.len(), 1);
    }
    for table in [
        "clients",
        "notes",
        "profile_pictures",
        "calendar_events",
        "audit_log",
    ] {
        assert_eq!(
            count(&app, "acme-restored", table).await,
            count(&app, SLUG, table).await,
            "{table}"
        );
    }

    // The restored tenant serves: its user logs in, its picture file is served from its own
    // media directory, and a new client gets the next id (the sequences were reset).
    app.registry.reload().await.expect("reload");
    let token = app.token("acme-restored", "root").await;
    let request = Request::builder()
        .uri(format!("/api/v1/clients/{client}/profile-picture/file/"))
        .header("host", "acme-restored.localhost")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request");
    let response = app
        .router
        .clone()
        .oneshot(request)
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(&bytes[..], PNG);
    let max_id = app
        .tenant_count("acme-restored", "SELECT max(id) FROM clients")
        .await;
    let (status, _, created) = app
        .call(
            Method::POST,
            "acme-restored",
            "/api/v1/clients/",
            Some(&token),
            Some(json!({"first_name": "After", "gender": "FEMALE", "country": "NP"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["id"].as_i64(), Some(max_id + 1));
}

#[tokio::test]
async fn a_clone_copies_every_table_and_media_file_into_an_independent_new_tenant() {
    let (app, _) = seeded().await;
    let restored = provisioner(&app)
        .clone_tenant(&slug(SLUG), &slug("staging"), Some(media(&app)))
        .await
        .expect("clone");
    assert!(restored.tables.iter().all(|c| c.matches()));
    let fresh = provisioner(&app)
        .backup(&slug(SLUG), Some(media(&app)))
        .await
        .expect("backup");
    let verification = provisioner(&app)
        .verify(&slug("staging"), &fresh, Some(media(&app)))
        .await
        .expect("verify");
    assert!(verification.is_match(), "{:?}", verification.differences());

    let before = count(&app, SLUG, "notes").await;
    sqlx::query(&format!("DELETE FROM {}.notes", schema("staging")))
        .execute(app.tenancy.db.pool())
        .await
        .expect("delete in the clone");
    assert_eq!(
        count(&app, SLUG, "notes").await,
        before,
        "the source is untouched"
    );
}

#[tokio::test]
async fn a_deleted_tenants_slug_can_be_restored_into_and_its_leftover_media_directory_is_replaced()
{
    let (app, _) = seeded().await;
    let p = provisioner(&app);
    let archive = p
        .backup(&slug(SLUG), Some(media(&app)))
        .await
        .expect("backup");
    p.restore(&archive, &slug("again"), Some(media(&app)))
        .await
        .expect("first restore");
    // `tenant delete` drops the schema and the registry row; the media directory stays.
    p.purge(&slug("again"), "again").await.expect("delete");
    let leftover = media(&app).join(slug("again").schema_name().as_str());
    std::fs::write(leftover.join("stale.txt"), b"old").expect("stale file");

    p.restore(&archive, &slug("again"), Some(media(&app)))
        .await
        .expect("restore over the deleted tenant");
    assert!(!leftover.join("stale.txt").exists());
    let verification = p
        .verify(&slug("again"), &archive, Some(media(&app)))
        .await
        .expect("verify");
    assert!(verification.is_match(), "{:?}", verification.differences());
}

/// What `leopard tenant restore FILE --slug <to>` does with a file holding `bytes`: read and
/// check it, then restore it as `to` (with the app's media directory).
async fn restore_file(
    app: &TestApp,
    bytes: &[u8],
    to: &str,
) -> Result<leopard_tenancy::backup::Restored, TenancyError> {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("archive.leopard");
    std::fs::write(&file, bytes).expect("file");
    let archive = Archive::read_from(&file)?;
    provisioner(app)
        .restore(&archive, &slug(to), Some(media(app)))
        .await
}

/// The bytes of a fresh archive of the seeded tenant.
async fn archive_bytes(app: &TestApp) -> Vec<u8> {
    provisioner(app)
        .backup(&slug(SLUG), Some(media(app)))
        .await
        .expect("backup")
        .to_bytes()
        .expect("bytes")
}

#[tokio::test]
async fn a_restore_of_an_archive_with_a_flipped_byte_is_refused_and_leaves_no_tenant_behind() {
    let (app, _) = seeded().await;
    let mut bytes = archive_bytes(&app).await;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    let err = restore_file(&app, &bytes, "flipped")
        .await
        .expect_err("refused");
    assert!(matches!(err, TenancyError::ArchiveCorrupt(_)), "{err}");
    assert!(
        err.to_string().starts_with("corrupted tenant archive"),
        "{err}"
    );
    assert_nothing_left(&app, "flipped").await;
}

#[tokio::test]
async fn a_restore_of_a_truncated_archive_is_refused_and_leaves_no_tenant_behind() {
    let (app, _) = seeded().await;
    let bytes = archive_bytes(&app).await;
    for len in [bytes.len() - 1, bytes.len() / 2, 20] {
        let err = restore_file(&app, &bytes[..len], "truncated")
            .await
            .expect_err("refused");
        assert!(
            matches!(err, TenancyError::ArchiveCorrupt(_)),
            "cut at {len}: {err}"
        );
    }
    assert_nothing_left(&app, "truncated").await;
    restore_file(&app, &bytes, "intact")
        .await
        .expect("the same archive, whole, restores");
}

#[tokio::test]
async fn a_restore_of_a_foreign_file_is_refused_and_leaves_no_tenant_behind() {
    let (app, _) = seeded().await;
    for foreign in [
        &b"PK\x03\x04 a zip archive"[..],
        b"",
        b"\x1f\x8b\x08\x00 a plain gzip file",
    ] {
        let err = restore_file(&app, foreign, "foreign")
            .await
            .expect_err("refused");
        assert!(matches!(err, TenancyError::ArchiveForeign(_)), "{err}");
        assert!(
            err.to_string().contains("not a Leopard tenant archive"),
            "{err}"
        );
    }
    assert_nothing_left(&app, "foreign").await;
}

#[tokio::test]
async fn a_restore_to_a_slug_in_use_is_refused_and_the_existing_tenant_is_untouched() {
    let (app, _) = seeded().await;
    let archive = provisioner(&app)
        .backup(&slug(SLUG), Some(media(&app)))
        .await
        .expect("backup");
    let err = provisioner(&app)
        .restore(&archive, &slug(SLUG), Some(media(&app)))
        .await
        .expect_err("refused");
    assert!(
        matches!(err, TenancyError::AlreadyExists { what: "tenant", .. }),
        "{err}"
    );
    let verification = provisioner(&app)
        .verify(&slug(SLUG), &archive, Some(media(&app)))
        .await
        .expect("verify");
    assert!(verification.is_match(), "{:?}", verification.differences());
    let tenants: i64 = sqlx::query_scalar("SELECT count(*) FROM public.leopard_tenants")
        .fetch_one(app.tenancy.db.pool())
        .await
        .expect("tenants");
    assert_eq!(tenants, 1);
    assert_nothing_left(&app, "never-made").await;
}

/// The server's migration set plus one more tenant migration `sql` (version latest + 1).
fn extended(sql: &'static str) -> Arc<MigrationSet> {
    let set = migrations::set();
    let mut tenant = set.tenant().to_vec();
    tenant.push(Migration::new(
        set.latest_tenant_version() + 1,
        "test_extra",
        sql,
    ));
    Arc::new(MigrationSet::new(set.shared().to_vec(), tenant).expect("set"))
}

#[tokio::test]
async fn an_archive_of_another_migration_version_is_refused_and_leaves_no_tenant_behind() {
    let (app, _) = seeded().await;
    let archive = provisioner(&app)
        .backup(&slug(SLUG), Some(media(&app)))
        .await
        .expect("backup");
    let newer_binary = Provisioner::new(
        app.tenancy.db.pool().clone(),
        extended("CREATE TABLE extra (id bigserial PRIMARY KEY)"),
        ResolveConfig::default(),
    );
    let err = newer_binary
        .restore(&archive, &slug("older"), Some(media(&app)))
        .await
        .expect_err("refused");
    assert!(
        matches!(err, TenancyError::ArchiveMigrationVersion { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("older than this binary's"),
        "{err}"
    );
    assert_nothing_left(&app, "older").await;
}

#[tokio::test]
async fn an_archive_whose_tables_differ_is_refused_after_provisioning_and_rolled_back_entirely() {
    let (app, _) = seeded().await;
    let pool = app.tenancy.db.pool().clone();
    let a = Provisioner::new(
        pool.clone(),
        extended("CREATE TABLE extra_a (id bigserial PRIMARY KEY)"),
        ResolveConfig::default(),
    );
    let b = Provisioner::new(
        pool,
        extended("CREATE TABLE extra_b (id bigserial PRIMARY KEY)"),
        ResolveConfig::default(),
    );
    a.create(NewTenant::new(slug("other"), "Other"))
        .await
        .expect("tenant of binary a");
    let archive = a
        .backup(&slug("other"), Some(media(&app)))
        .await
        .expect("backup");
    let err = b
        .restore(&archive, &slug("other-copy"), Some(media(&app)))
        .await
        .expect_err("refused");
    assert!(matches!(err, TenancyError::ArchiveSchema(_)), "{err}");
    assert_nothing_left(&app, "other-copy").await;
}

#[tokio::test]
async fn a_backup_taken_while_clients_and_notes_are_written_is_one_consistent_snapshot() {
    let (app, _) = seeded().await;
    let base_clients = count(&app, SLUG, "clients").await;
    let base_notes = count(&app, SLUG, "notes").await;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let pool = app.tenancy.db.pool().clone();
        let stop = Arc::clone(&stop);
        let schema = schema(SLUG);
        tokio::spawn(async move {
            let mut written = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // A client and its note, always together.
                let mut tx = pool.begin().await.expect("tx");
                let id: i64 = sqlx::query_scalar(&format!(
                    "INSERT INTO {schema}.clients (first_name, country) VALUES ('Writer', 'NP')
                     RETURNING id"
                ))
                .fetch_one(&mut *tx)
                .await
                .expect("client");
                sqlx::query(&format!(
                    "INSERT INTO {schema}.notes (client_id, content) VALUES ($1, 'during backup')"
                ))
                .bind(id)
                .execute(&mut *tx)
                .await
                .expect("note");
                tx.commit().await.expect("commit");
                written += 1;
            }
            written
        })
    };
    let mut archives = Vec::new();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        archives.push(
            provisioner(&app)
                .backup(&slug(SLUG), Some(media(&app)))
                .await
                .expect("backup"),
        );
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.expect("writer");
    assert!(written > 0, "the writer wrote while the backups ran");
    let rows = |archive: &Archive, table: &str| {
        let rows = archive
            .manifest()
            .tables
            .iter()
            .find(|t| t.name == table)
            .expect(table)
            .rows;
        i64::try_from(rows).expect("rows")
    };
    for archive in &archives {
        assert_eq!(
            rows(archive, "clients") - base_clients,
            rows(archive, "notes") - base_notes,
            "every archived writer client has its note"
        );
    }
    let last = archives.last().expect("three archives");
    assert!(
        rows(&archives[0], "clients") < rows(last, "clients"),
        "the writes went on between the backups"
    );
    provisioner(&app)
        .restore(last, &slug("snapshot"), Some(media(&app)))
        .await
        .expect("restore");
    let verification = provisioner(&app)
        .verify(&slug("snapshot"), last, Some(media(&app)))
        .await
        .expect("verify");
    assert!(verification.is_match(), "{:?}", verification.differences());
    assert_eq!(
        count(&app, "snapshot", "clients").await,
        rows(last, "clients")
    );
}

/// Runs `leopard` with `data_dir` against the test database; (success, stdout + stderr).
fn leopard(app: &TestApp, data_dir: &Path, args: &[&str]) -> (bool, String) {
    let dir = data_dir.to_str().expect("a UTF-8 path");
    let args: Vec<&str> = args.iter().copied().chain(["--data-dir", dir]).collect();
    common::processes::cli(app.tenancy.db.url(), &args)
}

#[tokio::test]
async fn the_cli_backs_up_restores_verifies_and_refuses_a_damaged_archive_with_a_non_zero_exit() {
    let (app, _) = seeded().await;
    let data = tempfile::tempdir().expect("data dir");
    let tenant_media = data.path().join("media").join("tenant_acme").join("docs");
    std::fs::create_dir_all(&tenant_media).expect("media dir");
    std::fs::write(tenant_media.join("contract.pdf"), b"%PDF-1.4 contract").expect("file");
    let file = data.path().join("acme.leopard");
    let file_arg = file.to_str().expect("utf-8 path");

    let (ok, out) = leopard(
        &app,
        data.path(),
        &["tenant", "backup", SLUG, "--out", file_arg],
    );
    assert!(ok, "{out}");
    assert!(out.contains("1 media file(s)"), "{out}");

    let (ok, out) = leopard(
        &app,
        data.path(),
        &["tenant", "restore", file_arg, "--slug", "acme-cli"],
    );
    assert!(ok, "{out}");
    assert!(out.contains("verified:"), "{out}");
    assert_eq!(
        std::fs::read(data.path().join("media/tenant_acme_cli/docs/contract.pdf")).expect("copied"),
        b"%PDF-1.4 contract"
    );
    let (ok, out) = leopard(
        &app,
        data.path(),
        &["tenant", "verify", "acme-cli", file_arg],
    );
    assert!(ok, "{out}");
    assert!(out.contains("matches"), "{out}");

    let (ok, out) = leopard(
        &app,
        data.path(),
        &["tenant", "clone", SLUG, "acme-staging"],
    );
    assert!(ok, "{out}");

    sqlx::query(&format!("DELETE FROM {}.notes", schema("acme-cli")))
        .execute(app.tenancy.db.pool())
        .await
        .expect("change the restored tenant");
    let (ok, out) = leopard(
        &app,
        data.path(),
        &["tenant", "verify", "acme-cli", file_arg],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("DIFFERS table notes"), "{out}");

    let mut bytes = std::fs::read(&file).expect("archive");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    let damaged = data.path().join("damaged.leopard");
    std::fs::write(&damaged, bytes).expect("damaged copy");
    let (ok, out) = leopard(
        &app,
        data.path(),
        &[
            "tenant",
            "restore",
            damaged.to_str().expect("utf-8"),
            "--slug",
            "acme-bad",
        ],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("corrupted tenant archive"), "{out}");
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM public.leopard_tenants WHERE slug = 'acme-bad'")
            .fetch_one(app.tenancy.db.pool())
            .await
            .expect("registry");
    assert_eq!(left, 0);

    let (ok, out) = leopard(
        &app,
        data.path(),
        &["tenant", "restore", file_arg, "--slug", SLUG],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("already exists"), "{out}");
}

#[tokio::test]
async fn a_running_server_answers_throughout_a_cli_backup_and_serves_the_restored_tenant_without_a_restart(
) {
    use common::processes::{free_port, healthy, serve};

    let (app, _) = seeded().await;
    let data = tempfile::tempdir().expect("data dir");
    let port = free_port();
    let mut server = serve(&app, port, data.path(), 4);
    let client = reqwest::Client::new();
    healthy(&client, port).await;
    let token = common::processes::login_over_http(&client, port, "acme.localhost", "root")
        .await
        .expect("login on acme");

    // Reads through the server while the CLI takes the backup.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let client = client.clone();
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let (mut ok, mut other) = (0u32, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let status = client
                    .get(format!("http://127.0.0.1:{port}/api/v1/clients/"))
                    .header("host", "acme.localhost")
                    .bearer_auth(&token)
                    .send()
                    .await
                    .map(|r| r.status().as_u16());
                match status {
                    Ok(200) => ok += 1,
                    other_status => other.push(format!("{other_status:?}")),
                }
            }
            (ok, other)
        })
    };
    let file = data.path().join("live.leopard");
    let file_arg = file.to_str().expect("utf-8 path").to_owned();
    let cli = |args: Vec<String>| {
        let url = app.tenancy.db.url().to_owned();
        let data_dir = data.path().to_path_buf();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_leopard"))
                .args(&args)
                .arg("--data-dir")
                .arg(&data_dir)
                .env("LEOPARD_DATABASE_URL", url)
                .env("LEOPARD_LOG", "warn")
                .output()
                .await
                .expect("the binary runs")
        }
    };
    let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let backup = cli(args(&["tenant", "backup", SLUG, "--out", &file_arg])).await;
    stop.store(true, Ordering::Relaxed);
    let (ok, other) = reader.await.expect("reader");
    assert!(backup.status.success(), "{backup:?}");
    assert!(
        ok > 0 && other.is_empty(),
        "{ok} reads answered 200; others: {other:?}"
    );

    let restore = cli(args(&[
        "tenant",
        "restore",
        &file_arg,
        "--slug",
        "acme-live",
    ]))
    .await;
    assert!(restore.status.success(), "{restore:?}");
    // The running server learns of the new tenant by LISTEN/NOTIFY, without a restart.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let restored_token = loop {
        if let Some(t) =
            common::processes::login_over_http(&client, port, "acme-live.localhost", "root").await
        {
            break t;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server never served the restored tenant"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let status = client
        .get(format!("http://127.0.0.1:{port}/api/v1/clients/"))
        .header("host", "acme-live.localhost")
        .bearer_auth(&restored_token)
        .send()
        .await
        .expect("clients")
        .status();
    assert_eq!(status, reqwest::StatusCode::OK);

    let term = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(term.success());
    assert!(server.wait().expect("the server stops").success());
}
