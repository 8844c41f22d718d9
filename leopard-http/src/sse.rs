//! The real-time hub behind Server-Sent Events streams: every open stream of a user, keyed by
//! (tenant, user), with a bounded buffer each, and presence derived from the open streams.
//!
//! - **Keyed by tenant and user.** A message is published to `(tenant, user)`; every open
//!   stream of exactly that user of exactly that tenant receives it (several tabs, several
//!   devices). Nothing is keyed by user id alone, so user 5 of one tenant never sees user 5 of
//!   another. The tenant key is any string that identifies a tenant uniquely (Leopard uses the
//!   tenant's schema name).
//! - **Bounded, never silently lossy.** Each stream has a buffer of [`Hub::capacity`] messages.
//!   When a publish finds it full, the stream is *closed*: it is removed from the hub at once,
//!   its reader receives what was already buffered and then [`Received::Overflowed`] (send an
//!   error to the client and end the response: the client reconnects and resumes from its last
//!   event id). A slow reader never delays the others and never skips a message without
//!   knowing it.
//! - **Presence.** A user is online in a tenant while any of their streams is open
//!   ([`Hub::is_online`], [`Hub::online_users`]); closing one tab of two keeps them online.
//! - **No IO.** The hub is memory only (tokio channels); feeding it from other processes
//!   (PostgreSQL `LISTEN/NOTIFY`, NATS, …) and writing streams to sockets belong to the caller.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use leopard_http::sse::{Hub, Received};
//! let hub: Hub<&'static str> = Hub::new(16);
//! let mut tab = hub.subscribe("tenant_acme", 5);
//! assert!(hub.is_online("tenant_acme", 5));
//! assert_eq!(hub.publish("tenant_acme", 5, "hello"), 1);
//! assert_eq!(hub.publish("tenant_globex", 5, "not for acme"), 0);
//! assert!(matches!(tab.recv().await, Received::Message("hello")));
//! drop(tab);
//! assert!(!hub.is_online("tenant_acme", 5));
//! # }
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use tokio::sync::mpsc;

/// Why a stream ended, stored where both the hub and the reader see it.
const OPEN: u8 = 0;
const OVERFLOWED: u8 = 1;
const SHUT_DOWN: u8 = 2;

/// What a [`Subscription`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received<M> {
    /// The next message.
    Message(M),
    /// The stream's buffer was full when a message was published: the stream was removed from
    /// the hub and later messages were not delivered to it. Tell the client and end the stream.
    Overflowed,
    /// The hub was shut down ([`Hub::close_all`]): end the stream.
    Closed,
}

/// One open stream as the hub holds it.
struct Slot<M> {
    id: u64,
    tx: mpsc::Sender<M>,
    end: Arc<AtomicU8>,
}

/// The hub's table: tenant → user → open streams.
struct State<M> {
    tenants: HashMap<Arc<str>, HashMap<i64, Vec<Slot<M>>>>,
    open: usize,
    closed: bool,
}

struct Shared<M> {
    capacity: usize,
    next_id: AtomicU64,
    state: Mutex<State<M>>,
}

impl<M> Shared<M> {
    fn lock(&self) -> MutexGuard<'_, State<M>> {
        // Nothing panics while holding the lock; if something did, the table is still valid.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The hub: cheap to clone (all clones share one table).
pub struct Hub<M> {
    shared: Arc<Shared<M>>,
}

impl<M> Clone for Hub<M> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<M> std::fmt::Debug for Hub<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("capacity", &self.shared.capacity)
            .field("connections", &self.connections())
            .finish()
    }
}

impl<M> Hub<M> {
    /// A hub whose streams buffer at most `capacity` messages each (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                capacity: capacity.max(1),
                next_id: AtomicU64::new(1),
                state: Mutex::new(State {
                    tenants: HashMap::new(),
                    open: 0,
                    closed: false,
                }),
            }),
        }
    }

    /// The per-stream buffer size.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Opens a stream for `user` of `tenant`. Subscribe *before* reading anything you want to
    /// replay, so nothing published in between is missed (then drop duplicates by id). After
    /// [`Hub::close_all`] the subscription is closed at once.
    pub fn subscribe(&self, tenant: &str, user: i64) -> Subscription<M> {
        let (tx, rx) = mpsc::channel(self.shared.capacity);
        let end = Arc::new(AtomicU8::new(OPEN));
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let tenant: Arc<str> = Arc::from(tenant);
        let mut state = self.shared.lock();
        let tenant = match state.tenants.get_key_value(&*tenant) {
            Some((key, _)) => Arc::clone(key),
            None => tenant,
        };
        if state.closed {
            end.store(SHUT_DOWN, Ordering::Release);
        } else {
            let slot = Slot {
                id,
                tx,
                end: Arc::clone(&end),
            };
            state
                .tenants
                .entry(Arc::clone(&tenant))
                .or_default()
                .entry(user)
                .or_default()
                .push(slot);
            state.open += 1;
        }
        drop(state);
        Subscription {
            rx,
            end,
            shared: Arc::clone(&self.shared),
            tenant,
            user,
            id,
        }
    }

    /// Number of open streams.
    pub fn connections(&self) -> usize {
        self.shared.lock().open
    }

    /// Number of open streams of `tenant`.
    pub fn tenant_connections(&self, tenant: &str) -> usize {
        self.shared
            .lock()
            .tenants
            .get(tenant)
            .map_or(0, |users| users.values().map(Vec::len).sum())
    }

    /// Number of open streams of `user` in `tenant`.
    pub fn user_connections(&self, tenant: &str, user: i64) -> usize {
        self.shared
            .lock()
            .tenants
            .get(tenant)
            .and_then(|users| users.get(&user))
            .map_or(0, Vec::len)
    }

    /// Whether `user` of `tenant` has at least one open stream.
    pub fn is_online(&self, tenant: &str, user: i64) -> bool {
        self.user_connections(tenant, user) > 0
    }

    /// The users of `tenant` with at least one open stream, in id order.
    pub fn online_users(&self, tenant: &str) -> Vec<i64> {
        let mut users: Vec<i64> = self
            .shared
            .lock()
            .tenants
            .get(tenant)
            .map(|users| users.keys().copied().collect())
            .unwrap_or_default();
        users.sort_unstable();
        users
    }

    /// Ends every stream ([`Received::Closed`] after what is buffered) and refuses new ones:
    /// for a graceful shutdown, so open responses finish.
    pub fn close_all(&self) {
        let mut state = self.shared.lock();
        state.closed = true;
        for users in state.tenants.values() {
            for slot in users.values().flatten() {
                slot.end.store(SHUT_DOWN, Ordering::Release);
            }
        }
        state.tenants.clear();
        state.open = 0;
    }
}

impl<M: Clone> Hub<M> {
    /// Sends `message` to every open stream of `user` of `tenant`; returns how many accepted
    /// it. A stream whose buffer is full is closed instead ([`Received::Overflowed`]).
    pub fn publish(&self, tenant: &str, user: i64, message: M) -> usize {
        let mut state = self.shared.lock();
        let State { tenants, open, .. } = &mut *state;
        let Some(users) = tenants.get_mut(tenant) else {
            return 0;
        };
        let Some(slots) = users.get_mut(&user) else {
            return 0;
        };
        let (delivered, removed) = offer(slots, &message);
        *open -= removed;
        if slots.is_empty() {
            users.remove(&user);
            if users.is_empty() {
                tenants.remove(tenant);
            }
        }
        delivered
    }

    /// Sends `message` to every open stream of every tenant (e.g. "resynchronise" after the
    /// feed behind the hub was interrupted); returns how many accepted it.
    pub fn publish_all(&self, message: &M) -> usize {
        let mut state = self.shared.lock();
        let State { tenants, open, .. } = &mut *state;
        let mut delivered = 0;
        for users in tenants.values_mut() {
            for slots in users.values_mut() {
                let (d, removed) = offer(slots, message);
                delivered += d;
                *open -= removed;
            }
            users.retain(|_, slots| !slots.is_empty());
        }
        tenants.retain(|_, users| !users.is_empty());
        delivered
    }
}

/// Offers `message` to each slot; closes (removes) full ones and ones whose reader is gone.
/// Returns (accepted, removed).
fn offer<M: Clone>(slots: &mut Vec<Slot<M>>, message: &M) -> (usize, usize) {
    let mut delivered = 0;
    let before = slots.len();
    slots.retain(|slot| match slot.tx.try_send(message.clone()) {
        Ok(()) => {
            delivered += 1;
            true
        }
        Err(mpsc::error::TrySendError::Full(_)) => {
            slot.end.store(OVERFLOWED, Ordering::Release);
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    });
    (delivered, before - slots.len())
}

/// One open stream. Dropping it removes it from the hub (and may take its user offline).
pub struct Subscription<M> {
    rx: mpsc::Receiver<M>,
    end: Arc<AtomicU8>,
    shared: Arc<Shared<M>>,
    tenant: Arc<str>,
    user: i64,
    id: u64,
}

impl<M> std::fmt::Debug for Subscription<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("tenant", &self.tenant)
            .field("user", &self.user)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<M> Subscription<M> {
    /// The tenant key.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The user.
    pub fn user(&self) -> i64 {
        self.user
    }

    /// The next message, or why the stream ended. Cancel-safe.
    pub async fn recv(&mut self) -> Received<M> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next message, or why the stream ended.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Received<M>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(message)) => Poll::Ready(Received::Message(message)),
            Poll::Ready(None) => Poll::Ready(match self.end.load(Ordering::Acquire) {
                OVERFLOWED => Received::Overflowed,
                _ => Received::Closed,
            }),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<M> Drop for Subscription<M> {
    fn drop(&mut self) {
        if self.end.load(Ordering::Acquire) != OPEN {
            return; // already removed by the hub
        }
        let mut state = self.shared.lock();
        let State { tenants, open, .. } = &mut *state;
        let Some(users) = tenants.get_mut(&*self.tenant) else {
            return;
        };
        let Some(slots) = users.get_mut(&self.user) else {
            return;
        };
        let before = slots.len();
        slots.retain(|slot| slot.id != self.id);
        *open -= before - slots.len();
        if slots.is_empty() {
            users.remove(&self.user);
            if users.is_empty() {
                tenants.remove(&*self.tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_stream_of_the_user_receives_and_nothing_crosses_tenants_or_users() {
        let hub: Hub<u32> = Hub::new(8);
        let mut tab1 = hub.subscribe("a", 5);
        let mut tab2 = hub.subscribe("a", 5);
        let mut other_tenant = hub.subscribe("b", 5);
        let mut other_user = hub.subscribe("a", 6);
        assert_eq!(hub.publish("a", 5, 1), 2);
        assert_eq!(tab1.recv().await, Received::Message(1));
        assert_eq!(tab2.recv().await, Received::Message(1));
        assert_eq!(hub.publish("b", 5, 2), 1);
        assert_eq!(other_tenant.recv().await, Received::Message(2));
        assert!(other_user.rx.try_recv().is_err());
        assert!(tab1.rx.try_recv().is_err());
        assert_eq!(hub.connections(), 4);
        assert_eq!(hub.tenant_connections("a"), 3);
        assert_eq!(hub.user_connections("a", 5), 2);
    }

    #[tokio::test]
    async fn a_full_buffer_closes_the_stream_after_what_was_buffered_and_spares_the_others() {
        let hub: Hub<u32> = Hub::new(2);
        let mut slow = hub.subscribe("a", 5);
        let mut fast = hub.subscribe("a", 5);
        for i in 0..2 {
            assert_eq!(hub.publish("a", 5, i), 2);
            assert_eq!(fast.recv().await, Received::Message(i));
        }
        // The slow reader's buffer is full: it is closed, the fast one still receives.
        assert_eq!(hub.publish("a", 5, 2), 1);
        assert_eq!(fast.recv().await, Received::Message(2));
        assert_eq!(hub.user_connections("a", 5), 1);
        assert_eq!(hub.publish("a", 5, 3), 1);
        assert_eq!(slow.recv().await, Received::Message(0));
        assert_eq!(slow.recv().await, Received::Message(1));
        assert_eq!(slow.recv().await, Received::Overflowed);
        assert_eq!(slow.recv().await, Received::Overflowed);
        drop(slow);
        assert_eq!(hub.connections(), 1);
    }

    #[tokio::test]
    async fn presence_lasts_while_any_stream_is_open_per_tenant() {
        let hub: Hub<u32> = Hub::new(4);
        let tab1 = hub.subscribe("a", 5);
        let tab2 = hub.subscribe("a", 5);
        let _b7 = hub.subscribe("b", 7);
        let _a9 = hub.subscribe("a", 9);
        assert_eq!(hub.online_users("a"), vec![5, 9]);
        assert_eq!(hub.online_users("b"), vec![7]);
        assert!(!hub.is_online("b", 5));
        drop(tab1);
        assert!(hub.is_online("a", 5));
        drop(tab2);
        assert!(!hub.is_online("a", 5));
        assert_eq!(hub.online_users("a"), vec![9]);
        assert_eq!(hub.connections(), 2);
    }

    #[tokio::test]
    async fn close_all_ends_every_stream_and_refuses_new_ones() {
        let hub: Hub<u32> = Hub::new(4);
        let mut tab = hub.subscribe("a", 5);
        hub.publish("a", 5, 1);
        hub.close_all();
        assert_eq!(tab.recv().await, Received::Message(1));
        assert_eq!(tab.recv().await, Received::Closed);
        let mut late = hub.subscribe("a", 5);
        assert_eq!(late.recv().await, Received::Closed);
        assert_eq!(hub.connections(), 0);
        assert!(!hub.is_online("a", 5));
    }

    #[tokio::test]
    async fn publish_all_reaches_every_stream_of_every_tenant() {
        let hub: Hub<u32> = Hub::new(1);
        let mut a = hub.subscribe("a", 1);
        let mut b = hub.subscribe("b", 2);
        assert_eq!(hub.publish_all(&7), 2);
        // Both buffers are now full: a second broadcast closes both.
        assert_eq!(hub.publish_all(&8), 0);
        assert_eq!(hub.connections(), 0);
        assert_eq!(a.recv().await, Received::Message(7));
        assert_eq!(a.recv().await, Received::Overflowed);
        assert_eq!(b.recv().await, Received::Message(7));
        assert_eq!(b.recv().await, Received::Overflowed);
    }
}
