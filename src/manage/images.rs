//! What an image is made of, for a repository's reader: a v2 manifest (an image's layers,
//! config summary, history and platform; an index's children with their platforms) and a v1
//! image with its ancestry. Only manifests, image configs and v1 image jsons are read, all
//! small JSON (a config over [`MAX_CONFIG`] is not read); never a layer.

use super::Viewer;
use crate::digest::Digest;
use crate::error::{AppError, AppResult};
use crate::names::{ImageId, RepoName};
use crate::registry::tags::{self, Protocol, TagRef};
use crate::registry::v2::manifest::{self, Descriptor, ManifestKind};
use crate::registry::v2::repositories::Reference;
use crate::state::AppState;
use serde::Serialize;
use serde_json::Value;

/// Largest image config read.
const MAX_CONFIG: u64 = 1 << 20;
/// Schema1 layers are Docker's gzipped tars.
const SCHEMA1_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ManifestDetail {
    Image(Box<ImageDetail>),
    Index(IndexDetail),
}

#[derive(Debug, Serialize)]
pub struct ImageDetail {
    pub digest: String,
    pub media_type: String,
    /// Bytes of its distinct config and layers.
    pub size: u64,
    /// `os/arch[/variant]`, from the config; `None` for an artifact without one.
    pub platform: Option<String>,
    pub created: Option<u64>,
    pub config: ConfigSummary,
    pub layers: Vec<Layer>,
    pub history: Vec<History>,
}

#[derive(Debug, Default, Serialize)]
pub struct ConfigSummary {
    /// The config blob (none for schema1, whose config is inline).
    pub digest: Option<String>,
    pub size: Option<u64>,
    pub cmd: Option<Value>,
    pub entrypoint: Option<Value>,
    pub env: Option<Value>,
    pub labels: Option<Value>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Layer {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

#[derive(Debug, Serialize)]
pub struct History {
    pub created: Option<u64>,
    pub created_by: Option<String>,
    pub empty_layer: bool,
    pub comment: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct IndexDetail {
    pub digest: String,
    pub media_type: String,
    /// Bytes of the distinct blobs of every child stored in the repository.
    pub size: u64,
    pub manifests: Vec<Child>,
}

#[derive(Debug, Serialize)]
pub struct Child {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub platform: Option<String>,
    /// A build attestation (BuildKit's `attestation-manifest`, platform `unknown/unknown`),
    /// not a runnable image.
    pub attestation: bool,
}

#[derive(Debug, Serialize)]
pub struct V1Image {
    pub id: String,
    pub parent: Option<String>,
    pub created: Option<u64>,
    /// Bytes of its own layer.
    pub size: Option<u64>,
    pub checksum: Option<String>,
    pub cmd: Option<Value>,
    /// Itself first, then each parent down to the base.
    pub ancestry: Vec<Ancestor>,
}

#[derive(Debug, Serialize)]
pub struct Ancestor {
    pub id: String,
    pub size: Option<u64>,
    pub created: Option<u64>,
    pub created_by: Option<String>,
}

/// `os/arch[/variant]` from an image config or an index entry's platform.
fn platform(v: &Value) -> Option<String> {
    let os = v["os"].as_str().filter(|s| !s.is_empty())?;
    let arch = v["architecture"].as_str().filter(|s| !s.is_empty())?;
    Some(match v["variant"].as_str().filter(|s| !s.is_empty()) {
        Some(variant) => format!("{os}/{arch}/{variant}"),
        None => format!("{os}/{arch}"),
    })
}

fn time(v: &Value) -> Option<u64> {
    v.as_str().and_then(crate::clock::parse_rfc3339)
}

fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

/// A JSON value, or `None` when it is absent or null.
fn present(v: &Value) -> Option<Value> {
    (!v.is_null()).then(|| v.clone())
}

/// The command a layer was made by, as `docker history` shows it.
fn command(v: &Value) -> Option<String> {
    match v {
        Value::Array(parts) => Some(
            parts
                .iter()
                .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(" "),
        )
        .filter(|s| !s.is_empty()),
        other => text(other),
    }
}

fn summary(config: &Value) -> ConfigSummary {
    let c = &config["config"];
    ConfigSummary {
        digest: None,
        size: None,
        cmd: present(&c["Cmd"]),
        entrypoint: present(&c["Entrypoint"]),
        env: present(&c["Env"]),
        labels: present(&c["Labels"]),
        working_dir: text(&c["WorkingDir"]),
        user: text(&c["User"]),
    }
}

fn history(config: &Value) -> Vec<History> {
    config["history"]
        .as_array()
        .map(|h| {
            h.iter()
                .map(|e| History {
                    created: time(&e["created"]),
                    created_by: text(&e["created_by"]),
                    empty_layer: e["empty_layer"].as_bool().unwrap_or(false),
                    comment: text(&e["comment"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `GET /api/v1/repositories/NAME/-/manifests/REF` (REF: a tag or a digest).
pub async fn manifest(state: &AppState, viewer: &Viewer, name: &str, reference: &str) -> AppResult<ManifestDetail> {
    let repo = super::tags::readable(state, viewer, name).await?;
    let reference = Reference::parse(reference)?;
    let stored = state
        .v2_repos
        .manifest(&repo, &reference)
        .await?
        .ok_or_else(|| AppError::not_found("Manifest not found"))?;
    let digest = stored.digest.to_string();
    let parsed = manifest::parse(&stored.body, &stored.media_type)
        .map_err(|e| AppError::internal(format!("{repo}@{digest} no longer parses: {e}")))?;
    // Size as the tag list shows it: each distinct blob once, as stored.
    let at = TagRef {
        name: String::new(),
        protocol: Protocol::V2,
        digest: digest.clone(),
        pushed: None,
    };
    let size = tags::detail(&state.v2_repos, &state.images, &repo, &at).await?.size;
    let body: Value = serde_json::from_slice(&stored.body)?;
    match parsed.kind {
        ManifestKind::Index => Ok(ManifestDetail::Index(IndexDetail {
            digest,
            media_type: stored.media_type,
            size,
            manifests: manifest::outline(&stored.body).1.iter().map(child).collect(),
        })),
        ManifestKind::Image => {
            let config = manifest::outline(&stored.body).0;
            image(state, &repo, (digest, stored.media_type, size), config, &body).await
        }
        ManifestKind::Schema1 => schema1(state, &repo, digest, stored.media_type, size, &body).await,
    }
}

fn child(d: &Descriptor) -> Child {
    let platform = d.platform.as_ref().and_then(platform);
    let reference_type = d
        .annotations
        .as_ref()
        .and_then(|a| a.get("vnd.docker.reference.type"))
        .and_then(Value::as_str);
    Child {
        digest: d.digest.to_string(),
        media_type: d.media_type.clone(),
        size: d.size,
        attestation: reference_type == Some("attestation-manifest") || platform.as_deref() == Some("unknown/unknown"),
        platform,
    }
}

async fn image(
    state: &AppState,
    repo: &RepoName,
    (digest, media_type, size): (String, String, u64),
    config_desc: Option<Descriptor>,
    body: &Value,
) -> AppResult<ManifestDetail> {
    let layers: Vec<Layer> = body["layers"]
        .as_array()
        .map(|ls| {
            ls.iter()
                .filter_map(|l| serde_json::from_value::<Descriptor>(l.clone()).ok())
                .map(|l| Layer {
                    digest: l.digest.to_string(),
                    size: l.size,
                    media_type: l.media_type,
                })
                .collect()
        })
        .unwrap_or_default();
    let config: Value = match &config_desc {
        Some(c) => match state.v2_repos.small_blob(repo, &c.digest, MAX_CONFIG).await? {
            Some(raw) => serde_json::from_slice(&raw).unwrap_or(Value::Null),
            None => Value::Null,
        },
        None => Value::Null,
    };
    let mut summary = summary(&config);
    summary.digest = config_desc.as_ref().map(|c| c.digest.to_string());
    summary.size = config_desc.as_ref().map(|c| c.size);
    Ok(ManifestDetail::Image(Box::new(ImageDetail {
        digest,
        media_type,
        size,
        platform: platform(&config),
        created: time(&config["created"]),
        config: summary,
        layers,
        history: history(&config),
    })))
}

/// Docker's legacy schema1: layers listed top first with the v1 json of each in `history`.
async fn schema1(
    state: &AppState,
    repo: &RepoName,
    digest: String,
    media_type: String,
    size: u64,
    body: &Value,
) -> AppResult<ManifestDetail> {
    let compat: Vec<Value> = body["history"]
        .as_array()
        .map(|h| {
            h.iter()
                .filter_map(|e| e["v1Compatibility"].as_str())
                .filter_map(|s| serde_json::from_str(s).ok())
                .collect()
        })
        .unwrap_or_default();
    let mut layers = Vec::new();
    for l in body["fsLayers"].as_array().into_iter().flatten().rev() {
        let Some(d) = l["blobSum"].as_str().and_then(|s| s.parse::<Digest>().ok()) else {
            continue;
        };
        layers.push(Layer {
            size: state.v2_repos.blob(repo, &d).await?.unwrap_or(0),
            digest: d.to_string(),
            media_type: SCHEMA1_LAYER.to_string(),
        });
    }
    let top = compat.first().cloned().unwrap_or(Value::Null);
    let history = compat
        .iter()
        .rev()
        .map(|c| History {
            created: time(&c["created"]),
            created_by: command(&c["container_config"]["Cmd"]),
            empty_layer: c["throwaway"].as_bool().unwrap_or(false),
            comment: text(&c["comment"]),
        })
        .collect();
    Ok(ManifestDetail::Image(Box::new(ImageDetail {
        digest,
        media_type,
        size,
        platform: platform(&top),
        created: time(&top["created"]),
        config: summary(&top),
        layers,
        history,
    })))
}

/// `GET /api/v1/repositories/NAME/-/images/ID`: a v1 image the repository holds.
pub async fn v1_image(state: &AppState, viewer: &Viewer, name: &str, id: &str) -> AppResult<V1Image> {
    let repo = super::tags::readable(state, viewer, name).await?;
    let absent = || AppError::not_found("Image not found");
    let id = ImageId::parse(id).map_err(|_| absent())?;
    let copy = state.images.member(&repo, &id).await?.ok_or_else(absent)?;
    let own = state.images.json(&copy).await?;
    let json: Value = serde_json::from_slice(&own.json).unwrap_or(Value::Null);
    let mut ancestry = Vec::new();
    for c in state.images.lineage(&copy).await? {
        let (size, meta) = if c == copy {
            (own.size, json.clone())
        } else {
            match state.images.json(&c).await {
                Ok(j) => (j.size, serde_json::from_slice(&j.json).unwrap_or(Value::Null)),
                // An ancestor still listed but not readable shows its id only.
                Err(_) => (None, Value::Null),
            }
        };
        ancestry.push(Ancestor {
            id: c.id.to_string(),
            size: size.or_else(|| meta["Size"].as_u64()),
            created: time(&meta["created"]),
            created_by: command(&meta["container_config"]["Cmd"]),
        });
    }
    Ok(V1Image {
        id: id.to_string(),
        parent: text(&json["parent"]),
        created: time(&json["created"]),
        size: own.size,
        checksum: own.checksum,
        cmd: present(&json["config"]["Cmd"]),
        ancestry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configs_summarise_like_docker_inspect() {
        let config = json!({
            "architecture": "arm64", "os": "linux", "variant": "v8",
            "created": "2024-02-29T13:14:15.5Z",
            "config": {"Cmd": ["sh"], "Env": ["A=1"], "WorkingDir": "/app", "User": ""},
            "history": [
                {"created": "2024-02-29T13:14:15Z", "created_by": "/bin/sh -c #(nop) ADD file:x in /"},
                {"created_by": "ENV A=1", "empty_layer": true, "comment": "buildkit"}
            ]
        });
        assert_eq!(platform(&config).as_deref(), Some("linux/arm64/v8"));
        assert_eq!(time(&config["created"]), Some(1_709_212_455));
        let s = summary(&config);
        assert_eq!(s.cmd, Some(json!(["sh"])));
        assert_eq!((s.working_dir.as_deref(), s.user), (Some("/app"), None));
        assert_eq!(s.entrypoint, None);
        let h = history(&config);
        assert_eq!(h.len(), 2);
        assert!(h[1].empty_layer && !h[0].empty_layer);
        assert_eq!(h[1].comment.as_deref(), Some("buildkit"));
        assert_eq!(
            command(&json!(["/bin/sh", "-c", "make"])).as_deref(),
            Some("/bin/sh -c make")
        );
    }

    #[test]
    fn attestations_are_told_from_images() {
        let d = |platform: Value, annotations: Option<Value>| Descriptor {
            media_type: manifest::OCI_MANIFEST.into(),
            digest: format!("sha256:{}", "a".repeat(64)).parse().expect("digest"),
            size: 1,
            artifact_type: None,
            annotations: annotations.and_then(|a| a.as_object().cloned()),
            urls: None,
            platform: Some(platform),
        };
        assert!(!child(&d(json!({"os": "linux", "architecture": "amd64"}), None)).attestation);
        assert!(child(&d(json!({"os": "unknown", "architecture": "unknown"}), None)).attestation);
        let tagged = json!({"vnd.docker.reference.type": "attestation-manifest"});
        assert!(child(&d(json!({"os": "linux", "architecture": "amd64"}), Some(tagged))).attestation);
    }
}
