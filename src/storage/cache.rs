//! A node's own copy of the blobs it serves from a remote store (`[storage.s3] cache_mib`),
//! in a local directory, least recently used out first.
//!
//! Why: a proxied read costs the store, the network and this process a copy of every byte, and
//! the same few base layers are pulled again and again (every CI job, every node of a fleet).
//! A blob is content-addressed, so a copy never goes stale: the cache needs no invalidation,
//! only room. It is consulted after the shared store has said the repository may serve the blob
//! and the blob is there (`blob_for_client`), so a blob removed from the store (gc, a deleted
//! link) is not served from here either.
//!
//! How a blob gets in: the first whole read of it from the store is teed into a temp file here
//! as the client takes it (no second read of the store). The copy is kept only if every byte
//! arrived; then it is fsynced and renamed into place, so a crash leaves a temp file (removed at
//! the next start), never a short blob under a digest. Pieces go to a writer on the blocking
//! pool through a queue of bounded size; when the queue is full the client waits for the disk,
//! but for at most [`WAIT_MAX`] in all, after which the copy is given up (a disk slower than
//! the clients costs a first pull a second, not its speed).

use crate::digest::Digest;
use bytes::Bytes;
use futures::Stream;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// KiB a fill may have queued for its writer.
const QUEUED_KIB: u32 = 32 << 10;
/// How long in all a read may wait for its fill's writer before the copy is given up.
const WAIT_MAX: Duration = Duration::from_secs(1);
/// Fills at once: each holds a thread of the blocking pool while its client reads.
const FILLS_MAX: usize = 4;
const TEMP_PREFIX: &str = "tmp-";

pub struct BlobCache {
    dir: PathBuf,
    /// Held while the process lives: a second process on the same directory would remove this
    /// one's temp files at its start.
    _lock: super::local::LockFile,
    limit: u64,
    state: Mutex<State>,
    hits: AtomicU64,
}

#[derive(Default)]
struct State {
    entries: HashMap<Digest, Entry>,
    used: u64,
    /// Increases on every use: the entry with the smallest `last_used` goes first.
    clock: u64,
    filling: HashSet<Digest>,
}

struct Entry {
    size: u64,
    last_used: u64,
}

impl BlobCache {
    /// The cache in `dir` (created if missing), holding at most `limit` bytes. Temp files of a
    /// previous run are removed; its complete copies are kept, oldest first out. Refused while
    /// another process has `dir`.
    pub fn open(dir: &Path, limit: u64) -> io::Result<Arc<BlobCache>> {
        std::fs::create_dir_all(dir)?;
        let lock = super::local::try_lock(&dir.join(".lock"))?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::AddrInUse,
                "another process uses this blob cache directory ([storage.s3] cache_dir: one per process)",
            )
        })?;
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let digest = name.replacen('-', ":", 1).parse::<Digest>().ok();
            match (digest, entry.metadata()) {
                (Some(digest), Ok(meta)) if meta.is_file() => {
                    found.push((meta.modified().ok(), digest, meta.len()));
                }
                // A fill that did not finish.
                _ if name.starts_with(TEMP_PREFIX) => {
                    let _ = std::fs::remove_file(entry.path());
                }
                _ => {}
            }
        }
        found.sort_by_key(|(modified, _, _)| *modified);
        let cache = Arc::new(BlobCache {
            dir: dir.to_path_buf(),
            _lock: lock,
            limit,
            state: Mutex::new(State::default()),
            hits: AtomicU64::new(0),
        });
        for (_, digest, size) in found {
            cache.insert(digest, size);
        }
        Ok(cache)
    }

    /// Whether there is a copy of `digest` (without touching the disk).
    pub fn has(&self, digest: &Digest) -> bool {
        self.lock().entries.contains_key(digest)
    }

    /// The cached copy of `digest`, opened, if there is one.
    pub fn file(&self, digest: &Digest) -> Option<File> {
        {
            let mut state = self.lock();
            state.clock += 1;
            let now = state.clock;
            state.entries.get_mut(digest)?.last_used = now;
        }
        match File::open(self.path(digest)) {
            Ok(file) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(file)
            }
            Err(e) => {
                log::warn!("blob cache: {digest} listed but not readable ({e}); dropped");
                self.forget(digest);
                None
            }
        }
    }

    /// Reads served from the cache since the start.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Bytes the cached copies take.
    pub fn used(&self) -> u64 {
        self.lock().used
    }

    /// `stream`, the whole of blob `digest` (`size` bytes) read from the store, teed into the
    /// cache when the blob is not there yet, fits, and no other read is filling it.
    pub fn tee(
        self: &Arc<Self>,
        digest: &Digest,
        size: u64,
        stream: crate::storage::ByteStream,
    ) -> crate::storage::ByteStream {
        match self.fill(digest, size) {
            Some(fill) => Box::pin(Tee {
                inner: stream,
                fill: Some(fill),
                held: None,
                waited: Duration::ZERO,
            }),
            None => stream,
        }
    }

    fn fill(self: &Arc<Self>, digest: &Digest, size: u64) -> Option<Fill> {
        if size == 0 || size > self.limit {
            return None;
        }
        {
            let mut state = self.lock();
            if state.entries.contains_key(digest) || state.filling.len() >= FILLS_MAX {
                return None;
            }
            if !state.filling.insert(digest.clone()) {
                return None;
            }
        }
        let temp = self
            .dir
            .join(format!("{TEMP_PREFIX}{}", hex::encode(rand::random::<[u8; 8]>())));
        let file = match direct::CopyFile::create(&temp) {
            Ok(file) => file,
            Err(e) => {
                log::warn!("blob cache: cannot create {}: {e}", temp.display());
                self.lock().filling.remove(digest);
                return None;
            }
        };
        let (tx, rx) = mpsc::channel::<Piece>();
        let writer = Writer {
            cache: self.clone(),
            digest: digest.clone(),
            size,
            temp,
        };
        tokio::task::spawn_blocking(move || writer.run(file, rx));
        Some(Fill {
            tx,
            room: Arc::new(Semaphore::new(QUEUED_KIB as usize)),
        })
    }

    /// Records a complete copy, then makes room: least recently used copies go first.
    fn insert(&self, digest: Digest, size: u64) {
        let mut evicted = Vec::new();
        {
            let mut state = self.lock();
            state.clock += 1;
            let now = state.clock;
            if let Some(old) = state.entries.insert(digest, Entry { size, last_used: now }) {
                state.used -= old.size;
            }
            state.used += size;
            while state.used > self.limit {
                let Some(oldest) = state
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.last_used)
                    .map(|(d, _)| d.clone())
                else {
                    break;
                };
                if let Some(gone) = state.entries.remove(&oldest) {
                    state.used -= gone.size;
                }
                evicted.push(oldest);
            }
        }
        // A copy being sent stays readable: unlinking leaves open files (and mappings) intact.
        for digest in evicted {
            if let Err(e) = std::fs::remove_file(self.path(&digest)) {
                log::warn!("blob cache: cannot remove {digest}: {e}");
            }
        }
    }

    fn forget(&self, digest: &Digest) {
        let mut state = self.lock();
        if let Some(gone) = state.entries.remove(digest) {
            state.used -= gone.size;
        }
    }

    /// Drops the copy of `digest`, if any.
    pub fn remove(&self, digest: &Digest) {
        self.forget(digest);
        let _ = std::fs::remove_file(self.path(digest));
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(format!("{}-{}", digest.algorithm().name(), digest.hex()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

enum Piece {
    /// Bytes, and their room in the queue, given back once written.
    Bytes(Bytes, OwnedSemaphorePermit),
    /// The read ended with every byte passed on.
    End,
}

/// The reading side of a fill: hands pieces to the writer through a queue of bounded size.
struct Fill {
    tx: mpsc::Sender<Piece>,
    room: Arc<Semaphore>,
}

fn kib(piece: &Bytes) -> u32 {
    (piece.len().div_ceil(1024) as u32).clamp(1, QUEUED_KIB)
}

struct Writer {
    cache: Arc<BlobCache>,
    digest: Digest,
    size: u64,
    temp: PathBuf,
}

impl Writer {
    fn run(self, file: direct::CopyFile, rx: mpsc::Receiver<Piece>) {
        match self.write(file, rx) {
            Ok(true) => {
                self.cache.insert(self.digest.clone(), self.size);
                if let Err(e) = direct::CopyFile::read_back(&self.cache.path(&self.digest)) {
                    log::debug!("blob cache: read-back of {} failed: {e}", self.digest);
                }
            }
            Ok(false) => {}
            Err(e) => log::warn!("blob cache: copy of {} not kept: {e}", self.digest),
        }
    }

    /// True when the copy is complete and in place.
    fn write(&self, mut file: direct::CopyFile, rx: mpsc::Receiver<Piece>) -> io::Result<bool> {
        let mut written = 0u64;
        // The sender dropped without `End`: the client went away, or the read failed.
        while let Ok(piece) = rx.recv() {
            match piece {
                Piece::Bytes(bytes, _room) => {
                    file.write(&bytes)?;
                    written += bytes.len() as u64;
                }
                Piece::End if written == self.size => {
                    file.finish()?;
                    super::fs::rename_durably(&self.temp, &self.cache.path(&self.digest))?;
                    return Ok(true);
                }
                Piece::End => break,
            }
        }
        Ok(false)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Renamed away when kept; otherwise the partial copy goes.
        let _ = std::fs::remove_file(&self.temp);
        self.cache.lock().filling.remove(&self.digest);
    }
}

/// A blob's stream that copies what passes into a [`Fill`].
struct Tee {
    inner: crate::storage::ByteStream,
    fill: Option<Fill>,
    /// A piece waiting for room in the fill's queue, with the wait and when it began.
    held: Option<Held>,
    /// Time spent waiting for room so far.
    waited: Duration,
}

type RoomFuture = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, tokio::sync::AcquireError>> + Send>>;

struct Held {
    piece: Bytes,
    room: RoomFuture,
    since: Instant,
    give_up: Pin<Box<tokio::time::Sleep>>,
}

impl Tee {
    /// Passes `piece` to the fill if there is room now; otherwise holds it until there is.
    fn offer(&mut self, piece: Bytes) -> Option<Bytes> {
        let Some(fill) = &self.fill else { return Some(piece) };
        match fill.room.clone().try_acquire_many_owned(kib(&piece)) {
            Ok(room) => {
                self.send(&piece, room);
                Some(piece)
            }
            Err(_) => {
                let left = WAIT_MAX.saturating_sub(self.waited);
                self.held = Some(Held {
                    room: Box::pin(fill.room.clone().acquire_many_owned(kib(&piece))),
                    piece,
                    since: Instant::now(),
                    give_up: Box::pin(tokio::time::sleep(left)),
                });
                None
            }
        }
    }

    fn send(&mut self, piece: &Bytes, room: OwnedSemaphorePermit) {
        if let Some(fill) = &self.fill {
            if fill.tx.send(Piece::Bytes(piece.clone(), room)).is_err() {
                // The writer failed (and said why).
                self.fill = None;
            }
        }
    }
}

impl Stream for Tee {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(held) = self.held.as_mut() {
                let room = match held.room.as_mut().poll(cx) {
                    Poll::Ready(room) => room.ok(),
                    Poll::Pending => {
                        std::task::ready!(held.give_up.as_mut().poll(cx));
                        None
                    }
                };
                let Some(held) = self.held.take() else { continue };
                self.waited += held.since.elapsed();
                match room {
                    Some(room) => self.send(&held.piece, room),
                    None => {
                        log::info!(
                            "blob cache: a copy was given up: its disk writes kept the client waiting over {WAIT_MAX:?}"
                        );
                        self.fill = None;
                    }
                }
                return Poll::Ready(Some(Ok(held.piece)));
            }
            let next = std::task::ready!(self.inner.as_mut().poll_next(cx));
            match next {
                Some(Ok(piece)) => match self.offer(piece) {
                    Some(piece) => return Poll::Ready(Some(Ok(piece))),
                    None => continue,
                },
                Some(Err(e)) => {
                    self.fill = None;
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    if let Some(fill) = self.fill.take() {
                        let _ = fill.tx.send(Piece::End);
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }
}

mod direct;
#[cfg(test)]
mod tests;
