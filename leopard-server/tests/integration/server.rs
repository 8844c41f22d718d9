//! The reference server's HTTP surface and CLI, against a real PostgreSQL database.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use leopard_core::TenantSlug;
use leopard_server::{app, migrations};
use leopard_tenancy::testing::{TestDatabase, TestTenancy};
use leopard_tenancy::{NewTenant, Provisioner, ResolveConfig, SubscriptionStatus, TenantRegistry};
use tower::ServiceExt as _;

async fn get(
    app: &axum::Router,
    host: &str,
    path: &str,
) -> (StatusCode, http::HeaderMap, serde_json::Value) {
    let request = Request::get(path)
        .header("host", host)
        .body(Body::empty())
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).expect("JSON"),
    )
}

fn test_router(db: &TestDatabase, registry: Arc<TenantRegistry>) -> axum::Router {
    let provisioner = Arc::new(Provisioner::new(
        db.pool().clone(),
        migrations::set(),
        ResolveConfig::default(),
    ));
    app::router(app::AppConfig::new(
        db.pool().clone(),
        registry,
        provisioner,
        b"test-secret-test-secret-test-secret!".to_vec(),
    ))
    .expect("router")
}

async fn provisioned_db() -> (TestDatabase, Provisioner) {
    let set = Arc::try_unwrap(migrations::set()).expect("a fresh set");
    let tenancy = TestTenancy::new(set, 10).await.expect("database");
    for (slug, name) in [("acme", "Acme Corp"), ("globex", "Globex")] {
        tenancy
            .provisioner
            .create(NewTenant::new(TenantSlug::parse(slug).expect("slug"), name))
            .await
            .expect("tenant");
    }
    (tenancy.db, tenancy.provisioner)
}

#[tokio::test]
async fn health_and_tenant_info_answer_per_host_with_the_original_wire_format() {
    let (db, provisioner) = provisioned_db().await;
    let registry = TenantRegistry::load(db.pool().clone(), ResolveConfig::default())
        .await
        .expect("registry");
    let app = test_router(&db, Arc::clone(&registry));

    let (status, _, body) = get(&app, "localhost:8000", "/health/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        serde_json::json!({"status": "healthy", "service": "leopard"})
    );

    let (status, headers, body) = get(
        &app,
        "acme-immigrate.localhost:8000",
        "/api/public/tenant-info/",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["tenant_name"], "Acme Corp");
    assert!(body["tenant_id"].is_i64());
    assert_eq!(
        headers["cache-control"],
        "no-cache, no-store, must-revalidate"
    );
    let (_, _, body) = get(&app, "globex.localhost", "/api/public/tenant-info/").await;
    assert_eq!(body["tenant_name"], "Globex");

    let (status, _, body) = get(&app, "nobody.localhost", "/api/public/tenant-info/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "tenant_not_found");

    provisioner
        .set_status(
            &TenantSlug::parse("globex").expect("slug"),
            SubscriptionStatus::Suspended,
        )
        .await
        .expect("suspended");
    registry.reload().await.expect("reload");
    let (status, _, body) = get(&app, "globex.localhost", "/api/public/tenant-info/").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "tenant_inactive");
}

#[tokio::test]
async fn health_reports_503_with_retry_after_when_the_database_is_gone() {
    let (db, _) = provisioned_db().await;
    let registry = TenantRegistry::load(db.pool().clone(), ResolveConfig::default())
        .await
        .expect("registry");
    // The same database settings on a port where nothing listens: the database is gone.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let gone = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(1))
        .connect_lazy_with(
            db.pool()
                .connect_options()
                .as_ref()
                .clone()
                .host("127.0.0.1")
                .port(dead_port),
        );
    let provisioner = Arc::new(Provisioner::new(
        gone.clone(),
        migrations::set(),
        ResolveConfig::default(),
    ));
    let app = app::router(app::AppConfig::new(
        gone,
        registry,
        provisioner,
        b"test-secret-test-secret-test-secret!".to_vec(),
    ))
    .expect("router");
    let (status, headers, body) = get(&app, "localhost", "/health/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(body["status"], "unhealthy");
    assert!(
        !body.to_string().contains("closed"),
        "internals are not sent: {body}"
    );
}

/// Runs the `leopard` binary against `db` and returns (success, stdout + stderr).
fn leopard(db: &TestDatabase, args: &[&str]) -> (bool, String) {
    crate::common::processes::cli(db.url(), args)
}

#[tokio::test]
async fn the_cli_creates_lists_suspends_and_deletes_tenants_and_migrates_all() {
    let db = TestDatabase::new().await.expect("database");
    let (ok, out) = leopard(&db, &["migrate", "--shared"]);
    assert!(ok, "{out}");

    let (ok, out) = leopard(
        &db,
        &[
            "tenant",
            "create",
            "--slug",
            "acme",
            "--name",
            "Acme Corp",
            "--domain",
            "crm.acme.example",
            "--status",
            "ACTIVE",
        ],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("acme-immigrate.localhost, acme.localhost, crm.acme.example"),
        "{out}"
    );

    let (ok, out) = leopard(
        &db,
        &[
            "tenant",
            "create",
            "--slug",
            "acme\"; drop schema public; --",
            "--name",
            "x",
        ],
    );
    assert!(!ok, "an injection attempt is refused: {out}");
    assert!(out.contains("invalid tenant slug"), "{out}");
    let (ok, out) = leopard(
        &db,
        &["migrate", "--schema", "acme\"; drop schema public; --"],
    );
    assert!(!ok);
    assert!(out.contains("invalid schema name"), "{out}");

    let (ok, out) = leopard(&db, &["tenant", "suspend", "acme"]);
    assert!(ok, "{out}");
    let (ok, out) = leopard(&db, &["tenant", "list"]);
    assert!(ok, "{out}");
    assert!(out.contains("SUSPENDED"), "{out}");

    let (ok, out) = leopard(
        &db,
        &["tenant", "domain", "add", "acme", "Portal.Acme.Example"],
    );
    assert!(ok, "{out}");
    let (ok, out) = leopard(
        &db,
        &["tenant", "domain", "remove", "acme", "crm.acme.example"],
    );
    assert!(ok, "{out}");
    let (_, out) = leopard(&db, &["tenant", "list"]);
    assert!(
        out.contains("portal.acme.example") && !out.contains("crm.acme.example"),
        "{out}"
    );

    let (ok, out) = leopard(&db, &["migrate", "--all", "--jobs", "2"]);
    assert!(ok, "{out}");
    assert!(out.contains("1 total, 0 pending"), "{out}");

    let (ok, out) = leopard(&db, &["tenant", "delete", "acme"]);
    assert!(!ok, "delete needs --yes: {out}");
    let (ok, out) = leopard(&db, &["tenant", "delete", "acme", "--yes"]);
    assert!(ok, "{out}");
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'tenant_acme')",
    )
    .fetch_one(db.pool())
    .await
    .expect("query");
    assert!(!exists);
    let public_exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public')")
            .fetch_one(db.pool())
            .await
            .expect("query");
    assert!(public_exists);
}

#[tokio::test]
async fn the_cli_creates_a_tenant_with_its_first_super_admin_and_then_users_by_branch_name() {
    let db = TestDatabase::new().await.expect("database");
    let weak = [
        "tenant",
        "create",
        "--slug",
        "weak",
        "--name",
        "Weak",
        "--admin-username",
        "boss",
        "--admin-password",
        "12345678",
    ];
    let (ok, out) = leopard(&db, &weak);
    assert!(!ok, "a weak admin password is refused: {out}");
    assert!(out.contains("admin password"), "{out}");
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'tenant_weak')",
    )
    .fetch_one(db.pool())
    .await
    .expect("query");
    assert!(!exists, "nothing was provisioned");

    let (ok, out) = leopard(
        &db,
        &[
            "tenant",
            "create",
            "--slug",
            "acme",
            "--name",
            "Acme Corp",
            "--admin-username",
            "boss",
            "--admin-email",
            "boss@acme.example",
            "--admin-password",
            "Sturdy-Pass-91",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("created Super Admin boss"), "{out}");
    sqlx::query("INSERT INTO tenant_acme.branches (name) VALUES ('Head Office')")
        .execute(db.pool())
        .await
        .expect("branch");
    let (ok, out) = leopard(
        &db,
        &[
            "user",
            "create",
            "--tenant",
            "acme",
            "--username",
            "cleo",
            "--email",
            "cleo@acme.example",
            "--password",
            "Sturdy-Pass-92",
            "--role",
            "consultant",
            "--branch",
            "head office",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = leopard(
        &db,
        &[
            "user",
            "create",
            "--tenant",
            "acme",
            "--username",
            "ghost",
            "--password",
            "Sturdy-Pass-93",
            "--role",
            "CONSULTANT",
            "--branch",
            "Nowhere",
        ],
    );
    assert!(!ok, "an unknown branch is refused: {out}");

    let registry = TenantRegistry::load(db.pool().clone(), ResolveConfig::default())
        .await
        .expect("registry");
    let app = test_router(&db, registry);
    for (username, password, role) in [
        ("boss", "Sturdy-Pass-91", "SUPER_ADMIN"),
        ("cleo@acme.example", "Sturdy-Pass-92", "CONSULTANT"),
    ] {
        let request = Request::post("/api/token/")
            .header("host", "acme.localhost")
            .header("content-type", "application/json")
            .body(Body::from(
                serde_json::json!({"username": username, "password": password}).to_string(),
            ))
            .expect("request");
        let response = app.clone().oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::OK, "{username}");
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let tokens: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
        let request = Request::get("/api/v1/users/profile/")
            .header("host", "acme.localhost")
            .header(
                "authorization",
                format!("Bearer {}", tokens["access"].as_str().expect("access")),
            )
            .body(Body::empty())
            .expect("request");
        let response = app.clone().oneshot(request).await.expect("infallible");
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let profile: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(profile["primary_group"], role);
        if role == "CONSULTANT" {
            assert_eq!(profile["branches_data"][0]["name"], "Head Office");
        }
    }
}

#[tokio::test]
async fn the_cli_seeds_users_in_bulk_within_max_users_and_they_can_log_in() {
    let db = TestDatabase::new().await.expect("database");
    let (ok, out) = leopard(
        &db,
        &[
            "tenant",
            "create",
            "--slug",
            "acme",
            "--name",
            "Acme Corp",
            "--max-users",
            "20",
        ],
    );
    assert!(ok, "{out}");
    sqlx::query("INSERT INTO tenant_acme.branches (name) VALUES ('Head Office')")
        .execute(db.pool())
        .await
        .expect("branch");
    let count = |sql: &'static str| {
        let pool = db.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .expect("count")
        }
    };

    let (ok, out) = leopard(&db, &["seed", "users", "--tenant", "acme", "--count", "21"]);
    assert!(!ok, "more users than max_users is refused: {out}");
    assert!(
        out.contains("max_users"),
        "the error says what to raise: {out}"
    );
    assert_eq!(count("SELECT count(*) FROM tenant_acme.users").await, 0);

    let seed = [
        "seed",
        "users",
        "--tenant",
        "acme",
        "--count",
        "12",
        "--branch",
        "head office",
        "--prefix",
        "agent",
    ];
    let (ok, out) = leopard(&db, &seed);
    assert!(ok, "{out}");
    assert!(out.contains("seeded 12 user(s)"), "{out}");
    let (ok, out) = leopard(&db, &seed);
    assert!(ok, "seeding again skips the existing usernames: {out}");
    assert!(out.contains("seeded 0 user(s)"), "{out}");
    assert_eq!(
        count("SELECT count(*) FROM tenant_acme.users WHERE username LIKE 'agent%'").await,
        12
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM tenant_acme.user_groups ug
               JOIN tenant_acme.groups g ON g.id = ug.group_id WHERE g.name = 'CONSULTANT'"
        )
        .await,
        12
    );
    assert_eq!(
        count("SELECT count(*) FROM tenant_acme.user_branches").await,
        12
    );

    let registry = TenantRegistry::load(db.pool().clone(), ResolveConfig::default())
        .await
        .expect("registry");
    let app = test_router(&db, registry);
    let request = Request::post("/api/token/")
        .header("host", "acme.localhost")
        .header("content-type", "application/json")
        .body(Body::from(
            serde_json::json!({"username": "agent0007", "password": "Leopard-Demo-2026"})
                .to_string(),
        ))
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let tokens: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
    let request = Request::get("/api/v1/users/profile/")
        .header("host", "acme.localhost")
        .header(
            "authorization",
            format!("Bearer {}", tokens["access"].as_str().expect("access")),
        )
        .body(Body::empty())
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let profile: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(profile["username"], "agent0007");
    assert_eq!(profile["email"], "agent0007@example.com");
    assert_eq!(profile["primary_group"], "CONSULTANT");
    assert_eq!(profile["branches_data"][0]["name"], "Head Office");
}

#[tokio::test]
async fn production_mode_refuses_to_start_without_a_jwt_secret_and_rejects_a_short_one() {
    let db = TestDatabase::new().await.expect("database");
    let data_dir = tempfile::tempdir().expect("temp dir");
    let dir = data_dir.path().to_str().expect("utf-8 path");
    let (ok, out) = leopard(
        &db,
        &[
            "serve",
            "--mode",
            "production",
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
            dir,
        ],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("LEOPARD_JWT_SECRET"), "{out}");
    assert!(
        !data_dir.path().join("jwt-secret").exists(),
        "production never generates a secret"
    );
    let (ok, out) = leopard(
        &db,
        &[
            "serve",
            "--jwt-secret",
            "too-short",
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
            dir,
        ],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("at least 32 bytes"), "{out}");
}

#[tokio::test]
async fn the_cli_seeds_bulk_clients_spread_over_branches_stages_and_branch_members() {
    let db = TestDatabase::new().await.expect("database");
    let (ok, out) = leopard(
        &db,
        &["tenant", "create", "--slug", "acme", "--name", "Acme Corp"],
    );
    assert!(ok, "{out}");
    sqlx::query("INSERT INTO tenant_acme.branches (name) VALUES ('North'), ('South')")
        .execute(db.pool())
        .await
        .expect("branches");
    let (ok, out) = leopard(
        &db,
        &[
            "seed", "users", "--tenant", "acme", "--count", "3", "--branch", "north",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = leopard(
        &db,
        &["seed", "crm", "--tenant", "acme", "--clients", "400"],
    );
    assert!(ok, "{out}");
    assert!(out.contains("seeded 400 client(s)"), "{out}");
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT b.name, c.stage, count(*), count(c.assigned_to_id)
           FROM tenant_acme.clients c JOIN tenant_acme.branches b ON b.id = c.branch_id
          GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(db.pool())
    .await
    .expect("spread");
    assert_eq!(rows.len(), 8, "two branches × four stages: {rows:?}");
    for (branch, stage, count, assigned) in &rows {
        assert_eq!(*count, 50, "{branch}/{stage}");
        let expected = if branch == "North" { 50 } else { 0 };
        assert_eq!(
            *assigned, expected,
            "{branch}/{stage}: assigned to its members"
        );
    }
    let outsiders: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tenant_acme.clients c
          WHERE c.assigned_to_id IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM tenant_acme.user_branches ub
                 WHERE ub.user_id = c.assigned_to_id AND ub.branch_id = c.branch_id)",
    )
    .fetch_one(db.pool())
    .await
    .expect("outsiders");
    assert_eq!(outsiders, 0, "assignees belong to the client's branch");
    let (ok, out) = leopard(&db, &["seed", "crm", "--tenant", "nope", "--clients", "1"]);
    assert!(!ok, "an unknown tenant is an error: {out}");
}

#[tokio::test]
async fn seed_crm_on_a_tenant_without_branches_refuses_naming_the_missing_branch_and_seeds_nothing()
{
    let db = TestDatabase::new().await.expect("database");
    let (ok, out) = leopard(
        &db,
        &["tenant", "create", "--slug", "acme", "--name", "Acme Corp"],
    );
    assert!(ok, "{out}");
    let (ok, out) = leopard(
        &db,
        &[
            "seed",
            "crm",
            "--tenant",
            "acme",
            "--clients",
            "100",
            "--tasks",
            "10",
        ],
    );
    assert!(!ok, "seeding into no branch must fail: {out}");
    assert!(
        out.contains("acme") && out.contains("no branch") && out.contains("create one first"),
        "the error names the tenant, the missing branch and the fix: {out}"
    );
    let clients: i64 = sqlx::query_scalar("SELECT count(*) FROM tenant_acme.clients")
        .fetch_one(db.pool())
        .await
        .expect("count");
    assert_eq!(clients, 0);
    // Tasks alone need clients to link to: refused as well.
    sqlx::query("INSERT INTO tenant_acme.branches (name) VALUES ('North')")
        .execute(db.pool())
        .await
        .expect("branch");
    let (ok, out) = leopard(
        &db,
        &[
            "seed",
            "crm",
            "--tenant",
            "acme",
            "--clients",
            "0",
            "--tasks",
            "10",
        ],
    );
    assert!(!ok, "tasks without clients must fail: {out}");
    assert!(out.contains("no client"), "{out}");
    let (ok, out) = leopard(
        &db,
        &[
            "seed",
            "crm",
            "--tenant",
            "acme",
            "--clients",
            "5",
            "--tasks",
            "3",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("seeded 5 client(s) and 3 task(s)"), "{out}");
}
