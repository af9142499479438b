//! v2 blob upload sessions: monolithic, chunked (in order, 416 otherwise), resumable across
//! requests and restarts, cancellable, and swept when abandoned.
//!
//! A session is `_uploads/<uuid>/{info,data}` in storage. The running hash lives in memory while
//! the process does; after a restart (or an interrupted chunk) it is recomputed from the data
//! file when the upload is closed. Nothing is visible until the digest is verified and the file
//! is renamed into the blob store.

use crate::clock::now_secs;
use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::{AppError, AppResult, Kind};
use crate::names::RepoName;
use crate::storage::{keys, pump, Storage};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Serialize, Deserialize)]
struct Info {
    repo: String,
    algo: String,
    created: u64,
}

pub struct Session {
    pub uuid: String,
    pub repo: RepoName,
    algo: Algorithm,
    /// The hash of the first `offset` bytes, when known.
    hasher: Option<Hasher>,
    pub offset: u64,
    updated: u64,
    closed: bool,
}

type SessionRef = Arc<tokio::sync::Mutex<Session>>;

#[derive(Clone)]
pub struct Uploads {
    storage: Storage,
    live: Arc<Mutex<HashMap<String, SessionRef>>>,
}

fn unknown() -> AppError {
    AppError::new(Kind::BlobUploadUnknown, "blob upload unknown to registry")
}

/// Validates a session id from a URL before it is used in a path.
fn valid_uuid(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

impl Uploads {
    pub fn new(storage: Storage) -> Uploads {
        Uploads {
            storage,
            live: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Bytes received so far: the size of the data object.
    async fn received(&self, uuid: &str) -> AppResult<u64> {
        let stat = self.storage.stat(&keys::upload_data(uuid)).await?;
        stat.map(|s| s.size).ok_or_else(unknown)
    }

    pub async fn start(&self, repo: &RepoName, algo: Algorithm) -> AppResult<String> {
        let uuid = hex::encode(rand::random::<[u8; 16]>());
        let info = Info {
            repo: repo.to_string(),
            algo: algo.name().into(),
            created: now_secs(),
        };
        self.storage
            .put(&keys::upload_info(&uuid), serde_json::to_vec(&info)?.into())
            .await?;
        self.storage.put(&keys::upload_data(&uuid), Bytes::new()).await?;
        let session = Session {
            uuid: uuid.clone(),
            repo: repo.clone(),
            algo,
            hasher: Some(Hasher::new(algo)),
            offset: 0,
            updated: now_secs(),
            closed: false,
        };
        self.lock_map()
            .insert(uuid.clone(), Arc::new(tokio::sync::Mutex::new(session)));
        Ok(uuid)
    }

    fn lock_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionRef>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session `uuid` of `repo`, from memory or (after a restart) from storage.
    pub async fn get(&self, repo: &RepoName, uuid: &str) -> AppResult<SessionRef> {
        if !valid_uuid(uuid) {
            return Err(unknown());
        }
        let cached = self.lock_map().get(uuid).cloned();
        let session = match cached {
            Some(s) => s,
            None => {
                let info = self.storage.get(&keys::upload_info(uuid)).await?.ok_or_else(unknown)?;
                let info: Info = serde_json::from_slice(&info)?;
                let algo = if info.algo == "sha512" {
                    Algorithm::Sha512
                } else {
                    Algorithm::Sha256
                };
                let offset = self.received(uuid).await?;
                let session = Session {
                    uuid: uuid.to_string(),
                    repo: RepoName::parse(&info.repo)?,
                    algo,
                    hasher: None,
                    offset,
                    updated: now_secs(),
                    closed: false,
                };
                let s = Arc::new(tokio::sync::Mutex::new(session));
                self.lock_map().entry(uuid.to_string()).or_insert(s).clone()
            }
        };
        let same_repo = session.lock().await.repo == *repo;
        if same_repo {
            Ok(session)
        } else {
            Err(unknown())
        }
    }

    /// Appends a chunk. `range` is the request's `Content-Range` (inclusive), if it sent one:
    /// it must start where the upload stands, else 416. A body that fails (the client went
    /// away, or stalled) keeps what reached the file: the offset is then the stored size, and
    /// the upload continues from there.
    pub async fn append<S, E>(&self, session: &mut Session, range: Option<(u64, u64)>, mut body: S) -> AppResult<u64>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<AppError>,
    {
        if session.closed {
            return Err(unknown());
        }
        if let Some((start, end)) = range {
            if start != session.offset || end < start {
                return Err(AppError::new(
                    Kind::RangeNotSatisfiable,
                    format!(
                        "chunk {start}-{end} does not continue the upload at offset {}",
                        session.offset
                    ),
                ));
            }
        }
        let hashers = session.hasher.take().into_iter().collect::<Vec<_>>();
        let had_hasher = !hashers.is_empty();
        let mut sink = self
            .storage
            .writer(&keys::upload_data(&session.uuid), true, hashers)
            .await?;
        let streamed = pump(sink.as_mut(), &mut body).await.map_err(Into::into);
        session.updated = now_secs();
        let outcome = match streamed {
            Ok(()) => sink.finish().await.map_err(AppError::from),
            Err(e) => {
                let _ = sink.abort().await;
                Err(e)
            }
        };
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                // What reached the file stays; the hash is recomputed from the file on close.
                session.offset = self.received(&session.uuid).await?;
                session.hasher = None;
                return Err(e);
            }
        };
        session.offset += outcome.written;
        session.hasher = if had_hasher {
            outcome.hashers.into_iter().next()
        } else {
            None
        };
        if let Some((start, end)) = range {
            // Checked: `0-18446744073709551615` spans 2^64 bytes, which no chunk can have.
            if (end - start).checked_add(1) != Some(outcome.written) {
                // The bytes are kept (the offset says where the upload stands), but the
                // client's range was wrong: say so.
                return Err(AppError::new(
                    Kind::RangeNotSatisfiable,
                    format!(
                        "Content-Range {start}-{end} does not match the {} bytes sent",
                        outcome.written
                    ),
                ));
            }
        }
        Ok(session.offset)
    }

    /// Closes the upload: verifies `expected`, moves the bytes into the blob store.
    pub async fn finish(&self, session: &mut Session, expected: &Digest) -> AppResult<u64> {
        if session.closed {
            return Err(unknown());
        }
        let data = keys::upload_data(&session.uuid);
        let actual = match session.hasher.take() {
            Some(h) if expected.algorithm() == session.algo => h.finish(),
            _ => self.hash_stored(&data, session.offset, expected.algorithm()).await?,
        };
        if &actual != expected {
            self.remove(session).await?;
            return Err(AppError::new(
                Kind::DigestInvalid,
                format!("provided digest {expected} does not match uploaded content {actual}"),
            ));
        }
        let size = session.offset;
        self.storage.commit_blob(&data, expected).await?;
        self.remove(session).await?;
        Ok(size)
    }

    /// Cancels (or cleans up after) a session: its bytes are deleted.
    pub async fn remove(&self, session: &mut Session) -> AppResult<()> {
        session.closed = true;
        self.lock_map().remove(&session.uuid);
        self.storage.delete_all(&keys::upload(&session.uuid)).await?;
        Ok(())
    }

    /// Removes sessions idle for longer than `max_idle_secs` (abandoned uploads).
    pub async fn sweep(&self, max_idle_secs: u64) -> AppResult<usize> {
        let now = now_secs();
        let mut removed = 0;
        for uuid in self.storage.list(keys::UPLOADS).await? {
            if !valid_uuid(&uuid) {
                continue;
            }
            let live = self.lock_map().get(&uuid).cloned();
            let idle = match &live {
                Some(s) => match s.try_lock() {
                    Ok(g) => now.saturating_sub(g.updated),
                    Err(_) => 0, // in use right now
                },
                None => {
                    let info = self.storage.get(&keys::upload_info(&uuid)).await?;
                    let created = info
                        .and_then(|i| serde_json::from_slice::<Info>(&i).ok())
                        .map(|i| i.created)
                        .unwrap_or(0);
                    let stat = self.storage.stat(&keys::upload_data(&uuid)).await?;
                    let modified = stat.and_then(|s| s.modified).unwrap_or(created);
                    now.saturating_sub(modified.max(created))
                }
            };
            if idle > max_idle_secs {
                self.lock_map().remove(&uuid);
                self.storage.delete_all(&keys::upload(&uuid)).await?;
                log::info!("removed abandoned upload {uuid} (idle {idle}s)");
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Streams a whole blob (monolithic upload) into the store, verifying `expected`.
    pub async fn put_monolithic<S, E>(&self, expected: &Digest, mut body: S) -> AppResult<u64>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<AppError>,
    {
        let mut blob = self.storage.begin_blob(vec![Hasher::new(expected.algorithm())]).await?;
        pump(blob.sink.as_mut(), &mut body).await.map_err(Into::into)?;
        let mut written = blob.finish().await?;
        let actual = std::mem::take(&mut written.hashers)
            .into_iter()
            .next()
            .map(Hasher::finish)
            .ok_or_else(|| AppError::internal("no hasher"))?;
        if &actual != expected {
            written.discard(&self.storage).await?;
            return Err(AppError::new(
                Kind::DigestInvalid,
                format!("provided digest {expected} does not match uploaded content {actual}"),
            ));
        }
        let size = written.written;
        written.commit(&self.storage, expected).await?;
        Ok(size)
    }

    /// The digest of the first `len` bytes of a stored object (an upload whose running hash was
    /// lost to a restart or an interrupted chunk).
    async fn hash_stored(&self, key: &str, len: u64, algo: Algorithm) -> AppResult<Digest> {
        let mut stream = self.storage.read(key, 0, len).await?;
        let mut hasher = Hasher::new(algo);
        while let Some(chunk) = stream.next().await {
            hasher.update(&chunk?);
        }
        Ok(hasher.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> futures::stream::Iter<std::vec::IntoIter<Result<Bytes, std::io::Error>>> {
        let items: Vec<Result<Bytes, std::io::Error>> = parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        futures::stream::iter(items)
    }

    async fn uploads() -> (tempfile::TempDir, Storage, Uploads) {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open_fs(dir.path()).await.expect("open");
        let uploads = Uploads::new(storage.clone());
        (dir, storage, uploads)
    }

    /// Regression (found by the property tests): a chunk declaring the range `0-(2^64-1)`
    /// overflowed `end - start + 1` after streaming and panicked the worker.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_range_spanning_all_of_u64_is_416_not_a_panic() {
        let (_dir, _storage, uploads) = uploads().await;
        let repo = RepoName::parse("alice/app").expect("name");
        let uuid = uploads.start(&repo, Algorithm::Sha256).await.expect("start");
        let session = uploads.get(&repo, &uuid).await.expect("session");
        let mut s = session.lock().await;
        let err = uploads
            .append(&mut s, Some((0, u64::MAX)), chunks(&[b"abc"]))
            .await
            .expect_err("the range does not match the 3 bytes sent");
        assert_eq!(err.kind, Kind::RangeNotSatisfiable);
        assert_eq!(s.offset, 3, "the bytes sent are kept");
    }

    /// Chunks in order, a chunk that does not continue the upload (416, nothing written), then
    /// a "restart" (a new `Uploads`: the running hash is gone) and the close.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chunked_upload_survives_a_restart() {
        let (_dir, storage, uploads) = uploads().await;
        let repo = RepoName::parse("alice/app").expect("name");
        let uuid = uploads.start(&repo, Algorithm::Sha256).await.expect("start");
        let session = uploads.get(&repo, &uuid).await.expect("session");
        {
            let mut s = session.lock().await;
            assert_eq!(
                uploads
                    .append(&mut s, Some((0, 2)), chunks(&[b"abc"]))
                    .await
                    .expect("chunk"),
                3
            );
            let err = uploads
                .append(&mut s, Some((10, 12)), chunks(&[b"xyz"]))
                .await
                .expect_err("out of order");
            assert_eq!(err.kind, Kind::RangeNotSatisfiable);
            assert_eq!(
                uploads
                    .append(&mut s, None, chunks(&[b"de", b"f"]))
                    .await
                    .expect("chunk"),
                6
            );
        }
        let other = RepoName::parse("carol/app").expect("name");
        assert_eq!(
            uploads.get(&other, &uuid).await.err().map(|e| e.kind),
            Some(Kind::BlobUploadUnknown),
            "a session belongs to its repository"
        );

        let restarted = Uploads::new(storage.clone());
        let session = restarted.get(&repo, &uuid).await.expect("session after restart");
        let mut s = session.lock().await;
        assert_eq!(s.offset, 6);
        let digest = Digest::sha256_of(b"abcdefgh");
        restarted.append(&mut s, None, chunks(&[b"gh"])).await.expect("chunk");
        assert_eq!(restarted.finish(&mut s, &digest).await.expect("close"), 8);
        assert_eq!(storage.blob_size(&digest).await.expect("stat"), Some(8));
        assert!(
            storage.list(keys::UPLOADS).await.expect("list").is_empty(),
            "session removed"
        );
    }

    /// A wrong digest is DIGEST_INVALID and nothing reaches the blob store; idle sessions are
    /// swept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wrong_digests_store_nothing_and_idle_sessions_go() {
        let (_dir, storage, uploads) = uploads().await;
        let repo = RepoName::parse("alice/app").expect("name");
        let wrong = Digest::sha256_of(b"something else");
        let err = uploads
            .put_monolithic(&wrong, chunks(&[b"data"]))
            .await
            .expect_err("mismatch");
        assert_eq!(err.kind, Kind::DigestInvalid);
        assert_eq!(storage.blob_size(&wrong).await.expect("stat"), None);
        assert_eq!(
            storage.blob_size(&Digest::sha256_of(b"data")).await.expect("stat"),
            None
        );
        assert!(
            storage.walk(keys::TMP).await.expect("walk").is_empty(),
            "temp data removed"
        );

        let uuid = uploads.start(&repo, Algorithm::Sha256).await.expect("start");
        assert_eq!(uploads.sweep(3600).await.expect("sweep"), 0, "a fresh session stays");
        // Everything is idle for longer than zero seconds once a second has passed.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        assert_eq!(uploads.sweep(0).await.expect("sweep"), 1);
        assert!(uploads.get(&repo, &uuid).await.is_err());
    }
}
