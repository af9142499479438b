//! v1 repositories in the registry's storage: tags, tag metadata and which images belong to the
//! repository. Keys under `repositories/<name>/`: `_tags/<tag>` (image id), `_tagjson/<tag>`,
//! `_images/<id>` (membership, mirrored by `images/<id>/_repos/<repo>`).

use super::images::Images;
use crate::clock::now_secs;
use crate::error::{AppError, AppResult};
use crate::names::{ImageId, RepoName, TagName};
use crate::storage::keys;
use bytes::Bytes;
use std::collections::BTreeMap;

#[derive(Clone)]
pub struct V1Repositories {
    images: Images,
}

impl V1Repositories {
    pub fn new(images: Images) -> V1Repositories {
        V1Repositories { images }
    }

    fn storage(&self) -> &crate::storage::Storage {
        self.images.storage()
    }

    /// A repository exists in the registry once something was stored under it.
    pub async fn exists(&self, repo: &RepoName) -> AppResult<bool> {
        Ok(self.storage().exists(&keys::repository(repo)).await?)
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

    pub async fn get(&self, repo: &RepoName, tag: &TagName) -> AppResult<Option<ImageId>> {
        match self.storage().get(&keys::v1_tag(repo, tag)).await? {
            Some(id) => Ok(ImageId::parse(&String::from_utf8_lossy(&id)).ok()),
            None => Ok(None),
        }
    }

    /// Points `tag` at a complete image and makes the image and its ancestors members of the
    /// repository (that is what lets the repository's readers read them).
    pub async fn put(&self, repo: &RepoName, tag: &TagName, id: &ImageId, user_agent: &str) -> AppResult<()> {
        let ancestry = self.images.ancestry(id).await?;
        for member in &ancestry {
            self.add_member(repo, member).await?;
        }
        self.storage()
            .put(
                &keys::v1_tag_json(repo, tag),
                serde_json::to_vec(&tag_json(user_agent))?.into(),
            )
            .await?;
        self.storage()
            .put(&keys::v1_tag(repo, tag), Bytes::copy_from_slice(id.as_str().as_bytes()))
            .await?;
        Ok(())
    }

    pub async fn add_member(&self, repo: &RepoName, id: &ImageId) -> AppResult<()> {
        let marker = keys::v1_member(repo, id);
        if !self.storage().exists(&marker).await? {
            self.images.add_repo(id, repo).await?;
            self.storage().put(&marker, Bytes::new()).await?;
        }
        Ok(())
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
    pub async fn delete_repo(&self, repo: &RepoName) -> AppResult<bool> {
        for id in self.members(repo).await? {
            self.images.remove_repo(&id, repo).await?;
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
