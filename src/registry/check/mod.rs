//! `skiff check`: verifies the store against itself. Every blob is hashed (streamed, never held
//! in memory) and compared with the digest it is stored under, and every reference is followed:
//! v1 tags -> complete images (the copy the repository holds); v1 images (each owner's copy) ->
//! json, parent, ancestry and lineage, layer (in the blob store, of the recorded size, matching
//! the recorded payload checksum); repository memberships -> image copies;
//! v2 tags -> manifests; manifests -> they parse, hash to their digest, and what they reference
//! (blobs in the store and linked in the repository, descriptor sizes, child manifests);
//! blob links -> blobs.
//!
//! Read-only unless `repair`: then a corrupt blob (content not matching its digest) is moved to
//! the quarantine (`keys::quarantine`), which makes it unknown to the registry (404, and a client
//! can push it again) while keeping its bytes. Dangling tags, links and manifests are only
//! reported: which image a tag should name, or whether a manifest is still wanted, is the owner's
//! call, and deleting references would lose the evidence.
//!
//! Reading is safe beside a running server: objects are replaced by rename, never rewritten in
//! place. A reference found broken is looked at again before it is reported, so a push or delete
//! racing the walk is not reported as damage.

mod images_v1;
mod manifests_v2;

use super::v1::images::{parse_image_json, ImageState, Images, LayerLink};
use super::v2::manifest;
use super::v2::repositories::V2Repositories;
use crate::clock::now_secs;
use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::AppError;
use crate::names::{ImageCopy, ImageId, Owner, RepoName, TagName};
use crate::storage::keys::{self, RepositoryEntry};
use crate::storage::Storage;
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io;

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Blob,
    V1Image,
    V1Tag,
    V1Member,
    Manifest,
    V2Tag,
    BlobLink,
    /// Temp files of interrupted writes.
    Temp,
    Upload,
    /// A key that belongs to nothing the registry knows.
    Stray,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Blob => "blob",
            Kind::V1Image => "v1-image",
            Kind::V1Tag => "v1-tag",
            Kind::V1Member => "v1-member",
            Kind::Manifest => "manifest",
            Kind::V2Tag => "v2-tag",
            Kind::BlobLink => "blob-link",
            Kind::Temp => "temp",
            Kind::Upload => "upload",
            Kind::Stray => "stray",
        }
    }
}

/// One thing found: what it is about, the storage key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: Kind,
    pub key: String,
    pub what: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Counts {
    pub blobs: usize,
    pub blob_bytes: u64,
    pub v1_images: usize,
    pub v1_in_progress: usize,
    pub v1_tags: usize,
    pub v1_members: usize,
    pub manifests: usize,
    pub v2_tags: usize,
    pub blob_links: usize,
    pub uploads: usize,
    pub temp_files: usize,
}

/// A blob moved out of the blob store by `repair`.
#[derive(Debug, Serialize)]
pub struct Quarantined {
    pub digest: Digest,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub counts: Counts,
    /// What is wrong: the exit status is non-zero when there is any.
    pub problems: Vec<Finding>,
    /// Harmless leftovers (interrupted writes never made visible, stray keys): not problems.
    pub notes: Vec<Finding>,
    pub quarantined: Vec<Quarantined>,
}

pub struct Options {
    /// Quarantine corrupt blobs (the server must be stopped).
    pub repair: bool,
    /// A server may be running: temp files and upload sessions are writes in flight, not
    /// leftovers.
    pub live: bool,
}

/// How far the blob hashing is, for a progress line.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub blobs_done: usize,
    pub blobs: usize,
    pub bytes_done: u64,
    pub bytes: u64,
}

/// Runs every check; `progress` is called as blob bytes are hashed.
pub async fn run(storage: &Storage, opts: &Options, progress: &mut (dyn FnMut(Progress) + Send)) -> io::Result<Report> {
    let mut c = Checker {
        storage,
        images: Images::new(storage.clone()),
        v2: V2Repositories::new(storage.clone()),
        report: Report::default(),
        blobs: BTreeMap::new(),
        image_states: HashMap::new(),
        layer_users: HashMap::new(),
        stamp: now_secs().to_string(),
    };
    c.walk_blobs().await?;
    c.v1_images().await?;
    c.repositories().await?;
    c.hash_blobs(opts.repair, progress).await?;
    c.in_flight(opts.live).await?;
    Ok(c.report)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    InProgress,
    Complete,
    /// Entries but neither json nor `_inprogress`: nothing is served.
    Broken,
}

struct Checker<'a> {
    storage: &'a Storage,
    images: Images,
    v2: V2Repositories,
    report: Report,
    /// Every blob in the store and its size.
    blobs: BTreeMap<Digest, (String, u64)>,
    image_states: HashMap<ImageCopy, State>,
    /// v1 image copies whose layer is this blob, with their recorded payload checksum: verified
    /// in the same pass that hashes the blob.
    layer_users: HashMap<Digest, Vec<(ImageCopy, Digest)>>,
    /// Names this run's quarantine directory.
    stamp: String,
}

fn io_err(e: AppError) -> io::Error {
    io::Error::other(e.message)
}

impl Checker<'_> {
    fn problem(&mut self, kind: Kind, key: impl Into<String>, what: impl Into<String>) {
        self.report.problems.push(Finding {
            kind,
            key: key.into(),
            what: what.into(),
        });
    }

    fn note(&mut self, kind: Kind, key: impl Into<String>, what: impl Into<String>) {
        self.report.notes.push(Finding {
            kind,
            key: key.into(),
            what: what.into(),
        });
    }

    /// Whether the blob store has `d`: the walk's answer, or a fresh look (a push since).
    async fn has_blob(&self, d: &Digest) -> io::Result<Option<u64>> {
        if let Some((_, size)) = self.blobs.get(d) {
            return Ok(Some(*size));
        }
        self.storage.blob_size(d).await
    }

    /// Whether `key` still holds `value` (a reference is reported only if it did not change).
    async fn unchanged(&self, key: &str, value: &[u8]) -> io::Result<bool> {
        Ok(self.storage.get(key).await?.as_deref() == Some(value))
    }

    async fn walk_blobs(&mut self) -> io::Result<()> {
        for key in self.storage.walk(keys::BLOBS).await? {
            match keys::parse_blob(&key).filter(|d| keys::blob(d) == key) {
                Some(d) => {
                    let Some(stat) = self.storage.stat(&key).await? else {
                        continue;
                    };
                    self.report.counts.blobs += 1;
                    self.report.counts.blob_bytes += stat.size;
                    self.blobs.insert(d, (key, stat.size));
                }
                None => self.note(
                    Kind::Stray,
                    key,
                    "not a blob key (blobs/<algo>/<2 hex>/<hex>): never served",
                ),
            }
        }
        Ok(())
    }

    /// Tags, memberships, blob links and manifests of every repository.
    async fn repositories(&mut self) -> io::Result<()> {
        let mut typed: HashSet<(RepoName, Digest)> = HashSet::new();
        let mut data: Vec<(RepoName, Digest)> = Vec::new();
        let mut links: HashSet<(RepoName, Digest)> = HashSet::new();
        let mut v2_tags = Vec::new();
        for key in self.storage.walk(keys::REPOSITORIES).await? {
            let Some((repo, entry)) = keys::parse_repository_key(&key) else {
                self.note(Kind::Stray, key, "belongs to no repository: never served");
                continue;
            };
            match entry {
                RepositoryEntry::BlobLink(d) => {
                    self.report.counts.blob_links += 1;
                    if self.has_blob(&d).await?.is_none() && self.storage.exists(&key).await? {
                        self.problem(
                            Kind::BlobLink,
                            &key,
                            format!("{repo} links blob {d}, which is not in the blob store"),
                        );
                    }
                    links.insert((repo, d));
                }
                RepositoryEntry::RevisionData(d) => data.push((repo, d)),
                RepositoryEntry::RevisionType(d) => {
                    typed.insert((repo, d));
                }
                RepositoryEntry::V2Tag(tag) => v2_tags.push((repo, tag, key)),
                RepositoryEntry::V1Tag(tag) => self.v1_tag(&repo, &tag, &key).await?,
                RepositoryEntry::V1Member(id) => self.v1_member(&repo, &id, &key).await?,
                RepositoryEntry::Other(_) => {}
            }
        }
        let data_set: HashSet<(RepoName, Digest)> = data.iter().cloned().collect();
        for (repo, d) in &typed {
            // A listing taken during a push may show `type` and miss the `data` written just
            // before it: look again.
            if !data_set.contains(&(repo.clone(), d.clone()))
                && !self.storage.exists(&keys::revision_data(repo, d)).await?
                && self.storage.exists(&keys::revision_type(repo, d)).await?
            {
                self.problem(
                    Kind::Manifest,
                    keys::revision_type(repo, d),
                    format!("{repo}@{d}: media type without data: the manifest counts as present but reads as absent"),
                );
            }
        }
        for (repo, d) in &data {
            if !typed.contains(&(repo.clone(), d.clone())) {
                if !self.storage.exists(&keys::revision_type(repo, d)).await? {
                    self.note(
                        Kind::Manifest,
                        keys::revision_data(repo, d),
                        format!("{repo}@{d}: data without media type (an interrupted push or delete): never served"),
                    );
                }
                continue;
            }
            self.manifest(repo, d, &links).await?;
        }
        for (repo, tag, key) in v2_tags {
            self.v2_tag(&repo, &tag, &key, &typed).await?;
        }
        Ok(())
    }

    /// Hashes every blob once, checking its digest and the payload checksums of the v1 images
    /// whose layer it is; quarantines the corrupt ones when repairing.
    async fn hash_blobs(&mut self, repair: bool, progress: &mut (dyn FnMut(Progress) + Send)) -> io::Result<()> {
        let blobs = std::mem::take(&mut self.blobs);
        let mut p = Progress {
            blobs_done: 0,
            blobs: blobs.len(),
            bytes_done: 0,
            bytes: blobs.values().map(|(_, s)| s).sum(),
        };
        for (d, (key, size)) in &blobs {
            let mut users = Vec::new();
            let mut hashers = vec![Hasher::new(d.algorithm())];
            for (copy, sum) in self.layer_users.remove(d).unwrap_or_default() {
                if let Some(json) = self.storage.get(&keys::image(&copy, "json")).await? {
                    let mut prefix = json.to_vec();
                    prefix.push(b'\n');
                    hashers.push(Hasher::with_prefix(Algorithm::Sha256, &prefix));
                    users.push((copy, sum));
                }
            }
            let read = self.hash(key, *size, &mut hashers, &mut p, progress).await;
            p.blobs_done += 1;
            match read {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    self.problem(Kind::Blob, key, format!("cannot be read: {e}"));
                    continue;
                }
            }
            let mut hashers = hashers.into_iter().map(Hasher::finish);
            let actual = hashers.next().ok_or_else(|| io::Error::other("no hasher"))?;
            if &actual != d {
                self.problem(
                    Kind::Blob,
                    key,
                    format!("content ({size} bytes) hashes to {actual}, not to its digest"),
                );
                if repair {
                    self.quarantine(d, key, &actual).await?;
                }
                continue; // the payload checksums of its images fail for the same reason
            }
            for ((copy, recorded), payload) in users.into_iter().zip(hashers) {
                if payload != recorded {
                    self.problem(
                        Kind::V1Image,
                        keys::image(&copy, "_checksum"),
                        format!("payload checksum of json + layer is {payload}, the image records {recorded}"),
                    );
                }
            }
        }
        Ok(())
    }

    async fn hash(
        &self,
        key: &str,
        size: u64,
        hashers: &mut [Hasher],
        p: &mut Progress,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> io::Result<()> {
        let mut stream = self.storage.read(key, 0, size).await?;
        let mut read = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk: Bytes = chunk?;
            for h in hashers.iter_mut() {
                h.update(&chunk);
            }
            read += chunk.len() as u64;
            p.bytes_done += chunk.len() as u64;
            progress(*p);
        }
        if read != size {
            return Err(io::Error::other(format!("{read} of {size} bytes read")));
        }
        Ok(())
    }

    /// Moves a corrupt blob out of the blob store, with a note saying why. Never onto an
    /// existing key: `commit` would then drop the source, and nothing is to be deleted here.
    async fn quarantine(&mut self, d: &Digest, key: &str, actual: &Digest) -> io::Result<()> {
        let mut stamp = self.stamp.clone();
        let mut n = 1;
        while self.storage.exists(&keys::quarantine(&stamp, d)).await? {
            n += 1;
            stamp = format!("{}-{n}", self.stamp);
        }
        let to = keys::quarantine(&stamp, d);
        let why = format!("skiff check: {key} should hash to {d} but hashes to {actual}\n");
        self.storage
            .put(&keys::quarantine_note(&stamp, d), Bytes::from(why))
            .await?;
        self.storage.commit(key, &to).await?;
        log::info!("check: quarantined {d}: {key} -> {to}");
        self.report.quarantined.push(Quarantined {
            digest: d.clone(),
            from: key.to_string(),
            to,
        });
        Ok(())
    }

    /// Temp files and upload sessions: writes in flight while a server runs; leftovers of an
    /// interrupted one otherwise (removed at the next start and by the upload sweep).
    async fn in_flight(&mut self, live: bool) -> io::Result<()> {
        let temp = self.storage.walk(keys::TMP).await?;
        self.report.counts.temp_files = temp.len();
        if !live {
            if let Some(first) = temp.first() {
                self.note(
                    Kind::Temp,
                    first.clone(),
                    format!(
                        "{} temp file(s) of interrupted writes: never visible, removed when the server starts",
                        temp.len()
                    ),
                );
            }
        }
        for uuid in self.storage.list(keys::UPLOADS).await? {
            self.report.counts.uploads += 1;
            let complete = self.storage.exists(&keys::upload_info(&uuid)).await?;
            if !complete && !live {
                self.note(
                    Kind::Upload,
                    keys::upload(&uuid),
                    "upload session without info (interrupted at its start): removed by the upload sweep",
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
