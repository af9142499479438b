//! Pull: end-2 (blobs, with HEAD and Range) and end-3 (manifests of every media type, content
//! negotiation for old clients).

use super::*;

#[tokio::test]
async fn blobs_get_head_range_and_unknown() {
    blobs_get_head_range_and_unknown_with("").await
}

/// On the storage `extra` configures (`s3` runs it on S3).
pub(crate) async fn blobs_get_head_range_and_unknown_with(extra: &str) {
    let s = Server::start(extra);
    let (alice, _, _) = users(&s).await;
    let api = Api::new(&s);
    let data = random_bytes(1000);
    let digest = api.blob(&alice, "alice/app", &data).await;
    let path = format!("/v2/alice/app/blobs/{digest}");

    let g = api.get(&path, None).await;
    ok(&g, 200, "GET blob");
    assert_eq!(g.body, data);
    assert_eq!(g.h("content-length"), Some("1000".into()));
    assert_eq!(g.h("docker-content-digest"), Some(digest.clone()));

    let g = api.head(&path, None).await;
    ok(&g, 200, "HEAD blob");
    assert!(g.body.is_empty(), "HEAD has no body");
    assert_eq!(g.h("content-length"), Some("1000".into()));
    assert_eq!(g.h("docker-content-digest"), Some(digest.clone()));

    // RFC 9110 ranges: resumable pulls.
    for (range, from, to) in [
        ("bytes=10-19", 10, 19),
        ("bytes=990-", 990, 999),
        ("bytes=-5", 995, 999),
    ] {
        let g = go(api.req(Method::GET, &path, None).header("Range", range)).await;
        ok(&g, 206, range);
        assert_eq!(g.body, data[from..=to], "{range}");
        assert_eq!(g.h("content-range"), Some(format!("bytes {from}-{to}/1000")), "{range}");
        assert_eq!(g.h("content-length"), Some((to - from + 1).to_string()), "{range}");
    }
    for range in ["bytes=5000-6000", "bytes=500-0", "bytes=abc"] {
        let g = go(api.req(Method::GET, &path, None).header("Range", range)).await;
        assert_eq!(g.status, 416, "unsatisfiable or invalid range {range}");
        assert_eq!(g.h("content-range"), Some("bytes */1000".into()), "{range}");
    }
    let g = go(api.req(Method::GET, &path, None).header("Range", "lines=1-2")).await;
    assert_eq!(g.status, 200, "another unit is ignored");

    // Unknown blobs, blobs of another repository, and repositories that do not exist.
    let unknown = sha256(b"never pushed");
    for method in [Method::GET, Method::HEAD] {
        let g = go(api.req(method.clone(), &format!("/v2/alice/app/blobs/{unknown}"), None)).await;
        err(&g, 404, "BLOB_UNKNOWN", &format!("{method} unknown blob"));
    }
    let elsewhere = api.blob(&alice, "alice/other", b"only in alice/other").await;
    ok(
        &api.get(&format!("/v2/alice/other/blobs/{elsewhere}"), None).await,
        200,
        "blob in its own repository",
    );
    err(
        &api.get(&format!("/v2/alice/app/blobs/{elsewhere}"), None).await,
        404,
        "BLOB_UNKNOWN",
        "blob of another repository, not linked",
    );
    err(
        &api.head(&format!("/v2/alice/app/blobs/{elsewhere}"), None).await,
        404,
        "BLOB_UNKNOWN",
        "HEAD blob of another repository",
    );
    let g = api.get(&format!("/v2/nobody/nothing/blobs/{digest}"), None).await;
    assert_eq!(g.status, 404, "blob of a repository that does not exist");
    // A digest that cannot name a blob is simply not found (end-2 lists 404 only).
    for bad in ["sha256:notadigest", "sha384:abcd", "latest"] {
        let path = format!("/v2/alice/app/blobs/{bad}");
        err(&api.get(&path, None).await, 404, "BLOB_UNKNOWN", &path);
        err(&api.head(&path, None).await, 404, "BLOB_UNKNOWN", &path);
    }
}

/// A Docker schema2 or OCI image manifest for `platform` over fresh blobs in `repo`.
async fn platform_image(api: &Api, auth: &str, repo: &str, media_type: &str, arch: &str) -> Pushed {
    let (config_type, layer_type) = if media_type == DOCKER_MANIFEST {
        (DOCKER_CONFIG, DOCKER_LAYER)
    } else {
        (OCI_CONFIG, OCI_LAYER)
    };
    let config = format!("{{\"architecture\":\"{arch}\",\"os\":\"linux\",\"rootfs\":{{}}}}").into_bytes();
    let layer = random_bytes(200);
    api.blob(auth, repo, &config).await;
    api.blob(auth, repo, &layer).await;
    let body = json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": desc(config_type, &config),
        "layers": [desc(layer_type, &layer)],
    });
    api.manifest(auth, repo, "", media_type, serde_json::to_vec(&body).unwrap())
        .await
}

fn list_of(media_type: &str, children: &[(&Pushed, &str)]) -> Vec<u8> {
    let manifests: Vec<Value> = children
        .iter()
        .map(|(p, arch)| {
            let mut d = p.descriptor();
            d["platform"] = json!({"architecture": arch, "os": "linux"});
            d
        })
        .collect();
    // Indented by hand: the registry must keep the bytes exactly as pushed.
    let v = json!({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests});
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(&v, &mut ser).unwrap();
    buf.extend_from_slice(b"\n\n");
    buf
}

#[tokio::test]
async fn manifests_of_every_media_type_by_tag_and_digest() {
    manifests_of_every_media_type_by_tag_and_digest_with("").await
}

/// On the storage `extra` configures (`s3` runs it on S3).
pub(crate) async fn manifests_of_every_media_type_by_tag_and_digest_with(extra: &str) {
    let s = Server::start(extra);
    let (alice, _, _) = users(&s).await;
    let api = Api::new(&s);
    let repo = "alice/multi";

    let oci_arm = platform_image(&api, &alice, repo, OCI_MANIFEST, "arm64").await;
    let oci_amd = platform_image(&api, &alice, repo, OCI_MANIFEST, "amd64").await;
    let docker_arm = platform_image(&api, &alice, repo, DOCKER_MANIFEST, "arm64").await;
    let docker_amd = platform_image(&api, &alice, repo, DOCKER_MANIFEST, "amd64").await;
    let index = list_of(OCI_INDEX, &[(&oci_arm, "arm64"), (&oci_amd, "amd64")]);
    let index = api.manifest(&alice, repo, "index", OCI_INDEX, index).await;
    let list = list_of(DOCKER_LIST, &[(&docker_arm, "arm64"), (&docker_amd, "amd64")]);
    let list = api.manifest(&alice, repo, "list", DOCKER_LIST, list).await;
    let oci = api
        .manifest(&alice, repo, "oci", OCI_MANIFEST, oci_amd.body.clone())
        .await;
    let docker = api
        .manifest(&alice, repo, "docker", DOCKER_MANIFEST, docker_amd.body.clone())
        .await;

    for (tag, m) in [("oci", &oci), ("docker", &docker), ("index", &index), ("list", &list)] {
        for reference in [tag, m.digest.as_str()] {
            let path = format!("/v2/{repo}/manifests/{reference}");
            // Accept everything a current client accepts.
            let accept = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(", ");
            let g = go(api.req(Method::GET, &path, None).header("Accept", &accept)).await;
            ok(&g, 200, &path);
            assert_eq!(g.h("content-type").as_deref(), Some(m.media_type.as_str()), "{path}");
            assert_eq!(g.h("docker-content-digest"), Some(m.digest.clone()), "{path}");
            assert_eq!(g.body, m.body, "{path}: bytes as pushed");
            assert_eq!(sha256(&g.body), m.digest);

            let g = go(api.req(Method::HEAD, &path, None).header("Accept", &accept)).await;
            ok(&g, 200, &format!("HEAD {path}"));
            assert!(g.body.is_empty(), "HEAD has no body");
            assert_eq!(g.h("content-length"), Some(m.body.len().to_string()), "HEAD {path}");
            assert_eq!(g.h("docker-content-digest"), Some(m.digest.clone()));
            assert_eq!(g.h("content-type").as_deref(), Some(m.media_type.as_str()));
        }
    }

    // A client that takes single manifests only gets the linux/amd64 child of a list.
    for (tag, single, child) in [
        ("list", DOCKER_MANIFEST, &docker_amd),
        ("index", OCI_MANIFEST, &oci_amd),
    ] {
        let g = go(api
            .req(Method::GET, &format!("/v2/{repo}/manifests/{tag}"), None)
            .header("Accept", single))
        .await;
        ok(&g, 200, tag);
        assert_eq!(g.h("docker-content-digest"), Some(child.digest.clone()), "{tag}");
        assert_eq!(g.h("content-type").as_deref(), Some(single));
        assert_eq!(g.body, child.body);
    }
    // ... but one that lists the list type gets the list.
    let g = go(api
        .req(Method::GET, &format!("/v2/{repo}/manifests/list"), None)
        .header("Accept", DOCKER_MANIFEST)
        .header("Accept", DOCKER_LIST))
    .await;
    assert_eq!(g.h("docker-content-digest"), Some(list.digest.clone()));

    // Unknown manifests and repositories. A reference that is neither a tag nor a digest names
    // nothing: 404 (the conformance suite asks for `.INVALID_MANIFEST_NAME`).
    let nothing = sha256(b"no such manifest");
    let too_long = "t".repeat(129);
    for reference in [
        "nope",
        nothing.as_str(),
        ".INVALID_MANIFEST_NAME",
        "sha256:totallywrong",
        too_long.as_str(),
    ] {
        let path = format!("/v2/{repo}/manifests/{reference}");
        err(&api.get(&path, None).await, 404, "MANIFEST_UNKNOWN", &path);
        err(&api.head(&path, None).await, 404, "MANIFEST_UNKNOWN", &path);
    }
    for path in ["/v2/nobody/nothing/manifests/latest", "/v2/nobody/nothing/tags/list"] {
        let g = api.get(path, None).await;
        assert_eq!(g.status, 404, "{path}: {}", g.text());
    }
}

/// A layer file shorter than its recorded size (disk corruption, a truncated copy) is refused
/// with a JSON 500 before any byte is mapped; mapping it would kill the whole server (SIGBUS),
/// and the server goes on serving.
#[tokio::test]
async fn a_truncated_blob_file_is_an_error_not_a_crash() {
    let s = Server::start("");
    s.register("alice", "secret1").await;
    let mut images = chain(2);
    images[1].layer = gzip_tar(&[("big".into(), random_bytes(3 << 20))]);
    push_13(&s.url, "alice", "secret1", "alice/app", &images, "latest").await;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(blob_file(&s, &sha256(&images[1].layer)))
        .expect("layer file");
    file.set_len(4096).expect("truncate");
    let c = client();
    let r = c
        .get(format!("{}/v1/images/{}/layer", s.url, images[1].id))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 500);
    assert!(body_json(r).await["error"].is_string());
    let r = c
        .get(format!("{}/v1/images/{}/layer", s.url, images[0].id))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200, "the server still serves");
    assert_eq!(r.bytes().await.expect("body").to_vec(), images[0].layer);
}

/// Blobs are sent by the kernel (`sendfile`) after actix-http writes the head: on one
/// connection, pipelined requests (whole blobs, a range, a JSON answer in between) come back
/// whole and in order, each body exactly its `Content-Length`.
#[tokio::test]
async fn pipelined_blob_downloads_arrive_whole_and_in_order() {
    pipelined_blob_downloads_arrive_whole_and_in_order_with("").await
}

/// On the storage `extra` configures (`s3` runs it on S3).
pub(crate) async fn pipelined_blob_downloads_arrive_whole_and_in_order_with(extra: &str) {
    use std::io::{Read, Write};
    let s = Server::start(extra);
    let (alice, _, _) = users(&s).await;
    let api = Api::new(&s);
    let data = random_bytes(5 << 20);
    let digest = api.blob(&alice, "alice/app", &data).await;
    let get = |extra: &str| {
        format!("GET /v2/alice/app/blobs/{digest} HTTP/1.1\r\nHost: x\r\nAuthorization: {alice}\r\n{extra}\r\n")
    };
    let requests = [
        get(""),
        get("Range: bytes=1000-2999\r\n"),
        format!("GET /v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: {alice}\r\n\r\n"),
        get("Connection: close\r\n"),
    ]
    .concat();
    let mut sock = std::net::TcpStream::connect(&s.addr).expect("connect");
    sock.write_all(requests.as_bytes()).expect("send");
    let mut out = Vec::new();
    sock.read_to_end(&mut out).expect("read to close");

    let mut rest = &out[..];
    let mut answers = Vec::new();
    while !rest.is_empty() {
        let end = rest.windows(4).position(|w| w == b"\r\n\r\n").expect("a head") + 4;
        let head = String::from_utf8_lossy(&rest[..end]).into_owned();
        let len: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().to_string())
            })
            .expect("content-length")
            .parse()
            .expect("number");
        answers.push((head, rest[end..end + len].to_vec()));
        rest = &rest[end + len..];
    }
    assert_eq!(answers.len(), 4, "four answers");
    assert!(answers[0].0.starts_with("HTTP/1.1 200"), "{}", answers[0].0);
    assert!(answers[0].1 == data, "first blob differs");
    assert!(answers[1].0.starts_with("HTTP/1.1 206"), "{}", answers[1].0);
    assert_eq!(answers[1].1, data[1000..3000]);
    assert!(answers[2].0.starts_with("HTTP/1.1 200"), "{}", answers[2].0);
    assert_eq!(answers[2].1, b"{}");
    assert!(answers[3].1 == data, "last blob differs");
}
