//! Garbage collection of the shared blob store: mark every blob something still refers to
//! (a v1 image's layer, a v2 repository's blob link, a blob a stored manifest references),
//! sweep the rest. Deleting a repository, tag, manifest or blob link only drops references;
//! the bytes go here. Run it with the registry stopped (the CLI makes sure of that when it can).

use super::v1::images::LayerLink;
use super::v2::manifest;
use crate::digest::Digest;
use crate::names::RepoName;
use crate::storage::keys::{self, RepositoryEntry};
use crate::storage::Storage;
use std::collections::HashSet;
use std::io;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub kept: usize,
    pub removed: usize,
    pub removed_bytes: u64,
}

pub async fn collect(storage: &Storage, dry_run: bool) -> io::Result<Report> {
    let marked = mark(storage).await?;
    let mut report = Report::default();
    for key in storage.walk(keys::BLOBS).await? {
        let Some(digest) = keys::parse_blob(&key) else {
            continue;
        };
        if marked.contains(&digest) {
            report.kept += 1;
            continue;
        }
        report.removed += 1;
        report.removed_bytes += storage.stat(&key).await?.map(|s| s.size).unwrap_or(0);
        if !dry_run {
            storage.delete(&key).await?;
            log::info!("gc: removed {digest}");
        }
    }
    Ok(report)
}

async fn mark(storage: &Storage) -> io::Result<HashSet<Digest>> {
    let mut marked = HashSet::new();
    // v1 image layers.
    for key in storage.walk(keys::IMAGES).await? {
        if keys::parse_image_layer(&key).is_none() {
            continue;
        }
        if let Some(raw) = storage.get(&key).await? {
            if let Ok(link) = serde_json::from_slice::<LayerLink>(&raw) {
                marked.insert(link.digest);
            }
        }
    }
    // v2: every repository's blob links and what its manifests reference.
    for key in storage.walk(keys::REPOSITORIES).await? {
        match keys::parse_repository_key(&key) {
            Some((_, RepositoryEntry::BlobLink(d))) => {
                marked.insert(d);
            }
            Some((name, RepositoryEntry::RevisionData(d))) => {
                let Ok(repo) = RepoName::parse(name) else { continue };
                let found = storage
                    .get_many(vec![keys::revision_data(&repo, &d), keys::revision_type(&repo, &d)])
                    .await?;
                let (Some(Some(body)), Some(Some(media_type))) = (found.first(), found.get(1)) else {
                    log::debug!("gc: {name}: revision {d} incomplete, skipped");
                    continue;
                };
                if let Ok(parsed) = manifest::parse(body, &String::from_utf8_lossy(media_type)) {
                    marked.extend(parsed.blobs);
                }
            }
            _ => {}
        }
    }
    Ok(marked)
}
