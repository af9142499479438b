//! The embedded default driver: every key is a file under one root directory.
//!
//! Every write is: temp file, fsync, rename, fsync of the directory. A reader therefore sees the
//! old object or the new one, never a torn one, also after a crash. File work runs on the
//! blocking pool, never on an actix worker.

mod reader;
pub(crate) use reader::FileStream;
pub mod send;

use send::FileSend;
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
    /// This process's own temp directory (see [`OwnTemp`]).
    tmp: Arc<OwnTemp>,
}

/// A directory `_tmp/<random>` where this process alone writes files before renaming them into
/// place, with a lock `_tmp_locks/<random>.lock` held while the process lives. Several
/// processes may serve one root: each clears only the temp directories whose lock nobody
/// holds, which are those of processes that ended (a crash releases its lock too), never
/// another live process's writes in flight.
#[derive(Debug)]
struct OwnTemp {
    /// Its name under `_tmp`.
    name: String,
    _lock: crate::storage::local::LockFile,
}

fn lock_path(root: &Path, name: &str) -> PathBuf {
    root.join(keys::TMP_LOCKS).join(format!("{name}.lock"))
}

impl OwnTemp {
    /// Takes the lock first and makes the directory second, so another process's sweep never
    /// sees the directory unlocked.
    fn create(root: &Path) -> io::Result<OwnTemp> {
        loop {
            let name = hex::encode(rand::random::<[u8; 8]>());
            let Some(lock) = crate::storage::local::try_lock(&lock_path(root, &name))? else {
                continue;
            };
            fs::create_dir_all(root.join(keys::TMP).join(&name))?;
            return Ok(OwnTemp { name, _lock: lock });
        }
    }
}

/// Removes what processes that ended left in `_tmp`: their directories (whose lock can be
/// taken) and locks, and loose files of the older layout (one shared `_tmp`). Nothing there
/// was ever visible, so dropping it loses nothing acknowledged.
fn sweep_temp(root: &Path) -> io::Result<()> {
    for entry in fs::read_dir(root.join(keys::TMP))? {
        let entry = entry?;
        let path = entry.path();
        if !entry.file_type()?.is_dir() {
            remove_file_if_present(&path)?;
            continue;
        }
        let lock = lock_path(root, &entry.file_name().to_string_lossy());
        if let Some(_held) = crate::storage::local::try_lock(&lock)? {
            fs::remove_dir_all(&path)?;
            remove_file_if_present(&lock)?;
        }
    }
    for entry in fs::read_dir(root.join(keys::TMP_LOCKS))? {
        let path = entry?.path();
        // A lock without its directory: a process that ended, or one about to make it (which
        // holds the lock, so `try_lock` leaves it be).
        if let Some(_held) = crate::storage::local::try_lock(&path)? {
            let dir = path.file_stem().map(|n| root.join(keys::TMP).join(n));
            if !dir.is_some_and(|d| d.exists()) {
                remove_file_if_present(&path)?;
            }
        }
    }
    Ok(())
}

fn remove_file_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

impl FsDriver {
    /// Opens (creating if needed) the root, clears what ended processes left in `_tmp` (see
    /// [`sweep_temp`]), and takes a temp directory of its own.
    pub fn open(root: &Path) -> io::Result<FsDriver> {
        fs::create_dir_all(root.join(keys::BLOBS))?;
        fs::create_dir_all(root.join(keys::TMP))?;
        fs::create_dir_all(root.join(keys::TMP_LOCKS))?;
        sweep_temp(root)?;
        Self::existing(root)
    }

    /// The root as it is, without start-up clean-up (for offline tools next to a live server);
    /// it writes in a temp directory of its own all the same.
    pub fn existing(root: &Path) -> io::Result<FsDriver> {
        Ok(FsDriver {
            root: Arc::new(root.to_path_buf()),
            tmp: Arc::new(OwnTemp::create(root)?),
        })
    }

    /// Maps a key to a path. Keys are built from validated names; refusing `..` and absolute
    /// parts here is a second line of defence against traversal.
    fn path(&self, key: &str) -> io::Result<PathBuf> {
        keys::check(key)?;
        Ok(self.root.join(key))
    }

    fn temp_path(&self) -> PathBuf {
        self.root.join(self.temp_key())
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
        if crate::error::is_disk_full(&e) {
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

    fn temp_key(&self) -> String {
        format!(
            "{}/{}/{}",
            keys::TMP,
            self.tmp.name,
            hex::encode(rand::random::<[u8; 16]>())
        )
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
        self.blocking(move |_| match fs::remove_file(&path) {
            // Durable like a write: an acknowledged delete (the `_inprogress` marker that makes a
            // v1 image complete, a tag) must not come back after a power cut.
            Ok(()) => sync_parent(&path).map(|()| true),
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
                Ok(()) => sync_parent(&path).map(|()| true),
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

    async fn sendable(&self, key: &str, offset: u64, len: u64) -> io::Result<Option<FileSend>> {
        let path = self.path(key)?;
        self.blocking(move |_| FileSend::new(fs::File::open(path)?, offset, len).map(Some))
            .await
    }

    async fn writer(&self, key: &str, hashers: Vec<Hasher>) -> io::Result<Box<dyn Sink>> {
        let path = self.path(key)?;
        Ok(Box::new(NamedSink {
            inner: Box::new(writer::BlobSink::start(path, hashers)),
            driver: self.clone(),
        }))
    }

    async fn commit(&self, from: &str, to: &str) -> io::Result<()> {
        let (from, to) = (self.path(from)?, self.path(to)?);
        self.blocking(move |_| {
            if to.exists() {
                fs::remove_file(&from)?;
                // Written again, as far as garbage collection's grace period goes.
                fs::File::open(&to)?.set_modified(std::time::SystemTime::now())?;
                return Ok(());
            }
            // The source is durable already: writers and `put` fsync before they return.
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
    create_dir_all_durably(parent)?;
    fs::rename(from, to)?;
    sync_dir(parent)
}

/// fsync of a directory: makes the entries created, renamed or removed in it durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(test)]
    synced::record(dir);
    fs::File::open(dir)?.sync_all()
}

fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(p) => sync_dir(p),
        None => Ok(()),
    }
}

/// `create_dir_all`, with every directory it creates made durable in its parent: an fsync of a
/// file's directory does not persist that directory's own entry, so without this the first
/// blob under a new `blobs/sha256/<xx>/` (or a new image's `images/<id>/`) could vanish with
/// its directory after a power cut although its rename was synced.
fn create_dir_all_durably(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    fs::create_dir_all(dir)?;
    for created in missing.iter().rev() {
        sync_parent(created)?;
    }
    Ok(())
}

/// The directories synced, for tests: durability cannot be observed without cutting the power,
/// but whether the right directory was synced can.
#[cfg(test)]
pub(crate) mod synced {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    static SYNCED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

    pub fn record(dir: &Path) {
        SYNCED.lock().unwrap_or_else(|p| p.into_inner()).push(dir.to_path_buf());
    }

    /// How many times `dir` was synced.
    pub fn count(dir: &Path) -> usize {
        SYNCED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|d| d.as_path() == dir)
            .count()
    }
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
    async fn flush(&mut self) -> Result<(), ()> {
        self.inner.flush().await
    }
    async fn finish(self: Box<Self>) -> io::Result<crate::storage::driver::WriteOutcome> {
        let NamedSink { inner, driver } = *self;
        inner.finish().await.map_err(|e| driver.full(e))
    }
    async fn abort(self: Box<Self>) -> io::Result<()> {
        let NamedSink { inner, driver } = *self;
        inner.abort().await.map_err(|e| driver.full(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Processes sharing a root clear what ended processes left in `_tmp`, never a live one's
    /// writes in flight. (A lock taken by another open file is refused within one process as
    /// between processes, so drivers opened here stand for processes.)
    #[test]
    fn opening_a_root_clears_ended_processes_temp_files_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("root");
        let first = FsDriver::open(&root).expect("open");
        let in_flight = first.temp_path();
        fs::write(&in_flight, b"half a layer").expect("write");
        // What ended processes left: a directory whose lock nobody holds, a directory that
        // never had one, a lock without its directory, a loose file of the older layout.
        let ended = OwnTemp::create(&root).expect("temp");
        let ended_dir = root.join(keys::TMP).join(&ended.name);
        fs::write(ended_dir.join("part"), b"x").expect("write");
        drop(ended);
        let lockless = root.join(keys::TMP).join("0123456789abcdef");
        fs::create_dir_all(&lockless).expect("dir");
        let orphan_lock = lock_path(&root, "fedcba9876543210");
        fs::write(&orphan_lock, b"").expect("lock");
        let loose = root.join(keys::TMP).join("loose");
        fs::write(&loose, b"x").expect("loose");

        let second = FsDriver::open(&root).expect("second process");
        assert_eq!(fs::read(&in_flight).expect("still there"), b"half a layer");
        for gone in [&ended_dir, &lockless, &orphan_lock, &loose] {
            assert!(!gone.exists(), "{} removed", gone.display());
        }
        assert!(lock_path(&root, &first.tmp.name).exists());

        drop(first);
        let _third = FsDriver::open(&root).expect("third process");
        assert!(!in_flight.exists(), "the first process ended: its temp files go");
        assert!(
            root.join(keys::TMP).join(&second.tmp.name).exists(),
            "the second lives on"
        );
        let locks = fs::read_dir(root.join(keys::TMP_LOCKS)).expect("locks").count();
        assert_eq!(locks, 2, "one lock per live process");
    }

    /// Every directory a write creates is synced in its parent, and a delete syncs the
    /// directory it removed from (unique temp paths: other tests running meanwhile do not count).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn new_directories_and_deletes_are_synced() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("root");
        let d = FsDriver::open(&root).expect("open");
        let before = |p: &str| synced::count(&root.join(p));
        assert_eq!((before("images"), before("images/x")), (0, 0));
        d.put("images/x/json", Bytes::from_static(b"{}")).await.expect("put");
        assert_eq!(synced::count(&root), 1, "`images` made durable in the root");
        assert_eq!(before("images"), 1, "`images/x` made durable in `images`");
        assert_eq!(before("images/x"), 1, "the rename of `json`");
        d.put("images/x/_inprogress", Bytes::from_static(b"alice"))
            .await
            .expect("put");
        assert_eq!((synced::count(&root), before("images")), (1, 1), "nothing new created");
        assert_eq!(before("images/x"), 2);
        assert!(d.delete("images/x/_inprogress").await.expect("delete"));
        assert_eq!(before("images/x"), 3, "the delete is made durable");
        assert!(!d.delete("images/x/_inprogress").await.expect("delete"));
        assert_eq!(before("images/x"), 3, "nothing removed, nothing to sync");
        assert!(d.delete_all("images/x").await.expect("delete all"));
        assert_eq!(before("images"), 2, "the removal of `images/x`");
    }
}
