//! Streaming writes: request bytes go through a bounded channel to one blocking thread that
//! writes them to a file and feeds every hasher in the same pass. Memory stays bounded by the
//! channel (a few MiB) whatever the size of the blob.

use crate::registry::digest::Hasher;
use bytes::Bytes;
use std::fs::{self, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What the writer thread hands back: the hashers fed so far and the bytes written.
type WriterResult = io::Result<(Vec<Hasher>, u64)>;

const CHANNEL_CHUNKS: usize = 32;
const WRITE_BUFFER: usize = 1 << 20;

/// What a finished write produced.
pub struct WriteOutcome {
    pub path: PathBuf,
    pub hashers: Vec<Hasher>,
    /// Bytes written by this sink (not counting what an appended file held before).
    pub written: u64,
}

pub struct BlobSink {
    path: PathBuf,
    tx: Option<mpsc::Sender<Bytes>>,
    task: Option<JoinHandle<WriterResult>>,
    /// A fresh temp file is removed if the sink is dropped before `finish`.
    remove_on_drop: bool,
}

impl BlobSink {
    /// `append`: continue an existing file (resumable uploads); otherwise create it.
    pub fn start(path: PathBuf, append: bool, hashers: Vec<Hasher>) -> BlobSink {
        let (tx, rx) = mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
        let p = path.clone();
        let task = tokio::task::spawn_blocking(move || write_loop(&p, append, hashers, rx));
        BlobSink {
            path,
            tx: Some(tx),
            task: Some(task),
            remove_on_drop: !append,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues one chunk. An error means the writer stopped (disk error); `finish` reports why.
    pub async fn send(&mut self, chunk: Bytes) -> Result<(), ()> {
        match &self.tx {
            Some(tx) => tx.send(chunk).await.map_err(|_| ()),
            None => Err(()),
        }
    }

    /// Ends the stream: flushes, fsyncs and returns the hashes. On error the temp file is removed.
    pub async fn finish(mut self) -> io::Result<WriteOutcome> {
        self.tx.take();
        let task = self
            .task
            .take()
            .ok_or_else(|| io::Error::other("sink already finished"))?;
        let result = task.await.map_err(io::Error::other)?;
        match result {
            Ok((hashers, written)) => {
                self.remove_on_drop = false;
                Ok(WriteOutcome {
                    path: self.path.clone(),
                    hashers,
                    written,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Stops without keeping what was written if it was a fresh file; an appended upload file
    /// keeps the bytes that reached it (its session state is recomputed from the file).
    pub async fn abort(mut self) -> io::Result<u64> {
        self.tx.take();
        let written = match self.task.take() {
            Some(t) => t.await.map_err(io::Error::other)?.map(|(_, n)| n).unwrap_or(0),
            None => 0,
        };
        Ok(written)
    }
}

impl Drop for BlobSink {
    fn drop(&mut self) {
        self.tx.take();
        if self.remove_on_drop {
            // The writer thread may still hold the file open; unlinking is fine on Unix.
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn write_loop(path: &Path, append: bool, mut hashers: Vec<Hasher>, mut rx: mpsc::Receiver<Bytes>) -> WriterResult {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)?;
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
    let mut written = 0u64;
    while let Some(chunk) = rx.blocking_recv() {
        out.write_all(&chunk)?;
        for h in hashers.iter_mut() {
            h.update(&chunk);
        }
        written += chunk.len() as u64;
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok((hashers, written))
}
