//! The isolation hammer: many interleaved requests for many tenants through a tiny pool never see
//! another tenant's schema or rows, including requests whose transaction fails, is rolled back,
//! or rolls back to a savepoint.

mod common;

use std::sync::Arc;

use axum::extract::Query;
use axum::routing::get;
use axum::{Extension, Json, Router};
use common::{get_json, Env, MARKER};
use futures::StreamExt as _;
use http::StatusCode;
use leopard::tenancy::{TenancyLayer, TenantContext};
use rand::Rng as _;
use serde::Deserialize;
use serde_json::{json, Value};

/// A handler failure as a 500 carrying the database's message (this is a test probe).
fn internal(e: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

#[derive(Deserialize)]
struct Params {
    mode: u8,
}

/// Reads the schema and marker row, then, by `mode`: commits a write, rolls back explicitly,
/// fails a statement (aborting the transaction) and drops it, or rolls back to a savepoint and
/// reads again.
async fn probe(
    Extension(ctx): Extension<TenantContext>,
    Query(params): Query<Params>,
) -> Result<Json<Value>, (StatusCode, String)> {
    let mut tx = ctx.begin().await.map_err(internal)?;
    let (schema, marker): (String, String) =
        sqlx::query_as("SELECT current_schema()::text, (SELECT slug FROM marker)")
            .fetch_one(&mut *tx)
            .await
            .map_err(internal)?;
    match params.mode {
        0 => {
            sqlx::query("INSERT INTO items (label) VALUES ($1)")
                .bind(&marker)
                .execute(&mut *tx)
                .await
                .map_err(internal)?;
            tx.commit().await.map_err(internal)?;
        }
        1 => {
            sqlx::query("INSERT INTO items (label) VALUES ('rolled back')")
                .execute(&mut *tx)
                .await
                .map_err(internal)?;
            tx.rollback().await.map_err(internal)?;
        }
        2 => {
            // A failing statement aborts the transaction; the handler gives up and drops it.
            let failed = sqlx::query("SELECT 1 / 0").execute(&mut *tx).await;
            assert!(failed.is_err());
            drop(tx);
            return Err((
                StatusCode::CONFLICT,
                json!({"schema": schema, "marker": marker}).to_string(),
            ));
        }
        _ => {
            for statement in [
                "SAVEPOINT s",
                "SET LOCAL search_path TO public",
                "ROLLBACK TO SAVEPOINT s",
            ] {
                sqlx::query(statement)
                    .execute(&mut *tx)
                    .await
                    .map_err(internal)?;
            }
            let again: String = sqlx::query_scalar("SELECT current_schema()::text")
                .fetch_one(&mut *tx)
                .await
                .map_err(internal)?;
            if again != schema {
                return Err((StatusCode::INTERNAL_SERVER_ERROR, "savepoint leaked".into()));
            }
            tx.commit().await.map_err(internal)?;
        }
    }
    Ok(Json(json!({"schema": schema, "marker": marker})))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_interleaved_requests_over_twenty_tenants_never_leak_through_a_pool_of_two() {
    let env = Env::with_migrations(vec![MARKER], 2).await;
    let slugs: Vec<String> = (0..20).map(|i| format!("iso{i:02}")).collect();
    for slug in &slugs {
        env.tenant(slug).await;
    }
    let registry = env.registry().await;
    let app = Router::new()
        .route("/probe/", get(probe))
        .layer(TenancyLayer::new(Arc::clone(&registry)));

    let mut rng = rand::thread_rng();
    let plan: Vec<(String, u8)> = (0..1000)
        .map(|_| {
            (
                slugs[rng.gen_range(0..slugs.len())].clone(),
                rng.gen_range(0..4),
            )
        })
        .collect();
    let commits_planned = plan.iter().filter(|(_, mode)| *mode == 0).count();

    let results: Vec<(String, u8, StatusCode, Value)> = futures::stream::iter(plan)
        .map(|(slug, mode)| {
            let app = app.clone();
            async move {
                let (status, body) = get_json(
                    &app,
                    &format!("{slug}.localhost"),
                    &format!("/probe/?mode={mode}"),
                )
                .await;
                (slug, mode, status, body)
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;

    let mut leaks = Vec::new();
    for (slug, mode, status, body) in &results {
        let expected_status = if *mode == 2 {
            StatusCode::CONFLICT
        } else {
            StatusCode::OK
        };
        assert_eq!(*status, expected_status, "{slug} mode {mode}: {body}");
        let body = if *mode == 2 {
            serde_json::from_str::<Value>(body.as_str().unwrap_or_default()).unwrap_or(body.clone())
        } else {
            body.clone()
        };
        if body["schema"] != format!("tenant_{slug}") || body["marker"] != slug.as_str() {
            leaks.push(format!("{slug} mode {mode}: {body}"));
        }
    }
    assert_eq!(results.len(), 1000);
    assert!(
        leaks.is_empty(),
        "{} leaks, e.g. {:?}",
        leaks.len(),
        &leaks[..leaks.len().min(5)]
    );

    // Every committed row landed in its own tenant's table, and no rolled-back row survived.
    let mut committed = 0;
    for slug in &slugs {
        let ctx = registry.context_for(slug).expect("tenant");
        let mut tx = ctx.begin().await.expect("tx");
        let labels: Vec<String> = sqlx::query_scalar("SELECT label FROM items")
            .fetch_all(&mut *tx)
            .await
            .expect("items");
        assert!(
            labels.iter().all(|l| l == slug),
            "{slug} holds foreign rows: {labels:?}"
        );
        committed += labels.len();
    }
    assert_eq!(committed, commits_planned);

    // The pooled connections carry no tenant's search_path outside a tenant transaction.
    let pool = env.db.pool();
    for _ in 0..4 {
        let path: String = sqlx::query_scalar("SHOW search_path")
            .fetch_one(pool)
            .await
            .expect("search_path");
        assert_eq!(path, "\"$user\", public");
    }
}
