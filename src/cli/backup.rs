//! `skiff backup DIR` and `skiff restore DIR`.
//!
//! Backup: the index's trees at one point in time, streamed from the management API (the
//! running server's, or one started on a stopped server's data), each file checked against
//! the manifest as it arrives, written to a hidden directory beside DIR, fsynced, and renamed
//! to DIR with the manifest last in: a DIR that exists is a complete backup.
//!
//! Restore: with the server stopped (its socket must not answer, and the index lock is held
//! for the whole restore), every file is verified before anything changes; the new database is
//! built beside the index, then swapped with it in one rename (`RENAME_EXCHANGE`), the old one
//! kept as `v1.before-restore-<UTC time>`.

use skiff::config::Config;
use skiff::index::backup::{self, Manifest, TreeFile, MANIFEST};
use skiff::index::Index;
use std::fs;
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};

pub fn backup(config: &Config, dir: &Path) -> Result<(), String> {
    if !config.standalone {
        return Err("standalone = false: this server has no index of its own to back up".into());
    }
    if let Ok(mut entries) = fs::read_dir(dir) {
        if entries.next().is_some() {
            return Err(format!("{} exists and is not empty", dir.display()));
        }
    }
    let partial = beside(dir, "partial")?;
    fs::create_dir_all(&partial).map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    let result = fetch(config, &partial).and_then(|manifest| {
        sync_dir(&partial)?;
        // `rename` replaces an empty directory, so an empty DIR made for the backup is fine.
        fs::rename(&partial, dir)
            .map_err(|e| format!("cannot rename {} to {}: {e}", partial.display(), dir.display()))?;
        sync_dir(parent(dir))?;
        Ok(manifest)
    });
    let manifest = match result {
        Ok(m) => m,
        Err(e) => {
            let _ = fs::remove_dir_all(&partial);
            return Err(format!("backup failed: {e}"));
        }
    };
    let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    let entries: u64 = manifest.files.iter().map(|f| f.entries).sum();
    println!(
        "backed up the index to {}: {} trees, {entries} entries, {}",
        dir.display(),
        manifest.files.len(),
        super::human_size(bytes)
    );
    for f in &manifest.files {
        println!("  {:<16} {:>8} entries  {}", f.tree, f.entries, f.file);
    }
    Ok(())
}

/// Reads the API's backup into `into`: each tree file checked and fsynced, then the manifest.
fn fetch(config: &Config, into: &Path) -> Result<Manifest, String> {
    let api = super::local::Api::connect(config)?;
    let mut body = api.stream("/api/v1/backup")?;
    let mut head = Vec::new();
    (&mut body)
        .take(16 << 20)
        .read_until(b'\n', &mut head)
        .map_err(|e| e.to_string())?;
    let manifest: Manifest = serde_json::from_slice(&head)
        .map_err(|e| format!("the server's backup does not start with a manifest: {e}"))?;
    manifest.check()?;
    for file in &manifest.files {
        let path = into.join(&file.file);
        let out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let mut tee = Tee {
            from: (&mut body).take(file.bytes),
            to: io::BufWriter::new(out),
        };
        backup::read_tree(file, &mut tee, |_, _| Ok(()))?;
        let out = tee.to.into_inner().map_err(|e| e.to_string())?;
        out.sync_all().map_err(|e| e.to_string())?;
    }
    // The manifest last: a backup directory without one is not a backup.
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
    let path = into.join(MANIFEST);
    let mut out = fs::File::create(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    out.write_all(&text)
        .and_then(|()| out.sync_all())
        .map_err(|e| e.to_string())?;
    Ok(manifest)
}

/// Passes what it reads on to `to` too.
struct Tee<R, W> {
    from: R,
    to: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.from.read(buf)?;
        self.to.write_all(&buf[..n])?;
        Ok(n)
    }
}

pub fn restore(config: &Config, dir: &Path) -> Result<(), String> {
    if !config.standalone {
        return Err("standalone = false: this server has no index of its own to restore".into());
    }
    let socket = config.local_socket_path();
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        return Err(format!(
            "the server is running (its socket {} answers): stop it, then restore",
            socket.display()
        ));
    }
    let live = config.index_db_path();
    // Held to the end: no server starts on the index while it is being replaced.
    let _lock = Index::try_lock(&live)
        .map_err(|e| e.to_string())?
        .ok_or("the index is in use by another process (is `skiff serve` running?): stop it, then restore")?;

    let manifest = read_manifest(dir)?;
    // Every file whole and as the manifest says before anything changes.
    for file in &manifest.files {
        backup::read_tree(file, open(dir, file)?, |_, _| Ok(()))?;
    }

    let building = beside(&live, "restoring")?;
    if building.exists() {
        fs::remove_dir_all(&building).map_err(|e| format!("cannot remove {}: {e}", building.display()))?;
    }
    if let Err(e) = backup::build(&building, &manifest, |f| open(dir, f).map_err(io::Error::other)) {
        let _ = fs::remove_dir_all(&building);
        return Err(format!("restore failed, the index is unchanged: {e}"));
    }
    sync_dir(&building)?;
    let aside = live.with_file_name(format!(
        "{}.before-restore-{}",
        live.file_name().and_then(|n| n.to_str()).unwrap_or("index"),
        utc_stamp(skiff::clock::now_secs())
    ));
    if live.exists() {
        exchange(&building, &live).map_err(|e| format!("cannot swap in the restored index: {e}"))?;
        fs::rename(&building, &aside).map_err(|e| {
            format!(
                "the index is restored; the one before it is left at {} ({e})",
                building.display()
            )
        })?;
    } else {
        fs::rename(&building, &live).map_err(|e| format!("cannot move the restored index into place: {e}"))?;
    }
    sync_dir(parent(&live))?;
    let entries: u64 = manifest.files.iter().map(|f| f.entries).sum();
    println!(
        "restored the index from {} (taken {} UTC): {} trees, {entries} entries",
        dir.display(),
        utc_stamp(manifest.created),
        manifest.files.len()
    );
    if aside.exists() {
        println!("the index before the restore is kept at {}", aside.display());
    }
    Ok(())
}

fn read_manifest(dir: &Path) -> Result<Manifest, String> {
    let path = dir.join(MANIFEST);
    let text = fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|e| format!("{} is not a backup manifest: {e}", path.display()))?;
    manifest.check()?;
    let mut trees: Vec<&str> = manifest.files.iter().map(|f| f.tree.as_str()).collect();
    trees.sort_unstable();
    trees.dedup();
    if trees.len() != manifest.files.len() {
        return Err(format!("{} names a tree twice", path.display()));
    }
    Ok(manifest)
}

fn open(dir: &Path, file: &TreeFile) -> Result<fs::File, String> {
    let path = dir.join(&file.file);
    fs::File::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A hidden sibling of `path` for work in progress, unique to this process.
fn beside(path: &Path, what: &str) -> Result<PathBuf, String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{} has no file name", path.display()))?;
    Ok(parent(path).join(format!(".{name}.{what}-{}", std::process::id())))
}

fn sync_dir(dir: &Path) -> Result<(), String> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("cannot sync {}: {e}", dir.display()))
}

/// Swaps two directories in one step, so the index is at its path at every moment; where the
/// filesystem cannot (no `renameat2` exchange), two renames, the old one first out of the way.
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other);
    let (ca, cb) = (c(a)?, c(b)?);
    // SAFETY: two valid NUL-terminated paths, relative to the working directory.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if !matches!(err.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) {
        return Err(err);
    }
    let tmp = a.with_extension("swap");
    fs::rename(b, &tmp)?;
    fs::rename(a, b)?;
    fs::rename(&tmp, a)
}

/// `YYYYMMDDTHHMMSSZ` for seconds since the epoch (UTC; no time-zone data needed).
fn utc_stamp(secs: u64) -> String {
    let t = skiff::clock::utc(secs);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_swaps_two_directories() {
        let tmp = std::env::temp_dir().join(format!("skiff-exchange-{}", std::process::id()));
        let (a, b) = (tmp.join("a"), tmp.join("b"));
        fs::create_dir_all(&a).expect("a");
        fs::create_dir_all(&b).expect("b");
        fs::write(a.join("new"), "").expect("new");
        fs::write(b.join("old"), "").expect("old");
        exchange(&a, &b).expect("exchange");
        let swapped = a.join("old").exists() && b.join("new").exists() && !a.join("new").exists();
        let _ = fs::remove_dir_all(&tmp);
        assert!(swapped);
    }

    #[test]
    fn stamps_are_utc_calendar_times() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(951_782_400), "20000229T000000Z");
        assert_eq!(utc_stamp(1_795_966_298), "20261129T153138Z");
    }
}
