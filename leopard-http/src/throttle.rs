//! Login throttling: failed attempts counted per key in a fixed window, in memory.
//!
//! The server keys failures by (tenant, lower-cased username) and by client address; once a key
//! reaches its limit, attempts answer 429 with `Retry-After` until the window ends. A success
//! clears the username key. The counters are per process: with several instances behind a load
//! balancer each enforces its own limit (an attacker gets at most limit × instances tries per
//! window), which the operations guide documents.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts failures per key in fixed windows.
#[derive(Debug)]
pub struct Throttle {
    limit: u32,
    window: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    started: Instant,
}

/// Keys are pruned when the map grows past this many entries.
const PRUNE_AT: usize = 10_000;

impl Throttle {
    /// At most `limit` failures per `window` per key.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit.max(1),
            window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A poisoned lock only means another thread panicked mid-update of a counter.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Err(seconds to wait)` when `key` has used up its failures in the current window.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), u64> {
        let entries = self.lock();
        match entries.get(key) {
            Some(e) if e.failures >= self.limit => {
                let elapsed = now.saturating_duration_since(e.started);
                if elapsed >= self.window {
                    Ok(())
                } else {
                    Err((self.window - elapsed).as_secs().max(1))
                }
            }
            _ => Ok(()),
        }
    }

    /// Records one failure for `key`.
    pub fn fail(&self, key: &str) {
        self.fail_at(key, Instant::now());
    }

    fn fail_at(&self, key: &str, now: Instant) {
        let mut entries = self.lock();
        if entries.len() >= PRUNE_AT {
            let window = self.window;
            entries.retain(|_, e| now.saturating_duration_since(e.started) < window);
        }
        let entry = entries.entry(key.to_owned()).or_insert(Entry {
            failures: 0,
            started: now,
        });
        if now.saturating_duration_since(entry.started) >= self.window {
            *entry = Entry {
                failures: 0,
                started: now,
            };
        }
        entry.failures = entry.failures.saturating_add(1);
    }

    /// Forgets `key`'s failures (after a successful login).
    pub fn clear(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_refused_after_its_limit_until_the_window_ends() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(t.check_at("acme:alice", start), Ok(()));
            t.fail_at("acme:alice", start);
        }
        assert_eq!(
            t.check_at("acme:alice", start + Duration::from_secs(10)),
            Err(50)
        );
        assert_eq!(t.check_at("acme:bob", start), Ok(()));
        assert_eq!(
            t.check_at("acme:alice", start + Duration::from_secs(60)),
            Ok(())
        );
    }

    #[test]
    fn a_success_clears_the_failures() {
        let t = Throttle::new(1, Duration::from_secs(60));
        t.fail("k");
        assert!(t.check("k").is_err());
        t.clear("k");
        assert!(t.check("k").is_ok());
    }

    #[test]
    fn a_new_window_starts_counting_from_zero() {
        let t = Throttle::new(2, Duration::from_secs(10));
        let start = Instant::now();
        t.fail_at("k", start);
        t.fail_at("k", start + Duration::from_secs(11));
        assert_eq!(t.check_at("k", start + Duration::from_secs(12)), Ok(()));
    }
}
