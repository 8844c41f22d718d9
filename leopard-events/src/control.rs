//! Operating the bus: pause and resume (global or per tenant), status, retry of failed events,
//! retention pruning. Every function takes the pool (public schema only).

use std::time::Duration;

use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::EventsError;

/// The tenant id of the global pause row.
pub const GLOBAL: i64 = 0;

/// Pauses processing for `tenant_id` (or everything with `None`). Workers stop claiming the
/// tenant's events at their next claim (≤ one poll interval; at once when woken).
pub async fn pause(
    pool: &PgPool,
    tenant_id: Option<i64>,
    reason: Option<&str>,
) -> Result<(), EventsError> {
    sqlx::query(
        "INSERT INTO public.leopard_event_pauses (tenant_id, reason) VALUES ($1, $2)
         ON CONFLICT (tenant_id) DO UPDATE SET reason = EXCLUDED.reason, paused_at = now()",
    )
    .bind(tenant_id.unwrap_or(GLOBAL))
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(())
}

/// Resumes `tenant_id` (or the global pause with `None`) and wakes every worker to drain the
/// backlog. Returns whether a pause was lifted.
pub async fn resume(pool: &PgPool, tenant_id: Option<i64>) -> Result<bool, EventsError> {
    let lifted = sqlx::query("DELETE FROM public.leopard_event_pauses WHERE tenant_id = $1")
        .bind(tenant_id.unwrap_or(GLOBAL))
        .execute(pool)
        .await?
        .rows_affected()
        > 0;
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(crate::worker::CHANNEL)
        .execute(pool)
        .await?;
    Ok(lifted)
}

/// A pause in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    /// The paused tenant, or `None` for the global pause.
    pub tenant_id: Option<i64>,
    /// Why.
    pub reason: Option<String>,
    /// Since when.
    pub paused_at: chrono::DateTime<chrono::Utc>,
}

/// Every pause in force.
pub async fn pauses(pool: &PgPool) -> Result<Vec<Pause>, EventsError> {
    let rows = sqlx::query(
        "SELECT tenant_id, reason, paused_at FROM public.leopard_event_pauses ORDER BY tenant_id",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let id: i64 = r.get("tenant_id");
            Pause {
                tenant_id: (id != GLOBAL).then_some(id),
                reason: r.get("reason"),
                paused_at: r.get("paused_at"),
            }
        })
        .collect())
}

/// Event counts of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantStatus {
    /// Registry id.
    pub tenant_id: i64,
    /// Slug.
    pub tenant_slug: String,
    /// Waiting (including scheduled retries).
    pub pending: i64,
    /// Claimed by a worker.
    pub running: i64,
    /// Done.
    pub completed: i64,
    /// Out of attempts.
    pub failed: i64,
    /// Age of the oldest pending event.
    pub oldest_pending: Option<Duration>,
    /// Whether the tenant is paused.
    pub paused: bool,
}

/// Counts by state per tenant that has events, oldest pending age and pause flags (one query).
pub async fn status(pool: &PgPool) -> Result<Vec<TenantStatus>, EventsError> {
    let rows = sqlx::query(
        "SELECT e.tenant_id, min(e.tenant_slug) AS tenant_slug,
                count(*) FILTER (WHERE state = 'pending') AS pending,
                count(*) FILTER (WHERE state = 'running') AS running,
                count(*) FILTER (WHERE state = 'completed') AS completed,
                count(*) FILTER (WHERE state = 'failed') AS failed,
                extract(epoch FROM now() - min(occurred_at) FILTER (WHERE state = 'pending'))::float8
                    AS oldest_pending,
                EXISTS (SELECT 1 FROM public.leopard_event_pauses p WHERE p.tenant_id = e.tenant_id)
                    AS paused
           FROM public.leopard_events e GROUP BY e.tenant_id ORDER BY 2",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| TenantStatus {
            tenant_id: r.get("tenant_id"),
            tenant_slug: r.get("tenant_slug"),
            pending: r.get("pending"),
            running: r.get("running"),
            completed: r.get("completed"),
            failed: r.get("failed"),
            oldest_pending: r
                .get::<Option<f64>, _>("oldest_pending")
                .map(|s| Duration::from_secs_f64(s.max(0.0))),
            paused: r.get("paused"),
        })
        .collect())
}

/// Makes failed event `id` pending again with a fresh attempt budget. Returns whether it was
/// failed.
pub async fn retry(pool: &PgPool, id: Uuid) -> Result<bool, EventsError> {
    let done = sqlx::query(
        "UPDATE public.leopard_events
            SET state = 'pending', run_at = now(), attempts = 0, completed_at = NULL
          WHERE id = $1 AND state = 'failed'",
    )
    .bind(id)
    .execute(pool)
    .await?
    .rows_affected();
    if done == 0 {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM public.leopard_events WHERE id = $1)")
                .bind(id)
                .fetch_one(pool)
                .await?;
        if !exists {
            return Err(EventsError::UnknownEvent(id));
        }
    }
    wake_all(pool).await?;
    Ok(done > 0)
}

/// Makes every failed event (of `tenant_id`, or of all tenants) pending again. Returns how many.
pub async fn retry_failed(pool: &PgPool, tenant_id: Option<i64>) -> Result<u64, EventsError> {
    let done = sqlx::query(
        "UPDATE public.leopard_events
            SET state = 'pending', run_at = now(), attempts = 0, completed_at = NULL
          WHERE state = 'failed' AND ($1::bigint IS NULL OR tenant_id = $1)",
    )
    .bind(tenant_id)
    .execute(pool)
    .await?
    .rows_affected();
    wake_all(pool).await?;
    Ok(done)
}

async fn wake_all(pool: &PgPool) -> Result<(), EventsError> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(crate::worker::CHANNEL)
        .execute(pool)
        .await?;
    Ok(())
}

/// How long finished events are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Completed events (default 7 days).
    pub completed: Duration,
    /// Failed events (default 30 days; they stay retryable until then).
    pub failed: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            completed: Duration::from_secs(7 * 24 * 3600),
            failed: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Deletes completed and failed events older than `retention`. Returns (completed, failed)
/// deleted.
pub async fn prune(pool: &PgPool, retention: Retention) -> Result<(u64, u64), EventsError> {
    let row = sqlx::query(
        "WITH gone AS (
            DELETE FROM public.leopard_events
             WHERE (state = 'completed' AND completed_at < now() - $1::float8 * interval '1 second')
                OR (state = 'failed' AND completed_at < now() - $2::float8 * interval '1 second')
            RETURNING state)
         SELECT count(*) FILTER (WHERE state = 'completed') AS completed,
                count(*) FILTER (WHERE state = 'failed') AS failed FROM gone",
    )
    .bind(retention.completed.as_secs_f64())
    .bind(retention.failed.as_secs_f64())
    .fetch_one(pool)
    .await?;
    Ok((
        u64::try_from(row.get::<i64, _>("completed")).unwrap_or(0),
        u64::try_from(row.get::<i64, _>("failed")).unwrap_or(0),
    ))
}
