//! Ranged reads as a sequence of bounded GETs: each window is one request, streamed through as
//! the client takes it (never buffered whole), and a window cut off midway is asked for again
//! from the byte where it stopped.

use crate::storage::driver::ByteStream;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::aws::AmazonS3;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore};
use std::io;
use std::sync::Arc;

/// Bytes per GET: large enough that a request's cost vanishes beside its bytes, small enough
/// that a slow client finishes a window within the request timeout.
const WINDOW: u64 = 64 << 20;
/// Tries per window after a failure midway.
const RETRIES: u32 = 3;

type Body = BoxStream<'static, object_store::Result<Bytes>>;

struct Cursor {
    store: Arc<AmazonS3>,
    path: ObjectPath,
    /// The next byte to hand out, and the end of the range.
    at: u64,
    end: u64,
    body: Option<Body>,
    retries: u32,
}

async fn window(store: &AmazonS3, path: &ObjectPath, at: u64, end: u64) -> io::Result<Body> {
    let options = GetOptions {
        range: Some(GetRange::Bounded(at..end.min(at.saturating_add(WINDOW)))),
        ..GetOptions::default()
    };
    let got = store.get_opts(path, options).await.map_err(io::Error::from)?;
    Ok(got.into_stream())
}

/// `len` bytes of `path` from `offset`. The object must exist (an absent one fails here, not
/// in the stream), also when `len` is 0.
pub async fn ranged(store: Arc<AmazonS3>, path: ObjectPath, offset: u64, len: u64) -> io::Result<ByteStream> {
    let end = offset.saturating_add(len);
    let body = if len == 0 {
        store.head(&path).await.map_err(io::Error::from)?;
        None
    } else {
        Some(window(&store, &path, offset, end).await?)
    };
    let cursor = Cursor {
        store,
        path,
        at: offset,
        end,
        body,
        retries: 0,
    };
    Ok(futures::stream::unfold(cursor, next).boxed())
}

async fn next(mut c: Cursor) -> Option<(io::Result<Bytes>, Cursor)> {
    loop {
        if c.at >= c.end {
            return None;
        }
        let body = match c.body.as_mut() {
            Some(body) => body,
            None => match window(&c.store, &c.path, c.at, c.end).await {
                Ok(body) => c.body.insert(body),
                Err(e) => {
                    c.end = c.at; // ends the stream after this error
                    return Some((Err(e), c));
                }
            },
        };
        match body.next().await {
            Some(Ok(chunk)) => {
                let room = c.end - c.at;
                let chunk = if chunk.len() as u64 > room {
                    chunk.slice(..room as usize)
                } else {
                    chunk
                };
                c.at += chunk.len() as u64;
                c.retries = 0;
                return Some((Ok(chunk), c));
            }
            // The window is done; the next one starts at `at`.
            None => c.body = None,
            Some(Err(e)) if c.retries < RETRIES => {
                log::warn!("s3 read of {} cut at byte {}: {e}; resuming", c.path, c.at);
                c.retries += 1;
                c.body = None;
            }
            Some(Err(e)) => {
                c.end = c.at;
                return Some((Err(io::Error::from(e)), c));
            }
        }
    }
}
