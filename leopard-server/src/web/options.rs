//! The choices of the work screens' forms, each the API's own list (so a choice the API would
//! refuse is never offered): the clients in scope, the users one may assign to, the branches in
//! scope. An option list holds at most 1,000 rows, the API's largest page.
//!
//! The clients list's filter bar takes its two lists from an [`OptionCache`]: per user, kept
//! while the principal cache has seen no change (its generation moves on every notice of
//! tenant migrations 15 and 16: memberships, permissions, activity, branches, and the names the
//! lists show), and only while that cache is live. Forms read their lists fresh.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::RawQuery;
use axum::Json;
use leopard_http::{ApiError, AuthUser, Pagination};
use leopard_rbac::{Action, ResourceKind};

use super::widgets::may;
use crate::api::crm::clients;
use crate::api::identity::{branches, users};

/// `(value, label)` pairs of a select.
pub(crate) type Options = Vec<(String, String)>;

/// The largest option list (the API's largest page).
const MAX_OPTIONS: i64 = 1000;

/// A first page of [`MAX_OPTIONS`] rows of `path`, with `query` (which names the page size,
/// so resources with their own page sizes answer the full page too).
pub(crate) fn first_page(path: &str, query: &[(&str, &str)]) -> (Pagination, RawQuery) {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    pairs.push(("page_size".into(), MAX_OPTIONS.to_string()));
    let mut raw = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in &pairs {
        raw.append_pair(k, v);
    }
    (
        Pagination::new(1, MAX_OPTIONS, path.to_owned(), pairs),
        RawQuery(Some(raw.finish())),
    )
}

/// "First Last" of a client, trimmed.
pub(crate) fn client_name(first: &str, last: &str) -> String {
    format!("{first} {last}").trim().to_owned()
}

/// The live clients the user may see (the API's `clients/`), by first name; none without
/// `view_client`.
pub(crate) async fn clients(auth: &AuthUser) -> Result<Options, ApiError> {
    if !may(&auth.principal, Action::View, ResourceKind::Client) {
        return Ok(Vec::new());
    }
    let (pagination, raw) = first_page("/api/v1/clients/", &[("ordering", "first_name")]);
    let Json(rows) = clients::list(auth.clone(), pagination, raw).await?;
    Ok(rows
        .results
        .iter()
        .map(|c| (c.id.to_string(), client_name(&c.first_name, &c.last_name)))
        .collect())
}

/// The names of clients `ids` that the user may see (the API's `clients/?id__in=`), in one
/// query; none without `view_client`.
pub(crate) async fn client_names(auth: &AuthUser, ids: &[i64]) -> Result<Options, ApiError> {
    if ids.is_empty() || !may(&auth.principal, Action::View, ResourceKind::Client) {
        return Ok(Vec::new());
    }
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let (pagination, raw) = first_page("/api/v1/clients/", &[("id__in", &list)]);
    let Json(rows) = clients::list(auth.clone(), pagination, raw).await?;
    Ok(rows
        .results
        .iter()
        .map(|c| (c.id.to_string(), client_name(&c.first_name, &c.last_name)))
        .collect())
}

/// The active users the user may assign to (the API's `users/assignable/`).
pub(crate) async fn assignees(auth: &AuthUser) -> Result<Options, ApiError> {
    let (pagination, _) = first_page("/api/v1/users/assignable/", &[]);
    let Json(page) = users::assignable(
        auth.clone(),
        pagination,
        axum::extract::Query(users::UserFilters::default()),
    )
    .await?;
    Ok(page
        .results
        .into_iter()
        .map(|u| (u.id.to_string(), u.full_name))
        .collect())
}

/// The live branches in the user's scope (the API's `branches/options/`); none without
/// `view_branch`.
pub(crate) async fn branches(auth: &AuthUser) -> Result<Options, ApiError> {
    if !may(&auth.principal, Action::View, ResourceKind::Branch) {
        return Ok(Vec::new());
    }
    let Json(rows) = branches::options(auth.clone()).await?;
    Ok(rows
        .into_iter()
        .map(|b| (b.id.to_string(), b.name))
        .collect())
}

/// The branches and the assignees of one user's filter bar.
pub(crate) type FilterOptions = (Options, Options);

/// How long a cached entry may be used (a bound, like the principal cache's; invalidation is
/// the mechanism).
const OPTION_TTL: Duration = leopard_http::principals::DEFAULT_TTL;
/// Entries kept at most (the cache starts over when full).
const OPTION_CAPACITY: usize = 10_000;

#[derive(Debug)]
struct CachedOptions {
    generation: u64,
    stored: Instant,
    lists: Arc<FilterOptions>,
}

/// The filter options of each (tenant, user), valid while the principal cache is live and its
/// generation is the one read before they were loaded. See the module documentation.
#[derive(Debug, Default)]
pub struct OptionCache {
    entries: RwLock<HashMap<(i64, i64), CachedOptions>>,
}

impl OptionCache {
    fn key(auth: &AuthUser) -> (i64, i64) {
        (auth.tenant.tenant().id.0, auth.user_id.get())
    }

    fn get(&self, auth: &AuthUser) -> Option<Arc<FilterOptions>> {
        if !auth.principals.is_live() {
            return None;
        }
        let entries = self.entries.read().ok()?;
        let entry = entries.get(&Self::key(auth))?;
        (entry.generation == auth.principals.generation() && entry.stored.elapsed() < OPTION_TTL)
            .then(|| Arc::clone(&entry.lists))
    }

    fn store(&self, auth: &AuthUser, generation: u64, lists: Arc<FilterOptions>) {
        if !auth.principals.is_live() || auth.principals.generation() != generation {
            return;
        }
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if entries.len() >= OPTION_CAPACITY {
            entries.clear();
        }
        entries.insert(
            Self::key(auth),
            CachedOptions {
                generation,
                stored: Instant::now(),
                lists,
            },
        );
    }

    /// How many users' options are cached.
    pub fn len(&self) -> usize {
        self.entries.read().map_or(0, |e| e.len())
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// [`branches`] and [`assignees`] of `auth`, from `cache` when it holds them for the current
/// generation, else read (side by side) and stored.
pub(crate) async fn filter_options(
    cache: &OptionCache,
    auth: &AuthUser,
) -> Result<Arc<FilterOptions>, ApiError> {
    if let Some(lists) = cache.get(auth) {
        return Ok(lists);
    }
    // Read before the lists: a change that lands during the reads makes the store a no-op.
    let generation = auth.principals.generation();
    let lists = Arc::new(tokio::try_join!(branches(auth), assignees(auth))?);
    cache.store(auth, generation, Arc::clone(&lists));
    Ok(lists)
}

/// `options` with `(value, label)` added when `value` is set and not among them (a stored
/// choice the lists no longer offer, kept so that saving a form leaves it unchanged).
pub(crate) fn keeping(mut options: Options, value: Option<i64>, label: Option<&str>) -> Options {
    if let Some(value) = value {
        let value = value.to_string();
        if !options.iter().any(|(v, _)| *v == value) {
            let label = label
                .filter(|l| !l.trim().is_empty())
                .map_or_else(|| format!("#{value}"), str::to_owned);
            options.push((value, label));
        }
    }
    options
}
