//! Garbage collection of the shared blob store: mark every blob something still refers to
//! (a v1 image's layer, a v2 repository's blob link, a blob a stored manifest references),
//! sweep the rest. Deleting a repository, tag, manifest or blob link only drops references;
//! the bytes go here. Run it with the registry stopped (the CLI makes sure of that when it can).

use super::digest::Digest;
use super::images::LayerLink;
use super::manifest;
use crate::storage::Storage;
use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::Path;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub kept: usize,
    pub removed: usize,
    pub removed_bytes: u64,
}

pub fn collect(storage: &Storage, dry_run: bool) -> io::Result<Report> {
    let marked = mark(storage)?;
    let mut report = Report::default();
    for algo_dir in read_dir(&storage.root().join("blobs"))? {
        let algo = file_name(&algo_dir);
        for prefix in read_dir(&algo_dir)? {
            for blob in read_dir(&prefix)? {
                let Ok(digest) = format!("{algo}:{}", file_name(&blob)).parse::<Digest>() else {
                    continue;
                };
                if marked.contains(&digest) {
                    report.kept += 1;
                    continue;
                }
                report.removed += 1;
                report.removed_bytes += fs::metadata(&blob).map(|m| m.len()).unwrap_or(0);
                if !dry_run {
                    fs::remove_file(&blob)?;
                    log::info!("gc: removed {digest}");
                }
            }
        }
    }
    Ok(report)
}

fn mark(storage: &Storage) -> io::Result<HashSet<Digest>> {
    let mut marked = HashSet::new();
    // v1 image layers.
    for image in read_dir(&storage.root().join("images"))? {
        if let Ok(raw) = fs::read(image.join("layer")) {
            if let Ok(link) = serde_json::from_slice::<LayerLink>(&raw) {
                marked.insert(link.digest);
            }
        }
    }
    // v2: every repository's blob links and what its manifests reference.
    walk_repositories(&storage.root().join("repositories"), &mut marked)?;
    Ok(marked)
}

fn walk_repositories(dir: &Path, marked: &mut HashSet<Digest>) -> io::Result<()> {
    for entry in read_dir(dir)? {
        match file_name(&entry).as_str() {
            "_layers" => {
                for algo in read_dir(&entry)? {
                    for link in read_dir(&algo)? {
                        if let Ok(d) = format!("{}:{}", file_name(&algo), file_name(&link)).parse() {
                            marked.insert(d);
                        }
                    }
                }
            }
            "_manifests" => {
                for algo in read_dir(&entry.join("revisions"))? {
                    for rev in read_dir(&algo)? {
                        let (Ok(body), Ok(media_type)) =
                            (fs::read(rev.join("data")), fs::read_to_string(rev.join("type")))
                        else {
                            continue;
                        };
                        if let Ok(parsed) = manifest::parse(&body, &media_type) {
                            marked.extend(parsed.blobs);
                        }
                    }
                }
            }
            name if !name.starts_with('_') && entry.is_dir() => walk_repositories(&entry, marked)?,
            _ => {}
        }
    }
    Ok(())
}

fn read_dir(dir: &Path) -> io::Result<Vec<std::path::PathBuf>> {
    match fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.map(|e| e.path())).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
