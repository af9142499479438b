//! Web UI sessions: a random id in an HttpOnly cookie names a record of who signed in, under
//! which account generation, until when, and the session's CSRF token.
//!
//! Only a digest of the id is stored, so the database (or a backup of it) holds no cookie that
//! works. A session ends when it expires, when its holder signs out, and with every change of
//! the account's generation (a password change, a deactivation, a lost admin role), which the
//! gate checks on each use. An account keeps at most [`MAX_PER_USER`] sessions: signing in
//! again past that ends the oldest, so repeated sign-ins cannot grow the database.

use super::{decode, encode, now_secs, Index};
use crate::error::AppResult;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The trees sessions live in, which backups leave out.
pub const TREES: [&str; 2] = ["sessions", "session_users"];

/// Sessions one account may hold at once.
pub const MAX_PER_USER: usize = 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub user: String,
    pub generation: u64,
    /// Sent back in `X-CSRF-Token` with every change made under this session.
    pub csrf: String,
    pub created: u64,
    pub expires: u64,
    /// Orders an account's sessions, oldest first (a sequence that survives restarts).
    pub seq: u64,
}

/// A new session's cookie value (the only copy of it) and its record.
pub struct Opened {
    pub id: String,
    pub session: Session,
}

fn random_token() -> String {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    hex::encode(raw)
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// `user \n seq \n key`: an account's sessions, oldest first.
fn user_key(user: &str, seq: u64, key: &[u8; 32]) -> Vec<u8> {
    let mut k = Vec::with_capacity(user.len() + 42);
    k.extend_from_slice(user.as_bytes());
    k.push(b'\n');
    k.extend_from_slice(&seq.to_be_bytes());
    k.push(b'\n');
    k.extend_from_slice(key);
    k
}

fn user_prefix(user: &str) -> Vec<u8> {
    let mut k = user.as_bytes().to_vec();
    k.push(b'\n');
    k
}

impl Index {
    /// Opens a session for `user` (already authenticated) lasting `ttl_secs`.
    pub fn open_session(&self, user: &str, generation: u64, ttl_secs: u64) -> AppResult<Opened> {
        let id = random_token();
        let now = now_secs();
        let session = Session {
            user: user.to_string(),
            generation,
            csrf: random_token(),
            created: now,
            expires: now.saturating_add(ttl_secs),
            seq: self.db.generate_id()?,
        };
        let k = key(&id);
        self.sessions.insert(k, encode(&session)?)?;
        self.session_users.insert(user_key(user, session.seq, &k), &[])?;
        let mine: Vec<_> = self
            .session_users
            .scan_prefix(user_prefix(user))
            .keys()
            .collect::<Result<_, _>>()?;
        for old in mine.iter().take(mine.len().saturating_sub(MAX_PER_USER)) {
            self.forget_session_entry(old)?;
        }
        Ok(Opened { id, session })
    }

    /// The live session the cookie value names, if any; an expired one is removed.
    pub fn session(&self, id: &str) -> AppResult<Option<Session>> {
        let k = key(id);
        let Some(raw) = self.sessions.get(k)? else {
            return Ok(None);
        };
        let session: Session = decode(&raw)?;
        if session.expires <= now_secs() {
            self.sessions.remove(k)?;
            self.session_users.remove(user_key(&session.user, session.seq, &k))?;
            return Ok(None);
        }
        Ok(Some(session))
    }

    /// Ends the session the cookie value names (signing out); true if there was one.
    pub fn close_session(&self, id: &str) -> AppResult<bool> {
        let k = key(id);
        let Some(raw) = self.sessions.remove(k)? else {
            return Ok(false);
        };
        let session: Session = decode(&raw)?;
        self.session_users.remove(user_key(&session.user, session.seq, &k))?;
        Ok(true)
    }

    /// Ends every session of an account (it was deleted, or asked to sign out everywhere).
    pub fn close_sessions_of(&self, user: &str) -> AppResult<usize> {
        let mine: Vec<_> = self
            .session_users
            .scan_prefix(user_prefix(user))
            .keys()
            .collect::<Result<_, _>>()?;
        for entry in &mine {
            self.forget_session_entry(entry)?;
        }
        Ok(mine.len())
    }

    /// Removes expired sessions; returns how many.
    pub fn prune_sessions(&self) -> AppResult<usize> {
        let now = now_secs();
        let mut gone = 0;
        for kv in self.sessions.iter() {
            let (k, raw) = kv?;
            let Ok(session) = decode::<Session>(&raw) else {
                self.sessions.remove(&k)?;
                continue;
            };
            if session.expires <= now {
                if let Ok(k32) = <[u8; 32]>::try_from(k.as_ref()) {
                    self.session_users.remove(user_key(&session.user, session.seq, &k32))?;
                }
                self.sessions.remove(&k)?;
                gone += 1;
            }
        }
        Ok(gone)
    }

    fn forget_session_entry(&self, entry: &[u8]) -> AppResult<()> {
        if let Some(k) = entry.get(entry.len().saturating_sub(32)..) {
            self.sessions.remove(k)?;
        }
        self.session_users.remove(entry)?;
        Ok(())
    }

    /// Sessions stored (for tests and metrics).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> (tempfile::TempDir, Index) {
        let dir = tempfile::tempdir().expect("tempdir");
        let ix = Index::open(&dir.path().join("index"), 1000).expect("open");
        (dir, ix)
    }

    #[test]
    fn sessions_open_close_and_keep_no_usable_id() {
        let (_dir, ix) = index();
        let opened = ix.open_session("alice", 3, 3600).expect("open");
        let got = ix.session(&opened.id).expect("get").expect("live");
        assert_eq!((got.user.as_str(), got.generation), ("alice", 3));
        assert_ne!(got.csrf, opened.id);
        for kv in ix.sessions.iter() {
            let (k, v) = kv.expect("kv");
            assert!(!String::from_utf8_lossy(&k).contains(&opened.id));
            assert!(!String::from_utf8_lossy(&v).contains(&opened.id));
        }
        assert!(ix.close_session(&opened.id).expect("close"));
        assert!(ix.session(&opened.id).expect("get").is_none());
        assert!(!ix.close_session(&opened.id).expect("again"));
        assert_eq!(ix.session_users.len(), 0);
    }

    #[test]
    fn expired_sessions_are_gone_and_pruned() {
        let (_dir, ix) = index();
        let dead = ix.open_session("alice", 0, 0).expect("open");
        let live = ix.open_session("alice", 0, 3600).expect("open");
        let _other_dead = ix.open_session("bob", 0, 0).expect("open");
        assert!(ix.session(&dead.id).expect("get").is_none());
        assert_eq!(ix.prune_sessions().expect("prune"), 1);
        assert_eq!(ix.session_count(), 1);
        assert!(ix.session(&live.id).expect("get").is_some());
    }

    #[test]
    fn an_account_keeps_its_newest_sessions_only() {
        let (_dir, ix) = index();
        let ids: Vec<String> = (0..MAX_PER_USER + 5)
            .map(|_| ix.open_session("alice", 0, 3600).expect("open").id)
            .collect();
        let bob = ix.open_session("bob", 0, 3600).expect("open");
        assert_eq!(ix.session_count(), MAX_PER_USER + 1);
        assert!(ids
            .iter()
            .rev()
            .take(MAX_PER_USER)
            .all(|id| ix.session(id).expect("get").is_some()));
        assert_eq!(ix.close_sessions_of("alice").expect("close all"), MAX_PER_USER);
        assert!(ix.session(&bob.id).expect("get").is_some());
        assert_eq!(ix.session_count(), 1);
    }
}
