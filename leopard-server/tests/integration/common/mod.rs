//! Shared set-up of the server's HTTP tests: a private database with the server's migrations,
//! provisioned tenants, the real router, and helpers to seed an organisation, create users, log
//! in and call the API.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use leopard_core::TenantSlug;
use leopard_rbac::Role;
use leopard_server::app::{self, AppConfig};
use leopard_server::identity::{self, NewUser};
use leopard_server::migrations;
use leopard_tenancy::testing::TestTenancy;
use leopard_tenancy::{NewTenant, ResolveConfig, TenantContext, TenantRegistry};
use serde_json::Value;
use tower::ServiceExt as _;

pub mod browser;
pub mod pair;
pub mod processes;

/// The password every test user gets.
pub const PASSWORD: &str = "Correct-Horse-42";

/// A 32-byte test secret.
pub const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

/// The organisation seeded by [`TestApp::seed_org`]: regions North (branches A, B) and South
/// (branch C), and branch D without a region.
#[derive(Debug, Clone, Copy)]
pub struct Org {
    /// Region North.
    pub north: i64,
    /// Region South.
    pub south: i64,
    /// Branch A (North).
    pub a: i64,
    /// Branch B (North).
    pub b: i64,
    /// Branch C (South).
    pub c: i64,
    /// Branch D (no region).
    pub d: i64,
}

/// A running application over a private database.
pub struct TestApp {
    /// Database, migrator and provisioner.
    pub tenancy: TestTenancy,
    /// The registry the router resolves with.
    pub registry: Arc<TenantRegistry>,
    /// The application.
    pub router: axum::Router,
    /// The media directory of the application (removed with the app).
    pub media: tempfile::TempDir,
}

/// A response: status, headers, JSON body (`Null` when empty).
pub type Reply = (StatusCode, HeaderMap, Value);

impl TestApp {
    /// Provisions `slugs` (name = slug upper-cased) and builds the router.
    pub async fn new(slugs: &[&str]) -> Self {
        Self::with_config(slugs, |_| {}).await
    }

    /// Like [`TestApp::new`], adjusting the configuration first.
    pub async fn with_config(slugs: &[&str], adjust: impl FnOnce(&mut AppConfig)) -> Self {
        let set = Arc::try_unwrap(migrations::set()).expect("a fresh set");
        let tenancy = TestTenancy::new(set, 12).await.expect("database");
        for slug in slugs {
            tenancy
                .provisioner
                .create(NewTenant::new(
                    TenantSlug::parse(slug).expect("slug"),
                    slug.to_uppercase(),
                ))
                .await
                .expect("tenant");
        }
        let registry = TenantRegistry::load(tenancy.db.pool().clone(), ResolveConfig::default())
            .await
            .expect("registry");
        let provisioner = Arc::new(leopard_tenancy::Provisioner::new(
            tenancy.db.pool().clone(),
            Arc::clone(&tenancy.set),
            ResolveConfig::default(),
        ));
        let mut config = AppConfig::new(
            tenancy.db.pool().clone(),
            Arc::clone(&registry),
            provisioner,
            SECRET.to_vec(),
        );
        let media = tempfile::tempdir().expect("media directory");
        config.media_dir = media.path().to_path_buf();
        adjust(&mut config);
        let router = app::router(config).expect("router");
        Self {
            tenancy,
            registry,
            router,
            media,
        }
    }

    /// Like [`TestApp::new`], with an event bus over the program's registered handlers
    /// (`leopard_server::handlers::registry()`, so `audit.record` included) whose waker the
    /// router uses. Fast test timings: 2 workers, 50 ms polls. Shut the returned bus down at
    /// the end of the test.
    pub async fn with_bus(slugs: &[&str]) -> (Self, leopard_events::Running) {
        let mut bus = None;
        let app = Self::with_config(slugs, |config| {
            let created = Arc::new(leopard_events::EventBus::new(
                config.pool.clone(),
                Arc::clone(&config.registry),
                leopard_server::handlers::registry().expect("no duplicate handlers"),
                leopard_events::WorkerConfig {
                    workers: 2,
                    poll_interval: std::time::Duration::from_millis(50),
                    ..leopard_events::WorkerConfig::default()
                },
            ));
            config.waker = created.waker();
            bus = Some(created);
        })
        .await;
        let running = bus
            .expect("the bus was built")
            .start()
            .await
            .expect("the bus starts");
        (app, running)
    }

    /// `SELECT count(*)`-like `sql` (one bigint) in tenant `slug`'s schema.
    pub async fn tenant_count(&self, slug: &str, sql: &str) -> i64 {
        let mut tx = self.context(slug).begin().await.expect("tx");
        let n: i64 = sqlx::query_scalar(sql)
            .fetch_one(&mut *tx)
            .await
            .expect("count");
        tx.commit().await.expect("commit");
        n
    }

    /// The tenant context of `slug`.
    pub fn context(&self, slug: &str) -> TenantContext {
        self.registry.context_for(slug).expect("tenant exists")
    }

    /// Seeds regions North and South and branches A, B (North), C (South), D (none).
    pub async fn seed_org(&self, slug: &str) -> Org {
        let mut tx = self.context(slug).begin().await.expect("tx");
        let region = |name: &'static str| {
            sqlx::query_scalar::<_, i64>("INSERT INTO regions (name) VALUES ($1) RETURNING id")
                .bind(name)
        };
        let north = region("North").fetch_one(&mut *tx).await.expect("region");
        let south = region("South").fetch_one(&mut *tx).await.expect("region");
        let mut ids = Vec::new();
        for (name, region) in [
            ("Branch A", Some(north)),
            ("Branch B", Some(north)),
            ("Branch C", Some(south)),
            ("Branch D", None),
        ] {
            ids.push(
                sqlx::query_scalar::<_, i64>(
                    "INSERT INTO branches (name, region_id) VALUES ($1, $2) RETURNING id",
                )
                .bind(name)
                .bind(region)
                .fetch_one(&mut *tx)
                .await
                .expect("branch"),
            );
        }
        tx.commit().await.expect("commit");
        Org {
            north,
            south,
            a: ids[0],
            b: ids[1],
            c: ids[2],
            d: ids[3],
        }
    }

    /// Creates an active user with password [`PASSWORD`], e-mail `<username>@example.com`,
    /// `role` (if any) and assignments. Returns its id.
    pub async fn user(
        &self,
        slug: &str,
        username: &str,
        role: Option<Role>,
        branches: &[i64],
        regions: &[i64],
    ) -> i64 {
        let mut tx = self.context(slug).begin().await.expect("tx");
        let id = identity::create_user(
            &mut tx,
            &NewUser {
                username: username.into(),
                email: format!("{username}@example.com"),
                password: PASSWORD.into(),
                first_name: username.into(),
                last_name: "Tester".into(),
                groups: role
                    .map(|r| r.group_name().to_owned())
                    .into_iter()
                    .collect(),
                branch_ids: branches.to_vec(),
                region_ids: regions.to_vec(),
                is_active: true,
            },
            10_000,
        )
        .await
        .expect("user");
        tx.commit().await.expect("commit");
        id
    }

    /// Logs `username` in on `slug` and returns `(access, refresh)`.
    pub async fn login(&self, slug: &str, username: &str) -> (String, String) {
        let (status, _, body) = self
            .call(
                Method::POST,
                slug,
                "/api/token/",
                None,
                Some(serde_json::json!({"username": username, "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login of {username}: {body}");
        (
            body["access"].as_str().expect("access").to_owned(),
            body["refresh"].as_str().expect("refresh").to_owned(),
        )
    }

    /// Logs in and returns the access token only.
    pub async fn token(&self, slug: &str, username: &str) -> String {
        self.login(slug, username).await.0
    }

    /// Sends a request to tenant `slug`'s host (`<slug>.localhost`; pass a string containing a
    /// dot or colon to use it as the host verbatim).
    pub async fn call(
        &self,
        method: Method,
        slug: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let host = if slug.contains('.') || slug.contains(':') {
            slug.to_owned()
        } else {
            format!("{slug}.localhost")
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", host);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .expect("request");
        self.send(request).await
    }

    /// Sends a ready-made request to the router: (status, headers, the body as JSON, or as a
    /// JSON string when it is not JSON, or null when empty).
    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, headers, json)
    }

    /// `GET` with a token.
    pub async fn get(&self, slug: &str, path: &str, token: &str) -> Reply {
        self.call(Method::GET, slug, path, Some(token), None).await
    }
}

/// A `multipart/form-data` body with one file part `field` (file name `filename`, declared
/// `content_type`): (the request's `Content-Type`, the body).
pub fn multipart(
    field: &str,
    filename: &str,
    content_type: &str,
    bytes: &[u8],
) -> (String, Vec<u8>) {
    let boundary = "leopard-test-boundary-7c1f";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; \
         filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
