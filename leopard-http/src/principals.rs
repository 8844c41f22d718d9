//! The principal cache: the [`Principal`] of each (tenant, user) kept in memory, so an
//! authenticated request whose user was seen recently costs no database round trip before its
//! handler.
//!
//! Correctness comes first, speed second:
//!
//! - The cache answers only while it is **live**: the application's invalidation listener
//!   (PostgreSQL `LISTEN`, see the server's `principals` module) is connected. A cache that
//!   is not live is bypassed; becoming live again starts from empty, since notices sent while
//!   the listener was away are lost.
//! - Every change that can alter a principal (a user's activity, groups, permissions, branches
//!   and regions; a group's permissions; a branch's region or deletion) sends a notice naming
//!   the tenant's schema; the listener of every instance drops that tenant's entries
//!   ([`PrincipalCache::invalidate_schema`]). The instance that made the change also drops
//!   them itself right after its commit, so its very next request sees the change.
//! - A load that raced with an invalidation is not stored: each load records the cache's
//!   generation first and stores only if no invalidation happened meanwhile.
//! - Entries also expire after a time-to-live (a bound, not the mechanism), and the cache is
//!   bounded in size (it starts over when full).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use leopard_rbac::Principal;
use leopard_tenancy::TenantInfo;

/// The default time-to-live of an entry.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// The default bound on the number of entries.
pub const DEFAULT_CAPACITY: usize = 100_000;

#[derive(Debug)]
struct Entry {
    principal: Arc<Principal>,
    tenant_id: i64,
    stored: Instant,
}

/// See the module documentation.
#[derive(Debug)]
pub struct PrincipalCache {
    /// Per tenant schema, per user id.
    entries: RwLock<HashMap<String, HashMap<i64, Entry>>>,
    live: AtomicBool,
    generation: AtomicU64,
    ttl: Duration,
    capacity: usize,
}

impl Default for PrincipalCache {
    fn default() -> Self {
        Self::new(DEFAULT_TTL, DEFAULT_CAPACITY)
    }
}

impl PrincipalCache {
    /// An empty cache, not live until [`PrincipalCache::set_live`].
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            live: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            ttl,
            capacity: capacity.max(1),
        }
    }

    /// Whether the cache answers (its invalidation listener is connected).
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Marks the cache live (listener connected: it starts empty) or not (bypassed).
    pub fn set_live(&self, live: bool) {
        self.invalidate_all();
        self.live.store(live, Ordering::Release);
    }

    /// The current generation, to pass to [`PrincipalCache::store`] after a load.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The cached principal of `user_id` in `tenant`, if live, present and fresh.
    pub fn get(&self, tenant: &TenantInfo, user_id: i64) -> Option<Arc<Principal>> {
        if !self.is_live() {
            return None;
        }
        let entries = self.entries.read().ok()?;
        let entry = entries.get(tenant.schema.as_str())?.get(&user_id)?;
        (entry.tenant_id == tenant.id.0 && entry.stored.elapsed() < self.ttl)
            .then(|| Arc::clone(&entry.principal))
    }

    /// Stores a principal loaded after [`PrincipalCache::generation`] answered `generation`,
    /// unless an invalidation happened since (or the cache is not live).
    pub fn store(
        &self,
        tenant: &TenantInfo,
        user_id: i64,
        principal: Arc<Principal>,
        generation: u64,
    ) {
        if !self.is_live() {
            return;
        }
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        // Checked under the write lock: invalidations take it too.
        if self.generation() != generation {
            return;
        }
        let size: usize = entries.values().map(HashMap::len).sum();
        if size >= self.capacity {
            entries.clear();
        }
        entries
            .entry(tenant.schema.as_str().to_owned())
            .or_default()
            .insert(
                user_id,
                Entry {
                    principal,
                    tenant_id: tenant.id.0,
                    stored: Instant::now(),
                },
            );
    }

    /// Drops every entry of the tenant whose schema is `schema`.
    pub fn invalidate_schema(&self, schema: &str) {
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.remove(schema);
    }

    /// Drops every entry.
    pub fn invalidate_all(&self) {
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    /// How many principals are cached.
    pub fn len(&self) -> usize {
        self.entries
            .read()
            .map_or(0, |e| e.values().map(HashMap::len).sum())
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leopard_core::{SchemaName, TenantId, TenantSlug, UserId};
    use leopard_rbac::PermissionSet;

    fn tenant(id: i64, slug: &str) -> TenantInfo {
        TenantInfo {
            id: TenantId(id),
            slug: TenantSlug::parse(slug).expect("slug"),
            schema: SchemaName::parse(&format!("tenant_{slug}")).expect("schema"),
            name: slug.to_owned(),
            is_active: true,
            status: leopard_tenancy::SubscriptionStatus::Active,
            max_users: 10,
        }
    }

    fn principal(user: i64) -> Arc<Principal> {
        Arc::new(Principal::new(
            UserId(user),
            std::iter::empty::<(String, PermissionSet)>(),
            PermissionSet::default(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        ))
    }

    #[test]
    fn a_cache_that_is_not_live_stores_and_answers_nothing() {
        let cache = PrincipalCache::default();
        let acme = tenant(1, "acme");
        cache.store(&acme, 7, principal(7), cache.generation());
        assert!(cache.get(&acme, 7).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn a_live_cache_answers_per_tenant_and_user_and_forgets_a_tenant_on_invalidation() {
        let cache = PrincipalCache::default();
        cache.set_live(true);
        let (acme, globex) = (tenant(1, "acme"), tenant(2, "globex"));
        cache.store(&acme, 7, principal(7), cache.generation());
        cache.store(&globex, 7, principal(7), cache.generation());
        assert!(cache.get(&acme, 7).is_some());
        assert!(cache.get(&acme, 8).is_none());
        cache.invalidate_schema("tenant_acme");
        assert!(cache.get(&acme, 7).is_none());
        assert!(
            cache.get(&globex, 7).is_some(),
            "the other tenant keeps its entries"
        );
        // A tenant recreated under the same schema (another registry id) misses.
        assert!(cache.get(&tenant(3, "globex"), 7).is_none());
    }

    #[test]
    fn a_load_that_raced_with_an_invalidation_is_not_stored() {
        let cache = PrincipalCache::default();
        cache.set_live(true);
        let acme = tenant(1, "acme");
        let before = cache.generation();
        cache.invalidate_schema("tenant_acme");
        cache.store(&acme, 7, principal(7), before);
        assert!(cache.get(&acme, 7).is_none());
    }

    #[test]
    fn entries_expire_and_going_offline_empties_the_cache() {
        let cache = PrincipalCache::new(Duration::ZERO, 10);
        cache.set_live(true);
        let acme = tenant(1, "acme");
        cache.store(&acme, 7, principal(7), cache.generation());
        assert!(cache.get(&acme, 7).is_none(), "expired at once");
        let cache = PrincipalCache::new(DEFAULT_TTL, 2);
        cache.set_live(true);
        for user in 1..=3 {
            cache.store(&acme, user, principal(user), cache.generation());
        }
        assert!(cache.len() <= 2, "bounded");
        cache.set_live(false);
        assert!(cache.is_empty());
        assert!(cache.get(&acme, 3).is_none());
    }
}
