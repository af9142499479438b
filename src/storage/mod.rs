//! The registry's storage driver: content-addressed blobs plus small metadata objects, all as
//! files under one root (the embedded default driver, `fs`).
//!
//! Layout:
//! ```text
//! blobs/<algo>/<2 hex>/<hex>     content-addressed bytes (v1 layers and v2 blobs alike)
//! _tmp/<random>                  files being written; renamed into place once complete
//! <any other key>                small metadata objects (image json, ancestry, tags, links)
//! ```
//! Every write is: temp file, fsync, rename, fsync of the directory. A reader therefore sees the
//! old object or the new one, never a torn one, also after a crash.

pub mod reader;
mod writer;

pub use writer::{BlobSink, WriteOutcome};

use crate::registry::digest::Digest;
use bytes::Bytes;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
}

impl Storage {
    /// Opens (creating if needed) the storage root and removes temp files of writes that a crash
    /// interrupted: they were never visible, so dropping them loses nothing acknowledged.
    pub fn open(root: &Path) -> io::Result<Storage> {
        fs::create_dir_all(root.join("blobs"))?;
        let tmp = root.join("_tmp");
        if tmp.exists() {
            fs::remove_dir_all(&tmp)?;
        }
        fs::create_dir_all(&tmp)?;
        Ok(Storage {
            root: root.to_path_buf(),
        })
    }

    /// The storage at `root` as it is, without start-up clean-up (for offline tools).
    pub fn existing(root: &Path) -> Storage {
        Storage {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
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

    pub fn temp_path(&self) -> PathBuf {
        self.root.join("_tmp").join(hex::encode(rand::random::<[u8; 16]>()))
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root
            .join("blobs")
            .join(digest.algorithm().name())
            .join(&hex[..2])
            .join(hex)
    }

    // ---- synchronous primitives (call from blocking context) ----

    pub fn get_sync(&self, key: &str) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.path(key)?) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn put_sync(&self, key: &str, data: &[u8]) -> io::Result<()> {
        let dest = self.path(key)?;
        let tmp = self.temp_path();
        let mut f = fs::File::create(&tmp)?;
        let result = (|| {
            f.write_all(data)?;
            f.sync_all()?;
            commit_file(&tmp, &dest)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    pub fn delete_sync(&self, key: &str) -> io::Result<bool> {
        match fs::remove_file(self.path(key)?) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn exists_sync(&self, key: &str) -> io::Result<bool> {
        Ok(self.path(key)?.exists())
    }

    /// Names of the entries directly under `prefix`, sorted; empty if it does not exist.
    pub fn list_sync(&self, prefix: &str) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        match fs::read_dir(self.path(prefix)?) {
            Ok(rd) => {
                for e in rd {
                    if let Some(n) = e?.file_name().to_str() {
                        out.push(n.to_string());
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        out.sort();
        Ok(out)
    }

    pub fn delete_all_sync(&self, prefix: &str) -> io::Result<bool> {
        match fs::remove_dir_all(self.path(prefix)?) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn blob_size_sync(&self, digest: &Digest) -> io::Result<Option<u64>> {
        match fs::metadata(self.blob_path(digest)) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Moves a complete, fsynced temp file into the blob store under `digest`. If the blob is
    /// already there (same content), the temp file is dropped instead.
    pub fn commit_blob_sync(&self, tmp: &Path, digest: &Digest) -> io::Result<()> {
        let dest = self.blob_path(digest);
        if dest.exists() {
            fs::remove_file(tmp)?;
            return Ok(());
        }
        commit_file(tmp, &dest)
    }

    // ---- async wrappers: file work runs on the blocking pool, never on an actix worker ----

    pub async fn get(&self, key: &str) -> io::Result<Option<Bytes>> {
        let (s, k) = (self.clone(), key.to_string());
        blocking(move || s.get_sync(&k).map(|o| o.map(Bytes::from))).await
    }

    pub async fn put(&self, key: &str, data: impl Into<Vec<u8>>) -> io::Result<()> {
        let (s, k, d) = (self.clone(), key.to_string(), data.into());
        blocking(move || s.put_sync(&k, &d)).await
    }

    pub async fn delete(&self, key: &str) -> io::Result<bool> {
        let (s, k) = (self.clone(), key.to_string());
        blocking(move || s.delete_sync(&k)).await
    }

    pub async fn exists(&self, key: &str) -> io::Result<bool> {
        let (s, k) = (self.clone(), key.to_string());
        blocking(move || s.exists_sync(&k)).await
    }

    pub async fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let (s, k) = (self.clone(), prefix.to_string());
        blocking(move || s.list_sync(&k)).await
    }

    pub async fn delete_all(&self, prefix: &str) -> io::Result<bool> {
        let (s, k) = (self.clone(), prefix.to_string());
        blocking(move || s.delete_all_sync(&k)).await
    }

    pub async fn blob_size(&self, digest: &Digest) -> io::Result<Option<u64>> {
        let (s, d) = (self.clone(), digest.clone());
        blocking(move || s.blob_size_sync(&d)).await
    }

    pub async fn commit_blob(&self, tmp: PathBuf, digest: &Digest) -> io::Result<()> {
        let (s, d) = (self.clone(), digest.clone());
        blocking(move || s.commit_blob_sync(&tmp, &d)).await
    }

    /// Starts streaming a new blob into a temp file, hashing with `algos` as bytes arrive.
    pub fn begin_blob(&self, hashers: Vec<crate::registry::digest::Hasher>) -> BlobSink {
        BlobSink::start(self.temp_path(), false, hashers)
    }
}

/// rename(2) into place (creating parent directories) and fsync the directory so the rename
/// itself survives a crash.
fn commit_file(tmp: &Path, dest: &Path) -> io::Result<()> {
    let parent = dest
        .parent()
        .ok_or_else(|| io::Error::other("destination has no parent"))?;
    fs::create_dir_all(parent)?;
    fs::rename(tmp, dest)?;
    fs::File::open(parent)?.sync_all()
}

pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(io::Error::other)?
}
