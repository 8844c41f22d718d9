//! Provisioning: concurrent creation, all-or-nothing failure, uniqueness, status changes, purge.

mod common;

use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use common::{slug_of, Env, MARKER};
use futures::StreamExt as _;
use leopard::core::HostName;
use leopard::tenancy::migrate::MigrateAllOptions;
use leopard::tenancy::provision::Provisioner;
use leopard::tenancy::{Migration, NewTenant, TenancyError};
use sqlx::PgPool;

async fn schema_exists(pool: &PgPool, schema: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(schema)
        .fetch_one(pool)
        .await
        .expect("catalog query")
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_tenants_provisioned_concurrently_all_get_their_schema_domains_and_status() {
    let env = Env::with_migrations(vec![MARKER], 12).await;
    let created: Vec<_> = futures::stream::iter(0..20)
        .map(|i| {
            let provisioner = env.provisioner.clone();
            async move {
                provisioner
                    .create(NewTenant::new(
                        slug_of(&format!("conc{i}")),
                        format!("Concurrent {i}"),
                    ))
                    .await
            }
        })
        .buffer_unordered(20)
        .collect()
        .await;
    for result in &created {
        let provisioned = result.as_ref().expect("every tenant is provisioned");
        assert_eq!(provisioned.tenant.domains.len(), 2);
        assert!(provisioned.tenant.provision_ms.is_some());
    }
    let pool = env.db.pool();
    for i in 0..20 {
        assert!(schema_exists(pool, &format!("tenant_conc{i}")).await);
    }
    assert_eq!(
        count(pool, "SELECT count(*) FROM public.leopard_tenants").await,
        20
    );
    assert_eq!(
        count(pool, "SELECT count(*) FROM public.leopard_domains").await,
        40
    );
    assert_eq!(
        count(pool, "SELECT count(*) FROM public.leopard_tenant_migrations WHERE state = 'ok' AND version = 1").await,
        20
    );
    assert!(!env.migrator.pending_anywhere().await.expect("query"));
    let registry = env.registry().await;
    assert_eq!(registry.tenant_count(), 20);
    // Each schema holds its own marker.
    let ctx = registry.context_for("conc7").expect("tenant");
    let mut tx = ctx.begin().await.expect("tx");
    let marker: String = sqlx::query_scalar("SELECT slug FROM marker")
        .fetch_one(&mut *tx)
        .await
        .expect("marker");
    assert_eq!(marker, "conc7");
}

#[tokio::test]
async fn a_failing_tenant_migration_leaves_no_row_no_domain_and_no_schema_behind() {
    let broken = Migration::new(
        2,
        "broken",
        "CREATE TABLE ok_so_far (id int); SELECT 1 / 0;",
    );
    let env = Env::with_migrations(vec![MARKER, broken], 4).await;
    let err = env
        .provisioner
        .create(NewTenant::new(slug_of("doomed"), "Doomed"))
        .await
        .expect_err("provisioning must fail");
    assert!(
        matches!(&err, TenancyError::MigrationFailed { version: 2, .. }),
        "{err}"
    );
    let pool = env.db.pool();
    assert!(!schema_exists(pool, "tenant_doomed").await);
    assert_eq!(
        count(pool, "SELECT count(*) FROM public.leopard_tenants").await,
        0
    );
    assert_eq!(
        count(pool, "SELECT count(*) FROM public.leopard_domains").await,
        0
    );
    assert_eq!(
        count(
            pool,
            "SELECT count(*) FROM public.leopard_tenant_migrations"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn duplicate_slugs_and_domains_are_refused_and_change_nothing() {
    let env = Env::new().await;
    env.tenant("acme").await;
    let err = env
        .provisioner
        .create(NewTenant::new(slug_of("acme"), "Acme again"))
        .await
        .expect_err("duplicate slug");
    assert!(
        matches!(err, TenancyError::AlreadyExists { what: "tenant", .. }),
        "{err}"
    );

    let mut clash = NewTenant::new(slug_of("other"), "Other");
    clash.domains = vec![HostName::parse("acme.localhost").expect("host")];
    let err = env
        .provisioner
        .create(clash)
        .await
        .expect_err("duplicate domain");
    assert!(
        matches!(err, TenancyError::AlreadyExists { what: "domain", .. }),
        "{err}"
    );
    let pool = env.db.pool();
    assert!(!schema_exists(pool, "tenant_other").await);
    assert_eq!(
        count(pool, "SELECT count(*) FROM public.leopard_tenants").await,
        1
    );

    let mut bad = NewTenant::new(slug_of("blank"), "   ");
    bad.max_users = 3;
    let err = env.provisioner.create(bad).await.expect_err("blank name");
    assert!(
        matches!(err, TenancyError::InvalidField { field: "name", .. }),
        "{err}"
    );
}

#[tokio::test]
async fn purging_needs_the_slug_as_confirmation_and_then_drops_schema_and_rows() {
    let env = Env::new().await;
    env.tenant("gone").await;
    let slug = slug_of("gone");
    let err = env
        .provisioner
        .purge(&slug, "yes")
        .await
        .expect_err("unconfirmed");
    assert!(matches!(err, TenancyError::NotConfirmed(_)));
    let pool = env.db.pool();
    assert!(schema_exists(pool, "tenant_gone").await);

    env.provisioner.purge(&slug, "gone").await.expect("purged");
    assert!(!schema_exists(pool, "tenant_gone").await);
    assert_eq!(
        count(pool, "SELECT count(*) FROM public.leopard_tenants").await,
        0
    );
    assert_eq!(
        count(pool, "SELECT count(*) FROM public.leopard_domains").await,
        0
    );
    let err = env
        .provisioner
        .purge(&slug, "gone")
        .await
        .expect_err("already gone");
    assert!(matches!(err, TenancyError::TenantNotFound(_)));
}

#[tokio::test]
async fn provisioning_and_migrating_can_run_inside_an_axum_handler() {
    // Futures held by handlers must be Send for every lifetime; this route would not compile
    // otherwise.
    async fn create(State(provisioner): State<Provisioner>) -> String {
        match provisioner
            .create(NewTenant::new(slug_of("fromhttp"), "From HTTP"))
            .await
        {
            Ok(p) => p.tenant.schema_name.as_str().to_owned(),
            Err(e) => e.to_string(),
        }
    }
    let env = Env::new().await;
    let app = Router::new()
        .route("/create/", post(create))
        .with_state(env.provisioner.clone());
    let request = http::Request::post("/create/")
        .body(axum::body::Body::empty())
        .expect("request");
    let response = tower::ServiceExt::oneshot(app, request)
        .await
        .expect("infallible");
    assert_eq!(response.status(), http::StatusCode::OK);
    assert!(schema_exists(env.db.pool(), "tenant_fromhttp").await);
    let migrator = Arc::new(env.migrator.clone());
    let report =
        tokio::spawn(async move { migrator.migrate_all(MigrateAllOptions::default()).await })
            .await
            .expect("joined")
            .expect("migrated");
    assert!(report.is_success());
}
