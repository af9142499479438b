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
    let (ok, _, err) = cli(
        dir,
        &["user", "add", "root", "--email", "r@example.com", "--admin"],
        "rootpass1\n",
    );
    assert!(ok, "{err}");
    let admin = basic("root", "rootpass1");
    let c = client();
    let auth = basic("alice", "secret1");

    // Garbage: blobs uploaded, unlinked, and made older than the grace period.
    let mut garbage = Vec::new();
    for i in 0..200u32 {
        let data = format!("garbage {i} {}", "x".repeat(i as usize * 37)).into_bytes();
        let d = upload(&c, &s.url, "alice/junk", &data).await;
        unlink(&c, &s.url, "alice/junk", &d).await;
        age(dir, &d, 3600);
        garbage.push((d, data));
    }
    let preview = run_gc(&s, &admin, true).await;
    assert_eq!(preview["removed"], 200, "{preview}");

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
    let (ok, _, err) = cli(
        dir,
        &["user", "add", "root", "--email", "r@example.com", "--admin"],
        "rootpass1\n",
    );
    assert!(ok, "{err}");
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
