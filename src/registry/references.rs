//! Which blobs each repository references, from one walk of `repositories/` and one of
//! `images/`: what garbage collection keeps and what the usage report and quotas count.
//!
//! A repository references a blob while
//! - a manifest stored in it names the blob (config, layers), or
//! - one of its v1 images (a member copy) has the blob as its layer, or
//! - it links the blob (`_layers/...`) and the link is younger than the grace period: a push
//!   links its blobs before its manifest lands, and a blob `HEAD` through an older link renews
//!   it (see `V2Repositories::blob_for_push`).
//!
//! Any other blob link is *stale*: it keeps nothing, and goes with its blob. The layers of v1
//! image copies no repository holds stay references as well (a v1 push names its repository
//! last), unattributed.

use super::gc::digests_in;
use super::v1::images::LayerLink;
use super::v2::manifest;
use crate::digest::Digest;
use crate::names::RepoName;
use crate::storage::keys::{self, RepositoryEntry};
use crate::storage::Storage;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;

/// What one repository references.
#[derive(Debug, Default, Clone)]
pub struct RepoRefs {
    pub referenced: HashSet<Digest>,
    /// Its blob links that reference nothing (see the module's doc).
    pub stale_links: Vec<Digest>,
}

#[derive(Debug, Default)]
pub struct Scan {
    /// Every repository with anything in storage.
    pub repos: BTreeMap<RepoName, RepoRefs>,
    /// Layers of v1 image copies that no repository holds.
    pub loose_v1: HashSet<Digest>,
    /// Stored manifests that do not parse (`repo@digest`): every digest written in them is
    /// counted as referenced, since what they reference cannot be known exactly.
    pub unparsable: Vec<String>,
}

impl Scan {
    /// Every referenced blob, whoever references it.
    pub fn marked(&self) -> HashSet<Digest> {
        let mut all = self.loose_v1.clone();
        for refs in self.repos.values() {
            all.extend(refs.referenced.iter().cloned());
        }
        all
    }

    /// The repositories with a stale link to each blob.
    pub fn stale_links(&self) -> HashMap<Digest, Vec<RepoName>> {
        let mut out: HashMap<Digest, Vec<RepoName>> = HashMap::new();
        for (repo, refs) in &self.repos {
            for d in &refs.stale_links {
                out.entry(d.clone()).or_default().push(repo.clone());
            }
        }
        out
    }
}

/// Walks the references as of `now` (seconds since the epoch): blob links written more than
/// `grace_secs` before it are stale unless something else references their blob.
pub async fn scan(storage: &Storage, grace_secs: u64, now: u64) -> io::Result<Scan> {
    let mut scan = Scan::default();
    // v1 image copies: their layer, and the repositories holding them.
    let mut copies: HashMap<(String, String), (Option<Digest>, Vec<RepoName>)> = HashMap::new();
    for key in storage.walk(keys::IMAGES).await? {
        let Some((id, owner, leaf)) = keys::parse_image_key(&key) else {
            continue;
        };
        let copy = copies.entry((id.to_string(), owner.to_string())).or_default();
        if leaf == "layer" && keys::parse_image_layer(&key).is_some() {
            if let Some(raw) = storage.get(&key).await? {
                if let Ok(link) = serde_json::from_slice::<LayerLink>(&raw) {
                    copy.0 = Some(link.digest);
                }
            }
        } else if let Some(repo) = leaf.strip_prefix("_repos/").and_then(keys::parse_repository) {
            copy.1.push(repo);
        }
    }
    for (layer, repos) in copies.into_values() {
        let Some(layer) = layer else { continue };
        if repos.is_empty() {
            scan.loose_v1.insert(layer);
            continue;
        }
        for repo in repos {
            scan.repos.entry(repo).or_default().referenced.insert(layer.clone());
        }
    }
    // v2: manifests first, then the links nothing else in the repository covers.
    let mut links = Vec::new();
    for key in storage.walk(keys::REPOSITORIES).await? {
        let Some((repo, entry)) = keys::parse_repository_key(&key) else {
            continue;
        };
        match entry {
            RepositoryEntry::BlobLink(d) => links.push((repo, d)),
            RepositoryEntry::RevisionData(d) => {
                let found = storage
                    .get_many(vec![keys::revision_data(&repo, &d), keys::revision_type(&repo, &d)])
                    .await?;
                let refs = scan.repos.entry(repo.clone()).or_default();
                let (Some(Some(body)), Some(Some(media_type))) = (found.first(), found.get(1)) else {
                    log::debug!("references: {repo}: revision {d} incomplete, skipped");
                    continue;
                };
                match manifest::parse(body, &String::from_utf8_lossy(media_type)) {
                    Ok(parsed) => refs.referenced.extend(parsed.blobs),
                    Err(e) => {
                        log::warn!("references: {repo}@{d} does not parse ({e}): counting every blob it names");
                        refs.referenced.extend(digests_in(body));
                        scan.unparsable.push(format!("{repo}@{d}"));
                    }
                }
            }
            _ => {
                scan.repos.entry(repo).or_default();
            }
        }
    }
    for (repo, d) in links {
        let refs = scan.repos.entry(repo.clone()).or_default();
        if refs.referenced.contains(&d) {
            continue;
        }
        let modified = storage
            .stat(&keys::blob_link(&repo, &d))
            .await?
            .and_then(|s| s.modified);
        if modified.is_none_or(|m| m.saturating_add(grace_secs) > now) {
            refs.referenced.insert(d);
        } else {
            refs.stale_links.push(d);
        }
    }
    Ok(scan)
}
