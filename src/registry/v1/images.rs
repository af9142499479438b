//! v1 images in the registry's storage: json, ancestry, layer (a link into the blob store) and
//! the payload checksum, with the upload state machine of the v1 push:
//! `PUT json` (in progress) -> `PUT layer` -> `PUT checksum` (complete). An image is served only
//! once complete, so a half-pushed image or a half-written layer is never visible.
//!
//! Keys under `images/<id>/`: `json`, `ancestry`, `layer` (`{"digest","size"}`), `_checksum`,
//! `_inprogress` (the uploader), `_owner` (the first uploader), `_repos/<repo>` (membership).

use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::{AppError, AppResult};
use crate::names::{ImageId, RepoName};
use crate::storage::{keys, pump, Storage};
use bytes::Bytes;
use futures::Stream;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageState {
    Missing,
    InProgress { uploader: String },
    Complete,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerLink {
    pub digest: Digest,
    pub size: u64,
}

/// What `GET /v1/images/{id}/json` answers with.
pub struct ImageJson {
    pub json: Bytes,
    pub size: Option<u64>,
    pub checksum: Option<String>,
}

#[derive(Clone)]
pub struct Images {
    storage: Storage,
    /// Image ids with a write in progress: one writer per image at a time, so two uploads of
    /// one id cannot mix one's layer with the other's checksum, nor race to own it.
    writing: Arc<Mutex<HashSet<ImageId>>>,
}

/// The turn of one request to write an image; the id is free again when it is dropped.
struct WriteTurn {
    writing: Arc<Mutex<HashSet<ImageId>>>,
    id: ImageId,
}

impl Drop for WriteTurn {
    fn drop(&mut self) {
        if let Ok(mut ids) = self.writing.lock() {
            ids.remove(&self.id);
        }
    }
}

impl Images {
    pub fn new(storage: Storage) -> Images {
        Images {
            storage,
            writing: Arc::default(),
        }
    }

    /// The only way to change an image: a second writer of the same id is refused (409) rather
    /// than queued, since a v1 client never writes one image twice at once.
    fn turn(&self, id: &ImageId) -> AppResult<WriteTurn> {
        let mut ids = self
            .writing
            .lock()
            .map_err(|_| AppError::internal("image writers lock poisoned"))?;
        if !ids.insert(id.clone()) {
            return Err(AppError::conflict("Image is being written by another request"));
        }
        Ok(WriteTurn {
            writing: self.writing.clone(),
            id: id.clone(),
        })
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub async fn state(&self, id: &ImageId) -> AppResult<ImageState> {
        if let Some(who) = self.storage.get(&keys::image(id, "_inprogress")).await? {
            return Ok(ImageState::InProgress {
                uploader: String::from_utf8_lossy(&who).into_owned(),
            });
        }
        if self.storage.exists(&keys::image(id, "json")).await? {
            Ok(ImageState::Complete)
        } else {
            Ok(ImageState::Missing)
        }
    }

    /// Whether an image's json is stored at all (complete or not).
    pub async fn exists(&self, id: &ImageId) -> AppResult<bool> {
        Ok(self.storage.exists(&keys::image(id, "json")).await?)
    }

    pub async fn owner(&self, id: &ImageId) -> AppResult<Option<String>> {
        Ok(self
            .storage
            .get(&keys::image(id, "_owner"))
            .await?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    pub async fn is_member(&self, id: &ImageId, repo: &RepoName) -> AppResult<bool> {
        Ok(self.storage.exists(&keys::image_repo(id, repo)).await?)
    }

    /// Some of the repositories this image belongs to (at most `limit`, in no order) and
    /// whether that is all of them: access checks stop at the first readable one, and a base
    /// image can belong to thousands.
    pub async fn some_member_repos(&self, id: &ImageId, limit: usize) -> AppResult<(Vec<RepoName>, bool)> {
        let (names, complete) = self.storage.list_some(&keys::image_repos(id), limit).await?;
        Ok((names.iter().filter_map(|n| RepoName::from_flat(n)).collect(), complete))
    }

    /// Every repository this image belongs to.
    pub async fn member_repos(&self, id: &ImageId) -> AppResult<Vec<RepoName>> {
        let names = self.storage.list(&keys::image_repos(id)).await?;
        Ok(names.iter().filter_map(|n| RepoName::from_flat(n)).collect())
    }

    pub async fn add_repo(&self, id: &ImageId, repo: &RepoName) -> AppResult<()> {
        let marker = keys::image_repo(id, repo);
        if !self.storage.exists(&marker).await? {
            self.storage.put(&marker, Bytes::new()).await?;
        }
        Ok(())
    }

    pub async fn remove_repo(&self, id: &ImageId, repo: &RepoName) -> AppResult<()> {
        self.storage.delete(&keys::image_repo(id, repo)).await?;
        Ok(())
    }

    /// Step 1 of a push. `parent` has been checked by the caller (exists, readable).
    pub async fn put_json(&self, id: &ImageId, body: Bytes, parent: Option<&ImageId>, uploader: &str) -> AppResult<()> {
        let _turn = self.turn(id)?;
        match self.state(id).await? {
            ImageState::Complete => return Err(AppError::conflict("Image already exists")),
            ImageState::InProgress { uploader: u } if u != uploader => {
                return Err(AppError::conflict(
                    "Image already exists (being uploaded by another user)",
                ))
            }
            _ => {}
        }
        let ancestry = match parent {
            Some(p) => {
                let raw = self
                    .storage
                    .get(&keys::image(p, "ancestry"))
                    .await?
                    .ok_or_else(|| AppError::bad_request("Image depends on a non existing parent"))?;
                let mut chain: Vec<String> = serde_json::from_slice(&raw)?;
                chain.insert(0, id.to_string());
                chain
            }
            None => vec![id.to_string()],
        };
        // Mark in progress first: from here until `PUT checksum` the image is never served.
        self.storage
            .put(
                &keys::image(id, "_inprogress"),
                Bytes::copy_from_slice(uploader.as_bytes()),
            )
            .await?;
        self.storage.delete(&keys::image(id, "_checksum")).await?;
        self.storage.delete(&keys::image(id, "layer")).await?;
        self.storage.put(&keys::image(id, "json"), body).await?;
        self.storage
            .put(&keys::image(id, "ancestry"), serde_json::to_vec(&ancestry)?.into())
            .await?;
        if !self.storage.exists(&keys::image(id, "_owner")).await? {
            self.storage
                .put(&keys::image(id, "_owner"), Bytes::copy_from_slice(uploader.as_bytes()))
                .await?;
        }
        Ok(())
    }

    /// Step 2: streams the layer into the blob store while computing both its content digest
    /// and the payload checksum `sha256(json + "\n" + layer)`.
    pub async fn put_layer<S, E>(&self, id: &ImageId, uploader: &str, mut body: S) -> AppResult<LayerLink>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<AppError>,
    {
        let _turn = self.turn(id)?;
        match self.state(id).await? {
            ImageState::Missing => return Err(AppError::not_found("Image not found")),
            ImageState::Complete => return Err(AppError::conflict("Image already exists")),
            ImageState::InProgress { uploader: u } if u != uploader => {
                return Err(AppError::conflict("Image is being uploaded by another user"))
            }
            ImageState::InProgress { .. } => {}
        }
        let json = self
            .storage
            .get(&keys::image(id, "json"))
            .await?
            .ok_or_else(|| AppError::not_found("Image not found"))?;
        let mut prefix = json.to_vec();
        prefix.push(b'\n');
        let mut blob = self
            .storage
            .begin_blob(vec![
                Hasher::new(Algorithm::Sha256),
                Hasher::with_prefix(Algorithm::Sha256, &prefix),
            ])
            .await?;
        pump(blob.sink.as_mut(), &mut body).await.map_err(Into::into)?;
        let mut written = blob.finish().await?;
        let mut hashes = std::mem::take(&mut written.hashers).into_iter().map(Hasher::finish);
        let (Some(content), Some(payload)) = (hashes.next(), hashes.next()) else {
            return Err(AppError::internal("hashers missing"));
        };
        let size = written.written;
        written.commit(&self.storage, &content).await?;
        // The layer link is a reference to the blob: pinned, as every one is (`storage::pins`).
        let _pin = self.storage.pins().reference(&content).await;
        let link = LayerLink { digest: content, size };
        self.storage
            .put(&keys::image(id, "_checksum"), payload.to_string().into())
            .await?;
        self.storage
            .put(&keys::image(id, "layer"), serde_json::to_vec(&link)?.into())
            .await?;
        Ok(link)
    }

    /// Step 3: the client's payload checksum must equal the one computed while streaming.
    pub async fn put_checksum(
        &self,
        id: &ImageId,
        uploader: &str,
        payload: Option<&str>,
        tarsum: Option<&str>,
    ) -> AppResult<()> {
        let Some(payload) = payload else {
            return Err(AppError::new(
                crate::error::Kind::PreconditionFailed,
                "Missing X-Docker-Checksum-Payload header: upgrade to Docker >= 0.10",
            ));
        };
        let payload = payload.trim();
        if payload.is_empty() {
            return Err(AppError::bad_request("Missing Image's checksum"));
        }
        let _turn = self.turn(id)?;
        match self.state(id).await? {
            ImageState::Missing => return Err(AppError::not_found("Image not found")),
            ImageState::Complete => return Err(AppError::conflict("Cannot set this image checksum")),
            ImageState::InProgress { uploader: u } if u != uploader => {
                return Err(AppError::conflict("Image is being uploaded by another user"))
            }
            ImageState::InProgress { .. } => {}
        }
        let computed = self.storage.get(&keys::image(id, "_checksum")).await?;
        let Some(computed) = computed else {
            return Err(AppError::bad_request("Image layer is not uploaded yet"));
        };
        if computed.as_ref() != payload.as_bytes() {
            // Leave the image in progress: it is never served and must be pushed again.
            self.storage.delete(&keys::image(id, "layer")).await?;
            self.storage.delete(&keys::image(id, "_checksum")).await?;
            return Err(AppError::bad_request("Checksum mismatch"));
        }
        if let Some(t) = tarsum {
            self.storage
                .put(&keys::image(id, "_tarsum"), Bytes::copy_from_slice(t.as_bytes()))
                .await?;
        }
        self.storage.delete(&keys::image(id, "_inprogress")).await?;
        Ok(())
    }

    /// Fails unless complete: 404 when missing, 400 while being uploaded (the client re-pushes).
    pub async fn require_complete(&self, id: &ImageId) -> AppResult<()> {
        match self.state(id).await? {
            ImageState::Complete => Ok(()),
            ImageState::Missing => Err(AppError::not_found("Image not found")),
            ImageState::InProgress { .. } => Err(AppError::bad_request("Image is being uploaded, retry later")),
        }
    }

    pub async fn json(&self, id: &ImageId) -> AppResult<ImageJson> {
        self.require_complete(id).await?;
        let json = self
            .storage
            .get(&keys::image(id, "json"))
            .await?
            .ok_or_else(|| AppError::not_found("Image not found"))?;
        let size = self.layer(id).await?.map(|l| l.size);
        let checksum = self
            .storage
            .get(&keys::image(id, "_checksum"))
            .await?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        Ok(ImageJson { json, size, checksum })
    }

    pub async fn layer(&self, id: &ImageId) -> AppResult<Option<LayerLink>> {
        match self.storage.get(&keys::image(id, "layer")).await? {
            Some(raw) => Ok(Some(serde_json::from_slice(&raw)?)),
            None => Ok(None),
        }
    }

    pub async fn ancestry(&self, id: &ImageId) -> AppResult<Vec<ImageId>> {
        let raw = self
            .storage
            .get(&keys::image(id, "ancestry"))
            .await?
            .ok_or_else(|| AppError::not_found("Image not found"))?;
        let ids: Vec<String> = serde_json::from_slice(&raw)?;
        ids.iter().map(|s| ImageId::parse(s)).collect()
    }

    pub async fn ancestry_raw(&self, id: &ImageId) -> AppResult<Bytes> {
        self.storage
            .get(&keys::image(id, "ancestry"))
            .await?
            .ok_or_else(|| AppError::not_found("Image not found"))
    }
}

/// The two keys of a v1 image json the server interprets: `id` must match the URL, `parent`
/// names the image it builds on.
pub fn parse_image_json(id: &ImageId, body: &[u8]) -> AppResult<Option<ImageId>> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| AppError::bad_request("Invalid JSON"))?;
    let obj = value.as_object().ok_or_else(|| AppError::bad_request("Invalid JSON"))?;
    let json_id = obj
        .get("id")
        .ok_or_else(|| AppError::bad_request("Missing key `id' in JSON"))?;
    if json_id.as_str() != Some(id.as_str()) {
        return Err(AppError::bad_request("JSON data contains invalid id"));
    }
    match obj.get("parent") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(p)) if p.is_empty() => Ok(None),
        Some(serde_json::Value::String(p)) => ImageId::parse(p)
            .map(Some)
            .map_err(|_| AppError::bad_request("Invalid parent ID")),
        Some(_) => Err(AppError::bad_request("Invalid parent ID")),
    }
}
