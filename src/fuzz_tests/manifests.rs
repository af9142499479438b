//! Manifests of every media type, and the digests gc reads out of stored ones.

use super::*;

// ---- manifests ----

pub(super) const MEDIA_TYPES: &[&str] = &[
    manifest::OCI_MANIFEST,
    manifest::OCI_INDEX,
    manifest::DOCKER_MANIFEST,
    manifest::DOCKER_LIST,
    manifest::DOCKER_SCHEMA1,
    manifest::DOCKER_SCHEMA1_SIGNED,
];

/// A descriptor: valid, or with one field of the wrong kind.
fn descriptor() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            4 => proptest::sample::select(MEDIA_TYPES).prop_map(Value::from),
            2 => Just(json!("application/vnd.oci.image.layer.v1.tar+gzip")),
            1 => Just(json!("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")),
            1 => json_value(),
        ],
        prop_oneof![
            6 => valid_digest().prop_map(|d| json!(d.to_string())),
            1 => digest_text().prop_map(Value::from),
            1 => json_value(),
        ],
        prop_oneof![6 => any::<u64>().prop_map(Value::from), 1 => Just(json!(-1)), 1 => json_value()],
        proptest::option::of(prop_oneof![Just(json!(["http://x"])), Just(json!([])), json_value()]),
        proptest::option::of(prop_oneof![
            Just(json!({"os": "linux", "architecture": "amd64"})),
            json_value()
        ]),
        proptest::option::of(json_value()),
    )
        .prop_map(|(mt, digest, size, urls, platform, annotations)| {
            let mut d = json!({"mediaType": mt, "digest": digest, "size": size});
            for (k, v) in [("urls", urls), ("platform", platform), ("annotations", annotations)] {
                if let Some(v) = v {
                    d[k] = v;
                }
            }
            d
        })
}

/// A schema1 signature whose protected header says where the payload ends (any length, any
/// tail, or garbage).
fn schema1_signature() -> impl Strategy<Value = Value> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    (
        prop_oneof![
            Just(json!(0)),
            (0u64..400).prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            json_value()
        ],
        prop_oneof![Just(b64.encode("\n}")), text()],
        any::<bool>(),
    )
        .prop_map(move |(len, tail, well_formed)| {
            let header = json!({"formatLength": len, "formatTail": tail}).to_string();
            let protected = if well_formed { b64.encode(header) } else { header };
            json!({"header": {}, "signature": "x", "protected": protected})
        })
}

/// A manifest body of any media type with parts valid, missing or wrong, and the
/// `Content-Type` it is sent with.
pub(super) fn manifest_body() -> impl Strategy<Value = (Value, String)> {
    let media_type = prop_oneof![
        6 => proptest::sample::select(MEDIA_TYPES).prop_map(|m| Some(json!(m))),
        1 => Just(None),
        1 => Just(Some(json!(""))),
        1 => json_value().prop_map(Some),
    ];
    let content_type = prop_oneof![
        4 => proptest::sample::select(MEDIA_TYPES).prop_map(str::to_string),
        1 => proptest::sample::select(MEDIA_TYPES).prop_map(|m| format!("{m}; charset=utf-8")),
        1 => Just(String::new()),
        1 => Just("application/json".to_string()),
        1 => text(),
    ];
    let schema_version = prop_oneof![
        4 => Just(Some(json!(2))),
        2 => Just(Some(json!(1))),
        1 => Just(None),
        1 => json_value().prop_map(Some),
    ];
    (
        media_type,
        content_type,
        schema_version,
        proptest::option::of(descriptor()),
        proptest::option::of(proptest::collection::vec(descriptor(), 0..4)),
        proptest::option::of(proptest::collection::vec(descriptor(), 0..4)),
        proptest::option::of(descriptor()),
        proptest::option::of(proptest::collection::vec(
            prop_oneof![5 => valid_digest().prop_map(|d| json!({"blobSum": d.to_string()})), 1 => json_value()],
            0..4,
        )),
        proptest::option::of(proptest::collection::vec(schema1_signature(), 0..2)),
        proptest::option::of(prop_oneof![text().prop_map(Value::from), json_value()]),
        proptest::option::of(json_value()),
    )
        .prop_map(
            |(mt, ct, sv, config, layers, manifests, subject, fs_layers, signatures, artifact_type, annotations)| {
                let mut m = serde_json::Map::new();
                let fields = [
                    ("mediaType", mt),
                    ("schemaVersion", sv),
                    ("config", config),
                    ("layers", layers.map(Value::Array)),
                    ("manifests", manifests.map(Value::Array)),
                    ("subject", subject),
                    ("fsLayers", fs_layers.map(Value::Array)),
                    ("signatures", signatures.map(Value::Array)),
                    ("artifactType", artifact_type),
                    ("annotations", annotations),
                ];
                for (k, v) in fields {
                    if let Some(v) = v {
                        m.insert(k.into(), v);
                    }
                }
                (Value::Object(m), ct)
            },
        )
}

/// A well-formed manifest of one kind, and what parsing it must give.
#[derive(Debug, Clone)]
struct ValidManifest {
    bytes: Vec<u8>,
    media_type: &'static str,
    blobs: Vec<Digest>,
    manifests: Vec<Digest>,
    /// For signed schema1: the bytes the digest covers (the body without its signatures).
    payload: Option<Vec<u8>>,
}

/// A well-formed manifest of each kind (OCI and Docker images and indexes, schema1 plain and
/// signed), its media type declared in the body or not.
fn valid_manifest() -> impl Strategy<Value = ValidManifest> {
    (
        0u8..6,
        valid_digest(),
        proptest::collection::vec(valid_digest(), 0..5),
        any::<bool>(),
    )
        .prop_map(|(kind, config, refs, declare)| {
            let desc = |d: &Digest, mt: &str| json!({"mediaType": mt, "digest": d.to_string(), "size": 7});
            let (media_type, mut body, blobs, manifests) = match kind {
                0 | 1 => {
                    let mt = if kind == 0 {
                        manifest::OCI_MANIFEST
                    } else {
                        manifest::DOCKER_MANIFEST
                    };
                    let layer = |d| desc(d, "application/vnd.oci.image.layer.v1.tar+gzip");
                    let layers: Vec<Value> = refs.iter().map(layer).collect();
                    let mut blobs = vec![config.clone()];
                    blobs.extend(refs.iter().cloned());
                    let config = desc(&config, "application/vnd.oci.image.config.v1+json");
                    let body = json!({"schemaVersion": 2, "mediaType": mt, "config": config, "layers": layers});
                    (mt, body, blobs, Vec::new())
                }
                2 | 3 => {
                    let mt = if kind == 2 {
                        manifest::OCI_INDEX
                    } else {
                        manifest::DOCKER_LIST
                    };
                    let children: Vec<Value> = refs.iter().map(|d| desc(d, manifest::OCI_MANIFEST)).collect();
                    (
                        mt,
                        json!({"schemaVersion": 2, "mediaType": mt, "manifests": children}),
                        Vec::new(),
                        refs.clone(),
                    )
                }
                _ => {
                    let mt = if kind == 4 {
                        manifest::DOCKER_SCHEMA1
                    } else {
                        manifest::DOCKER_SCHEMA1_SIGNED
                    };
                    let fs: Vec<Value> = refs.iter().map(|d| json!({"blobSum": d.to_string()})).collect();
                    let body =
                        json!({"schemaVersion": 1, "mediaType": mt, "name": "a/b", "tag": "latest", "fsLayers": fs});
                    (mt, body, refs.clone(), Vec::new())
                }
            };
            if !declare {
                if let Some(o) = body.as_object_mut() {
                    o.remove("mediaType");
                }
            }
            if media_type != manifest::DOCKER_SCHEMA1_SIGNED {
                let bytes = serde_json::to_vec(&body).expect("json");
                return ValidManifest {
                    bytes,
                    media_type,
                    blobs,
                    manifests,
                    payload: None,
                };
            }
            // Signed as Docker does: the signature's protected header says where the payload
            // ends in the body and restores its closing brace.
            let payload = serde_json::to_string_pretty(&body).expect("json");
            let len = payload.len() - 2;
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let protected = b64.encode(json!({"formatLength": len, "formatTail": b64.encode("\n}")}).to_string());
            let signature = json!([{"header": {}, "signature": "x", "protected": protected}]);
            let signed = format!("{},\n   \"signatures\": {signature}\n}}", &payload[..len]);
            ValidManifest {
                bytes: signed.into_bytes(),
                media_type,
                blobs,
                manifests,
                payload: Some(payload.into_bytes()),
            }
        })
}

const MANIFEST_FIELDS: &[&str] = &[
    "mediaType",
    "schemaVersion",
    "config",
    "layers",
    "manifests",
    "subject",
    "fsLayers",
    "signatures",
    "artifactType",
    "annotations",
];

/// A well-formed manifest with up to three fields removed or replaced (by any JSON, a
/// descriptor, or a list of them), sent with its own `Content-Type` or another.
pub(super) fn mutated_manifest() -> impl Strategy<Value = (Value, String)> {
    let edit = (
        proptest::sample::select(MANIFEST_FIELDS),
        0u8..4,
        json_value(),
        descriptor(),
        proptest::collection::vec(descriptor(), 0..3),
    );
    let content_type = prop_oneof![
        3 => Just(None),
        1 => proptest::sample::select(MEDIA_TYPES).prop_map(|m| Some(m.to_string())),
        1 => Just(Some(String::new())),
        1 => Just(Some("application/json".to_string())),
    ];
    (valid_manifest(), proptest::collection::vec(edit, 0..3), content_type).prop_map(|(m, edits, ct)| {
        let mut body: Value = serde_json::from_slice(&m.bytes).expect("json");
        if let Some(o) = body.as_object_mut() {
            for (field, how, any, desc, descs) in edits {
                match how {
                    0 => {
                        o.remove(field);
                    }
                    1 => {
                        o.insert(field.into(), any);
                    }
                    2 => {
                        o.insert(field.into(), desc);
                    }
                    _ => {
                        o.insert(field.into(), Value::Array(descs));
                    }
                }
            }
        }
        (body, ct.unwrap_or_else(|| m.media_type.to_string()))
    })
}

proptest! {
    #![proptest_config(config())]

    /// Manifests of every media type with any part missing or wrong, sent with any
    /// `Content-Type`, then damaged byte by byte: never a panic; what is accepted is classified
    /// by its media type and references what the body names.
    #[test]
    fn fuzz_manifests(
        (body, content_type) in prop_oneof![manifest_body(), mutated_manifest()],
        how in any::<u8>(),
        at in any::<usize>(),
        with in any::<u8>(),
    ) {
        let bytes = serde_json::to_vec(&body).expect("json");
        if let Ok(p) = manifest::parse(&bytes, &content_type) {
            let mt = p.media_type.as_str();
            match p.kind {
                ManifestKind::Image => {
                    prop_assert!(mt == manifest::OCI_MANIFEST || mt == manifest::DOCKER_MANIFEST);
                    prop_assert_eq!(body["schemaVersion"].as_i64(), Some(2));
                    let config = body["config"]["digest"].as_str().map(str::to_string);
                    prop_assert_eq!(Some(p.blobs[0].to_string()), config);
                    let layers = body["layers"].as_array().map_or(0, Vec::len);
                    prop_assert!(p.blobs.len() <= 1 + layers);
                    prop_assert!(p.manifests.is_empty() && p.canonical.is_none());
                }
                ManifestKind::Index => {
                    prop_assert!(manifest::is_index(mt));
                    prop_assert_eq!(body["schemaVersion"].as_i64(), Some(2));
                    prop_assert_eq!(Some(p.manifests.len()), body["manifests"].as_array().map(Vec::len));
                    prop_assert!(p.blobs.is_empty() && p.canonical.is_none());
                }
                ManifestKind::Schema1 => {
                    prop_assert!(mt == manifest::DOCKER_SCHEMA1 || mt == manifest::DOCKER_SCHEMA1_SIGNED);
                    prop_assert_eq!(body["schemaVersion"].as_i64(), Some(1));
                    prop_assert_eq!(p.blobs.len(), body["fsLayers"].as_array().map_or(0, Vec::len));
                    let signed = body["signatures"].as_array().is_some_and(|s| !s.is_empty());
                    prop_assert_eq!(p.canonical.is_some(), signed);
                }
            }
            let d = p.digest(&bytes, Algorithm::Sha256);
            let referrer = p.referrer(&d, bytes.len() as u64);
            let json = serde_json::to_vec(&referrer).expect("serialize");
            prop_assert_eq!(serde_json::from_slice::<manifest::Descriptor>(&json).ok(), Some(referrer));
        }
        check_any_manifest_bytes(&bytes)?;
        let damaged = damage(bytes, how, at, with);
        let _ = manifest::parse(&damaged, &content_type);
        check_any_manifest_bytes(&damaged)?;
    }

    /// Arbitrary bytes as a manifest: never a panic.
    #[test]
    fn fuzz_manifest_any_bytes(
        bytes in json_bytes(),
        content_type in prop_oneof![proptest::sample::select(MEDIA_TYPES).prop_map(str::to_string), text()],
    ) {
        let _ = manifest::parse(&bytes, &content_type);
        check_any_manifest_bytes(&bytes)?;
    }

    /// Well-formed manifests of each media type, declared in the body or only by the
    /// `Content-Type`, are accepted with exactly the references they name.
    #[test]
    fn fuzz_valid_manifests(m in valid_manifest(), content_type_given in any::<bool>()) {
        let content_type = if content_type_given { m.media_type } else { "" };
        let body: Value = serde_json::from_slice(&m.bytes).expect("json");
        if body.get("mediaType").is_none() && content_type.is_empty()
            && (m.media_type == manifest::DOCKER_MANIFEST || m.media_type == manifest::DOCKER_LIST) {
            // Undeclared everywhere: read as the OCI type of the same shape.
            return Ok(());
        }
        let p = manifest::parse(&m.bytes, content_type).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(p.media_type.as_str(), m.media_type);
        prop_assert_eq!(&p.blobs, &m.blobs);
        prop_assert_eq!(&p.manifests, &m.manifests);
        // The digest covers the body, or for signed schema1 the payload without signatures.
        let covered = m.payload.as_deref().unwrap_or(&m.bytes);
        prop_assert_eq!(p.digest(&m.bytes, Algorithm::Sha256), Digest::sha256_of(covered));
    }
}

/// What must hold of any bytes stored as a manifest: choosing a platform from it and gc's scan
/// for digests in it never panic, and what they find is in it.
fn check_any_manifest_bytes(bytes: &[u8]) -> Result<(), TestCaseError> {
    let text = String::from_utf8_lossy(bytes);
    if let Some(d) = manifest::pick_platform(bytes) {
        let listed: Value = serde_json::from_slice(bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let names = listed["manifests"]
            .as_array()
            .is_some_and(|m| m.iter().any(|c| c["digest"] == d.to_string()));
        prop_assert!(names, "picked {} not in the index", d);
    }
    for d in digests_in(bytes) {
        prop_assert!(text.contains(&d.to_string()));
    }
    Ok(())
}
