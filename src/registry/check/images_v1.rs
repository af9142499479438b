//! The v1 side: images (json, parent, ancestry, layer, payload checksum) and tags.

use super::*;

impl Checker<'_> {
    pub(super) async fn v1_images(&mut self) -> io::Result<()> {
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
    pub(super) async fn image_state(&self, id: &ImageId) -> io::Result<Option<State>> {
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
    pub(super) async fn v1_image(&mut self, id: &ImageId) -> io::Result<()> {
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
}
