//! The v2 side: tags and manifests (what they reference, and the sizes they give).

use super::*;

impl Checker<'_> {
    pub(super) async fn v2_tag(
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
            .manifest(repo, &crate::registry::v2::repositories::Reference::Digest(d.clone()))
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
    pub(super) async fn manifest(
        &mut self,
        repo: &RepoName,
        d: &Digest,
        links: &HashSet<(RepoName, Digest)>,
    ) -> io::Result<()> {
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
}

/// The sizes an image manifest's descriptors give (config and layers).
pub(super) fn descriptor_sizes(body: &[u8]) -> HashMap<Digest, u64> {
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
