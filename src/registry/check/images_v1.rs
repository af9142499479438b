//! The v1 side: image copies (json, parent, ancestry and lineage, layer, payload checksum),
//! tags and memberships.

use super::*;

/// A copy's `_lineage`: the owner key of each id of its ancestry, itself first.
type Lineage = Vec<String>;

impl Checker<'_> {
    pub(super) async fn v1_images(&mut self) -> io::Result<()> {
        let mut leaves: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for key in self.storage.walk(keys::IMAGES).await? {
            match keys::parse_image_key(&key) {
                Some((id, owner, leaf)) => {
                    leaves
                        .entry((id.to_string(), owner.to_string()))
                        .or_default()
                        .insert(leaf.to_string());
                }
                None => self.note(Kind::Stray, key, "not an entry of an image's copy: never served"),
            }
        }
        let mut complete = Vec::new();
        for ((raw_id, raw_owner), leaves) in &leaves {
            let dir = format!("{}/{raw_id}/{raw_owner}", keys::IMAGES);
            let Ok(id) = ImageId::parse(raw_id) else {
                self.note(Kind::Stray, dir, "not an image id: never served");
                continue;
            };
            let Some(owner) = Owner::from_key(raw_owner) else {
                self.note(Kind::Stray, dir, "not an owner's copy of the image: never served");
                continue;
            };
            let copy = ImageCopy::new(&id, &owner);
            self.report.counts.v1_images += 1;
            // The state as the registry reads it, not from the listing: a listing taken while a
            // push runs may show `json` without the `_inprogress` created just before it.
            let state = match self.images.state(&copy).await.map_err(io_err)? {
                ImageState::InProgress { .. } => {
                    // A push not finished (or interrupted): never served, resumable from PUT json.
                    self.report.counts.v1_in_progress += 1;
                    State::InProgress
                }
                ImageState::Complete => {
                    complete.push(copy.clone());
                    State::Complete
                }
                ImageState::Missing => {
                    // `_inprogress` is a copy's first entry and goes only once json is there,
                    // and neither json nor images are ever deleted: this is damage.
                    self.problem(
                        Kind::V1Image,
                        dir,
                        format!(
                            "has entries ({}) but neither json nor _inprogress: not served, and cannot be pushed again",
                            leaves.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    );
                    State::Broken
                }
            };
            self.image_states.insert(copy, state);
        }
        for copy in complete {
            self.v1_image(&copy).await?;
        }
        Ok(())
    }

    /// The state of a copy: complete as the walk saw it (images never go back), else a fresh
    /// look: it may have been pushed, or finished its push, since.
    pub(super) async fn image_state(&self, copy: &ImageCopy) -> io::Result<Option<State>> {
        match self.image_states.get(copy) {
            Some(State::Complete) => return Ok(Some(State::Complete)),
            Some(State::Broken) => return Ok(Some(State::Broken)),
            _ => {}
        }
        Ok(match self.images.state(copy).await.map_err(io_err)? {
            ImageState::Missing => None,
            ImageState::InProgress { .. } => Some(State::InProgress),
            ImageState::Complete => Some(State::Complete),
        })
    }

    /// A JSON list of strings stored at `key`: `None` when absent, the parse error when it is
    /// something else.
    async fn string_list(&self, key: &str) -> io::Result<Option<Result<Vec<String>, String>>> {
        Ok(self
            .storage
            .get(key)
            .await?
            .map(|raw| serde_json::from_slice::<Vec<String>>(&raw).map_err(|e| e.to_string())))
    }

    /// A complete copy: json, parent, ancestry and lineage, layer, payload checksum (checked
    /// while hashing).
    pub(super) async fn v1_image(&mut self, copy: &ImageCopy) -> io::Result<()> {
        let json_key = keys::image(copy, "json");
        let Some(json) = self.storage.get(&json_key).await? else {
            return Ok(());
        };
        let parent = match parse_image_json(&copy.id, &json) {
            Ok(p) => Some(p),
            Err(e) => {
                self.problem(Kind::V1Image, &json_key, format!("json: {}", e.message));
                None
            }
        };
        let ancestry_key = keys::image(copy, "ancestry");
        let ancestry = match self.string_list(&ancestry_key).await? {
            None => {
                self.problem(Kind::V1Image, &ancestry_key, "complete image without ancestry");
                None
            }
            Some(Ok(a)) => Some(a),
            Some(Err(e)) => {
                self.problem(
                    Kind::V1Image,
                    &ancestry_key,
                    format!("ancestry is not a JSON list of ids: {e}"),
                );
                None
            }
        };
        // Without an ancestry there is nothing for a lineage to match.
        let lineage = match &ancestry {
            Some(_) => self.lineage(copy).await?,
            None => None,
        };
        if let Some(parent) = parent {
            self.v1_parent(copy, parent.as_ref(), ancestry.as_ref(), lineage.as_ref())
                .await?;
        }
        let layer_key = keys::image(copy, "layer");
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
        let checksum_key = keys::image(copy, "_checksum");
        match self.storage.get(&checksum_key).await? {
            None => self.problem(Kind::V1Image, checksum_key, "complete image without a payload checksum"),
            Some(raw) => match String::from_utf8_lossy(&raw).parse::<Digest>() {
                Ok(sum) if sum.algorithm() == Algorithm::Sha256 => {
                    self.layer_users
                        .entry(link.digest)
                        .or_default()
                        .push((copy.clone(), sum));
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

    /// The copy's lineage when it is one: every entry an owner's key, the first its own.
    /// Anything else is reported (a tag of this image cannot be pushed, nor can an image built
    /// on it), and `None` returned. Whether it matches the ancestry is the parent check's.
    async fn lineage(&mut self, copy: &ImageCopy) -> io::Result<Option<Lineage>> {
        let key = keys::image(copy, "_lineage");
        let why = match self.string_list(&key).await? {
            None => "complete image without a lineage (whose copies its ancestry names)".to_string(),
            Some(Err(e)) => format!("lineage is not a JSON list of owners: {e}"),
            Some(Ok(l)) if l.first() != Some(&copy.owner.key()) => {
                format!("lineage starts with {:?}, not with the copy's own owner", l.first())
            }
            Some(Ok(l)) => match l.iter().find(|o| Owner::from_key(o).is_none()) {
                Some(bad) => format!("lineage holds {bad:?}, which names no owner"),
                None => return Ok(Some(l)),
            },
        };
        self.problem(Kind::V1Image, key, why);
        Ok(None)
    }

    /// The parent the json names: stored (the copy the lineage names), complete, and the copy's
    /// ancestry and lineage are its own id and owner followed by the parent's.
    async fn v1_parent(
        &mut self,
        copy: &ImageCopy,
        parent: Option<&ImageId>,
        ancestry: Option<&Vec<String>>,
        lineage: Option<&Lineage>,
    ) -> io::Result<()> {
        let json_key = keys::image(copy, "json");
        let mut expected = (vec![copy.id.to_string()], vec![copy.owner.key()]);
        if let Some(p) = parent {
            let named = lineage
                .and_then(|l| l.get(1))
                .and_then(|o| Owner::from_key(o))
                .map(|o| ImageCopy::new(p, &o));
            let Some(theirs) = named else {
                // Which copy it was built on is unknown: only whether any copy of the parent is
                // stored.
                if self.images.copies(p).await.map_err(io_err)?.is_empty() {
                    self.problem(Kind::V1Image, &json_key, format!("parent {p} does not exist"));
                }
                if lineage.is_some() {
                    self.problem(
                        Kind::V1Image,
                        keys::image(copy, "_lineage"),
                        format!("lineage names no copy of the parent {p}"),
                    );
                }
                return Ok(());
            };
            match self.image_state(&theirs).await? {
                None => self.problem(Kind::V1Image, &json_key, format!("parent {theirs} does not exist")),
                Some(State::Complete) => {}
                Some(_) => self.problem(
                    Kind::V1Image,
                    &json_key,
                    format!("parent {theirs} is not complete: pulls of this image fail"),
                ),
            }
            let their_ancestry = self.string_list(&keys::image(&theirs, "ancestry")).await?;
            let their_lineage = self.string_list(&keys::image(&theirs, "_lineage")).await?;
            match (their_ancestry, their_lineage) {
                (Some(Ok(a)), Some(Ok(l))) => {
                    expected.0.extend(a);
                    expected.1.extend(l);
                }
                // The parent's own check reports it; its chain is unknown here.
                _ => return Ok(()),
            }
        }
        if let Some(a) = ancestry {
            if a != &expected.0 {
                self.problem(
                    Kind::V1Image,
                    keys::image(copy, "ancestry"),
                    format!(
                        "ancestry ({} ids, starting {}) is not the image followed by its parent's ancestry ({} ids)",
                        a.len(),
                        a.first().map(String::as_str).unwrap_or("nothing"),
                        expected.0.len()
                    ),
                );
                return Ok(());
            }
        }
        if let Some(l) = lineage {
            if l != &expected.1 {
                self.problem(
                    Kind::V1Image,
                    keys::image(copy, "_lineage"),
                    "lineage is not the copy's owner followed by its parent's lineage",
                );
            }
        }
        Ok(())
    }

    /// The copy of `id` that `repo`'s membership names, if it names one.
    async fn member_copy(&self, repo: &RepoName, id: &ImageId) -> io::Result<Option<ImageCopy>> {
        let raw = self.storage.get(&keys::v1_member(repo, id)).await?;
        Ok(raw
            .and_then(|r| Owner::from_key(&String::from_utf8_lossy(&r)))
            .map(|o| ImageCopy::new(id, &o)))
    }

    pub(super) async fn v1_tag(&mut self, repo: &RepoName, tag: &TagName, key: &str) -> io::Result<()> {
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
        // The tag's readers read the copy the repository holds.
        let why = match self.member_copy(repo, &id).await? {
            Some(copy) => match self.image_state(&copy).await? {
                Some(State::Complete) => return Ok(()),
                None => "does not exist",
                Some(_) => "is not complete",
            },
            None if self.images.copies(&id).await.map_err(io_err)?.is_empty() => "does not exist",
            None => "is not a member of the repository",
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

    /// A membership names a stored copy of the image.
    pub(super) async fn v1_member(&mut self, repo: &RepoName, id: &ImageId, key: &str) -> io::Result<()> {
        self.report.counts.v1_members += 1;
        let Some(raw) = self.storage.get(key).await? else {
            return Ok(());
        };
        let what = match Owner::from_key(&String::from_utf8_lossy(&raw)) {
            Some(owner) => {
                let copy = ImageCopy::new(id, &owner);
                if self.image_state(&copy).await?.is_some() {
                    return Ok(());
                }
                format!("{repo} lists image {copy} as a member, which does not exist")
            }
            None => format!(
                "{repo} lists image {id} as a member but names no copy of it ({:?}): not served",
                String::from_utf8_lossy(&raw)
            ),
        };
        if self.unchanged(key, &raw).await? {
            self.problem(Kind::V1Member, key, what);
        }
        Ok(())
    }
}
