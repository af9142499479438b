//! Streaming writes. Request chunks are gathered, without copying (`Bytes` is shared), into
//! batches of about 1 MiB and handed to blocking threads: one writes the file with `writev`, and
//! one per hasher feeds it. Hashing (about 1.5 GB/s per core) and writing then overlap instead
//! of adding up, each byte is read once from the network and copied once more, into the page
//! cache. Bounded channels keep memory at a few MiB whatever the size.

use crate::digest::Hasher;
use crate::storage::driver::{Sink, WriteOutcome};
use async_trait::async_trait;
use bytes::Bytes;
use std::fs::{self, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Bytes gathered before a batch is handed on.
const BATCH_BYTES: usize = 1 << 20;
/// Chunks gathered before a batch is handed on (a client sending tiny chunks still gets
/// batches `writev` takes in one call: Linux allows 1024 slices).
const BATCH_CHUNKS: usize = 1024;
const IN_FLIGHT: usize = 4;
/// Start writeback every this many bytes.
const WRITEBACK: u64 = 16 << 20;

/// Request chunks in arrival order, shared by the writer and the hashers.
type Batch = Arc<Vec<Bytes>>;

pub struct BlobSink {
    path: PathBuf,
    pending: Vec<Bytes>,
    pending_bytes: usize,
    /// The writer's channel first, then one per hasher.
    consumers: Vec<mpsc::Sender<Batch>>,
    writer: Option<JoinHandle<io::Result<u64>>>,
    hashers: Vec<JoinHandle<Hasher>>,
    /// A fresh temp file is removed if the sink is dropped before `finish`.
    remove_on_drop: bool,
    /// Set by `finish`: the writer thread keeps the file. Otherwise (a fresh file dropped or
    /// aborted) the thread removes it when it ends, also when the drop came before the thread
    /// had even created it.
    keep: Arc<AtomicBool>,
}

impl BlobSink {
    /// `append`: continue an existing file (resumable uploads); otherwise create it.
    pub fn start(path: PathBuf, append: bool, hashers: Vec<Hasher>) -> BlobSink {
        let (to_file, file_rx) = mpsc::channel::<Batch>(IN_FLIGHT);
        let (p, keep) = (path.clone(), Arc::new(AtomicBool::new(append)));
        let k = keep.clone();
        let writer = tokio::task::spawn_blocking(move || {
            let result = write_loop(&p, append, file_rx);
            if !k.load(Ordering::SeqCst) {
                let _ = fs::remove_file(&p);
            }
            result
        });
        let mut consumers = vec![to_file];
        let hashers = hashers
            .into_iter()
            .map(|hasher| {
                let (tx, rx) = mpsc::channel::<Batch>(IN_FLIGHT);
                consumers.push(tx);
                tokio::task::spawn_blocking(move || hash_loop(hasher, rx))
            })
            .collect();
        BlobSink {
            path,
            pending: Vec::new(),
            pending_bytes: 0,
            consumers,
            writer: Some(writer),
            hashers,
            remove_on_drop: !append,
            keep,
        }
    }

    /// Hands the gathered chunks to every consumer.
    async fn dispatch(&mut self) -> Result<(), ()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.pending_bytes = 0;
        let batch: Batch = Arc::new(std::mem::take(&mut self.pending));
        if self.consumers.is_empty() {
            return Err(());
        }
        for consumer in &self.consumers {
            consumer.send(batch.clone()).await.map_err(|_| ())?;
        }
        Ok(())
    }

    /// Closes every channel and waits for every thread.
    async fn close(&mut self) -> (io::Result<u64>, Vec<Hasher>) {
        self.consumers.clear();
        let written = match self.writer.take() {
            Some(t) => t.await.unwrap_or_else(|e| Err(io::Error::other(e))),
            None => Err(io::Error::other("sink already finished")),
        };
        let mut hashers = Vec::with_capacity(self.hashers.len());
        for t in self.hashers.drain(..) {
            match t.await {
                Ok(h) => hashers.push(h),
                Err(e) => return (Err(io::Error::other(e)), Vec::new()),
            }
        }
        (written, hashers)
    }
}

#[async_trait]
impl Sink for BlobSink {
    /// Queues bytes. An error means the writer stopped (disk error); `finish` reports why.
    async fn send(&mut self, chunk: Bytes) -> Result<(), ()> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.pending_bytes += chunk.len();
        self.pending.push(chunk);
        if self.pending_bytes >= BATCH_BYTES || self.pending.len() >= BATCH_CHUNKS {
            return self.dispatch().await;
        }
        Ok(())
    }

    /// Ends the stream: writes what is gathered, fsyncs and returns the hashes. On error the
    /// temp file is removed.
    async fn finish(mut self: Box<Self>) -> io::Result<WriteOutcome> {
        // A failure here shows up as the writer's error below.
        let _ = self.dispatch().await;
        self.keep.store(true, Ordering::SeqCst);
        let (written, hashers) = self.close().await;
        let written = written?;
        self.remove_on_drop = false;
        Ok(WriteOutcome { hashers, written })
    }

    /// Stops without keeping what was written if it was a fresh file; an appended upload file
    /// keeps the bytes that reached it (its session state is recomputed from the file).
    async fn abort(mut self: Box<Self>) -> io::Result<u64> {
        // Bytes that reached us are kept, so a resumed upload continues after them.
        let _ = self.dispatch().await;
        let (written, _) = self.close().await;
        Ok(written.unwrap_or(0))
    }
}

impl Drop for BlobSink {
    fn drop(&mut self) {
        self.consumers.clear();
        if self.remove_on_drop {
            // The writer thread may still hold the file open; unlinking is fine on Unix.
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn write_loop(path: &Path, append: bool, mut rx: mpsc::Receiver<Batch>) -> io::Result<u64> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)?;
    // Where this sink's bytes start in the file (an appended upload continues after its end).
    let base = if append { file.metadata()?.len() } else { 0 };
    let mut written = 0u64;
    let mut flushed = 0u64;
    while let Some(batch) = rx.blocking_recv() {
        written += write_batch(&mut file, &batch)?;
        if written - flushed >= WRITEBACK {
            start_writeback(&file, base + flushed, written - flushed);
            flushed = written;
        }
    }
    file.sync_all()?;
    Ok(written)
}

/// Asks the kernel to start writing a range to disk now, without waiting for it, so the disk
/// works while the upload goes on and the final fsync has little left to do (instead of a whole
/// blob's worth of dirty pages). Only a hint: errors are ignored, fsync decides durability.
fn start_writeback(file: &std::fs::File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a plain syscall on a file descriptor we own for the duration of the call.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Writes every chunk of a batch with as few `writev` calls as the kernel allows.
fn write_batch(file: &mut fs::File, batch: &[Bytes]) -> io::Result<u64> {
    let mut slices: Vec<IoSlice<'_>> = batch.iter().map(|b| IoSlice::new(b)).collect();
    let mut rest = &mut slices[..];
    let mut written = 0u64;
    while !rest.is_empty() {
        match file.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                written += n as u64;
                IoSlice::advance_slices(&mut rest, n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

fn hash_loop(mut hasher: Hasher, mut rx: mpsc::Receiver<Batch>) -> Hasher {
    while let Some(batch) = rx.blocking_recv() {
        for chunk in batch.iter() {
            hasher.update(chunk);
        }
    }
    hasher
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
        let mut sink = Box::new(BlobSink::start(path.clone(), false, hashers));
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

    /// An appended sink counts only its own bytes; a dropped fresh sink leaves no file.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn append_counts_own_bytes_and_drop_removes_fresh_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("upload");
        fs::write(&path, b"abc").expect("seed");
        let mut sink = Box::new(BlobSink::start(path.clone(), true, vec![]));
        sink.send(Bytes::from_static(b"def")).await.expect("send");
        let out = sink.finish().await.expect("finish");
        assert_eq!(out.written, 3);
        assert_eq!(fs::read(&path).expect("read"), b"abcdef");

        // Dropped before its thread even created the file: the thread removes what it creates.
        for i in 0..50 {
            let early = dir.path().join(format!("early{i}"));
            drop(Box::new(BlobSink::start(early, false, vec![])));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let left: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok()?.file_name().to_str().map(str::to_string))
            .filter(|n| n.starts_with("early"))
            .collect();
        assert!(left.is_empty(), "temp files left behind: {left:?}");

        let fresh = dir.path().join("fresh");
        let mut sink = Box::new(BlobSink::start(fresh.clone(), false, vec![]));
        sink.send(Bytes::from_static(b"x")).await.expect("send");
        drop(sink);
        assert!(!fresh.exists());
    }
}
