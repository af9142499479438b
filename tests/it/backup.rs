//! `skiff backup` beside a running server while accounts and repositories keep changing: the
//! backup is one point in time across every tree; `skiff restore` with the server stopped
//! gives that state back (passwords, tokens, privacy), refuses a damaged backup without
//! changing anything, and refuses to run beside a live server.

use crate::common::*;
use crate::v2::{set_private, Api};
use base64::Engine;
use reqwest::Method as M;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// A backup directory's trees: name -> key -> value.
fn trees(dir: &Path) -> BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest")).expect("json");
    let mut out = BTreeMap::new();
    for f in manifest["files"].as_array().expect("files") {
        let text = std::fs::read_to_string(dir.join(f["file"].as_str().expect("file"))).expect("tree file");
        let mut tree = BTreeMap::new();
        for line in text.lines() {
            let e: Value = serde_json::from_str(line).expect("entry");
            let d = |s: &Value| b64.decode(s.as_str().expect("b64")).expect("b64");
            tree.insert(d(&e["k"]), d(&e["v"]));
        }
        assert_eq!(tree.len() as u64, f["entries"].as_u64().expect("entries"));
        out.insert(f["tree"].as_str().expect("tree").to_string(), tree);
    }
    out
}

/// The account names in a backup, after checking the invariants that span trees: every
/// account's email maps back to it, every email to an account, every repository's owner exists.
fn consistent_users(dir: &Path) -> BTreeSet<String> {
    let t = trees(dir);
    let users: BTreeMap<String, Value> = t["users"]
        .iter()
        .map(|(k, v)| {
            (
                String::from_utf8(k.clone()).expect("name"),
                serde_json::from_slice(v).expect("user"),
            )
        })
        .collect();
    for (name, u) in &users {
        let email = u["email"].as_str().expect("email");
        let owner = t["emails"]
            .get(email.as_bytes())
            .map(|v| String::from_utf8_lossy(v).into_owned());
        assert_eq!(
            owner.as_deref(),
            Some(name.as_str()),
            "{name}'s email {email} in the backup"
        );
    }
    for (email, owner) in &t["emails"] {
        let owner = String::from_utf8_lossy(owner);
        assert!(
            users.contains_key(owner.as_ref()),
            "email {} of a missing account {owner}",
            String::from_utf8_lossy(email)
        );
    }
    for (name, repo) in &t["repos"] {
        let repo: Value = serde_json::from_slice(repo).expect("repo");
        let owner = repo["owner"].as_str().expect("owner");
        assert!(
            users.contains_key(owner),
            "repository {} in the backup, its owner {owner} not",
            String::from_utf8_lossy(name)
        );
    }
    users.into_keys().collect()
}

async fn status(s: &Server, path: &str, auth: Option<&str>) -> u16 {
    let mut rb = client().get(format!("{}{path}", s.url));
    if let Some(a) = auth {
        rb = rb.header("Authorization", a);
    }
    rb.send().await.expect("request").status().as_u16()
}

/// Creates accounts and their repositories and deletes them again, as fast as the server goes,
/// until told to stop. Returns how many rounds it made.
async fn churn(s_url: String, root: String, w: usize, stop: Arc<AtomicBool>, rounds: Arc<AtomicUsize>) {
    let c = client();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let name = format!("w{w}x{i}");
        let r = c
            .post(format!("{s_url}/api/v1/users"))
            .header("Authorization", &root)
            .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": "worker-pw-1"}))
            .send()
            .await
            .expect("create");
        assert_eq!(r.status(), 201, "create {name}");
        let r = c
            .put(format!("{s_url}/v1/repositories/{name}/app/"))
            .header("Authorization", basic(&name, "worker-pw-1"))
            .json(&json!([]))
            .send()
            .await
            .expect("repo");
        assert!(r.status().is_success(), "repo of {name}: {}", r.status());
        if i % 2 == 1 {
            let r = c
                .delete(format!("{s_url}/api/v1/users/{name}?repositories=delete"))
                .header("Authorization", &root)
                .send()
                .await
                .expect("delete");
            assert_eq!(r.status(), 200, "delete {name}");
        }
        i += 1;
        rounds.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_while_accounts_change_restores_that_point_in_time() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let s = Server::start_in(dir, "");
    let root = s.make_root();
    s.register("alice", "secret1").await;
    s.register("bobby", "secret2").await;
    let (alice, bobby) = (basic("alice", "secret1"), basic("bobby", "secret2"));
    let api = Api::new(&s);
    api.image(&alice, "alice/app", "v1", json!({})).await;
    set_private(&api, &alice, "alice/app", true).await;
    let (st, made) = call(
        &s,
        M::POST,
        "/api/v1/tokens",
        Some(&alice),
        Some(json!({"name": "ci", "scopes": [{"repository": "alice/app", "actions": ["pull"]}]})),
    )
    .await;
    assert_eq!(st, 201, "{made}");
    let pat = basic("alice", made["secret"].as_str().expect("secret"));
    let manifest_path = "/v2/alice/app/manifests/v1";
    assert_eq!(status(&s, manifest_path, Some(&pat)).await, 200);

    // A repository with a long image list, so reading the trees takes long enough for a
    // backup that is not one point in time to be caught at it (repositories are read between
    // emails and users).
    let images: Vec<Value> = (0..10_000).map(|i| json!({"id": format!("{i:064x}")})).collect();
    let r = client()
        .put(format!("{}/v1/repositories/alice/big/", s.url))
        .header("Authorization", &alice)
        .json(&images)
        .send()
        .await
        .expect("big repository");
    assert!(r.status().is_success(), "{}", r.status());

    // Backups while writers create and delete accounts and repositories.
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (url, root, stop, rounds) = (s.url.clone(), root.clone(), stop.clone(), rounds.clone());
            tokio::spawn(churn(url, root, w, stop, rounds))
        })
        .collect();
    assert!(wait_until(std::time::Duration::from_secs(30), || rounds
        .load(Ordering::Relaxed)
        >= 6));
    let mut taken = Vec::new();
    for n in 0..5 {
        let to = dir.join(format!("backup-{n}"));
        let d = dir.to_path_buf();
        let arg = to.to_str().expect("utf-8").to_string();
        let (ok, out, err) = tokio::task::spawn_blocking(move || cli(&d, &["backup", &arg], ""))
            .await
            .expect("cli");
        assert!(ok, "backup {n}: {err}");
        assert!(out.contains("backed up the index"), "{out}");
        taken.push(to);
    }
    let during = rounds.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }
    assert!(
        during > 6,
        "the writer kept writing while the backups were taken ({during} rounds)"
    );
    let mut users = BTreeSet::new();
    for b in &taken {
        users = consistent_users(b);
    }
    let backup = taken.last().expect("a backup").clone();
    for name in ["root", "alice", "bobby"] {
        assert!(users.contains(name), "{users:?}");
    }

    // A second backup into the same, now full, directory is refused.
    let (ok, _, err) = cli(dir, &["backup", backup.to_str().expect("utf-8")], "");
    assert!(!ok && err.contains("not empty"), "{err}");

    // Changes after the backup: a new password, a deleted account, a public repository, a
    // revoked token, a new account.
    let (st, _) = call(
        &s,
        M::PUT,
        "/api/v1/users/alice/password",
        Some(&alice),
        Some(json!({"password": "changed-pw-1"})),
    )
    .await;
    assert_eq!(st, 204);
    let (st, body) = call(&s, M::DELETE, "/api/v1/users/bobby", Some(&root), None).await;
    assert_eq!(st, 200, "{body}");
    let alice2 = basic("alice", "changed-pw-1");
    set_private(&api, &alice2, "alice/app", false).await;
    let (st, _) = call(
        &s,
        M::DELETE,
        &format!("/api/v1/tokens/{}", made["id"].as_str().expect("id")),
        Some(&alice2),
        None,
    )
    .await;
    assert_eq!(st, 204);
    s.register("later", "later-pw-1").await;
    assert_eq!(status(&s, manifest_path, Some(&pat)).await, 401);
    assert_eq!(status(&s, manifest_path, None).await, 200, "public now");

    // Restore is refused while the server runs, and changes nothing.
    let (ok, _, err) = cli(dir, &["restore", backup.to_str().expect("utf-8")], "");
    assert!(!ok && err.contains("running"), "{err}");
    assert_eq!(status(&s, "/api/v1/me", Some(&alice2)).await, 200);
    drop(s);

    // With the server stopped, the backup runs on its data in-process.
    let offline = dir.join("offline");
    let (ok, _, err) = cli(dir, &["backup", offline.to_str().expect("utf-8")], "");
    assert!(ok, "{err}");
    let later = consistent_users(&offline);
    assert!(later.contains("later") && !later.contains("bobby"), "{later:?}");

    let index_dir = dir.join("data/index");
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(&index_dir)
            .expect("index dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = listing();

    // A damaged backup and one of another format version are refused, changing nothing.
    let damaged = dir.join("damaged");
    std::fs::create_dir(&damaged).expect("mkdir");
    for e in std::fs::read_dir(&backup).expect("backup") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), damaged.join(e.file_name())).expect("copy");
    }
    let mut users_file = std::fs::read(damaged.join("users.jsonl")).expect("users file");
    let at = users_file.len() / 2;
    users_file[at] ^= 0x01;
    std::fs::write(damaged.join("users.jsonl"), &users_file).expect("write");
    let (ok, _, err) = cli(dir, &["restore", damaged.to_str().expect("utf-8")], "");
    assert!(!ok && err.contains("users.jsonl"), "{err}");
    users_file[at] ^= 0x01;
    std::fs::write(damaged.join("users.jsonl"), &users_file).expect("write");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(damaged.join("manifest.json")).expect("manifest")).expect("json");
    manifest["format_version"] = json!(99);
    std::fs::write(damaged.join("manifest.json"), manifest.to_string()).expect("write");
    let (ok, _, err) = cli(dir, &["restore", damaged.to_str().expect("utf-8")], "");
    assert!(!ok && err.contains("format version 99"), "{err}");
    assert_eq!(listing(), before, "a refused restore leaves the index as it was");

    // The real one: the old index kept aside.
    let (ok, out, err) = cli(dir, &["restore", backup.to_str().expect("utf-8")], "");
    assert!(ok, "{err}");
    assert!(out.contains("restored the index"), "{out}");
    assert!(
        listing().iter().any(|n| n.starts_with("v1.before-restore-")),
        "{:?}",
        listing()
    );

    let s = Server::start_in(dir, "");
    let (st, list) = call(&s, M::GET, "/api/v1/users", Some(&root), None).await;
    assert_eq!(st, 200, "{list}");
    let now: BTreeSet<String> = list
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["username"].as_str().expect("name").to_string())
        .collect();
    assert_eq!(now, users, "exactly the accounts of the backup");
    assert_eq!(status(&s, "/api/v1/me", Some(&alice)).await, 200, "the old password");
    assert_eq!(status(&s, "/api/v1/me", Some(&alice2)).await, 401, "not the later one");
    assert_eq!(status(&s, "/api/v1/me", Some(&bobby)).await, 200, "bobby is back");
    assert_eq!(
        status(&s, manifest_path, Some(&pat)).await,
        200,
        "the token works again"
    );
    assert_ne!(status(&s, manifest_path, None).await, 200, "alice/app is private again");
    assert_eq!(
        status(&s, manifest_path, Some(&bobby)).await,
        404,
        "and hidden from others"
    );

    // On a new host: a restore into an empty data directory.
    let fresh = tempfile::tempdir().expect("tmp");
    let (ok, _, err) = cli(fresh.path(), &["restore", backup.to_str().expect("utf-8")], "");
    assert!(ok, "{err}");
    let s2 = Server::start_in(fresh.path(), "");
    let (st, list) = call(&s2, M::GET, "/api/v1/users", Some(&root), None).await;
    assert_eq!(st, 200, "{list}");
    assert_eq!(list.as_array().expect("users").len(), users.len());
    assert_eq!(status(&s2, "/api/v1/me", Some(&alice)).await, 200);
}

#[tokio::test]
async fn only_an_admin_or_the_operator_takes_a_backup() {
    let s = Server::start("");
    s.register("alice", "secret1").await;
    let (st, body) = call(&s, M::GET, "/api/v1/backup", Some(&basic("alice", "secret1")), None).await;
    assert_eq!(st, 403, "{body}");
    let (st, _) = call(&s, M::GET, "/api/v1/backup", None, None).await;
    assert_eq!(st, 401);
    let (ok, _, err) = cli(&s.dir, &["user", "admin", "alice"], "");
    assert!(ok, "{err}");
    let r = client()
        .get(format!("{}/api/v1/backup", s.url))
        .header("Authorization", basic("alice", "secret1"))
        .send()
        .await
        .expect("backup");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let length: usize = r.headers()["content-length"]
        .to_str()
        .expect("length")
        .parse()
        .expect("number");
    let body = r.bytes().await.expect("body");
    assert_eq!(body.len(), length);
    let newline = body.iter().position(|b| *b == b'\n').expect("manifest line");
    let manifest: Value = serde_json::from_slice(&body[..newline]).expect("manifest");
    assert_eq!(manifest["format"], "skiff-index-backup");
    let files: u64 = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["bytes"].as_u64().expect("bytes"))
        .sum();
    assert_eq!(newline as u64 + 1 + files, length as u64);
}
