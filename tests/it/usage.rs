//! Storage usage (`GET /api/v1/usage`, `skiff usage`) and namespace quotas, against a running
//! server: unique versus shared bytes, who sees what, and pushes (v1 and v2) refused over a
//! quota with a message naming it.

use crate::common::*;
use crate::v2::{desc, ok, random_bytes, sha256, Api, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST};
use reqwest::Method;
use serde_json::{json, Value};

/// Uploads `config` and `layers` to `repo` and pushes a manifest naming them, tagged `tag`.
async fn push(api: &Api, auth: &str, repo: &str, tag: &str, config: &[u8], layers: &[&[u8]]) -> String {
    api.blob(auth, repo, config).await;
    let mut descs = Vec::new();
    for l in layers {
        api.blob(auth, repo, l).await;
        descs.push(desc(OCI_LAYER, l));
    }
    let m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(OCI_CONFIG, config),
        "layers": descs,
    });
    api.manifest(auth, repo, tag, OCI_MANIFEST, serde_json::to_vec(&m).unwrap())
        .await
        .digest
}

fn find<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .and_then(|l| l.iter().find(|v| v["name"] == name))
        .unwrap_or_else(|| panic!("{name} not in {list}"))
}

/// (bytes, unique, shared) of one entry.
fn figures(v: &Value) -> (u64, u64, u64) {
    (
        v["bytes"].as_u64().unwrap(),
        v["unique_bytes"].as_u64().unwrap(),
        v["shared_bytes"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn usage_tells_unique_from_shared_and_shows_each_account_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let s = Server::start_in(dir, "[quotas.namespaces]\nalice = \"1MiB\"\n");
    let (alice, bobby, _) = crate::v2::users(&s).await;
    let root = s.make_root();
    let api = Api::new(&s);
    let (a_cfg, b_cfg, c_cfg) = (random_bytes(100), random_bytes(200), random_bytes(400));
    let shared = random_bytes(1000);
    push(&api, &alice, "alice/app", "v1", &a_cfg, &[&shared]).await;
    push(&api, &alice, "alice/lib", "v1", &b_cfg, &[&shared]).await;
    push(&api, &bobby, "bobby/tool", "v1", &c_cfg, &[&shared]).await;
    // Garbage: a blob uploaded and unlinked. An upload in progress: 700 bytes so far.
    let junk = random_bytes(3000);
    let d = api.blob(&alice, "alice/junk", &junk).await;
    ok(
        &api.delete(&format!("/v2/alice/junk/blobs/{d}"), Some(&alice)).await,
        202,
        "unlink",
    );
    let loc = api.session("bobby/tool", &bobby).await;
    ok(&api.patch(&loc, &bobby, None, &random_bytes(700)).await, 202, "patch");

    let (status, all) = call(&s, Method::GET, "/api/v1/usage", Some(&root), None).await;
    assert_eq!(status, 200, "{all}");
    let store = &all["store"];
    assert_eq!(store["total_bytes"], 100 + 200 + 400 + 1000 + 3000, "{all}");
    assert_eq!(store["blobs"], 5);
    assert_eq!(store["referenced_bytes"], 1700);
    assert_eq!(
        (store["garbage_bytes"].clone(), store["garbage_blobs"].clone()),
        (json!(3000), json!(1))
    );
    assert_eq!(
        (store["upload_bytes"].clone(), store["upload_sessions"].clone()),
        (json!(700), json!(1))
    );
    let repos = &all["repositories"];
    assert_eq!(figures(find(repos, "alice/app")), (1100, 100, 1000));
    assert_eq!(figures(find(repos, "alice/lib")), (1200, 200, 1000));
    assert_eq!(figures(find(repos, "bobby/tool")), (1400, 400, 1000));
    assert!(
        !repos.to_string().contains("alice/junk"),
        "its only link was removed: nothing of it is stored"
    );
    let namespaces = &all["namespaces"];
    let a = find(namespaces, "alice");
    assert_eq!(figures(a), (1300, 300, 1000), "the shared layer is also bobby's");
    assert_eq!(a["quota"], 1 << 20);
    assert_eq!(a["repositories"], 2);
    assert_eq!(figures(find(namespaces, "bobby")), (1400, 400, 1000));
    assert!(find(namespaces, "bobby")["quota"].is_null());

    // An account: its namespace and repositories only, shared bytes among them only.
    let (status, mine) = call(&s, Method::GET, "/api/v1/usage", Some(&bobby), None).await;
    assert_eq!(status, 200, "{mine}");
    assert!(mine["store"].is_null(), "{mine}");
    assert_eq!(mine["namespaces"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(figures(find(&mine["repositories"], "bobby/tool")), (1400, 1400, 0));
    assert_eq!(figures(find(&mine["namespaces"], "bobby")), (1400, 1400, 0));
    assert_eq!(mine["repositories"].as_array().unwrap().len(), 1, "{mine}");
    let (_, hers) = call(&s, Method::GET, "/api/v1/usage", Some(&alice), None).await;
    assert_eq!(figures(find(&hers["repositories"], "alice/app")), (1100, 100, 1000));
    assert_eq!(find(&hers["namespaces"], "alice")["quota"], 1 << 20);
    assert!(!hers.to_string().contains("bobby"), "{hers}");
    let (status, _) = call(&s, Method::GET, "/api/v1/usage", None, None).await;
    assert_eq!(status, 401);

    // The CLI, through the local socket.
    let (ok_, out, err) = cli(dir, &["usage"], "");
    assert!(ok_, "{err}");
    assert!(out.contains("NAMESPACE") && out.contains("REPOSITORY"), "{out}");
    assert!(out.contains("garbage 2.93 KiB in 1 blobs"), "{out}");
    let line = out.lines().find(|l| l.starts_with("alice ")).expect("alice's line");
    assert!(line.contains("1.00 MiB") && line.contains("1.27 KiB"), "{line}");
    let (ok_, out, err) = cli(dir, &["usage", "--json"], "");
    assert!(ok_, "{err}");
    let parsed: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(parsed["store"]["total_bytes"], store["total_bytes"]);
}

/// One walk, whatever the number of repositories: 10,000 of them answer in seconds.
#[tokio::test]
async fn usage_stays_fast_with_ten_thousand_repositories() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let s = Server::start_in(dir, "");
    let root = s.make_root();
    let api = Api::new(&s);
    let (alice, _, _) = crate::v2::users(&s).await;
    let mut digests = Vec::new();
    for i in 0..20 {
        digests.push(api.blob(&alice, "alice/seed", format!("blob {i}").as_bytes()).await);
    }
    // Written straight into the layout (as pushes would leave it): 10,000 repositories each
    // linking one of the blobs.
    let root_dir = dir.join("data/registry/repositories");
    for r in 0..10_000usize {
        let d = &digests[r % 20];
        let link = root_dir
            .join(format!("ns{}+repo{r}", r % 50))
            .join("_layers/sha256")
            .join(d.trim_start_matches("sha256:"));
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::fs::write(&link, b"").unwrap();
    }
    let started = std::time::Instant::now();
    let (status, all) = call(&s, Method::GET, "/api/v1/usage", Some(&root), None).await;
    let took = started.elapsed();
    assert_eq!(status, 200);
    assert_eq!(all["repositories"].as_array().unwrap().len(), 10_001);
    assert_eq!(all["namespaces"].as_array().unwrap().len(), 51);
    assert!(took < std::time::Duration::from_secs(30), "took {took:?}");
    eprintln!("usage of 10,000 repositories: {took:?}");
}

/// The v2 error code and message of a refused request.
fn denied(g: &crate::v2::Got) -> String {
    assert_eq!(g.status, 403, "{}", g.text());
    let body = g.json();
    assert_eq!(body["errors"][0]["code"], "DENIED", "{body}");
    body["errors"][0]["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn pushes_over_a_namespace_quota_are_refused_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let s = Server::start_in(
        dir,
        "[quotas]\ndefault = \"0\"\n[quotas.namespaces]\nalice = \"200KiB\"\n",
    );
    let (alice, bobby, _) = crate::v2::users(&s).await;
    let root = s.make_root();
    let api = Api::new(&s);
    // Under the limit.
    let first = random_bytes(100 << 10);
    push(&api, &alice, "alice/app", "v1", &random_bytes(10), &[&first]).await;
    // Over it: monolithic, and through a session at its closing PUT.
    let big = random_bytes(150 << 10);
    let g = crate::v2::go(
        api.req(
            Method::POST,
            &format!("/v2/alice/app/blobs/uploads/?digest={}", sha256(&big)),
            Some(&alice),
        )
        .body(big.clone()),
    )
    .await;
    let msg = denied(&g);
    assert!(
        msg.contains("Quota exceeded")
            && msg.contains("namespace alice")
            && msg.contains("200 KiB")
            && msg.contains("(204800 bytes)"),
        "{msg}"
    );
    let loc = api.session("alice/other", &alice).await;
    ok(&api.patch(&loc, &alice, None, &big).await, 202, "patch");
    let msg = denied(&api.close(&loc, &alice, &sha256(&big), None, &[]).await);
    assert!(msg.contains("uses 100 KiB"), "{msg}");
    let g = api
        .head(&format!("/v2/alice/other/blobs/{}", sha256(&big)), Some(&alice))
        .await;
    assert_eq!(g.status, 404, "a refused blob is not linked");
    // A blob the namespace already holds costs nothing more; another namespace has no quota.
    api.blob(&alice, "alice/copy", &first).await;
    api.blob(&bobby, "bobby/app", &big).await;

    // v1: under the limit (one small image), then a layer over it (JSON error, image incomplete).
    let small = chain(1);
    push_13(&s.url, "alice", "secret1", "alice/v1ok", &small, "latest").await;
    let pulled = pull_13(&s.url, Some(("alice", "secret1")), "alice/v1ok", "latest")
        .await
        .expect("pull");
    assert_eq!(pulled[0].layer, small[0].layer);
    let c = client();
    let r = c
        .put(format!("{}/v1/repositories/alice/v1big/", s.url))
        .header("Authorization", &alice)
        .header("X-Docker-Token", "true")
        .json(&json!([]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let tauth = token_auth(r.headers()["x-docker-token"].to_str().unwrap());
    let id = random_id();
    let r = c
        .put(format!("{}/v1/images/{id}/json", s.url))
        .header("Authorization", &tauth)
        .header("Content-Type", "application/json")
        .body(image_json(&id, None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .put(format!("{}/v1/images/{id}/layer", s.url))
        .header("Authorization", &tauth)
        .body(chunked(random_bytes(120 << 10)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body = body_json(r).await;
    let msg = body["error"].as_str().expect("a JSON error");
    assert!(msg.contains("Quota exceeded") && msg.contains("200 KiB"), "{body}");

    // The usage API shows the namespace's usage against its quota; at the limit, a new upload
    // session is refused at once.
    let (_, usage) = call(&s, Method::GET, "/api/v1/usage", Some(&alice), None).await;
    let ns = find(&usage["namespaces"], "alice");
    assert_eq!(ns["quota"], 200 << 10);
    let used = ns["bytes"].as_u64().unwrap();
    assert!(used > 100 << 10 && used < 200 << 10, "{ns}");
    api.blob(&alice, "alice/fill", &random_bytes((200 << 10) - used as usize))
        .await;
    let msg = denied(&api.start_upload("alice/app", "", Some(&alice)).await);
    assert!(msg.contains("uses 200 KiB"), "{msg}");
    let (_, all) = call(&s, Method::GET, "/api/v1/usage", Some(&root), None).await;
    assert_eq!(find(&all["namespaces"], "alice")["bytes"], 200 << 10);

    // Freeing space (a link dropped) lets pushes in again.
    ok(
        &api.delete(&format!("/v2/alice/copy/blobs/{}", sha256(&first)), Some(&alice))
            .await,
        202,
        "unlink",
    );
    let manifest = api.get("/v2/alice/app/manifests/v1", Some(&alice)).await;
    let digest = manifest.h("docker-content-digest").unwrap();
    ok(
        &api.delete(&format!("/v2/alice/app/manifests/{digest}"), Some(&alice))
            .await,
        202,
        "manifest delete",
    );
    ok(
        &api.delete(&format!("/v2/alice/app/blobs/{}", sha256(&first)), Some(&alice))
            .await,
        202,
        "unlink",
    );
    api.blob(&alice, "alice/app", &random_bytes(50 << 10)).await;
}
