//! Ranged reads as a sequence of bounded GETs, a few fetched ahead while the client takes the
//! one before: one GET at a time leaves the store idle between its blocks, and the client's
//! socket waiting on each. Memory per read is bounded by the windows in flight, however large
//! the object; a window cut off midway is asked for again from the byte where it stopped.

use crate::storage::driver::ByteStream;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore};
use std::io;
use std::sync::Arc;

/// Bytes per GET.
const WINDOW: u64 = 8 << 20;
/// GETs in flight beyond the window being sent (measured on Garage: 8 MiB x 4 pulled fastest
/// of 1-64 MiB x 1-12).
const AHEAD: usize = 4;
/// Bytes all reads of the process may hold fetched ahead, whatever the number of clients:
/// past it, a read waits for others to hand theirs on.
const BUDGET_MIB: usize = 512;
/// Tries per window.
const TRIES: u32 = 4;

/// `len` bytes of `path` from `offset`. The object must exist (an absent one fails here, not
/// in the stream), also when `len` is 0.
pub async fn ranged(store: Arc<AmazonS3>, path: ObjectPath, offset: u64, len: u64) -> io::Result<ByteStream> {
    if len == 0 {
        store.head(&path).await.map_err(io::Error::from)?;
        return Ok(futures::stream::empty().boxed());
    }
    let end = offset.saturating_add(len);
    let first_end = end.min(offset.saturating_add(WINDOW));
    let first = fetch(&store, &path, offset, first_end).await?;
    let rest = (first_end..end)
        .step_by(WINDOW as usize)
        .map(move |at| (at, end.min(at.saturating_add(WINDOW))));
    let rest = futures::stream::iter(rest)
        .map(move |(at, to)| {
            let (store, path) = (store.clone(), path.clone());
            async move {
                let permit = budget((to - at) as usize).await?;
                let pieces = fetch(&store, &path, at, to).await?;
                Ok::<_, io::Error>(Window {
                    pieces: pieces.into_iter(),
                    _permit: permit,
                })
            }
        })
        .buffered(AHEAD);
    let first = Window {
        pieces: first.into_iter(),
        _permit: budget(0).await?,
    };
    let windows = futures::stream::once(async move { Ok(first) }).chain(rest);
    // The pieces as they came off the socket: handed on without another copy.
    Ok(windows
        .map_ok(|window| futures::stream::iter(window.map(Ok)))
        .try_flatten()
        .boxed())
}

/// Bytes `at..to` of the object, whole, in the pieces they arrived in.
async fn fetch(store: &AmazonS3, path: &ObjectPath, at: u64, to: u64) -> io::Result<Vec<Bytes>> {
    let mut got = Pieces::default();
    let mut tries = 0;
    loop {
        let from = at + got.len() as u64;
        if from >= to {
            return Ok(got.pieces);
        }
        tries += 1;
        let options = GetOptions {
            range: Some(GetRange::Bounded(from..to)),
            ..GetOptions::default()
        };
        let failed = match store.get_opts(path, options).await {
            Ok(found) => {
                let mut body = found.into_stream();
                loop {
                    match body.try_next().await {
                        Ok(Some(chunk)) => {
                            let room = (to - at) as usize - got.len();
                            got.push(chunk.slice(..chunk.len().min(room)));
                        }
                        Ok(None) => break None,
                        Err(e) => break Some(e),
                    }
                }
            }
            // An absent object is not worth asking for again.
            Err(e @ object_store::Error::NotFound { .. }) => return Err(io::Error::from(e)),
            Err(e) => Some(e),
        };
        match failed {
            None if (at + got.len() as u64) < to => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{path} ended at byte {} of {to}", at + got.len() as u64),
                ))
            }
            None => {}
            Some(e) if tries < TRIES => log::warn!("s3 read of {path} cut at byte {from}: {e}; again"),
            Some(e) => return Err(io::Error::from(e)),
        }
    }
}

#[derive(Default)]
struct Pieces {
    pieces: Vec<Bytes>,
    len: usize,
}

impl Pieces {
    fn len(&self) -> usize {
        self.len
    }
    fn push(&mut self, piece: Bytes) {
        self.len += piece.len();
        if !piece.is_empty() {
            self.pieces.push(piece);
        }
    }
}

/// A fetched window's pieces; its share of [`BUDGET_MIB`] returns once they are all handed on.
struct Window {
    pieces: std::vec::IntoIter<Bytes>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Iterator for Window {
    type Item = Bytes;
    fn next(&mut self) -> Option<Bytes> {
        self.pieces.next()
    }
}

async fn budget(bytes: usize) -> io::Result<tokio::sync::OwnedSemaphorePermit> {
    static BUDGET: std::sync::OnceLock<Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    let semaphore = BUDGET.get_or_init(|| Arc::new(tokio::sync::Semaphore::new(BUDGET_MIB)));
    let mib = bytes.div_ceil(1 << 20).min(BUDGET_MIB) as u32;
    semaphore
        .clone()
        .acquire_many_owned(mib)
        .await
        .map_err(io::Error::other)
}
