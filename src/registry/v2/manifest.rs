//! Manifests: the media types Skiff accepts, what a manifest references (blobs, child
//! manifests, subject), its referrer descriptor, and the digest of signed schema1 manifests.

use crate::digest::{Algorithm, Digest};
use crate::error::{AppError, AppResult, Kind};
use base64::Engine;
use serde::{Deserialize, Serialize};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Layers of this type live elsewhere (Windows base layers); they need not be in the registry.
const FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// An image manifest (OCI or Docker schema2): config + layers.
    Image,
    /// An index / manifest list: child manifests.
    Index,
    /// Docker's legacy signed schema1.
    Schema1,
}

/// What Skiff needs to know about a manifest it is asked to store.
#[derive(Debug)]
pub struct Parsed {
    pub kind: ManifestKind,
    pub media_type: String,
    /// Blobs that must be in the repository (config and layers).
    pub blobs: Vec<Digest>,
    /// Manifests that must be in the repository (index children).
    pub manifests: Vec<Digest>,
    pub subject: Option<Descriptor>,
    pub artifact_type: Option<String>,
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
    /// The bytes the digest is computed over (differs from the body only for signed schema1).
    pub canonical: Option<Vec<u8>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    annotations: Option<serde_json::Map<String, serde_json::Value>>,
    fs_layers: Option<Vec<FsLayer>>,
    signatures: Option<Vec<serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FsLayer {
    blob_sum: Digest,
}

fn invalid(msg: impl Into<String>) -> AppError {
    AppError::new(Kind::ManifestInvalid, msg)
}

/// Parses and classifies `body`, sent with `content_type` (may be empty).
pub fn parse(body: &[u8], content_type: &str) -> AppResult<Parsed> {
    let content_type = content_type.split(';').next().unwrap_or("").trim();
    let raw: Raw = serde_json::from_slice(body).map_err(|e| invalid(format!("manifest is not valid JSON: {e}")))?;
    // Old clients send signed schema1 as `application/json` (CNCF Distribution registers schema1
    // under "", `application/json` and its own types): recognise it by its shape.
    let content_type = if content_type == "application/json" && raw.schema_version == Some(1) {
        ""
    } else {
        content_type
    };
    if let (Some(mt), false) = (&raw.media_type, content_type.is_empty()) {
        let schema1 = |t: &str| t == DOCKER_SCHEMA1 || t == DOCKER_SCHEMA1_SIGNED;
        if mt != content_type && !(schema1(mt) && schema1(content_type)) {
            return Err(invalid(format!(
                "mediaType {mt} does not match Content-Type {content_type}"
            )));
        }
    }
    let media_type = raw
        .media_type
        .clone()
        .filter(|m| !m.is_empty())
        .or_else(|| (!content_type.is_empty()).then(|| content_type.to_string()))
        .unwrap_or_else(|| {
            if raw.manifests.is_some() {
                OCI_INDEX.into()
            } else if raw.fs_layers.is_some() {
                // Schema1 without a declared type: signed or not, as the body says, so clients
                // that verify a JWS are not handed one without signatures.
                if raw.signatures.as_ref().is_some_and(|s| !s.is_empty()) {
                    DOCKER_SCHEMA1_SIGNED.into()
                } else {
                    DOCKER_SCHEMA1.into()
                }
            } else {
                OCI_MANIFEST.into()
            }
        });
    match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => {
            if raw.schema_version != Some(2) {
                return Err(invalid("schemaVersion must be 2"));
            }
            let config = raw.config.ok_or_else(|| invalid("image manifest without config"))?;
            // No layers is valid for both types: "the list of blobs MAY be empty" (distribution
            // spec, Pushing Manifests); CNCF Distribution accepts such schema2 manifests too.
            let layers = raw.layers.unwrap_or_default();
            let mut blobs = vec![config.digest.clone()];
            blobs.extend(
                layers
                    .iter()
                    .filter(|l| l.media_type != FOREIGN_LAYER && l.urls.as_ref().is_none_or(|u| u.is_empty()))
                    .map(|l| l.digest.clone()),
            );
            // An empty artifactType counts as missing: the referrers API then reports the
            // config's media type (distribution-spec, "Listing Referrers").
            let artifact_type = raw.artifact_type.filter(|a| !a.is_empty()).or(Some(config.media_type));
            Ok(Parsed {
                kind: ManifestKind::Image,
                media_type,
                blobs,
                manifests: Vec::new(),
                subject: raw.subject,
                artifact_type,
                annotations: raw.annotations,
                canonical: None,
            })
        }
        OCI_INDEX | DOCKER_LIST => {
            if raw.schema_version != Some(2) {
                return Err(invalid("schemaVersion must be 2"));
            }
            let manifests = raw.manifests.ok_or_else(|| invalid("index without manifests"))?;
            Ok(Parsed {
                kind: ManifestKind::Index,
                media_type,
                blobs: Vec::new(),
                manifests: manifests.iter().map(|m| m.digest.clone()).collect(),
                subject: raw.subject,
                // Empty or missing in an index: the referrers descriptor omits it.
                artifact_type: raw.artifact_type.filter(|a| !a.is_empty()),
                annotations: raw.annotations,
                canonical: None,
            })
        }
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => {
            if raw.schema_version != Some(1) {
                return Err(invalid("schemaVersion must be 1"));
            }
            let blobs = raw
                .fs_layers
                .unwrap_or_default()
                .into_iter()
                .map(|l| l.blob_sum)
                .collect();
            let canonical = match &raw.signatures {
                Some(sigs) if !sigs.is_empty() => Some(schema1_payload(body, sigs)?),
                _ => None,
            };
            Ok(Parsed {
                kind: ManifestKind::Schema1,
                media_type,
                blobs,
                manifests: Vec::new(),
                subject: None,
                artifact_type: None,
                annotations: None,
                canonical,
            })
        }
        other => Err(invalid(format!("unsupported manifest media type {other}"))),
    }
}

/// The payload a signed schema1 manifest's digest covers: the body up to `formatLength`, then
/// the base64url-decoded `formatTail` (which restores the closing brace the signature removed).
fn schema1_payload(body: &[u8], sigs: &[serde_json::Value]) -> AppResult<Vec<u8>> {
    let protected = sigs[0]["protected"]
        .as_str()
        .ok_or_else(|| invalid("schema1 signature without protected header"))?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64
        .decode(protected.trim_end_matches('='))
        .map_err(|_| invalid("schema1 protected header is not base64url"))?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|_| invalid("schema1 protected header is not JSON"))?;
    let len = header["formatLength"]
        .as_u64()
        .ok_or_else(|| invalid("schema1 header without formatLength"))? as usize;
    let tail = header["formatTail"]
        .as_str()
        .ok_or_else(|| invalid("schema1 header without formatTail"))?;
    let tail = b64
        .decode(tail.trim_end_matches('='))
        .map_err(|_| invalid("schema1 formatTail is not base64url"))?;
    if len > body.len() {
        return Err(invalid("schema1 formatLength exceeds the manifest"));
    }
    let mut payload = body[..len].to_vec();
    payload.extend_from_slice(&tail);
    Ok(payload)
}

impl Parsed {
    /// The manifest's digest, in the requested algorithm.
    pub fn digest(&self, body: &[u8], algo: Algorithm) -> Digest {
        Digest::of(algo, self.canonical.as_deref().unwrap_or(body))
    }

    /// The descriptor the referrers API lists for this manifest.
    pub fn referrer(&self, digest: &Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: digest.clone(),
            size,
            artifact_type: self.artifact_type.clone(),
            annotations: self.annotations.clone(),
            urls: None,
            platform: None,
        }
    }
}

/// What a listing shows of a stored manifest, read leniently: its config descriptor (image
/// manifests) and its child descriptors (indexes); none when the body has none.
pub fn outline(body: &[u8]) -> (Option<Descriptor>, Vec<Descriptor>) {
    match serde_json::from_slice::<Raw>(body) {
        Ok(raw) => (raw.config, raw.manifests.unwrap_or_default()),
        Err(_) => (None, Vec::new()),
    }
}

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// For a client that cannot take an index (its Accept lists single-manifest types only), the
/// child to serve instead: linux/amd64 if present, else the first.
pub fn pick_platform(index_body: &[u8]) -> Option<Digest> {
    let raw: Raw = serde_json::from_slice(index_body).ok()?;
    let manifests = raw.manifests?;
    let is_default = |d: &&Descriptor| {
        d.platform
            .as_ref()
            .is_some_and(|p| p["os"] == "linux" && p["architecture"] == "amd64")
    };
    manifests
        .iter()
        .find(is_default)
        .or(manifests.first())
        .map(|d| d.digest.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn image_manifest_references() {
        let body = serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": d('a'), "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d('b'), "size": 3}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": d('c'), "size": 4}
        });
        let p = parse(body.to_string().as_bytes(), OCI_MANIFEST).unwrap();
        assert_eq!(p.blobs.len(), 2);
        assert_eq!(p.subject.unwrap().digest.to_string(), d('c'));
        assert_eq!(
            p.artifact_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
        assert!(
            parse(body.to_string().as_bytes(), DOCKER_MANIFEST).is_err(),
            "type mismatch"
        );
        assert!(parse(b"{", OCI_MANIFEST).is_err());
    }

    #[test]
    fn schema1_digest_excludes_signatures() {
        let payload = "{\n   \"schemaVersion\": 1,\n   \"name\": \"a/b\",\n   \"fsLayers\": []\n}";
        let len = payload.len() - 2; // up to (not including) the final "\n}"
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let protected = b64.encode(format!(
            "{{\"formatLength\":{len},\"formatTail\":\"{}\"}}",
            b64.encode("\n}")
        ));
        let signed = format!(
            "{},\n   \"signatures\": [{{\"header\": {{}}, \"signature\": \"x\", \"protected\": \"{protected}\"}}]\n}}",
            &payload[..len]
        );
        let p = parse(signed.as_bytes(), DOCKER_SCHEMA1_SIGNED).unwrap();
        assert_eq!(
            p.digest(signed.as_bytes(), Algorithm::Sha256),
            Digest::sha256_of(payload.as_bytes())
        );
    }
}
