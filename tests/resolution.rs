//! Host → tenant resolution, the tenancy layer's answers, and how fast registry changes are seen.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::{Extension, Json, Router};
use common::{get_json, slug_of, Env};
use http::StatusCode;
use leopard::core::HostName;
use leopard::tenancy::{
    NewTenant, ResolveConfig, SubscriptionStatus, TenancyLayer, TenantContext, TenantRegistry,
};
use sqlx::postgres::PgPoolOptions;
use tower::Layer as _;

/// A router whose one route answers the resolved tenant's slug and the rewritten path.
fn whoami(layer: TenancyLayer) -> Router {
    whoami_routes().layer(layer)
}

/// The routes of [`whoami`] without the layer.
fn whoami_routes() -> Router {
    async fn handler(
        Extension(ctx): Extension<TenantContext>,
        uri: http::Uri,
    ) -> Json<serde_json::Value> {
        Json(serde_json::json!({"slug": ctx.tenant().slug.as_str(), "path": uri.path()}))
    }
    async fn public() -> Json<serde_json::Value> {
        Json(serde_json::json!({"public": true}))
    }
    Router::new()
        .route("/whoami/", get(handler))
        .route("/health/", get(public))
}

/// Polls `check` every 10 ms until it holds or `limit` passes; returns the time it took.
async fn within(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() <= limit {
        if check() {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[tokio::test]
async fn hosts_resolve_by_exact_domain_then_app_pattern_then_slug_pattern() {
    let env = Env::new().await;
    env.tenant("acme").await;
    env.tenant("globex").await;
    let mut custom = NewTenant::new(slug_of("initech"), "Initech");
    custom.domains = vec![HostName::parse("crm.initech.example").expect("host")];
    env.provisioner.create(custom).await.expect("provisioned");
    // A tenant whose derived domain rows are removed still resolves through the patterns.
    env.tenant("umbrella").await;
    for host in ["umbrella.localhost", "umbrella-immigrate.localhost"] {
        env.provisioner
            .remove_domain(&slug_of("umbrella"), &HostName::parse(host).expect("host"))
            .await
            .expect("removed");
    }
    let registry = env.registry().await;

    let slug_for = |host: &str| registry.resolve_host(host).map(|t| t.slug.to_string());
    assert_eq!(slug_for("acme.localhost").as_deref(), Some("acme"));
    assert_eq!(
        slug_for("acme-immigrate.localhost").as_deref(),
        Some("acme")
    );
    assert_eq!(
        slug_for("globex-immigrate.localhost").as_deref(),
        Some("globex")
    );
    assert_eq!(slug_for("crm.initech.example").as_deref(), Some("initech"));
    assert_eq!(slug_for("umbrella.localhost").as_deref(), Some("umbrella"));
    assert_eq!(
        slug_for("umbrella-immigrate.localhost").as_deref(),
        Some("umbrella")
    );
    // Case, port and a leading www. do not matter.
    assert_eq!(slug_for("ACME.LocalHost:8000").as_deref(), Some("acme"));
    assert_eq!(
        slug_for("www.acme-immigrate.localhost").as_deref(),
        Some("acme")
    );
    assert_eq!(
        slug_for("WWW.CRM.Initech.Example:443").as_deref(),
        Some("initech")
    );
    // Unknown hosts, other bases and deeper names do not resolve.
    assert_eq!(slug_for("nobody.localhost"), None);
    assert_eq!(slug_for("acme.example.com"), None);
    assert_eq!(slug_for("x.acme.localhost"), None);
    assert_eq!(slug_for("localhost"), None);
    assert_eq!(slug_for(""), None);
}

#[tokio::test]
async fn the_layer_answers_json_404_for_unknown_hosts_and_403_for_inactive_tenants() {
    let env = Env::new().await;
    env.tenant("acme").await;
    env.tenant("suspended").await;
    env.tenant("cancelled").await;
    env.tenant("off").await;
    env.provisioner
        .set_status(&slug_of("suspended"), SubscriptionStatus::Suspended)
        .await
        .expect("suspended");
    env.provisioner
        .set_status(&slug_of("cancelled"), SubscriptionStatus::Cancelled)
        .await
        .expect("cancelled");
    env.provisioner
        .deactivate(&slug_of("off"))
        .await
        .expect("deactivated");
    let app = whoami(TenancyLayer::new(env.registry().await).with_public_path("/health/"));

    let (status, body) = get_json(&app, "acme.localhost", "/whoami/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["slug"], "acme");

    let (status, body) = get_json(&app, "nobody.localhost", "/whoami/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "tenant_not_found");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));

    for host in [
        "suspended.localhost",
        "cancelled.localhost",
        "off.localhost",
    ] {
        let (status, body) = get_json(&app, host, "/whoami/").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{host}");
        assert_eq!(body["code"], "tenant_inactive", "{host}");
    }

    // Public paths pass with no tenant, whatever the host.
    let (status, body) = get_json(&app, "nobody.localhost", "/health/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["public"], true);
}

#[tokio::test]
async fn header_and_path_prefix_resolvers_work_only_when_enabled() {
    let env = Env::new().await;
    env.tenant("acme").await;
    env.tenant("globex").await;
    let registry = env.registry().await;

    let plain = whoami(TenancyLayer::new(Arc::clone(&registry)));
    let request = http::Request::get("/whoami/")
        .header("host", "acme.localhost")
        .header("x-tenant", "globex")
        .body(axum::body::Body::empty())
        .expect("request");
    let (_, body) = common::send(&plain, request).await;
    assert_eq!(body["slug"], "acme", "the header is ignored unless enabled");

    let with_header = whoami(
        TenancyLayer::new(Arc::clone(&registry))
            .with_header(http::HeaderName::from_static("x-tenant")),
    );
    let request = http::Request::get("/whoami/")
        .header("host", "gateway.internal")
        .header("x-tenant", "globex")
        .body(axum::body::Body::empty())
        .expect("request");
    let (status, body) = common::send(&with_header, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["slug"], "globex");
    let request = http::Request::get("/whoami/")
        .header("host", "acme.localhost")
        .header("x-tenant", "nobody")
        .body(axum::body::Body::empty())
        .expect("request");
    let (status, body) = common::send(&with_header, request).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a named but unknown tenant is not found"
    );
    assert_eq!(body["code"], "tenant_not_found");

    // Path rewriting must happen before routing: the layer wraps the whole router.
    let with_prefix = Router::new().fallback_service(
        TenancyLayer::new(Arc::clone(&registry))
            .with_path_prefix("/t")
            .layer(whoami_routes()),
    );
    let (status, body) = get_json(&with_prefix, "gateway.internal", "/t/globex/whoami/?x=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["slug"], "globex");
    assert_eq!(body["path"], "/whoami/", "the prefix and slug are stripped");
    let (status, _) = get_json(&with_prefix, "gateway.internal", "/t/nobody/whoami/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Without the prefix the host still decides.
    let (_, body) = get_json(&with_prefix, "acme.localhost", "/whoami/").await;
    assert_eq!(body["slug"], "acme");
}

#[tokio::test]
async fn unknown_hosts_are_answered_without_any_database_query() {
    let env = Env::new().await;
    env.tenant("acme").await;
    // A pool that counts every checkout and every new connection: any query needs one.
    let checkouts = Arc::new(AtomicU64::new(0));
    let (on_acquire, on_connect) = (Arc::clone(&checkouts), Arc::clone(&checkouts));
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .before_acquire(move |_, _| {
            on_acquire.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(true) })
        })
        .after_connect(move |_, _| {
            on_connect.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(()) })
        })
        .connect(env.db.url())
        .await
        .expect("pool");
    let registry = TenantRegistry::load(pool, ResolveConfig::default())
        .await
        .expect("registry");
    let _refresh = registry
        .start_refresh(Duration::from_secs(3600))
        .await
        .expect("refresh");
    let app = whoami(TenancyLayer::new(Arc::clone(&registry)));

    let before = checkouts.load(Ordering::SeqCst);
    for i in 0..500 {
        let (status, body) = get_json(&app, &format!("unknown{i}.localhost"), "/whoami/").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["code"], "tenant_not_found");
        let (status, _) = get_json(&app, "unknown.example.org", "/whoami/").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    // Known hosts resolve without queries too (the handler above does not query).
    let (status, _) = get_json(&app, "acme.localhost", "/whoami/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        checkouts.load(Ordering::SeqCst),
        before,
        "no connection was checked out"
    );
}

#[tokio::test]
async fn new_tenants_domains_and_suspensions_are_seen_within_a_second_without_restart() {
    let env = Env::new().await;
    env.tenant("acme").await;
    let registry = env.registry().await;
    // A period far longer than the test: only LISTEN/NOTIFY can make changes visible.
    let _refresh = registry
        .start_refresh(Duration::from_secs(3600))
        .await
        .expect("refresh");
    let app = whoami(TenancyLayer::new(Arc::clone(&registry)));
    let limit = Duration::from_secs(1);

    env.tenant("newco").await;
    let seen = within(limit, || {
        registry.resolve_host("newco-immigrate.localhost").is_some()
    })
    .await;
    assert!(seen.is_some(), "a new tenant resolves within 1 s");

    env.provisioner
        .add_domain(
            &slug_of("acme"),
            &HostName::parse("crm.acme.example").expect("host"),
            false,
        )
        .await
        .expect("domain added");
    let seen = within(limit, || {
        registry.resolve_host("crm.acme.example").is_some()
    })
    .await;
    assert!(seen.is_some(), "a new domain resolves within 1 s");

    env.provisioner
        .set_status(&slug_of("acme"), SubscriptionStatus::Suspended)
        .await
        .expect("suspended");
    let seen = within(limit, || {
        registry
            .resolve_host("acme.localhost")
            .is_some_and(|t| !t.is_serving())
    })
    .await;
    assert!(seen.is_some(), "a suspension is seen within 1 s");
    let (status, body) = get_json(&app, "crm.acme.example", "/whoami/").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "tenant_inactive");

    env.provisioner
        .remove_domain(
            &slug_of("acme"),
            &HostName::parse("crm.acme.example").expect("host"),
        )
        .await
        .expect("domain removed");
    let seen = within(limit, || {
        registry.resolve_host("crm.acme.example").is_none()
    })
    .await;
    assert!(
        seen.is_some(),
        "a removed domain stops resolving within 1 s"
    );
}
