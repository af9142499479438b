//! v2 blob upload sessions: monolithic, chunked (in order, 416 otherwise), resumable across
//! requests and restarts, cancellable, and swept when abandoned.
//!
//! A session is `_uploads/<uuid>/{info,data}` in storage. The running hash lives in memory while
//! the process does; after a restart (or an interrupted chunk) it is recomputed from the data
//! file when the upload is closed. Nothing is visible until the digest is verified and the file
//! is renamed into the blob store.

use super::digest::{Algorithm, Digest, Hasher};
use super::names::RepoName;
use crate::error::{AppError, AppResult, Kind};
use crate::index::now_secs;
use crate::storage::{blocking, BlobSink, Storage};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
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

    fn data_path(&self, uuid: &str) -> PathBuf {
        self.storage.root().join("_uploads").join(uuid).join("data")
    }

    pub async fn start(&self, repo: &RepoName, algo: Algorithm) -> AppResult<String> {
        let uuid = hex::encode(rand::random::<[u8; 16]>());
        let info = Info {
            repo: repo.to_string(),
            algo: algo.name().into(),
            created: now_secs(),
        };
        self.storage
            .put(&format!("_uploads/{uuid}/info"), serde_json::to_vec(&info)?)
            .await?;
        let path = self.data_path(&uuid);
        blocking(move || std::fs::File::create(path).map(|_| ())).await?;
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
                let info = self
                    .storage
                    .get(&format!("_uploads/{uuid}/info"))
                    .await?
                    .ok_or_else(unknown)?;
                let info: Info = serde_json::from_slice(&info)?;
                let algo = if info.algo == "sha512" {
                    Algorithm::Sha512
                } else {
                    Algorithm::Sha256
                };
                let path = self.data_path(uuid);
                let offset = blocking(move || std::fs::metadata(path).map(|m| m.len()))
                    .await
                    .map_err(|_| unknown())?;
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
    /// it must start where the upload stands, else 416.
    pub async fn append<S, E>(&self, session: &mut Session, range: Option<(u64, u64)>, body: S) -> AppResult<u64>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
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
        let mut sink = BlobSink::start(self.data_path(&session.uuid), true, hashers);
        let streamed = pump(&mut sink, body).await;
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
                let path = self.data_path(&session.uuid);
                session.offset = blocking(move || std::fs::metadata(path).map(|m| m.len())).await?;
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
            if end - start + 1 != outcome.written {
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
        let path = self.data_path(&session.uuid);
        let actual = match session.hasher.take() {
            Some(h) if expected.algorithm() == session.algo => h.finish(),
            _ => {
                let (p, algo) = (path.clone(), expected.algorithm());
                blocking(move || hash_file(&p, algo)).await?
            }
        };
        if &actual != expected {
            self.remove(session).await?;
            return Err(AppError::new(
                Kind::DigestInvalid,
                format!("provided digest {expected} does not match uploaded content {actual}"),
            ));
        }
        let size = session.offset;
        let (s, d) = (self.storage.clone(), expected.clone());
        blocking(move || {
            std::fs::File::open(&path)?.sync_all()?;
            s.commit_blob_sync(&path, &d)
        })
        .await?;
        self.remove(session).await?;
        Ok(size)
    }

    /// Cancels (or cleans up after) a session: its bytes are deleted.
    pub async fn remove(&self, session: &mut Session) -> AppResult<()> {
        session.closed = true;
        self.lock_map().remove(&session.uuid);
        self.storage.delete_all(&format!("_uploads/{}", session.uuid)).await?;
        Ok(())
    }

    /// Removes sessions idle for longer than `max_idle_secs` (abandoned uploads).
    pub async fn sweep(&self, max_idle_secs: u64) -> AppResult<usize> {
        let now = now_secs();
        let mut removed = 0;
        for uuid in self.storage.list("_uploads").await? {
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
                    let info = self.storage.get(&format!("_uploads/{uuid}/info")).await?;
                    let created = info
                        .and_then(|i| serde_json::from_slice::<Info>(&i).ok())
                        .map(|i| i.created)
                        .unwrap_or(0);
                    let path = self.data_path(&uuid);
                    let modified = blocking(move || {
                        Ok(std::fs::metadata(path)
                            .and_then(|m| m.modified())
                            .ok()
                            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                            .map(|d| d.as_secs()))
                    })
                    .await?
                    .unwrap_or(created);
                    now.saturating_sub(modified.max(created))
                }
            };
            if idle > max_idle_secs {
                self.lock_map().remove(&uuid);
                self.storage.delete_all(&format!("_uploads/{uuid}")).await?;
                log::info!("removed abandoned upload {uuid} (idle {idle}s)");
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Streams a whole blob (monolithic upload) into the store, verifying `expected`.
    pub async fn put_monolithic<S, E>(&self, expected: &Digest, body: S) -> AppResult<u64>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut sink = self.storage.begin_blob(vec![Hasher::new(expected.algorithm())]);
        pump(&mut sink, body).await?;
        let outcome = sink.finish().await?;
        let actual = outcome
            .hashers
            .into_iter()
            .next()
            .map(Hasher::finish)
            .ok_or_else(|| AppError::internal("no hasher"))?;
        if &actual != expected {
            let _ = tokio::fs::remove_file(&outcome.path).await;
            return Err(AppError::new(
                Kind::DigestInvalid,
                format!("provided digest {expected} does not match uploaded content {actual}"),
            ));
        }
        self.storage.commit_blob(outcome.path, expected).await?;
        Ok(outcome.written)
    }
}

/// Moves the request body into the sink. Errors when the client's stream breaks.
async fn pump<S, E>(sink: &mut BlobSink, mut body: S) -> AppResult<()>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| AppError::new(Kind::BlobUploadInvalid, format!("upload interrupted: {e}")))?;
        if sink.send(chunk).await.is_err() {
            break; // the writer failed; finish() reports why
        }
    }
    Ok(())
}

fn hash_file(path: &std::path::Path, algo: Algorithm) -> std::io::Result<Digest> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Hasher::new(algo);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish())
}
