//! The tenant transactions' connection pool, through a pool of one connection: a committed
//! transaction's connection is reused as it is, one dropped open is rolled back before it is
//! reused (nothing of it, and not its schema, reaches the next transaction), one dropped in the
//! middle of a statement is settled, a connection killed while idle is replaced without the
//! caller noticing, and the pool closes with the server's pool.

mod common;

use std::time::Duration;

use common::{Env, MARKER};
use leopard::tenancy::{TenancyError, TenantContext, TenantTx};

/// The backend process id and the current schema of `tx`.
async fn backend(tx: &mut TenantTx) -> (i32, String) {
    sqlx::query_as("SELECT pg_backend_pid(), current_schema()::text")
        .fetch_one(&mut **tx)
        .await
        .expect("backend query")
}

/// How many `items` rows `ctx`'s tenant has.
async fn items(ctx: &TenantContext) -> i64 {
    let mut tx = ctx.begin().await.expect("begin");
    let n = sqlx::query_scalar("SELECT count(*) FROM items")
        .fetch_one(&mut *tx)
        .await
        .expect("count");
    tx.commit().await.expect("commit");
    n
}

/// A database with tenants `pa` and `pb`, whose server pool (and so tenant pool) has one
/// connection.
async fn two_tenants() -> (Env, TenantContext, TenantContext) {
    let env = Env::with_migrations(vec![MARKER], 1).await;
    env.tenant("pa").await;
    env.tenant("pb").await;
    let registry = env.registry().await;
    let a = registry.context_for("pa").expect("pa");
    let b = registry.context_for("pb").expect("pb");
    (env, a, b)
}

#[tokio::test]
async fn a_committed_transaction_leaves_its_connection_for_the_next_one_of_another_tenant() {
    let (_env, a, b) = two_tenants().await;
    let mut tx = a.begin().await.expect("begin a");
    let (pid_a, schema_a) = backend(&mut tx).await;
    tx.commit().await.expect("commit a");

    let mut tx = b.begin().await.expect("begin b");
    let (pid_b, schema_b) = backend(&mut tx).await;
    tx.commit().await.expect("commit b");

    assert_eq!(pid_a, pid_b, "the one connection is reused");
    assert_eq!(schema_a, "tenant_pa");
    assert_eq!(
        schema_b, "tenant_pb",
        "the first tenant's schema did not carry over"
    );
}

#[tokio::test]
async fn a_transaction_dropped_open_is_rolled_back_before_its_connection_is_reused() {
    let (_env, a, b) = two_tenants().await;
    let mut tx = a.begin().await.expect("begin a");
    let (pid_a, _) = backend(&mut tx).await;
    sqlx::query("INSERT INTO items (label) VALUES ('dropped')")
        .execute(&mut *tx)
        .await
        .expect("insert");
    drop(tx);

    let mut tx = b.begin().await.expect("begin b");
    let (pid_b, schema_b) = backend(&mut tx).await;
    tx.commit().await.expect("commit b");

    assert_eq!(
        pid_a, pid_b,
        "the rolled-back connection is reused, not replaced"
    );
    assert_eq!(schema_b, "tenant_pb");
    assert_eq!(items(&a).await, 0, "the dropped insert was rolled back");
}

#[tokio::test]
async fn a_transaction_dropped_in_the_middle_of_a_statement_is_settled_and_the_pool_goes_on() {
    let (_env, a, b) = two_tenants().await;
    let mut tx = a.begin().await.expect("begin a");
    sqlx::query("INSERT INTO items (label) VALUES ('cancelled')")
        .execute(&mut *tx)
        .await
        .expect("insert");
    let slow = sqlx::query("SELECT pg_sleep(0.5)").execute(&mut *tx);
    assert!(
        tokio::time::timeout(Duration::from_millis(50), slow)
            .await
            .is_err(),
        "the statement was cut short"
    );
    drop(tx);

    let mut tx = b
        .begin()
        .await
        .expect("begin b after the cancelled statement");
    let (_, schema) = backend(&mut tx).await;
    tx.commit().await.expect("commit b");
    assert_eq!(schema, "tenant_pb");
    assert_eq!(
        items(&a).await,
        0,
        "the cancelled transaction was rolled back"
    );
}

#[tokio::test]
async fn a_connection_killed_while_idle_is_replaced_and_the_next_transaction_succeeds() {
    let (env, a, _b) = two_tenants().await;
    let mut tx = a.begin().await.expect("begin");
    let (pid, _) = backend(&mut tx).await;
    tx.commit().await.expect("commit");

    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(env.db.pool())
        .await
        .expect("terminate");
    assert!(killed);
    // Wait until the backend is gone, so the idle connection is really dead.
    for _ in 0..100 {
        let alive: bool =
            sqlx::query_scalar("SELECT count(*) > 0 FROM pg_stat_activity WHERE pid = $1")
                .bind(pid)
                .fetch_one(env.db.pool())
                .await
                .expect("activity");
        if !alive {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut tx = a
        .begin()
        .await
        .expect("begin after the kill is retried once");
    let (new_pid, schema) = backend(&mut tx).await;
    tx.commit().await.expect("commit");
    assert_ne!(new_pid, pid, "a fresh connection replaced the killed one");
    assert_eq!(schema, "tenant_pa");
}

#[tokio::test]
async fn closing_the_server_pool_closes_the_tenant_pool() {
    let (env, a, _b) = two_tenants().await;
    let tx = a.begin().await.expect("begin");
    tx.commit().await.expect("commit");

    tokio::time::timeout(Duration::from_secs(10), env.db.pool().close())
        .await
        .expect("closing does not wait for the tenant pool");
    let err = a.begin().await.expect_err("a closed pool opens nothing");
    assert!(
        matches!(err, TenancyError::Database(sqlx::Error::PoolClosed)),
        "{err:?}"
    );
}
