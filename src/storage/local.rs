//! Local files of the server itself, not registry data: the token signing key and the lock
//! that keeps a second process off the index. They always live on the local disk, next to the
//! index, whatever driver holds the registry's data.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::Path;

/// Reads a small private file of the server's own (a signing key), creating it with
/// `create` and mode 0600 on first use. Not part of the registry's storage: it always lives on
/// the local disk next to the index.
pub fn read_or_create_private(path: &Path, create: impl FnOnce() -> io::Result<Vec<u8>>) -> io::Result<Vec<u8>> {
    match fs::read(path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let bytes = create()?;
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension("tmp");
            {
                use std::os::unix::fs::OpenOptionsExt;
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?;
                f.write_all(&bytes)?;
                f.sync_all()?;
            }
            super::fs::rename_durably(&tmp, path)?;
            Ok(bytes)
        }
        Err(e) => Err(e),
    }
}

/// An exclusive lock on a file, held until dropped.
#[derive(Debug)]
pub struct LockFile {
    _file: fs::File,
}

/// Takes the lock at `path` (creating the file), or says `Ok(None)` when another process holds
/// it.
pub fn try_lock(path: &Path) -> io::Result<Option<LockFile>> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(LockFile { _file: file })),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Binds the local socket at `path`, replacing a stale one (the caller holds the lock that
/// says no other server uses this data directory), readable and writable by its owner only.
pub fn bind_local(path: &Path) -> io::Result<UnixListener> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Sets a stored file's modification time `secs` into the past (tests of garbage collection's
/// grace period).
pub fn backdate(path: &Path, secs: u64) -> io::Result<()> {
    let then = std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
    fs::File::open(path)?.set_modified(then)
}

/// A scratch file with no name: created in `dir` (mode 0600) and unlinked at once, so it
/// leaves nothing behind however the process ends. For data staged briefly on local disk (a
/// backup of the index, read once while it is sent).
#[derive(Debug)]
pub struct Scratch(fs::File);

impl Scratch {
    pub fn new_in(dir: &Path) -> io::Result<Scratch> {
        use std::os::unix::fs::OpenOptionsExt;
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        fs::create_dir_all(dir)?;
        let path = dir.join(format!(
            ".scratch-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        fs::remove_file(&path)?;
        Ok(Scratch(file))
    }

    /// Back to the start, to read what was written.
    pub fn rewind(&mut self) -> io::Result<()> {
        use std::io::Seek;
        self.0.rewind()
    }
}

impl io::Write for Scratch {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl io::Read for Scratch {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}
