//! The audit log against one running server: v1 and v2 pushes, a repository delete, a
//! visibility change and account creation each leave an entry with the right user, action,
//! target and client address; an account sees only what concerns it; pages chain.

use crate::common::*;
use crate::v2::{bearer, users, Api};
use reqwest::Method as M;
use serde_json::{json, Value};

/// Every entry the caller may see, newest first, fetched a page of `limit` at a time.
async fn all_pages(s: &Server, auth: &str, query: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut before: Option<u64> = None;
    for _ in 0..1000 {
        let more = before.map(|b| format!("&before={b}")).unwrap_or_default();
        let (st, page) = call(
            s,
            M::GET,
            &format!("/api/v1/audit?limit={limit}{query}{more}"),
            Some(auth),
            None,
        )
        .await;
        assert_eq!(st, 200, "{page}");
        let entries = page["entries"].as_array().expect("entries").clone();
        assert!(entries.len() <= limit, "a page holds at most `limit`");
        out.extend(entries);
        match page["next"].as_u64() {
            Some(n) => before = Some(n),
            None => return out,
        }
    }
    panic!("paging never ended");
}

fn find<'a>(entries: &'a [Value], action: &str, target: &str) -> &'a Value {
    entries
        .iter()
        .find(|e| e["action"] == action && e["target"] == target)
        .unwrap_or_else(|| panic!("no {action} of {target} in {entries:#?}"))
}

#[tokio::test]
async fn changes_are_audited_with_who_what_and_where() {
    let s = Server::start("trust_forwarded_headers = true");
    // The operator makes the first admin through the running server's socket.
    let root = s.make_root();
    let (alice, bobby, _) = users(&s).await;

    // v1 push (Docker 1.3's sequence) and v2 push, by alice; a v2 push by bobby.
    let images = chain(2);
    push_13(&s.url, "alice", "secret1", "alice/old", &images, "latest").await;
    let api = Api::new(&s);
    let pushed = api.image(&alice, "alice/new", "1.0", json!({})).await;
    api.image(&bobby, "bobby/secret", "v1", json!({})).await;

    // A visibility change from behind a trusted proxy, a repository delete, an account made
    // by an admin.
    let r = client()
        .put(format!("{}/api/v1/repositories/alice/new/-/visibility", s.url))
        .header("Authorization", &alice)
        .header("X-Forwarded-For", "203.0.113.7, 10.0.0.1")
        .json(&json!({"private": true}))
        .send()
        .await
        .expect("visibility");
    assert_eq!(r.status(), 200);
    let (st, _) = call(&s, M::DELETE, "/api/v1/repositories/alice/old", Some(&alice), None).await;
    assert_eq!(st, 204);
    let new = json!({"username": "dave", "password": "pass-word1", "email": "dave@example.com"});
    let (st, _) = call(&s, M::POST, "/api/v1/users", Some(&root), Some(new)).await;
    assert_eq!(st, 201);

    assert_eq!(call(&s, M::GET, "/api/v1/audit", None, None).await.0, 401, "anonymous");
    let all = all_pages(&s, &root, "", 1000).await;
    let local = "127.0.0.1";

    let e = find(&all, "user.create", "root");
    assert_eq!(
        (e["user"].as_str(), e["address"].as_str()),
        (Some("operator (local socket)"), Some("local"))
    );
    let e = find(&all, "user.create", "alice");
    assert_eq!(
        (e["user"].as_str(), e["address"].as_str()),
        (Some("anonymous"), Some(local)),
        "self-registered"
    );
    let e = find(&all, "user.create", "dave");
    assert_eq!(
        (e["user"].as_str(), e["account"].as_str()),
        (Some("root"), Some("dave"))
    );
    assert_eq!(e["address"], local);

    let e = find(&all, "tag.push", "alice/old:latest");
    assert_eq!(
        (e["user"].as_str(), e["repository"].as_str()),
        (Some("alice"), Some("alice/old"))
    );
    assert_eq!(e["address"], local);
    assert_eq!(e["detail"], images[1].id.as_str(), "the image the tag names");
    for img in &images {
        let e = find(&all, "image.push", &img.id);
        assert_eq!(
            (e["user"].as_str(), e["repository"].as_str()),
            (Some("alice"), Some("alice/old"))
        );
    }

    let e = find(&all, "manifest.push", "alice/new:1.0");
    assert_eq!(
        (e["user"].as_str(), e["address"].as_str()),
        (Some("alice"), Some(local))
    );
    assert_eq!(e["detail"]["digest"], pushed.digest.as_str());

    let e = find(&all, "repository.visibility", "alice/new");
    assert_eq!(e["address"], "203.0.113.7", "the forwarded client, not the proxy");
    assert_eq!(
        (e["user"].as_str(), e["detail"]["private"].as_bool()),
        (Some("alice"), Some(true))
    );

    let e = find(&all, "repository.delete", "alice/old");
    assert_eq!(
        (e["user"].as_str(), e["repository"].as_str()),
        (Some("alice"), Some("alice/old"))
    );

    // Newest first, every id once.
    let ids: Vec<u64> = all.iter().map(|e| e["id"].as_u64().expect("id")).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    assert!(all
        .iter()
        .all(|e| e["time"].as_u64().is_some_and(|t| t > 1_700_000_000)));
    let delete_at = ids[all
        .iter()
        .position(|e| e["action"] == "repository.delete")
        .expect("delete")];
    let visibility_at = ids[all
        .iter()
        .position(|e| e["action"] == "repository.visibility")
        .expect("vis")];
    assert!(delete_at > visibility_at, "in the order they happened");

    // Pages of 2 give the same entries in the same order.
    let paged = all_pages(&s, &root, "", 2).await;
    assert_eq!(paged, all, "pages of 2 chain to the whole log");

    // Filters.
    let user_actions = all_pages(&s, &root, "&action=user", 100).await;
    assert!(user_actions.len() >= 4, "{user_actions:#?}");
    assert!(user_actions
        .iter()
        .all(|e| e["action"].as_str().unwrap().starts_with("user.")));
    let about_new = all_pages(&s, &root, "&repository=alice/new", 100).await;
    let actions: Vec<&str> = about_new.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["repository.visibility", "manifest.push"], "{about_new:#?}");
    let (st, body) = call(&s, M::GET, "/api/v1/audit?bogus=1", Some(&root), None).await;
    assert_eq!(st, 400, "{body}");

    // An account sees what it did and what concerns it, nothing of others'.
    let mine = all_pages(&s, &alice, "", 3).await;
    assert!(!mine.is_empty());
    for e in &mine {
        let about_alice = e["user"] == "alice"
            || e["account"] == "alice"
            || e["repository"].as_str().is_some_and(|r| r.starts_with("alice/"));
        assert!(about_alice, "alice sees {e}");
    }
    find(&mine, "user.create", "alice");
    find(&mine, "repository.delete", "alice/old");
    assert!(!mine.iter().any(|e| e.to_string().contains("bobby")), "{mine:#?}");
    let theirs = all_pages(&s, &bobby, "", 100).await;
    find(&theirs, "manifest.push", "bobby/secret:v1");
    assert!(!theirs.iter().any(|e| e["repository"] == "alice/new"));

    // The CLI prints the same entries through the local socket.
    let (ok, out, err) = cli(&s.dir, &["audit", "--user", "alice", "--limit", "50"], "");
    assert!(ok, "{err}");
    assert!(out.starts_with("WHEN"), "{out}");
    assert!(
        out.contains("repository.visibility") && out.contains("203.0.113.7"),
        "{out}"
    );
    assert!(out.contains("alice/old:latest"), "{out}");
    assert!(!out.contains("bobby/secret"), "{out}");
    let (ok, out, err) = cli(&s.dir, &["audit", "--repo", "alice/new", "--json"], "");
    assert!(ok, "{err}");
    let page: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(page["entries"], json!(about_new));

    // Tokens made and revoked, and a gc run, are entries too (never a token's secret).
    let new = json!({"name": "ci", "scopes": [{"repository": "alice/new", "actions": ["pull"]}]});
    let (st, made) = call(&s, M::POST, "/api/v1/tokens", Some(&alice), Some(new)).await;
    assert_eq!(st, 201, "{made}");
    let id = made["id"].as_str().expect("id");
    let (st, _) = call(&s, M::DELETE, &format!("/api/v1/tokens/{id}"), Some(&root), None).await;
    assert_eq!(st, 204);
    let (ok, _, err) = cli(&s.dir, &["gc"], "");
    assert!(ok, "{err}");
    let mine = all_pages(&s, &alice, "&action=token", 100).await;
    let actions: Vec<&str> = mine.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["token.revoke", "token.create"],
        "alice sees root revoke her token"
    );
    assert_eq!(
        (mine[0]["user"].as_str(), mine[0]["account"].as_str()),
        (Some("root"), Some("alice"))
    );
    assert!(!mine[1].to_string().contains(made["secret"].as_str().expect("secret")));
    let gc = all_pages(&s, &root, "&action=gc", 100).await;
    assert_eq!(gc.len(), 1, "{gc:#?}");
    assert_eq!(gc[0]["user"], "operator (local socket)");
    assert!(gc[0]["detail"]["removed_bytes"].is_u64(), "{gc:#?}");
}

/// A registry-only process has no index database: its pushes go to its log as JSON lines.
#[tokio::test]
async fn a_registry_only_process_logs_its_entries() {
    let i = Server::start("");
    let r = Server::start(&format!("standalone = false\nindex_endpoint = \"{}\"\n", i.url));
    i.register("alice", "secret1").await;
    let (token, _) = Api::new(&i)
        .token(Some(&basic("alice", "secret1")), &["repository:alice/reg:pull,push"])
        .await;
    Api::new(&r).image(&bearer(&token), "alice/reg", "v1", json!({})).await;
    let entry = || {
        r.log()
            .lines()
            .filter(|l| l.contains("skiff::audit"))
            .filter_map(|l| l.find('{').and_then(|at| serde_json::from_str::<Value>(&l[at..]).ok()))
            .find(|e| e["action"] == "manifest.push")
    };
    assert!(
        wait_until(std::time::Duration::from_secs(5), || entry().is_some()),
        "{}",
        r.log()
    );
    let e = entry().expect("entry");
    assert_eq!(
        (e["user"].as_str(), e["target"].as_str()),
        (Some("alice"), Some("alice/reg:v1"))
    );
    assert_eq!(e["address"], "127.0.0.1");
    let (st, _) = call(&r, M::GET, "/api/v1/audit", Some(&basic("alice", "secret1")), None).await;
    assert_eq!(st, 404, "no management API on a registry-only process");
}
