//! Tenant lifecycle: provision in one transaction, change status, deprovision, manage domains.
//!
//! Every change to the registry tables fires the `leopard_tenancy` notification on commit, so
//! running servers see it within milliseconds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use leopard_core::{HostName, SchemaName, TenantId, TenantSlug};
use sqlx::postgres::{PgConnection, PgPool, PgRow};
use sqlx::Row;

use crate::migrate::{apply_one, execute_script, millis, MigrationSet, LEDGER_DDL};
use crate::model::{NewTenant, SubscriptionStatus, Tenant};
use crate::registry::ResolveConfig;
use crate::TenancyError;

/// A provisioned tenant and how long provisioning took.
#[derive(Debug, Clone)]
pub struct Provisioned {
    /// The new registry row.
    pub tenant: Tenant,
    /// Wall time of the provisioning transaction (also stored as `provision_ms`).
    pub duration: Duration,
}

/// Creates, changes and removes tenants.
#[derive(Debug, Clone)]
pub struct Provisioner {
    pool: PgPool,
    set: Arc<MigrationSet>,
    config: ResolveConfig,
}

const TENANT_COLUMNS: &str = "t.id, t.slug, t.schema_name, t.name, t.is_active,
    t.subscription_status, t.settings, t.max_users, t.contact_email, t.contact_phone,
    t.provision_ms, t.created_at, t.updated_at,
    coalesce((SELECT array_agg(d.domain ORDER BY d.is_primary DESC, d.domain)
                FROM public.leopard_domains d WHERE d.tenant_id = t.id), '{}') AS domains";

impl Provisioner {
    /// A provisioner applying `set`'s tenant migrations, deriving domains from `config`.
    pub fn new(pool: PgPool, set: Arc<MigrationSet>, config: ResolveConfig) -> Self {
        Self { pool, set, config }
    }

    /// Creates the tenant row, its schema with every tenant migration applied, its domains
    /// (`<slug>-<app>.<base>` as primary, `<slug>.<base>`, plus `new.domains`) and its migration
    /// status — all in one transaction, so a failure leaves nothing behind.
    pub async fn create(&self, new: NewTenant) -> Result<Provisioned, TenancyError> {
        let started = Instant::now();
        let mut tx = self.pool.begin().await?;
        self.create_in(&mut tx, &new, started).await?;
        tx.commit().await?;
        let duration = started.elapsed();
        tracing::info!(
            slug = new.slug.as_str(),
            ms = duration.as_millis() as u64,
            "provisioned tenant"
        );
        let tenant = self.get(&new.slug).await?;
        Ok(Provisioned { tenant, duration })
    }

    /// The work of [`Provisioner::create`] inside the caller's transaction `conn` (restoring a
    /// backup loads its rows in the same transaction, so a refused load leaves no tenant).
    /// Returns the new registry id.
    pub(crate) async fn create_in(
        &self,
        conn: &mut PgConnection,
        new: &NewTenant,
        started: Instant,
    ) -> Result<i64, TenancyError> {
        new.validate()?;
        let schema = new.slug.schema_name();
        let mut domains: Vec<String> = self
            .config
            .derived_domains(&new.slug)?
            .iter()
            .map(|d| d.as_str().to_owned())
            .collect();
        for extra in &new.domains {
            if !domains.iter().any(|d| d == extra.as_str()) {
                domains.push(extra.as_str().to_owned());
            }
        }
        let primary: Vec<bool> = (0..domains.len()).map(|i| i == 0).collect();

        let id: i64 = sqlx::query_scalar(
            "INSERT INTO public.leopard_tenants
                (slug, schema_name, name, subscription_status, settings, max_users,
                 contact_email, contact_phone)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             RETURNING id",
        )
        .bind(new.slug.as_str())
        .bind(schema.as_str())
        .bind(new.name.trim())
        .bind(new.status.as_str())
        .bind(&new.settings)
        .bind(new.max_users)
        .bind(&new.contact_email)
        .bind(&new.contact_phone)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| TenancyError::from_insert(e, "tenant", new.slug.as_str()))?;

        sqlx::query(
            "INSERT INTO public.leopard_domains (domain, tenant_id, is_primary)
             SELECT d, $1, p FROM unnest($2::text[], $3::bool[]) AS x(d, p)",
        )
        .bind(id)
        .bind(&domains)
        .bind(&primary)
        .execute(&mut *conn)
        .await
        .map_err(|e| TenancyError::from_insert(e, "domain", &domains.join(", ")))?;

        // CREATE SCHEMA stays a statement of its own (Citus schema-based sharding needs that).
        execute_script(conn, &format!("CREATE SCHEMA {}", schema.quoted()))
            .await
            .map_err(|e| TenancyError::from_insert(e, "schema", schema.as_str()))?;
        execute_script(
            conn,
            &format!(
                "SET LOCAL search_path TO {}, public; {LEDGER_DDL}",
                schema.quoted()
            ),
        )
        .await?;
        for migration in self.set.tenant() {
            apply_one(conn, &schema, migration).await?;
        }
        let elapsed = millis(started.elapsed());
        sqlx::query(
            "INSERT INTO public.leopard_tenant_migrations
                (tenant_id, version, state, started_at, finished_at, duration_ms)
             VALUES ($1, $2, 'ok', now(), now(), $3)",
        )
        .bind(id)
        .bind(self.set.latest_tenant_version())
        .bind(elapsed)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE public.leopard_tenants SET provisioned_at = now(), provision_ms = $2
              WHERE id = $1",
        )
        .bind(id)
        .bind(elapsed)
        .execute(&mut *conn)
        .await?;
        Ok(id)
    }

    /// The migration set this provisioner applies.
    pub(crate) fn migration_set(&self) -> &MigrationSet {
        &self.set
    }

    /// The pool this provisioner works on.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// One tenant by slug.
    pub async fn get(&self, slug: &TenantSlug) -> Result<Tenant, TenancyError> {
        tenant_by_slug(&self.pool, slug).await
    }

    /// Every tenant, by slug.
    pub async fn list(&self) -> Result<Vec<Tenant>, TenancyError> {
        let rows = sqlx::query(&format!(
            "SELECT {TENANT_COLUMNS} FROM public.leopard_tenants t ORDER BY t.slug"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(tenant_from_row).collect()
    }

    /// Sets the subscription status; `ACTIVE` and `TRIAL` also set `is_active`.
    pub async fn set_status(
        &self,
        slug: &TenantSlug,
        status: SubscriptionStatus,
    ) -> Result<Tenant, TenancyError> {
        let updated = sqlx::query(
            "UPDATE public.leopard_tenants
                SET subscription_status = $2,
                    is_active = CASE WHEN $3 THEN true ELSE is_active END,
                    updated_at = now()
              WHERE slug = $1",
        )
        .bind(slug.as_str())
        .bind(status.as_str())
        .bind(status.is_serving())
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(TenancyError::TenantNotFound(slug.to_string()));
        }
        self.get(slug).await
    }

    /// Turns the tenant off (`is_active = false`); its data stays.
    pub async fn deactivate(&self, slug: &TenantSlug) -> Result<Tenant, TenancyError> {
        let updated = sqlx::query(
            "UPDATE public.leopard_tenants SET is_active = false, updated_at = now()
              WHERE slug = $1",
        )
        .bind(slug.as_str())
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(TenancyError::TenantNotFound(slug.to_string()));
        }
        self.get(slug).await
    }

    /// Drops the tenant's schema and deletes its rows (domains and status cascade), in one
    /// transaction. `confirmation` must repeat the slug.
    pub async fn purge(&self, slug: &TenantSlug, confirmation: &str) -> Result<(), TenancyError> {
        if confirmation != slug.as_str() {
            return Err(TenancyError::NotConfirmed(
                "drop a tenant's schema and data",
            ));
        }
        let mut tx = self.pool.begin().await?;
        let schema: Option<String> = sqlx::query_scalar(
            "DELETE FROM public.leopard_tenants WHERE slug = $1 RETURNING schema_name",
        )
        .bind(slug.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let schema = schema.ok_or_else(|| TenancyError::TenantNotFound(slug.to_string()))?;
        let schema = SchemaName::parse(&schema)?;
        execute_script(
            &mut tx,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", schema.quoted()),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(slug = slug.as_str(), "purged tenant");
        Ok(())
    }

    /// Adds a domain to a tenant; `primary` makes it the tenant's only primary domain.
    pub async fn add_domain(
        &self,
        slug: &TenantSlug,
        domain: &HostName,
        primary: bool,
    ) -> Result<(), TenancyError> {
        let mut tx = self.pool.begin().await?;
        let id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM public.leopard_tenants WHERE slug = $1")
                .bind(slug.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        let id = id.ok_or_else(|| TenancyError::TenantNotFound(slug.to_string()))?;
        if primary {
            sqlx::query(
                "UPDATE public.leopard_domains SET is_primary = false WHERE tenant_id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO public.leopard_domains (domain, tenant_id, is_primary) VALUES ($1, $2, $3)",
        )
        .bind(domain.as_str())
        .bind(id)
        .bind(primary)
        .execute(&mut *tx)
        .await
        .map_err(|e| TenancyError::from_insert(e, "domain", domain.as_str()))?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a domain from a tenant.
    pub async fn remove_domain(
        &self,
        slug: &TenantSlug,
        domain: &HostName,
    ) -> Result<(), TenancyError> {
        let deleted = sqlx::query(
            "DELETE FROM public.leopard_domains d USING public.leopard_tenants t
              WHERE d.tenant_id = t.id AND t.slug = $1 AND d.domain = $2",
        )
        .bind(slug.as_str())
        .bind(domain.as_str())
        .execute(&self.pool)
        .await?;
        if deleted.rows_affected() == 0 {
            return Err(TenancyError::TenantNotFound(format!("{domain} of {slug}")));
        }
        Ok(())
    }
}

/// Tenant `slug` read through `executor` (a pool, or a transaction whose snapshot it must see).
pub(crate) async fn tenant_by_slug<'e, E>(
    executor: E,
    slug: &TenantSlug,
) -> Result<Tenant, TenancyError>
where
    E: sqlx::PgExecutor<'e>,
{
    let row = sqlx::query(&format!(
        "SELECT {TENANT_COLUMNS} FROM public.leopard_tenants t WHERE t.slug = $1"
    ))
    .bind(slug.as_str())
    .fetch_optional(executor)
    .await?
    .ok_or_else(|| TenancyError::TenantNotFound(slug.to_string()))?;
    tenant_from_row(&row)
}

fn tenant_from_row(row: &PgRow) -> Result<Tenant, TenancyError> {
    Ok(Tenant {
        id: TenantId(row.try_get("id")?),
        slug: TenantSlug::parse(&row.try_get::<String, _>("slug")?)?,
        schema_name: SchemaName::parse(&row.try_get::<String, _>("schema_name")?)?,
        name: row.try_get("name")?,
        is_active: row.try_get("is_active")?,
        subscription_status: SubscriptionStatus::parse(
            &row.try_get::<String, _>("subscription_status")?,
        )?,
        settings: row.try_get("settings")?,
        max_users: row.try_get("max_users")?,
        contact_email: row.try_get("contact_email")?,
        contact_phone: row.try_get("contact_phone")?,
        domains: row.try_get("domains")?,
        provision_ms: row.try_get("provision_ms")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
