//! The example's handler is registered through `inventory` and counts `Client.CREATE` events
//! end to end against PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use custom_handler::{ClientCounter, TENANT_MIGRATION};
use leopard_core::TenantSlug;
use leopard_events::{EventBus, HandlerRegistry, NewEvent, WorkerConfig};
use leopard_tenancy::testing::TestTenancy;
use leopard_tenancy::{Migration, MigrationSet, NewTenant, ResolveConfig, TenantRegistry};
use serde_json::json;

#[test]
fn the_inventory_lists_the_example_handler_with_its_crate() {
    let registry = custom_handler::registry().expect("no duplicate names");
    let info = registry
        .describe()
        .into_iter()
        .find(|h| h.name == ClientCounter::NAME)
        .expect("the handler is registered");
    assert_eq!(info.crate_name, "custom-handler");
    assert_eq!(info.event_types, ["Client.CREATE"]);
    assert!(info.transactional);
    assert_eq!(
        HandlerRegistry::from_inventory()
            .expect("registry")
            .for_type("Client.CREATE")
            .count(),
        1
    );
}

#[tokio::test]
async fn client_created_events_are_counted_once_each_and_other_events_are_ignored() {
    let set = MigrationSet::new(
        vec![Migration::new(1, "events", leopard_events::MIGRATION)],
        vec![TENANT_MIGRATION],
    )
    .expect("set");
    let tenancy = TestTenancy::new(set, 10).await.expect("database");
    tenancy
        .provisioner
        .create(NewTenant::new(
            TenantSlug::parse("acme").expect("slug"),
            "Acme",
        ))
        .await
        .expect("tenant");
    let registry = TenantRegistry::load(tenancy.db.pool().clone(), ResolveConfig::default())
        .await
        .expect("registry");
    let bus = Arc::new(EventBus::new(
        tenancy.db.pool().clone(),
        Arc::clone(&registry),
        custom_handler::registry().expect("handlers"),
        WorkerConfig {
            workers: 1,
            poll_interval: Duration::from_millis(50),
            ..WorkerConfig::default()
        },
    ));
    let running = Arc::clone(&bus).start().await.expect("bus");

    let context = registry.context_for("acme").expect("tenant");
    let mut tx = context.begin().await.expect("tx");
    leopard_events::record_all(
        &mut tx,
        vec![
            NewEvent::created("Client", 1, json!({"name": "Ada"})),
            NewEvent::created("Client", 2, json!({"name": "Grace"})),
            NewEvent::created("Task", 1, json!({})),
        ],
    )
    .await
    .expect("record");
    leopard_events::commit(tx, &bus.waker())
        .await
        .expect("commit");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM public.leopard_events WHERE state = 'completed'",
        )
        .fetch_one(tenancy.db.pool())
        .await
        .expect("count");
        if done == 3 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{done} completed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.shutdown().await;
    let mut tx = context.begin().await.expect("tx");
    let created: i64 = sqlx::query_scalar("SELECT created FROM client_stats")
        .fetch_one(&mut *tx)
        .await
        .expect("stats");
    tx.commit().await.expect("commit");
    assert_eq!(created, 2);
}
