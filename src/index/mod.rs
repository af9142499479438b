//! The built-in v1 index: users, repositories (owner, visibility, collaborators, image list) and
//! tokens, kept in sled. One `Db` per process, one tree per entity, opened once.

pub mod backup;
pub mod comments;
pub mod password;
pub mod pats;
pub mod pulls;
pub mod repos;
pub mod sessions;
pub mod stars;
pub mod tokens;
pub mod users;
pub mod webhooks;

use crate::error::{AppError, AppResult};
use std::path::Path;

pub use comments::{Comment, CommentPage};
pub use pats::{Pat, Scope};
pub use pulls::PullStat;
pub use repos::{ImageEntry, Repo};
pub use tokens::{Access, TokenGrant};
pub use users::User;

pub const SCHEMA_VERSION: u64 = 1;

#[derive(Clone)]
pub struct Index {
    db: sled::Db,
    users: sled::Tree,
    emails: sled::Tree,
    repos: sled::Tree,
    tokens: sled::Tree,
    /// Access tokens (see `pats`): id -> record, secret hash -> id, login and name -> id.
    pats: sled::Tree,
    pat_secrets: sled::Tree,
    pat_names: sled::Tree,
    /// Deleted accounts' names and the generation a new account of that name starts at, so no
    /// token of the old account ever works for the new one.
    retired: sled::Tree,
    /// Pull counts and times per repository and tag (see `pulls`).
    pulls: sled::Tree,
    /// Web UI sessions (see `sessions`): digest of the id -> record, account and sequence ->
    /// digest. Left out of backups: a restore never brings back a session.
    sessions: sled::Tree,
    session_users: sled::Tree,
    /// Stars, by repository and by account (see `stars`).
    stars: sled::Tree,
    user_stars: sled::Tree,
    /// Comments under repositories (see `comments`).
    comments: sled::Tree,
    /// Repositories' webhooks and every hook's deliveries (see `webhooks`).
    hooks: sled::Tree,
    deliveries: sled::Tree,
    pbkdf2_rounds: u32,
    /// Every repository record without its image list, in name order: what search and the
    /// catalog scan. Rebuilt on the first read after any repository write.
    listing: std::sync::Arc<std::sync::RwLock<Option<std::sync::Arc<Vec<Repo>>>>>,
    /// Bumped by every repository write, so a listing read before a write is never kept after
    /// it.
    listing_generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Every change made through `write` holds this shared while it runs; a backup holds it
    /// exclusively while it reads the trees, so it sees each change whole or not at all, in
    /// every tree at once (sled has no snapshot across trees).
    writers: std::sync::Arc<std::sync::RwLock<()>>,
    /// A hash, at `pbkdf2_rounds`, of a password nobody has (made on first use).
    dummy_phc: std::sync::Arc<std::sync::OnceLock<String>>,
    /// Held while any handle is alive: one process per index.
    _lock: std::sync::Arc<crate::storage::local::LockFile>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the index database {0} is in use by another process (is `skiff serve` running? stop it first, or use its HTTP API)")]
    Locked(String),
    #[error("the index database {0} has schema version {1}, and this Skiff knows version {SCHEMA_VERSION} only: run the Skiff that wrote it (or a newer one)")]
    Schema(String, u64),
    #[error("cannot open the index database {0}: {1}")]
    Other(String, #[source] sled::Error),
}

impl Index {
    /// The lock every handle holds (a running standalone server holds it): `Ok(None)` when
    /// another process has it. Tools that only read the registry's storage probe it to know
    /// whether a server is running.
    pub fn try_lock(path: &Path) -> std::io::Result<Option<crate::storage::local::LockFile>> {
        crate::storage::local::try_lock(&path.with_extension("lock"))
    }

    pub fn open(path: &Path, pbkdf2_rounds: u32) -> Result<Index, OpenError> {
        let shown = path.display().to_string();
        // Our own lock, taken first: sled's lock error carries no kind, only a message.
        let lock = Index::try_lock(path)
            .map_err(|e| OpenError::Other(shown.clone(), e.into()))?
            .ok_or_else(|| OpenError::Locked(shown.clone()))?;
        let db = sled::Config::new()
            .path(path)
            .mode(sled::Mode::LowSpace)
            .cache_capacity(16 << 20)
            .open()
            .map_err(|e| OpenError::Other(shown.clone(), e))?;
        let open = |name: &str| db.open_tree(name).map_err(|e| OpenError::Other(shown.clone(), e));
        let index = Index {
            users: open("users")?,
            emails: open("emails")?,
            repos: open("repos")?,
            tokens: open("tokens")?,
            pats: open("pats")?,
            pat_secrets: open("pat_secrets")?,
            pat_names: open("pat_names")?,
            retired: open("retired")?,
            pulls: open("pulls")?,
            sessions: open(sessions::TREES[0])?,
            session_users: open(sessions::TREES[1])?,
            stars: open("stars")?,
            user_stars: open("user_stars")?,
            comments: open("comments")?,
            hooks: open("webhooks")?,
            deliveries: open("webhook_deliveries")?,
            db: db.clone(),
            pbkdf2_rounds,
            listing: Default::default(),
            listing_generation: Default::default(),
            writers: Default::default(),
            dummy_phc: Default::default(),
            _lock: std::sync::Arc::new(lock),
        };
        let meta = open("meta")?;
        let stored = meta
            .get("schema_version")
            .map_err(|e| OpenError::Other(shown.clone(), e))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes);
        match stored {
            Some(v) if v == SCHEMA_VERSION => {}
            Some(v) => return Err(OpenError::Schema(shown, v)),
            None => {
                meta.insert("schema_version", &SCHEMA_VERSION.to_be_bytes())
                    .map_err(|e| OpenError::Other(shown.clone(), e))?;
            }
        }
        Ok(index)
    }

    /// A tree of this database for a record kept beside the index (the audit log), with the
    /// database itself (for its `generate_id`, a sequence that survives restarts).
    pub fn side_tree(&self, name: &str) -> AppResult<(sled::Db, sled::Tree)> {
        Ok((self.db.clone(), self.db.open_tree(name)?))
    }

    /// Makes acknowledged changes durable before the client hears about them. A blocking
    /// `flush` on the blocking pool, not `flush_async`: in sled 0.34 concurrent `flush_async`
    /// calls can wait forever (spacejam/sled#1308, seen here under 16 concurrent pushes).
    pub async fn flush(&self) -> AppResult<()> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(AppError::internal)??;
        Ok(())
    }

    /// Runs a change on the blocking pool and makes it durable before returning: every index
    /// write a client hears about goes through here, so none is acknowledged and then lost.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Index) -> AppResult<T> + Send + 'static,
    ) -> AppResult<T> {
        let out = self
            .run(move |ix| {
                // Shared with other writes; exclusive with a backup (see `backup`). The lock
                // guards no data of its own, so a poisoned one is as good as a clean one.
                let _shared = ix.writers.read().unwrap_or_else(|e| e.into_inner());
                f(ix)
            })
            .await?;
        self.flush().await?;
        Ok(out)
    }

    /// Runs sled work on the blocking pool (sled may block on I/O).
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Index) -> AppResult<T> + Send + 'static,
    ) -> AppResult<T> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(AppError::internal)?
    }
}

pub use crate::clock::now_secs;

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> AppResult<T> {
    serde_json::from_slice(bytes).map_err(AppError::internal)
}

fn encode<T: serde::Serialize>(value: &T) -> AppResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(AppError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database written by another schema is refused with a message that says so, and a
    /// second process is refused while the first holds the index.
    #[test]
    fn schema_and_lock_are_checked_at_open() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("v1");
        let index = Index::open(&path, 10_000).expect("open");
        assert!(matches!(Index::open(&path, 10_000), Err(OpenError::Locked(_))));
        let meta = index.db.open_tree("meta").expect("meta");
        meta.insert("schema_version", &99u64.to_be_bytes()).expect("write");
        index.db.flush().expect("flush");
        drop((meta, index));
        let err = Index::open(&path, 10_000).err().expect("refused");
        assert!(matches!(err, OpenError::Schema(_, 99)), "{err}");
        assert!(err.to_string().contains("schema version 99"), "{err}");
    }
}
