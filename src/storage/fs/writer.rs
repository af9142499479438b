//! Streaming writes without a thread per upload. Request chunks are gathered, without copying
//! (`Bytes` is shared; only chunks under [`SMALL`] are copied, so a trickling client cannot pin
//! a read buffer per byte), into batches of about 1 MiB. Each batch then gets short blocking
//! tasks: one writes it to the file with `writev`, one per hasher feeds it, in parallel. The
//! file handle and the hasher states move into those tasks and come back with their results, so
//! no thread waits for the client: a slow upload costs memory (its pending batch), not a thread.
//!
//! One batch is in flight while the next is gathered, so hashing and writing overlap with the
//! network reads; memory stays at about two batches per upload. Every task takes a permit of one
//! process-wide semaphore first and runs on a pool of its own, so however many uploads run, they
//! occupy at most [`MAX_TASKS`] threads, and never the blocking pools other storage work runs on.

use crate::digest::Hasher;
use crate::storage::driver::{Sink, WriteOutcome};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// Bytes gathered before a batch is handed on.
const BATCH_BYTES: usize = 1 << 20;
/// Chunks gathered before a batch is handed on (`writev` takes 1024 slices on Linux).
const BATCH_CHUNKS: usize = 1024;
/// Chunks shorter than this are copied into one buffer instead of kept: a chunk shares the
/// allocation of the read buffer it came from, and a client sending a byte at a time would
/// otherwise pin one read buffer per byte until the batch is full.
const SMALL: usize = 8 << 10;
/// Start writeback every this many bytes.
const WRITEBACK: u64 = 16 << 20;
/// Blocking tasks of all uploads together. A few per core keep the disk and the hashers busy
/// (a final fsync may take a while); more would only queue in the kernel.
pub const MAX_TASKS: usize = 32;

/// Taken by every task before it is queued, so waiting work stays in the uploads (bounded:
/// one batch each), not in the pool's unbounded queue.
static PERMITS: Semaphore = Semaphore::const_new(MAX_TASKS);

/// The uploads' own blocking pool. Each actix worker has its own runtime and so its own pool:
/// tasks spread over them could grow the process by `MAX_TASKS` threads per worker. A
/// current-thread runtime that is never driven still runs `spawn_blocking` tasks on its pool.
fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    static POOL: OnceLock<Option<Runtime>> = OnceLock::new();
    let pool = POOL.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(MAX_TASKS)
            .thread_name("skiff-upload")
            .build()
            .map_err(|e| log::warn!("no pool of its own for uploads ({e}); using the caller's"))
            .ok()
    });
    match pool {
        Some(rt) => rt.handle().spawn_blocking(f),
        None => tokio::task::spawn_blocking(f),
    }
}

/// Request chunks in arrival order, shared by the writer and the hashers.
type Batch = Arc<Vec<Bytes>>;

/// The file side of a sink, owned by whichever task is writing.
struct FileState {
    file: File,
    /// Bytes written by this sink.
    written: u64,
    /// Bytes handed to writeback so far.
    flushed: u64,
}

/// The tasks of the batch in flight.
struct Running {
    file: JoinHandle<io::Result<FileState>>,
    hashers: Vec<JoinHandle<Vec<Hasher>>>,
}

pub struct BlobSink {
    path: Arc<PathBuf>,
    pending: Vec<Bytes>,
    /// Small chunks, copied together (see [`SMALL`]); comes after everything in `pending`.
    small: BytesMut,
    pending_bytes: usize,
    /// The open file, between batches; `None` before the first batch and while one is running.
    file: Option<FileState>,
    /// Hashers between batches (empty while a batch is running).
    hashers: Vec<Hasher>,
    running: Option<Running>,
    /// The first failure; every later call reports it.
    failed: Option<io::Error>,
    /// A fresh temp file is removed if the sink is dropped before `finish`.
    remove_on_drop: bool,
    /// Set when a fresh sink is dropped: a task that creates the file afterwards removes it.
    dropped: Arc<AtomicBool>,
}

impl BlobSink {
    /// A sink creating the file at `path` (replacing any). Nothing is opened until the first
    /// batch (or `finish`).
    pub fn start(path: PathBuf, hashers: Vec<Hasher>) -> BlobSink {
        BlobSink {
            path: Arc::new(path),
            pending: Vec::new(),
            small: BytesMut::new(),
            pending_bytes: 0,
            file: None,
            hashers,
            running: None,
            failed: None,
            remove_on_drop: true,
            dropped: Arc::new(AtomicBool::new(false)),
        }
    }

    fn error(&self) -> io::Error {
        match &self.failed {
            Some(e) => io::Error::new(e.kind(), e.to_string()),
            None => io::Error::other("sink failed"),
        }
    }

    /// Waits for the batch in flight and takes its file and hashers back.
    async fn settle(&mut self) -> io::Result<()> {
        if let Some(running) = self.running.take() {
            match running.file.await {
                Ok(Ok(state)) => self.file = Some(state),
                Ok(Err(e)) => self.failed = Some(e),
                Err(e) => self.failed = Some(io::Error::other(e)),
            }
            for task in running.hashers {
                match task.await {
                    Ok(h) => self.hashers.extend(h),
                    Err(e) => self.failed = Some(io::Error::other(e)),
                }
            }
        }
        match self.failed {
            Some(_) => Err(self.error()),
            None => Ok(()),
        }
    }

    /// Hands the gathered chunks to a new set of tasks, once the previous set is done.
    async fn dispatch(&mut self) -> io::Result<()> {
        self.settle().await?;
        if !self.small.is_empty() {
            self.pending.push(self.small.split().freeze());
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        self.pending_bytes = 0;
        let batch: Batch = Arc::new(std::mem::take(&mut self.pending));
        let file = {
            let (batch, state) = (batch.clone(), self.file.take());
            let (path, dropped) = (self.path.clone(), self.dropped.clone());
            blocking(move || {
                let mut state = match state {
                    Some(s) => s,
                    None => open(&path, &dropped)?,
                };
                write_batch(&mut state, &batch)?;
                Ok(state)
            })
            .await?
        };
        // Every hasher of the batch in one task, beside the writing one: with two hashers (a v1
        // layer's content and payload digests) three tasks per batch on two cores made each
        // batch wait for the slowest of them and halved a v1 push (measured: 185 vs 400 MB/s).
        let mut hashers = Vec::with_capacity(1);
        if !self.hashers.is_empty() {
            let mut all = std::mem::take(&mut self.hashers);
            let permit = PERMITS.acquire().await.map_err(io::Error::other)?;
            hashers.push(spawn(move || {
                let _permit = permit;
                for hasher in all.iter_mut() {
                    for chunk in batch.iter() {
                        hasher.update(chunk);
                    }
                }
                all
            }));
        }
        self.running = Some(Running { file, hashers });
        Ok(())
    }

    /// Writes what is gathered, waits for it, and fsyncs (creating the file if nothing was
    /// ever written: an empty blob is a file too).
    async fn flush_all(&mut self) -> io::Result<u64> {
        self.dispatch().await?;
        self.settle().await?;
        let state = self.file.take();
        let (path, dropped) = (self.path.clone(), self.dropped.clone());
        let state = blocking(move || {
            let state = match state {
                Some(s) => s,
                None => open(&path, &dropped)?,
            };
            state.file.sync_all()?;
            Ok(state)
        })
        .await?
        .await
        .map_err(io::Error::other)??;
        let written = state.written;
        self.file = Some(state);
        Ok(written)
    }
}

/// Runs `f` on the uploads' pool once a permit is free; the permit is held until `f` returns.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<JoinHandle<io::Result<T>>> {
    let permit = PERMITS.acquire().await.map_err(io::Error::other)?;
    Ok(spawn(move || {
        let _permit = permit;
        f()
    }))
}

#[async_trait]
impl Sink for BlobSink {
    /// Queues bytes. An error means the write already failed; `finish` reports why.
    async fn send(&mut self, chunk: Bytes) -> Result<(), ()> {
        if self.failed.is_some() {
            return Err(());
        }
        if chunk.is_empty() {
            return Ok(());
        }
        self.pending_bytes += chunk.len();
        if chunk.len() < SMALL {
            self.small.extend_from_slice(&chunk);
        } else {
            if !self.small.is_empty() {
                self.pending.push(self.small.split().freeze());
            }
            self.pending.push(chunk);
        }
        if self.pending_bytes >= BATCH_BYTES || self.pending.len() >= BATCH_CHUNKS {
            return self.dispatch().await.map_err(drop);
        }
        Ok(())
    }

    /// The body paused: write what is gathered now rather than hold it.
    async fn flush(&mut self) -> Result<(), ()> {
        if self.failed.is_some() {
            return Err(());
        }
        self.dispatch().await.map_err(drop)
    }

    /// Ends the stream: writes what is gathered, fsyncs and returns the hashes. On error the
    /// file is removed (when the sink is dropped).
    async fn finish(mut self: Box<Self>) -> io::Result<WriteOutcome> {
        let written = self.flush_all().await?;
        self.remove_on_drop = false;
        Ok(WriteOutcome {
            hashers: std::mem::take(&mut self.hashers),
            written,
        })
    }

    /// Stops without keeping anything: the file is removed when the sink is dropped, here.
    async fn abort(self: Box<Self>) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for BlobSink {
    fn drop(&mut self) {
        if self.remove_on_drop {
            // A task still running may have the file open; unlinking is fine on Unix. One
            // that has yet to create it sees the flag and removes what it created.
            self.dropped.store(true, Ordering::SeqCst);
            let _ = fs::remove_file(self.path.as_ref());
        }
    }
}

/// Opens the file for a sink's first batch. A file created after its sink was dropped is
/// removed at once: the flag is set before the sink's own removal, so one of the two sees it.
fn open(path: &Path, dropped: &AtomicBool) -> io::Result<FileState> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let file = OpenOptions::new().create(true).write(true).truncate(true).open(path)?;
    if dropped.load(Ordering::SeqCst) {
        let _ = fs::remove_file(path);
        return Err(io::Error::other("upload dropped"));
    }
    Ok(FileState {
        file,
        written: 0,
        flushed: 0,
    })
}

/// Writes a batch with as few `writev` calls as the kernel allows, and starts writeback of
/// every [`WRITEBACK`] bytes.
fn write_batch(state: &mut FileState, batch: &[Bytes]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = batch.iter().map(|b| IoSlice::new(b)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match state.file.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                state.written += n as u64;
                IoSlice::advance_slices(&mut rest, n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if state.written - state.flushed >= WRITEBACK {
        start_writeback(&state.file, state.flushed, state.written - state.flushed);
        state.flushed = state.written;
    }
    Ok(())
}

/// Asks the kernel to start writing a range to disk now, without waiting for it, so the disk
/// works while the upload goes on and the final fsync has little left to do (instead of a whole
/// blob's worth of dirty pages). Only a hint: errors are ignored, fsync decides durability.
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a plain syscall on a file descriptor we own for the duration of the call.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Algorithm;

    fn digest_of(prefix: &[u8], data: &[u8]) -> String {
        let mut h = Hasher::new(Algorithm::Sha256);
        h.update(prefix);
        h.update(data);
        h.finish().to_string()
    }

    /// Tiny chunks (more than a batch may hold), an empty one and chunks larger than a batch
    /// all reach the file and every hasher in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_keep_order_for_file_and_every_hasher() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("blob");
        let mut expected = Vec::new();
        let mut chunks: Vec<Bytes> = (0..3000u32).map(|i| Bytes::from(i.to_le_bytes().to_vec())).collect();
        chunks.push(Bytes::new());
        chunks.push(Bytes::from(vec![7u8; 3 * BATCH_BYTES + 5]));
        chunks.push(Bytes::from_static(b"tail"));
        let hashers = vec![
            Hasher::new(Algorithm::Sha256),
            Hasher::with_prefix(Algorithm::Sha256, b"json\n"),
        ];
        let mut sink = Box::new(BlobSink::start(path.clone(), hashers));
        for c in chunks {
            expected.extend_from_slice(&c);
            sink.send(c).await.expect("send");
        }
        let out = sink.finish().await.expect("finish");
        assert_eq!(out.written, expected.len() as u64);
        assert_eq!(fs::read(&path).expect("read"), expected);
        let got: Vec<String> = out.hashers.into_iter().map(|h| h.finish().to_string()).collect();
        assert_eq!(got, vec![digest_of(b"", &expected), digest_of(b"json\n", &expected)]);
    }

    /// A sink replaces what the key held; a dropped sink leaves no file.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sink_replaces_the_file_and_drop_removes_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("upload");
        fs::write(&path, b"abcdefgh").expect("seed");
        let mut sink = Box::new(BlobSink::start(path.clone(), vec![]));
        sink.send(Bytes::from_static(b"def")).await.expect("send");
        let out = sink.finish().await.expect("finish");
        assert_eq!(out.written, 3);
        assert_eq!(fs::read(&path).expect("read"), b"def");

        // Dropped before its thread even created the file: the thread removes what it creates.
        for i in 0..50 {
            let early = dir.path().join(format!("early{i}"));
            drop(Box::new(BlobSink::start(early, vec![])));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let left: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok()?.file_name().to_str().map(str::to_string))
            .filter(|n| n.starts_with("early"))
            .collect();
        assert!(left.is_empty(), "temp files left behind: {left:?}");

        let fresh = dir.path().join("fresh");
        let mut sink = Box::new(BlobSink::start(fresh.clone(), vec![]));
        sink.send(Bytes::from_static(b"x")).await.expect("send");
        drop(sink);
        assert!(!fresh.exists());
    }

    /// `flush` writes what is queued at once; `abort` keeps nothing, even of flushed bytes,
    /// nor does a sink dropped with a batch in flight.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn flush_writes_at_once_and_abort_keeps_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("upload");
        let mut sink = Box::new(BlobSink::start(path.clone(), vec![Hasher::new(Algorithm::Sha256)]));
        sink.send(Bytes::from_static(b"cd")).await.expect("send");
        sink.flush().await.expect("flush");
        sink.settle().await.expect("settle");
        assert_eq!(fs::read(&path).expect("read"), b"cd", "flushed bytes are in the file");
        sink.send(Bytes::from_static(b"ef")).await.expect("send");
        sink.abort().await.expect("abort");
        assert!(!path.exists(), "an aborted write leaves nothing");

        for i in 0..20 {
            let fresh = dir.path().join(format!("fresh{i}"));
            let mut sink = Box::new(BlobSink::start(fresh.clone(), vec![]));
            sink.send(Bytes::from(vec![1u8; BATCH_BYTES])).await.expect("send");
            if i % 2 == 0 {
                sink.abort().await.expect("abort");
            } else {
                drop(sink);
            }
            // Let any task still running finish.
            let _ = PERMITS.acquire_many(MAX_TASKS as u32).await.expect("permits");
            assert!(!fresh.exists(), "fresh file {i} left behind");
        }
    }

    /// Hundreds of sinks writing at once share the permits (each task gives its permit back)
    /// and all finish with the right bytes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_sinks_share_a_bounded_set_of_tasks() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut sinks = Vec::new();
        for i in 0..300 {
            let sink = BlobSink::start(dir.path().join(format!("s{i}")), vec![Hasher::new(Algorithm::Sha256)]);
            sinks.push(Box::new(sink));
        }
        for round in 0..3u8 {
            for sink in sinks.iter_mut() {
                sink.send(Bytes::from(vec![round; 10])).await.expect("send");
                sink.flush().await.expect("flush");
            }
        }
        let expected: Vec<u8> = (0..3u8).flat_map(|r| vec![r; 10]).collect();
        for (i, sink) in sinks.into_iter().enumerate() {
            let out = sink.finish().await.expect("finish");
            assert_eq!(out.written, 30);
            assert_eq!(fs::read(dir.path().join(format!("s{i}"))).expect("read"), expected);
        }
        let all = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            PERMITS.acquire_many(MAX_TASKS as u32),
        );
        assert!(all.await.is_ok(), "every permit comes back");
    }
}
