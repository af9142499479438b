//! Garbage collection: deletes drop references only; `skiff gc` removes bytes nothing refers to.

use crate::common::*;
use sha2::{Digest, Sha256};

async fn upload(c: &reqwest::Client, url: &str, repo: &str, data: &[u8]) -> String {
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(data)));
    let r = c
        .post(format!("{url}/v2/{repo}/blobs/uploads/?digest={digest}"))
        .header("Authorization", basic("alice", "secret1"))
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    digest
}

fn blob_file(dir: &std::path::Path, digest: &str) -> std::path::PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    dir.join("data/registry/blobs/sha256").join(&hex[..2]).join(hex)
}

#[tokio::test]
async fn gc_removes_only_unreferenced_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut s = Server::start_in(dir, "");
    s.register("alice", "secret1").await;
    let c = client();
    let auth = basic("alice", "secret1");
    let shared = upload(&c, &s.url, "alice/a", b"shared by two repositories").await;
    let r = c
        .post(format!(
            "{}/v2/alice/b/blobs/uploads/?mount={shared}&from=alice/a",
            s.url
        ))
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "mount");
    let lonely = upload(&c, &s.url, "alice/a", b"only in one repository").await;
    let images = chain(2);
    push_13(&s.url, "alice", "secret1", "alice/v1app", &images, "latest").await;
    for d in [&shared, &lonely] {
        let r = c
            .delete(format!("{}/v2/alice/a/blobs/{d}", s.url))
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    assert!(blob_file(dir, &lonely).exists(), "delete drops the link, not the bytes");

    let (ok, _, err) = cli(dir, &["gc"], "");
    assert!(
        !ok && err.contains("in use by another process"),
        "gc refuses to run beside the server: {err}"
    );
    s.kill9();
    let (ok, out, err) = cli(dir, &["gc", "--dry-run"], "");
    assert!(ok, "{err}");
    assert!(out.contains("would remove 1 blobs"), "{out}");
    assert!(blob_file(dir, &lonely).exists(), "dry run removes nothing");
    let (ok, out, err) = cli(dir, &["gc"], "");
    assert!(ok, "{err}");
    assert!(out.contains("removed 1 blobs"), "{out}");
    assert!(!blob_file(dir, &lonely).exists());
    assert!(blob_file(dir, &shared).exists());

    let s = Server::start_in(dir, "");
    let r = c
        .get(format!("{}/v2/alice/b/blobs/{shared}", s.url))
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"shared by two repositories");
    let pulled = pull_13(&s.url, None, "alice/v1app", "latest")
        .await
        .expect("v1 layers survive gc");
    assert_eq!(pulled[1].layer, images[1].layer);
}
