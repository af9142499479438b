//! What a repository holds in storage: the blobs it references (v2 blob links, v1 image
//! layers) with their sizes, its tags, and when it was last pushed to. Shared blobs are counted
//! once per repository here; the usage report ([`summarize`], [`store`], from one
//! `references::scan` and one walk of the blob store) tells unique from shared bytes across
//! repositories and namespaces.

use super::references::{RepoRefs, Scan};
use super::v1::images::Images;
use super::v1::repositories::V1Repositories;
use crate::digest::Digest;
use crate::error::AppResult;
use crate::names::RepoName;
use crate::storage::keys::{self, RepositoryEntry};
use crate::storage::Storage;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

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

/// When the repository was last pushed to (its newest tag write), without sizing its blobs:
/// what sorting repositories by push time needs of each.
pub async fn last_push(storage: &Storage, repo: &RepoName) -> AppResult<Option<u64>> {
    let mut last = None;
    for key in storage.walk(&keys::repository(repo)).await? {
        if let Some((_, RepositoryEntry::V2Tag(_) | RepositoryEntry::V1Tag(_))) = keys::parse_repository_key(&key) {
            last = last.max(storage.stat(&key).await?.and_then(|s| s.modified));
        }
    }
    Ok(last)
}

/// The size of every blob in the store (one walk of `blobs/`).
pub async fn blob_sizes(storage: &Storage) -> std::io::Result<HashMap<Digest, u64>> {
    let mut out = HashMap::new();
    for key in storage.walk(keys::BLOBS).await? {
        let Some(d) = keys::parse_blob(&key) else { continue };
        if let Some(stat) = storage.stat(&key).await? {
            out.insert(d, stat.size);
        }
    }
    Ok(out)
}

/// Open v2 upload sessions and the bytes they hold.
pub async fn upload_sessions(storage: &Storage) -> std::io::Result<(usize, u64)> {
    let (mut sessions, mut bytes) = (0, 0);
    for key in storage.walk(keys::UPLOADS).await? {
        if key.ends_with("/info") {
            sessions += 1;
        } else {
            bytes += storage.stat(&key).await?.map_or(0, |s| s.size);
        }
    }
    Ok((sessions, bytes))
}

/// Store-wide figures (administrators only: they tell about everyone's data).
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreUsage {
    /// Every blob in the store.
    pub total_bytes: u64,
    pub blobs: usize,
    /// Blobs something references (see `references`).
    pub referenced_bytes: u64,
    /// Of those, layers of v1 images no repository holds.
    pub unattributed_bytes: u64,
    /// Blobs nothing references: what the next gc frees once they are older than its grace
    /// period.
    pub garbage_bytes: u64,
    pub garbage_blobs: usize,
    /// Bytes of open upload sessions (a gc removes the abandoned ones).
    pub upload_bytes: u64,
    pub upload_sessions: usize,
}

/// One namespace: the distinct blobs its repositories reference.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NamespaceUsage {
    pub name: String,
    pub repositories: usize,
    pub bytes: u64,
    /// Referenced by no repository outside the namespace.
    pub unique_bytes: u64,
    pub shared_bytes: u64,
    /// The namespace's quota in bytes (`null`: unlimited); `bytes` is what counts against it.
    pub quota: Option<u64>,
}

/// One repository: the distinct blobs it references.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepoUsage {
    pub name: String,
    pub blobs: usize,
    pub bytes: u64,
    /// Referenced by no other repository: what deleting it frees at the next gc.
    pub unique_bytes: u64,
    /// Also referenced elsewhere.
    pub shared_bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    /// `null` for accounts that are not administrators.
    pub store: Option<StoreUsage>,
    pub namespaces: Vec<NamespaceUsage>,
    pub repositories: Vec<RepoUsage>,
}

/// Who holds a blob, among the repositories counted.
#[derive(Default)]
struct Holders<'a> {
    repos: u32,
    namespaces: Vec<&'a str>,
}

/// Namespaces and repositories of `scan` that `counted` admits, with unique and shared bytes
/// among those counted only (plus the unattributed v1 layers when `with_loose`): an account
/// sees how its repositories share with each other, never whether someone else's repository
/// holds the same bytes.
pub fn summarize(
    scan: &Scan,
    sizes: &HashMap<Digest, u64>,
    counted: impl Fn(&RepoName) -> bool,
    with_loose: bool,
) -> (Vec<NamespaceUsage>, Vec<RepoUsage>) {
    let size = |d: &Digest| sizes.get(d).copied();
    let mut holders: HashMap<&Digest, Holders> = HashMap::new();
    let repos: Vec<(&RepoName, &RepoRefs)> = scan.repos.iter().filter(|(r, _)| counted(r)).collect();
    for (repo, refs) in &repos {
        for d in &refs.referenced {
            let h = holders.entry(d).or_default();
            h.repos += 1;
            if !h.namespaces.contains(&repo.namespace()) {
                h.namespaces.push(repo.namespace());
            }
        }
    }
    if with_loose {
        for d in &scan.loose_v1 {
            let h = holders.entry(d).or_default();
            h.repos += 1;
            h.namespaces.push("");
        }
    }
    let mut out_repos = Vec::new();
    let mut namespaces: BTreeMap<&str, (usize, HashSet<&Digest>)> = BTreeMap::new();
    for (repo, refs) in &repos {
        let mut u = RepoUsage {
            name: repo.to_string(),
            ..RepoUsage::default()
        };
        let ns = namespaces.entry(repo.namespace()).or_default();
        ns.0 += 1;
        for d in &refs.referenced {
            // A blob referenced but no longer stored (see `skiff check`) weighs nothing.
            let Some(bytes) = size(d) else { continue };
            ns.1.insert(d);
            u.blobs += 1;
            u.bytes += bytes;
            if holders.get(d).is_some_and(|h| h.repos == 1) {
                u.unique_bytes += bytes;
            } else {
                u.shared_bytes += bytes;
            }
        }
        out_repos.push(u);
    }
    let out_ns = namespaces
        .into_iter()
        .map(|(name, (repositories, blobs))| {
            let mut u = NamespaceUsage {
                name: name.to_string(),
                repositories,
                ..NamespaceUsage::default()
            };
            for d in blobs {
                let bytes = size(d).unwrap_or(0);
                u.bytes += bytes;
                if holders.get(d).is_some_and(|h| h.namespaces.len() == 1) {
                    u.unique_bytes += bytes;
                } else {
                    u.shared_bytes += bytes;
                }
            }
            u
        })
        .collect();
    (out_ns, out_repos)
}

/// The store-wide figures of a scan.
pub fn store(scan: &Scan, sizes: &HashMap<Digest, u64>, (upload_sessions, upload_bytes): (usize, u64)) -> StoreUsage {
    let marked = scan.marked();
    let mut s = StoreUsage {
        upload_sessions,
        upload_bytes,
        ..StoreUsage::default()
    };
    let attributed: HashSet<&Digest> = scan.repos.values().flat_map(|r| r.referenced.iter()).collect();
    for (d, &bytes) in sizes {
        s.total_bytes += bytes;
        s.blobs += 1;
        if marked.contains(d) {
            s.referenced_bytes += bytes;
            if !attributed.contains(d) {
                s.unattributed_bytes += bytes;
            }
        } else {
            s.garbage_bytes += bytes;
            s.garbage_blobs += 1;
        }
    }
    s
}
