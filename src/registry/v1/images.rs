//! v1 images in the registry's storage: json, ancestry, layer (a link into the blob store) and
//! the payload checksum, with the upload state machine of the v1 push:
//! `PUT json` (in progress) -> `PUT layer` -> `PUT checksum` (complete). An image is served only
//! once complete, so a half-pushed image or a half-written layer is never visible.
//!
//! Image ids are global, but each owner has their own copy of an id ([`ImageCopy`]): a caller
//! who may not read someone's image must find its id free, so they push their own copy. Which
//! copy a request means is the gate's decision (`auth::images`); here every operation names one.
//! A writer only ever writes their own copy, whose owner is therefore fixed by its first json.
//!
//! Keys under `images/<id>/<owner>/`: `json`, `ancestry`, `_lineage` (the owner of each id of
//! the ancestry: which copies the image is built on), `layer` (`{"digest","size"}`),
//! `_checksum`, `_inprogress` (the uploader), `_repos/<repo>` (membership).

use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::{AppError, AppResult, Kind};
use crate::names::{ImageCopy, ImageId, Owner, RepoName};
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
    /// Copies with a write in progress: one writer per copy at a time, so two uploads of one
    /// copy cannot mix one's layer with the other's checksum. Per copy, not per id: a write of
    /// one owner's copy must not make another's write of the same id wait or fail, or the id's
    /// existence would show.
    writing: Arc<Mutex<HashSet<ImageCopy>>>,
}

/// The turn of one request to write a copy; the copy is free again when it is dropped.
struct WriteTurn {
    writing: Arc<Mutex<HashSet<ImageCopy>>>,
    copy: ImageCopy,
}

impl Drop for WriteTurn {
    fn drop(&mut self) {
        if let Ok(mut copies) = self.writing.lock() {
            copies.remove(&self.copy);
        }
    }
}

/// The steps of a push, for the answer a write that may not happen gets.
#[derive(Clone, Copy)]
enum Step {
    Json,
    Layer,
    Checksum,
}

impl Images {
    pub fn new(storage: Storage) -> Images {
        Images {
            storage,
            writing: Arc::default(),
        }
    }

    /// The only way to change a copy: a second writer of the same copy is refused (409) rather
    /// than queued, since a v1 client never writes one image twice at once.
    fn turn(&self, copy: &ImageCopy) -> AppResult<WriteTurn> {
        let mut copies = self
            .writing
            .lock()
            .map_err(|_| AppError::internal("image writers lock poisoned"))?;
        if !copies.insert(copy.clone()) {
            return Err(AppError::conflict("Image is being written by another request"));
        }
        Ok(WriteTurn {
            writing: self.writing.clone(),
            copy: copy.clone(),
        })
    }

    /// `uploader`'s turn to do `step` on `target`, or the answer when they may not: only their
    /// own copy is ever written, and only while it is being pushed (a complete image is
    /// immutable). `target` is someone else's copy when the uploader may read it: the image
    /// exists for them, and they are told so, as before copies.
    async fn write_turn(&self, target: &ImageCopy, uploader: &Owner, step: Step) -> AppResult<WriteTurn> {
        let own = &target.owner == uploader;
        // Never queue behind, nor even look at, a foreign copy's writer: it is not ours to write.
        let turn = if own { Some(self.turn(target)?) } else { None };
        let state = self.state(target).await?;
        let refusal = match (step, state) {
            (Step::Json, ImageState::Complete) => Some((Kind::Conflict, "Image already exists")),
            (Step::Json, ImageState::InProgress { .. }) if !own => {
                Some((Kind::Conflict, "Image already exists (being uploaded by another user)"))
            }
            (Step::Json, ImageState::Missing) if !own => Some((Kind::Conflict, "Image already exists")),
            (Step::Json, _) => None,
            (_, ImageState::Missing) => Some((Kind::NotFound, "Image not found")),
            (Step::Layer, ImageState::Complete) => Some((Kind::Conflict, "Image already exists")),
            (Step::Checksum, ImageState::Complete) => Some((Kind::Conflict, "Cannot set this image checksum")),
            (_, ImageState::InProgress { .. }) if !own => {
                Some((Kind::Conflict, "Image is being uploaded by another user"))
            }
            (_, ImageState::InProgress { .. }) => None,
        };
        match (refusal, turn) {
            (None, Some(turn)) => Ok(turn),
            (Some((kind, message)), _) => Err(AppError::new(kind, message)),
            (None, None) => Err(AppError::conflict("Image already exists")),
        }
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The owners of the stored copies of `id` (sorted by key; entries that name no owner are
    /// not copies and are left to `skiff check`).
    pub async fn copies(&self, id: &ImageId) -> AppResult<Vec<Owner>> {
        let names = self.storage.list(&keys::image_copies(id)).await?;
        Ok(names.iter().filter_map(|n| Owner::from_key(n)).collect())
    }

    pub async fn state(&self, copy: &ImageCopy) -> AppResult<ImageState> {
        if let Some(who) = self.storage.get(&keys::image(copy, "_inprogress")).await? {
            return Ok(ImageState::InProgress {
                uploader: String::from_utf8_lossy(&who).into_owned(),
            });
        }
        if self.storage.exists(&keys::image(copy, "json")).await? {
            Ok(ImageState::Complete)
        } else {
            Ok(ImageState::Missing)
        }
    }

    /// Whether a copy's json is stored at all (complete or not).
    pub async fn exists(&self, copy: &ImageCopy) -> AppResult<bool> {
        Ok(self.storage.exists(&keys::image(copy, "json")).await?)
    }

    /// The copy of `id` that `repo` holds, if it holds one and that copy exists.
    pub async fn member(&self, repo: &RepoName, id: &ImageId) -> AppResult<Option<ImageCopy>> {
        let Some(raw) = self.storage.get(&keys::v1_member(repo, id)).await? else {
            return Ok(None);
        };
        let Some(owner) = Owner::from_key(&String::from_utf8_lossy(&raw)) else {
            return Ok(None);
        };
        let copy = ImageCopy::new(id, &owner);
        Ok(self.exists(&copy).await?.then_some(copy))
    }

    /// Some of the repositories this copy belongs to (at most `limit`, in no order) and
    /// whether that is all of them: access checks stop at the first readable one, and a base
    /// image can belong to thousands.
    pub async fn some_member_repos(&self, copy: &ImageCopy, limit: usize) -> AppResult<(Vec<RepoName>, bool)> {
        let (names, complete) = self.storage.list_some(&keys::image_repos(copy), limit).await?;
        Ok((names.iter().filter_map(|n| RepoName::from_flat(n)).collect(), complete))
    }

    /// Every repository this copy belongs to.
    pub async fn member_repos(&self, copy: &ImageCopy) -> AppResult<Vec<RepoName>> {
        let names = self.storage.list(&keys::image_repos(copy)).await?;
        Ok(names.iter().filter_map(|n| RepoName::from_flat(n)).collect())
    }

    pub async fn add_repo(&self, copy: &ImageCopy, repo: &RepoName) -> AppResult<()> {
        let marker = keys::image_repo(copy, repo);
        if !self.storage.exists(&marker).await? {
            self.storage.put(&marker, Bytes::new()).await?;
        }
        Ok(())
    }

    pub async fn remove_repo(&self, copy: &ImageCopy, repo: &RepoName) -> AppResult<()> {
        self.storage.delete(&keys::image_repo(copy, repo)).await?;
        Ok(())
    }

    /// Step 1 of a push, into `target` (the uploader's own copy, or the copy they read: then
    /// refused). `parent` is the copy of the parent the uploader reads (checked by the caller).
    pub async fn put_json(
        &self,
        target: &ImageCopy,
        body: Bytes,
        parent: Option<&ImageCopy>,
        uploader: &Owner,
    ) -> AppResult<()> {
        let _turn = self.write_turn(target, uploader, Step::Json).await?;
        let mut lineage = vec![target.clone()];
        if let Some(p) = parent {
            let theirs = self.lineage(p).await.map_err(|e| match e.kind {
                Kind::NotFound => AppError::bad_request("Image depends on a non existing parent"),
                _ => e,
            })?;
            lineage.extend(theirs);
        }
        let ancestry: Vec<&str> = lineage.iter().map(|c| c.id.as_str()).collect();
        let owners: Vec<String> = lineage.iter().map(|c| c.owner.key()).collect();
        // Mark in progress first: from here until `PUT checksum` the image is never served.
        self.storage
            .put(
                &keys::image(target, "_inprogress"),
                Bytes::copy_from_slice(uploader.as_str().as_bytes()),
            )
            .await?;
        self.storage.delete(&keys::image(target, "_checksum")).await?;
        self.storage.delete(&keys::image(target, "layer")).await?;
        self.storage.put(&keys::image(target, "json"), body).await?;
        self.storage
            .put(&keys::image(target, "_lineage"), serde_json::to_vec(&owners)?.into())
            .await?;
        self.storage
            .put(&keys::image(target, "ancestry"), serde_json::to_vec(&ancestry)?.into())
            .await?;
        Ok(())
    }

    /// Step 2: streams the layer into the blob store while computing both its content digest
    /// and the payload checksum `sha256(json + "\n" + layer)`.
    pub async fn put_layer<S, E>(&self, target: &ImageCopy, uploader: &Owner, mut body: S) -> AppResult<LayerLink>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<AppError>,
    {
        let _turn = self.write_turn(target, uploader, Step::Layer).await?;
        let json = self
            .storage
            .get(&keys::image(target, "json"))
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
            .put(&keys::image(target, "_checksum"), payload.to_string().into())
            .await?;
        self.storage
            .put(&keys::image(target, "layer"), serde_json::to_vec(&link)?.into())
            .await?;
        Ok(link)
    }

    /// Undoes step 2 (a push refused after the layer was stored, over its namespace's quota):
    /// the copy has no layer, so it is incomplete; the blob is left to garbage collection.
    pub async fn drop_layer(&self, copy: &ImageCopy) -> AppResult<()> {
        self.storage.delete(&keys::image(copy, "layer")).await?;
        self.storage.delete(&keys::image(copy, "_checksum")).await?;
        Ok(())
    }

    /// Step 3: the client's payload checksum must equal the one computed while streaming.
    pub async fn put_checksum(
        &self,
        target: &ImageCopy,
        uploader: &Owner,
        payload: Option<&str>,
        tarsum: Option<&str>,
    ) -> AppResult<()> {
        let Some(payload) = payload else {
            return Err(AppError::new(
                Kind::PreconditionFailed,
                "Missing X-Docker-Checksum-Payload header: upgrade to Docker >= 0.10",
            ));
        };
        let payload = payload.trim();
        if payload.is_empty() {
            return Err(AppError::bad_request("Missing Image's checksum"));
        }
        let _turn = self.write_turn(target, uploader, Step::Checksum).await?;
        let computed = self.storage.get(&keys::image(target, "_checksum")).await?;
        let Some(computed) = computed else {
            return Err(AppError::bad_request("Image layer is not uploaded yet"));
        };
        if computed.as_ref() != payload.as_bytes() {
            // Leave the image in progress: it is never served and must be pushed again.
            self.storage.delete(&keys::image(target, "layer")).await?;
            self.storage.delete(&keys::image(target, "_checksum")).await?;
            return Err(AppError::bad_request("Checksum mismatch"));
        }
        if let Some(t) = tarsum {
            self.storage
                .put(&keys::image(target, "_tarsum"), Bytes::copy_from_slice(t.as_bytes()))
                .await?;
        }
        self.storage.delete(&keys::image(target, "_inprogress")).await?;
        Ok(())
    }

    /// Fails unless complete: 404 when missing, 400 while being uploaded (the client re-pushes).
    pub async fn require_complete(&self, copy: &ImageCopy) -> AppResult<()> {
        match self.state(copy).await? {
            ImageState::Complete => Ok(()),
            ImageState::Missing => Err(AppError::not_found("Image not found")),
            ImageState::InProgress { .. } => Err(AppError::bad_request("Image is being uploaded, retry later")),
        }
    }

    pub async fn json(&self, copy: &ImageCopy) -> AppResult<ImageJson> {
        self.require_complete(copy).await?;
        let json = self
            .storage
            .get(&keys::image(copy, "json"))
            .await?
            .ok_or_else(|| AppError::not_found("Image not found"))?;
        let size = self.layer(copy).await?.map(|l| l.size);
        let checksum = self
            .storage
            .get(&keys::image(copy, "_checksum"))
            .await?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        Ok(ImageJson { json, size, checksum })
    }

    pub async fn layer(&self, copy: &ImageCopy) -> AppResult<Option<LayerLink>> {
        match self.storage.get(&keys::image(copy, "layer")).await? {
            Some(raw) => Ok(Some(serde_json::from_slice(&raw)?)),
            None => Ok(None),
        }
    }

    /// The copies this image is built on, itself first: its ancestry, each id with the owner
    /// `_lineage` records for it. The chain is fixed when the json is pushed (each parent is
    /// the copy its uploader read then), so a repository tagging it holds exactly these copies.
    pub async fn lineage(&self, copy: &ImageCopy) -> AppResult<Vec<ImageCopy>> {
        let found = self
            .storage
            .get_many(vec![keys::image(copy, "ancestry"), keys::image(copy, "_lineage")])
            .await?;
        let (Some(Some(ancestry)), Some(lineage)) = (found.first(), found.get(1)) else {
            return Err(AppError::not_found("Image not found"));
        };
        let ids: Vec<String> = serde_json::from_slice(ancestry)?;
        let owners: Vec<String> = match lineage {
            Some(raw) => serde_json::from_slice(raw)?,
            None => Vec::new(),
        };
        if owners.len() != ids.len() {
            return Err(AppError::internal(format!(
                "image {copy}: its lineage does not match its ancestry (see `skiff check`)"
            )));
        }
        ids.iter()
            .zip(&owners)
            .map(|(id, owner)| {
                let owner = Owner::from_key(owner)
                    .ok_or_else(|| AppError::internal(format!("image {copy}: lineage names no owner: {owner:?}")))?;
                Ok(ImageCopy::new(&ImageId::parse(id)?, &owner))
            })
            .collect()
    }

    pub async fn ancestry_raw(&self, copy: &ImageCopy) -> AppResult<Bytes> {
        self.storage
            .get(&keys::image(copy, "ancestry"))
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
