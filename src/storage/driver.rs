//! The storage driver interface: keys to small objects and byte streams, nothing about files.
//! Modelled on distribution's `StorageDriver` (GetContent/PutContent, Reader at an offset,
//! Writer, Stat, List, Move, Delete, Walk). A driver passes `testsuite::run`. Writers always
//! write a fresh object: S3 cannot append, so a resumable upload is a list of parts instead
//! (see `registry::v2::uploads`).

use super::FileSend;
use crate::digest::Hasher;
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use std::io;

/// A stored object's bytes, read piece by piece.
pub type ByteStream = BoxStream<'static, io::Result<Bytes>>;

/// What `stat` knows of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Object size in bytes (0 for a prefix).
    pub size: u64,
    /// Seconds since the epoch of the last write, when the driver knows it.
    pub modified: Option<u64>,
    /// The key is a prefix of other keys rather than an object.
    pub is_prefix: bool,
}

/// What a finished write produced.
pub struct WriteOutcome {
    /// The hashers given to `writer`, fed every byte written by this writer in order.
    pub hashers: Vec<Hasher>,
    /// Bytes written.
    pub written: u64,
}

/// A write in progress: bytes go in as they arrive and are hashed on the way.
#[async_trait]
pub trait Sink: Send {
    /// Queues bytes. Err means the write already failed; `finish` reports why.
    async fn send(&mut self, chunk: Bytes) -> Result<(), ()>;
    /// The source paused: store what is queued now instead of holding it in memory. Err
    /// means the write already failed.
    async fn flush(&mut self) -> Result<(), ()> {
        Ok(())
    }
    /// Makes the bytes durable and visible under the key, and returns the hashes. A failed
    /// write leaves nothing.
    async fn finish(self: Box<Self>) -> io::Result<WriteOutcome>;
    /// Stops: nothing of the object is left.
    async fn abort(self: Box<Self>) -> io::Result<()>;
}

#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// A short name for logs and errors (`fs`, `s3`).
    fn name(&self) -> &'static str;
    /// Where the data is, for messages (a directory, a bucket URL).
    fn location(&self) -> String;
    /// The key of a new temp object, unique to this process: several processes may share one
    /// store, and each clears only what processes that ended left (see `fs::OwnTemp`).
    fn temp_key(&self) -> String {
        super::keys::temp(&hex::encode(rand::random::<[u8; 16]>()))
    }

    /// A small object's bytes, `None` if absent.
    async fn get(&self, key: &str) -> io::Result<Option<Bytes>>;
    /// Several small objects in one round trip (the manifest read path needs two at once).
    async fn get_many(&self, keys: Vec<String>) -> io::Result<Vec<Option<Bytes>>>;
    /// Writes a small object atomically: readers see the old bytes or the new, never a mix.
    async fn put(&self, key: &str, data: Bytes) -> io::Result<()>;
    /// Removes one object; false if it was not there.
    async fn delete(&self, key: &str) -> io::Result<bool>;
    /// Removes every object under `prefix` (and the object `prefix` itself); false if none.
    async fn delete_all(&self, prefix: &str) -> io::Result<bool>;
    /// Size and kind of a key, `None` if neither an object nor a prefix of one.
    async fn stat(&self, key: &str) -> io::Result<Option<Stat>>;
    /// Names of the entries directly under `prefix` (objects and sub-prefixes), sorted.
    async fn list(&self, prefix: &str) -> io::Result<Vec<String>>;
    /// Up to `limit` names directly under `prefix`, in no particular order, and whether that was
    /// all of them: for callers that can stop at the first one that fits (an image's member
    /// repositories, of which a base image may have thousands).
    async fn list_some(&self, prefix: &str, limit: usize) -> io::Result<(Vec<String>, bool)>;
    /// Every object key under `prefix`, at any depth, sorted.
    async fn walk(&self, prefix: &str) -> io::Result<Vec<String>>;
    /// `len` bytes of an object from `offset`, streamed in bounded pieces.
    async fn read(&self, key: &str, offset: u64, len: u64) -> io::Result<ByteStream>;
    /// `len` (> 0) bytes of an object from `offset`, ready to be written to a socket straight
    /// from the page cache, for drivers that keep objects in local files; `None` for the
    /// others, which are read with `read`.
    async fn sendable(&self, _key: &str, _offset: u64, _len: u64) -> io::Result<Option<FileSend>> {
        Ok(None)
    }
    /// A URL where a client may GET the object itself for `ttl` (a presigned URL), for
    /// drivers whose store clients can reach; `None` for the others.
    async fn redirect(&self, _key: &str, _ttl: std::time::Duration) -> io::Result<Option<String>> {
        Ok(None)
    }
    /// Starts writing a new object under `key` (replacing any), hashing as bytes arrive.
    async fn writer(&self, key: &str, hashers: Vec<Hasher>) -> io::Result<Box<dyn Sink>>;
    /// Moves a complete object to `to`, durably. If `to` already exists the move is skipped,
    /// `from` removed (destinations are content-addressed, so the bytes are the same) and `to`'s
    /// modification time set to now: it was just written again, which garbage collection's
    /// grace period must see.
    async fn commit(&self, from: &str, to: &str) -> io::Result<()>;
}
