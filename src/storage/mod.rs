//! The registry's storage: content-addressed blobs and small metadata objects behind a
//! [`Driver`] (the embedded default is `fs`, files under one root). Nothing above this module
//! sees a path or a file: callers name keys (all defined in [`keys`]), digests and byte streams.
//!
//! [`Storage`] is the handle the rest of the server holds: the driver, plus the blob operations
//! everyone needs (write while hashing, commit under a digest, read a range).

pub mod announce;
pub mod cache;
pub mod driver;
pub mod fs;
pub mod keys;
pub mod layout;
pub mod local;
pub mod pins;
pub mod s3;
pub mod testsuite;

pub use driver::{ByteStream, Driver, Sink, Stat, WriteOutcome};
pub use fs::send::FileSend;

use crate::digest::{Digest, Hasher};
use std::io;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

#[derive(Clone)]
pub struct Storage {
    driver: Arc<dyn Driver>,
    /// Keeps garbage collection and new references to blobs apart.
    pins: Arc<pins::Pins>,
    /// This node's copies of blobs of a remote store (see `cache`).
    cache: Option<Arc<cache::BlobCache>>,
}

impl Deref for Storage {
    type Target = dyn Driver;
    fn deref(&self) -> &Self::Target {
        self.driver.as_ref()
    }
}

/// A blob being written to a temp key, to be committed under its digest once verified.
pub struct NewBlob {
    pub sink: Box<dyn Sink>,
    temp: String,
}

/// A finished [`NewBlob`]: the hashes of what was written, and where it waits.
pub struct WrittenBlob {
    pub hashers: Vec<Hasher>,
    pub written: u64,
    temp: String,
}

impl Storage {
    /// Storage on `driver`, its layout checked (and recorded on first use).
    pub async fn open(driver: Arc<dyn Driver>) -> Result<Storage, layout::LayoutError> {
        let storage = Storage {
            pins: Arc::new(pins::Pins::shared(driver.clone())),
            driver,
            cache: None,
        };
        layout::check(&storage).await?;
        Ok(storage)
    }

    /// The fs driver at `root`, opened for serving (stale temp files removed, layout checked).
    pub async fn open_fs(root: &Path) -> Result<Storage, layout::LayoutError> {
        let driver = fs::FsDriver::open(root).map_err(|e| layout::LayoutError::Io(root.display().to_string(), e))?;
        Storage::open(Arc::new(driver)).await
    }

    /// The driver `config` names (`fs` at `root`, or `s3`), opened for serving; with `s3`
    /// and `cache_mib` > 0, with this node's blob cache in `cache_dir`.
    pub async fn open_configured(
        config: &crate::config::StorageConfig,
        root: &Path,
        cache_dir: &Path,
    ) -> Result<Storage, layout::LayoutError> {
        let mut storage = Storage::configured(config, root, true).await?;
        if config.is_s3() && config.s3.cache_mib > 0 {
            let cache = cache::BlobCache::open(cache_dir, config.s3.cache_mib << 20)
                .map_err(|e| layout::LayoutError::Io(cache_dir.display().to_string(), e))?;
            storage.cache = Some(cache);
        }
        Ok(storage)
    }

    /// The driver `config` names as it is, for offline tools (no clean-up; layout checked).
    pub async fn existing_configured(
        config: &crate::config::StorageConfig,
        root: &Path,
    ) -> Result<Storage, layout::LayoutError> {
        Storage::configured(config, root, false).await
    }

    async fn configured(
        config: &crate::config::StorageConfig,
        root: &Path,
        serving: bool,
    ) -> Result<Storage, layout::LayoutError> {
        match (config.is_s3(), serving) {
            (true, _) => Storage::open(Arc::new(Storage::s3_driver(config)?)).await,
            (false, true) => Storage::open_fs(root).await,
            (false, false) => Storage::existing_fs(root).await,
        }
    }

    fn s3_driver(config: &crate::config::StorageConfig) -> Result<s3::S3Driver, layout::LayoutError> {
        s3::S3Driver::new(&config.s3).map_err(|e| layout::LayoutError::Io(format!("s3 bucket {}", config.s3.bucket), e))
    }

    /// The fs driver at `root` as it is, for offline tools (no clean-up; layout checked).
    pub async fn existing_fs(root: &Path) -> Result<Storage, layout::LayoutError> {
        let driver =
            fs::FsDriver::existing(root).map_err(|e| layout::LayoutError::Io(root.display().to_string(), e))?;
        Storage::open(Arc::new(driver)).await
    }

    pub fn pins(&self) -> &Arc<pins::Pins> {
        &self.pins
    }

    pub async fn exists(&self, key: &str) -> io::Result<bool> {
        Ok(self.driver.stat(key).await?.is_some())
    }

    /// The size of a stored blob, `None` if the store does not have it.
    pub async fn blob_size(&self, digest: &Digest) -> io::Result<Option<u64>> {
        Ok(self.driver.stat(&keys::blob(digest)).await?.map(|s| s.size))
    }

    /// `len` bytes of a blob from `offset`.
    pub async fn read_blob(&self, digest: &Digest, offset: u64, len: u64) -> io::Result<ByteStream> {
        self.driver.read(&keys::blob(digest), offset, len).await
    }

    /// `len` bytes of blob `digest` (`size` bytes in all) from `offset`, for a client who may
    /// have it: from this node's cache when it has a copy, else from the store (a whole read
    /// from the store leaves a copy in the cache).
    pub async fn serve_blob(&self, digest: &Digest, offset: u64, len: u64, size: u64) -> io::Result<ByteStream> {
        let Some(cache) = &self.cache else {
            return self.read_blob(digest, offset, len).await;
        };
        if let Some(stream) = self
            .cached(cache, digest, move |file| fs::FileStream::new(file, offset, len))
            .await
        {
            return Ok(Box::pin(stream));
        }
        let stream = self.read_blob(digest, offset, len).await?;
        Ok(if offset == 0 && len == size {
            cache.tee(digest, size, stream)
        } else {
            stream
        })
    }

    /// `len` (> 0) bytes of a blob from `offset`, to be written to a socket straight from the
    /// page cache, when the driver keeps the blob in a local file or this node has a copy.
    pub async fn sendable_blob(&self, digest: &Digest, offset: u64, len: u64) -> io::Result<Option<FileSend>> {
        if let Some(send) = self.driver.sendable(&keys::blob(digest), offset, len).await? {
            return Ok(Some(send));
        }
        match &self.cache {
            Some(cache) => Ok(self
                .cached(cache, digest, move |file| FileSend::new(file, offset, len))
                .await),
            None => Ok(None),
        }
    }

    /// `open` applied to the cached copy of `digest`, if there is one it accepts (one that
    /// does not hold the range, which cannot happen short of damage, is dropped).
    async fn cached<T: Send + 'static>(
        &self,
        cache: &Arc<cache::BlobCache>,
        digest: &Digest,
        open: impl FnOnce(std::fs::File) -> io::Result<T> + Send + 'static,
    ) -> Option<T> {
        if !cache.has(digest) {
            return None;
        }
        let (cache, digest) = (cache.clone(), digest.clone());
        tokio::task::spawn_blocking(move || {
            let file = cache.file(&digest)?;
            match open(file) {
                Ok(opened) => Some(opened),
                Err(e) => {
                    log::warn!("blob cache: copy of {digest} unusable ({e}); dropped");
                    cache.remove(&digest);
                    None
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// This node's blob cache, when it has one.
    pub fn blob_cache(&self) -> Option<&Arc<cache::BlobCache>> {
        self.cache.as_ref()
    }

    /// Starts streaming a new blob into a temp key, hashing with `hashers` as bytes arrive.
    pub async fn begin_blob(&self, hashers: Vec<Hasher>) -> io::Result<NewBlob> {
        let temp = self.driver.temp_key();
        let sink = self.driver.writer(&temp, hashers).await?;
        Ok(NewBlob { sink, temp })
    }

    /// Moves a complete object (a written temp blob, an upload's data) into the blob store under
    /// `digest`. If the blob is already there (same content), the source is dropped instead.
    /// Pinned (see `pins`): a collection never deletes the blob between its being found
    /// present here and its modification time being renewed.
    pub async fn commit_blob(&self, from: &str, digest: &Digest) -> io::Result<()> {
        let _pin = self.pins.reference(digest).await;
        self.driver.commit(from, &keys::blob(digest)).await
    }
}

/// How long a body may pause before what it sent so far is written out (see [`pump`]).
const PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// Moves a request body into `sink` until it ends. Err is the body's own error (the client went
/// away, or stalled for too long); a sink that fails stops the copy, and its `finish` says why.
/// When the body pauses, what it sent is written out rather than held: a slow client costs
/// neither a thread nor a growing buffer.
pub async fn pump<S, E>(sink: &mut dyn Sink, body: &mut S) -> Result<(), E>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
{
    use futures::StreamExt;
    let mut queued = false;
    loop {
        let next = if queued {
            match tokio::time::timeout(PAUSE, body.next()).await {
                Ok(next) => next,
                Err(_) => {
                    queued = false;
                    if sink.flush().await.is_err() {
                        break;
                    }
                    continue;
                }
            }
        } else {
            body.next().await
        };
        let Some(chunk) = next else { break };
        if sink.send(chunk?).await.is_err() {
            break;
        }
        queued = true;
    }
    Ok(())
}

impl NewBlob {
    /// Ends the write; the bytes are durable but not yet visible (see [`WrittenBlob::commit`]).
    pub async fn finish(self) -> io::Result<WrittenBlob> {
        let outcome = self.sink.finish().await?;
        Ok(WrittenBlob {
            hashers: outcome.hashers,
            written: outcome.written,
            temp: self.temp,
        })
    }
}

impl WrittenBlob {
    /// Makes the blob visible under `digest`.
    pub async fn commit(self, storage: &Storage, digest: &Digest) -> io::Result<()> {
        storage.commit_blob(&self.temp, digest).await
    }

    /// Drops the written bytes (the digest did not match).
    pub async fn discard(self, storage: &Storage) -> io::Result<()> {
        storage.delete(&self.temp).await.map(drop)
    }
}
