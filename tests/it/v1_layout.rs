//! A store written by a Skiff of layout 2 (one `images/<id>/` per id, `_owner` its first
//! uploader) is migrated when the server opens it: every image becomes its owner's copy, and
//! everything pulls, checks and is private exactly as before.

use crate::common::*;
use sha2::{Digest, Sha256};
use std::path::Path;

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn write(root: &Path, key: &str, data: &[u8]) {
    let path = root.join(key);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, data).expect("write");
}

/// `images` (base first) pushed into `repo` and tagged `latest`, as layout 2 stored them.
fn layout_2_push(root: &Path, repo: &str, images: &[Image], owner: Option<&str>) {
    let flat = repo.replace('/', "+");
    let mut ancestry: Vec<String> = Vec::new();
    for img in images {
        ancestry.insert(0, img.id.clone());
        let digest = sha256(&img.layer);
        let hex = digest.trim_start_matches("sha256:");
        write(root, &format!("blobs/sha256/{}/{hex}", &hex[..2]), &img.layer);
        let dir = format!("images/{}", img.id);
        write(root, &format!("{dir}/json"), &img.json);
        write(
            root,
            &format!("{dir}/ancestry"),
            &serde_json::to_vec(&ancestry).unwrap(),
        );
        let link = serde_json::json!({"digest": digest, "size": img.layer.len()});
        write(root, &format!("{dir}/layer"), link.to_string().as_bytes());
        write(root, &format!("{dir}/_checksum"), img.payload_checksum().as_bytes());
        if let Some(o) = owner {
            write(root, &format!("{dir}/_owner"), o.as_bytes());
        }
        write(root, &format!("{dir}/_repos/{flat}"), b"");
        write(root, &format!("repositories/{flat}/_images/{}", img.id), b"");
    }
    let top = &images.last().expect("images").id;
    write(root, &format!("repositories/{flat}/_tags/latest"), top.as_bytes());
}

#[tokio::test]
async fn a_layout_2_store_is_served_as_before() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut s = Server::start_in(dir, "");
    s.register("alice", "secret1").await;
    s.register("bobby", "secret2").await;
    let c = client();
    let r = c
        .put(format!("{}/v1/repositories/alice/app/properties", s.url))
        .header("Authorization", basic("alice", "secret1"))
        .json(&serde_json::json!({"access": "private"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "alice/app private");
    s.kill9();

    // What a layout 2 Skiff wrote: alice's private chain, and a public image from before
    // owners were recorded.
    let root = dir.join("data/registry");
    let (private, old) = (chain(2), chain(1));
    layout_2_push(&root, "alice/app", &private, Some("alice"));
    layout_2_push(&root, "alice/old", &old, None);
    write(&root, "_layout", br#"{"version": 2}"#);

    let s = Server::start_in(dir, "");
    let pulled = pull_13(&s.url, Some(("alice", "secret1")), "alice/app", "latest")
        .await
        .expect("the owner pulls");
    for (p, img) in pulled.iter().zip(&private) {
        assert_eq!((&p.id, &p.json, &p.layer), (&img.id, &img.json, &img.layer));
    }
    assert!(
        pull_13(&s.url, None, "alice/app", "latest").await.is_err(),
        "still private"
    );
    let pulled = pull_13(&s.url, None, "alice/old", "latest")
        .await
        .expect("anyone pulls");
    assert_eq!(pulled[0].layer, old[0].layer);
    for img in &private {
        let r = c
            .get(format!("{}/v1/images/{}/json", s.url, img.id))
            .header("Authorization", basic("alice", "secret1"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "alice reads her image by id alone");
        assert_eq!(
            r.headers()["x-docker-checksum-payload"].to_str().unwrap(),
            img.payload_checksum()
        );
    }
    // The owner is as layout 2 recorded it: alice's image is hers to build on, a stranger's
    // push under its id is their own.
    let r = c
        .get(format!("{}/v1/images/{}/json", s.url, private[0].id))
        .header("Authorization", basic("bobby", "secret2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "hidden from a stranger");
    let mut theirs = chain(1).remove(0);
    theirs.json = image_json(&private[0].id, None);
    theirs.id = private[0].id.clone();
    push_13(&s.url, "bobby", "secret2", "bobby/mine", &[theirs.clone()], "latest").await;
    let pulled = pull_13(&s.url, None, "bobby/mine", "latest").await.expect("pull");
    assert_eq!(pulled[0].layer, theirs.layer);

    let (code, out, err) = cli_code(dir, &["check"]);
    assert_eq!(code, Some(0), "the migrated store checks clean: {out}{err}");
    assert!(out.contains("4 v1 images"), "three migrated, one pushed since: {out}");
}
