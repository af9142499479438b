//! Backups of the index: every tree of the sled database (users, emails, repositories, tokens,
//! access tokens, retired names, stars, comments, webhooks and their deliveries (the
//! pending ones are the webhook queue), meta, and any other), read at one point in time, one
//! file per tree, and a manifest that names them with their entry counts and SHA-256 sums.
//!
//! The point in time: every change goes through `Index::write`, which holds the index's
//! writer lock shared while it runs; `export` holds it exclusively while it reads, so a change
//! that spans trees (an account and its email, a token and its secret, an account deleted with
//! its repositories) is in the backup whole or not at all. Reads never wait for it. The only
//! writes outside `write` are bookkeeping of one entry in one tree (an access token's last use,
//! an expired v1 token removed, a webhook delivery queued or its attempt recorded), which a backup sees before or after, never half.
//!
//! A tree file has one line per entry, `{"k": base64 key, "v": base64 value}`, in key order:
//! the bytes sled holds, whatever they encode, so a restore gives back exactly what was there.

use super::Index;
use crate::error::AppResult;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{BufRead, Read, Write};
use std::path::Path;

pub const FORMAT: &str = "skiff-index-backup";
/// Bumped when the files' layout changes; a restore refuses any other.
pub const FORMAT_VERSION: u64 = 1;
/// The manifest's file name in a backup directory.
pub const MANIFEST: &str = "manifest.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub format_version: u64,
    /// Seconds since the epoch when the trees were read.
    pub created: u64,
    /// The index schema the trees are in (`index::SCHEMA_VERSION` of the Skiff that wrote them).
    pub schema_version: u64,
    pub skiff_version: String,
    pub files: Vec<TreeFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TreeFile {
    /// The sled tree's name.
    pub tree: String,
    /// The file's name in the backup directory.
    pub file: String,
    pub entries: u64,
    pub bytes: u64,
    /// Hex SHA-256 of the file.
    pub sha256: String,
}

#[derive(Serialize, Deserialize)]
struct Line {
    k: String,
    v: String,
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A tree's file name: its own name when that is a plain word, else its hex.
fn file_name(tree: &[u8]) -> String {
    let plain = !tree.is_empty() && tree.len() <= 64 && tree.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_');
    match plain {
        true => format!("{}.jsonl", String::from_utf8_lossy(tree)),
        false => format!("tree-{}.jsonl", hex::encode(tree)),
    }
}

/// Counts and hashes what passes through.
struct Tally<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Tally<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl Index {
    /// Writes every tree's file to `out`, one after the other in the manifest's order, while
    /// no change is under way, and returns the manifest. `out` should be local and fast (a
    /// scratch file): changes wait for this to finish.
    pub fn export(&self, out: &mut impl Write) -> AppResult<Manifest> {
        let _exclusive = self.writers.write().unwrap_or_else(|e| e.into_inner());
        let mut names = self.db.tree_names();
        names.retain(|n| !super::sessions::TREES.iter().any(|t| n.as_ref() == t.as_bytes()));
        names.sort();
        let mut files = Vec::with_capacity(names.len());
        for name in names {
            let tree = self.db.open_tree(&name)?;
            let mut tally = Tally {
                inner: &mut *out,
                hash: Sha256::new(),
                bytes: 0,
            };
            let mut entries = 0;
            for kv in tree.iter() {
                let (k, v) = kv?;
                let line = Line {
                    k: B64.encode(&k),
                    v: B64.encode(&v),
                };
                serde_json::to_writer(&mut tally, &line)?;
                tally.write_all(b"\n")?;
                entries += 1;
            }
            files.push(TreeFile {
                tree: String::from_utf8_lossy(&name).into_owned(),
                file: file_name(&name),
                entries,
                bytes: tally.bytes,
                sha256: hex::encode(tally.hash.finalize()),
            });
        }
        out.flush()?;
        Ok(Manifest {
            format: FORMAT.to_string(),
            format_version: FORMAT_VERSION,
            created: crate::clock::now_secs(),
            schema_version: super::SCHEMA_VERSION,
            skiff_version: env!("CARGO_PKG_VERSION").to_string(),
            files,
        })
    }
}

impl Manifest {
    /// Refuses a manifest this Skiff cannot restore: another format, format version or index
    /// schema, or file names that would leave the backup directory.
    pub fn check(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("not a Skiff index backup (format {:?})", self.format));
        }
        if self.format_version != FORMAT_VERSION {
            return Err(format!(
                "backup format version {} is not the one this Skiff reads ({FORMAT_VERSION})",
                self.format_version
            ));
        }
        if self.schema_version != super::SCHEMA_VERSION {
            return Err(format!(
                "the backup holds index schema version {}, and this Skiff knows version {} only",
                self.schema_version,
                super::SCHEMA_VERSION
            ));
        }
        for f in &self.files {
            let safe = !f.file.is_empty()
                && f.file.len() <= 200
                && f.file
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
                && !f.file.starts_with('.')
                && f.file != MANIFEST;
            if !safe {
                return Err(format!(
                    "the manifest names a file {:?} that is not a tree file",
                    f.file
                ));
            }
        }
        Ok(())
    }
}

/// Reads one tree file, checking it against its manifest entry (size, SHA-256, entry count, and
/// that every line decodes), and hands each entry to `each`. Nothing is trusted until the whole
/// file has been read, so callers that change anything verify every file first.
pub fn read_tree(
    file: &TreeFile,
    from: impl Read,
    mut each: impl FnMut(Vec<u8>, Vec<u8>) -> Result<(), String>,
) -> Result<(), String> {
    let mut reader = std::io::BufReader::new(HashingReader {
        inner: from,
        hash: Sha256::new(),
        bytes: 0,
    });
    let mut entries = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("{}: {e}", file.file))?;
        if n == 0 {
            break;
        }
        let parsed: Line = serde_json::from_slice(&line)
            .map_err(|e| format!("{}: entry {} does not parse: {e}", file.file, entries + 1))?;
        let decode = |s: &str| {
            B64.decode(s)
                .map_err(|e| format!("{}: entry {} is not base64: {e}", file.file, entries + 1))
        };
        each(decode(&parsed.k)?, decode(&parsed.v)?)?;
        entries += 1;
    }
    let read = reader.into_inner();
    let sum = hex::encode(read.hash.finalize());
    if read.bytes != file.bytes || sum != file.sha256 {
        return Err(format!(
            "{} is damaged: {} bytes with SHA-256 {sum}, the manifest says {} bytes with {}",
            file.file, read.bytes, file.bytes, file.sha256
        ));
    }
    if entries != file.entries {
        return Err(format!(
            "{} has {entries} entries, the manifest says {}",
            file.file, file.entries
        ));
    }
    Ok(())
}

struct HashingReader<R> {
    inner: R,
    hash: Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Builds a new sled database at `path` (which must not exist) from a verified backup:
/// `open(file)` gives each tree file's bytes. The database is flushed and closed on return,
/// with every entry count checked against the manifest.
pub fn build<R: Read>(
    path: &Path,
    manifest: &Manifest,
    open: impl Fn(&TreeFile) -> std::io::Result<R>,
) -> Result<(), String> {
    if path.exists() {
        return Err(format!("{} is in the way", path.display()));
    }
    let shown = path.display();
    let db = sled::Config::new()
        .path(path)
        .mode(sled::Mode::LowSpace)
        .open()
        .map_err(|e| format!("cannot create {shown}: {e}"))?;
    for file in &manifest.files {
        let tree = db
            .open_tree(file.tree.as_bytes())
            .map_err(|e| format!("{shown}: {e}"))?;
        let from = open(file).map_err(|e| format!("{}: {e}", file.file))?;
        read_tree(file, from, |k, v| {
            tree.insert(k, v).map(drop).map_err(|e| format!("{shown}: {e}"))
        })?;
        if tree.len() as u64 != file.entries {
            return Err(format!(
                "{}: {} entries restored of {}",
                file.tree,
                tree.len(),
                file.entries
            ));
        }
    }
    db.flush().map_err(|e| format!("{shown}: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What is exported reads back entry for entry into a new database that opens as an index
    /// with the same accounts; a changed byte is refused.
    #[test]
    fn export_then_build_gives_back_every_tree() {
        let dir = tempfile::tempdir().expect("temp dir");
        let index = Index::open(&dir.path().join("a"), 1000).expect("open");
        index
            .create_user("alice", "alice-pw-1", "alice@example.com", true, true)
            .expect("user");
        index.open_session("alice", 0, 3600).expect("session");
        let mut out = Vec::new();
        let manifest = index.export(&mut out).expect("export");
        manifest.check().expect("valid");
        let names: Vec<&str> = manifest.files.iter().map(|f| f.tree.as_str()).collect();
        for want in [
            "users",
            "emails",
            "repos",
            "meta",
            "pats",
            "retired",
            "stars",
            "user_stars",
            "comments",
            "webhooks",
            "webhook_deliveries",
        ] {
            assert!(names.contains(&want), "{names:?}");
        }
        for never in crate::index::sessions::TREES {
            assert!(
                !names.contains(&never),
                "a restore must not bring back a session: {names:?}"
            );
        }
        let users = manifest.files.iter().find(|f| f.tree == "users").expect("users");
        assert_eq!(users.entries, 1);

        // Each file is its slice of the stream.
        let slice = |f: &TreeFile| {
            let start: u64 = manifest
                .files
                .iter()
                .take_while(|g| g.file != f.file)
                .map(|g| g.bytes)
                .sum();
            out[start as usize..(start + f.bytes) as usize].to_vec()
        };
        let rebuilt = dir.path().join("b");
        build(&rebuilt, &manifest, |f| Ok(std::io::Cursor::new(slice(f)))).expect("build");
        let copy = Index::open(&rebuilt, 1000).expect("opens as an index");
        let alice = copy.user("alice").expect("read").expect("alice is there");
        assert!(alice.admin);

        let mut damaged = slice(users);
        damaged[10] ^= 1;
        let err = read_tree(users, std::io::Cursor::new(damaged), |_, _| Ok(())).expect_err("damaged");
        assert!(err.contains("users.jsonl"), "{err}");
    }

    #[test]
    fn other_formats_and_unsafe_names_are_refused() {
        let ok = Manifest {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            created: 0,
            schema_version: super::super::SCHEMA_VERSION,
            skiff_version: "x".into(),
            files: vec![],
        };
        ok.check().expect("valid");
        let mut m = ok.clone();
        m.format_version = 2;
        assert!(m.check().expect_err("version").contains("format version 2"));
        let mut m = ok.clone();
        m.schema_version = 9;
        assert!(m.check().expect_err("schema").contains("schema version 9"));
        let mut m = ok;
        m.files.push(TreeFile {
            tree: "users".into(),
            file: "../users.jsonl".into(),
            entries: 0,
            bytes: 0,
            sha256: String::new(),
        });
        assert!(m.check().is_err());
    }
}
