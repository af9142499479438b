//! Streaming reads of stored files: one blocking thread maps the file window by window (1 MiB)
//! and hands each window to the response as `Bytes` through a small bounded channel. The socket
//! write then copies straight from the page cache, once, as sendfile would (a `read` into a
//! buffer would copy every byte twice); each window is unmapped as soon as it has been sent, so
//! memory stays bounded per download whatever the file size. The thread starts on first poll.

use bytes::{Bytes, BytesMut};
use futures::Stream;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

const WINDOW: u64 = 1 << 20;
const IN_FLIGHT: usize = 2;

pub struct FileStream {
    file: Option<File>,
    offset: u64,
    len: u64,
    rx: Option<mpsc::Receiver<io::Result<Bytes>>>,
}

impl FileStream {
    /// Streams `len` bytes of `file` starting at `offset`.
    pub fn new(file: File, offset: u64, len: u64) -> FileStream {
        FileStream {
            file: Some(file),
            offset,
            len,
            rx: None,
        }
    }
}

fn read_loop(file: File, mut offset: u64, mut left: u64, tx: mpsc::Sender<io::Result<Bytes>>) {
    while left > 0 {
        let want = left.min(WINDOW);
        let result = map_window(&file, offset, want).or_else(|_| read_window(&file, offset, want));
        let failed = result.is_err();
        // The receiver is gone when the client hung up: stop reading.
        if tx.blocking_send(result).is_err() || failed {
            return;
        }
        offset += want;
        left -= want;
    }
}

/// Maps `len` bytes at `offset`, populated up front so the socket write does not fault.
fn map_window(file: &File, offset: u64, len: u64) -> io::Result<Bytes> {
    let len = usize::try_from(len).map_err(io::Error::other)?;
    // SAFETY: stored files (blobs and layers) are immutable: they are written to a temp file,
    // fsynced and renamed into place, and never opened for writing or truncated afterwards
    // (garbage collection only unlinks them, which leaves a mapping intact). So the mapped bytes
    // cannot change or disappear while the `Bytes` that owns the mapping is alive.
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
        if self.rx.is_none() {
            let Some(file) = self.file.take() else {
                return Poll::Ready(None);
            };
            let (tx, rx) = mpsc::channel(IN_FLIGHT);
            let (offset, len) = (self.offset, self.len);
            tokio::task::spawn_blocking(move || read_loop(file, offset, len, tx));
            self.rx = Some(rx);
        }
        match self.rx.as_mut() {
            Some(rx) => rx.poll_recv(cx),
            None => Poll::Ready(None),
        }
    }
}
