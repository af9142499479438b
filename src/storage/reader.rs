//! Streaming reads: one blocking thread reads a file range in large chunks into a small bounded
//! channel. Large chunks keep the per-byte cost at one read and one socket write (actix-files
//! reads 64 KiB per blocking-pool round trip); the channel keeps memory bounded per download.
//! The thread starts on first poll, so a response whose body is never sent (HEAD) reads nothing.

use bytes::{Bytes, BytesMut};
use futures::Stream;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

const CHUNK: usize = 512 * 1024;
const IN_FLIGHT: usize = 4;

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
        let want = left.min(CHUNK as u64) as usize;
        let mut buf = BytesMut::zeroed(want);
        let result = match file.read_at(&mut buf, offset) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shorter than announced",
            )),
            Ok(n) => {
                buf.truncate(n);
                offset += n as u64;
                left -= n as u64;
                Ok(buf.freeze())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
        let failed = result.is_err();
        // The receiver is gone when the client hung up: stop reading.
        if tx.blocking_send(result).is_err() || failed {
            return;
        }
    }
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
