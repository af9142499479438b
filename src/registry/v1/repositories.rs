//! v1 repositories in the registry's storage: tags, tag metadata and which images belong to the
//! repository. Keys under `repositories/<name>/`: `_tags/<tag>` (image id), `_tagjson/<tag>`,
//! `_images/<id>` (membership: holds the key of the member copy's owner, mirrored by
//! `images/<id>/<owner>/_repos/<repo>`). A repository holds at most one copy of an id: v1
//! clients name images by id alone, and a repository's readers read the copy it holds.

use super::images::Images;
use crate::clock::now_secs;
use crate::error::{AppError, AppResult};
use crate::names::{ImageCopy, ImageId, Owner, RepoName, TagName};
use crate::storage::keys;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// How many locks membership changes are spread over (by image id).
const STRIPES: usize = 64;

#[derive(Clone)]
pub struct V1Repositories {
    images: Images,
    /// Membership changes of one id are made one at a time: a repository holds at most one copy
    /// of an id, so two pushes racing to put theirs there must not both win. Striped by id, held
    /// only for a look and a write or two.
    member_locks: Arc<[tokio::sync::Mutex<()>]>,
}

impl V1Repositories {
    pub fn new(images: Images) -> V1Repositories {
        V1Repositories {
            images,
            member_locks: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    fn member_lock(&self, id: &ImageId) -> &tokio::sync::Mutex<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut h);
        &self.member_locks[(h.finish() % STRIPES as u64) as usize]
    }

    fn storage(&self) -> &crate::storage::Storage {
        self.images.storage()
    }

    /// A repository exists in the registry once something was stored under it.
    pub async fn exists(&self, repo: &RepoName) -> AppResult<bool> {
        Ok(self.storage().exists(&keys::repository(repo)).await?)
    }

    /// The tag names only (one listing, no reads), in order.
    pub async fn tag_names(&self, repo: &RepoName) -> AppResult<Vec<String>> {
        Ok(self.storage().list(&keys::v1_tags(repo)).await?)
    }

    pub async fn list(&self, repo: &RepoName) -> AppResult<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for tag in self.storage().list(&keys::v1_tags(repo)).await? {
            let Ok(name) = TagName::parse(&tag) else { continue };
            if let Some(id) = self.storage().get(&keys::v1_tag(repo, &name)).await? {
                out.insert(tag, String::from_utf8_lossy(&id).into_owned());
            }
        }
        Ok(out)
    }

    /// When the tag was last written, as far as the driver knows.
    pub async fn tag_pushed(&self, repo: &RepoName, tag: &TagName) -> AppResult<Option<u64>> {
        Ok(self
            .storage()
            .stat(&keys::v1_tag(repo, tag))
            .await?
            .and_then(|s| s.modified))
    }

    /// The image id a tag points at, as stored (what `list` shows).
    pub async fn get_raw(&self, repo: &RepoName, tag: &TagName) -> AppResult<Option<String>> {
        let found = self.storage().get(&keys::v1_tag(repo, tag)).await?;
        Ok(found.map(|id| String::from_utf8_lossy(&id).into_owned()))
    }

    pub async fn get(&self, repo: &RepoName, tag: &TagName) -> AppResult<Option<ImageId>> {
        match self.storage().get(&keys::v1_tag(repo, tag)).await? {
            Some(id) => Ok(ImageId::parse(&String::from_utf8_lossy(&id)).ok()),
            None => Ok(None),
        }
    }

    /// Points `tag` at a complete image and makes the image and its ancestors (the very copies
    /// it was built on) members of the repository: that is what lets the repository's readers
    /// read them.
    pub async fn put(&self, repo: &RepoName, tag: &TagName, image: &ImageCopy, user_agent: &str) -> AppResult<()> {
        for member in &self.images.lineage(image).await? {
            self.add_member(repo, member).await?;
        }
        self.storage()
            .put(
                &keys::v1_tag_json(repo, tag),
                serde_json::to_vec(&tag_json(user_agent))?.into(),
            )
            .await?;
        self.storage()
            .put(
                &keys::v1_tag(repo, tag),
                Bytes::copy_from_slice(image.id.as_str().as_bytes()),
            )
            .await?;
        Ok(())
    }

    /// Makes `copy` the repository's image of its id. 409 if the repository already holds
    /// another stored copy of that id (whoever asks can read the repository: no secret told).
    pub async fn add_member(&self, repo: &RepoName, copy: &ImageCopy) -> AppResult<()> {
        let _one_at_a_time = self.member_lock(&copy.id).lock().await;
        let marker = keys::v1_member(repo, &copy.id);
        if let Some(held) = self.member_owner(repo, &copy.id).await? {
            if held == copy.owner {
                return Ok(());
            }
            let other = ImageCopy::new(&copy.id, &held);
            if self.images.exists(&other).await? {
                return Err(AppError::conflict(format!(
                    "Image already exists: {repo} holds another image with id {}",
                    copy.id
                )));
            }
            // The copy it named is gone (damage `skiff check` reports): the new one replaces it.
            self.images.remove_repo(&other, repo).await?;
        }
        self.images.add_repo(copy, repo).await?;
        self.storage().put(&marker, Bytes::from(copy.owner.key())).await?;
        Ok(())
    }

    /// The owner of the copy of `id` the repository holds, as its membership names it.
    async fn member_owner(&self, repo: &RepoName, id: &ImageId) -> AppResult<Option<Owner>> {
        let raw = self.storage().get(&keys::v1_member(repo, id)).await?;
        Ok(raw.and_then(|r| Owner::from_key(&String::from_utf8_lossy(&r))))
    }

    pub async fn members(&self, repo: &RepoName) -> AppResult<Vec<ImageId>> {
        let names = self.storage().list(&keys::v1_members(repo)).await?;
        Ok(names.iter().filter_map(|n| ImageId::parse(n).ok()).collect())
    }

    pub async fn delete(&self, repo: &RepoName, tag: &TagName) -> AppResult<()> {
        let removed = self.storage().delete(&keys::v1_tag(repo, tag)).await?;
        self.storage().delete(&keys::v1_tag_json(repo, tag)).await?;
        if removed {
            Ok(())
        } else {
            Err(AppError::not_found(format!("Tag not found: {tag}")))
        }
    }

    pub async fn tag_json(&self, repo: &RepoName, tag: &TagName) -> AppResult<serde_json::Value> {
        match self.storage().get(&keys::v1_tag_json(repo, tag)).await? {
            Some(raw) => Ok(serde_json::from_slice(&raw)?),
            None => Ok(tag_json("")),
        }
    }

    /// Removes the repository's tags and memberships; the images stay for garbage collection.
    /// The image copies the repository holds.
    pub async fn member_copies(&self, repo: &RepoName) -> AppResult<Vec<ImageCopy>> {
        let mut out = Vec::new();
        for id in self.members(repo).await? {
            if let Some(owner) = self.member_owner(repo, &id).await? {
                out.push(ImageCopy::new(&id, &owner));
            }
        }
        Ok(out)
    }

    pub async fn delete_repo(&self, repo: &RepoName) -> AppResult<bool> {
        for copy in self.member_copies(repo).await? {
            self.images.remove_repo(&copy, repo).await?;
        }
        Ok(self.storage().delete_all(&keys::repository(repo)).await?)
    }
}

/// Tag metadata from the pushing client's User-Agent
/// (`docker/1.3.2 go/go1.3.3 git-commit/x kernel/3.16.0 os/linux arch/amd64`).
fn tag_json(user_agent: &str) -> serde_json::Value {
    let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
    for part in user_agent.split_whitespace() {
        if let Some((k, v)) = part.split_once('/') {
            fields.insert(k, v);
        }
    }
    serde_json::json!({
        "last_update": now_secs(),
        "docker_version": fields.get("docker"),
        "docker_go_version": fields.get("go"),
        "arch": fields.get("arch").copied().unwrap_or("amd64"),
        "os": fields.get("os").copied().unwrap_or("linux"),
        "kernel": fields.get("kernel"),
    })
}
