//! The embedded default driver: every key is a file under one root directory.
//!
//! Every write is: temp file, fsync, rename, fsync of the directory. A reader therefore sees the
//! old object or the new one, never a torn one, also after a crash. File work runs on the
//! blocking pool, never on an actix worker.

mod reader;
mod writer;

use super::driver::{ByteStream, Driver, Sink, Stat};
use super::keys;
use crate::digest::Hasher;
use async_trait::async_trait;
use bytes::Bytes;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct FsDriver {
    root: Arc<PathBuf>,
}

impl FsDriver {
    /// Opens (creating if needed) the root and removes temp files of writes that a crash
    /// interrupted: they were never visible, so dropping them loses nothing acknowledged.
    pub fn open(root: &Path) -> io::Result<FsDriver> {
        fs::create_dir_all(root.join(keys::BLOBS))?;
        let tmp = root.join(keys::TMP);
        if tmp.exists() {
            fs::remove_dir_all(&tmp)?;
        }
        fs::create_dir_all(&tmp)?;
        Ok(Self::existing(root))
    }

    /// The root as it is, without start-up clean-up (for offline tools next to a live server).
    pub fn existing(root: &Path) -> FsDriver {
        FsDriver {
            root: Arc::new(root.to_path_buf()),
        }
    }

    /// Maps a key to a path. Keys are built from validated names; refusing `..` and absolute
    /// parts here is a second line of defence against traversal.
    fn path(&self, key: &str) -> io::Result<PathBuf> {
        if key.is_empty() || key.starts_with('/') || key.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad storage key {key:?}"),
            ));
        }
        Ok(self.root.join(key))
    }

    fn temp_path(&self) -> PathBuf {
        self.root.join(keys::TMP).join(hex::encode(rand::random::<[u8; 16]>()))
    }

    fn get_sync(&self, key: &str) -> io::Result<Option<Bytes>> {
        match fs::read(self.path(key)?) {
            Ok(b) => Ok(Some(Bytes::from(b))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn put_sync(&self, key: &str, data: &[u8]) -> io::Result<()> {
        let dest = self.path(key)?;
        let tmp = self.temp_path();
        let mut f = fs::File::create(&tmp)?;
        let result = (|| {
            f.write_all(data)?;
            f.sync_all()?;
            rename_durably(&tmp, &dest)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Runs file work on the blocking pool with a clone of this driver.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&FsDriver) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me).map_err(|e| me.full(e)))
            .await
            .map_err(io::Error::other)?
    }

    /// A full disk names the storage it happened on, for the operator's log; other errors pass.
    pub(crate) fn full(&self, e: io::Error) -> io::Error {
        if e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(122) {
            io::Error::new(
                e.kind(),
                format!("no space left for the storage at {}: {e}", self.root.display()),
            )
        } else {
            e
        }
    }
}

#[async_trait]
impl Driver for FsDriver {
    fn name(&self) -> &'static str {
        "fs"
    }

    fn location(&self) -> String {
        self.root.display().to_string()
    }

    async fn get(&self, key: &str) -> io::Result<Option<Bytes>> {
        let k = key.to_string();
        self.blocking(move |d| d.get_sync(&k)).await
    }

    async fn get_many(&self, keys: Vec<String>) -> io::Result<Vec<Option<Bytes>>> {
        self.blocking(move |d| keys.iter().map(|k| d.get_sync(k)).collect())
            .await
    }

    async fn put(&self, key: &str, data: Bytes) -> io::Result<()> {
        let k = key.to_string();
        self.blocking(move |d| d.put_sync(&k, &data)).await
    }

    async fn delete(&self, key: &str) -> io::Result<bool> {
        let path = self.path(key)?;
        self.blocking(move |_| match fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        })
        .await
    }

    async fn delete_all(&self, prefix: &str) -> io::Result<bool> {
        let path = self.path(prefix)?;
        self.blocking(move |_| {
            let result = match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => fs::remove_dir_all(&path),
                Ok(_) => fs::remove_file(&path),
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn stat(&self, key: &str) -> io::Result<Option<Stat>> {
        let path = self.path(key)?;
        self.blocking(move |_| match fs::metadata(path) {
            Ok(m) => Ok(Some(Stat {
                size: if m.is_dir() { 0 } else { m.len() },
                modified: m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs()),
                is_prefix: m.is_dir(),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })
        .await
    }

    async fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let path = self.path(prefix)?;
        self.blocking(move |_| {
            let mut out = Vec::new();
            for entry in read_dir(&path)? {
                if let Some(n) = entry.file_name().and_then(|n| n.to_str()) {
                    out.push(n.to_string());
                }
            }
            out.sort();
            Ok(out)
        })
        .await
    }

    async fn list_some(&self, prefix: &str, limit: usize) -> io::Result<(Vec<String>, bool)> {
        let path = self.path(prefix)?;
        self.blocking(move |_| {
            let mut entries = match fs::read_dir(&path) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), true)),
                Err(e) => return Err(e),
            };
            let mut out = Vec::new();
            for entry in entries.by_ref() {
                if let Some(n) = entry?.file_name().to_str() {
                    out.push(n.to_string());
                }
                if out.len() == limit {
                    return Ok((out, entries.next().is_none()));
                }
            }
            Ok((out, true))
        })
        .await
    }

    async fn walk(&self, prefix: &str) -> io::Result<Vec<String>> {
        let (path, prefix) = (self.path(prefix)?, prefix.to_string());
        self.blocking(move |_| {
            let mut out = Vec::new();
            walk_dir(&path, &prefix, &mut out)?;
            out.sort();
            Ok(out)
        })
        .await
    }

    async fn read(&self, key: &str, offset: u64, len: u64) -> io::Result<ByteStream> {
        let path = self.path(key)?;
        let stream = self
            .blocking(move |_| reader::FileStream::new(fs::File::open(path)?, offset, len))
            .await?;
        Ok(Box::pin(stream))
    }

    async fn writer(&self, key: &str, append: bool, hashers: Vec<Hasher>) -> io::Result<Box<dyn Sink>> {
        let path = self.path(key)?;
        Ok(Box::new(NamedSink {
            inner: Box::new(writer::BlobSink::start(path, append, hashers)),
            driver: self.clone(),
        }))
    }

    async fn commit(&self, from: &str, to: &str) -> io::Result<()> {
        let (from, to) = (self.path(from)?, self.path(to)?);
        self.blocking(move |_| {
            if to.exists() {
                fs::remove_file(&from)?;
                return Ok(());
            }
            // The source may have been written by several appends (an upload): make sure all of
            // it is on disk before the rename makes it visible.
            fs::File::open(&from)?.sync_all()?;
            rename_durably(&from, &to)
        })
        .await
    }
}

/// rename(2) into place (creating parent directories) and fsync the directory so the rename
/// itself survives a crash.
pub(crate) fn rename_durably(from: &Path, to: &Path) -> io::Result<()> {
    let parent = to
        .parent()
        .ok_or_else(|| io::Error::other("destination has no parent"))?;
    fs::create_dir_all(parent)?;
    fs::rename(from, to)?;
    fs::File::open(parent)?.sync_all()
}

fn read_dir(dir: &Path) -> io::Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.map(|e| e.path())).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn walk_dir(dir: &Path, key: &str, out: &mut Vec<String>) -> io::Result<()> {
    for entry in read_dir(dir)? {
        let Some(name) = entry.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let child = format!("{key}/{name}");
        if entry.is_dir() {
            walk_dir(&entry, &child, out)?;
        } else {
            out.push(child);
        }
    }
    Ok(())
}

/// A blob write whose full-disk error names the storage (see [`FsDriver::full`]).
struct NamedSink {
    inner: Box<dyn Sink>,
    driver: FsDriver,
}

#[async_trait]
impl Sink for NamedSink {
    async fn send(&mut self, chunk: Bytes) -> Result<(), ()> {
        self.inner.send(chunk).await
    }
    async fn finish(self: Box<Self>) -> io::Result<crate::storage::driver::WriteOutcome> {
        let NamedSink { inner, driver } = *self;
        inner.finish().await.map_err(|e| driver.full(e))
    }
    async fn abort(self: Box<Self>) -> io::Result<u64> {
        let NamedSink { inner, driver } = *self;
        inner.abort().await.map_err(|e| driver.full(e))
    }
}
