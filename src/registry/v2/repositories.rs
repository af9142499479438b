//! v2 content of a repository in the registry's storage: which blobs it may serve (links into
//! the shared blob store), its manifests, tags and referrers.
//!
//! Keys under `repositories/<name>/`:
//! ```text
//! _layers/<algo>/<hex>                          the repository may serve this blob
//! _manifests/revisions/<algo>/<hex>/{data,type} manifest bytes exactly as pushed, media type
//! _manifests/tags/<tag>                         digest the tag points at
//! _referrers/<algo>-<hex>/<algo>-<hex>          descriptor of a manifest whose subject is the first
//! ```

use super::manifest::{self, Descriptor};
use crate::digest::{Algorithm, Digest};
use crate::error::{AppError, AppResult, Kind};
use crate::names::{RepoName, TagName};
use crate::storage::keys;
use crate::storage::Storage;
use bytes::Bytes;
use std::collections::BTreeSet;

/// What a manifest push stored.
pub struct PushedManifest {
    pub digest: Digest,
    pub media_type: String,
    /// The manifest's bytes.
    pub size: u64,
    /// The manifest's subject, for the `OCI-Subject` header.
    pub subject: Option<Digest>,
}

/// A manifest as stored.
pub struct StoredManifest {
    pub digest: Digest,
    pub media_type: String,
    pub body: Bytes,
}

#[derive(Clone)]
pub struct V2Repositories {
    storage: Storage,
    /// `gc.grace_secs`: how long a blob link references its blob without a manifest behind it
    /// (see `registry::references`).
    grace_secs: u64,
}

impl V2Repositories {
    pub fn new(storage: Storage) -> V2Repositories {
        V2Repositories {
            storage,
            grace_secs: crate::config::GcConfig::default().grace_secs,
        }
    }

    /// With garbage collection's grace period (`gc.grace_secs`).
    pub fn with_grace(self, grace_secs: u64) -> V2Repositories {
        V2Repositories { grace_secs, ..self }
    }

    /// Whether a link written at `modified` is due for renewal: older than half the grace
    /// period, so that what a client is told exists stays a reference for at least that long.
    fn link_is_old(&self, modified: Option<u64>) -> bool {
        modified.is_some_and(|m| m.saturating_add(self.grace_secs / 2) < crate::clock::now_secs())
    }

    /// The blob's size for a `HEAD`/`GET` through the repository, renewing an old link. A
    /// client told "exists" skips the upload and pushes a manifest naming the blob: renewed
    /// under a reference pin (`storage::pins`), the link keeps the blob through any collection
    /// for half the grace period more, at most one write per link per half grace period.
    pub async fn blob_for_client(&self, repo: &RepoName, d: &Digest) -> AppResult<Option<u64>> {
        let link = keys::blob_link(repo, d);
        let Some(stat) = self.storage.stat(&link).await? else {
            return Ok(None);
        };
        if !self.link_is_old(stat.modified) {
            return Ok(self.storage.blob_size(d).await?);
        }
        let _pin = self.storage.pins().reference(d).await;
        let Some(size) = self.storage.blob_size(d).await? else {
            return Ok(None);
        };
        self.storage.put(&link, Bytes::new()).await?;
        Ok(Some(size))
    }

    pub async fn exists(&self, repo: &RepoName) -> AppResult<bool> {
        Ok(self.storage.exists(&keys::repository(repo)).await?)
    }

    /// The blob's size if this repository may serve it and its bytes are present.
    pub async fn blob(&self, repo: &RepoName, d: &Digest) -> AppResult<Option<u64>> {
        if !self.storage.exists(&keys::blob_link(repo, d)).await? {
            return Ok(None);
        }
        Ok(self.storage.blob_size(d).await?)
    }

    /// Lets `repo` serve blob `d`. Under a reference pin (see `storage::pins`): the blob is
    /// checked to exist and the link written with no garbage collection deciding meanwhile.
    pub async fn link_blob(&self, repo: &RepoName, d: &Digest) -> AppResult<()> {
        let _pin = self.storage.pins().reference(d).await;
        if self.storage.blob_size(d).await?.is_none() {
            return Err(AppError::not_found(format!("blob {d} is not stored")));
        }
        // A link already there is renewed when old: the push references the blob afresh.
        let k = keys::blob_link(repo, d);
        let renew = match self.storage.stat(&k).await? {
            None => true,
            Some(stat) => self.link_is_old(stat.modified),
        };
        if renew {
            self.storage.put(&k, Bytes::new()).await?;
        }
        Ok(())
    }

    pub async fn unlink_blob(&self, repo: &RepoName, d: &Digest) -> AppResult<bool> {
        Ok(self.storage.delete(&keys::blob_link(repo, d)).await?)
    }

    pub async fn put_manifest(&self, repo: &RepoName, d: &Digest, media_type: &str, body: Bytes) -> AppResult<()> {
        // data before type: `type` marks the revision complete.
        self.storage.put(&keys::revision_data(repo, d), body).await?;
        self.storage
            .put(
                &keys::revision_type(repo, d),
                Bytes::copy_from_slice(media_type.as_bytes()),
            )
            .await?;
        Ok(())
    }

    /// Stores a manifest pushed to `reference`, with every tag in `tags` (the reference's own
    /// tag, and any `?tag=`): checks that it parses, that a digest reference matches, and that
    /// everything it references is in the repository, then writes it, its referrer entry and
    /// the tags. Nothing is written when a check fails.
    pub async fn push_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        body: Bytes,
        content_type: &str,
        tags: &[TagName],
    ) -> AppResult<PushedManifest> {
        let parsed = manifest::parse(&body, content_type)?;
        let algo = match reference {
            Reference::Digest(d) => d.algorithm(),
            Reference::Tag(_) => Algorithm::Sha256,
        };
        let digest = parsed.digest(&body, algo);
        if let Reference::Digest(d) = reference {
            if d != &digest {
                return Err(AppError::new(
                    Kind::DigestInvalid,
                    format!("manifest digest {digest} does not match {d}"),
                ));
            }
        }
        // Pinned from the check to the write: a collection either sees the manifest or keeps
        // what it names (`storage::pins`).
        let _pin = self.storage.pins().reference_all(&parsed.blobs).await;
        let mut missing: Vec<String> = Vec::new();
        for blob in &parsed.blobs {
            if self.blob(repo, blob).await?.is_none() {
                missing.push(blob.to_string());
            }
        }
        for child in &parsed.manifests {
            if !self.has_manifest(repo, child).await? {
                missing.push(child.to_string());
            }
        }
        if !missing.is_empty() {
            // Bounded: a manifest naming thousands of missing blobs gets a short answer.
            const LISTED: usize = 10;
            let more = match missing.len().saturating_sub(LISTED) {
                0 => String::new(),
                n => format!(" and {n} more"),
            };
            missing.truncate(LISTED);
            return Err(AppError::new(
                Kind::ManifestBlobUnknown,
                format!("manifest references unknown blobs: {}{more}", missing.join(", ")),
            ));
        }
        let size = body.len() as u64;
        self.put_manifest(repo, &digest, &parsed.media_type, body).await?;
        if let Some(subject) = &parsed.subject {
            self.add_referrer(repo, &subject.digest, &parsed.referrer(&digest, size))
                .await?;
        }
        for t in tags {
            self.tag(repo, t, &digest).await?;
        }
        Ok(PushedManifest {
            digest,
            media_type: parsed.media_type.to_string(),
            size,
            subject: parsed.subject.map(|s| s.digest),
        })
    }

    /// Deletes a manifest by digest with its referrer entry and the tags on it; false if the
    /// repository has no such manifest.
    pub async fn delete_manifest_and_tags(&self, repo: &RepoName, d: &Digest) -> AppResult<bool> {
        let Some(stored) = self.manifest(repo, &Reference::Digest(d.clone())).await? else {
            return Ok(false);
        };
        if let Ok(parsed) = manifest::parse(&stored.body, &stored.media_type) {
            if let Some(subject) = parsed.subject {
                self.remove_referrer(repo, &subject.digest, d).await?;
            }
        }
        self.delete_manifest(repo, d).await
    }

    pub async fn has_manifest(&self, repo: &RepoName, d: &Digest) -> AppResult<bool> {
        Ok(self.storage.exists(&keys::revision_type(repo, d)).await?)
    }

    /// A manifest by tag or digest (the hottest read path: type and data in one round trip).
    pub async fn manifest(&self, repo: &RepoName, reference: &Reference) -> AppResult<Option<StoredManifest>> {
        let digest = match reference {
            Reference::Digest(d) => d.clone(),
            Reference::Tag(t) => match self.resolve_tag(repo, t).await? {
                Some(d) => d,
                None => return Ok(None),
            },
        };
        let found = self
            .storage
            .get_many(vec![
                keys::revision_type(repo, &digest),
                keys::revision_data(repo, &digest),
            ])
            .await?;
        let mut found = found.into_iter();
        let (Some(Some(media_type)), Some(Some(body))) = (found.next(), found.next()) else {
            return Ok(None);
        };
        Ok(Some(StoredManifest {
            digest,
            media_type: String::from_utf8_lossy(&media_type).into_owned(),
            body,
        }))
    }

    pub async fn delete_manifest(&self, repo: &RepoName, d: &Digest) -> AppResult<bool> {
        if !self.has_manifest(repo, d).await? {
            return Ok(false);
        }
        for tag in self.tags(repo).await? {
            if let Ok(t) = TagName::parse(&tag) {
                if self.resolve_tag(repo, &t).await?.as_ref() == Some(d) {
                    self.untag(repo, &t).await?;
                }
            }
        }
        self.storage.delete(&keys::revision_type(repo, d)).await?;
        self.storage.delete_all(&keys::revision(repo, d)).await?;
        Ok(true)
    }

    pub async fn tag(&self, repo: &RepoName, tag: &TagName, d: &Digest) -> AppResult<()> {
        self.storage.put(&keys::v2_tag(repo, tag), d.to_string().into()).await?;
        Ok(())
    }

    pub async fn resolve_tag(&self, repo: &RepoName, tag: &TagName) -> AppResult<Option<Digest>> {
        let raw = self.storage.get(&keys::v2_tag(repo, tag)).await?;
        Ok(raw.and_then(|r| String::from_utf8_lossy(&r).parse().ok()))
    }

    /// When the tag was last written (pushed or moved), as far as the driver knows.
    pub async fn tag_pushed(&self, repo: &RepoName, tag: &TagName) -> AppResult<Option<u64>> {
        Ok(self
            .storage
            .stat(&keys::v2_tag(repo, tag))
            .await?
            .and_then(|s| s.modified))
    }

    /// A small blob's bytes (an image config), if the repository may serve it and it is at
    /// most `max` bytes.
    pub async fn small_blob(&self, repo: &RepoName, d: &Digest, max: u64) -> AppResult<Option<Bytes>> {
        match self.blob(repo, d).await? {
            Some(size) if size <= max => Ok(self.storage.get(&keys::blob(d)).await?),
            _ => Ok(None),
        }
    }

    pub async fn untag(&self, repo: &RepoName, tag: &TagName) -> AppResult<bool> {
        Ok(self.storage.delete(&keys::v2_tag(repo, tag)).await?)
    }

    /// Digests of every complete manifest the repository holds, tagged or not.
    pub async fn manifest_digests(&self, repo: &RepoName) -> AppResult<Vec<Digest>> {
        let mut out = Vec::new();
        for key in self.storage.walk(&keys::repository(repo)).await? {
            if let Some((_, keys::RepositoryEntry::RevisionType(d))) = keys::parse_repository_key(&key) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Tags in ASCII order.
    pub async fn tags(&self, repo: &RepoName) -> AppResult<Vec<String>> {
        Ok(self.storage.list(&keys::v2_tags(repo)).await?)
    }

    pub async fn add_referrer(&self, repo: &RepoName, subject: &Digest, desc: &Descriptor) -> AppResult<()> {
        let k = keys::referrer(repo, subject, &desc.digest);
        self.storage.put(&k, serde_json::to_vec(desc)?.into()).await?;
        Ok(())
    }

    pub async fn remove_referrer(&self, repo: &RepoName, subject: &Digest, d: &Digest) -> AppResult<()> {
        self.storage.delete(&keys::referrer(repo, subject, d)).await?;
        Ok(())
    }

    /// Descriptors of the manifests whose subject is `subject`, in digest order.
    pub async fn referrers(&self, repo: &RepoName, subject: &Digest) -> AppResult<Vec<Descriptor>> {
        let dir = keys::referrers(repo, subject);
        let mut out = Vec::new();
        for name in self.storage.list(&dir).await? {
            if let Some(raw) = self.storage.get(&format!("{dir}/{name}")).await? {
                if let Ok(desc) = serde_json::from_slice::<Descriptor>(&raw) {
                    // A referrer whose manifest was deleted is dropped from the list.
                    if self.has_manifest(repo, &desc.digest).await? {
                        out.push(desc);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Every repository name with data in storage, in order (for the catalog when there is no
    /// index).
    pub async fn names(&self) -> AppResult<Vec<RepoName>> {
        let mut names = BTreeSet::new();
        for entry in self.storage.list(keys::REPOSITORIES).await? {
            if let Some(name) = keys::parse_repository(&entry) {
                names.insert(name);
            }
        }
        Ok(names.into_iter().collect())
    }
}

/// `<tag-or-digest>` of a manifest URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(TagName),
    Digest(Digest),
}

impl Reference {
    pub fn parse(raw: &str) -> AppResult<Reference> {
        if raw.contains(':') {
            Ok(Reference::Digest(raw.parse()?))
        } else {
            TagName::parse(raw)
                .map(Reference::Tag)
                .map_err(|e| e.as_kind(Kind::TagInvalid))
        }
    }
}
