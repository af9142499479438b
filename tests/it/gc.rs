//! Garbage collection: deletes drop references only; `skiff gc` removes bytes nothing refers to,
//! beside a running server and pushes in flight.

use crate::common::*;
use sha2::{Digest, Sha256};

/// Drops a repository's link to a blob (the bytes stay for gc).
async fn unlink(c: &reqwest::Client, url: &str, repo: &str, digest: &str) {
    let r = c
        .delete(format!("{url}/v2/{repo}/blobs/{digest}"))
        .header("Authorization", basic("alice", "secret1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "unlink {digest} from {repo}");
}

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

/// Pushes a manifest naming a fresh config and `layers` (already in `repo`); its digest and
/// the config's.
async fn manifest(c: &reqwest::Client, url: &str, repo: &str, tag: &str, layers: &[&str]) -> (String, String) {
    let config = format!(
        "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"n\":{}}}",
        rand::random::<u64>()
    );
    let config_digest = upload(c, url, repo, config.as_bytes()).await;
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(
            |d| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": 1}),
        )
        .collect();
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": layers,
    })
    .to_string();
    let r = c
        .put(format!("{url}/v2/{repo}/manifests/{tag}"))
        .header("Authorization", basic("alice", "secret1"))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "manifest {repo}:{tag}");
    (
        format!("sha256:{}", hex::encode(Sha256::digest(body.as_bytes()))),
        config_digest,
    )
}

fn link_file(dir: &std::path::Path, repo: &str, digest: &str) -> std::path::PathBuf {
    dir.join("data/registry/repositories")
        .join(repo.replace('/', "+"))
        .join("_layers/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

fn blob_file(dir: &std::path::Path, digest: &str) -> std::path::PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    dir.join("data/registry/blobs/sha256").join(&hex[..2]).join(hex)
}

/// No grace period: these tests' garbage is seconds old.
const NO_GRACE: &str = "[gc]\ngrace_secs = 0\n";

#[tokio::test]
async fn gc_removes_only_unreferenced_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let s = Server::start_in(dir, NO_GRACE);
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
    // alice/b's manifest references the shared blob: a link alone keeps nothing past the
    // grace period.
    manifest(&c, &s.url, "alice/b", "v1", &[&shared]).await;
    let lonely = upload(&c, &s.url, "alice/a", b"only in one repository").await;
    let images = chain(2);
    push_13(&s.url, "alice", "secret1", "alice/v1app", &images, "latest").await;
    for d in [&shared, &lonely] {
        unlink(&c, &s.url, "alice/a", d).await;
    }
    assert!(blob_file(dir, &lonely).exists(), "delete drops the link, not the bytes");

    // Beside the running server, through its local socket.
    let (ok, out, err) = cli(dir, &["gc", "--dry-run"], "");
    assert!(ok, "{err}");
    assert!(out.contains("would remove 1 blobs"), "{out}");
    assert!(blob_file(dir, &lonely).exists(), "dry run removes nothing");
    let (ok, out, err) = cli(dir, &["gc"], "");
    assert!(ok, "{err}");
    assert!(out.contains("removed 1 blobs"), "{out}");
    assert!(!blob_file(dir, &lonely).exists());
    assert!(blob_file(dir, &shared).exists());
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

/// Starts a run (or a preview) through the API and waits for its result.
async fn run_gc(s: &Server, admin: &str, dry_run: bool) -> serde_json::Value {
    let c = client();
    let r = c
        .post(format!("{}/api/v1/gc", s.url))
        .header("Authorization", admin)
        .json(&serde_json::json!({ "dry_run": dry_run }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let started = r.json::<serde_json::Value>().await.unwrap()["running"]["started"].clone();
    loop {
        let st: serde_json::Value = c
            .get(format!("{}/api/v1/gc", s.url))
            .header("Authorization", admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if st["running"].is_null() && st["last"]["started"] == started {
            assert!(st["last"]["error"].is_null(), "{st}");
            return st["last"]["report"].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Makes a blob file look `secs` old (past the grace period).
fn age(dir: &std::path::Path, digest: &str, secs: u64) {
    skiff::storage::local::backdate(&blob_file(dir, digest), secs).expect("backdate");
}

/// Online collection while v1 and v2 pushes go on: the run frees exactly what its preview
/// said, and every push acknowledged meanwhile stays pullable, also pushes that upload again
/// the very bytes being collected.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gc_runs_beside_pushes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let s = Server::start_in(dir, "[gc]\ngrace_secs = 60\n");
    s.register("alice", "secret1").await;
    let admin = s.make_root();
    let c = client();
    let auth = basic("alice", "secret1");

    // Garbage: blobs uploaded and made older than the grace period, half of them unlinked,
    // half left linked by alice/junk with no manifest naming them (stale links).
    let mut garbage = Vec::new();
    for i in 0..200u32 {
        let data = format!("garbage {i} {}", "x".repeat(i as usize * 37)).into_bytes();
        let d = upload(&c, &s.url, "alice/junk", &data).await;
        if i % 2 == 0 {
            unlink(&c, &s.url, "alice/junk", &d).await;
        } else {
            skiff::storage::local::backdate(&link_file(dir, "alice/junk", &d), 3600).unwrap();
        }
        age(dir, &d, 3600);
        garbage.push((d, data));
    }
    let preview = run_gc(&s, &admin, true).await;
    assert_eq!(preview["removed"], 200, "{preview}");
    let buckets = preview["by_repository"].as_array().unwrap();
    assert_eq!(buckets.len(), 2, "{preview}");
    assert_eq!(
        (buckets[0]["repository"].clone(), buckets[0]["removed"].clone()),
        (serde_json::json!("alice/junk"), serde_json::json!(100))
    );
    assert_eq!(
        (buckets[1]["repository"].clone(), buckets[1]["removed"].clone()),
        (serde_json::Value::Null, serde_json::json!(100))
    );

    // The run, with fresh pushes racing it.
    let pushes = {
        let url = s.url.clone();
        tokio::spawn(async move {
            let c = client();
            let mut done = Vec::new();
            for i in 0..40u32 {
                let data = format!("fresh {i} {}", rand::random::<u64>()).into_bytes();
                done.push((upload(&c, &url, "alice/fresh", &data).await, data));
            }
            let images = chain(2);
            push_13(&url, "alice", "secret1", "alice/v1fresh", &images, "latest").await;
            let layers: Vec<&str> = done.iter().take(5).map(|(d, _)| d.as_str()).collect();
            manifest(&c, &url, "alice/fresh", "v1", &layers).await;
            (done, images)
        })
    };
    let report = run_gc(&s, &admin, false).await;
    let (fresh, images) = pushes.await.unwrap();
    assert_eq!(
        report["removed_bytes"], preview["removed_bytes"],
        "freed what the preview said"
    );
    assert_eq!(report["removed"], preview["removed"]);
    assert_eq!(report["by_repository"], preview["by_repository"], "per repository too");
    assert_eq!(report["links_removed"], 100);
    let r = c
        .get(format!("{}/v2/alice/fresh/manifests/v1", s.url))
        .header("Authorization", &auth)
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the manifest pushed during the run");
    for (d, data) in &fresh {
        let got = c
            .get(format!("{}/v2/alice/fresh/blobs/{d}", s.url))
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(got.bytes().await.unwrap().as_ref(), data.as_slice(), "{d}");
    }
    let pulled = pull_13(&s.url, None, "alice/v1fresh", "latest").await.expect("v1 pull");
    assert_eq!(pulled[1].layer, images[1].layer);

    // Again with garbage, and pushes that upload the garbage's own bytes while it is swept:
    // whatever the order, an acknowledged upload is served.
    for (d, data) in &garbage {
        let again = upload(&c, &s.url, "alice/junk", data).await;
        assert_eq!(&again, d);
        unlink(&c, &s.url, "alice/junk", d).await;
        age(dir, d, 3600);
    }
    // Four clients upload the garbage's bytes again, over and over, until the run is over.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let racing: Vec<_> = (0..4)
        .map(|k| {
            let (url, mut garbage, stop) = (s.url.clone(), garbage.clone(), stop.clone());
            tokio::spawn(async move {
                let c = client();
                garbage.rotate_left(k * 50);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for (d, data) in &garbage {
                        assert_eq!(&upload(&c, &url, "alice/again", data).await, d);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    run_gc(&s, &admin, false).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in racing {
        task.await.unwrap();
    }
    for (d, data) in &garbage {
        let got = c
            .get(format!("{}/v2/alice/again/blobs/{d}", s.url))
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 200, "{d} acknowledged, then lost");
        assert_eq!(got.bytes().await.unwrap().as_ref(), data.as_slice());
    }
}

/// `gc.interval_secs` runs collections on its own.
#[tokio::test]
async fn scheduled_collections_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let s = Server::start_in(dir, "[gc]\ngrace_secs = 0\ninterval_secs = 1\n");
    s.register("alice", "secret1").await;
    let c = client();
    let d = upload(&c, &s.url, "alice/a", b"soon garbage").await;
    unlink(&c, &s.url, "alice/a", &d).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while blob_file(dir, &d).exists() {
        assert!(std::time::Instant::now() < deadline, "no scheduled run removed it");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    s.make_root();
    let st: serde_json::Value = c
        .get(format!("{}/api/v1/gc", s.url))
        .header("Authorization", basic("root", "rootpass1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["last"]["by"], "schedule", "{st}");
}

/// Deleting a manifest frees what only it referenced, at the next run: the preview and the
/// run list the same blobs under the repository whose stale links went, the per-repository
/// view shows that repository's part, and a blob another repository's manifest still names
/// is kept.
#[tokio::test]
async fn deleting_a_manifest_frees_its_blobs_per_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let s = Server::start_in(dir, NO_GRACE);
    s.register("alice", "secret1").await;
    s.register("bobby", "secret2").await;
    let admin = s.make_root();
    let c = client();
    let auth = basic("alice", "secret1");
    let shared = upload(&c, &s.url, "alice/a", b"a layer both repositories use").await;
    let only_a = upload(&c, &s.url, "alice/a", b"a layer of alice/a only").await;
    let (digest_a, config_a) = manifest(&c, &s.url, "alice/a", "v1", &[&shared, &only_a]).await;
    upload(&c, &s.url, "alice/b", b"a layer both repositories use").await;
    manifest(&c, &s.url, "alice/b", "v1", &[&shared]).await;
    let view = "/api/v1/repositories/alice/a/-/gc";
    let (status, body) = call(&s, reqwest::Method::GET, view, Some(&admin), None).await;
    assert_eq!(status, 404, "no run yet: {body}");
    assert!(body["error"].as_str().unwrap().contains("POST /api/v1/gc"), "{body}");
    let before = run_gc(&s, &admin, true).await;
    assert_eq!(before["removed"], 0, "every link is backed by a manifest: {before}");
    let (status, _) = call(&s, reqwest::Method::GET, view, Some(&basic("bobby", "secret2")), None).await;
    assert_eq!(status, 403, "alice/a is hers to manage");
    let (status, _) = call(&s, reqwest::Method::GET, view, None, None).await;
    assert_eq!(status, 401);

    let r = c
        .delete(format!("{}/v2/alice/a/manifests/{digest_a}", s.url))
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let preview = run_gc(&s, &admin, true).await;
    let freed_a = |v: &serde_json::Value| {
        let mut blobs: Vec<String> = v["blobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap().to_string())
            .collect();
        blobs.sort();
        blobs
    };
    let mut expected = vec![config_a.clone(), only_a.clone()];
    expected.sort();
    assert_eq!(preview["removed"], 2, "{preview}");
    let buckets = preview["by_repository"].as_array().unwrap();
    assert_eq!(buckets.len(), 1, "{preview}");
    assert_eq!(buckets[0]["repository"], "alice/a");
    assert_eq!(freed_a(&buckets[0]), expected);
    assert!(blob_file(dir, &only_a).exists(), "a preview removes nothing");
    // The per-repository view: the owner may read it.
    let (status, view) = call(&s, reqwest::Method::GET, view, Some(&auth), None).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (view["dry_run"].clone(), view["removed"].clone()),
        (serde_json::json!(true), serde_json::json!(2))
    );
    assert_eq!(view["removed_bytes"], preview["removed_bytes"]);
    let (_, other) = call(
        &s,
        reqwest::Method::GET,
        "/api/v1/repositories/alice/b/-/gc",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        (other["repository"].clone(), other["removed"].clone()),
        (serde_json::json!("alice/b"), serde_json::json!(0))
    );

    let done = run_gc(&s, &admin, false).await;
    assert_eq!(done["removed_bytes"], preview["removed_bytes"]);
    assert_eq!(done["by_repository"], preview["by_repository"]);
    assert_eq!(done["links_removed"], 2);
    assert!(!blob_file(dir, &only_a).exists() && !blob_file(dir, &config_a).exists());
    assert!(
        !link_file(dir, "alice/a", &only_a).exists(),
        "the stale link went with its blob"
    );
    assert!(
        link_file(dir, "alice/a", &shared).exists(),
        "a link to a kept blob stays"
    );
    let r = c
        .head(format!("{}/v2/alice/a/blobs/{only_a}", s.url))
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .get(format!("{}/v2/alice/b/blobs/{shared}", s.url))
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"a layer both repositories use");
    let r = c
        .get(format!("{}/v2/alice/b/manifests/v1", s.url))
        .header("Authorization", &auth)
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "alice/b still pulls");
}

/// docker's push asks `HEAD blob` and skips the upload of a blob that exists, then pushes its
/// manifest: a HEAD through a link older than half the grace period renews the link, so a
/// collection meanwhile keeps the blob; a link nobody asked about goes with its blob.
#[tokio::test]
async fn a_blob_head_renews_an_old_link() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let s = Server::start_in(dir, "[gc]\ngrace_secs = 600\n");
    s.register("alice", "secret1").await;
    let admin = s.make_root();
    let c = client();
    let auth = basic("alice", "secret1");
    let asked = upload(&c, &s.url, "alice/h", b"asked about before the manifest").await;
    let forgotten = upload(&c, &s.url, "alice/h", b"never asked about").await;
    let young = upload(&c, &s.url, "alice/h", b"linked a moment ago").await;
    for d in [&asked, &forgotten, &young] {
        age(dir, d, 3600);
    }
    for d in [&asked, &forgotten] {
        skiff::storage::local::backdate(&link_file(dir, "alice/h", d), 3600).unwrap();
    }
    // Less than half the grace period old: no write.
    skiff::storage::local::backdate(&link_file(dir, "alice/h", &young), 200).unwrap();
    let mtime = |d: &str| {
        std::fs::metadata(link_file(dir, "alice/h", d))
            .unwrap()
            .modified()
            .unwrap()
    };
    let young_before = mtime(&young);
    for d in [&asked, &young] {
        let r = c
            .head(format!("{}/v2/alice/h/blobs/{d}", s.url))
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let age_of = |d: &str| std::time::SystemTime::now().duration_since(mtime(d)).unwrap().as_secs();
    assert!(age_of(&asked) < 60, "renewed");
    assert_eq!(mtime(&young), young_before, "a young link is not written again");
    let report = run_gc(&s, &admin, false).await;
    let removed: Vec<&str> = report["removed_blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["digest"].as_str().unwrap())
        .collect();
    assert_eq!(removed, vec![forgotten.as_str()], "{report}");
    assert_eq!(report["by_repository"][0]["repository"], "alice/h");
    // The push goes on: its manifest lands on the blobs it was told exist.
    manifest(&c, &s.url, "alice/h", "v1", &[&asked, &young]).await;
}
