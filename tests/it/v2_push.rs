//! Push: end-4a/4b/4c and end-6 (monolithic blob pushes, digests, sha512), end-11 (mounts) and
//! end-7 (manifests: validation, subject, tags, size limit, signed schema1).

use super::*;

#[tokio::test]
async fn monolithic_pushes_and_digest_errors() {
    monolithic_pushes_and_digest_errors_with("").await
}

/// On the storage `extra` configures (`s3` runs it on S3).
pub(crate) async fn monolithic_pushes_and_digest_errors_with(extra: &str) {
    let s = Server::start(extra);
    let (alice, _, _) = users(&s).await;
    let api = Api::new(&s);

    // Single POST with ?digest=: 201, Location is pullable, Docker-Content-Digest.
    let data = random_bytes(5000);
    let digest = sha256(&data);
    let g = go(api
        .req(
            Method::POST,
            &format!("/v2/alice/app/blobs/uploads/?digest={digest}"),
            Some(&alice),
        )
        .header("Content-Type", "application/octet-stream")
        .body(data.clone()))
    .await;
    ok(&g, 201, "single POST");
    assert_eq!(g.h("location"), Some(format!("/v2/alice/app/blobs/{digest}")));
    assert_eq!(g.h("docker-content-digest"), Some(digest.clone()));
    assert_eq!(api.get(&g.location(&s.url), None).await.body, data);

    // POST then PUT.
    let data = random_bytes(7000);
    let digest = sha256(&data);
    let g = api.start_upload("alice/app", "", Some(&alice)).await;
    ok(&g, 202, "POST session");
    let loc = g.location(&s.url);
    assert!(loc.contains("/v2/alice/app/blobs/uploads/"), "{loc}");
    let g = api.close(&loc, &alice, &digest, None, &data).await;
    ok(&g, 201, "PUT monolithic");
    assert_eq!(g.h("location"), Some(format!("/v2/alice/app/blobs/{digest}")));
    assert_eq!(g.h("docker-content-digest"), Some(digest.clone()));
    assert_eq!(api.get(&g.location(&s.url), None).await.body, data);
    // The same bytes again are fine (de-duplicated).
    assert_eq!(api.blob(&alice, "alice/app", &data).await, digest);

    // The empty blob, both ways.
    let empty = sha256(b"");
    assert_eq!(api.blob(&alice, "alice/app", b"").await, empty);
    let loc = api.session("alice/empty", &alice).await;
    ok(
        &api.close(&loc, &alice, &empty, None, b"").await,
        201,
        "empty blob by POST+PUT",
    );
    for repo in ["alice/app", "alice/empty"] {
        let g = api.get(&format!("/v2/{repo}/blobs/{empty}"), None).await;
        ok(&g, 200, "GET empty blob");
        assert!(g.body.is_empty());
        assert_eq!(g.h("content-length").as_deref(), Some("0"));
        assert_eq!(g.h("docker-content-digest"), Some(empty.clone()));
        let g = api.head(&format!("/v2/{repo}/blobs/{empty}"), None).await;
        assert_eq!(g.h("content-length").as_deref(), Some("0"));
    }

    // The closing PUT needs the digest.
    let loc = api.session("alice/app", &alice).await;
    let g = go(api
        .req(Method::PUT, &loc, Some(&alice))
        .header("Content-Type", "application/octet-stream")
        .body(b"abc".to_vec()))
    .await;
    err(&g, 400, "DIGEST_INVALID", "PUT without digest");

    // A digest that does not match the bytes: 400 DIGEST_INVALID, and nothing becomes visible.
    let data = random_bytes(3000);
    let claimed = sha256(b"something else");
    let loc = api.session("alice/app", &alice).await;
    let g = api.close(&loc, &alice, &claimed, None, &data).await;
    err(&g, 400, "DIGEST_INVALID", "PUT with the wrong digest");
    let g = go(api
        .req(
            Method::POST,
            &format!("/v2/alice/app/blobs/uploads/?digest={claimed}"),
            Some(&alice),
        )
        .body(data.clone()))
    .await;
    err(&g, 400, "DIGEST_INVALID", "single POST with the wrong digest");
    for d in [&claimed, &sha256(&data)] {
        err(
            &api.head(&format!("/v2/alice/app/blobs/{d}"), None).await,
            404,
            "BLOB_UNKNOWN",
            "after a digest mismatch",
        );
        assert!(!blob_file(&s, d).exists(), "no bytes stored under {d}");
    }
    let tmp = crate::common::temp_files(&s.dir.join("data/registry"));
    assert!(tmp.is_empty(), "temp files left behind: {tmp:?}");

    // Malformed digests and unsupported algorithms: 400.
    for bad in ["sha256:abc", "md5:d41d8cd98f00b204e9800998ecf8427e", "nonsense"] {
        let g = go(api
            .req(
                Method::POST,
                &format!("/v2/alice/app/blobs/uploads/?digest={bad}"),
                Some(&alice),
            )
            .body(b"x".to_vec()))
        .await;
        err(&g, 400, "DIGEST_INVALID", bad);
        let loc = api.session("alice/app", &alice).await;
        err(
            &api.close(&loc, &alice, bad, None, b"x").await,
            400,
            "DIGEST_INVALID",
            bad,
        );
    }
    let g = api
        .start_upload("alice/app", "?digest-algorithm=md5", Some(&alice))
        .await;
    err(&g, 400, "DIGEST_INVALID", "unsupported digest-algorithm");
}

#[tokio::test]
async fn sha512_blobs_and_manifests() {
    sha512_blobs_and_manifests_with("").await
}

/// On the storage `extra` configures (`s3` runs it on S3).
pub(crate) async fn sha512_blobs_and_manifests_with(extra: &str) {
    let s = Server::start(extra);
    let (alice, _, _) = users(&s).await;
    let api = Api::new(&s);

    // end-4c: a chunked session announced as sha512.
    let data = random_bytes(10_000);
    let digest = sha512(&data);
    let g = api
        .start_upload("alice/app", "?digest-algorithm=sha512", Some(&alice))
        .await;
    ok(&g, 202, "POST digest-algorithm=sha512");
    let loc = g.location(&s.url);
    let g = api.patch(&loc, &alice, Some((0, 5999)), &data[..6000]).await;
    ok(&g, 202, "PATCH");
    let loc = g.location(&s.url);
    let g = api
        .close(&loc, &alice, &digest, Some((6000, 9999)), &data[6000..])
        .await;
    ok(&g, 201, "PUT sha512");
    assert_eq!(g.h("docker-content-digest"), Some(digest.clone()));
    assert_eq!(g.h("location"), Some(format!("/v2/alice/app/blobs/{digest}")));
    let g = api.get(&format!("/v2/alice/app/blobs/{digest}"), None).await;
    ok(&g, 200, "GET sha512 blob");
    assert_eq!(g.body, data);
    assert_eq!(g.h("docker-content-digest"), Some(digest.clone()));

    // Monolithic with a sha512 digest.
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let cd = sha512(&config);
    let g = go(api
        .req(
            Method::POST,
            &format!("/v2/alice/app/blobs/uploads/?digest={cd}"),
            Some(&alice),
        )
        .body(config.clone()))
    .await;
    ok(&g, 201, "single POST sha512");
    assert_eq!(g.h("docker-content-digest"), Some(cd.clone()));
    let wrong = sha512(b"other");
    let g = go(api
        .req(
            Method::POST,
            &format!("/v2/alice/app/blobs/uploads/?digest={wrong}"),
            Some(&alice),
        )
        .body(config.clone()))
    .await;
    err(&g, 400, "DIGEST_INVALID", "sha512 mismatch");

    // A manifest over sha512 blobs, pushed by its sha512 digest.
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": config.len()},
        "layers": [{"mediaType": OCI_LAYER, "digest": digest, "size": data.len()}],
    }))
    .unwrap();
    let md = sha512(&m);
    let g = api.put_manifest(Some(&alice), "alice/app", &md, OCI_MANIFEST, &m).await;
    ok(&g, 201, "PUT manifest by sha512 digest");
    assert_eq!(g.h("docker-content-digest"), Some(md.clone()));
    assert_eq!(g.h("location"), Some(format!("/v2/alice/app/manifests/{md}")));
    let g = api.get(&format!("/v2/alice/app/manifests/{md}"), None).await;
    ok(&g, 200, "GET manifest by sha512");
    assert_eq!(g.body, m);
    assert_eq!(g.h("docker-content-digest"), Some(md.clone()));
    // The digest in the URL must be the body's.
    let g = api
        .put_manifest(Some(&alice), "alice/app", &sha512(b"x"), OCI_MANIFEST, &m)
        .await;
    err(&g, 400, "DIGEST_INVALID", "sha512 manifest digest mismatch");
}

#[tokio::test]
async fn cross_repository_mounts() {
    cross_repository_mounts_with("").await
}

/// On the storage `extra` configures (`s3` runs it on S3).
pub(crate) async fn cross_repository_mounts_with(extra: &str) {
    let s = Server::start(extra);
    let (alice, bobby, carol) = users(&s).await;
    let api = Api::new(&s);
    let public = api.blob(&alice, "alice/pub", b"public layer").await;
    let private = api.blob(&alice, "alice/priv", b"private layer").await;
    set_private(&api, &alice, "alice/priv", true).await;
    add_collaborator(&api, &alice, "alice/priv", "carol").await;
    let mount = |d: &str, from: Option<&str>| match from {
        Some(f) => format!("?mount={d}&from={f}"),
        None => format!("?mount={d}"),
    };

    // Readable from `from`: 201, the blob is now in the target repository.
    let g = api
        .start_upload("bobby/app", &mount(&public, Some("alice/pub")), Some(&bobby))
        .await;
    ok(&g, 201, "mount from a public repository");
    assert_eq!(g.h("location"), Some(format!("/v2/bobby/app/blobs/{public}")));
    assert_eq!(g.h("docker-content-digest"), Some(public.clone()));
    assert_eq!(api.get(&g.location(&s.url), None).await.body, b"public layer");

    // Not readable (private to someone else, also when `from` is left out), absent: 202 and
    // an upload session.
    for (what, q) in [
        ("private to someone else", mount(&private, Some("alice/priv"))),
        ("without from, only in a private repository", mount(&private, None)),
        ("without from, in no repository", mount(&sha256(b"nowhere"), None)),
        ("absent from `from`", mount(&private, Some("alice/pub"))),
        ("no such repository", mount(&public, Some("nobody/nothing"))),
        ("invalid from", mount(&public, Some("Not/Valid"))),
    ] {
        let g = api.start_upload("bobby/other", &q, Some(&bobby)).await;
        ok(&g, 202, what);
        let loc = g.location(&s.url);
        assert!(loc.contains("/v2/bobby/other/blobs/uploads/"), "{what}: {loc}");
        ok(&go(api.req(Method::GET, &loc, Some(&bobby))).await, 204, what);
        ok(&api.delete(&loc, Some(&bobby)).await, 204, what);
    }
    for d in [&private, &public] {
        err(
            &api.head(&format!("/v2/bobby/other/blobs/{d}"), None).await,
            404,
            "BLOB_UNKNOWN",
            "nothing mounted",
        );
    }
    // Without `from`, a blob in a repository the caller may read is found and mounted.
    let g = api
        .start_upload("bobby/auto", &mount(&public, None), Some(&bobby))
        .await;
    ok(&g, 201, "mount without from, from a public repository");
    assert_eq!(g.h("location"), Some(format!("/v2/bobby/auto/blobs/{public}")));
    assert_eq!(api.get(&g.location(&s.url), Some(&bobby)).await.body, b"public layer");
    let g = api
        .start_upload("carol/auto", &mount(&private, None), Some(&carol))
        .await;
    ok(&g, 201, "collaborator mounts without from");
    // A collaborator of the private repository may mount from it.
    let g = api
        .start_upload("carol/app", &mount(&private, Some("alice/priv")), Some(&carol))
        .await;
    ok(&g, 201, "collaborator mounts from a private repository");
    ok(
        &api.head(&format!("/v2/carol/app/blobs/{private}"), Some(&carol)).await,
        200,
        "mounted",
    );
    // Mounting still needs push rights on the target.
    let g = api
        .start_upload("alice/pub", &mount(&public, Some("alice/pub")), Some(&bobby))
        .await;
    err(&g, 403, "DENIED", "mount into someone else's repository");
}

fn manifest_over(config: &[u8], layers: &[&[u8]]) -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(OCI_CONFIG, config),
        "layers": layers.iter().map(|l| desc(OCI_LAYER, l)).collect::<Vec<_>>(),
    })
}

#[tokio::test]
async fn manifest_push_validation_subject_tags_and_size() {
    let s = Server::start("");
    let (alice, _, _) = users(&s).await;
    let api = Api::new(&s);
    let repo = "alice/app";
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = random_bytes(100);
    api.blob(&alice, repo, &config).await;
    api.blob(&alice, repo, &layer).await;

    // A manifest with no layers is an image too (OCI allows an empty list).
    let g = api
        .put_manifest(
            Some(&alice),
            repo,
            "nolayers",
            OCI_MANIFEST,
            &serde_json::to_vec(&manifest_over(&config, &[])).unwrap(),
        )
        .await;
    ok(&g, 201, "manifest without layers");
    let docker_config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    api.blob(&alice, repo, docker_config).await;
    let empty = json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": desc(DOCKER_CONFIG, docker_config),
        "layers": [],
    });
    let g = api
        .put_manifest(
            Some(&alice),
            repo,
            "scratch",
            DOCKER_MANIFEST,
            &serde_json::to_vec(&empty).unwrap(),
        )
        .await;
    ok(&g, 201, "Docker schema2 manifest without layers");

    // References to blobs the repository does not have: MANIFEST_BLOB_UNKNOWN.
    let missing = serde_json::to_vec(&manifest_over(&config, &[&layer, b"missing layer"])).unwrap();
    let g = api
        .put_manifest(Some(&alice), repo, "bad", OCI_MANIFEST, &missing)
        .await;
    err(&g, 400, "MANIFEST_BLOB_UNKNOWN", "missing layer");
    let other_repo_blob = api.blob(&alice, "alice/other", b"in another repo").await;
    let mut m = manifest_over(&config, &[&layer]);
    m["layers"][0]["digest"] = json!(other_repo_blob);
    let g = api
        .put_manifest(
            Some(&alice),
            repo,
            "bad",
            OCI_MANIFEST,
            &serde_json::to_vec(&m).unwrap(),
        )
        .await;
    err(&g, 400, "MANIFEST_BLOB_UNKNOWN", "layer of another repository");
    // An index whose child manifest is missing is refused the same way.
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(b"no child"), "size": 8,
                       "platform": {"architecture": "amd64", "os": "linux"}}],
    }))
    .unwrap();
    let g = api.put_manifest(Some(&alice), repo, "bad", OCI_INDEX, &index).await;
    err(&g, 400, "MANIFEST_BLOB_UNKNOWN", "index with a missing child");
    err(
        &api.get(&format!("/v2/{repo}/manifests/bad"), None).await,
        404,
        "MANIFEST_UNKNOWN",
        "nothing stored",
    );

    // mediaType and Content-Type must agree; the body must be a manifest.
    let good = serde_json::to_vec(&manifest_over(&config, &[&layer])).unwrap();
    for (ct, body, what) in [
        (DOCKER_MANIFEST, good.as_slice(), "mediaType differs from Content-Type"),
        (OCI_INDEX, good.as_slice(), "index Content-Type for a manifest"),
        (OCI_MANIFEST, b"{not json".as_slice(), "not JSON"),
        (
            OCI_MANIFEST,
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#.as_slice(),
            "no config",
        ),
        (
            "application/vnd.example.unknown+json",
            br#"{"schemaVersion":2}"#.as_slice(),
            "unknown media type",
        ),
    ] {
        let g = api.put_manifest(Some(&alice), repo, "bad", ct, body).await;
        err(&g, 400, "MANIFEST_INVALID", what);
    }
    // The registry ignores Content-Type parameters.
    let g = api
        .put_manifest(
            Some(&alice),
            repo,
            "params",
            &format!("{OCI_MANIFEST}; charset=utf-8"),
            &good,
        )
        .await;
    ok(&g, 201, "Content-Type with parameters");

    // Invalid tags: in the path and in ?tag=. Nothing is stored for a refused request.
    for bad in ["-dash", ".INVALID_MANIFEST_NAME", &"a".repeat(129)] {
        let g = api.put_manifest(Some(&alice), repo, bad, OCI_MANIFEST, &good).await;
        err(&g, 400, "TAG_INVALID", bad);
    }
    // The conformance suite's malformed digest: 400 with a code from the spec's table.
    let g = api
        .put_manifest(Some(&alice), repo, "sha256:totallywrong", OCI_MANIFEST, b"blablabla")
        .await;
    err(&g, 400, "DIGEST_INVALID", "malformed digest reference");
    let fresh = serde_json::to_vec_pretty(&manifest_over(&config, &[&layer])).unwrap();
    let fresh_digest = sha256(&fresh);
    let g = go(api
        .req(
            Method::PUT,
            &format!("/v2/{repo}/manifests/{fresh_digest}"),
            Some(&alice),
        )
        .query(&[("tag", "ok"), ("tag", "not/valid")])
        .header("Content-Type", OCI_MANIFEST)
        .body(fresh.clone()))
    .await;
    err(&g, 400, "TAG_INVALID", "invalid ?tag=");
    err(
        &api.get(&format!("/v2/{repo}/manifests/{fresh_digest}"), None).await,
        404,
        "MANIFEST_UNKNOWN",
        "nothing stored for a refused push",
    );
    err(
        &api.get(&format!("/v2/{repo}/manifests/ok"), None).await,
        404,
        "MANIFEST_UNKNOWN",
        "no tag from a refused push",
    );

    // end-7b: push by digest with ?tag=...: 201 and OCI-Tag lists each tag.
    let tags = ["1.2.3", "1.2", "1", "latest"];
    let g = go(api
        .req(
            Method::PUT,
            &format!("/v2/{repo}/manifests/{fresh_digest}"),
            Some(&alice),
        )
        .query(&tags.iter().map(|t| ("tag", *t)).collect::<Vec<_>>())
        .header("Content-Type", OCI_MANIFEST)
        .body(fresh.clone()))
    .await;
    ok(&g, 201, "PUT by digest with tags");
    assert_eq!(g.list("oci-tag"), tags);
    assert_eq!(g.h("docker-content-digest"), Some(fresh_digest.clone()));
    for t in tags {
        let g = api.get(&format!("/v2/{repo}/manifests/{t}"), None).await;
        ok(&g, 200, t);
        assert_eq!(g.body, fresh, "bytes as pushed");
    }

    // subject pointing at a manifest that does not exist (yet): accepted, OCI-Subject answered.
    let subject = json!({"mediaType": OCI_MANIFEST, "digest": sha256(b"future image"), "size": 12});
    let mut m = manifest_over(&config, &[&layer]);
    m["subject"] = subject.clone();
    m["artifactType"] = json!("application/vnd.example.sig");
    let body = serde_json::to_vec(&m).unwrap();
    let g = api
        .put_manifest(Some(&alice), repo, &sha256(&body), OCI_MANIFEST, &body)
        .await;
    ok(&g, 201, "manifest with a dangling subject");
    assert_eq!(g.h("oci-subject"), Some(sha256(b"future image")));
    let g = api
        .put_manifest(Some(&alice), repo, "nosubject", OCI_MANIFEST, &good)
        .await;
    assert_eq!(g.h("oci-subject"), None, "no subject, no OCI-Subject");

    // Size: 4 MiB is accepted (the spec's minimum), a byte more is 413.
    let sized = |n: usize| {
        let mut m = manifest_over(&config, &[&layer]);
        m["annotations"] = json!({"pad": ""});
        let base = serde_json::to_vec(&m).unwrap().len();
        m["annotations"]["pad"] = json!("x".repeat(n - base));
        let body = serde_json::to_vec(&m).unwrap();
        assert_eq!(body.len(), n);
        body
    };
    let big = sized(4 << 20);
    let g = api.put_manifest(Some(&alice), repo, "big", OCI_MANIFEST, &big).await;
    ok(&g, 201, "4 MiB manifest");
    assert_eq!(api.get(&format!("/v2/{repo}/manifests/big"), None).await.body, big);
    let g = api
        .put_manifest(Some(&alice), repo, "bigger", OCI_MANIFEST, &sized((4 << 20) + 1))
        .await;
    err(&g, 413, "SIZE_INVALID", "manifest over 4 MiB");
    err(
        &api.get(&format!("/v2/{repo}/manifests/bigger"), None).await,
        404,
        "MANIFEST_UNKNOWN",
        "oversized manifest not stored",
    );
}

#[tokio::test]
async fn unknown_fields_types_and_nested_indexes_are_stored() {
    let s = Server::start("");
    let (alice, _, _) = users(&s).await;
    let api = Api::new(&s);
    let repo = "alice/art";
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
    let layer = random_bytes(64);
    api.blob(&alice, repo, &config).await;
    api.blob(&alice, repo, &layer).await;
    api.blob(&alice, repo, b"{}").await;

    // Descriptors with `data`, fields nobody knows, and media types the registry does not know
    // (image-spec: implementations MUST NOT error on them).
    use base64::Engine;
    let mut cfg = desc(OCI_CONFIG, &config);
    cfg["data"] = json!(base64::engine::general_purpose::STANDARD.encode(&config));
    cfg["newUnspecifiedField"] = json!("aGVsbG8gd29ybGQ=");
    let mut pushed = Vec::new();
    for layer_type in [
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.example.unknown.layer",
    ] {
        let m = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": cfg,
            "layers": [desc(layer_type, &layer)],
            "unknownTopLevel": {"x": 1},
        });
        pushed.push(
            api.manifest(&alice, repo, "", OCI_MANIFEST, serde_json::to_vec_pretty(&m).unwrap())
                .await,
        );
    }
    // An artifact: custom config media type; and one with the empty config and artifactType.
    let m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                   "config": desc("application/vnd.example.config", &config), "layers": [desc(OCI_EMPTY, b"{}")]});
    api.manifest(&alice, repo, "artifact", OCI_MANIFEST, serde_json::to_vec(&m).unwrap())
        .await;
    let m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.thing",
                   "config": desc(OCI_EMPTY, b"{}"), "layers": [desc("application/vnd.example.thing", &layer)]});
    api.manifest(&alice, repo, "thing", OCI_MANIFEST, serde_json::to_vec(&m).unwrap())
        .await;

    // An index of manifests, then an index of that index (nested), with artifactType.
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "artifactType": "application/vnd.example.index",
                       "manifests": [pushed[0].descriptor(), pushed[1].descriptor()],
                       "annotations": {"org.opencontainers.conformance.test": "test index"}});
    let index = api
        .manifest(&alice, repo, "", OCI_INDEX, serde_json::to_vec_pretty(&index).unwrap())
        .await;
    let nested = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [index.descriptor()]});
    let nested = api
        .manifest(
            &alice,
            repo,
            "nested",
            OCI_INDEX,
            serde_json::to_vec_pretty(&nested).unwrap(),
        )
        .await;
    let g = api.get(&format!("/v2/{repo}/manifests/nested"), None).await;
    assert_eq!(g.body, nested.body);
    assert_eq!(g.h("content-type").as_deref(), Some(OCI_INDEX));
    for p in &pushed {
        ok(
            &api.get(&format!("/v2/{repo}/manifests/{}", p.digest), None).await,
            200,
            "stored",
        );
    }
}

/// A signed schema1 manifest as libtrust writes it: the payload pretty-printed with three
/// spaces, the `signatures` array spliced in before the closing brace, and `formatLength` /
/// `formatTail` in each signature's protected header. Returns (signed bytes, payload).
pub fn schema1_signed(name: &str, tag: &str, layers: &[String]) -> (Vec<u8>, Vec<u8>) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let history: Vec<Value> = layers
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let v1 = json!({"id": format!("{:064x}", i + 1), "created": "2015-06-01T00:00:00Z",
                            "container_config": {"Cmd": ["/bin/sh"]}, "architecture": "amd64", "os": "linux"});
            json!({"v1Compatibility": v1.to_string()})
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 1,
        "name": name,
        "tag": tag,
        "architecture": "amd64",
        "fsLayers": layers.iter().map(|l| json!({"blobSum": l})).collect::<Vec<_>>(),
        "history": history,
    });
    let mut payload = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"   ");
    let mut ser = serde_json::Serializer::with_formatter(&mut payload, fmt);
    serde::Serialize::serialize(&manifest, &mut ser).unwrap();
    // libtrust: formatLength ends after the last non-space byte before the closing brace.
    let close = payload.iter().rposition(|&b| b == b'}').unwrap();
    let format_length = payload[..close].iter().rposition(|b| !b.is_ascii_whitespace()).unwrap() + 1;
    let tail = &payload[format_length..];
    let protected = b64.encode(format!(
        "{{\"formatLength\":{format_length},\"formatTail\":\"{}\",\"time\":\"2015-06-01T00:00:00Z\"}}",
        b64.encode(tail)
    ));
    let signatures = json!([{
        "header": {
            "jwk": {"crv": "P-256", "kid": "ABCD:EFGH:IJKL:MNOP:QRST:UVWX:YZ23:4567:ABCD:EFGH:IJKL:MNOP",
                    "kty": "EC", "x": b64.encode([7u8; 32]), "y": b64.encode([9u8; 32])},
            "alg": "ES256"
        },
        "signature": b64.encode([5u8; 64]),
        "protected": protected,
    }]);
    let mut sigs = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"   ");
    let mut ser = serde_json::Serializer::with_formatter(&mut sigs, fmt);
    serde::Serialize::serialize(&signatures, &mut ser).unwrap();
    // json.MarshalIndent(sigs, indent, indent): every line after the first gets the prefix.
    let sigs = String::from_utf8(sigs).unwrap().replace('\n', "\n   ");
    let mut signed = payload[..format_length].to_vec();
    signed.extend_from_slice(format!(",\n   \"signatures\": {sigs}\n}}").as_bytes());
    (signed, payload)
}

#[tokio::test]
async fn signed_schema1_is_kept_byte_for_byte() {
    let s = Server::start("");
    let (alice, _, _) = users(&s).await;
    let api = Api::new(&s);
    let layers = vec![
        api.blob(&alice, "alice/old", &random_bytes(100)).await,
        api.blob(&alice, "alice/old", &random_bytes(100)).await,
    ];
    let (signed, payload) = schema1_signed("alice/old", "1.0", &layers);
    assert_ne!(signed, payload);
    let digest = sha256(&payload);

    // With its media type (Docker 1.10+), without any Content-Type (Docker 1.6-1.9), and as
    // plain JSON (accepted by CNCF Distribution too).
    for (tag, ct) in [("1.0", SCHEMA1_SIGNED), ("legacy", ""), ("json", "application/json")] {
        let g = api.put_manifest(Some(&alice), "alice/old", tag, ct, &signed).await;
        ok(&g, 201, &format!("PUT schema1 {ct:?}"));
        assert_eq!(
            g.h("docker-content-digest"),
            Some(digest.clone()),
            "digest of the payload without signatures"
        );
        for reference in [tag, digest.as_str()] {
            let g = go(api
                .req(Method::GET, &format!("/v2/alice/old/manifests/{reference}"), None)
                .header("Accept", SCHEMA1_SIGNED))
            .await;
            ok(&g, 200, reference);
            assert_eq!(g.body, signed, "served byte for byte");
            assert_eq!(g.h("content-type").as_deref(), Some(SCHEMA1_SIGNED));
            assert_eq!(g.h("docker-content-digest"), Some(digest.clone()));
        }
    }
    // Pushed by its digest, the URL digest is the payload's too.
    let g = api
        .put_manifest(Some(&alice), "alice/old", &digest, SCHEMA1_SIGNED, &signed)
        .await;
    ok(&g, 201, "PUT schema1 by digest");
    let g = api
        .put_manifest(Some(&alice), "alice/old", &sha256(&signed), SCHEMA1_SIGNED, &signed)
        .await;
    err(&g, 400, "DIGEST_INVALID", "schema1 by the digest of the signed bytes");
    // Unsigned schema1 sent without a type is served as the unsigned type, not as a JWS.
    let unsigned = payload.clone();
    for ct in ["", "application/json"] {
        let g = api
            .put_manifest(Some(&alice), "alice/old", "unsigned", ct, &unsigned)
            .await;
        ok(&g, 201, "unsigned schema1");
        let g = api.get("/v2/alice/old/manifests/unsigned", None).await;
        assert_eq!(
            g.h("content-type").as_deref(),
            Some("application/vnd.docker.distribution.manifest.v1+json")
        );
        assert_eq!(g.body, unsigned);
    }
    // Its layers must be in the repository.
    let (bad, _) = schema1_signed("alice/old", "bad", &[sha256(b"absent")]);
    let g = api
        .put_manifest(Some(&alice), "alice/old", "bad", SCHEMA1_SIGNED, &bad)
        .await;
    err(&g, 400, "MANIFEST_BLOB_UNKNOWN", "schema1 with a missing layer");
}
