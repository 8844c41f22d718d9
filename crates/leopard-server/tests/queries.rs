//! No N+1: every list endpoint issues a bounded number of SQL statements, the same for a page of
//! one row as for a page of a hundred.
//!
//! Statements are counted from sqlx's own per-statement `tracing` events (target
//! `sqlx::query`), collected by a subscriber attached to the request's future only, so tests
//! running in parallel do not see each other's queries.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::TestApp;
use http::{Method, StatusCode};
use leopard_rbac::Role;
use serde_json::{json, Value};
use tracing::instrument::WithSubscriber as _;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::Layer;

const SLUG: &str = "acme";

/// Counts sqlx's per-statement events.
#[derive(Clone, Default)]
struct StatementCounter(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> Layer<S> for StatementCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sends `GET path` and returns the status, the body and the number of SQL statements run.
async fn counted_get(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value, usize) {
    let counter = StatementCounter::default();
    let subscriber = tracing_subscriber::registry().with(counter.clone());
    let (status, _, body) = app.get(SLUG, path, token).with_subscriber(subscriber).await;
    (status, body, counter.0.load(Ordering::Relaxed))
}

/// The number of rows of a list answer (paginated or bare array).
fn rows(body: &Value) -> usize {
    body.get("results")
        .and_then(Value::as_array)
        .or_else(|| body.as_array())
        .map_or(0, Vec::len)
}

/// Asserts that `path` (with `?page_size=` appended) answers `small` and `large` rows with the
/// same, bounded number of statements.
async fn assert_bounded(app: &TestApp, token: &str, path: &str, small: usize, large: usize) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let (s1, b1, few) = counted_get(app, &format!("{path}{sep}page_size={small}"), token).await;
    let (s2, b2, many) = counted_get(app, &format!("{path}{sep}page_size={large}"), token).await;
    assert_eq!(s1, StatusCode::OK, "{path}: {b1}");
    assert_eq!(s2, StatusCode::OK, "{path}: {b2}");
    assert_eq!(rows(&b1), small, "{path}: page of {small}");
    assert_eq!(rows(&b2), large, "{path}: page of {large}");
    assert!(few > 0, "{path}: statements were counted");
    assert_eq!(
        few, many,
        "{path}: {few} statements for {small} rows but {many} for {large}"
    );
    assert!(many <= 8, "{path}: {many} statements for one list");
}

#[tokio::test]
async fn list_endpoints_run_the_same_few_statements_for_one_row_as_for_sixty() {
    let app = TestApp::new(&[SLUG]).await;
    let org = app.seed_org(SLUG).await;
    app.user(SLUG, "root", Some(Role::SuperAdmin), &[], &[])
        .await;
    let token = app.token(SLUG, "root").await;
    for i in 0..60 {
        let username = format!("consultant{i:02}");
        let user = app
            .user(SLUG, &username, Some(Role::Consultant), &[org.a], &[])
            .await;
        let (status, _, body) = app
            .call(
                Method::POST,
                SLUG,
                "/api/v1/clients/",
                Some(&token),
                Some(json!({
                    "first_name": format!("Client{i}"), "last_name": "Bulk", "gender": "OTHER",
                    "country": "NP", "branch_id": org.a, "assigned_to_id": user,
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for path in ["/api/v1/clients/", "/api/v1/users/"] {
        assert_bounded(&app, &token, path, 1, 60).await;
    }
}
