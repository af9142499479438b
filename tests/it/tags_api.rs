//! Tags in the management API (`/api/v1/repositories/{name}/-/tags`) and pull statistics,
//! against one running server: both protocols' tags with digest, size, platforms, push and pull
//! times; paging; deleting a tag or its manifest; who may read and delete; pull counts that
//! survive a restart.

use crate::common::*;
use crate::v2::{desc, users, Api, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST};
use reqwest::Method as M;
use serde_json::{json, Value};

/// A tag's row of a listing.
fn row<'a>(page: &'a Value, name: &str, protocol: &str) -> &'a Value {
    page["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .find(|t| t["name"] == name && t["protocol"] == protocol)
        .unwrap_or_else(|| panic!("no {protocol} tag {name} in {page}"))
}

/// An image manifest for `platform` (`os`, `arch`, `variant`), pushed by digest; returns its
/// descriptor for an index, and the bytes of its blobs.
async fn platform_image(
    api: &Api,
    auth: &str,
    repo: &str,
    os: &str,
    arch: &str,
    variant: Option<&str>,
) -> (Value, u64) {
    let mut config = json!({"os": os, "architecture": arch, "n": rand::random::<u32>()});
    if let Some(v) = variant {
        config["variant"] = json!(v);
    }
    let config = serde_json::to_vec(&config).unwrap();
    let layer = crate::v2::random_bytes(500);
    api.blob(auth, repo, &config).await;
    api.blob(auth, repo, &layer).await;
    let m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": desc(OCI_CONFIG, &config), "layers": [desc(OCI_LAYER, &layer)]});
    let pushed = api
        .manifest(auth, repo, "", OCI_MANIFEST, serde_json::to_vec(&m).unwrap())
        .await;
    let mut d = pushed.descriptor();
    let mut platform = json!({"os": os, "architecture": arch});
    if let Some(v) = variant {
        platform["variant"] = json!(v);
    }
    d["platform"] = platform;
    (d, (config.len() + layer.len()) as u64)
}

#[tokio::test]
async fn tags_are_listed_counted_and_deleted_live() {
    let s = Server::start("");
    let (alice, bobby, carol) = users(&s).await;
    let root = s.make_root();
    let api = Api::new(&s);
    let repo = "alice/app";

    let one = api.image(&alice, repo, "one", json!({})).await;
    let two = api.image(&alice, repo, "two", json!({})).await;
    let (amd, amd_size) = platform_image(&api, &alice, repo, "linux", "amd64", None).await;
    let (arm, arm_size) = platform_image(&api, &alice, repo, "linux", "arm64", Some("v8")).await;
    let attestation = json!({"mediaType": OCI_MANIFEST, "digest": amd["digest"], "size": amd["size"],
        "platform": {"os": "unknown", "architecture": "unknown"}});
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [amd, arm, attestation]});
    let multi = api
        .manifest(&alice, repo, "multi", OCI_INDEX, serde_json::to_vec(&index).unwrap())
        .await;
    let images = chain(2);
    push_13(&s.url, "alice", "secret1", repo, &images, "old").await;

    let path = format!("/api/v1/repositories/{repo}/-/tags");
    let (st, page) = call(&s, M::GET, &path, Some(&alice), None).await;
    assert_eq!(st, 200, "{page}");
    assert_eq!(page["repository"], repo);
    let names: Vec<(&str, &str)> = page["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["protocol"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        vec![("multi", "v2"), ("old", "v1"), ("one", "v2"), ("two", "v2")]
    );
    assert!(page["next"].is_null());
    let r = row(&page, "one", "v2");
    assert_eq!(r["digest"], one.digest.as_str());
    assert_eq!(r["media_type"], OCI_MANIFEST);
    let m: Value = serde_json::from_slice(&one.body).unwrap();
    let one_size = m["config"]["size"].as_u64().unwrap() + m["layers"][0]["size"].as_u64().unwrap();
    assert_eq!(r["size"], one_size, "config + layers");
    assert_eq!(r["platforms"], json!(["linux/amd64"]), "from the config blob");
    let now = skiff::clock::now_secs();
    assert!(r["pushed"].as_u64().unwrap().abs_diff(now) < 60, "{r}");
    assert_eq!((r["pulls"].as_u64(), r["last_pull"].is_null()), (Some(0), true));
    let r = row(&page, "multi", "v2");
    assert_eq!(r["digest"], multi.digest.as_str());
    assert_eq!(r["size"], amd_size + arm_size, "every child's blobs, each once");
    assert_eq!(
        r["platforms"],
        json!(["linux/amd64", "linux/arm64/v8"]),
        "attestations left out"
    );
    let r = row(&page, "old", "v1");
    assert_eq!(r["digest"], images[1].id.as_str(), "v1: the image id");
    let v1_size: usize = images.iter().map(|i| i.layer.len()).sum();
    assert_eq!(r["size"], v1_size as u64, "the image's layer and its ancestors'");

    // Pages of `n` tag names; `next` is the `last` of the next page.
    let (st, p1) = call(&s, M::GET, &format!("{path}?n=2"), Some(&alice), None).await;
    assert_eq!(st, 200);
    assert_eq!(p1["tags"].as_array().unwrap().len(), 2);
    assert_eq!(p1["next"], "old");
    let (_, p2) = call(&s, M::GET, &format!("{path}?n=2&last=old"), Some(&alice), None).await;
    let rest: Vec<&str> = p2["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(rest, vec!["one", "two"]);
    assert!(p2["next"].is_null());
    for bad in ["?n=0", "?n=abc", "?n=5000"] {
        let (st, body) = call(&s, M::GET, &format!("{path}{bad}"), Some(&alice), None).await;
        assert_eq!(st, 400, "{bad}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }

    // Pulls: GET by tag counts the repository and the tag, by digest the repository, a HEAD
    // by tag marks the tag used; v1 tag reads count too.
    for _ in 0..2 {
        assert_eq!(
            api.get(&format!("/v2/{repo}/manifests/one"), Some(&alice)).await.status,
            200
        );
    }
    let by_digest = format!("/v2/{repo}/manifests/{}", two.digest);
    assert_eq!(api.get(&by_digest, Some(&alice)).await.status, 200);
    assert_eq!(
        api.head(&format!("/v2/{repo}/manifests/two"), Some(&alice))
            .await
            .status,
        200
    );
    let c = client();
    let r = c
        .get(format!("{}/v1/repositories/{repo}/tags/old", s.url))
        .header("Authorization", &alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(format!("{}/v1/repositories/{repo}/tags", s.url))
        .header("Authorization", &alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, page) = call(&s, M::GET, &path, Some(&alice), None).await;
    assert_eq!(row(&page, "one", "v2")["pulls"], 2);
    assert!(row(&page, "one", "v2")["last_pull"].as_u64().unwrap().abs_diff(now) < 60);
    assert_eq!(row(&page, "two", "v2")["pulls"], 0, "a HEAD is no pull");
    assert!(row(&page, "two", "v2")["last_pull"].is_u64(), "but marks the tag used");
    assert_eq!(row(&page, "old", "v1")["pulls"], 1);
    assert_eq!(row(&page, "multi", "v2")["pulls"], 0);
    let (st, shown) = call(&s, M::GET, &format!("/api/v1/repositories/{repo}"), Some(&alice), None).await;
    assert_eq!(st, 200);
    assert_eq!(shown["pulls"], 5, "2 by tag, 1 by digest, 2 v1: {shown}");
    assert!(shown["last_pull"].is_u64());
    let (_, list) = call(&s, M::GET, "/api/v1/repositories", Some(&root), None).await;
    let listed = list.as_array().unwrap().iter().find(|r| r["name"] == repo).unwrap();
    assert_eq!(listed["pulls"], 5);

    // Who may read and delete: a stranger does not see a private repository, a collaborator
    // reads but may not delete, an anonymous visitor sees no more than a stranger and signs in
    // to change anything.
    let (st, body) = call(&s, M::GET, &path, None, None).await;
    assert_eq!(st, 200, "anyone reads a public repository's tags: {body}");
    let (st, _) = call(
        &s,
        M::PUT,
        &format!("/api/v1/repositories/{repo}/-/visibility"),
        Some(&alice),
        Some(json!({"private": true})),
    )
    .await;
    assert_eq!(st, 200);
    let (st, body) = call(&s, M::GET, &path, Some(&bobby), None).await;
    assert_eq!(st, 404, "{body}");
    assert!(body["error"].is_string());
    let (st, _) = call(&s, M::DELETE, &format!("{path}/one"), Some(&bobby), None).await;
    assert_eq!(st, 404, "a stranger cannot tell it exists");
    let (st, _) = call(
        &s,
        M::PUT,
        &format!("/api/v1/repositories/{repo}/-/collaborators/carol"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(call(&s, M::GET, &path, Some(&carol), None).await.0, 200);
    let (st, body) = call(&s, M::DELETE, &format!("{path}/one"), Some(&carol), None).await;
    assert_eq!(st, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("owner"), "{body}");
    assert_eq!(call(&s, M::GET, &path, None, None).await.0, 404);
    assert_eq!(call(&s, M::DELETE, &format!("{path}/one"), None, None).await.0, 401);
    let (st, body) = call(
        &s,
        M::GET,
        "/api/v1/repositories/alice/nothing/-/tags",
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(st, 404, "{body}");
    let (st, body) = call(&s, M::DELETE, &format!("{path}/nosuch"), Some(&alice), None).await;
    assert_eq!(st, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("nosuch"), "{body}");
    let (st, _) = call(&s, M::DELETE, &format!("{path}/one?manifest=maybe"), Some(&alice), None).await;
    assert_eq!(st, 400);

    // Deleting a tag leaves its manifest; `?manifest=true` takes the manifest and every tag on it.
    let (st, done) = call(&s, M::DELETE, &format!("{path}/two"), Some(&alice), None).await;
    assert_eq!(st, 200, "{done}");
    assert_eq!(done["deleted_tags"][0]["name"], "two");
    assert_eq!(done["deleted_manifests"], json!([]));
    let tags = api.get(&format!("/v2/{repo}/tags/list"), Some(&alice)).await.json();
    assert!(!tags["tags"].as_array().unwrap().contains(&json!("two")), "{tags}");
    assert_eq!(
        api.get(&by_digest, Some(&alice)).await.status,
        200,
        "the manifest stays"
    );
    let again = api
        .put_manifest(Some(&alice), repo, "alias", OCI_MANIFEST, &one.body)
        .await;
    assert_eq!(again.status, 201);
    let (st, done) = call(&s, M::DELETE, &format!("{path}/one?manifest=true"), Some(&root), None).await;
    assert_eq!(st, 200, "{done}");
    let gone: Vec<&str> = done["deleted_tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(gone, vec!["alias", "one"]);
    assert_eq!(done["deleted_manifests"], json!([one.digest]));
    assert_eq!(
        api.get(&format!("/v2/{repo}/manifests/{}", one.digest), Some(&alice))
            .await
            .status,
        404
    );
    // v1: `?manifest=true` takes every tag on the same image.
    let r = c
        .put(format!("{}/v1/repositories/{repo}/tags/old2", s.url))
        .header("Authorization", &alice)
        .json(&images[1].id)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (st, _) = call(&s, M::DELETE, &format!("{path}/old?protocol=v3"), Some(&alice), None).await;
    assert_eq!(st, 400);
    let (st, _) = call(&s, M::DELETE, &format!("{path}/old?protocol=v2"), Some(&alice), None).await;
    assert_eq!(st, 404, "no v2 tag of that name");
    let (st, done) = call(
        &s,
        M::DELETE,
        &format!("{path}/old?protocol=v1&manifest=true"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(st, 200, "{done}");
    let gone: Vec<(&str, &str)> = done["deleted_tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["protocol"].as_str().unwrap()))
        .collect();
    assert_eq!(gone, vec![("old", "v1"), ("old2", "v1")]);
    assert_eq!(done["deleted_manifests"], json!([]));
    let r = c
        .get(format!("{}/v1/repositories/{repo}/tags", s.url))
        .header("Authorization", &alice)
        .send()
        .await
        .unwrap();
    assert_eq!(body_json(r).await, json!({}), "the v1 tag is gone");

    // The CLI, through the running server's socket.
    let (ok, out, err) = cli(&s.dir, &["repo", "tags", repo], "");
    assert!(ok, "{err}");
    assert!(out.starts_with("TAG"), "{out}");
    assert!(out.contains("multi") && out.contains("linux/arm64/v8"), "{out}");
    // An index goes with the children no kept tag reaches.
    let (ok, out, err) = cli(&s.dir, &["repo", "untag", repo, "multi", "--manifest"], "");
    assert!(ok, "{err}");
    assert!(out.contains("deleted tag multi (v2)"), "{out}");
    for d in [
        &multi.digest,
        amd["digest"].as_str().unwrap(),
        arm["digest"].as_str().unwrap(),
    ] {
        assert!(out.contains(&format!("deleted manifest {d}")), "{d}: {out}");
        assert_eq!(
            api.get(&format!("/v2/{repo}/manifests/{d}"), Some(&alice)).await.status,
            404
        );
    }
    let (ok, _, err) = cli(&s.dir, &["repo", "untag", repo, "multi"], "");
    assert!(!ok && err.contains("Tag not found"), "{err}");
}

/// Pulls are counted in memory and written at shutdown (and every few seconds): a restart
/// keeps them.
#[tokio::test]
async fn pull_counts_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut s = Server::start_in(dir, "");
    s.register("alice", "secret1").await;
    let alice = basic("alice", "secret1");
    let api = Api::new(&s);
    api.image(&alice, "alice/app", "v1", json!({})).await;
    for _ in 0..3 {
        assert_eq!(api.get("/v2/alice/app/manifests/v1", Some(&alice)).await.status, 200);
    }
    drop(api);
    // A graceful stop (SIGTERM), as a service manager does.
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &s.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = s.child.wait().unwrap();
    assert!(status.success(), "clean exit: {status}");
    let s = Server::start_in(dir, "");
    let (st, page) = call(&s, M::GET, "/api/v1/repositories/alice/app/-/tags", Some(&alice), None).await;
    assert_eq!(st, 200, "{page}");
    assert_eq!(row(&page, "v1", "v2")["pulls"], 3, "{page}");
    let (_, shown) = call(&s, M::GET, "/api/v1/repositories/alice/app", Some(&alice), None).await;
    assert_eq!(shown["pulls"], 3, "{shown}");
}
