//! Every tag of a repository, of both protocols, as one list: what each points at (v2: a
//! manifest digest, v1: an image id), when it was pushed, and on demand its size and platforms.
//! Built on the v1 and v2 repositories' own reads (no key handling here).

use super::v1::images::Images;
use super::v1::repositories::V1Repositories;
use super::v2::manifest::{self, ManifestKind};
use super::v2::repositories::{Reference, V2Repositories};
use crate::digest::Digest;
use crate::error::AppResult;
use crate::names::{RepoName, TagName};
use serde::Serialize;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    V1,
    V2,
}

impl Protocol {
    pub fn parse(raw: &str) -> Option<Protocol> {
        match raw {
            "v1" => Some(Protocol::V1),
            "v2" => Some(Protocol::V2),
            _ => None,
        }
    }
}

/// One tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagRef {
    pub name: String,
    pub protocol: Protocol,
    /// v2: the manifest digest; v1: the image id.
    pub digest: String,
    /// Seconds since the epoch of the tag's last write.
    pub pushed: Option<u64>,
}

/// What a listing shows beyond the reference.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TagDetail {
    /// v2: the manifest's media type; v1: none.
    pub media_type: Option<String>,
    /// Bytes of the distinct blobs the tag pulls: an image's config and layers; for an index,
    /// those of every child manifest stored in the repository, each blob once; for v1, the
    /// image's layer and its ancestors'.
    pub size: u64,
    /// `os/arch[/variant]`: from the config of an image manifest, from the entries of an index
    /// (attestations, `unknown/unknown`, left out), from the image json for v1.
    pub platforms: Vec<String>,
}

/// The repository's tags, v1 and v2, in (name, protocol) order.
pub async fn list(v2: &V2Repositories, v1: &V1Repositories, repo: &RepoName) -> AppResult<Vec<TagRef>> {
    let all = names(v2, v1, repo).await?;
    resolve(v2, v1, repo, &all).await
}

/// The repository's tag names, v1 and v2, in (name, protocol) order, without reading what they
/// point at (two directory listings): enough to page through thousands of tags and then
/// [`resolve`] one page.
pub async fn names(v2: &V2Repositories, v1: &V1Repositories, repo: &RepoName) -> AppResult<Vec<(String, Protocol)>> {
    let mut out: Vec<(String, Protocol)> = v2.tags(repo).await?.into_iter().map(|n| (n, Protocol::V2)).collect();
    out.extend(v1.tag_names(repo).await?.into_iter().map(|n| (n, Protocol::V1)));
    out.sort();
    Ok(out)
}

/// What each named tag points at and when it was pushed; a tag removed meanwhile (or whose
/// name is not a tag's) is left out.
pub async fn resolve(
    v2: &V2Repositories,
    v1: &V1Repositories,
    repo: &RepoName,
    wanted: &[(String, Protocol)],
) -> AppResult<Vec<TagRef>> {
    let mut out = Vec::with_capacity(wanted.len());
    for (name, protocol) in wanted {
        let Ok(tag) = TagName::parse(name) else { continue };
        let found = match protocol {
            Protocol::V2 => match v2.resolve_tag(repo, &tag).await? {
                Some(d) => Some((d.to_string(), v2.tag_pushed(repo, &tag).await?)),
                None => None,
            },
            Protocol::V1 => match v1.get_raw(repo, &tag).await? {
                Some(id) => Some((id, v1.tag_pushed(repo, &tag).await?)),
                None => None,
            },
        };
        if let Some((digest, pushed)) = found {
            out.push(TagRef {
                name: name.clone(),
                protocol: *protocol,
                digest,
                pushed,
            });
        }
    }
    Ok(out)
}

/// Largest image config read for its platform.
const MAX_CONFIG: u64 = 1 << 20;

/// Size, platforms and media type of a tag's target.
pub async fn detail(v2: &V2Repositories, images: &Images, repo: &RepoName, tag: &TagRef) -> AppResult<TagDetail> {
    match tag.protocol {
        Protocol::V2 => v2_detail(v2, repo, &tag.digest).await,
        Protocol::V1 => v1_detail(images, repo, &tag.digest).await,
    }
}

async fn v2_detail(v2: &V2Repositories, repo: &RepoName, digest: &str) -> AppResult<TagDetail> {
    let mut out = TagDetail::default();
    let Ok(d) = digest.parse::<Digest>() else {
        return Ok(out);
    };
    let Some(stored) = v2.manifest(repo, &Reference::Digest(d)).await? else {
        return Ok(out);
    };
    out.media_type = Some(stored.media_type.clone());
    // A manifest that no longer parses (it did when pushed) shows no size rather than failing
    // the whole listing; `skiff check` reports it.
    let Ok(parsed) = manifest::parse(&stored.body, &stored.media_type) else {
        return Ok(out);
    };
    let mut blobs: BTreeSet<Digest> = parsed.blobs.iter().cloned().collect();
    match parsed.kind {
        ManifestKind::Image => {
            if let (Some(config), _) = manifest::outline(&stored.body) {
                if let Some(raw) = v2.small_blob(repo, &config.digest, MAX_CONFIG).await? {
                    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&raw) {
                        out.platforms.extend(platform(&json, "architecture"));
                    }
                }
            }
        }
        ManifestKind::Index => {
            let (_, children) = manifest::outline(&stored.body);
            for child in &children {
                if let Some(p) = child.platform.as_ref().and_then(|p| platform(p, "architecture")) {
                    if p != "unknown/unknown" && !out.platforms.contains(&p) {
                        out.platforms.push(p);
                    }
                }
                if let Some(m) = v2.manifest(repo, &Reference::Digest(child.digest.clone())).await? {
                    if let Ok(c) = manifest::parse(&m.body, &m.media_type) {
                        blobs.extend(c.blobs);
                    }
                }
            }
        }
        ManifestKind::Schema1 => {}
    }
    for b in &blobs {
        out.size += v2.blob(repo, b).await?.unwrap_or(0);
    }
    Ok(out)
}

async fn v1_detail(images: &Images, repo: &RepoName, id: &str) -> AppResult<TagDetail> {
    let mut out = TagDetail::default();
    let Ok(id) = crate::names::ImageId::parse(id) else {
        return Ok(out);
    };
    let Some(copy) = images.member(repo, &id).await? else {
        return Ok(out);
    };
    for c in images.lineage(&copy).await.unwrap_or_default() {
        if let Some(layer) = images.layer(&c).await? {
            out.size += layer.size;
        }
    }
    if let Ok(json) = images.json(&copy).await {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&json.json) {
            out.platforms.extend(platform(&v, "architecture"));
        }
    }
    Ok(out)
}

/// `os/arch[/variant]` from an image config, an image json or an index entry's platform.
fn platform(v: &serde_json::Value, arch_key: &str) -> Option<String> {
    let os = v["os"].as_str().filter(|s| !s.is_empty())?;
    let arch = v[arch_key].as_str().filter(|s| !s.is_empty())?;
    Some(match v["variant"].as_str().filter(|s| !s.is_empty()) {
        Some(variant) => format!("{os}/{arch}/{variant}"),
        None => format!("{os}/{arch}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_read_like_docker_writes_them() {
        let v = serde_json::json!({"os": "linux", "architecture": "arm64", "variant": "v8"});
        assert_eq!(platform(&v, "architecture").as_deref(), Some("linux/arm64/v8"));
        let v = serde_json::json!({"os": "linux", "architecture": "amd64"});
        assert_eq!(platform(&v, "architecture").as_deref(), Some("linux/amd64"));
        assert_eq!(platform(&serde_json::json!({"os": "linux"}), "architecture"), None);
    }
}
