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

use crate::counts::CountCache;

/// The PostgreSQL channel of principal notices (payload: the tenant's schema name).
pub const CHANNEL: &str = "leopard_principals";

/// What the listener does with the principal cache and the count cache
/// ([`crate::counts::CountCache`], channel [`crate::counts::CHANNEL`]), when there are.
#[derive(Debug, Clone, Default)]
pub struct Notices {
    principals: Option<Arc<PrincipalCache>>,
    counts: Option<Arc<CountCache>>,
}

impl Notices {
    /// Notices for the caches given (`None`: that cache is off and stays bypassed).
    pub fn new(principals: Option<Arc<PrincipalCache>>, counts: Option<Arc<CountCache>>) -> Self {
        Self { principals, counts }
    }

    /// The channels to listen on for the caches there are.
    pub fn channels(&self) -> Vec<&'static str> {
        let mut channels = Vec::new();
        if self.principals.is_some() {
            channels.push(CHANNEL);
        }
        if self.counts.is_some() {
            channels.push(crate::counts::CHANNEL);
        }
        channels
    }

    /// The listener is connected: the caches answer, starting empty.
    pub fn connected(&self) {
        if let Some(cache) = &self.principals {
            cache.set_live(true);
        }
        if let Some(cache) = &self.counts {
            cache.set_live(true);
        }
    }

    /// The listener lost its connection (or stopped): the caches are bypassed.
    pub fn lost(&self) {
        if let Some(cache) = &self.principals {
            if cache.is_live() {
                tracing::warn!("principal notices interrupted; the principal cache is bypassed");
            }
            cache.set_live(false);
        }
        if let Some(cache) = &self.counts {
            cache.set_live(false);
        }
    }

    /// A notice on `channel` (one of [`Notices::channels`]).
    pub fn notice(&self, channel: &str, payload: &str) {
        match (channel, &self.principals, &self.counts) {
            (CHANNEL, Some(cache), _) => cache.invalidate_schema(payload),
            (crate::counts::CHANNEL, _, Some(cache)) => cache.notice(payload),
            _ => {}
        }
    }
}
