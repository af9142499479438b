//! `skiff check`: real v1 and v2 pushes over HTTP, then damage on disk (a flipped byte, a
//! deleted blob, tags naming what does not exist); check reports each and exits 1, a clean store
//! exits 0, and `--repair` quarantines corrupt blobs (404 afterwards, bytes kept) so that a
//! re-push restores them.

use crate::common::*;
use crate::v2::{ok, sha256, Api};
use std::path::{Path, PathBuf};

fn blob_file(dir: &Path, digest: &str) -> PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    dir.join("data/registry/blobs/sha256").join(&hex[..2]).join(hex)
}

fn flip_a_byte(path: &Path) {
    let mut bytes = std::fs::read(path).expect("read blob file");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x55;
    std::fs::write(path, bytes).expect("write blob file");
}

fn repo_dir(dir: &Path, flat: &str) -> PathBuf {
    dir.join("data/registry/repositories").join(flat)
}

/// The lines of `out` that mention `needle`.
fn lines_with<'a>(out: &'a str, needle: &str) -> Vec<&'a str> {
    out.lines().filter(|l| l.contains(needle)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_damage_and_repair_quarantines_corrupt_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut s = Server::start_in(dir, "");
    s.register("alice", "secret1").await;
    let auth = basic("alice", "secret1");
    let api = Api::new(&s);

    // v1: a chain of two images, tagged; v2: two images in one repository.
    let images = chain(2);
    push_13(&s.url, "alice", "secret1", "alice/old", &images, "latest").await;
    let one = api.image(&auth, "alice/app", "one", serde_json::json!({})).await;
    let two = api.image(&auth, "alice/app", "two", serde_json::json!({})).await;
    let layer_of = |m: &crate::v2::Pushed, field: &str| {
        let v: serde_json::Value = serde_json::from_slice(&m.body).unwrap();
        match field {
            "config" => v["config"]["digest"].as_str().unwrap().to_string(),
            _ => v["layers"][0]["digest"].as_str().unwrap().to_string(),
        }
    };
    let (one_layer, two_config) = (layer_of(&one, "layer"), layer_of(&two, "config"));
    let one_layer_bytes = std::fs::read(blob_file(dir, &one_layer)).unwrap();
    let two_config_bytes = std::fs::read(blob_file(dir, &two_config)).unwrap();
    let v1_layer = sha256(&images[1].layer);

    // Clean, checked beside the running server: exit 0, read-only; --repair refuses.
    let (code, out, err) = cli_code(dir, &["check"]);
    assert_eq!(code, Some(0), "clean store: {out}{err}");
    assert!(out.contains("no problems") && out.contains("server running"), "{out}");
    assert!(out.contains("6 blobs") && out.contains("2 v1 images"), "{out}");
    let (code, _, err) = cli_code(dir, &["check", "--repair"]);
    assert_eq!(code, Some(2), "--repair beside a live server: {err}");
    assert!(err.contains("server stopped"), "{err}");

    // The damage.
    flip_a_byte(&blob_file(dir, &one_layer));
    flip_a_byte(&blob_file(dir, &v1_layer));
    std::fs::remove_file(blob_file(dir, &two_config)).unwrap();
    let missing_manifest = sha256(b"never pushed");
    std::fs::write(
        repo_dir(dir, "alice+app").join("_manifests/tags/dangling"),
        &missing_manifest,
    )
    .unwrap();
    let missing_image = random_id();
    std::fs::write(repo_dir(dir, "alice+old").join("_tags/dangling"), &missing_image).unwrap();

    let (code, out, err) = cli_code(dir, &["check"]);
    assert_eq!(code, Some(1), "damaged store: {out}{err}");
    let corrupt = lines_with(&out, "not to its digest");
    assert_eq!(corrupt.len(), 2, "two corrupt blobs: {out}");
    for d in [&one_layer, &v1_layer] {
        let hex = d.trim_start_matches("sha256:");
        assert!(
            corrupt
                .iter()
                .any(|l| l.starts_with("blob blobs/sha256/") && l.contains(hex)),
            "{d} reported corrupt: {out}"
        );
    }
    let gone = lines_with(&out, &two_config);
    assert!(
        gone.iter()
            .any(|l| l.starts_with("blob-link ") && l.contains("not in the blob store")),
        "link to the deleted blob: {out}"
    );
    assert!(
        gone.iter()
            .any(|l| l.starts_with("manifest ") && l.contains(&two.digest)),
        "manifest referencing the deleted blob: {out}"
    );
    assert!(
        lines_with(&out, &missing_manifest)
            .iter()
            .any(|l| l.starts_with("v2-tag ") && l.contains("alice/app:dangling")),
        "v2 tag to a missing manifest: {out}"
    );
    assert!(
        lines_with(&out, &missing_image)
            .iter()
            .any(|l| l.starts_with("v1-tag ") && l.contains("does not exist")),
        "v1 tag to a missing image: {out}"
    );
    assert!(out.contains(": 6 problems"), "{out}");

    // The same as JSON, with the server stopped.
    s.kill9();
    let (code, out, _) = cli_code(dir, &["check", "--json"]);
    assert_eq!(code, Some(1));
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
    let mut kinds: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["blob", "blob", "blob-link", "manifest", "v1-tag", "v2-tag"]);

    // --repair: the corrupt blobs move to the quarantine, bytes kept; the rest is reported.
    let (code, out, err) = cli_code(dir, &["check", "--repair"]);
    assert_eq!(code, Some(1), "problems are still reported: {out}{err}");
    let moved = lines_with(&out, "quarantined ");
    assert_eq!(moved.len(), 2, "{out}");
    for d in [&one_layer, &v1_layer] {
        assert!(!blob_file(dir, d).exists(), "{d} left the blob store");
        let line = moved.iter().find(|l| l.contains(d.as_str())).expect("quarantine line");
        let to = PathBuf::from(line.rsplit(" -> ").next().unwrap());
        assert!(to.starts_with(dir.join("data/registry/_quarantine")), "{line}");
        let kept = std::fs::read(&to).expect("quarantined bytes kept");
        assert_ne!(sha256(&kept), *d, "the corrupt bytes, as they were");
        let why = std::fs::read_to_string(format!("{}.why", to.display())).expect("note");
        assert!(why.contains(d.as_str()), "{why}");
    }
    let quarantined_v2 = std::fs::read(PathBuf::from(
        moved
            .iter()
            .find(|l| l.contains(&one_layer))
            .unwrap()
            .rsplit(" -> ")
            .next()
            .unwrap(),
    ))
    .unwrap();
    assert_eq!(quarantined_v2.len(), one_layer_bytes.len());

    // Not served any more: 404 BLOB_UNKNOWN, and the v1 layer is gone too.
    let s = Server::start_in(dir, "");
    let api = Api::new(&s);
    let g = api.get(&format!("/v2/alice/app/blobs/{one_layer}"), Some(&auth)).await;
    crate::v2::err(&g, 404, "BLOB_UNKNOWN", "quarantined blob");
    let r = client()
        .get(format!("{}/v1/images/{}/layer", s.url, images[1].id))
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "quarantined v1 layer");

    // A re-push restores them (the v1 layer's bytes through any repository: same digest).
    assert_eq!(api.blob(&auth, "alice/app", &one_layer_bytes).await, one_layer);
    assert_eq!(api.blob(&auth, "alice/app", &two_config_bytes).await, two_config);
    assert_eq!(api.blob(&auth, "alice/fix", &images[1].layer).await, v1_layer);
    let g = api.get(&format!("/v2/alice/app/blobs/{one_layer}"), Some(&auth)).await;
    ok(&g, 200, "restored blob");
    assert_eq!(g.body, one_layer_bytes);
    let pulled = pull_13(&s.url, Some(("alice", "secret1")), "alice/old", "latest")
        .await
        .expect("v1 pull after the re-push");
    assert_eq!(pulled[1].layer, images[1].layer);

    // With the dangling tags removed, the store is clean again.
    let g = api.delete("/v2/alice/app/manifests/dangling", Some(&auth)).await;
    assert!(g.status == 202 || g.status == 404, "{}", g.status);
    let _ = std::fs::remove_file(repo_dir(dir, "alice+app").join("_manifests/tags/dangling"));
    let r = client()
        .delete(format!("{}/v1/repositories/alice/old/tags/dangling", s.url))
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "v1 tag delete");
    let (code, out, err) = cli_code(dir, &["check"]);
    assert_eq!(code, Some(0), "after re-push and untagging: {out}{err}");
    drop(s);
    let (code, out, _) = cli_code(dir, &["check"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("server running"), "{out}");
}

/// A missing storage directory is an error (2), not a clean store.
#[test]
fn check_without_storage_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, _, err) = cli_code(tmp.path(), &["check"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no registry storage"), "{err}");
}
