//! Failed-login throttling and the bounded pool password checks run on.
//!
//! A password check costs ~0.1-0.5 s of CPU (PBKDF2), so guessing is throttled twice: failures
//! are counted per account and per client address in fixed windows (over the limit: 429 with
//! `Retry-After`, the right password included, and no hash is computed), and hashes run on a
//! few threads only, so a burst of logins queues instead of taking every core from requests
//! that need none (cached credentials, tokens, anonymous pulls).

use crate::config::LimitsConfig;
use crate::error::{AppError, AppResult, Kind};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Entries kept at most: beyond it, expired windows are dropped and new addresses are not
/// tracked (accounts still are), so a flood of addresses cannot grow memory without bound.
const MAX_ENTRIES: usize = 100_000;
/// Logins waiting for a hashing thread at most; more are told to retry.
const MAX_WAITING: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

struct Window {
    start: Instant,
    failures: u32,
}

pub struct Throttle {
    per_account: u32,
    per_address: u32,
    window: Duration,
    windows: Mutex<HashMap<Key, Window>>,
    hashing: Semaphore,
    waiting: AtomicUsize,
}

fn too_many(retry_after: u64, message: &str) -> AppError {
    AppError::new(Kind::TooManyRequests, message).retry_after(retry_after.max(1))
}

impl Throttle {
    pub fn new(limits: &LimitsConfig) -> Throttle {
        let threads = match limits.password_hash_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1)),
            n => n,
        };
        Throttle {
            per_account: limits.login_failures_per_account,
            per_address: limits.login_failures_per_address,
            window: Duration::from_secs(limits.login_window_secs.max(1)),
            windows: Mutex::new(HashMap::new()),
            hashing: Semaphore::new(threads),
            waiting: AtomicUsize::new(0),
        }
    }

    fn keys(account: &str, address: Option<IpAddr>) -> impl Iterator<Item = Key> {
        std::iter::once(Key::Account(account.to_string())).chain(address.map(Key::Address))
    }

    fn limit(&self, key: &Key) -> u32 {
        match key {
            Key::Account(_) => self.per_account,
            Key::Address(_) => self.per_address,
        }
    }

    /// Refuses (429) a login of `account` from `address` while either has used up its failures.
    pub fn admit(&self, account: &str, address: Option<IpAddr>) -> AppResult<()> {
        let windows = self
            .windows
            .lock()
            .map_err(|_| AppError::internal("throttle lock poisoned"))?;
        let now = Instant::now();
        for key in Self::keys(account, address) {
            let limit = self.limit(&key);
            if let Some(w) = windows.get(&key) {
                let elapsed = now.duration_since(w.start);
                if limit > 0 && w.failures >= limit && elapsed < self.window {
                    let wait = (self.window - elapsed).as_secs_f64().ceil() as u64;
                    return Err(too_many(wait, "Too many failed logins; retry later"));
                }
            }
        }
        Ok(())
    }

    /// Counts a failed login against the account and the address.
    pub fn failed(&self, account: &str, address: Option<IpAddr>) {
        let Ok(mut windows) = self.windows.lock() else {
            return;
        };
        let now = Instant::now();
        if windows.len() >= MAX_ENTRIES {
            let window = self.window;
            windows.retain(|_, w| now.duration_since(w.start) < window);
        }
        for key in Self::keys(account, address) {
            let full = windows.len() >= MAX_ENTRIES;
            if full && matches!(key, Key::Address(_)) && !windows.contains_key(&key) {
                continue;
            }
            let w = windows.entry(key).or_insert(Window {
                start: now,
                failures: 0,
            });
            if now.duration_since(w.start) >= self.window {
                *w = Window {
                    start: now,
                    failures: 0,
                };
            }
            w.failures = w.failures.saturating_add(1);
        }
    }

    /// A successful login clears the account's count (not the address's).
    pub fn succeeded(&self, account: &str) {
        if let Ok(mut windows) = self.windows.lock() {
            windows.remove(&Key::Account(account.to_string()));
        }
    }

    /// Runs a password check on the bounded hashing pool.
    pub async fn hash<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
        let turn = match self.hashing.try_acquire() {
            Ok(turn) => turn,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(too_many(1, "Too many logins at once; retry shortly"));
                }
                let turn = self.hashing.acquire().await;
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                turn.map_err(AppError::internal)?
            }
        };
        let result = tokio::task::spawn_blocking(f).await.map_err(AppError::internal);
        drop(turn);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(account: u32, address: u32) -> LimitsConfig {
        LimitsConfig {
            login_failures_per_account: account,
            login_failures_per_address: address,
            login_window_secs: 60,
            password_hash_threads: 1,
            ..LimitsConfig::default()
        }
    }

    #[test]
    fn accounts_and_addresses_are_throttled_apart() {
        let t = Throttle::new(&limits(3, 5));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..3 {
            assert!(t.admit("alice", Some(a)).is_ok());
            t.failed("alice", Some(a));
        }
        let e = t.admit("alice", Some(b)).unwrap_err();
        assert_eq!(e.status(), 429);
        assert!(e.retry_after_secs().is_some_and(|s| (1..=60).contains(&s)));
        // Another account from the same address still gets in, until the address is spent.
        assert!(t.admit("bob", Some(a)).is_ok());
        t.failed("bob", Some(a));
        t.failed("bob", Some(a));
        assert_eq!(t.admit("carol", Some(a)).unwrap_err().status(), 429);
        assert!(t.admit("carol", Some(b)).is_ok());
        // 0 means no limit.
        let open = Throttle::new(&limits(0, 0));
        for _ in 0..100 {
            open.failed("alice", Some(a));
        }
        assert!(open.admit("alice", Some(a)).is_ok());
    }
}
