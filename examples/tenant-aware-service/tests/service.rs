//! The notes service end to end: a fresh database per test, tenants provisioned with the
//! service's own migrations, and the router driven in-process with a `Host` header.
//!
//! Set `DATABASE_URL` (e.g. `postgres://postgres@127.0.0.1:5432/postgres`) to use an existing
//! server; otherwise `TestDatabase` starts a private cluster from the local PostgreSQL binaries.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt as _;
use leopard_core::TenantSlug;
use leopard_tenancy::provision::Provisioner;
use leopard_tenancy::testing::TestDatabase;
use leopard_tenancy::{Migrator, NewTenant, ResolveConfig, SubscriptionStatus, TenantRegistry};
use serde_json::{json, Value};
use tenant_aware_service::notes::BODY_MAX_CHARS;
use tower::ServiceExt as _;

/// A migrated database with tenants `alpha` and `beta`, and the service's router over it.
struct Service {
    /// Kept alive for the test; the database is dropped with it.
    _db: TestDatabase,
    provisioner: Provisioner,
    registry: Arc<TenantRegistry>,
    app: Router,
}

impl Service {
    async fn start() -> Self {
        let db = TestDatabase::new().await.expect("test database");
        let set = Arc::new(tenant_aware_service::migration_set().expect("valid migration set"));
        Migrator::new(db.pool().clone(), Arc::clone(&set))
            .migrate_shared()
            .await
            .expect("shared migrations");
        let provisioner = Provisioner::new(db.pool().clone(), set, ResolveConfig::default());
        for slug in ["alpha", "beta"] {
            provisioner
                .create(NewTenant::new(slug_of(slug), format!("Tenant {slug}")))
                .await
                .expect("tenant provisioned");
        }
        let registry = TenantRegistry::load(db.pool().clone(), ResolveConfig::default())
            .await
            .expect("registry loaded");
        let app = tenant_aware_service::app(Arc::clone(&registry));
        Self {
            _db: db,
            provisioner,
            registry,
            app,
        }
    }

    /// Sends a request and returns its status and JSON body (`null` when empty).
    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self
            .app
            .clone()
            .oneshot(request)
            .await
            .expect("the router never fails");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("response body")
            .to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("a JSON response body")
        };
        (status, body)
    }

    async fn get(&self, host: &str, path: &str) -> (StatusCode, Value) {
        let request = Request::get(path)
            .header(header::HOST, host)
            .body(Body::empty())
            .expect("request");
        self.send(request).await
    }

    async fn post_raw(&self, host: &str, path: &str, body: impl Into<Body>) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::HOST, host)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.into())
            .expect("request");
        self.send(request).await
    }

    async fn post(&self, host: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        self.post_raw(host, path, body.to_string()).await
    }

    /// The bodies listed by `GET /notes/` for `host`, newest first.
    async fn bodies(&self, host: &str) -> Vec<String> {
        let (status, listed) = self.get(host, "/notes/").await;
        assert_eq!(status, StatusCode::OK, "{listed}");
        listed
            .as_array()
            .expect("a JSON array")
            .iter()
            .map(|note| note["body"].as_str().expect("a string body").to_owned())
            .collect()
    }

    /// Counts the rows of one tenant's `notes` table straight from the database.
    async fn rows_in(&self, slug: &str) -> i64 {
        let ctx = self.registry.context_for(slug).expect("known tenant");
        let mut tx = ctx.begin().await.expect("tenant transaction");
        let count = tenant_aware_service::notes::count(&mut tx)
            .await
            .expect("count");
        tx.commit().await.expect("commit");
        count
    }
}

fn slug_of(raw: &str) -> TenantSlug {
    TenantSlug::parse(raw).expect("valid slug")
}

#[tokio::test]
async fn notes_written_for_one_tenant_are_invisible_to_another() {
    let service = Service::start().await;

    let (status, created) = service
        .post(
            "alpha.localhost",
            "/notes/",
            &json!({"body": "alpha's secret"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["body"], "alpha's secret");
    assert_eq!(created["id"], 1);
    assert!(created["created_at"].is_string());

    let (status, _) = service
        .post(
            "beta.localhost:3000",
            "/notes/",
            &json!({"body": "beta one"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // The derived `<slug>-immigrate.localhost` host reaches the same tenant.
    let (status, second) = service
        .post(
            "beta-immigrate.localhost",
            "/notes/",
            &json!({"body": "beta two"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Each tenant's identity column counts on its own.
    assert_eq!(second["id"], 2);

    assert_eq!(service.bodies("alpha.localhost").await, ["alpha's secret"]);
    assert_eq!(
        service.bodies("beta.localhost").await,
        ["beta two", "beta one"]
    );
    assert_eq!(service.rows_in("alpha").await, 1);
    assert_eq!(service.rows_in("beta").await, 2);
}

#[tokio::test]
async fn an_unknown_host_gets_a_json_404_tenant_not_found_on_every_path() {
    let service = Service::start().await;
    for path in ["/notes/", "/no-such-route/"] {
        let (status, body) = service.get("gamma.localhost", path).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["code"], "tenant_not_found");
        assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let (status, body) = service
        .post("gamma.localhost", "/notes/", &json!({"body": "lost"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "tenant_not_found");
    assert_eq!(service.rows_in("alpha").await, 0);
}

#[tokio::test]
async fn blank_missing_or_too_long_bodies_get_a_400_and_change_nothing() {
    let service = Service::start().await;
    let too_long = "x".repeat(BODY_MAX_CHARS + 1);
    for input in [
        json!({"body": ""}),
        json!({"body": "   \n\t "}),
        json!({"body": too_long}),
        json!({"body": "nul \u{0} inside"}),
        json!({"body": null}),
        json!({"body": 42}),
        json!({"text": "wrong field"}),
        json!({}),
    ] {
        let (status, body) = service.post("alpha.localhost", "/notes/", &input).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{input} gave {body}");
        let messages = body["body"]
            .as_array()
            .expect("messages for the body field");
        assert!(!messages.is_empty(), "{input} gave {body}");
    }
    for raw in ["{\"body\": ", "not json", "[]", "\"just a string\""] {
        let (status, body) = service.post_raw("alpha.localhost", "/notes/", raw).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{raw} gave {body}");
        assert_eq!(body["code"], "invalid_json");
    }
    assert_eq!(service.rows_in("alpha").await, 0);
    assert!(service.bodies("alpha.localhost").await.is_empty());
}

#[tokio::test]
async fn a_body_without_a_json_content_type_gets_a_415() {
    let service = Service::start().await;
    let request = Request::post("/notes/")
        .header(header::HOST, "alpha.localhost")
        .body(Body::from(json!({"body": "hello"}).to_string()))
        .expect("request");
    let (status, body) = service.send(request).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["code"], "unsupported_media_type");
    assert_eq!(service.rows_in("alpha").await, 0);
}

#[tokio::test]
async fn a_body_of_exactly_the_maximum_length_in_characters_is_stored_trimmed() {
    let service = Service::start().await;
    // Two bytes per character: the limit is on characters, as in the table's CHECK.
    let longest = "é".repeat(BODY_MAX_CHARS);
    let (status, created) = service
        .post(
            "alpha.localhost",
            "/notes/",
            &json!({"body": format!("  {longest}\n")}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["body"].as_str(), Some(longest.as_str()));
    assert_eq!(service.rows_in("alpha").await, 1);
}

#[tokio::test]
async fn a_suspended_tenant_gets_a_403_tenant_inactive_while_others_are_served() {
    let service = Service::start().await;
    let (status, _) = service
        .post("alpha.localhost", "/notes/", &json!({"body": "before"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);

    service
        .provisioner
        .set_status(&slug_of("alpha"), SubscriptionStatus::Suspended)
        .await
        .expect("suspended");
    service.registry.reload().await.expect("registry reloaded");

    let (status, body) = service.get("alpha.localhost", "/notes/").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "tenant_inactive");
    let (status, body) = service
        .post("alpha.localhost", "/notes/", &json!({"body": "after"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "tenant_inactive");
    assert_eq!(service.bodies("beta.localhost").await, Vec::<String>::new());

    service
        .provisioner
        .set_status(&slug_of("alpha"), SubscriptionStatus::Active)
        .await
        .expect("reactivated");
    service.registry.reload().await.expect("registry reloaded");
    // The data survived the suspension, and nothing was written during it.
    assert_eq!(service.bodies("alpha.localhost").await, ["before"]);
}

#[tokio::test]
async fn the_health_path_answers_without_a_tenant() {
    let service = Service::start().await;
    for host in ["gamma.localhost", "alpha.localhost", "127.0.0.1:3000"] {
        let (status, body) = service.get(host, "/health/").await;
        assert_eq!(status, StatusCode::OK, "{host}");
        assert_eq!(body["status"], "ok");
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_of_a_known_tenant_get_json_errors() {
    let service = Service::start().await;
    let (status, body) = service.get("alpha.localhost", "/nothing-here/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");

    let request = Request::delete("/notes/")
        .header(header::HOST, "alpha.localhost")
        .body(Body::empty())
        .expect("request");
    let (status, body) = service.send(request).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["code"], "method_not_allowed");
}
