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

use super::digest::Digest;
use super::manifest::Descriptor;
use super::names::{RepoName, TagName};
use crate::error::AppResult;
use crate::storage::{blocking, Storage};
use bytes::Bytes;

fn key(repo: &RepoName, leaf: &str) -> String {
    format!("repositories/{repo}/{leaf}")
}

fn revision(repo: &RepoName, d: &Digest) -> String {
    key(
        repo,
        &format!("_manifests/revisions/{}/{}", d.algorithm().name(), d.hex()),
    )
}

fn flat(d: &Digest) -> String {
    format!("{}-{}", d.algorithm().name(), d.hex())
}

/// A manifest as stored.
pub struct StoredManifest {
    pub digest: Digest,
    pub media_type: String,
    pub body: Bytes,
}

#[derive(Clone)]
pub struct Repositories {
    storage: Storage,
}

impl Repositories {
    pub fn new(storage: Storage) -> Repositories {
        Repositories { storage }
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub async fn exists(&self, repo: &RepoName) -> AppResult<bool> {
        Ok(self.storage.exists(&format!("repositories/{repo}")).await?)
    }

    fn layer_key(repo: &RepoName, d: &Digest) -> String {
        key(repo, &format!("_layers/{}/{}", d.algorithm().name(), d.hex()))
    }

    /// The blob's size if this repository may serve it and its bytes are present.
    pub async fn blob(&self, repo: &RepoName, d: &Digest) -> AppResult<Option<u64>> {
        if !self.storage.exists(&Self::layer_key(repo, d)).await? {
            return Ok(None);
        }
        Ok(self.storage.blob_size(d).await?)
    }

    pub async fn link_blob(&self, repo: &RepoName, d: &Digest) -> AppResult<()> {
        let k = Self::layer_key(repo, d);
        if !self.storage.exists(&k).await? {
            self.storage.put(&k, Vec::new()).await?;
        }
        Ok(())
    }

    pub async fn unlink_blob(&self, repo: &RepoName, d: &Digest) -> AppResult<bool> {
        Ok(self.storage.delete(&Self::layer_key(repo, d)).await?)
    }

    pub async fn put_manifest(&self, repo: &RepoName, d: &Digest, media_type: &str, body: Bytes) -> AppResult<()> {
        let (s, base, mt) = (self.storage.clone(), revision(repo, d), media_type.to_string());
        blocking(move || {
            // data before type: `type` marks the revision complete.
            s.put_sync(&format!("{base}/data"), &body)?;
            s.put_sync(&format!("{base}/type"), mt.as_bytes())
        })
        .await?;
        Ok(())
    }

    pub async fn has_manifest(&self, repo: &RepoName, d: &Digest) -> AppResult<bool> {
        Ok(self.storage.exists(&format!("{}/type", revision(repo, d))).await?)
    }

    /// A manifest by tag or digest, read in one blocking call (this is the hottest read path).
    pub async fn manifest(&self, repo: &RepoName, reference: &Reference) -> AppResult<Option<StoredManifest>> {
        let (s, repo, reference) = (self.storage.clone(), repo.clone(), reference.clone());
        Ok(blocking(move || {
            let digest = match reference {
                Reference::Digest(d) => d,
                Reference::Tag(t) => match s.get_sync(&key(&repo, &format!("_manifests/tags/{t}")))? {
                    Some(raw) => match String::from_utf8_lossy(&raw).parse::<Digest>() {
                        Ok(d) => d,
                        Err(_) => return Ok(None),
                    },
                    None => return Ok(None),
                },
            };
            let base = revision(&repo, &digest);
            let Some(media_type) = s.get_sync(&format!("{base}/type"))? else {
                return Ok(None);
            };
            let Some(body) = s.get_sync(&format!("{base}/data"))? else {
                return Ok(None);
            };
            Ok(Some(StoredManifest {
                digest,
                media_type: String::from_utf8_lossy(&media_type).into_owned(),
                body: Bytes::from(body),
            }))
        })
        .await?)
    }

    pub async fn delete_manifest(&self, repo: &RepoName, d: &Digest) -> AppResult<bool> {
        let base = revision(repo, d);
        if !self.storage.exists(&format!("{base}/type")).await? {
            return Ok(false);
        }
        for tag in self.tags(repo).await? {
            if let Ok(t) = TagName::parse(&tag) {
                if self.resolve_tag(repo, &t).await?.as_ref() == Some(d) {
                    self.untag(repo, &t).await?;
                }
            }
        }
        self.storage.delete(&format!("{base}/type")).await?;
        self.storage.delete_all(&base).await?;
        Ok(true)
    }

    pub async fn tag(&self, repo: &RepoName, tag: &TagName, d: &Digest) -> AppResult<()> {
        self.storage
            .put(
                &key(repo, &format!("_manifests/tags/{tag}")),
                d.to_string().into_bytes(),
            )
            .await?;
        Ok(())
    }

    pub async fn resolve_tag(&self, repo: &RepoName, tag: &TagName) -> AppResult<Option<Digest>> {
        let raw = self.storage.get(&key(repo, &format!("_manifests/tags/{tag}"))).await?;
        Ok(raw.and_then(|r| String::from_utf8_lossy(&r).parse().ok()))
    }

    pub async fn untag(&self, repo: &RepoName, tag: &TagName) -> AppResult<bool> {
        Ok(self
            .storage
            .delete(&key(repo, &format!("_manifests/tags/{tag}")))
            .await?)
    }

    /// Tags in ASCII order.
    pub async fn tags(&self, repo: &RepoName) -> AppResult<Vec<String>> {
        Ok(self.storage.list(&key(repo, "_manifests/tags")).await?)
    }

    pub async fn add_referrer(&self, repo: &RepoName, subject: &Digest, desc: &Descriptor) -> AppResult<()> {
        let k = key(repo, &format!("_referrers/{}/{}", flat(subject), flat(&desc.digest)));
        self.storage.put(&k, serde_json::to_vec(desc)?).await?;
        Ok(())
    }

    pub async fn remove_referrer(&self, repo: &RepoName, subject: &Digest, d: &Digest) -> AppResult<()> {
        self.storage
            .delete(&key(repo, &format!("_referrers/{}/{}", flat(subject), flat(d))))
            .await?;
        Ok(())
    }

    /// Descriptors of the manifests whose subject is `subject`, in digest order.
    pub async fn referrers(&self, repo: &RepoName, subject: &Digest) -> AppResult<Vec<Descriptor>> {
        let dir = key(repo, &format!("_referrers/{}", flat(subject)));
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

    /// Every repository name that has a directory in storage, in order (for the catalog when
    /// there is no index).
    pub async fn names(&self) -> AppResult<Vec<RepoName>> {
        let s = self.storage.clone();
        Ok(blocking(move || {
            let mut out = Vec::new();
            walk(&s.root().join("repositories"), String::new(), &mut out);
            out.sort();
            Ok(out)
        })
        .await?)
    }
}

/// A repository directory is one whose children include `_`-prefixed entries.
fn walk(dir: &std::path::Path, prefix: String, out: &mut Vec<RepoName>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut is_repo = false;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('_') {
            is_repo = true;
        } else if e.path().is_dir() {
            let p = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            walk(&e.path(), p, out);
        }
    }
    if is_repo {
        if let Ok(r) = RepoName::parse(&prefix) {
            out.push(r);
        }
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
                .map_err(|e| crate::error::AppError::new(crate::error::Kind::TagInvalid, e.message))
        }
    }
}
