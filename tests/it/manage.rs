//! The management API (`/api/v1`) and the live CLI, against one running server, never
//! restarted: accounts, repositories, the local socket, health.

use crate::common::*;
use crate::v2::{users, Api};
use serde_json::json;

use reqwest::Method as M;

/// Accounts through the API: who may do what, the rules on names, passwords, the last admin,
/// and that changes apply at once to a running server.
#[tokio::test]
async fn accounts_are_managed_live() {
    let s = Server::start("");
    let (alice, _, _) = users(&s).await;
    // The operator creates the first admin with the CLI, through the running server's socket.
    let (ok, out, err) = cli(
        &s.dir,
        &["user", "add", "root", "--email", "root@example.com", "--admin"],
        "rootpass1\n",
    );
    assert!(ok, "{err}");
    assert!(out.contains("root\troot@example.com\tactive\tadmin"), "{out}");
    let root = basic("root", "rootpass1");

    let (st, body) = call(&s, M::GET, "/api/v1/users", None, None).await;
    assert_eq!(st, 401, "anonymous");
    assert!(body["error"].is_string(), "{body}");
    assert_eq!(
        call(&s, M::GET, "/api/v1/users", Some(&alice), None).await.0,
        403,
        "not an admin"
    );
    let (st, list) = call(&s, M::GET, "/api/v1/users", Some(&root), None).await;
    assert_eq!(st, 200);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert!(names.contains(&"alice") && names.contains(&"root"), "{names:?}");
    assert!(list.to_string().find("pbkdf2").is_none(), "no hashes shown");

    // Short and dotted names are namespaces today's clients accept.
    for name in ["li", "john.doe", "j-smith"] {
        let new = json!({"username": name, "password": "pass-word1", "email": format!("{name}@example.com")});
        let (st, body) = call(&s, M::POST, "/api/v1/users", Some(&root), Some(new)).await;
        assert_eq!(st, 201, "{name}: {body}");
        let r = client()
            .get(format!("{}/v2/token?service=skiff", s.url))
            .header("Authorization", basic(name, "pass-word1"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name} signs in");
    }
    let bad = json!({"username": "x", "password": "pass-word1", "email": "x@example.com"});
    let (st, body) = call(&s, M::POST, "/api/v1/users", Some(&root), Some(bad)).await;
    assert_eq!(st, 400);
    assert!(body["error"].as_str().unwrap().contains("2 to 64"), "{body}");
    let (st, _) = call(
        &s,
        M::POST,
        "/api/v1/users",
        Some(&alice),
        Some(json!({"username": "mallory", "password": "pass-word1", "email": "m@example.com"})),
    )
    .await;
    assert_eq!(st, 403, "only admins create accounts");

    // An account reads itself and changes its own password, nobody else's.
    let li = basic("li", "pass-word1");
    assert_eq!(call(&s, M::GET, "/api/v1/users/li", Some(&li), None).await.0, 200);
    assert_eq!(call(&s, M::GET, "/api/v1/users/alice", Some(&li), None).await.0, 403);
    let (st, _) = call(
        &s,
        M::PUT,
        "/api/v1/users/li/password",
        Some(&li),
        Some(json!({"password": "new-pass-2"})),
    )
    .await;
    assert_eq!(st, 204);
    assert_eq!(
        call(&s, M::GET, "/api/v1/me", Some(&li), None).await.0,
        401,
        "old password refused at once"
    );
    let li = basic("li", "new-pass-2");
    let (st, me) = call(&s, M::GET, "/api/v1/me", Some(&li), None).await;
    assert_eq!((st, me["name"].as_str()), (200, Some("li")));
    assert_eq!(
        call(
            &s,
            M::PUT,
            "/api/v1/users/alice/active",
            Some(&li),
            Some(json!({"active": false}))
        )
        .await
        .0,
        403
    );

    // Deactivation applies at once; the last admin cannot be removed.
    let (st, u) = call(
        &s,
        M::PUT,
        "/api/v1/users/alice/active",
        Some(&root),
        Some(json!({"active": false})),
    )
    .await;
    assert_eq!((st, u["active"].as_bool()), (200, Some(false)));
    assert_eq!(
        call(&s, M::GET, "/api/v1/me", Some(&alice), None).await.0,
        403,
        "inactive"
    );
    call(
        &s,
        M::PUT,
        "/api/v1/users/alice/active",
        Some(&root),
        Some(json!({"active": true})),
    )
    .await;
    let (st, body) = call(
        &s,
        M::PUT,
        "/api/v1/users/root/admin",
        Some(&root),
        Some(json!({"admin": false})),
    )
    .await;
    assert_eq!(st, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("last active administrator"),
        "{body}"
    );
    let (st, body) = call(
        &s,
        M::PUT,
        "/api/v1/users/root/admin",
        Some(&root),
        Some(json!({"admin": "no"})),
    )
    .await;
    assert_eq!(st, 400, "{body}");

    // The CLI works against the running server too.
    let (ok, out, err) = cli(&s.dir, &["user", "list"], "");
    assert!(ok, "{err}");
    assert!(out.contains("john.doe\tjohn.doe@example.com\tactive\tuser"), "{out}");
    let (ok, _, err) = cli(&s.dir, &["user", "admin", "li"], "");
    assert!(ok, "{err}");
    assert_eq!(
        call(&s, M::GET, "/api/v1/users", Some(&li), None).await.0,
        200,
        "li is an admin now"
    );

    // Deleting an account with repositories needs a decision; its credentials die with it,
    // and an account re-created under its name gets none of the old one's tokens.
    let api = Api::new(&s);
    api.image(&alice, "alice/app", "v1", json!({})).await;
    let (old_token, _) = api.token(Some(&alice), &["repository:alice/app:pull,push"]).await;
    let (st, body) = call(&s, M::DELETE, "/api/v1/users/alice", Some(&root), None).await;
    assert_eq!(st, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("alice/app"), "{body}");
    let (ok, out, err) = cli(&s.dir, &["user", "rm", "alice", "--delete-repositories"], "");
    assert!(ok, "{err}");
    assert!(out.contains("deleted alice and 1 repositories"), "{out}");
    assert_eq!(call(&s, M::GET, "/api/v1/me", Some(&alice), None).await.0, 401);
    s.register("alice", "secret1").await;
    let r = api
        .get("/v2/alice/app/tags/list", Some(&crate::v2::bearer(&old_token)))
        .await;
    assert_eq!(r.status, 401, "the old account's token does not fit the new one");
    let r = api.get("/v2/alice/app/tags/list", Some(&alice)).await;
    assert_eq!(r.status, 404, "its repository went with it");
}

/// Repositories through the API and the CLI: lists with sizes and tags, visibility,
/// description, collaborators, and a delete that removes the repository from every route.
#[tokio::test]
async fn repositories_are_managed_live() {
    let s = Server::start("");
    let (alice, bobby, _) = users(&s).await;
    let api = Api::new(&s);
    let pushed = api.image(&alice, "alice/app", "v1", json!({})).await;
    api.image(&alice, "alice/app", "v2", json!({})).await;
    api.image(&bobby, "bobby/tool", "latest", json!({})).await;

    let (st, list) = call(&s, M::GET, "/api/v1/repositories", Some(&alice), None).await;
    assert_eq!(st, 200);
    let repos = list.as_array().unwrap();
    assert_eq!(repos.len(), 1, "alice lists her own only: {list}");
    assert_eq!(repos[0]["name"], "alice/app");
    assert_eq!(repos[0]["tags"], 2);
    assert!(repos[0]["size"].as_u64().unwrap() > 600, "{list}");
    assert!(repos[0]["last_push"].as_u64().is_some(), "{list}");

    // Another user: 403 on a public repository's settings, 404 once it is private.
    assert_eq!(
        call(&s, M::GET, "/api/v1/repositories/alice/app", Some(&bobby), None)
            .await
            .0,
        403
    );
    let (st, r) = call(
        &s,
        M::PUT,
        "/api/v1/repositories/alice/app/-/visibility",
        Some(&alice),
        Some(json!({"private": true})),
    )
    .await;
    assert_eq!((st, r["private"].as_bool()), (200, Some(true)));
    let (st, body) = call(&s, M::GET, "/api/v1/repositories/alice/app", Some(&bobby), None).await;
    assert_eq!(st, 404);
    assert_eq!(
        body,
        call(&s, M::GET, "/api/v1/repositories/alice/none", Some(&bobby), None)
            .await
            .1,
        "private looks absent"
    );
    assert_eq!(
        api.get(&format!("/v2/alice/app/manifests/{}", pushed.digest), None)
            .await
            .status,
        api.get(&format!("/v2/alice/none/manifests/{}", pushed.digest), None)
            .await
            .status,
        "anonymous: private looks absent"
    );

    let (st, r) = call(
        &s,
        M::PUT,
        "/api/v1/repositories/alice/app/-/description",
        Some(&alice),
        Some(json!({"description": "the app"})),
    )
    .await;
    assert_eq!((st, r["description"].as_str()), (200, Some("the app")));
    let (st, r) = call(
        &s,
        M::PUT,
        "/api/v1/repositories/alice/app/-/collaborators/bobby",
        Some(&alice),
        None,
    )
    .await;
    assert_eq!((st, r["collaborators"].clone()), (200, json!(["bobby"])));
    let (st, list) = call(&s, M::GET, "/api/v1/repositories", Some(&bobby), None).await;
    assert_eq!(
        (st, list.as_array().unwrap().len()),
        (200, 2),
        "a collaborator lists it: {list}"
    );
    assert_eq!(
        call(
            &s,
            M::PUT,
            "/api/v1/repositories/alice/app/-/collaborators/ghost",
            Some(&alice),
            None
        )
        .await
        .0,
        404
    );

    // The CLI, live: a table with human sizes, then a delete.
    let (ok, out, err) = cli(&s.dir, &["repo", "list"], "");
    assert!(ok, "{err}");
    assert!(out.starts_with("NAME"), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("alice/app"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("private") && line.contains(" 2 ") && line.contains(" B") && line.contains("just now"),
        "{line}"
    );
    let (ok, _, err) = cli(&s.dir, &["repo", "public", "alice/app"], "");
    assert!(ok, "{err}");
    assert_eq!(
        api.get(&format!("/v2/alice/app/manifests/{}", pushed.digest), None)
            .await
            .status,
        200
    );
    let (ok, _, err) = cli(&s.dir, &["repo", "rm", "alice/app"], "");
    assert!(ok, "{err}");
    let g = api.get("/v2/alice/app/tags/list", Some(&alice)).await;
    assert_eq!(g.status, 404, "deleted: {}", g.text());
    let catalog = api.get("/v2/_catalog", Some(&alice)).await.text();
    assert!(!catalog.contains("alice/app"), "{catalog}");
    let search = client()
        .get(format!("{}/v1/search?q=app", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!search.contains("alice/app"), "{search}");
    let (ok, _, err) = cli(&s.dir, &["repo", "rm", "alice/app"], "");
    assert!(!ok && err.contains("not found"), "{err}");
}

/// The operator's socket is the owner's only, and the health routes answer.
#[tokio::test]
async fn local_socket_and_health() {
    use std::os::unix::fs::PermissionsExt;
    let s = Server::start("");
    let mode = std::fs::metadata(s.dir.join("data/skiff.sock"))
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let (st, body) = call(&s, M::GET, "/healthz", None, None).await;
    assert_eq!((st, body["status"].as_str()), (200, Some("ok")));
    let (st, body) = call(&s, M::GET, "/readyz", None, None).await;
    assert_eq!((st, body["status"].as_str()), (200, Some("ready")));
    let (st, body) = call(&s, M::GET, "/api/v1/nothing", None, None).await;
    assert_eq!(st, 404, "{body}");
}

/// The start-up lines say who may sign up and, on a server with no administrator, how to make
/// one.
#[test]
fn startup_says_how_to_begin() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let config = Server::write_config(tmp.path(), "");
    let mut child = std::process::Command::new(skiff_bin())
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(10)) {
        let done = line.contains("no administrator yet");
        lines.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = lines.join("\n");
    assert!(text.contains("skiff listening on http://127.0.0.1:"), "{text}");
    assert!(
        text.contains("registration = \"open\": anyone who can reach the server can create an account"),
        "{text}"
    );
    assert!(text.contains("skiff user add NAME --email EMAIL --admin"), "{text}");
}
