//! Sending a range of a stored file to a socket with `sendfile(2)`: the kernel moves the bytes
//! from the page cache to the socket, with no copy in this process and no buffer.
//!
//! `sendfile` on a non-blocking socket never waits for the client (it sends what the socket
//! buffer takes and says how much), but it does wait for the disk when the pages are not in
//! the page cache. So each stretch of the file is checked first (`mincore` on a mapping that is
//! never touched, so it costs no memory); a stretch that is not all resident is read into the
//! page cache by a short task on the blocking pool (at most `PREPARING` at once, shared with
//! the streaming reader), never on the worker that serves connections.

use super::reader::{on_blocking_pool, page_size};
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Bytes checked for residency (and read in when cold) at a time.
const STRETCH: u64 = 4 << 20;
/// Bytes sent before yielding to the worker's other connections: a client that reads as fast
/// as the kernel sends (loopback) would otherwise keep the worker to itself.
const BUDGET: u64 = 16 << 20;

pub struct FileSend {
    file: Arc<File>,
    /// The range, mapped only to ask `mincore` which pages are cached; never read through.
    map: memmap2::Mmap,
    start: u64,
    /// Next byte to send, and bytes left.
    offset: u64,
    left: u64,
    /// Up to where the page cache was found (or made) to hold the file.
    warm_until: u64,
    warming: Option<JoinHandle<io::Result<()>>>,
}

impl FileSend {
    /// `len` bytes of `file` from `offset`, which the file must hold (a shorter file, a corrupt
    /// blob, is refused here rather than sent short). `len` must not be 0.
    pub fn new(file: File, offset: u64, len: u64) -> io::Result<FileSend> {
        let size = file.metadata()?.len();
        if len == 0 || offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("stored file has {size} bytes, {len} asked from {offset}"),
            ));
        }
        let map_len = usize::try_from(len).map_err(io::Error::other)?;
        // SAFETY: the mapping is only ever passed to `mincore`, never read or written, so what
        // happens to the file meanwhile cannot fault this process.
        let map = unsafe { memmap2::MmapOptions::new().offset(offset).len(map_len).map(&file)? };
        Ok(FileSend {
            file: Arc::new(file),
            map,
            start: offset,
            offset,
            left: len,
            warm_until: offset,
            warming: None,
        })
    }

    /// Sends what is left, as far as the socket takes it now.
    pub fn poll_send(&mut self, cx: &mut Context<'_>, stream: &TcpStream) -> Poll<io::Result<()>> {
        let mut sent_now = 0u64;
        while self.left > 0 {
            if let Some(task) = self.warming.as_mut() {
                let warmed = std::task::ready!(std::pin::Pin::new(task).poll(cx));
                self.warming = None;
                warmed.map_err(io::Error::other)??;
            } else if self.offset >= self.warm_until {
                let stretch = self.left.min(STRETCH);
                self.warm_until = self.offset + stretch;
                if !self.resident(self.offset, stretch) {
                    let (file, from) = (self.file.clone(), self.offset);
                    self.warming = Some(on_blocking_pool(move || read_into_cache(&file, from, stretch)));
                    continue;
                }
            }
            if sent_now >= BUDGET {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            std::task::ready!(stream.poll_write_ready(cx))?;
            let want = (self.warm_until - self.offset).min(self.left);
            match stream.try_io(Interest::WRITABLE, || self.sendfile(stream, want)) {
                Ok(0) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "stored file ended early",
                    )))
                }
                Ok(n) => {
                    self.offset += n;
                    self.left -= n;
                    sent_now += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }

    fn sendfile(&self, stream: &TcpStream, want: u64) -> io::Result<u64> {
        let mut off = libc::off_t::try_from(self.offset).map_err(io::Error::other)?;
        let count = usize::try_from(want).unwrap_or(usize::MAX);
        // SAFETY: both descriptors are open for the duration of the call; `off` is a local.
        let n = unsafe { libc::sendfile(stream.as_raw_fd(), self.file.as_raw_fd(), &mut off, count) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as u64)
        }
    }

    /// Whether every page of `len` bytes from `from` is in the page cache (false when the
    /// kernel cannot tell).
    fn resident(&self, from: u64, len: u64) -> bool {
        let page = page_size();
        let base = self.map.as_ptr() as usize;
        let start = base + (from - self.start) as usize;
        let aligned = start - start % page;
        let span = (start + len as usize) - aligned;
        let mut vec = vec![0u8; span.div_ceil(page)];
        // SAFETY: `aligned..aligned + span` lies within the mapping (which starts on the page
        // boundary at or below `base`), and `vec` has one byte per page of it.
        let rc = unsafe { libc::mincore(aligned as *mut libc::c_void, span, vec.as_mut_ptr()) };
        rc == 0 && vec.iter().all(|v| v & 1 == 1)
    }
}

/// Reads `len` bytes of `file` from `from` and throws them away: the point is the page cache,
/// which `sendfile` then finds full. Runs on the blocking pool.
fn read_into_cache(file: &File, from: u64, len: u64) -> io::Result<()> {
    let mut buf = vec![0u8; 256 << 10];
    let mut done = 0u64;
    while done < len {
        let want = buf.len().min((len - done) as usize);
        match file.read_at(&mut buf[..want], from + done) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "stored file ended early")),
            Ok(n) => done += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn send_all(data: &[u8], offset: u64, len: u64, cold: bool) -> Vec<u8> {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).expect("temp dir");
        let path = dir.path().join("blob");
        std::fs::write(&path, data).expect("write");
        let file = File::open(&path).expect("open");
        if cold {
            use std::os::fd::AsRawFd;
            file.sync_all().expect("sync");
            // SAFETY: an advisory call on an open file.
            unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        }
        let mut job = FileSend::new(file, offset, len).expect("in range");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let reader = tokio::spawn(async move {
            let mut client = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.expect("read");
            got
        });
        let (server, _) = listener.accept().await.expect("accept");
        futures::future::poll_fn(|cx| job.poll_send(cx, &server))
            .await
            .expect("sent");
        drop(server);
        reader.await.expect("reader")
    }

    /// A range across several stretches, not on a page boundary, arrives whole, from a warm
    /// page cache and from a cold one.
    #[tokio::test]
    async fn ranges_arrive_whole_warm_or_cold() {
        let data: Vec<u8> = (0..(2 * STRETCH as usize + 12_345)).map(|i| (i % 251) as u8).collect();
        let (offset, len) = (4_097u64, data.len() as u64 - 4_097 - 3);
        for cold in [false, true] {
            let got = send_all(&data, offset, len, cold).await;
            assert!(
                got == data[offset as usize..(offset + len) as usize],
                "cold={cold}: bytes differ"
            );
        }
    }

    #[test]
    fn short_files_and_empty_ranges_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("blob");
        std::fs::write(&path, vec![1u8; 100]).expect("write");
        let open = || File::open(&path).expect("open");
        assert!(FileSend::new(open(), 0, 101).is_err());
        assert!(FileSend::new(open(), 0, 0).is_err());
        assert!(FileSend::new(open(), u64::MAX, 2).is_err());
        assert!(FileSend::new(open(), 99, 1).is_ok());
    }
}
