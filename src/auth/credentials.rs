//! A small cache of verified credentials, so per-request Basic auth costs a hash lookup, not a
//! full pbkdf2 run (the hashing itself lives with the accounts, in `index::password`).

use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CACHE_TTL: Duration = Duration::from_secs(300);
const CACHE_MAX: usize = 10_000;

/// Remembers `(user, password)` pairs that verified against a given PHC string. Keys are a
/// digest under a per-process random secret, so the cache never holds a password; the stored PHC
/// string ties an entry to the hash it was checked against, so a password change invalidates it.
pub struct CredentialCache {
    secret: [u8; 32],
    entries: Mutex<HashMap<[u8; 32], (String, Instant)>>,
    /// One verification at a time per credential: when many connections arrive at once with the
    /// same (not yet cached) password, one hashes and the others wait for its answer instead of
    /// each burning a pbkdf2 run.
    inflight: Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
}

impl Default for CredentialCache {
    fn default() -> Self {
        let mut secret = [0u8; 32];
        OsRng.fill_bytes(&mut secret);
        CredentialCache {
            secret,
            entries: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
        }
    }
}

impl CredentialCache {
    fn key(&self, user: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update((user.len() as u64).to_be_bytes());
        h.update(user.as_bytes());
        h.update(password.as_bytes());
        h.finalize().into()
    }

    pub fn hit(&self, user: &str, password: &str, phc: &str) -> bool {
        let key = self.key(user, password);
        let Ok(entries) = self.entries.lock() else {
            return false;
        };
        matches!(entries.get(&key), Some((p, at)) if p == phc && at.elapsed() < CACHE_TTL)
    }

    /// The lock to hold while verifying this credential.
    pub fn flight(&self, user: &str, password: &str) -> Arc<tokio::sync::Mutex<()>> {
        let key = self.key(user, password);
        let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        inflight.entry(key).or_default().clone()
    }

    /// Done verifying: later callers find the cache (or verify afresh after a wrong password).
    pub fn land(&self, user: &str, password: &str) {
        let key = self.key(user, password);
        self.inflight.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
    }

    pub fn remember(&self, user: &str, password: &str, phc: &str) {
        let key = self.key(user, password);
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CACHE_MAX {
                entries.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
                if entries.len() >= CACHE_MAX {
                    entries.clear();
                }
            }
            entries.insert(key, (phc.to_string(), Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_is_tied_to_the_hash() {
        let c = CredentialCache::default();
        c.remember("alice", "pw", "phc1");
        assert!(c.hit("alice", "pw", "phc1"));
        assert!(!c.hit("alice", "pw", "phc2"));
        assert!(!c.hit("alice", "other", "phc1"));
    }
}
