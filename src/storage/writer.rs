//! Streaming writes. Request bytes are gathered into 1 MiB chunks and handed, without copying
//! (`Bytes` is shared), to two blocking threads: one writes the file, one feeds the hashers.
//! Hashing (about 1 GB/s) and writing then overlap instead of adding up, and each byte is still
//! read once from the network. Bounded channels keep memory at a few MiB whatever the size.

use crate::registry::digest::Hasher;
use bytes::{Bytes, BytesMut};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const CHUNK: usize = 1 << 20;
const IN_FLIGHT: usize = 4;
/// Start writeback every this many bytes.
const WRITEBACK: u64 = 16 << 20;

/// What a finished write produced.
pub struct WriteOutcome {
    pub path: PathBuf,
    pub hashers: Vec<Hasher>,
    /// Bytes written by this sink (not counting what an appended file held before).
    pub written: u64,
}

pub struct BlobSink {
    path: PathBuf,
    pending: BytesMut,
    to_file: Option<mpsc::Sender<Bytes>>,
    to_hash: Option<mpsc::Sender<Bytes>>,
    writer: Option<JoinHandle<io::Result<u64>>>,
    hasher: Option<JoinHandle<Vec<Hasher>>>,
    /// A fresh temp file is removed if the sink is dropped before `finish`.
    remove_on_drop: bool,
}

impl BlobSink {
    /// `append`: continue an existing file (resumable uploads); otherwise create it.
    pub fn start(path: PathBuf, append: bool, hashers: Vec<Hasher>) -> BlobSink {
        let (to_file, file_rx) = mpsc::channel::<Bytes>(IN_FLIGHT);
        let (to_hash, hash_rx) = mpsc::channel::<Bytes>(IN_FLIGHT);
        let p = path.clone();
        let writer = tokio::task::spawn_blocking(move || write_loop(&p, append, file_rx));
        let hasher = tokio::task::spawn_blocking(move || hash_loop(hashers, hash_rx));
        BlobSink {
            path,
            pending: BytesMut::new(),
            to_file: Some(to_file),
            to_hash: Some(to_hash),
            writer: Some(writer),
            hasher: Some(hasher),
            remove_on_drop: !append,
        }
    }

    /// Queues bytes. An error means the writer stopped (disk error); `finish` reports why.
    pub async fn send(&mut self, chunk: Bytes) -> Result<(), ()> {
        if self.pending.is_empty() && chunk.len() >= CHUNK {
            return self.dispatch(chunk).await;
        }
        self.pending.extend_from_slice(&chunk);
        if self.pending.len() >= CHUNK {
            let full = self.pending.split().freeze();
            return self.dispatch(full).await;
        }
        Ok(())
    }

    async fn dispatch(&mut self, chunk: Bytes) -> Result<(), ()> {
        let (Some(file), Some(hash)) = (&self.to_file, &self.to_hash) else {
            return Err(());
        };
        hash.send(chunk.clone()).await.map_err(|_| ())?;
        file.send(chunk).await.map_err(|_| ())
    }

    /// Ends the stream: writes what is gathered, fsyncs and returns the hashes. On error the
    /// temp file is removed.
    pub async fn finish(mut self) -> io::Result<WriteOutcome> {
        if !self.pending.is_empty() {
            let rest = self.pending.split().freeze();
            // A failure here shows up as the writer's error below.
            let _ = self.dispatch(rest).await;
        }
        let (written, hashers) = self.close().await;
        let written = written?;
        self.remove_on_drop = false;
        Ok(WriteOutcome {
            path: self.path.clone(),
            hashers,
            written,
        })
    }

    /// Stops without keeping what was written if it was a fresh file; an appended upload file
    /// keeps the bytes that reached it (its session state is recomputed from the file).
    pub async fn abort(mut self) -> io::Result<u64> {
        // Bytes that reached us are kept, so a resumed upload continues after them.
        if !self.pending.is_empty() {
            let rest = self.pending.split().freeze();
            let _ = self.dispatch(rest).await;
        }
        let (written, _) = self.close().await;
        Ok(written.unwrap_or(0))
    }

    /// Closes both channels and waits for both threads.
    async fn close(&mut self) -> (io::Result<u64>, Vec<Hasher>) {
        self.to_file.take();
        self.to_hash.take();
        let written = match self.writer.take() {
            Some(t) => t.await.unwrap_or_else(|e| Err(io::Error::other(e))),
            None => Err(io::Error::other("sink already finished")),
        };
        let hashers = match self.hasher.take() {
            Some(t) => t.await.unwrap_or_default(),
            None => Vec::new(),
        };
        (written, hashers)
    }
}

impl Drop for BlobSink {
    fn drop(&mut self) {
        self.to_file.take();
        self.to_hash.take();
        if self.remove_on_drop {
            // The writer thread may still hold the file open; unlinking is fine on Unix.
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn write_loop(path: &Path, append: bool, mut rx: mpsc::Receiver<Bytes>) -> io::Result<u64> {
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
    while let Some(chunk) = rx.blocking_recv() {
        file.write_all(&chunk)?;
        written += chunk.len() as u64;
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

fn hash_loop(mut hashers: Vec<Hasher>, mut rx: mpsc::Receiver<Bytes>) -> Vec<Hasher> {
    while let Some(chunk) = rx.blocking_recv() {
        for h in hashers.iter_mut() {
            h.update(&chunk);
        }
    }
    hashers
}
