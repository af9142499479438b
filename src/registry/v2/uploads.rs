//! v2 blob upload sessions: monolithic, chunked (in order, 416 otherwise), resumable across
//! requests, restarts and registry nodes, cancellable, and swept when abandoned.
//!
//! A session's whole state is in the shared store, so any node (any process on the same
//! storage) continues any upload: `_uploads/<uuid>/info` holds the offset, the list of parts
//! and the running hash's state ([`HashState`]); each request's bytes are a part object of
//! their own (S3 cannot append). A request reads the info, writes its part while the resumed
//! hasher runs, then rewrites the info with one `put`: the last writer wins, and the parts and
//! the hash state always come from the same writer, so the session is always one consistent
//! history. Nothing of a node's memory is the truth; a per-uuid lock only keeps one process's
//! own requests in order.
//!
//! Closing checks the digest against the hash state, without reading a byte; then one part is
//! moved into the blob store as it is (the fs driver renames it: a single-PATCH upload is never
//! copied), several are concatenated into a new blob (hashed again on the way).

use crate::clock::now_secs;
use crate::digest::{Algorithm, Digest, HashState, Hasher};
use crate::error::{AppError, AppResult, Kind};
use crate::names::RepoName;
use crate::storage::{keys, pump, Storage};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

/// `_uploads/<uuid>/info`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Info {
    repo: String,
    algo: Algorithm,
    created: u64,
    /// When a request last changed the session (the sweep's idea of activity).
    updated: u64,
    /// Bytes received: the sum of the parts' sizes.
    offset: u64,
    /// In upload order.
    parts: Vec<Part>,
    /// The hash of the first `offset` bytes; `None` if lost (then recomputed from the parts).
    hash: Option<HashState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Part {
    key: String,
    size: u64,
}

/// A session as a request found it in storage.
#[derive(Debug, Clone)]
pub struct Session {
    pub uuid: String,
    pub repo: RepoName,
    /// Bytes received when the session was read.
    pub offset: u64,
}

type Locks = Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>;

#[derive(Clone)]
pub struct Uploads {
    storage: Storage,
    /// Keeps this process's own requests on one session in order (not the truth: see above).
    locks: Locks,
}

/// A held per-uuid lock; the map entry goes with the last holder or waiter.
struct Held {
    _guard: OwnedMutexGuard<()>,
    locks: Locks,
    uuid: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        // The map's reference and our guard's: nobody else waits for this session.
        if map.get(&self.uuid).is_some_and(|m| Arc::strong_count(m) <= 2) {
            map.remove(&self.uuid);
        }
    }
}

fn unknown() -> AppError {
    AppError::new(Kind::BlobUploadUnknown, "blob upload unknown to registry")
}

fn out_of_order(start: u64, end: u64, offset: u64) -> AppError {
    AppError::new(
        Kind::RangeNotSatisfiable,
        format!("chunk {start}-{end} does not continue the upload at offset {offset}"),
    )
}

/// Validates a session id from a URL before it is used in a key.
fn valid_uuid(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

impl Uploads {
    pub fn new(storage: Storage) -> Uploads {
        Uploads {
            storage,
            locks: Arc::default(),
        }
    }

    async fn hold(&self, uuid: &str) -> Held {
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(uuid.to_string()).or_default().clone()
        };
        Held {
            _guard: lock.lock_owned().await,
            locks: self.locks.clone(),
            uuid: uuid.to_string(),
        }
    }

    /// Whether a request of this process is working on `uuid` right now.
    fn busy_here(&self, uuid: &str) -> bool {
        let map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        map.get(uuid).is_some_and(|m| m.try_lock().is_err())
    }

    /// The session's info; `None` when there is none, or one this version cannot read (a
    /// session opened before an upgrade): the client starts the upload again, and the sweep
    /// removes the old one.
    async fn read_info(&self, uuid: &str) -> AppResult<Option<Info>> {
        let raw = self.storage.get(&keys::upload_info(uuid)).await?;
        Ok(raw.and_then(|raw| serde_json::from_slice(&raw).ok()))
    }

    /// The session's info as stored now, if it is still `session`'s repository's.
    async fn load(&self, session: &Session) -> AppResult<Info> {
        let info = self.read_info(&session.uuid).await?.ok_or_else(unknown)?;
        if info.repo != session.repo.to_string() {
            return Err(unknown());
        }
        Ok(info)
    }

    async fn save(&self, uuid: &str, info: &Info) -> AppResult<()> {
        let raw = serde_json::to_vec(info)?;
        self.storage.put(&keys::upload_info(uuid), raw.into()).await?;
        Ok(())
    }

    pub async fn start(&self, repo: &RepoName, algo: Algorithm) -> AppResult<String> {
        let uuid = hex::encode(rand::random::<[u8; 16]>());
        let now = now_secs();
        let info = Info {
            repo: repo.to_string(),
            algo,
            created: now,
            updated: now,
            offset: 0,
            parts: Vec::new(),
            hash: Some(Hasher::new(algo).state()),
        };
        self.save(&uuid, &info).await?;
        Ok(uuid)
    }

    /// The session `uuid` of `repo`, as the store has it now.
    pub async fn get(&self, repo: &RepoName, uuid: &str) -> AppResult<Session> {
        if !valid_uuid(uuid) {
            return Err(unknown());
        }
        let info = self.read_info(uuid).await?.ok_or_else(unknown)?;
        if info.repo != repo.to_string() {
            return Err(unknown());
        }
        Ok(Session {
            uuid: uuid.to_string(),
            repo: repo.clone(),
            offset: info.offset,
        })
    }

    /// Adds a chunk. `range` is the request's `Content-Range` (inclusive), if it sent one: it
    /// must start where the upload stands, else 416 and nothing is written. A body that fails
    /// (the client went away, or stalled) keeps what reached storage: the part is finished with
    /// it and recorded, the offset advances by it, and the body's error is returned.
    pub async fn append<S, E>(&self, session: &Session, range: Option<(u64, u64)>, body: S) -> AppResult<u64>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<AppError>,
    {
        let _held = self.hold(&session.uuid).await;
        let mut info = self.load(session).await?;
        self.append_locked(session, &mut info, range, body).await
    }

    /// A final chunk (possibly empty) and the close, in one turn of the session's lock.
    pub async fn close<S, E>(
        &self,
        session: &Session,
        range: Option<(u64, u64)>,
        body: S,
        expected: &Digest,
    ) -> AppResult<u64>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<AppError>,
    {
        let _held = self.hold(&session.uuid).await;
        let mut info = self.load(session).await?;
        self.append_locked(session, &mut info, range, body).await?;
        self.finish_locked(session, info, expected).await
    }

    /// Closes the upload: verifies `expected`, moves the bytes into the blob store.
    pub async fn finish(&self, session: &Session, expected: &Digest) -> AppResult<u64> {
        let _held = self.hold(&session.uuid).await;
        let info = self.load(session).await?;
        self.finish_locked(session, info, expected).await
    }

    /// [`Uploads::append`] with the lock held; `info` becomes what was saved.
    async fn append_locked<S, E>(
        &self,
        session: &Session,
        info: &mut Info,
        range: Option<(u64, u64)>,
        mut body: S,
    ) -> AppResult<u64>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<AppError>,
    {
        if let Some((start, end)) = range {
            if start != info.offset || end < start {
                return Err(out_of_order(start, end, info.offset));
            }
        }
        let check_len = |written: u64| match range {
            // Checked: `0-18446744073709551615` spans 2^64 bytes, which no chunk can have.
            Some((start, end)) if (end - start).checked_add(1) != Some(written) => Err(AppError::new(
                Kind::RangeNotSatisfiable,
                format!("Content-Range {start}-{end} does not match the {written} bytes sent"),
            )),
            _ => Ok(()),
        };
        // A body without bytes (the usual closing PUT) writes no part at all.
        let first = match body.next().await {
            None => {
                check_len(0)?;
                return Ok(info.offset);
            }
            Some(chunk) => chunk.map_err(Into::into)?,
        };
        let start = info.offset;
        let hasher = match &info.hash {
            Some(state) if state.algo == info.algo && state.len == start => Hasher::resume(state).ok(),
            _ => None,
        };
        let key = keys::upload_part(&session.uuid, start, &hex::encode(rand::random::<[u8; 4]>()));
        let mut sink = self.storage.writer(&key, hasher.into_iter().collect()).await?;
        let streamed = match sink.send(first).await {
            Ok(()) => pump(sink.as_mut(), &mut body).await.map_err(Into::into),
            Err(()) => Ok(()), // the sink failed: `finish` says why
        };
        // Finished whatever happened to the body: what arrived is kept.
        let outcome = match sink.finish().await {
            Ok(o) => o,
            Err(e) => {
                streamed?;
                return Err(e.into());
            }
        };
        let written = outcome.written;
        if written == 0 {
            self.storage.delete(&key).await?;
            streamed?;
            check_len(0)?;
            return Ok(info.offset);
        }
        // Read again before recording: a session closed or cancelled meanwhile stays so, and a
        // request that continued it first (on another node, say) wins over this one.
        let current = match self.read_info(&session.uuid).await? {
            Some(current) if current.repo == info.repo => current,
            _ => {
                self.storage.delete(&key).await?;
                return Err(unknown());
            }
        };
        if current.offset != start {
            self.storage.delete(&key).await?;
            return Err(out_of_order(start, start + written - 1, current.offset));
        }
        *info = current;
        info.parts.push(Part { key, size: written });
        info.offset = start + written;
        info.hash = outcome.hashers.into_iter().next().map(|h| h.state());
        info.updated = now_secs();
        self.save(&session.uuid, info).await?;
        streamed?;
        check_len(written)?;
        Ok(info.offset)
    }

    /// [`Uploads::finish`] with the lock held.
    async fn finish_locked(&self, session: &Session, info: Info, expected: &Digest) -> AppResult<u64> {
        let algo = expected.algorithm();
        let actual = match &info.hash {
            Some(state) if state.algo == algo && state.len == info.offset => match Hasher::resume(state) {
                Ok(h) => h.finish(),
                Err(e) => {
                    log::warn!("upload {}: {e}; hashing its parts again", session.uuid);
                    self.hash_parts(&info.parts, algo).await?
                }
            },
            _ => self.hash_parts(&info.parts, algo).await?,
        };
        if &actual != expected {
            self.storage.delete_all(&keys::upload(&session.uuid)).await?;
            return Err(digest_mismatch(expected, &actual));
        }
        match info.parts.as_slice() {
            [] => {
                let blob = self.storage.begin_blob(Vec::new()).await?;
                blob.finish().await?.commit(&self.storage, expected).await?;
            }
            [one] => self.storage.commit_blob(&one.key, expected).await?,
            parts => self.concatenate(parts, expected, info.offset).await?,
        }
        self.storage.delete_all(&keys::upload(&session.uuid)).await?;
        Ok(info.offset)
    }

    /// Streams `parts` in order into a new blob, checks it is `expected` and `size` bytes long
    /// (the parts are read back, so the check holds for what is actually stored), commits it.
    async fn concatenate(&self, parts: &[Part], expected: &Digest, size: u64) -> AppResult<()> {
        let mut blob = self.storage.begin_blob(vec![Hasher::new(expected.algorithm())]).await?;
        'parts: for part in parts {
            let mut stream = match self.storage.read(&part.key, 0, part.size).await {
                Ok(s) => s,
                Err(e) => {
                    blob.sink.abort().await?;
                    return Err(e.into());
                }
            };
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(chunk) => {
                        if blob.sink.send(chunk).await.is_err() {
                            break 'parts; // the sink failed: `finish` says why
                        }
                    }
                    Err(e) => {
                        blob.sink.abort().await?;
                        return Err(e.into());
                    }
                }
            }
        }
        let mut written = blob.finish().await?;
        let actual = std::mem::take(&mut written.hashers)
            .into_iter()
            .next()
            .map(Hasher::finish)
            .ok_or_else(|| AppError::internal("no hasher"))?;
        if &actual != expected || written.written != size {
            let got = written.written;
            written.discard(&self.storage).await?;
            return Err(AppError::internal(format!(
                "the stored parts of an upload of {expected} read back as {actual} ({got} of {size} bytes)"
            )));
        }
        written.commit(&self.storage, expected).await?;
        Ok(())
    }

    /// Cancels (or cleans up after) a session: its parts are deleted.
    pub async fn remove(&self, session: &Session) -> AppResult<()> {
        let _held = self.hold(&session.uuid).await;
        self.load(session).await?;
        self.storage.delete_all(&keys::upload(&session.uuid)).await?;
        Ok(())
    }

    /// Removes sessions idle for longer than `max_idle_secs` (abandoned uploads). Activity is
    /// the info's `updated`, or a part being written later than that (a long PATCH in progress
    /// on some node, whose part a driver like fs shows while it grows).
    pub async fn sweep(&self, max_idle_secs: u64) -> AppResult<usize> {
        let now = now_secs();
        let mut removed = 0;
        for uuid in self.storage.list(keys::UPLOADS).await? {
            if !valid_uuid(&uuid) || self.busy_here(&uuid) {
                continue;
            }
            let info = match self.read_info(&uuid).await {
                Ok(info) => info,
                Err(e) => {
                    log::warn!("upload {uuid}: unreadable info ({e}); removed when idle");
                    None
                }
            };
            let mut last = info.map_or(0, |i| i.updated.max(i.created));
            if now.saturating_sub(last) <= max_idle_secs {
                continue;
            }
            for key in self.storage.walk(&keys::upload(&uuid)).await? {
                if let Some(modified) = self.storage.stat(&key).await?.and_then(|s| s.modified) {
                    last = last.max(modified);
                }
            }
            let idle = now.saturating_sub(last);
            if idle > max_idle_secs {
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
            return Err(digest_mismatch(expected, &actual));
        }
        let size = written.written;
        written.commit(&self.storage, expected).await?;
        Ok(size)
    }

    /// The digest of an upload's parts, read back (a session whose hash state was lost, or
    /// closed with another algorithm than it was started with).
    async fn hash_parts(&self, parts: &[Part], algo: Algorithm) -> AppResult<Digest> {
        let mut hasher = Hasher::new(algo);
        for part in parts {
            let mut stream = self.storage.read(&part.key, 0, part.size).await?;
            while let Some(chunk) = stream.next().await {
                hasher.update(&chunk?);
            }
        }
        Ok(hasher.finish())
    }
}

fn digest_mismatch(expected: &Digest, actual: &Digest) -> AppError {
    AppError::new(
        Kind::DigestInvalid,
        format!("provided digest {expected} does not match uploaded content {actual}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    type Body = futures::stream::Iter<std::vec::IntoIter<Result<Bytes, std::io::Error>>>;

    fn chunks(parts: &[&[u8]]) -> Body {
        let items: Vec<Result<Bytes, std::io::Error>> = parts.iter().map(|p| Ok(Bytes::copy_from_slice(p))).collect();
        futures::stream::iter(items)
    }

    async fn uploads() -> (tempfile::TempDir, Storage, Uploads) {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open_fs(dir.path()).await.expect("open");
        let uploads = Uploads::new(storage.clone());
        (dir, storage, uploads)
    }

    fn repo() -> RepoName {
        RepoName::parse("alice/app").expect("name")
    }

    async fn info(storage: &Storage, uuid: &str) -> Info {
        let raw = storage.get(&keys::upload_info(uuid)).await.expect("get").expect("info");
        serde_json::from_slice(&raw).expect("json")
    }

    async fn objects(storage: &Storage, uuid: &str) -> Vec<String> {
        storage.walk(&keys::upload(uuid)).await.expect("walk")
    }

    async fn blob(storage: &Storage, digest: &Digest) -> Vec<u8> {
        let size = storage.blob_size(digest).await.expect("stat").expect("blob stored");
        let mut stream = storage.read_blob(digest, 0, size).await.expect("read");
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.expect("chunk"));
        }
        out
    }

    /// A session whose info this version cannot read (opened before an upgrade) is an unknown
    /// upload, 404 for the client, not a server error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unreadable_session_info_is_an_unknown_upload() {
        let (_dir, storage, uploads) = uploads().await;
        let uuid = uploads.start(&repo(), Algorithm::Sha256).await.expect("start");
        storage
            .put(
                &keys::upload_info(&uuid),
                Bytes::from_static(br#"{"repo":"alice/app","algo":"sha256"}"#),
            )
            .await
            .expect("an old-format info");
        let kind = uploads.get(&repo(), &uuid).await.err().map(|e| e.kind);
        assert_eq!(kind, Some(Kind::BlobUploadUnknown));
    }

    /// Regression (found by the property tests): a chunk declaring the range `0-(2^64-1)`
    /// overflowed `end - start + 1` after streaming and panicked the worker.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_range_spanning_all_of_u64_is_416_not_a_panic() {
        let (_dir, _storage, uploads) = uploads().await;
        let uuid = uploads.start(&repo(), Algorithm::Sha256).await.expect("start");
        let s = uploads.get(&repo(), &uuid).await.expect("session");
        let err = uploads
            .append(&s, Some((0, u64::MAX)), chunks(&[b"abc"]))
            .await
            .expect_err("the range does not match the 3 bytes sent");
        assert_eq!(err.kind, Kind::RangeNotSatisfiable);
        assert_eq!(uploads.get(&repo(), &uuid).await.expect("session").offset, 3, "kept");
    }

    /// Chunks spread over two "nodes" (two `Uploads` on one store, nothing shared in memory):
    /// each continues the other's hash from the stored state, a chunk that does not continue
    /// the upload is 416 and writes nothing, and the second node closes the upload from three
    /// parts. A wrong digest is refused from the hash state alone: with the parts deleted it is
    /// still DIGEST_INVALID (hashing the parts again would fail to read them).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn any_node_continues_an_upload_from_the_stored_hash_state() {
        let (_dir, storage, a) = uploads().await;
        let b = Uploads::new(storage.clone());
        let uuid = a.start(&repo(), Algorithm::Sha256).await.expect("start");
        let s = a.get(&repo(), &uuid).await.expect("session");
        assert_eq!(a.append(&s, Some((0, 2)), chunks(&[b"abc"])).await.expect("chunk"), 3);

        let before = objects(&storage, &uuid).await;
        let err = b
            .append(&s, Some((10, 12)), chunks(&[b"xyz"]))
            .await
            .expect_err("out of order");
        assert_eq!(err.kind, Kind::RangeNotSatisfiable);
        assert_eq!(objects(&storage, &uuid).await, before, "a refused chunk writes nothing");

        let s = b.get(&repo(), &uuid).await.expect("session on the second node");
        assert_eq!(s.offset, 3);
        assert_eq!(b.append(&s, None, chunks(&[b"de", b"f"])).await.expect("chunk"), 6);
        let state = info(&storage, &uuid).await.hash.expect("hash state stored");
        assert_eq!(state.len, 6);
        assert_eq!(
            Hasher::resume(&state).expect("resume").finish(),
            Digest::sha256_of(b"abcdef"),
            "the second node continued the first one's hash"
        );
        assert_eq!(a.append(&s, Some((6, 7)), chunks(&[b"gh"])).await.expect("chunk"), 8);
        let other = RepoName::parse("carol/app").expect("name");
        assert_eq!(
            b.get(&other, &uuid).await.err().map(|e| e.kind),
            Some(Kind::BlobUploadUnknown),
            "a session belongs to its repository"
        );

        let stored = info(&storage, &uuid).await;
        assert_eq!(stored.parts.iter().map(|p| p.size).collect::<Vec<_>>(), vec![3, 3, 2]);
        let digest = Digest::sha256_of(b"abcdefgh");
        assert_eq!(b.finish(&s, &digest).await.expect("close"), 8);
        assert_eq!(
            blob(&storage, &digest).await,
            b"abcdefgh",
            "parts concatenated in order"
        );
        assert!(
            storage.list(keys::UPLOADS).await.expect("list").is_empty(),
            "session removed"
        );
        assert!(
            storage.walk(keys::TMP).await.expect("walk").is_empty(),
            "no temp object left"
        );

        // The same history again, its parts then deleted behind the session's back.
        let uuid = a.start(&repo(), Algorithm::Sha256).await.expect("start");
        let s = a.get(&repo(), &uuid).await.expect("session");
        a.append(&s, None, chunks(&[b"abc"])).await.expect("chunk");
        b.append(&s, None, chunks(&[b"def"])).await.expect("chunk");
        for part in info(&storage, &uuid).await.parts {
            assert!(storage.delete(&part.key).await.expect("delete part"));
        }
        let err = a
            .finish(&s, &Digest::sha256_of(b"abcdefX"))
            .await
            .expect_err("wrong digest");
        assert_eq!(err.kind, Kind::DigestInvalid, "decided from the hash state: {err}");
        assert!(
            storage.list(keys::UPLOADS).await.expect("list").is_empty(),
            "session removed"
        );
    }

    /// One part (docker's single PATCH) is moved into the blob store as it is; an upload with
    /// no bytes at all is the empty blob; a closing PUT with no body writes no part.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_part_is_committed_as_it_is_and_no_part_is_the_empty_blob() {
        let (_dir, storage, uploads) = uploads().await;
        let data = vec![7u8; 3 << 20];
        let uuid = uploads.start(&repo(), Algorithm::Sha256).await.expect("start");
        let s = uploads.get(&repo(), &uuid).await.expect("session");
        uploads.append(&s, None, chunks(&[&data])).await.expect("chunk");
        let part = info(&storage, &uuid).await.parts.remove(0).key;
        let digest = Digest::sha256_of(&data);
        let size = uploads
            .close(&s, None, chunks(&[]), &digest)
            .await
            .expect("close with an empty body");
        assert_eq!(size, data.len() as u64);
        assert!(storage.stat(&part).await.expect("stat").is_none(), "the part was moved");
        assert_eq!(blob(&storage, &digest).await, data);

        let uuid = uploads.start(&repo(), Algorithm::Sha256).await.expect("start");
        let s = uploads.get(&repo(), &uuid).await.expect("session");
        let empty = Digest::sha256_of(b"");
        assert_eq!(uploads.close(&s, None, chunks(&[]), &empty).await.expect("close"), 0);
        assert_eq!(storage.blob_size(&empty).await.expect("stat"), Some(0));
    }

    /// A body that fails midway keeps what arrived: the part is recorded with its hash, the
    /// error is returned, and the upload continues after those bytes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interrupted_chunk_keeps_its_bytes_and_the_upload_completes() {
        let (_dir, storage, uploads) = uploads().await;
        let uuid = uploads.start(&repo(), Algorithm::Sha256).await.expect("start");
        let s = uploads.get(&repo(), &uuid).await.expect("session");
        let broken = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"abc")),
            Ok(Bytes::from_static(b"de")),
            Err(std::io::Error::other("client went away")),
        ]);
        let err = uploads.append(&s, None, broken).await.expect_err("the body failed");
        assert!(
            err.to_string().contains("went away") || err.kind == Kind::Internal,
            "{err}"
        );
        let s = uploads.get(&repo(), &uuid).await.expect("session");
        assert_eq!(s.offset, 5, "the bytes that arrived count");
        assert_eq!(info(&storage, &uuid).await.hash.map(|h| h.len), Some(5));
        uploads
            .append(&s, Some((5, 7)), chunks(&[b"fgh"]))
            .await
            .expect("continue");
        let digest = Digest::sha256_of(b"abcdefgh");
        uploads.finish(&s, &digest).await.expect("close");
        assert_eq!(blob(&storage, &digest).await, b"abcdefgh");
    }

    /// Two nodes PATCH at the same offset at once, many times over: the session is always one
    /// of the two histories (its parts and hash state from the same writer), never a mix, and
    /// it closes with that history's digest and bytes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_chunks_at_one_offset_leave_one_consistent_history() {
        let (_dir, storage, a) = uploads().await;
        let b = Uploads::new(storage.clone());
        for round in 0..12 {
            let uuid = a.start(&repo(), Algorithm::Sha256).await.expect("start");
            let s = a.get(&repo(), &uuid).await.expect("session");
            a.append(&s, None, chunks(&[b"abc"])).await.expect("chunk");
            let x = vec![b'x'; 300_000];
            let y = vec![b'y'; 200_000 + round * 1000];
            let slow = |data: Vec<u8>| {
                futures::stream::iter(data.chunks(50_000).map(Bytes::copy_from_slice).collect::<Vec<_>>())
                    .then(|c| async move {
                        tokio::task::yield_now().await;
                        Ok::<_, std::io::Error>(c)
                    })
                    .boxed()
            };
            let (ra, rb) = tokio::join!(
                a.append(&s, Some((3, 3 + x.len() as u64 - 1)), slow(x.clone())),
                b.append(&s, Some((3, 3 + y.len() as u64 - 1)), slow(y.clone())),
            );
            assert!(
                ra.is_ok() || rb.is_ok(),
                "round {round}: one of them continues the upload"
            );
            let stored = info(&storage, &uuid).await;
            let winner = if stored.offset == 3 + x.len() as u64 { &x } else { &y };
            assert_eq!(stored.offset, 3 + winner.len() as u64, "round {round}");
            let mut whole = b"abc".to_vec();
            whole.extend_from_slice(winner);
            assert_eq!(stored.parts.iter().map(|p| p.size).sum::<u64>(), stored.offset);
            let digest = Digest::sha256_of(&whole);
            let s = b.get(&repo(), &uuid).await.expect("session");
            b.finish(&s, &digest).await.expect("the winner's history closes");
            assert_eq!(blob(&storage, &digest).await, whole, "round {round}");
            storage.delete(&keys::blob(&digest)).await.expect("clean");
        }
    }

    /// A wrong digest is DIGEST_INVALID and nothing reaches the blob store; sessions idle (by
    /// their info's `updated`) for longer than the expiry are swept, active ones stay.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wrong_digests_store_nothing_and_idle_sessions_go() {
        let (_dir, storage, uploads) = uploads().await;
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

        let old = uploads.start(&repo(), Algorithm::Sha256).await.expect("start");
        let s = uploads.get(&repo(), &old).await.expect("session");
        uploads.append(&s, None, chunks(&[b"abc"])).await.expect("chunk");
        let fresh = uploads.start(&repo(), Algorithm::Sha256).await.expect("start");
        assert_eq!(uploads.sweep(3600).await.expect("sweep"), 0, "fresh sessions stay");
        // Last changed two hours ago (its part, though, was written just now).
        let mut stale = info(&storage, &old).await;
        stale.updated -= 7200;
        stale.created -= 7200;
        uploads.save(&old, &stale).await.expect("save");
        assert_eq!(
            uploads.sweep(3600).await.expect("sweep"),
            0,
            "a part written lately counts"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        let s = uploads.get(&repo(), &fresh).await.expect("session");
        uploads.append(&s, None, chunks(&[b"x"])).await.expect("activity");
        assert_eq!(uploads.sweep(1).await.expect("sweep"), 1, "only the idle one");
        assert!(uploads.get(&repo(), &old).await.is_err());
        assert!(objects(&storage, &old).await.is_empty(), "its parts went with it");
        assert!(uploads.get(&repo(), &fresh).await.is_ok());
    }
}
