//! Streaming reads of stored files, window by window (1 MiB). Each window is mapped on the
//! blocking pool and handed to the response as `Bytes`, so no `read` copies it into a buffer
//! first: the HTTP layer's copy into its write buffer is the only one before the socket's. Each
//! window is unmapped as soon as it has been sent.
//!
//! No thread is held between windows: a window is prepared by a short blocking task when the
//! response asks for data, and `AHEAD` windows ahead so the disk and the socket overlap. A
//! client that stops reading therefore holds a few mapped windows and no thread, however long
//! it stalls. At most `PREPARING` windows are prepared at once, server-wide, so a crowd of
//! downloads starting together cannot fill the blocking pool with threads either.

use bytes::{Bytes, BytesMut};
use futures::Stream;
use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::task::JoinHandle;

/// Also what the HTTP layer copies into its write buffer at a time, so it bounds the memory a
/// stalled client's connection holds; handing out smaller pieces costs throughput (more,
/// smaller socket writes: 128 KiB pieces measured 45 % slower).
const WINDOW: u64 = 1 << 20;
/// Windows prepared ahead of the one being sent.
const AHEAD: usize = 4;
/// Windows being mapped at once, across all downloads.
const PREPARING: usize = 32;
static PREPARE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(PREPARING);

pub struct FileStream {
    file: Arc<File>,
    /// Where the next window to prepare starts, and how much is left after it.
    offset: u64,
    left: u64,
    /// Windows being prepared, the next one to send first.
    pending: VecDeque<JoinHandle<io::Result<Bytes>>>,
    failed: bool,
}

impl FileStream {
    /// Streams `len` bytes of `file` starting at `offset`. The file must hold them: a file
    /// shorter than that (a truncated or corrupt blob) is refused here, because touching mapped
    /// pages past its end would kill the process with SIGBUS.
    pub fn new(file: File, offset: u64, len: u64) -> io::Result<FileStream> {
        let size = file.metadata()?.len();
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("stored file has {size} bytes, {len} asked from {offset}"),
            ));
        }
        Ok(FileStream {
            file: Arc::new(file),
            offset,
            left: len,
            pending: VecDeque::with_capacity(AHEAD),
            failed: false,
        })
    }

    /// Starts preparing windows until `AHEAD` are under way or none is left.
    fn prepare_ahead(&mut self) {
        while self.left > 0 && self.pending.len() < AHEAD {
            self.prepare_next();
        }
    }

    fn prepare_next(&mut self) {
        let want = self.left.min(WINDOW);
        let (file, offset) = (self.file.clone(), self.offset);
        let prepare = move || map_window(&file, offset, want).or_else(|_| read_window(&file, offset, want));
        let task = match PREPARE.try_acquire() {
            // The usual case: a turn is free, the window is mapped right away.
            Ok(turn) => tokio::task::spawn_blocking(move || {
                let _turn = turn;
                prepare()
            }),
            // Many downloads at once: wait for a turn without holding a thread.
            Err(_) => tokio::spawn(async move {
                let _turn = PREPARE.acquire().await.map_err(io::Error::other)?;
                tokio::task::spawn_blocking(prepare).await.map_err(io::Error::other)?
            }),
        };
        self.pending.push_back(task);
        self.offset += want;
        self.left -= want;
    }
}

/// Maps `len` bytes at `offset`, populated up front so the socket write does not fault.
fn map_window(file: &File, offset: u64, len: u64) -> io::Result<Bytes> {
    let len = usize::try_from(len).map_err(io::Error::other)?;
    // SAFETY: stored files (blobs and layers) are immutable: they are written to a temp file,
    // fsynced and renamed into place, and never opened for writing or truncated afterwards
    // (garbage collection only unlinks them, which leaves a mapping intact); `FileStream::new`
    // checked that the file holds every byte asked for. So the mapped bytes cannot change or
    // disappear while the `Bytes` that owns the mapping is alive.
    let map = unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(len)
            .populate()
            .map(file)?
    };
    Ok(Bytes::from_owner(map))
}

/// The fallback where a file cannot be mapped: an ordinary read.
fn read_window(file: &File, offset: u64, len: u64) -> io::Result<Bytes> {
    let mut buf = BytesMut::zeroed(len as usize);
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shorter than announced",
                ))
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(buf.freeze())
}

impl Stream for FileStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.failed {
            return Poll::Ready(None);
        }
        self.prepare_ahead();
        let Some(pending) = self.pending.front_mut() else {
            return Poll::Ready(None);
        };
        let window = match Pin::new(pending).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(joined) => joined.unwrap_or_else(|e| Err(io::Error::other(e))),
        };
        self.pending.pop_front();
        match window {
            Ok(window) => {
                // The next windows are read while this one goes out.
                self.prepare_ahead();
                Poll::Ready(Some(Ok(window)))
            }
            Err(e) => {
                self.failed = true;
                Poll::Ready(Some(Err(e)))
            }
        }
    }
}

impl Drop for FileStream {
    fn drop(&mut self) {
        // A client that hung up: the windows being prepared are not wanted any more.
        for pending in self.pending.drain(..) {
            pending.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    /// A file shorter than the range asked for is refused before anything is mapped (mapping
    /// it would raise SIGBUS on the missing pages).
    #[tokio::test]
    async fn a_short_file_is_refused_before_mapping() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("blob");
        std::fs::write(&path, vec![1u8; 100]).expect("write");
        let open = || File::open(&path).expect("open");
        assert!(FileStream::new(open(), 0, 101).is_err());
        assert!(FileStream::new(open(), 90, 11).is_err());
        assert!(FileStream::new(open(), u64::MAX, 2).is_err());
        let mut s = FileStream::new(open(), 90, 10).expect("in range");
        let got = s.next().await.expect("one window").expect("bytes");
        assert_eq!(got.as_ref(), &[1u8; 10]);
        assert!(s.next().await.is_none());
    }
}
