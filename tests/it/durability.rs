//! Big layers with flat memory, crashes mid-upload, and restarts that lose nothing acknowledged.

use crate::common::*;
use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::time::Duration;

const MIB: usize = 1 << 20;

/// Opens a repository for alice and returns (client, write token auth).
async fn open_repo(s: &Server, repo: &str) -> (reqwest::Client, String) {
    (
        client(),
        token_auth(&write_token(&s.url, ("alice", "secret1"), repo).await),
    )
}

fn pattern() -> Bytes {
    Bytes::from((0..MIB).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>())
}

#[tokio::test]
async fn one_gib_layer_streams_with_flat_memory() {
    let s = Server::start("");
    s.register("alice", "secret1").await;
    let (c, tauth) = open_repo(&s, "alice/big").await;
    let id = random_id();
    let json = image_json(&id, None);
    expect(
        c.put(format!("{}/v1/images/{id}/json", s.url))
            .header("Authorization", &tauth)
            .body(json.clone())
            .send()
            .await
            .unwrap(),
        200,
        "json",
    )
    .await;

    let chunk = pattern();
    let mut content = Sha256::new();
    let mut payload = Sha256::new();
    payload.update(&json);
    payload.update(b"\n");
    for _ in 0..1024 {
        content.update(&chunk);
        payload.update(&chunk);
    }
    let content = hex::encode(content.finalize());
    let payload = format!("sha256:{}", hex::encode(payload.finalize()));

    let (baseline, _) = s.rss_kib();
    let body = futures::stream::iter((0..1024).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let r = c
        .put(format!("{}/v1/images/{id}/layer", s.url))
        .header("Authorization", &tauth)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    expect(r, 200, "1 GiB layer").await;
    let (_, peak) = s.rss_kib();
    assert!(
        peak.saturating_sub(baseline) < 32 * 1024,
        "upload grew RSS from {baseline} to {peak} KiB"
    );
    let r = c
        .put(format!("{}/v1/images/{id}/checksum", s.url))
        .header("Authorization", &tauth)
        .header("X-Docker-Checksum-Payload", &payload)
        .send()
        .await
        .unwrap();
    expect(r, 200, "checksum of 1 GiB").await;
    let r = c
        .put(format!("{}/v1/repositories/alice/big/tags/latest", s.url))
        .header("Authorization", &tauth)
        .json(&id)
        .send()
        .await
        .unwrap();
    expect(r, 200, "tag").await;

    let r = c.get(format!("{}/v1/images/{id}/layer", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"].to_str().unwrap(),
        (1024 * MIB).to_string()
    );
    let mut stream = r.bytes_stream();
    let mut got = Sha256::new();
    let mut n = 0usize;
    while let Some(b) = stream.next().await {
        let b = b.unwrap();
        n += b.len();
        got.update(&b);
    }
    assert_eq!(n, 1024 * MIB);
    assert_eq!(
        hex::encode(got.finalize()),
        content,
        "downloaded bytes are the uploaded bytes"
    );
    let (_, peak) = s.rss_kib();
    assert!(
        peak.saturating_sub(baseline) < 32 * 1024,
        "download grew RSS from {baseline} to {peak} KiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_upload_never_exposes_a_half_written_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Server::start_in(tmp.path(), "");
    s.register("alice", "secret1").await;
    let (c, tauth) = open_repo(&s, "alice/crash").await;
    let img = &chain(1)[0];
    expect(
        c.put(format!("{}/v1/images/{}/json", s.url, img.id))
            .header("Authorization", &tauth)
            .body(img.json.clone())
            .send()
            .await
            .unwrap(),
        200,
        "json",
    )
    .await;

    // 64 MiB, then the client stalls: the server holds a partial temp file when it is killed.
    let chunk = pattern();
    let body = futures::stream::iter((0..64).map(move |_| Ok::<_, std::io::Error>(chunk.clone())))
        .chain(futures::stream::pending());
    let url = format!("{}/v1/images/{}/layer", s.url, img.id);
    let upload = tokio::spawn({
        let (c, tauth) = (c.clone(), tauth.clone());
        async move {
            c.put(url)
                .header("Authorization", tauth)
                .body(reqwest::Body::wrap_stream(body))
                .send()
                .await
        }
    });
    let root = tmp.path().join("data/registry");
    let written = || temp_files(&root).iter().map(|(_, len)| len).sum::<u64>();
    assert!(
        wait_until(Duration::from_secs(30), || written() >= 32 * MIB as u64),
        "upload reached the disk"
    );
    s.kill9();
    assert!(upload.await.unwrap().is_err(), "the client saw the connection die");

    let s = Server::start_in(tmp.path(), "");
    assert_eq!(written(), 0, "interrupted temp files are removed at start-up");
    let blobs: Vec<_> = walk(&tmp.path().join("data/registry/blobs"));
    assert!(blobs.is_empty(), "no partial blob became visible: {blobs:?}");
    // The acknowledged token survives; the image is not served; the push resumes from PUT json.
    for leaf in ["json", "layer"] {
        expect(
            c.get(format!("{}/v1/images/{}/{leaf}", s.url, img.id))
                .header("Authorization", &tauth)
                .send()
                .await
                .unwrap(),
            400,
            "not served",
        )
        .await;
    }
    push_image(&c, &s.url, &tauth, img).await;
    let r = c
        .get(format!("{}/v1/images/{}/layer", s.url, img.id))
        .header("Authorization", &tauth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), img.layer.as_slice());
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test]
async fn restart_after_kill_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Server::start_in(tmp.path(), "");
    s.register("alice", "secret1").await;
    let images = chain(3);
    let token = push_13(&s.url, "alice", "secret1", "alice/keep", &images, "latest").await;
    let c = client();
    let props = format!("{}/v1/repositories/alice/keep/properties", s.url);
    let r = c
        .put(&props)
        .header("Authorization", basic("alice", "secret1"))
        .json(&serde_json::json!({"description": "kept"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.kill9();

    let s = Server::start_in(tmp.path(), "");
    let pulled = pull_13(&s.url, Some(("alice", "secret1")), "alice/keep", "latest")
        .await
        .expect("pull after crash");
    for (p, img) in pulled.iter().zip(&images) {
        assert_eq!(p.layer, img.layer);
        assert_eq!(p.json, img.json);
    }
    let r = c
        .get(format!("{}/v1/repositories/alice/keep/tags", s.url))
        .header("Authorization", token_auth(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(body_json(r).await["latest"], images[2].id.as_str());
    let found = body_json(c.get(format!("{}/v1/search?q=kept", s.url)).send().await.unwrap()).await;
    assert_eq!(found["results"][0]["name"], "alice/keep");
}

/// Two processes on one storage directory (an index with its registry, and a registry-only
/// node beside it): the second one's start-up leaves the first one's layer upload in flight
/// alone, and that upload completes and is served whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_storage_keeps_the_first_ones_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::start_in(tmp.path(), "");
    s.register("alice", "secret1").await;
    let (c, tauth) = open_repo(&s, "alice/shared").await;
    let img = &chain(1)[0];
    let put = |leaf: &str| c.put(format!("{}/v1/images/{}/{leaf}", s.url, img.id));
    expect(
        put("json")
            .header("Authorization", &tauth)
            .body(img.json.clone())
            .send()
            .await
            .unwrap(),
        200,
        "json",
    )
    .await;

    // 16 MiB in two halves; the second is sent once the other process is up.
    let chunk = pattern();
    let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Bytes, std::io::Error>>();
    let upload = tokio::spawn({
        let (c, tauth, url) = (
            c.clone(),
            tauth.clone(),
            format!("{}/v1/images/{}/layer", s.url, img.id),
        );
        async move {
            c.put(url)
                .header("Authorization", tauth)
                .body(reqwest::Body::wrap_stream(rx))
                .send()
                .await
        }
    });
    for _ in 0..8 {
        tx.unbounded_send(Ok(chunk.clone())).unwrap();
    }
    let root = tmp.path().join("data/registry");
    let written = || temp_files(&root).iter().map(|(_, len)| len).sum::<u64>();
    assert!(
        wait_until(Duration::from_secs(30), || written() >= 8 * MIB as u64),
        "the first half reached the disk"
    );
    let before = temp_files(&root);

    let other = tempfile::tempdir().unwrap();
    let node = Server::start_in(
        other.path(),
        &format!(
            "standalone = false\nindex_endpoint = \"{}\"\n[storage]\npath = {:?}\n",
            s.url,
            root.display().to_string()
        ),
    );
    assert_eq!(
        client().get(format!("{}/v2/", node.url)).send().await.unwrap().status(),
        401,
        "the node serves"
    );
    assert_eq!(
        temp_files(&root),
        before,
        "the node's start-up left the upload in flight alone"
    );

    for _ in 0..8 {
        tx.unbounded_send(Ok(chunk.clone())).unwrap();
    }
    drop(tx);
    expect(
        upload.await.unwrap().unwrap(),
        200,
        "the layer, completed after the node started",
    )
    .await;
    let mut payload = Sha256::new();
    payload.update(&img.json);
    payload.update(b"\n");
    let mut content = Sha256::new();
    for _ in 0..16 {
        payload.update(&chunk);
        content.update(&chunk);
    }
    let checksum = format!("sha256:{}", hex::encode(payload.finalize()));
    let r = put("checksum")
        .header("Authorization", &tauth)
        .header("X-Docker-Checksum-Payload", &checksum)
        .send()
        .await
        .unwrap();
    expect(r, 200, "checksum").await;
    let got = c
        .get(format!("{}/v1/images/{}/layer", s.url, img.id))
        .header("Authorization", &tauth)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    let bytes = got.bytes().await.unwrap();
    assert_eq!(bytes.len(), 16 * MIB);
    assert_eq!(hex::encode(Sha256::digest(&bytes)), hex::encode(content.finalize()));
}
