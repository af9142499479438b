//! Retention policies against one running server: a dry run lists exactly what the real run
//! then deletes (v1 and v2 tags, and the manifests no kept tag reaches), protected and newest
//! tags stay pullable, other repositories are untouched, and the next gc frees the bytes.
//! Old tags are made by backdating their files, as the gc tests age blobs.

use crate::common::*;
use crate::v2::{users, Api, OCI_MANIFEST};
use reqwest::Method as M;
use serde_json::{json, Value};

const DAY: u64 = 86_400;

const CONFIG: &str = r#"
[gc]
grace_secs = 0
[[retention.policy]]
repositories = "alice/*"
keep_newest = 1
unpulled_days = 30
protect = ["latest", "v*"]
[[retention.policy]]
repositories = "bobby/*"
keep_newest = 100
"#;

fn age_tag(dir: &std::path::Path, repo: &str, protocol: &str, tag: &str, days: u64) {
    let flat = repo.replace('/', "+");
    let sub = if protocol == "v2" { "_manifests/tags" } else { "_tags" };
    let path = dir.join(format!("data/registry/repositories/{flat}/{sub}/{tag}"));
    skiff::storage::local::backdate(&path, days * DAY).unwrap_or_else(|e| panic!("{path:?}: {e}"));
}

/// (name, protocol) of each tag a report lists for `repo`, and its manifests.
fn listed(report: &Value, repo: &str) -> (Vec<(String, String)>, Vec<String>) {
    let Some(r) = report["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["repository"] == repo)
    else {
        return (Vec::new(), Vec::new());
    };
    let tags = r["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["protocol"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let manifests = r["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    (tags, manifests)
}

#[tokio::test]
async fn a_dry_run_lists_exactly_what_the_run_deletes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let s = Server::start_in(dir, CONFIG);
    let (alice, bobby, _) = users(&s).await;
    let root = s.make_root();
    let api = Api::new(&s);
    let repo = "alice/app";

    // v2: latest and v1.0 protected, new-1 the newest, old-b pulled lately, old-d on the same
    // manifest as old-b; old-a and old-d unused for 100 and 40 days.
    let latest = api.image(&alice, repo, "latest", json!({})).await;
    let v10 = api.image(&alice, repo, "v1.0", json!({})).await;
    let old_a = api.image(&alice, repo, "old-a", json!({})).await;
    let old_b = api.image(&alice, repo, "old-b", json!({})).await;
    assert_eq!(
        api.put_manifest(Some(&alice), repo, "old-d", OCI_MANIFEST, &old_b.body)
            .await
            .status,
        201
    );
    let new1 = api.image(&alice, repo, "new-1", json!({})).await;
    // v1: v0 protected, ancient unused.
    let protected_v1 = chain(2);
    push_13(&s.url, "alice", "secret1", repo, &protected_v1, "v0").await;
    push_13(&s.url, "alice", "secret1", repo, &chain(1), "ancient").await;
    for (tag, days) in [
        ("latest", 100),
        ("v1.0", 100),
        ("old-a", 100),
        ("old-b", 100),
        ("old-d", 40),
    ] {
        age_tag(dir, repo, "v2", tag, days);
    }
    age_tag(dir, repo, "v1", "v0", 100);
    age_tag(dir, repo, "v1", "ancient", 100);
    assert_eq!(
        api.get(&format!("/v2/{repo}/manifests/old-b"), Some(&alice))
            .await
            .status,
        200
    );
    // Another namespace, another policy that keeps 100: nothing of it goes.
    api.image(&bobby, "bobby/tool", "old", json!({})).await;
    age_tag(dir, "bobby/tool", "v2", "old", 400);

    assert_eq!(
        call(
            &s,
            M::POST,
            "/api/v1/retention",
            Some(&alice),
            Some(json!({"dry_run": true}))
        )
        .await
        .0,
        403,
        "admins only"
    );
    let (st, preview) = call(
        &s,
        M::POST,
        "/api/v1/retention",
        Some(&root),
        Some(json!({"dry_run": true})),
    )
    .await;
    assert_eq!(st, 200, "{preview}");
    assert_eq!(preview["dry_run"], true);
    let (tags, manifests) = listed(&preview, repo);
    let pair = |n: &str, p: &str| (n.to_string(), p.to_string());
    assert_eq!(
        tags,
        vec![pair("ancient", "v1"), pair("old-a", "v2"), pair("old-d", "v2")],
        "{preview}"
    );
    assert_eq!(
        manifests,
        vec![old_a.digest.clone()],
        "old-d's manifest is old-b's, which stays"
    );
    assert_eq!(preview["repositories"][0]["policy"], "alice/*");
    assert_eq!(listed(&preview, "bobby/tool").0, vec![], "{preview}");
    // A preview deletes nothing (checked by digest: a GET by tag would be a pull of old-a).
    let tags = api.get(&format!("/v2/{repo}/tags/list"), Some(&alice)).await.json();
    assert!(tags["tags"].as_array().unwrap().contains(&json!("old-a")), "{tags}");
    assert_eq!(
        api.get(&format!("/v2/{repo}/manifests/{}", old_a.digest), Some(&alice))
            .await
            .status,
        200
    );

    // The CLI preview says the same, through the running server's socket.
    let (ok, out, err) = cli(dir, &["retention", "--dry-run"], "");
    assert!(ok, "{err}");
    assert!(out.contains("alice/app: would delete tag old-a (v2"), "{out}");
    assert!(out.contains("alice/app: would delete tag ancient (v1"), "{out}");
    assert!(
        out.contains("would delete 3 tags and 1 manifests in 1 repositories"),
        "{out}"
    );

    let (st, run) = call(
        &s,
        M::POST,
        "/api/v1/retention",
        Some(&root),
        Some(json!({"dry_run": false})),
    )
    .await;
    assert_eq!(st, 200, "{run}");
    assert_eq!(run["dry_run"], false);
    assert_eq!(
        run["repositories"], preview["repositories"],
        "the run deletes what the preview listed"
    );
    assert_eq!(
        (run["tags_deleted"].as_u64(), run["manifests_deleted"].as_u64()),
        (Some(3), Some(1))
    );

    // The audit log names each deleted tag and manifest, and the policy that decided it.
    let (st, log) = call(&s, M::GET, "/api/v1/audit?action=tag.delete", Some(&root), None).await;
    assert_eq!(st, 200, "{log}");
    let mut logged: Vec<String> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["target"].as_str().unwrap().to_string())
        .collect();
    logged.sort();
    let mut deleted: Vec<String> = run["repositories"][0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{repo}:{}", t["name"].as_str().unwrap()))
        .collect();
    deleted.sort();
    assert_eq!(logged, deleted, "{log}");
    assert!(
        log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["detail"]["retention"].is_string()),
        "{log}"
    );
    let (_, log) = call(&s, M::GET, "/api/v1/audit?action=manifest.delete", Some(&root), None).await;
    assert_eq!(log["entries"].as_array().map(Vec::len), Some(1), "{log}");

    // Gone from the v2 and the v1 tag lists; protected, newest and used tags stay pullable.
    let v2_tags = api.get(&format!("/v2/{repo}/tags/list"), Some(&alice)).await.json();
    assert_eq!(
        v2_tags["tags"],
        json!(["latest", "new-1", "old-b", "v1.0"]),
        "{v2_tags}"
    );
    let r = client()
        .get(format!("{}/v1/repositories/{repo}/tags", s.url))
        .header("Authorization", &alice)
        .send()
        .await
        .unwrap();
    let v1_tags = body_json(r).await;
    assert_eq!(v1_tags, json!({"v0": protected_v1[1].id}), "{v1_tags}");
    for (tag, pushed) in [("latest", &latest), ("v1.0", &v10), ("new-1", &new1), ("old-b", &old_b)] {
        let got = api.get(&format!("/v2/{repo}/manifests/{tag}"), Some(&alice)).await;
        assert_eq!(got.status, 200, "{tag}");
        assert_eq!(got.h("docker-content-digest"), Some(pushed.digest.clone()));
    }
    let gone = api
        .get(&format!("/v2/{repo}/manifests/{}", old_a.digest), Some(&alice))
        .await;
    assert_eq!(gone.status, 404, "old-a's manifest went with its only tag");
    let pulled = pull_13(&s.url, Some(("alice", "secret1")), repo, "v0")
        .await
        .expect("v1 pull of a protected tag");
    assert_eq!(pulled[1].layer, protected_v1[1].layer);
    assert_eq!(api.get("/v2/bobby/tool/manifests/old", Some(&bobby)).await.status, 200);

    // Nothing left to delete; and the next gc frees old-a's layer.
    let (_, again) = call(
        &s,
        M::POST,
        "/api/v1/retention",
        Some(&root),
        Some(json!({"dry_run": false})),
    )
    .await;
    assert_eq!(again["tags_deleted"], 0, "{again}");
    let layer: Value = serde_json::from_slice(&old_a.body).unwrap();
    let layer = layer["layers"][0]["digest"].as_str().unwrap().to_string();
    assert!(crate::v2::blob_file(&s, &layer).exists());
    let (ok, out, err) = cli(dir, &["gc"], "");
    assert!(ok, "{err}");
    assert!(out.starts_with("removed"), "{out}");
    assert!(
        !crate::v2::blob_file(&s, &layer).exists(),
        "space comes back at the next gc"
    );
    let (ok, out, err) = cli(dir, &["retention"], "");
    assert!(ok, "{err}");
    assert!(out.contains("deleted 0 tags"), "{out}");
}

/// `retention.interval_secs` runs it on its own.
#[tokio::test]
async fn scheduled_retention_runs() {
    let s = Server::start(&format!("[retention]\ninterval_secs = 1\n{CONFIG}"));
    s.register("alice", "secret1").await;
    let alice = basic("alice", "secret1");
    let api = Api::new(&s);
    api.image(&alice, "alice/app", "new", json!({})).await;
    api.image(&alice, "alice/app", "stale", json!({})).await;
    age_tag(&s.dir, "alice/app", "v2", "stale", 90);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let tags = api.get("/v2/alice/app/tags/list", Some(&alice)).await.json();
        if tags["tags"] == json!(["new"]) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no scheduled run deleted it: {tags}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
