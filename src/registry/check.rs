//! `skiff check`: verifies the store against itself. Every blob is hashed (streamed, never held
//! in memory) and compared with the digest it is stored under, and every reference is followed:
//! v1 tags -> complete images; v1 images -> json, parent, ancestry, layer (in the blob store, of
//! the recorded size, matching the recorded payload checksum); repository memberships -> images;
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

use super::v1::images::{parse_image_json, ImageState, Images, LayerLink};
use super::v2::manifest;
use super::v2::repositories::V2Repositories;
use crate::clock::now_secs;
use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::AppError;
use crate::names::{ImageId, RepoName, TagName};
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
    image_states: HashMap<String, State>,
    /// v1 images whose layer is this blob, with their recorded payload checksum: verified in
    /// the same pass that hashes the blob.
    layer_users: HashMap<Digest, Vec<(ImageId, Digest)>>,
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

    async fn v1_images(&mut self) -> io::Result<()> {
        let mut leaves: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for key in self.storage.walk(keys::IMAGES).await? {
            match keys::parse_image_key(&key) {
                Some((id, leaf)) => {
                    leaves.entry(id.to_string()).or_default().insert(leaf.to_string());
                }
                None => self.note(Kind::Stray, key, "not an image's entry: never served"),
            }
        }
        let mut complete = Vec::new();
        for (raw, leaves) in &leaves {
            let Ok(id) = ImageId::parse(raw) else {
                self.note(
                    Kind::Stray,
                    format!("{}/{raw}", keys::IMAGES),
                    "not an image id: never served",
                );
                continue;
            };
            self.report.counts.v1_images += 1;
            // The state as the registry reads it, not from the listing: a listing taken while a
            // push runs may show `json` without the `_inprogress` created just before it.
            let state = match self.images.state(&id).await.map_err(io_err)? {
                ImageState::InProgress { .. } => {
                    // A push not finished (or interrupted): never served, resumable from PUT json.
                    self.report.counts.v1_in_progress += 1;
                    State::InProgress
                }
                ImageState::Complete => {
                    complete.push(id);
                    State::Complete
                }
                ImageState::Missing => {
                    // `_inprogress` is an image's first entry and goes only once json is there,
                    // and neither json nor images are ever deleted: this is damage.
                    self.problem(
                        Kind::V1Image,
                        format!("{}/{raw}", keys::IMAGES),
                        format!(
                            "has entries ({}) but neither json nor _inprogress: not served, and cannot be pushed again",
                            leaves.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    );
                    State::Broken
                }
            };
            self.image_states.insert(raw.clone(), state);
        }
        for id in complete {
            self.v1_image(&id).await?;
        }
        Ok(())
    }

    /// The state of image `id`: complete as the walk saw it (images never go back), else a fresh
    /// look: it may have been pushed, or finished its push, since.
    async fn image_state(&self, id: &ImageId) -> io::Result<Option<State>> {
        match self.image_states.get(id.as_str()) {
            Some(State::Complete) => return Ok(Some(State::Complete)),
            Some(State::Broken) => return Ok(Some(State::Broken)),
            _ => {}
        }
        Ok(match self.images.state(id).await.map_err(io_err)? {
            ImageState::Missing => None,
            ImageState::InProgress { .. } => Some(State::InProgress),
            ImageState::Complete => Some(State::Complete),
        })
    }

    /// A complete image: json, parent, ancestry, layer, payload checksum (checked while hashing).
    async fn v1_image(&mut self, id: &ImageId) -> io::Result<()> {
        let json_key = keys::image(id, "json");
        let Some(json) = self.storage.get(&json_key).await? else {
            return Ok(());
        };
        let parent = match parse_image_json(id, &json) {
            Ok(p) => Some(p),
            Err(e) => {
                self.problem(Kind::V1Image, &json_key, format!("json: {}", e.message));
                None
            }
        };
        let ancestry_key = keys::image(id, "ancestry");
        let ancestry = match self.storage.get(&ancestry_key).await? {
            None => {
                self.problem(Kind::V1Image, &ancestry_key, "complete image without ancestry");
                None
            }
            Some(raw) => match serde_json::from_slice::<Vec<String>>(&raw) {
                Ok(a) => Some(a),
                Err(e) => {
                    self.problem(
                        Kind::V1Image,
                        &ancestry_key,
                        format!("ancestry is not a JSON list of ids: {e}"),
                    );
                    None
                }
            },
        };
        if let Some(parent) = parent {
            let mut expected = vec![id.to_string()];
            if let Some(p) = &parent {
                match self.image_state(p).await? {
                    None => self.problem(Kind::V1Image, &json_key, format!("parent {p} does not exist")),
                    Some(State::Complete) => {}
                    Some(_) => self.problem(
                        Kind::V1Image,
                        &json_key,
                        format!("parent {p} is not complete: pulls of this image fail"),
                    ),
                }
                let theirs = self.storage.get(&keys::image(p, "ancestry")).await?;
                match theirs.and_then(|raw| serde_json::from_slice::<Vec<String>>(&raw).ok()) {
                    Some(a) => expected.extend(a),
                    // The parent's own check reports it; its chain is unknown here.
                    None => expected.clear(),
                }
            }
            if let Some(a) = &ancestry {
                if !expected.is_empty() && a != &expected {
                    self.problem(
                        Kind::V1Image,
                        &ancestry_key,
                        format!(
                            "ancestry ({} ids, starting {}) is not the image followed by its parent's ancestry ({} ids)",
                            a.len(),
                            a.first().map(String::as_str).unwrap_or("nothing"),
                            expected.len()
                        ),
                    );
                }
            }
        }
        let layer_key = keys::image(id, "layer");
        let link = match self.storage.get(&layer_key).await? {
            None => {
                self.problem(Kind::V1Image, layer_key, "complete image without a layer");
                return Ok(());
            }
            Some(raw) => match serde_json::from_slice::<LayerLink>(&raw) {
                Ok(l) => l,
                Err(e) => {
                    self.problem(Kind::V1Image, layer_key, format!("layer link does not parse: {e}"));
                    return Ok(());
                }
            },
        };
        match self.has_blob(&link.digest).await? {
            None => {
                self.problem(
                    Kind::V1Image,
                    layer_key,
                    format!("layer blob {} is not in the blob store", link.digest),
                );
                return Ok(());
            }
            Some(size) if size != link.size => {
                self.problem(
                    Kind::V1Image,
                    &layer_key,
                    format!("layer records {} bytes, blob {} holds {size}", link.size, link.digest),
                );
            }
            Some(_) => {}
        }
        let checksum_key = keys::image(id, "_checksum");
        match self.storage.get(&checksum_key).await? {
            None => self.problem(Kind::V1Image, checksum_key, "complete image without a payload checksum"),
            Some(raw) => match String::from_utf8_lossy(&raw).parse::<Digest>() {
                Ok(sum) if sum.algorithm() == Algorithm::Sha256 => {
                    self.layer_users.entry(link.digest).or_default().push((id.clone(), sum));
                }
                _ => self.problem(
                    Kind::V1Image,
                    checksum_key,
                    format!(
                        "payload checksum {:?} is not a sha256 digest",
                        String::from_utf8_lossy(&raw)
                    ),
                ),
            },
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
                RepositoryEntry::V1Member(id) => {
                    self.report.counts.v1_members += 1;
                    if self.image_state(&id).await?.is_none() && self.storage.exists(&key).await? {
                        self.problem(
                            Kind::V1Member,
                            &key,
                            format!("{repo} lists image {id} as a member, which does not exist"),
                        );
                    }
                }
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

    async fn v1_tag(&mut self, repo: &RepoName, tag: &TagName, key: &str) -> io::Result<()> {
        self.report.counts.v1_tags += 1;
        let Some(raw) = self.storage.get(key).await? else {
            return Ok(());
        };
        let Ok(id) = ImageId::parse(&String::from_utf8_lossy(&raw)) else {
            self.problem(
                Kind::V1Tag,
                key,
                format!(
                    "{repo}:{tag} holds {:?}, not an image id",
                    String::from_utf8_lossy(&raw)
                ),
            );
            return Ok(());
        };
        let why = match self.image_state(&id).await? {
            Some(State::Complete) => return Ok(()),
            None => "does not exist",
            Some(_) => "is not complete",
        };
        if self.unchanged(key, &raw).await? {
            self.problem(
                Kind::V1Tag,
                key,
                format!("{repo}:{tag} points at image {id}, which {why}"),
            );
        }
        Ok(())
    }

    async fn v2_tag(
        &mut self,
        repo: &RepoName,
        tag: &TagName,
        key: &str,
        typed: &HashSet<(RepoName, Digest)>,
    ) -> io::Result<()> {
        self.report.counts.v2_tags += 1;
        let Some(raw) = self.storage.get(key).await? else {
            return Ok(());
        };
        let Ok(d) = String::from_utf8_lossy(&raw).parse::<Digest>() else {
            self.problem(
                Kind::V2Tag,
                key,
                format!("{repo}:{tag} holds {:?}, not a digest", String::from_utf8_lossy(&raw)),
            );
            return Ok(());
        };
        if typed.contains(&(repo.clone(), d.clone())) {
            return Ok(());
        }
        let present = self
            .v2
            .manifest(repo, &super::v2::repositories::Reference::Digest(d.clone()))
            .await;
        if matches!(present, Ok(None)) && self.unchanged(key, &raw).await? {
            self.problem(
                Kind::V2Tag,
                key,
                format!("{repo}:{tag} points at manifest {d}, which the repository does not have"),
            );
        }
        Ok(())
    }

    /// A complete revision: parses, hashes to its digest, and everything it references is there.
    async fn manifest(&mut self, repo: &RepoName, d: &Digest, links: &HashSet<(RepoName, Digest)>) -> io::Result<()> {
        self.report.counts.manifests += 1;
        let key = keys::revision_data(repo, d);
        let found = self
            .storage
            .get_many(vec![key.clone(), keys::revision_type(repo, d)])
            .await?;
        let (Some(Some(body)), Some(Some(media_type))) = (found.first(), found.get(1)) else {
            return Ok(()); // deleted since the walk
        };
        let parsed = match manifest::parse(body, &String::from_utf8_lossy(media_type)) {
            Ok(p) => p,
            Err(e) => {
                self.problem(Kind::Manifest, key, format!("{repo}@{d} does not parse: {}", e.message));
                return Ok(());
            }
        };
        let actual = parsed.digest(body, d.algorithm());
        if &actual != d {
            self.problem(
                Kind::Manifest,
                &key,
                format!("{repo}@{d}: content hashes to {actual}, not to its digest"),
            );
        }
        let sizes = descriptor_sizes(body);
        for blob in &parsed.blobs {
            match self.has_blob(blob).await? {
                None => {
                    self.problem(
                        Kind::Manifest,
                        &key,
                        format!("{repo}@{d} references blob {blob}, which is not in the blob store"),
                    );
                    continue;
                }
                Some(size) => {
                    if let Some(said) = sizes.get(blob).filter(|s| **s != size) {
                        self.problem(
                            Kind::Manifest,
                            &key,
                            format!("{repo}@{d} says blob {blob} has {said} bytes; it holds {size}"),
                        );
                    }
                }
            }
            if !links.contains(&(repo.clone(), blob.clone()))
                && !self.storage.exists(&keys::blob_link(repo, blob)).await?
            {
                self.problem(
                    Kind::Manifest,
                    &key,
                    format!("{repo}@{d} references blob {blob}, which {repo} does not link (pulls of it get 404)"),
                );
            }
        }
        for child in &parsed.manifests {
            if !self.v2.has_manifest(repo, child).await.map_err(io_err)? {
                self.problem(
                    Kind::Manifest,
                    &key,
                    format!("{repo}@{d} references manifest {child}, which the repository does not have"),
                );
            }
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
            for (id, sum) in self.layer_users.remove(d).unwrap_or_default() {
                if let Some(json) = self.storage.get(&keys::image(&id, "json")).await? {
                    let mut prefix = json.to_vec();
                    prefix.push(b'\n');
                    hashers.push(Hasher::with_prefix(Algorithm::Sha256, &prefix));
                    users.push((id, sum));
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
            for ((id, recorded), payload) in users.into_iter().zip(hashers) {
                if payload != recorded {
                    self.problem(
                        Kind::V1Image,
                        keys::image(&id, "_checksum"),
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
            let complete = self.storage.exists(&keys::upload_info(&uuid)).await?
                && self.storage.exists(&keys::upload_data(&uuid)).await?;
            if !complete && !live {
                self.note(
                    Kind::Upload,
                    keys::upload(&uuid),
                    "upload session without info or data (interrupted at its start): removed by the upload sweep",
                );
            }
        }
        Ok(())
    }
}

/// The sizes an image manifest's descriptors give (config and layers).
fn descriptor_sizes(body: &[u8]) -> HashMap<Digest, u64> {
    #[derive(Deserialize)]
    struct Desc {
        digest: Digest,
        size: u64,
    }
    #[derive(Deserialize)]
    struct Image {
        config: Option<Desc>,
        layers: Option<Vec<Desc>>,
    }
    let Ok(m) = serde_json::from_slice::<Image>(body) else {
        return HashMap::new();
    };
    m.config
        .into_iter()
        .chain(m.layers.unwrap_or_default())
        .map(|d| (d.digest, d.size))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[&'static [u8]]) -> futures::stream::Iter<std::vec::IntoIter<Result<Bytes, io::Error>>> {
        let items: Vec<Result<Bytes, io::Error>> = parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        futures::stream::iter(items)
    }

    /// A complete v1 image pushed through the domain API, as the HTTP handlers do.
    async fn push(images: &Images, id: &ImageId, parent: Option<&ImageId>, layer: &'static [u8]) -> LayerLink {
        let json = match parent {
            Some(p) => format!("{{\"id\":\"{id}\",\"parent\":\"{p}\"}}"),
            None => format!("{{\"id\":\"{id}\"}}"),
        };
        images
            .put_json(id, Bytes::from(json.clone()), parent, "alice")
            .await
            .expect("json");
        let link = images.put_layer(id, "alice", body(&[layer])).await.expect("layer");
        let payload = Digest::sha256_of(&[json.as_bytes(), b"\n", layer].concat());
        images
            .put_checksum(id, "alice", Some(&payload.to_string()), None)
            .await
            .expect("checksum");
        link
    }

    async fn check(storage: &Storage) -> Report {
        let opts = Options {
            repair: false,
            live: false,
        };
        run(storage, &opts, &mut |_| {}).await.expect("check")
    }

    fn id(c: char) -> ImageId {
        ImageId::parse(&c.to_string().repeat(64)).expect("id")
    }

    /// v1 consistency: a clean chain has no problems; then an ancestry that skips the parent, a
    /// layer link whose size is wrong, a payload checksum that does not match json + layer, and
    /// a json whose parent does not exist are each reported, once, on the right key.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn v1_parent_ancestry_size_and_payload_are_checked() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open_fs(dir.path()).await.expect("open");
        let images = Images::new(storage.clone());
        let (base, child, other) = (id('a'), id('b'), id('c'));
        push(&images, &base, None, b"base layer").await;
        push(&images, &child, Some(&base), b"child layer").await;
        let link = push(&images, &other, None, b"other layer").await;
        let clean = check(&storage).await;
        assert_eq!(clean.problems, vec![], "a clean chain");
        assert_eq!((clean.counts.v1_images, clean.counts.blobs), (3, 3));

        storage
            .put(&keys::image(&child, "ancestry"), Bytes::from(format!("[\"{child}\"]")))
            .await
            .expect("put");
        let wrong = LayerLink {
            digest: link.digest.clone(),
            size: link.size + 1,
        };
        storage
            .put(
                &keys::image(&other, "layer"),
                serde_json::to_vec(&wrong).expect("json").into(),
            )
            .await
            .expect("put");
        storage
            .put(
                &keys::image(&base, "_checksum"),
                Bytes::from(Digest::sha256_of(b"something else").to_string()),
            )
            .await
            .expect("put");
        let orphan = id('d');
        storage
            .put(
                &keys::image(&orphan, "json"),
                Bytes::from(format!("{{\"id\":\"{orphan}\",\"parent\":\"{}\"}}", id('e'))),
            )
            .await
            .expect("put");

        let report = check(&storage).await;
        let found: Vec<(Kind, String)> = report.problems.iter().map(|p| (p.kind, p.key.clone())).collect();
        assert!(
            report.problems.iter().all(|p| p.kind == Kind::V1Image),
            "{:#?}",
            report.problems
        );
        for (key, what) in [
            (keys::image(&child, "ancestry"), "parent's ancestry"),
            (keys::image(&other, "layer"), "records 12 bytes"),
            (keys::image(&base, "_checksum"), "payload checksum"),
            (keys::image(&orphan, "json"), "does not exist"),
            (keys::image(&orphan, "ancestry"), "without ancestry"),
            (keys::image(&orphan, "layer"), "without a layer"),
        ] {
            assert!(
                report.problems.iter().any(|p| p.key == key && p.what.contains(what)),
                "{key}: {what} in {found:#?}"
            );
        }
        assert_eq!(report.problems.len(), 6, "{:#?}", report.problems);
        assert!(report.quarantined.is_empty(), "no repair asked");
    }

    /// `repair` moves a corrupt blob to the quarantine with a note; the bytes are kept and the
    /// blob store no longer has it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn repair_quarantines_and_keeps_the_bytes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open_fs(dir.path()).await.expect("open");
        let good = Digest::sha256_of(b"good");
        storage
            .put(&keys::blob(&good), Bytes::from_static(b"good"))
            .await
            .expect("put");
        let claimed = Digest::sha256_of(b"claimed");
        storage
            .put(&keys::blob(&claimed), Bytes::from_static(b"tampered"))
            .await
            .expect("put");
        let opts = Options {
            repair: true,
            live: false,
        };
        let report = run(&storage, &opts, &mut |_| {}).await.expect("check");
        assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
        assert_eq!(report.problems[0].kind, Kind::Blob);
        assert_eq!(report.quarantined.len(), 1);
        let q = &report.quarantined[0];
        assert_eq!(
            (q.digest.clone(), q.from.clone()),
            (claimed.clone(), keys::blob(&claimed))
        );
        assert_eq!(
            storage.blob_size(&claimed).await.expect("stat"),
            None,
            "out of the store"
        );
        assert_eq!(
            storage.get(&q.to).await.expect("get").as_deref(),
            Some(&b"tampered"[..])
        );
        let note = storage.get(&format!("{}.why", q.to)).await.expect("get").expect("note");
        assert!(String::from_utf8_lossy(&note).contains(&claimed.to_string()));
        assert_eq!(
            storage.blob_size(&good).await.expect("stat"),
            Some(4),
            "good blob stays"
        );
        assert_eq!(check(&storage).await.problems, vec![], "clean after the repair");
    }
}
