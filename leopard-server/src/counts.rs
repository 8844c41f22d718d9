//! The count cache: a list's total (`count` of `{count, next, previous, results}`) kept in
//! memory, so a page of a large list does not count every live row on every request.
//!
//! What a cached count is, and why it is never stale past a notice:
//!
//! - **Key**: the tenant (schema and registry id), the count statement's text and its encoded
//!   arguments (their `Debug` form lists every byte). Two requests share an entry only when
//!   they would run the very same statement with the very same arguments, so the policy scope
//!   (bound as arguments by `leopard_rbac::filter`) and every filter are part of the key.
//! - **Dependencies**: every tenant table the statement names ([`TABLES`], matched as whole
//!   words of the statement). A statement naming a table that has no change trigger is never
//!   cached ([`UNTRACKED`]).
//! - **Invalidation**: tenant migration 17 gives every table of [`TRACKED`] a statement-level
//!   trigger that sends `<schema>.<table>` on [`CHANNEL`] when its transaction commits. The
//!   notification listener of each server process ([`crate::realtime::Listener`]) bumps that
//!   table's version ([`CountCache::changed`]); an entry is served only while the versions of
//!   all its tables are those it was counted under. A count that raced with a change is
//!   therefore never served: its versions were read before the count's transaction began.
//! - **Live only while the listener is connected** (as the principal cache): not live, the
//!   cache is bypassed; live again, it starts empty, since notices sent meanwhile are lost.
//! - **The instance that writes reads its own writes**: after a successful request that may
//!   write ([`scope`], any method but GET/HEAD/OPTIONS), the response waits until this
//!   process's listener has received a fence notice sent after the request's commit
//!   ([`CountCache::fence`]). PostgreSQL delivers notices in commit order, so the write's own
//!   table notices are in by then. Other instances see it when its notice arrives
//!   (milliseconds); the page's rows themselves are never cached.
//! - Entries also expire after [`DEFAULT_TTL`] (a bound, not the mechanism), and the cache is
//!   bounded in size (it starts over when full).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use leopard_http::ApiError;
use leopard_tenancy::TenantContext;
use sqlx::postgres::{PgArguments, PgPool};

/// The PostgreSQL channel of table-change notices (payload `<schema>.<table>`; a fence is
/// `!fence:<sequence>`).
pub const CHANNEL: &str = "leopard_changes";

/// The default time-to-live of an entry.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// The default bound on the number of entries.
pub const DEFAULT_CAPACITY: usize = 50_000;

/// How long a writing request waits for its fence before it drops the tenant's counts instead.
const FENCE_TIMEOUT: Duration = Duration::from_secs(1);

/// Tenant tables with the change trigger of tenant migration 17.
pub const TRACKED: &[&str] = &[
    "agents",
    "application_types",
    "branches",
    "broad_fields",
    "calendar_events",
    "client_activities",
    "clients",
    "college_applications",
    "content_types",
    "country_names",
    "course_levels",
    "courses",
    "employments",
    "group_permissions",
    "groups",
    "institute_contact_persons",
    "institute_intakes",
    "institute_locations",
    "institute_requirements",
    "institutes",
    "language_exams",
    "narrow_fields",
    "notes",
    "notifications",
    "passports",
    "permissions",
    "proficiencies",
    "profile_pictures",
    "qualifications",
    "regions",
    "reminders",
    "stages",
    "tasks",
    "user_branches",
    "user_groups",
    "user_permissions",
    "user_regions",
    "users",
    "visa_applications",
    "visa_categories",
    "visa_types",
];

/// Tenant tables without the trigger (written on every request or so, and never counted by a
/// list): a statement naming one of them is not cached.
pub const UNTRACKED: &[&str] = &[
    "audit_log",
    "leopard_migrations",
    "refresh_tokens",
    "web_sessions",
];

/// Every table of a tenant's schema: [`TRACKED`] and [`UNTRACKED`].
pub fn tables() -> impl Iterator<Item = &'static str> {
    TRACKED.iter().chain(UNTRACKED).copied()
}

/// The tracked tables `sql` names (as whole words), or `None` if it names an untracked one.
fn dependencies(sql: &str) -> Option<Vec<&'static str>> {
    let mut deps = Vec::new();
    for word in sql
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
    {
        if UNTRACKED.contains(&word) {
            return None;
        }
        if let Some(table) = TRACKED.iter().find(|t| **t == word) {
            if !deps.contains(table) {
                deps.push(*table);
            }
        }
    }
    Some(deps)
}

#[derive(Debug)]
struct Entry {
    count: i64,
    /// The versions of the statement's tables when it was counted.
    versions: Vec<(&'static str, u64)>,
    stored: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    /// Per schema, per table: bumped by each change notice.
    versions: HashMap<String, HashMap<&'static str, u64>>,
    /// Per schema: tenant id, statement and arguments ([`key`]) → entry.
    entries: HashMap<String, HashMap<String, Entry>>,
    size: usize,
}

impl Inner {
    /// Whether every table of `versions` still has the version noted there.
    fn current(&self, schema: &str, versions: &[(&'static str, u64)]) -> bool {
        versions.iter().all(|(t, v)| self.version(schema, t) == *v)
    }

    fn version(&self, schema: &str, table: &str) -> u64 {
        self.versions
            .get(schema)
            .and_then(|t| t.get(table))
            .copied()
            .unwrap_or(0)
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct CountCache {
    inner: RwLock<Inner>,
    live: AtomicBool,
    /// Bumped when the cache starts over (connected, lost, full).
    epoch: AtomicU64,
    ttl: Duration,
    capacity: usize,
    /// The fences this process sent, and the last its listener received.
    fence_sent: AtomicU64,
    fence_seen: tokio::sync::watch::Sender<u64>,
}

impl Default for CountCache {
    fn default() -> Self {
        Self::new(DEFAULT_TTL, DEFAULT_CAPACITY)
    }
}

/// What [`CountCache::lookup`] found: the count, or what to store it with once counted.
#[derive(Debug)]
pub enum Lookup {
    /// A valid cached count.
    Hit(i64),
    /// Count it, then [`CountCache::store`] this ticket with the result.
    Miss(Ticket),
    /// Not cacheable (not live, or the statement names an untracked table): just count.
    Bypass,
}

/// An entry's key within its schema: the tenant's registry id (a schema dropped and made
/// again belongs to another tenant), the statement and its encoded arguments.
fn key(tenant_id: i64, sql: &str, args: &PgArguments) -> String {
    format!("{tenant_id}\u{0}{sql}\u{0}{args:?}")
}

/// What a miss needs to store its count: taken before the count's transaction began.
#[derive(Debug)]
pub struct Ticket {
    schema: String,
    key: String,
    versions: Vec<(&'static str, u64)>,
    epoch: u64,
}

impl CountCache {
    /// An empty cache, not live until [`CountCache::set_live`].
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            inner: RwLock::new(Inner::default()),
            live: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            ttl,
            capacity: capacity.max(1),
            fence_sent: AtomicU64::new(0),
            fence_seen: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Whether the cache answers (its invalidation listener is connected).
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Marks the cache live (listener connected: it starts empty) or not (bypassed).
    pub fn set_live(&self, live: bool) {
        self.clear();
        self.live.store(live, Ordering::Release);
        if !live {
            // Writers waiting for a fence stop waiting (their counts were just dropped).
            self.fence_seen
                .send_replace(self.fence_sent.load(Ordering::Acquire));
        }
    }

    fn clear(&self) {
        let mut inner = self.write();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        inner.entries.clear();
        inner.size = 0;
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached count of `sql` with `args` in the tenant, or a ticket to store it with.
    pub fn lookup(&self, schema: &str, tenant_id: i64, sql: &str, args: &PgArguments) -> Lookup {
        if !self.is_live() {
            return Lookup::Bypass;
        }
        let key = key(tenant_id, sql, args);
        let Ok(inner) = self.inner.read() else {
            return Lookup::Bypass;
        };
        if let Some(entry) = inner.entries.get(schema).and_then(|e| e.get(&key)) {
            if inner.current(schema, &entry.versions) && entry.stored.elapsed() < self.ttl {
                return Lookup::Hit(entry.count);
            }
        }
        // A miss: the statement's tables, with their versions before it is counted.
        let Some(deps) = dependencies(sql) else {
            return Lookup::Bypass;
        };
        let versions = deps
            .into_iter()
            .map(|t| (t, inner.version(schema, t)))
            .collect();
        Lookup::Miss(Ticket {
            schema: schema.to_owned(),
            key,
            versions,
            epoch: self.epoch.load(Ordering::Acquire),
        })
    }

    /// Stores `count`, counted after `ticket` was taken, unless the cache started over since
    /// (a table that changed meanwhile has a newer version: the entry is simply never served).
    pub fn store(&self, ticket: Ticket, count: i64) {
        if !self.is_live() {
            return;
        }
        let mut inner = self.write();
        // Checked under the write lock: starting over takes it too.
        if self.epoch.load(Ordering::Acquire) != ticket.epoch {
            return;
        }
        if inner.size >= self.capacity {
            inner.entries.clear();
            inner.size = 0;
        }
        let previous = inner.entries.entry(ticket.schema).or_default().insert(
            ticket.key,
            Entry {
                count,
                versions: ticket.versions,
                stored: Instant::now(),
            },
        );
        if previous.is_none() {
            inner.size += 1;
        }
    }

    /// A notice: `table` of the tenant whose schema is `schema` changed.
    pub fn changed(&self, schema: &str, table: &str) {
        let Some(table) = TRACKED.iter().find(|t| **t == table) else {
            return;
        };
        let mut inner = self.write();
        *inner
            .versions
            .entry(schema.to_owned())
            .or_default()
            .entry(table)
            .or_insert(0) += 1;
    }

    /// A notice on [`CHANNEL`], as the listener received it.
    pub fn notice(&self, payload: &str) {
        if let Some(seq) = payload.strip_prefix("!fence:") {
            if let Ok(seq) = seq.parse::<u64>() {
                self.fence_seen.send_if_modified(|seen| {
                    let newer = seq > *seen;
                    if newer {
                        *seen = seq;
                    }
                    newer
                });
            }
        } else if let Some((schema, table)) = payload.split_once('.') {
            self.changed(schema, table);
        }
    }

    /// Waits until this process's listener has received every change notice committed before
    /// now: sends a fence notice and waits for it (or [`FENCE_TIMEOUT`], after which the
    /// tenant's counts are dropped instead).
    pub async fn fence(&self, pool: &PgPool, schema: &str) {
        if !self.is_live() {
            return;
        }
        let seq = self.fence_sent.fetch_add(1, Ordering::AcqRel) + 1;
        let mut seen = self.fence_seen.subscribe();
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(format!("!fence:{seq}"))
            .execute(pool)
            .await;
        let arrived = sent.is_ok()
            && tokio::time::timeout(FENCE_TIMEOUT, seen.wait_for(|s| *s >= seq))
                .await
                .is_ok_and(|r| r.is_ok());
        if !arrived {
            tracing::warn!(
                schema,
                "count fence did not arrive; dropping the tenant's counts"
            );
            let mut inner = self.write();
            self.epoch.fetch_add(1, Ordering::AcqRel);
            if let Some(dropped) = inner.entries.remove(schema) {
                inner.size -= dropped.len();
            }
        }
    }

    /// How many counts are cached.
    pub fn len(&self) -> usize {
        self.inner.read().map_or(0, |i| i.size)
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The request's tenant and the cache, for [`count`] (set by [`scope`]).
#[derive(Debug, Clone)]
struct RequestScope {
    cache: Arc<CountCache>,
    schema: Arc<str>,
    tenant_id: i64,
}

tokio::task_local! {
    static SCOPE: RequestScope;
}

/// `SELECT count(*) …` (`sql` with `args`) on `conn`, from the cache of the request's tenant
/// when it holds a valid count. Outside a request ([`scope`]), it simply counts.
pub async fn count(
    conn: &mut sqlx::PgConnection,
    sql: &str,
    args: PgArguments,
) -> Result<i64, ApiError> {
    let scope = SCOPE.try_with(Clone::clone).ok();
    let lookup = match &scope {
        Some(s) => s.cache.lookup(&s.schema, s.tenant_id, sql, &args),
        None => Lookup::Bypass,
    };
    let ticket = match lookup {
        Lookup::Hit(count) => return Ok(count),
        Lookup::Miss(ticket) => Some(ticket),
        Lookup::Bypass => None,
    };
    let count: i64 = sqlx::query_scalar_with(sql, args)
        .fetch_one(&mut *conn)
        .await?;
    if let (Some(scope), Some(ticket)) = (scope, ticket) {
        scope.cache.store(ticket, count);
    }
    Ok(count)
}

/// What [`scope`] needs: the cache and the pool its fences are sent through.
#[derive(Debug, Clone)]
pub struct Counts {
    /// The cache (not live unless a listener keeps it).
    pub cache: Arc<CountCache>,
    /// The pool.
    pub pool: PgPool,
}

/// Middleware: runs a tenant request with its count scope, and after a successful request that
/// may have written, waits for the fence (see the module documentation).
pub async fn scope(State(counts): State<Counts>, req: Request, next: Next) -> Response {
    let Some(tenant) = req
        .extensions()
        .get::<TenantContext>()
        .map(|t| t.tenant_arc())
    else {
        return next.run(req).await;
    };
    if !counts.cache.is_live() {
        return next.run(req).await;
    }
    let writes = !matches!(
        *req.method(),
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
    );
    let scope = RequestScope {
        cache: Arc::clone(&counts.cache),
        schema: Arc::from(tenant.schema.as_str()),
        tenant_id: tenant.id.0,
    };
    let response = SCOPE.scope(scope, next.run(req)).await;
    let status = response.status();
    if writes && (status.is_success() || status.is_redirection()) {
        counts
            .cache
            .fence(&counts.pool, tenant.schema.as_str())
            .await;
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(values: &[i64]) -> PgArguments {
        let mut args = PgArguments::default();
        for v in values {
            sqlx::Arguments::add(&mut args, *v).expect("bind");
        }
        args
    }

    const SQL: &str =
        "SELECT count(*) FROM notes n JOIN clients c ON c.id = n.client_id WHERE c.branch_id = $1";

    fn live() -> CountCache {
        let cache = CountCache::default();
        cache.set_live(true);
        cache
    }

    /// The ticket of a lookup that must miss.
    fn miss(cache: &CountCache, schema: &str, args: &PgArguments) -> Ticket {
        match cache.lookup(schema, 1, SQL, args) {
            Lookup::Miss(ticket) => ticket,
            other => panic!("expected a miss, got {other:?}"),
        }
    }

    fn stored(cache: &CountCache, schema: &str, args: &PgArguments, count: i64) {
        cache.store(miss(cache, schema, args), count);
    }

    #[test]
    fn a_statement_depends_on_every_tracked_table_it_names_and_never_on_untracked_ones() {
        assert_eq!(dependencies(SQL), Some(vec!["notes", "clients"]));
        assert_eq!(
            dependencies("SELECT count(*) FROM web_sessions s WHERE s.user_id = $1"),
            None
        );
        assert_eq!(dependencies("SELECT count(*) FROM clientsx"), Some(vec![]));
    }

    #[test]
    fn a_stored_count_is_served_until_one_of_its_tables_changes() {
        let cache = live();
        stored(&cache, "tenant_a", &args(&[7]), 42);
        assert!(matches!(
            cache.lookup("tenant_a", 1, SQL, &args(&[7])),
            Lookup::Hit(42)
        ));
        // Another tenant's change, or a table the statement does not name: still served.
        cache.notice("tenant_b.clients");
        cache.notice("tenant_a.tasks");
        assert!(matches!(
            cache.lookup("tenant_a", 1, SQL, &args(&[7])),
            Lookup::Hit(42)
        ));
        cache.notice("tenant_a.clients");
        assert!(matches!(
            cache.lookup("tenant_a", 1, SQL, &args(&[7])),
            Lookup::Miss(_)
        ));
    }

    #[test]
    fn other_arguments_another_tenant_id_or_another_schema_are_other_entries() {
        let cache = live();
        stored(&cache, "tenant_a", &args(&[7]), 42);
        assert!(matches!(
            cache.lookup("tenant_a", 1, SQL, &args(&[8])),
            Lookup::Miss(_)
        ));
        assert!(matches!(
            cache.lookup("tenant_a", 2, SQL, &args(&[7])),
            Lookup::Miss(_)
        ));
        assert!(matches!(
            cache.lookup("tenant_b", 1, SQL, &args(&[7])),
            Lookup::Miss(_)
        ));
    }

    #[test]
    fn a_count_that_raced_with_a_change_is_never_served() {
        let cache = live();
        let ticket = miss(&cache, "tenant_a", &args(&[7]));
        // The change commits while the count runs (under the old snapshot).
        cache.notice("tenant_a.notes");
        cache.store(ticket, 41);
        assert!(matches!(
            cache.lookup("tenant_a", 1, SQL, &args(&[7])),
            Lookup::Miss(_)
        ));
    }

    #[test]
    fn a_cache_that_is_not_live_is_bypassed_and_starts_empty_when_live_again() {
        let cache = live();
        stored(&cache, "tenant_a", &args(&[7]), 42);
        cache.set_live(false);
        assert!(matches!(
            cache.lookup("tenant_a", 1, SQL, &args(&[7])),
            Lookup::Bypass
        ));
        cache.set_live(true);
        assert!(cache.is_empty());
        assert!(matches!(
            cache.lookup("tenant_a", 1, SQL, &args(&[7])),
            Lookup::Miss(_)
        ));
    }

    #[test]
    fn a_load_from_before_the_cache_started_over_is_not_stored() {
        let cache = live();
        let ticket = miss(&cache, "tenant_a", &args(&[7]));
        cache.set_live(true);
        cache.store(ticket, 41);
        assert!(cache.is_empty());
    }

    #[test]
    fn an_entry_expires_after_its_time_to_live_and_a_full_cache_starts_over() {
        let cache = CountCache::new(Duration::ZERO, 2);
        cache.set_live(true);
        stored(&cache, "tenant_a", &args(&[1]), 1);
        assert!(matches!(
            cache.lookup("tenant_a", 1, SQL, &args(&[1])),
            Lookup::Miss(_)
        ));
        stored(&cache, "tenant_a", &args(&[2]), 2);
        stored(&cache, "tenant_a", &args(&[3]), 3);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn every_tenant_table_is_either_tracked_or_untracked_once() {
        let mut all: Vec<&str> = tables().collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
    }
}
