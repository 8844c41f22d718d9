//! The invalidation of the principal cache ([`leopard_http::PrincipalCache`]).
//!
//! Tenant migration 15 makes every statement that can change a principal (a user's activity,
//! groups, direct permissions, branches and regions; a group's permissions; a branch's region
//! or deletion) send the tenant's schema name on [`CHANNEL`] when its transaction commits. The
//! notification listener of each server process ([`crate::realtime::Listener`], one
//! connection for both channels) hands those notices to [`Notices`], which drops that tenant's
//! cached principals. While the listener's connection is down the cache is not live (every
//! request loads its principal from the database, as without a cache); once it is back, the
//! cache starts over empty, since the notices of the outage are lost. A change is therefore in
//! force on every instance as soon as its notice arrives (milliseconds), and on the instance
//! that made it at once (its handler calls [`leopard_http::AuthUser::principals_changed`]).

use std::sync::Arc;

use leopard_http::PrincipalCache;

/// The PostgreSQL channel of principal notices (payload: the tenant's schema name).
pub const CHANNEL: &str = "leopard_principals";

/// What the listener does with the principal cache, if there is one.
#[derive(Debug, Clone, Default)]
pub struct Notices(Option<Arc<PrincipalCache>>);

impl Notices {
    /// Notices for `cache` (`None`: the cache is off and stays bypassed).
    pub fn new(cache: Option<Arc<PrincipalCache>>) -> Self {
        Self(cache)
    }

    /// Whether there is a cache to keep.
    pub fn enabled(&self) -> bool {
        self.0.is_some()
    }

    /// The listener is connected: the cache answers, starting empty.
    pub fn connected(&self) {
        if let Some(cache) = &self.0 {
            cache.set_live(true);
        }
    }

    /// The listener lost its connection (or stopped): the cache is bypassed.
    pub fn lost(&self) {
        if let Some(cache) = &self.0 {
            if cache.is_live() {
                tracing::warn!("principal notices interrupted; the principal cache is bypassed");
            }
            cache.set_live(false);
        }
    }

    /// A notice: the principals of the tenant whose schema is `schema` changed.
    pub fn notice(&self, schema: &str) {
        if let Some(cache) = &self.0 {
            cache.invalidate_schema(schema);
        }
    }
}
