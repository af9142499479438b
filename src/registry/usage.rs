//! What a repository holds in storage: the blobs it references (v2 blob links, v1 image
//! layers) with their sizes, its tags, and when it was last pushed to. Shared blobs are counted
//! once per repository here; the usage report tells unique from shared bytes across
//! repositories.

use super::v1::images::Images;
use super::v1::repositories::V1Repositories;
use crate::digest::Digest;
use crate::error::AppResult;
use crate::names::RepoName;
use crate::storage::keys::{self, RepositoryEntry};
use crate::storage::Storage;
use std::collections::BTreeMap;

#[derive(Debug, Default, Clone)]
pub struct RepoContents {
    /// Every blob the repository references, and its size.
    pub blobs: BTreeMap<Digest, u64>,
    pub v1_tags: usize,
    pub v2_tags: usize,
    /// Seconds since the epoch of the newest tag write.
    pub last_push: Option<u64>,
}

impl RepoContents {
    pub fn size(&self) -> u64 {
        self.blobs.values().sum()
    }
    pub fn tags(&self) -> usize {
        self.v1_tags + self.v2_tags
    }
}

/// Walks one repository's keys once.
pub async fn contents(
    storage: &Storage,
    v1: &V1Repositories,
    images: &Images,
    repo: &RepoName,
) -> AppResult<RepoContents> {
    let mut out = RepoContents::default();
    for key in storage.walk(&keys::repository(repo)).await? {
        let Some((_, entry)) = keys::parse_repository_key(&key) else {
            continue;
        };
        match entry {
            RepositoryEntry::BlobLink(d) => {
                if let Some(stat) = storage.stat(&keys::blob(&d)).await? {
                    out.blobs.insert(d, stat.size);
                }
            }
            RepositoryEntry::V2Tag(_) | RepositoryEntry::V1Tag(_) => {
                if matches!(entry, RepositoryEntry::V2Tag(_)) {
                    out.v2_tags += 1;
                } else {
                    out.v1_tags += 1;
                }
                let modified = storage.stat(&key).await?.and_then(|s| s.modified);
                out.last_push = out.last_push.max(modified);
            }
            _ => {}
        }
    }
    for copy in v1.member_copies(repo).await? {
        if let Some(layer) = images.layer(&copy).await? {
            out.blobs.insert(layer.digest, layer.size);
        }
    }
    Ok(out)
}
