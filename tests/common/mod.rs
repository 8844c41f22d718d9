//! Shared set-up for the integration tests: a fresh database with the registry migrated, and
//! helpers to provision tenants and drive a router.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use leopard::core::TenantSlug;
use leopard::tenancy::migrate::Migrator;
use leopard::tenancy::provision::Provisioner;
use leopard::tenancy::testing::{TestDatabase, TestTenancy};
use leopard::tenancy::{Migration, MigrationSet, NewTenant, ResolveConfig, TenantRegistry};
use tower::ServiceExt as _;

/// The tenant migration used by most tests: a `marker` table holding the tenant's own slug, so a
/// query can tell whose schema it reads.
pub const MARKER: Migration = Migration::new(
    1,
    "marker",
    "CREATE TABLE marker (slug text NOT NULL);
     INSERT INTO marker (slug)
     SELECT substring(current_schema() FROM 8);
     CREATE TABLE items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, label text NOT NULL);",
);

/// A database with the registry tables, plus the tools to fill it.
pub struct Env {
    pub db: TestDatabase,
    pub set: Arc<MigrationSet>,
    pub provisioner: Provisioner,
    pub migrator: Migrator,
}

impl Env {
    /// A fresh database whose tenants get `tenant` migrations.
    pub async fn with_migrations(tenant: Vec<Migration>, pool_size: u32) -> Self {
        let set = MigrationSet::new(Vec::new(), tenant).expect("valid set");
        let TestTenancy {
            db,
            set,
            migrator,
            provisioner,
        } = TestTenancy::new(set, pool_size)
            .await
            .expect("test database");
        Self {
            db,
            set,
            provisioner,
            migrator,
        }
    }

    /// A fresh database whose tenants get the [`MARKER`] migration.
    pub async fn new() -> Self {
        Self::with_migrations(vec![MARKER], 10).await
    }

    /// Provisions a tenant with default settings.
    pub async fn tenant(&self, slug: &str) {
        self.provisioner
            .create(NewTenant::new(slug_of(slug), format!("Tenant {slug}")))
            .await
            .expect("provisioned");
    }

    /// A registry loaded from this database.
    pub async fn registry(&self) -> Arc<TenantRegistry> {
        TenantRegistry::load(self.db.pool().clone(), ResolveConfig::default())
            .await
            .expect("registry")
    }
}

/// Parses a slug that the test knows to be valid.
pub fn slug_of(raw: &str) -> TenantSlug {
    TenantSlug::parse(raw).expect("valid slug")
}

/// Sends a GET with a `Host` header and returns status and JSON body.
pub async fn get_json(
    app: &axum::Router,
    host: &str,
    path: &str,
) -> (StatusCode, serde_json::Value) {
    let request = Request::get(path)
        .header("host", host)
        .body(Body::empty())
        .expect("request");
    send(app, request).await
}

/// Sends a request and returns status and JSON body (`null` for an empty body).
pub async fn send(app: &axum::Router, request: Request<Body>) -> (StatusCode, serde_json::Value) {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    (status, json)
}
